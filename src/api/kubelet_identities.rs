//! `/v1/kubelet-identities`: prepare a user-assigned identity to be a cluster's kubelet identity
//! before the cluster exists (the AKS-documented way to use group-based pull grants without the
//! hours-long token-cache delay). Answers 202 with the job, like the other POSTs.
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

use super::AppState;
use super::attachments::parse_group;
use super::error::{ApiError, ApiResult, ErrorResponse};
use super::extract::{IdempotencyKey, JsonBody};
use super::jobs::{JobView, submit};
use crate::azure::UserAssignedIdentityId;
use crate::ops::{KubeletIdentityArgs, RegistryRef};

const MAX_GROUPS: usize = 20;
const MAX_REGISTRIES: usize = 20;

/// A user-assigned identity to create (or adopt) and prepare as a kubelet identity.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KubeletIdentityRequest {
    /// ARM resource id of the user-assigned managed identity. Created if it does not exist,
    /// adopted (kept as is) if it does.
    #[schema(
        example = "/subscriptions/11111111-1111-4111-8111-111111111111/resourceGroups/rg-aks-demo/providers/Microsoft.ManagedIdentity/userAssignedIdentities/aks-next-kubelet"
    )]
    pub identity: String,
    /// Region to create the identity in; needed only when it does not exist yet.
    #[schema(example = "westeurope")]
    pub location: Option<String>,
    /// Entra security groups (object ids, at most 20) to add the identity to.
    #[serde(default)]
    #[schema(example = json!(["9a0b0000-0000-4000-8000-000000000001"]))]
    pub groups: Vec<String>,
    /// Registries (ARM ids or bare names, at most 20) to grant the identity pull on directly.
    #[serde(default)]
    #[schema(example = json!(["acrdemo"]))]
    pub registries: Vec<String>,
    /// Tags for the identity. Given: they replace its tags; absent: an existing identity's tags
    /// are left alone.
    pub tags: Option<BTreeMap<String, String>>,
}

impl KubeletIdentityRequest {
    fn parse(&self) -> ApiResult<KubeletIdentityArgs> {
        let identity: UserAssignedIdentityId = self.identity.trim().parse().map_err(|e: crate::azure::IdError| {
            ApiError::bad_request("InvalidIdentityId", e.to_string()).with_target("identity")
        })?;
        let location = self.location.as_deref().map(str::trim).map(|l| {
            if !l.is_empty() && l.len() <= 64 && l.chars().all(|c| c.is_ascii_alphanumeric() || c == ' ') {
                Ok(l.to_string())
            } else {
                Err(ApiError::bad_request(
                    "InvalidLocation",
                    format!("'{l}' is not an Azure region name like westeurope"),
                )
                .with_target("location"))
            }
        });
        let location = location.transpose()?;
        if self.groups.len() > MAX_GROUPS {
            return Err(
                ApiError::bad_request("TooManyGroups", format!("at most {MAX_GROUPS} groups per request"))
                    .with_target("groups"),
            );
        }
        if self.registries.len() > MAX_REGISTRIES {
            return Err(ApiError::bad_request(
                "TooManyRegistries",
                format!("at most {MAX_REGISTRIES} registries per request"),
            )
            .with_target("registries"));
        }
        let mut groups = Vec::new();
        for (i, g) in self.groups.iter().enumerate() {
            let g = parse_group(g, &format!("groups[{i}]"))?;
            if !groups.contains(&g) {
                groups.push(g);
            }
        }
        let mut registries: Vec<RegistryRef> = Vec::new();
        for (i, r) in self.registries.iter().enumerate() {
            let r: RegistryRef = r.parse().map_err(|e: crate::azure::IdError| {
                ApiError::bad_request("InvalidRegistry", e.to_string()).with_target(format!("registries[{i}]"))
            })?;
            let key = |r: &RegistryRef| r.name().to_ascii_lowercase();
            if !registries.iter().any(|x| key(x) == key(&r)) {
                registries.push(r);
            }
        }
        if let Some(tags) = &self.tags {
            validate_tags(tags)?;
        }
        Ok(KubeletIdentityArgs {
            identity,
            location,
            groups,
            registries,
            tags: self.tags.clone(),
        })
    }
}

/// ARM's tag rules, checked before anything is queued.
fn validate_tags(tags: &BTreeMap<String, String>) -> ApiResult<()> {
    if tags.len() > 50 {
        return Err(ApiError::bad_request("InvalidTags", "at most 50 tags").with_target("tags"));
    }
    for (k, v) in tags {
        let bad_key = k.is_empty() || k.chars().count() > 512 || k.contains(['<', '>', '%', '&', '\\', '?', '/']);
        if bad_key || v.chars().count() > 256 {
            return Err(ApiError::bad_request(
                "InvalidTags",
                format!(
                    "tag '{k}': names are 1 to 512 characters without < > % & \\ ? /, values at most 256 characters"
                ),
            )
            .with_target(format!("tags.{k}")));
        }
    }
    Ok(())
}

/// Prepare a kubelet identity: create (or adopt) the user-assigned identity, add it to the given
/// groups, grant it pull on the given registries, and wait until Microsoft Graph and ARM show
/// the memberships and grants. The result has what `az aks create --assign-kubelet-identity`
/// needs, and the Managed Identity Operator requirement of the control-plane identity.
#[utoipa::path(post, path = "/v1/kubelet-identities", tag = "kubelet identities", request_body = KubeletIdentityRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes the request safely repeatable")),
    responses(
        (status = 202, body = JobView, description = "Accepted: poll the job at Operation-Location"),
        (status = 200, body = JobView, description = "An identical request is already queued or running: that job"),
        (status = "4XX", body = ErrorResponse)))]
pub async fn prepare(
    State(state): State<AppState>,
    IdempotencyKey(key): IdempotencyKey,
    body: JsonBody<KubeletIdentityRequest>,
) -> ApiResult<Response> {
    let args = body.value.parse()?;
    let job = state.ops.new_identity_job(&args);
    submit(
        &state,
        "POST /v1/kubelet-identities",
        "/v1/kubelet-identities",
        key,
        &body.raw,
        job,
    )
    .await
}
