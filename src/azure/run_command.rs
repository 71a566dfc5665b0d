//! AKS run-command: run a shell line inside a cluster without its credentials
//! (`POST .../managedClusters/{name}/runCommand`, then `GET .../commandResults/{id}`), the
//! long-running operation a probe uses. The command id is all a resumed job needs: the result
//! URL is rebuilt from the cluster id, never taken from a response, so the token only goes to
//! the configured ARM endpoint.
use reqwest::Method;
use serde::{Deserialize, Serialize};
use std::time::Duration;

use super::client::AzureClient;
use super::context::CallContext;
use super::error::{AzureError, ErrorKind};
use super::ids::ClusterId;

/// What AKS reports about a command (`RunCommandResult`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct CommandResult {
    /// The command id.
    pub id: String,
    /// `succeeded` or `failed` (the command pod could not run), lower-case as AKS sends it.
    pub provisioning_state: Option<String>,
    pub exit_code: Option<i64>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// What the command printed (stdout and stderr).
    pub logs: Option<String>,
    /// Why the command pod failed, e.g. `ImagePullBackoff`.
    pub reason: Option<String>,
}

#[derive(Deserialize)]
struct WireResult {
    #[serde(default)]
    id: String,
    #[serde(default)]
    properties: Option<WireProps>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireProps {
    provisioning_state: Option<String>,
    exit_code: Option<i64>,
    started_at: Option<String>,
    finished_at: Option<String>,
    logs: Option<String>,
    reason: Option<String>,
}

impl From<WireResult> for CommandResult {
    fn from(w: WireResult) -> Self {
        let p = w.properties;
        CommandResult {
            id: w.id,
            provisioning_state: p.as_ref().and_then(|p| p.provisioning_state.clone()),
            exit_code: p.as_ref().and_then(|p| p.exit_code),
            started_at: p.as_ref().and_then(|p| p.started_at.clone()),
            finished_at: p.as_ref().and_then(|p| p.finished_at.clone()),
            logs: p.as_ref().and_then(|p| p.logs.clone()),
            reason: p.and_then(|p| p.reason),
        }
    }
}

/// A command's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandState {
    /// Still running: ask again after `retry_after` (AKS's hint, when it gives one).
    Running {
        command_id: String,
        retry_after: Option<Duration>,
    },
    Finished(CommandResult),
}

impl AzureClient {
    /// Starts `command` in the cluster. The permission it needs:
    /// `Microsoft.ContainerService/managedClusters/runcommand/action`.
    pub async fn run_command(
        &self,
        ctx: &CallContext,
        cluster: &ClusterId,
        command: &str,
    ) -> Result<CommandState, AzureError> {
        let mut segments = cluster.as_resource_id().segments();
        segments.push("runCommand".into());
        let url = self.arm_url(&segments, &self.inner.api.managed_clusters, None);
        let body = serde_json::json!({ "command": command, "context": "", "clusterToken": "" });
        let resp = self.arm(ctx, "run_command", Method::POST, url, Some(&body)).await?;
        match resp.status {
            200 => Ok(CommandState::Finished(resp.json::<WireResult>()?.into())),
            202 => {
                let location = resp.header("location").unwrap_or_default();
                let command_id = command_id_of(&location).ok_or_else(|| {
                    AzureError::new(
                        "run_command",
                        ErrorKind::Decode,
                        format!(
                            "AKS accepted the command but its location header names no command result: '{}'",
                            super::error::truncate(&location, 200)
                        ),
                    )
                })?;
                Ok(CommandState::Running {
                    command_id,
                    retry_after: resp.retry_after(),
                })
            }
            _ => Err(resp.into_error()),
        }
    }

    /// Where a started command is (`GET .../commandResults/{id}`).
    pub async fn command_result(
        &self,
        ctx: &CallContext,
        cluster: &ClusterId,
        command_id: &str,
    ) -> Result<CommandState, AzureError> {
        let mut segments = cluster.as_resource_id().segments();
        segments.extend(["commandResults".to_string(), command_id.to_string()]);
        let url = self.arm_url(&segments, &self.inner.api.managed_clusters, None);
        let resp = self.arm(ctx, "command_result", Method::GET, url, None).await?;
        match resp.status {
            200 => Ok(CommandState::Finished(resp.json::<WireResult>()?.into())),
            202 => Ok(CommandState::Running {
                command_id: command_id.to_string(),
                retry_after: resp.retry_after(),
            }),
            _ => Err(resp.into_error()),
        }
    }
}

/// The command id at the end of a `.../commandResults/{id}` location (hex or GUID only).
fn command_id_of(location: &str) -> Option<String> {
    let path = location.split('?').next()?;
    let mut segs = path.rsplit('/');
    let id = segs.next()?;
    let parent = segs.next()?;
    (parent.eq_ignore_ascii_case("commandResults")
        && !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-'))
    .then(|| id.to_string())
}

#[cfg(test)]
mod tests {
    use super::command_id_of;

    #[test]
    fn the_command_id_comes_from_the_location_and_nothing_else() {
        assert_eq!(
            command_id_of("https://management.azure.com/subscriptions/s/resourceGroups/rg1/providers/Microsoft.ContainerService/managedClusters/c/commandResults/0e9872e6629349dc865e27ee6f8bab2d?api-version=2026-07-01").as_deref(),
            Some("0e9872e6629349dc865e27ee6f8bab2d")
        );
        assert_eq!(command_id_of("https://x/commandResults/../../secrets"), None);
        assert_eq!(command_id_of("https://x/other/abc"), None);
        assert_eq!(command_id_of(""), None);
    }
}
