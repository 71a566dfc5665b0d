//! `/v1/attachments` and `/v1/detachments`: let a cluster pull from a registry, or stop it.
//! Both answer 202 with the job that does the Azure work (or 200 with an identical unfinished
//! job, or with the first answer for a repeated Idempotency-Key).
use axum::Json;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::AppState;
use super::error::{ApiError, ApiResult, ErrorResponse};
use super::extract::{IdempotencyKey, JsonBody, QueryParams};
use super::jobs::{JobView, submit};
use crate::attachments::Attachment;
use crate::azure::ClusterId;
use crate::ops::{ATTACH, DETACH, PairArgs, RegistryRef};

const EXAMPLE_CLUSTER: &str = "/subscriptions/11111111-1111-4111-8111-111111111111/resourceGroups/rg-aks-demo/providers/Microsoft.ContainerService/managedClusters/aks-demo";

const EXAMPLE_GROUP: &str = "9a0b0000-0000-4000-8000-000000000001";

/// A cluster and a registry, and optionally the Entra group to grant through.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PairRequest {
    /// ARM resource id of the AKS managed cluster.
    #[schema(example = json!(EXAMPLE_CLUSTER))]
    pub cluster: String,
    /// ARM resource id of the container registry (any subscription of the tenant), or its bare
    /// name (searched in the subscriptions acr-attach is configured with).
    #[schema(example = "acrdemo")]
    pub registry: String,
    /// Object id of an Entra security group: grant the pull role to the group and make the
    /// kubelet identity a member, instead of granting the identity directly. The job then waits
    /// (for hours if need be) until ARM shows the grant reaching the identity; see docs/groups.md.
    #[schema(example = json!(EXAMPLE_GROUP))]
    pub group: Option<String>,
}

impl PairRequest {
    fn parse(&self) -> ApiResult<PairArgs> {
        pair(&self.cluster, &self.registry, self.group.as_deref())
    }
}

/// A cluster and a registry to detach, optionally undoing an attach through a group.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DetachRequest {
    /// ARM resource id of the AKS managed cluster.
    #[schema(example = json!(EXAMPLE_CLUSTER))]
    pub cluster: String,
    /// ARM resource id of the container registry, or its bare name.
    #[schema(example = "acrdemo")]
    pub registry: String,
    /// The Entra group the pair was attached through: remove the kubelet identity from it, but
    /// only if acr-attach added it and no other attachment through the group needs it.
    #[schema(example = json!(EXAMPLE_GROUP))]
    pub group: Option<String>,
    /// With `group`: also delete the group's own pull grant on the registry (every member of the
    /// group loses it). Default false.
    #[serde(default)]
    pub remove_group_grant: bool,
}

impl DetachRequest {
    fn parse(&self) -> ApiResult<PairArgs> {
        let mut args = pair(&self.cluster, &self.registry, self.group.as_deref())?;
        if self.remove_group_grant && args.group.is_none() {
            return Err(ApiError::bad_request(
                "GroupRequired",
                "removeGroupGrant deletes a group's grant: give the group too",
            )
            .with_target("removeGroupGrant"));
        }
        args.remove_group_grant = self.remove_group_grant;
        Ok(args)
    }
}

fn pair(cluster: &str, registry: &str, group: Option<&str>) -> ApiResult<PairArgs> {
    let cluster: ClusterId = cluster.trim().parse().map_err(|e: crate::azure::IdError| {
        ApiError::bad_request("InvalidClusterId", e.to_string()).with_target("cluster")
    })?;
    let registry: RegistryRef = registry.parse().map_err(|e: crate::azure::IdError| {
        ApiError::bad_request("InvalidRegistry", e.to_string()).with_target("registry")
    })?;
    let group = group.map(|g| parse_group(g, "group")).transpose()?;
    Ok(PairArgs {
        cluster,
        registry,
        group,
        remove_group_grant: false,
    })
}

/// An Entra group object id: a GUID (display names are not unique, so they are not accepted).
pub fn parse_group(raw: &str, target: &str) -> ApiResult<Uuid> {
    let t = raw.trim();
    Uuid::try_parse(t).ok().filter(|_| t.len() == 36).ok_or_else(|| {
        ApiError::bad_request(
            "InvalidGroupId",
            format!(
                "'{raw}' is not an Entra group object id (a GUID like {EXAMPLE_GROUP}); display names are not accepted"
            ),
        )
        .with_target(target)
    })
}

/// Attach: grant the cluster's kubelet identity pull access to the registry (AcrPull, or
/// Container Registry Repository Reader for ABAC-mode registries). Runs as a job. With `group`,
/// the grant goes to that Entra group and the kubelet identity is made a member; the job
/// succeeds once ARM shows the grant reaching the identity (its result says what may still lag).
#[utoipa::path(post, path = "/v1/attachments", tag = "attachments", request_body = PairRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes the request safely repeatable")),
    responses(
        (status = 202, body = JobView, description = "Accepted: poll the job at Operation-Location"),
        (status = 200, body = JobView, description = "An identical request is already queued or running: that job"),
        (status = "4XX", body = ErrorResponse)))]
pub async fn attach(
    State(state): State<AppState>,
    IdempotencyKey(key): IdempotencyKey,
    body: JsonBody<PairRequest>,
) -> ApiResult<Response> {
    let args = body.value.parse()?;
    let job = state.ops.new_job(ATTACH, &args);
    submit(&state, "POST /v1/attachments", "/v1/attachments", key, &body.raw, job).await
}

/// Detach: remove the pull grants of the cluster's kubelet identity at the registry (the one
/// acr-attach made and any other made exactly at the registry, e.g. by the Azure CLI). Grants
/// inherited from a resource group or subscription, or through groups, are reported, not deleted.
/// With `group`: remove the membership acr-attach added (never one that existed before) and keep
/// the group's grant unless `removeGroupGrant` is true.
#[utoipa::path(post, path = "/v1/detachments", tag = "attachments", request_body = DetachRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes the request safely repeatable")),
    responses(
        (status = 202, body = JobView, description = "Accepted: poll the job at Operation-Location"),
        (status = 200, body = JobView, description = "An identical request is already queued or running: that job"),
        (status = "4XX", body = ErrorResponse)))]
pub async fn detach(
    State(state): State<AppState>,
    IdempotencyKey(key): IdempotencyKey,
    body: JsonBody<DetachRequest>,
) -> ApiResult<Response> {
    let args = body.value.parse()?;
    let job = state.ops.new_job(DETACH, &args);
    submit(&state, "POST /v1/detachments", "/v1/detachments", key, &body.raw, job).await
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AttachmentParams {
    /// Only this cluster (ARM id).
    pub cluster: Option<String>,
    /// Only this registry (ARM id or name).
    pub registry: Option<String>,
    /// At most this many (1 to 500, default 100).
    pub limit: Option<i64>,
}

#[derive(Debug, serde::Serialize, ToSchema)]
pub struct AttachmentList {
    pub value: Vec<Attachment>,
}

/// The attachments acr-attach knows, with the state Azure last confirmed.
#[utoipa::path(get, path = "/v1/attachments", tag = "attachments", params(AttachmentParams),
    responses((status = 200, body = AttachmentList), (status = "4XX", body = ErrorResponse)))]
pub async fn list_attachments(
    State(state): State<AppState>,
    QueryParams(p): QueryParams<AttachmentParams>,
) -> ApiResult<Json<AttachmentList>> {
    let limit = p.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(
            ApiError::bad_request("InvalidQueryParameter", "limit must be between 1 and 500").with_target("limit"),
        );
    }
    let cluster = p
        .cluster
        .as_deref()
        .map(|c| c.trim().parse::<ClusterId>().map(|c| c.lower_key()))
        .transpose()
        .map_err(|e| ApiError::bad_request("InvalidClusterId", e.to_string()).with_target("cluster"))?;
    let registry = p
        .registry
        .as_deref()
        .map(|r| {
            r.parse::<RegistryRef>().map(|r| match r {
                RegistryRef::Id(id) => id.lower_key(),
                RegistryRef::Name(n) => n.as_str().to_ascii_lowercase(),
            })
        })
        .transpose()
        .map_err(|e| ApiError::bad_request("InvalidRegistry", e.to_string()).with_target("registry"))?;
    let value = state
        .attachments
        .list(cluster.as_deref(), registry.as_deref(), limit)
        .await?;
    Ok(Json(AttachmentList { value }))
}
