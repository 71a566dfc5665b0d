//! ACR's `importImage` (`az acr import`): a long-running operation on the target registry.
//! The answer is 200 (done) or 202 with `Location` (+ `Retry-After`); the location is polled
//! until it answers 200 (done) or an error. The location is checked to be on the configured
//! ARM endpoint before the token goes there (a resumed job polls the one it saved).
use reqwest::Method;
use serde::Serialize;
use std::time::Duration;

use super::client::{AzureClient, Service};
use super::context::CallContext;
use super::error::{AzureError, ErrorKind};
use super::ids::RegistryId;

/// Where an image comes from: another registry of the tenant (by resource id), or any
/// registry by login server (`docker.io`, `mcr.microsoft.com`, `x.azurecr.io`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportSource {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry_uri: Option<String>,
    /// `repository[:tag]` or `repository@sha256:digest`.
    pub source_image: String,
}

/// Registry credentials for the source (only ever in memory, decrypted for the call).
pub struct SourceCredentials {
    pub username: String,
    pub password: String,
}

/// `ImportImageParameters`.
pub struct ImportRequest<'a> {
    pub source: &'a ImportSource,
    pub credentials: Option<&'a SourceCredentials>,
    pub target_tags: &'a [String],
    /// `NoForce` (fail before copying if a target tag exists) or `Force`.
    pub mode: &'a str,
}

impl ImportRequest<'_> {
    fn body(&self) -> serde_json::Value {
        let mut source = serde_json::to_value(self.source).expect("import source serialises");
        if let Some(c) = self.credentials {
            source["credentials"] = serde_json::json!({ "username": c.username, "password": c.password });
        }
        serde_json::json!({ "source": source, "targetTags": self.target_tags, "mode": self.mode })
    }
}

/// An import's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportState {
    Done,
    Running {
        location: String,
        retry_after: Option<Duration>,
    },
}

impl AzureClient {
    /// Starts an import into `registry`. Needs
    /// `Microsoft.ContainerRegistry/registries/importImage/action` on it.
    pub async fn import_image(
        &self,
        ctx: &CallContext,
        registry: &RegistryId,
        request: &ImportRequest<'_>,
    ) -> Result<ImportState, AzureError> {
        let mut segments = registry.as_resource_id().segments();
        segments.push("importImage".into());
        let url = self.arm_url(&segments, &self.inner.api.registries, None);
        let resp = self
            .arm(ctx, "import_image", Method::POST, url, Some(&request.body()))
            .await?;
        match resp.status {
            200 | 204 => Ok(ImportState::Done),
            202 => {
                let location = resp.header("location").ok_or_else(|| {
                    AzureError::new(
                        "import_image",
                        ErrorKind::Decode,
                        "ACR accepted the import without a Location header",
                    )
                })?;
                self.next_link(Service::Arm, "import_image", &location)?;
                Ok(ImportState::Running {
                    location,
                    retry_after: resp.retry_after(),
                })
            }
            _ => Err(resp.into_error()),
        }
    }

    /// Polls an import's location (which must be on the configured ARM endpoint).
    pub async fn import_status(&self, ctx: &CallContext, location: &str) -> Result<ImportState, AzureError> {
        let url = self.next_link(Service::Arm, "import_status", location)?;
        let resp = self.arm(ctx, "import_status", Method::GET, url, None).await?;
        match resp.status {
            200 | 204 => Ok(ImportState::Done),
            202 => Ok(ImportState::Running {
                location: resp.header("location").unwrap_or_else(|| location.to_string()),
                retry_after: resp.retry_after(),
            }),
            _ => Err(resp.into_error()),
        }
    }
}
