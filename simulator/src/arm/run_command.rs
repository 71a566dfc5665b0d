//! AKS run-command, as AKS serves it: `POST .../managedClusters/{name}/runCommand` answers 202
//! with a `location` to `.../commandResults/{id}`, which answers 202 while the command runs
//! (`behaviour.runCommandSeconds`) and then 200 with a `RunCommandResult`.
//!
//! The only command the simulator "runs" is a probe pod (`kubectl run <pod> --image=<ref>`):
//! its outcome is decided from the world when the command finishes (`pulls.rs`) and printed
//! as kubelet would (`kubelet.rs`). Anything else succeeds with no output (`echo` echoes).
//! A probe that ran and failed is `provisioningState: succeeded` with `exitCode: 1`, as AKS
//! reports a command that ran; `failed` is for the command pod itself not running.

use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use super::errors::ArmError;
use super::image_ref::ImageRef;
use super::kubelet::{find_probe, node_name, probe_output};
use super::resources::{Kind, ResType, find_resource, locate};
use super::{Ctx, lro, pulls};
use crate::reply;
use crate::state::State;

const RUN_ACTION: &str = "Microsoft.ContainerService/managedClusters/runcommand/action";
const RESULT_ACTION: &str = "Microsoft.ContainerService/managedClusters/commandResults/read";

/// One run-command: what was asked, and once it finished, its exit code and output.
#[derive(Debug, Clone, PartialEq)]
pub struct RunCommand {
    /// The command id (32 hex digits, as AKS makes them).
    pub id: String,
    /// ARM id of the cluster it ran on.
    pub cluster_id: String,
    /// The command text as sent.
    pub command: String,
    /// When it was submitted.
    pub submitted_at: DateTime<Utc>,
    /// Its exit code, once finished.
    pub exit_code: Option<i32>,
    /// Its output, once finished.
    pub logs: Option<String>,
    pub(crate) location: (String, String, String),
    pub(crate) duration_secs: f64,
    pub(crate) ends_at_secs: f64,
}

fn cluster_path(sub: &str, rg: &str, name: &str) -> String {
    format!("/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ContainerService/managedClusters/{name}")
}

fn invalid_content(msg: &str) -> ArmError {
    ArmError::bad_request(
        "InvalidRequestContent",
        format!("The request content was invalid and could not be deserialized: '{msg}'."),
    )
}

/// The `command` of a `RunCommandRequest`, checked like AKS.
fn parse_command(raw: &[u8]) -> Result<String, ArmError> {
    let body: Value = serde_json::from_slice(raw).map_err(|e| invalid_content(&e.to_string()))?;
    let obj = body
        .as_object()
        .ok_or_else(|| invalid_content("The request body must be a RunCommandRequest object"))?;
    for k in ["context", "clusterToken"] {
        if obj.get(k).is_some_and(|v| !v.is_string() && !v.is_null()) {
            return Err(invalid_content(&format!("Property '{k}' must be a string")));
        }
    }
    match obj.get("command") {
        None | Some(Value::Null) => Err(invalid_content("Required property 'command' not found in JSON")),
        Some(Value::String(s)) if s.trim().is_empty() => Err(ArmError::bad_request(
            "InvalidParameter",
            "The value of parameter command is invalid: the command must not be empty.",
        )),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(invalid_content("Property 'command' must be a string")),
    }
}

/// `POST .../managedClusters/{name}/runCommand`.
pub(crate) fn submit(ctx: &Ctx<'_>, st: &mut State, sub: &str, rg: &str, name: &str) -> Result<Response, ArmError> {
    let r = locate(ctx, &st.world, (sub, rg, name), ResType::Cluster, RUN_ACTION)?;
    let Kind::Cluster(c) = r.kind else {
        unreachable!("cluster lookup returns clusters")
    };
    let command = parse_command(ctx.body)?;
    if c.disable_run_command {
        return Err(ArmError::bad_request(
            "OperationNotAllowed",
            format!(
                "Run command is disabled for managed cluster '{}' (properties.apiServerAccessProfile.disableRunCommand is true).",
                c.name
            ),
        ));
    }
    let now = ctx.shared.elapsed_secs();
    if c.ready_after_seconds.is_some_and(|s| now < s) {
        return Err(ArmError::new(
            StatusCode::CONFLICT,
            "OperationNotAllowed",
            format!(
                "Operation is not allowed because the managed cluster '{}' is in provisioning state 'Creating'. Please retry once it has succeeded.",
                c.name
            ),
        ));
    }
    let duration = st.world.behaviour.run_command_seconds.max(0.0);
    let run = RunCommand {
        id: Uuid::new_v4().simple().to_string(),
        cluster_id: r.id(),
        command,
        submitted_at: Utc::now(),
        exit_code: None,
        logs: None,
        location: (r.sub.subscription_id.clone(), r.rg.name.clone(), c.name.clone()),
        duration_secs: duration,
        ends_at_secs: now + duration,
    };
    let location = result_url(ctx, &run);
    lro::finish_at(ctx.shared, run.ends_at_secs, finish_due);
    st.run_commands.push(run);
    Ok(lro::accepted(&location, duration))
}

fn result_url(ctx: &Ctx<'_>, run: &RunCommand) -> String {
    format!(
        "{}{}/commandResults/{}?api-version={}",
        ctx.shared.base_url, run.cluster_id, run.id, ctx.api_version
    )
}

/// `GET .../managedClusters/{name}/commandResults/{id}`.
pub(crate) fn result(
    ctx: &Ctx<'_>,
    st: &mut State,
    (sub, rg, name): (&str, &str, &str),
    id: &str,
) -> Result<Response, ArmError> {
    let cluster_id = locate(ctx, &st.world, (sub, rg, name), ResType::Cluster, RESULT_ACTION)?.id();
    let now = ctx.shared.elapsed_secs();
    finish_due(st, now);
    let run = st
        .run_commands
        .iter()
        .find(|r| r.id.eq_ignore_ascii_case(id) && r.cluster_id.eq_ignore_ascii_case(&cluster_id))
        .ok_or_else(|| {
            ArmError::not_found(
                "NotFound",
                format!(
                    "Command result '{id}' was not found for managed cluster '{}'.",
                    cluster_path(sub, rg, name)
                ),
            )
        })?;
    let (Some(code), Some(logs)) = (run.exit_code, &run.logs) else {
        return Ok(lro::accepted(&result_url(ctx, run), run.ends_at_secs - now));
    };
    let took = chrono::Duration::milliseconds((run.duration_secs * 1000.0) as i64);
    let ts = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
    let body = json!({
        "id": run.id,
        "properties": {
            "provisioningState": "succeeded",
            "exitCode": code,
            "startedAt": ts(run.submitted_at),
            "finishedAt": ts(run.submitted_at + took),
            "logs": logs,
        }
    });
    Ok(reply::json(StatusCode::OK, &body))
}

/// Finishes every command whose time is up, deciding its outcome from the world now.
pub(crate) fn finish_due(st: &mut State, now: f64) {
    let due: Vec<usize> = (0..st.run_commands.len())
        .filter(|&i| st.run_commands[i].exit_code.is_none() && now >= st.run_commands[i].ends_at_secs)
        .collect();
    for i in due {
        let (code, logs) = outcome(st, &st.run_commands[i]);
        let run = &mut st.run_commands[i];
        run.exit_code = Some(code);
        run.logs = Some(logs);
    }
}

fn outcome(st: &State, run: &RunCommand) -> (i32, String) {
    let Some(probe) = find_probe(&run.command) else {
        let echoed = run
            .command
            .trim()
            .strip_prefix("echo ")
            .map(|s| format!("{}\n", s.trim().trim_matches(|c| c == '"' || c == '\'')));
        return (0, echoed.unwrap_or_default());
    };
    let (sub, rg, name) = &run.location;
    let Some(Kind::Cluster(cluster)) = find_resource(&st.world, sub, rg, ResType::Cluster, name).map(|r| r.kind) else {
        return (
            1,
            format!(
                "error: the server could not find the requested resource (post pods {})\n",
                probe.pod
            ),
        );
    };
    let image = ImageRef::parse(&probe.image);
    let pull = image.as_ref().map(|i| pulls::decide(st, cluster, i));
    probe_output(&probe, image.as_ref(), pull.as_ref(), &node_name(&run.cluster_id))
}
