//! `/v1/attachments` and `/v1/detachments`: let a cluster pull from a registry, or stop it.
//! Both answer 202 with the job that does the Azure work (or 200 with an identical unfinished
//! job, or with the first answer for a repeated Idempotency-Key).
use axum::Json;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;
use std::borrow::Cow;
use utoipa::openapi::{RefOr, schema::Schema};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::access::Access;
use super::error::{ApiError, ApiResult, ErrorResponse};
use super::extract::{
    ClusterIdSchema, EXAMPLE_CLUSTER, GroupIdSchema, IdempotencyKey, JsonBody, QueryParams, RegistryRefSchema,
    parse_cluster, parse_group, parse_limit, parse_registry,
};
use super::jobs::{JobView, submit};
use super::policy::{Action, Ask};
use crate::attachments::Attachment;
use crate::domain::{PairArgs, RegistryRef};

/// A cluster and a registry, and optionally the Entra group to grant through.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({ "cluster": EXAMPLE_CLUSTER, "registry": "acrdemo" }))]
pub struct PairRequest {
    /// ARM resource id of the AKS managed cluster.
    #[schema(value_type = ClusterIdSchema)]
    pub cluster: String,
    /// ARM resource id of the container registry (any subscription of the tenant), or its bare
    /// name (searched in the subscriptions acr-attach is configured with).
    #[schema(value_type = RegistryRefSchema)]
    pub registry: String,
    /// Object id of an Entra security group: grant the pull role to the group and make the
    /// kubelet identity a member, instead of granting the identity directly. The job then waits
    /// (for hours if need be) until ARM shows the grant reaching the identity; see docs/groups.md.
    #[schema(value_type = Option<GroupIdSchema>)]
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
#[schema(as = DetachRequestFields)]
pub struct DetachRequest {
    /// ARM resource id of the AKS managed cluster.
    #[schema(value_type = ClusterIdSchema)]
    pub cluster: String,
    /// ARM resource id of the container registry, or its bare name.
    #[schema(value_type = RegistryRefSchema)]
    pub registry: String,
    /// The Entra group the pair was attached through: remove the kubelet identity from it, but
    /// only if acr-attach added it and no other attachment through the group needs it.
    #[schema(value_type = Option<GroupIdSchema>)]
    pub group: Option<String>,
    /// With `group`: also delete the group's own pull grant on the registry (every member of the
    /// group loses it). Default false; true needs `group`.
    #[serde(default)]
    pub remove_group_grant: bool,
}

/// The OpenAPI schema of [`DetachRequest`]: its fields, and the rule that `removeGroupGrant:
/// true` needs a `group` (which a field-by-field schema cannot say).
pub struct DetachRequestSchema;

impl utoipa::PartialSchema for DetachRequestSchema {
    // `example` (not `examples`): the one Swagger UI fills "Try it out" with, as for the other bodies.
    #[allow(deprecated)]
    fn schema() -> RefOr<Schema> {
        use utoipa::openapi::schema::{AllOfBuilder, AnyOfBuilder, ObjectBuilder, Type};
        let without_grant_removal = ObjectBuilder::new()
            .property(
                "removeGroupGrant",
                ObjectBuilder::new()
                    .schema_type(Type::Boolean)
                    .enum_values(Some([false])),
            )
            .description(Some("removeGroupGrant absent or false"));
        let with_group = ObjectBuilder::new()
            .required("group")
            .property("group", ObjectBuilder::new().schema_type(Type::String))
            .description(Some("a group is given"));
        AllOfBuilder::new()
            .item(<DetachRequest as utoipa::PartialSchema>::schema())
            .item(AnyOfBuilder::new().item(without_grant_removal).item(with_group))
            .description(Some(
                "A cluster and a registry to detach, optionally undoing an attach through a group \
                 (removeGroupGrant: true needs a group).",
            ))
            .example(Some(json!({ "cluster": EXAMPLE_CLUSTER, "registry": "acrdemo" })))
            .into()
    }
}

impl utoipa::ToSchema for DetachRequestSchema {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("DetachRequest")
    }
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        <DetachRequest as utoipa::ToSchema>::schemas(schemas);
    }
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
    Ok(PairArgs {
        cluster: parse_cluster(cluster, "cluster")?,
        registry: parse_registry(registry, "registry")?,
        group: group.map(|g| parse_group(g, "group")).transpose()?,
        remove_group_grant: false,
    })
}

/// Attach: grant the cluster's kubelet identity pull access to the registry (AcrPull, or
/// Container Registry Repository Reader for ABAC-mode registries). Runs as a job. With `group`,
/// the grant goes to that Entra group and the kubelet identity is made a member; the job
/// succeeds once ARM shows the grant reaching the identity (its result says what may still lag).
#[utoipa::path(post, path = "/v1/attachments", tag = "attachments", request_body = PairRequest,
    params(("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[ -~]*[!-~][ -~]*$",
        description = "Makes the request safely repeatable: 1 to 255 printable ASCII characters (a UUID is a good choice)")),
    responses(
        (status = 202, body = JobView, description = "Accepted: poll the job at Operation-Location"),
        (status = 200, body = JobView, description = "An identical request is already queued or running: that job"),
        (status = 413, body = ErrorResponse, description = "The body is larger than ACR_ATTACH_MAX_BODY_BYTES (default 64 KiB)"),
        (status = 415, body = ErrorResponse, description = "The body is not sent as Content-Type: application/json"),
        (status = 422, body = ErrorResponse, description = "The Idempotency-Key was already used for a different request"),
        (status = "4XX", body = ErrorResponse, description = "Refused: the error says why and about what"),
        (status = "5XX", body = ErrorResponse, description = "Unavailable for now (503: the database or the Entra keys), or an internal error (500)")))]
pub async fn attach(
    State(state): State<AppState>,
    access: Access,
    IdempotencyKey(key): IdempotencyKey,
    body: JsonBody<PairRequest>,
) -> ApiResult<Response> {
    let args = body.value.parse();
    pair_job(&state, &access, Action::Attach, args, key, &body.raw).await
}

/// An attach or detach request: refused (and audited) if invalid or not allowed by the
/// policy, else its job is enqueued.
async fn pair_job(
    state: &AppState,
    access: &Access,
    action: Action,
    args: ApiResult<PairArgs>,
    key: Option<String>,
    raw_body: &[u8],
) -> ApiResult<Response> {
    let args = match args {
        Ok(a) => a,
        Err(e) => return Err(access.refuse(state, action, e).await),
    };
    let cluster = args.cluster.to_string();
    let ask = Ask::Pair {
        action,
        cluster: &cluster,
        registry: &args.registry,
        group: args.group,
    };
    let resources = json!({ "cluster": cluster, "registry": args.registry.to_string(), "group": args.group });
    let granted = access.authorize(state, &ask, resources).await?;
    let (job, route) = match action {
        Action::Detach => (state.ops.detach_job(&args), "/v1/detachments"),
        _ => (state.ops.attach_job(&args), "/v1/attachments"),
    };
    submit(
        state,
        access,
        granted,
        &format!("POST {route}"),
        route,
        key,
        raw_body,
        job,
    )
    .await
}

/// Detach: remove the pull grants of the cluster's kubelet identity at the registry (the one
/// acr-attach made and any other made exactly at the registry, e.g. by the Azure CLI). Grants
/// inherited from a resource group or subscription, or through groups, are reported, not deleted.
/// With `group`: remove the membership acr-attach added (never one that existed before) and keep
/// the group's grant unless `removeGroupGrant` is true.
#[utoipa::path(post, path = "/v1/detachments", tag = "attachments", request_body = DetachRequestSchema,
    params(("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[ -~]*[!-~][ -~]*$",
        description = "Makes the request safely repeatable: 1 to 255 printable ASCII characters (a UUID is a good choice)")),
    responses(
        (status = 202, body = JobView, description = "Accepted: poll the job at Operation-Location"),
        (status = 200, body = JobView, description = "An identical request is already queued or running: that job"),
        (status = 413, body = ErrorResponse, description = "The body is larger than ACR_ATTACH_MAX_BODY_BYTES (default 64 KiB)"),
        (status = 415, body = ErrorResponse, description = "The body is not sent as Content-Type: application/json"),
        (status = 422, body = ErrorResponse, description = "The Idempotency-Key was already used for a different request"),
        (status = "4XX", body = ErrorResponse, description = "Refused: the error says why and about what"),
        (status = "5XX", body = ErrorResponse, description = "Unavailable for now (503: the database or the Entra keys), or an internal error (500)")))]
pub async fn detach(
    State(state): State<AppState>,
    access: Access,
    IdempotencyKey(key): IdempotencyKey,
    body: JsonBody<DetachRequest>,
) -> ApiResult<Response> {
    let args = body.value.parse();
    pair_job(&state, &access, Action::Detach, args, key, &body.raw).await
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AttachmentParams {
    /// Only this cluster (ARM id).
    #[param(value_type = Option<ClusterIdSchema>)]
    pub cluster: Option<String>,
    /// Only this registry (ARM id or name).
    #[param(value_type = Option<RegistryRefSchema>)]
    pub registry: Option<String>,
    /// Page size, 1 to 500 (default 100).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 500, default = 100)]
    pub limit: Option<String>,
    /// Continuation token from `nextLink`.
    #[param(pattern = "^[A-Za-z0-9_-]{1,2800}$")]
    pub cursor: Option<String>,
}

#[derive(Debug, serde::Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttachmentList {
    pub value: Vec<Attachment>,
    /// The next page, if there is one.
    pub next_link: Option<String>,
}

/// The attachments' page cursor: the last (cluster, registry) key of a page, opaque to clients.
fn encode_cursor(a: &Attachment) -> String {
    use base64::Engine;
    let key = serde_json::json!([a.cluster_key, a.registry_key]);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.to_string())
}

fn decode_cursor(raw: &str) -> ApiResult<(String, String)> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(raw)
        .ok()
        .and_then(|b| serde_json::from_slice::<(String, String)>(&b).ok())
        .ok_or_else(|| {
            ApiError::bad_request(
                "InvalidQueryParameter",
                "cursor is not one this service issued; use nextLink as given",
            )
            .with_target("cursor")
        })
}

/// The attachments acr-attach knows, with the state Azure last confirmed.
#[utoipa::path(get, path = "/v1/attachments", tag = "attachments", params(AttachmentParams),
    responses((status = 200, body = AttachmentList, description = "The attachments, by cluster then registry, paged by nextLink"), (status = "4XX", body = ErrorResponse, description = "Refused: the error says why and about what"),
        (status = "5XX", body = ErrorResponse, description = "Unavailable for now (503: the database or the Entra keys), or an internal error (500)")))]
pub async fn list_attachments(
    State(state): State<AppState>,
    access: Access,
    QueryParams(p): QueryParams<AttachmentParams>,
) -> ApiResult<Json<AttachmentList>> {
    access.check(&state, Action::Read)?;
    let limit = parse_limit(p.limit.as_deref(), 100, 500)?;
    let cluster = p
        .cluster
        .as_deref()
        .map(|c| parse_cluster(c, "cluster").map(|c| c.lower_key()))
        .transpose()?;
    let registry = p
        .registry
        .as_deref()
        .map(|r| {
            parse_registry(r, "registry").map(|r| match r {
                RegistryRef::Id(id) => id.lower_key(),
                RegistryRef::Name(n) => n.as_str().to_ascii_lowercase(),
            })
        })
        .transpose()?;
    let after = p.cursor.as_deref().map(decode_cursor).transpose()?;
    let mut value = state
        .attachments
        .list(cluster.as_deref(), registry.as_deref(), after.as_ref(), limit + 1)
        .await?;
    let next_link = (value.len() as i64 > limit).then(|| {
        value.truncate(limit as usize);
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [("cluster", &p.cluster), ("registry", &p.registry)] {
            if let Some(v) = v {
                q.append_pair(k, v);
            }
        }
        q.append_pair("limit", &limit.to_string());
        q.append_pair("cursor", &value.last().map(encode_cursor).unwrap_or_default());
        format!("/v1/attachments?{}", q.finish())
    });
    Ok(Json(AttachmentList { value, next_link }))
}
