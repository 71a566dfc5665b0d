//! `/v1/kubelet-identities`: prepare a user-assigned identity to be a cluster's kubelet identity
//! before the cluster exists (the AKS-documented way to use group-based pull grants without the
//! hours-long token-cache delay). Answers 202 with the job, like the other POSTs.
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeMap;
use utoipa::ToSchema;

use super::AppState;
use super::access::Access;
use super::error::{ApiError, ApiResult, ErrorResponse, clip, quote};
use super::extract::{
    EXAMPLE_GROUP, EXAMPLE_IDENTITY, GroupIdSchema, IdempotencyKey, IdentityIdSchema, JsonBody, NO_CONTROL_PATTERN,
    RegistryRefSchema, parse_group, parse_identity, parse_registry,
};
use super::jobs::{JobView, submit};
use super::policy::{Action, Ask};
use crate::domain::{KubeletIdentityArgs, RegistryRef};

const MAX_GROUPS: usize = 20;
const MAX_REGISTRIES: usize = 20;
const MAX_TAGS: usize = 50;
const MAX_TAG_NAME: usize = 512;
const MAX_TAG_VALUE: usize = 256;
const MAX_LOCATION: usize = 64;
/// What a tag name may not contain (ARM's rule), besides control characters.
const TAG_NAME_FORBIDDEN: [char; 7] = ['<', '>', '%', '&', '\\', '?', '/'];

/// A user-assigned identity to create (or adopt) and prepare as a kubelet identity.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "identity": EXAMPLE_IDENTITY,
    "location": "westeurope",
    "groups": [EXAMPLE_GROUP],
    "registries": ["acrdemo"],
}))]
pub struct KubeletIdentityRequest {
    /// ARM resource id of the user-assigned managed identity. Created if it does not exist,
    /// adopted (kept as is) if it does.
    #[schema(value_type = IdentityIdSchema)]
    pub identity: String,
    /// Region to create the identity in (letters, digits and spaces, e.g. westeurope); needed
    /// only when it does not exist yet.
    #[schema(max_length = 64, pattern = "^[A-Za-z0-9 ]*[A-Za-z0-9][A-Za-z0-9 ]*$")]
    pub location: Option<String>,
    /// Entra security groups (object ids, at most 20) to add the identity to.
    #[serde(default)]
    #[schema(value_type = Vec<GroupIdSchema>, max_items = 20)]
    pub groups: Vec<String>,
    /// Registries (ARM ids or bare names, at most 20) to grant the identity pull on directly.
    #[serde(default)]
    #[schema(value_type = Vec<RegistryRefSchema>, max_items = 20)]
    pub registries: Vec<String>,
    /// Tags for the identity. Given: they replace its tags; absent: an existing identity's tags
    /// are left alone.
    #[schema(schema_with = tags_schema)]
    pub tags: Option<BTreeMap<String, String>>,
}

/// ARM's tag rules as a schema: at most 50; names 1-512 characters without `< > % & \ ? /`,
/// values at most 256 characters; no control characters in either.
fn tags_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    let name = ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(MAX_TAG_NAME))
        .pattern(Some("^[^<>%&\\\\?/\\u0000-\\u001F\\u007F-\\u009F]+$"));
    let value = ObjectBuilder::new()
        .schema_type(Type::String)
        .max_length(Some(MAX_TAG_VALUE))
        .pattern(Some(NO_CONTROL_PATTERN));
    ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            Type::Object,
            Type::Null,
        ]))
        .description(Some(
            "Tags for the identity (at most 50; names 1-512 characters without < > % & \\ ? /, values at most 256 \
             characters; no control characters). Given: they replace its tags; absent: an existing identity's tags \
             are left alone.",
        ))
        .max_properties(Some(MAX_TAGS))
        .property_names(Some(name))
        .additional_properties(Some(value))
        .build()
}

impl KubeletIdentityRequest {
    fn parse(&self) -> ApiResult<KubeletIdentityArgs> {
        let identity = parse_identity(&self.identity, "identity")?;
        let location = self.location.as_deref().map(|l| {
            // The schema's pattern: letters, digits and spaces, at least one letter or digit.
            let ok = l.len() <= MAX_LOCATION
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == ' ')
                && l.chars().any(|c| c.is_ascii_alphanumeric());
            if ok {
                Ok(l.trim().to_string())
            } else {
                Err(ApiError::bad_request(
                    "InvalidLocation",
                    format!("{} is not an Azure region name like westeurope", quote(l)),
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
            let r = parse_registry(r, &format!("registries[{i}]"))?;
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

/// ARM's tag rules, checked before anything is queued (control characters are refused for
/// every JSON string by the extractor).
fn validate_tags(tags: &BTreeMap<String, String>) -> ApiResult<()> {
    if tags.len() > MAX_TAGS {
        return Err(ApiError::bad_request("InvalidTags", format!("at most {MAX_TAGS} tags")).with_target("tags"));
    }
    for (k, v) in tags {
        let bad_key = k.is_empty() || k.chars().count() > MAX_TAG_NAME || k.contains(TAG_NAME_FORBIDDEN);
        if bad_key || v.chars().count() > MAX_TAG_VALUE {
            return Err(ApiError::bad_request(
                "InvalidTags",
                format!(
                    "tag {}: names are 1 to {MAX_TAG_NAME} characters without < > % & \\ ? /, values at most \
                     {MAX_TAG_VALUE} characters",
                    quote(k)
                ),
            )
            .with_target(format!("tags.{}", clip(k))));
        }
    }
    Ok(())
}

/// Prepare a kubelet identity: create (or adopt) the user-assigned identity, add it to the given
/// groups, grant it pull on the given registries, and wait until Microsoft Graph and ARM show
/// the memberships and grants. The result has what `az aks create --assign-kubelet-identity`
/// needs, and the Managed Identity Operator requirement of the control-plane identity.
#[utoipa::path(post, path = "/v1/kubelet-identities", tag = "kubelet identities", request_body = KubeletIdentityRequest,
    params(("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[ -~]*[!-~][ -~]*$",
        description = "Makes the request safely repeatable: 1 to 255 printable ASCII characters (a UUID is a good choice)")),
    responses(
        (status = 202, body = JobView, description = "Accepted: poll the job at Operation-Location"),
        (status = 200, body = JobView, description = "An identical request is already queued or running: that job"),
        (status = 413, body = ErrorResponse, description = "The body is larger than ACR_ATTACH_MAX_BODY_BYTES (default 64 KiB): \
            the field limits allow bodies larger than that (50 tags of 512 + 256 characters), the service does not"),
        (status = 415, body = ErrorResponse, description = "The body is not sent as Content-Type: application/json"),
        (status = 422, body = ErrorResponse, description = "The Idempotency-Key was already used for a different request"),
        (status = "4XX", body = ErrorResponse, description = "Refused: the error says why and about what"),
        (status = "5XX", body = ErrorResponse, description = "Unavailable for now (503: the database or the Entra keys), or an internal error (500)")))]
pub async fn prepare(
    State(state): State<AppState>,
    access: Access,
    IdempotencyKey(key): IdempotencyKey,
    body: JsonBody<KubeletIdentityRequest>,
) -> ApiResult<Response> {
    let args = match body.value.parse() {
        Ok(a) => a,
        Err(e) => return Err(access.refuse(&state, Action::PrepareKubeletIdentity, e).await),
    };
    let identity = args.identity.to_string();
    let ask = Ask::KubeletIdentity {
        identity: &identity,
        groups: &args.groups,
        registries: &args.registries,
    };
    let resources = json!({
        "identity": identity,
        "groups": args.groups,
        "registries": args.registries.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
    });
    let granted = access.authorize(&state, &ask, resources).await?;
    let job = state.ops.kubelet_identity_job(&args);
    submit(
        &state,
        &access,
        granted,
        "POST /v1/kubelet-identities",
        "/v1/kubelet-identities",
        key,
        &body.raw,
        job,
    )
    .await
}
