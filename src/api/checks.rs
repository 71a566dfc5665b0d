//! `/v1/checks`: can this cluster pull from this registry, and if not, why and how to fix it.
//! Answers 202 with the `check` job; its result holds the verdict and the findings.
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use super::AppState;
use super::access::Access;
use super::error::{ApiError, ApiResult, ErrorResponse};
use super::extract::{
    ClusterIdSchema, EXAMPLE_CLUSTER, IdempotencyKey, JsonBody, RegistryRefSchema, parse_cluster, parse_registry,
};
use super::jobs::{JobView, submit};
use super::policy::{Action, Ask};
use crate::domain::{CheckArgs, valid_image};

/// A cluster and a registry to check, and whether to probe from inside the cluster.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({ "cluster": EXAMPLE_CLUSTER, "registry": "acrdemo" }))]
pub struct CheckRequest {
    /// ARM resource id of the AKS managed cluster.
    #[schema(value_type = ClusterIdSchema)]
    pub cluster: String,
    /// ARM resource id of the container registry, or its bare name.
    #[schema(value_type = RegistryRefSchema)]
    pub registry: String,
    /// Also try a real pull: a short-lived pod in the cluster pulls `image` through AKS
    /// run-command (needs the `probe` action in the policy, and acr-attach's identity needs
    /// `Microsoft.ContainerService/managedClusters/runcommand/action` on the cluster).
    #[serde(default)]
    pub probe: bool,
    /// With `probe`: the image to pull, as `repository:tag` or `repository@sha256:digest` in
    /// the registry (no host: the registry's login server is used).
    #[schema(
        pattern = r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[a-f0-9]{64})$",
        max_length = 512
    )]
    pub image: Option<String>,
}

impl CheckRequest {
    fn parse(&self) -> ApiResult<CheckArgs> {
        let image = match (&self.image, self.probe) {
            (Some(_), false) => {
                return Err(ApiError::bad_request(
                    "ProbeRequired",
                    "an image is pulled only by a probe: set \"probe\": true",
                )
                .with_target("image"));
            }
            (Some(i), true) if !valid_image(i) => {
                return Err(ApiError::bad_request(
                    "InvalidImage",
                    "image must be repository:tag or repository@sha256:<64 hex digits>, lower-case repository path, no registry host",
                )
                .with_target("image"));
            }
            (image, _) => image.clone(),
        };
        Ok(CheckArgs {
            cluster: parse_cluster(&self.cluster, "cluster")?,
            registry: parse_registry(&self.registry, "registry")?,
            probe: self.probe,
            image,
        })
    }
}

/// Check: can the cluster's kubelet identity pull from the registry? Reads the cluster, the
/// registry and every role assignment reaching the identity (directly, inherited, through
/// groups), and reports a verdict with findings, each with evidence and a fix. With `probe`,
/// a pod in the cluster also tries the pull (AKS run-command). Runs as a job, after any
/// attach or detach of the same pair queued before it.
#[utoipa::path(post, path = "/v1/checks", tag = "checks", request_body = CheckRequest,
    params(("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[ -~]*[!-~][ -~]*$",
        description = "Makes the request safely repeatable: 1 to 255 printable ASCII characters (a UUID is a good choice)")),
    responses(
        (status = 202, body = JobView, description = "Accepted: poll the job at Operation-Location; its result is a CheckResult"),
        (status = 200, body = JobView, description = "An identical check is already queued or running: that job"),
        (status = 413, body = ErrorResponse, description = "The body is larger than ACR_ATTACH_MAX_BODY_BYTES (default 64 KiB)"),
        (status = 415, body = ErrorResponse, description = "The body is not sent as Content-Type: application/json"),
        (status = 422, body = ErrorResponse, description = "The Idempotency-Key was already used for a different request"),
        (status = "4XX", body = ErrorResponse, description = "Refused: the error says why and about what"),
        (status = "5XX", body = ErrorResponse, description = "Unavailable for now (503: the database or the Entra keys), or an internal error (500)")))]
pub async fn check(
    State(state): State<AppState>,
    access: Access,
    IdempotencyKey(key): IdempotencyKey,
    body: JsonBody<CheckRequest>,
) -> ApiResult<Response> {
    let action = if body.value.probe { Action::Probe } else { Action::Check };
    let args = match body.value.parse() {
        Ok(a) => a,
        Err(e) => return Err(access.refuse(&state, action, e).await),
    };
    let cluster = args.cluster.to_string();
    let ask = Ask::Pair {
        action,
        cluster: &cluster,
        registry: &args.registry,
        group: None,
    };
    let resources =
        json!({ "cluster": cluster, "registry": args.registry.to_string(), "probe": args.probe, "image": args.image });
    let granted = access.authorize(&state, &ask, resources).await?;
    let job = state.ops.check_job(&args);
    submit(
        &state,
        &access,
        granted,
        "POST /v1/checks",
        "/v1/checks",
        key,
        &body.raw,
        job,
    )
    .await
}
