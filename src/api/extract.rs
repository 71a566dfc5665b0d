//! Extractors that turn every kind of bad input into a precise 4xx in the one error shape, and
//! the parsers and OpenAPI schemas of the inputs the handlers share (ARM ids, group ids).
//!
//! Control characters (U+0000 to U+001F, U+007F to U+009F) are refused here, once, wherever
//! input enters: JSON strings and keys ([`JsonBody`]), query parameters ([`QueryParams`]), the
//! job id in the path ([`JobIdPath`]) and the `Idempotency-Key` header ([`IdempotencyKey`]).
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::{StatusCode, header, request::Parts};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::borrow::Cow;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
use uuid::Uuid;

use super::error::{ApiError, ApiResult, bound_quotes, quote};
use crate::domain::RegistryRef;
use crate::domain::{ClusterId, IdError, RegistryId, UserAssignedIdentityId};

/// A JSON body: `Content-Type: application/json`, within the size limit, well-formed, matching
/// the schema exactly (request types deny unknown fields), and free of control characters.
pub struct JsonBody<T> {
    pub value: T,
    /// The raw body, for the idempotency request hash.
    pub raw: Bytes,
}

/// `application/json`, in any letter case, with optional parameters; a `charset` must be UTF-8
/// (JSON is UTF-8). Other types, `+json` suffixes included, are not JSON to this service.
fn is_json(content_type: &str) -> bool {
    let mut parts = content_type.split(';');
    if !parts
        .next()
        .unwrap_or("")
        .trim()
        .eq_ignore_ascii_case("application/json")
    {
        return false;
    }
    parts
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .all(|p| match p.split_once('=') {
            Some((name, value)) => {
                let value = value.trim().trim_matches('"');
                !name.trim().eq_ignore_ascii_case("charset")
                    || value.eq_ignore_ascii_case("utf-8")
                    || value.eq_ignore_ascii_case("utf8")
            }
            None => false,
        })
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let ct = req
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()));
        if !ct.as_deref().is_some_and(is_json) {
            let got = match ct.as_deref() {
                None | Some("") => "no Content-Type".to_string(),
                Some(ct) => format!("Content-Type {}", quote(ct)),
            };
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UnsupportedMediaType",
                format!(
                    "the request has {got}; send a JSON body with Content-Type: application/json (optionally ; charset=utf-8)"
                ),
            )
            .with_target("Content-Type"));
        }
        let raw = Bytes::from_request(req, state).await.map_err(|rej| {
            if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "RequestBodyTooLarge",
                    "the request body is larger than the service accepts (ACR_ATTACH_MAX_BODY_BYTES)",
                )
            } else {
                ApiError::bad_request(
                    "InvalidRequestContent",
                    format!("the request body could not be read: {}", bound_quotes(&rej.body_text())),
                )
            }
        })?;
        if raw.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::bad_request(
                "InvalidRequestContent",
                "the request body is empty; expected a JSON object",
            ));
        }
        let de = &mut serde_json::Deserializer::from_slice(&raw);
        let value: T = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let what = if inner.is_syntax() || inner.is_eof() {
                "is not valid JSON"
            } else {
                "does not match the schema"
            };
            let err = ApiError::bad_request(
                "InvalidRequestContent",
                format!("the request body {what}: {}", bound_quotes(&inner.to_string())),
            );
            if path == "." { err } else { err.with_target(path) }
        })?;
        // Well-formed and of the right shape: now no string in it may carry a control character
        // (PostgreSQL refuses NUL, and none has a meaning in any field).
        if let Ok(tree) = serde_json::from_slice::<Value>(&raw) {
            refuse_controls_in_json(&tree, "")?;
        }
        Ok(JsonBody { value, raw })
    }
}

/// The first control character of `s` (U+0000 to U+001F, U+007F to U+009F) and its position,
/// counted in characters.
pub fn find_control(s: &str) -> Option<(usize, char)> {
    s.chars().enumerate().find(|(_, c)| c.is_control())
}

fn control_error(code: &str, what: &str, target: &str, (pos, c): (usize, char)) -> ApiError {
    ApiError::bad_request(
        code,
        format!(
            "{what} contains the control character U+{:04X} at position {pos}; control characters \
             (U+0000 to U+001F, U+007F to U+009F) are not accepted",
            c as u32
        ),
    )
    .with_target(target)
}

/// Every string and key of a JSON document, with its path in the form serde_path_to_error
/// reports (`tags.team`, `groups[1]`).
fn refuse_controls_in_json(v: &Value, path: &str) -> ApiResult<()> {
    match v {
        Value::String(s) => match find_control(s) {
            Some(at) => Err(control_error(
                "InvalidRequestContent",
                &format!("the field {}", quote(path)),
                path,
                at,
            )),
            None => Ok(()),
        },
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, x)| refuse_controls_in_json(x, &format!("{path}[{i}]"))),
        Value::Object(fields) => fields.iter().try_for_each(|(k, x)| {
            if let Some(at) = find_control(k) {
                let (what, target) = if path.is_empty() {
                    ("a field name".to_string(), ".")
                } else {
                    (format!("a key of {}", quote(path)), path)
                };
                return Err(control_error("InvalidRequestContent", &what, target, at));
            }
            let here = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            refuse_controls_in_json(x, &here)
        }),
        _ => Ok(()),
    }
}

/// Query-string parameters, with a 400 naming the bad parameter.
pub struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or("");
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            if let Some(at) = find_control(&name) {
                return Err(control_error(
                    "InvalidQueryParameter",
                    "a query parameter name",
                    "query",
                    at,
                ));
            }
            if let Some(at) = find_control(&value) {
                let what = format!("the query parameter {}", quote(&name));
                return Err(control_error("InvalidQueryParameter", &what, &name, at));
            }
        }
        Query::<T>::try_from_uri(&parts.uri)
            .map(|q| QueryParams(q.0))
            .map_err(|rej| ApiError::bad_request("InvalidQueryParameter", bound_quotes(&rej.body_text())))
    }
}

/// `Idempotency-Key`: makes a POST safely repeatable (the first answer is replayed).
pub struct IdempotencyKey(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let Some(v) = parts.headers.get("idempotency-key") else {
            return Ok(IdempotencyKey(None));
        };
        let bad = || {
            ApiError::bad_request(
                "InvalidIdempotencyKey",
                "Idempotency-Key must be 1 to 255 printable ASCII characters, no control characters \
                 (a UUID is a good choice)",
            )
            .with_target("Idempotency-Key")
        };
        let s = v.to_str().map_err(|_| bad())?.trim();
        if s.is_empty() || s.len() > 255 || !s.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
            return Err(bad());
        }
        Ok(IdempotencyKey(Some(s.to_string())))
    }
}

/// The job id of a `/v1/jobs/{id}...` path: a 400 in the error shape for anything but a UUID,
/// also when the percent-decoded path is not UTF-8.
pub struct JobIdPath(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for JobIdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state).await.map_err(|_| {
            ApiError::bad_request(
                "InvalidJobId",
                "the job id in the path is not valid UTF-8 once percent-decoded; job ids are UUIDs",
            )
            .with_target("id")
        })?;
        parse_job_id(&raw).map(JobIdPath)
    }
}

/// A job id: a UUID in its hyphenated form (as the service writes them); anything else is a
/// 400, not a 404.
pub fn parse_job_id(raw: &str) -> Result<Uuid, ApiError> {
    if let Some(at) = find_control(raw) {
        return Err(control_error("InvalidJobId", "the job id", "id", at));
    }
    parse_hyphenated(raw).ok_or_else(|| {
        ApiError::bad_request(
            "InvalidJobId",
            format!(
                "{} is not a job id; job ids are UUIDs like 0f8fad5b-d9cb-469f-a165-70867728950e",
                quote(raw)
            ),
        )
        .with_target("id")
    })
}

/// A UUID written `8-4-4-4-12` (hex, any case): the only form the service accepts.
pub fn parse_hyphenated(raw: &str) -> Option<Uuid> {
    (raw.len() == 36).then(|| Uuid::try_parse(raw).ok()).flatten()
}

/// A page size from the query string: a whole number from 1 to `max` (`default` when absent).
pub fn parse_limit(raw: Option<&str>, default: i64, max: i64) -> ApiResult<i64> {
    let Some(raw) = raw else {
        return Ok(default);
    };
    let n = (!raw.is_empty() && raw.len() <= 18 && raw.bytes().all(|b| b.is_ascii_digit()))
        .then(|| raw.parse::<i64>().ok())
        .flatten();
    match n {
        Some(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(ApiError::bad_request(
            "InvalidQueryParameter",
            format!("limit must be a whole number between 1 and {max}, not {}", quote(raw)),
        )
        .with_target("limit")),
    }
}

/// A `cursor` from a `nextLink`: what the parameter's pattern `^[1-9][0-9]{0,17}$` allows (a
/// positive number without leading zeros, at most 18 digits), nothing else.
pub fn parse_cursor(raw: Option<&str>) -> ApiResult<Option<i64>> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let b = raw.as_bytes();
    let ok = (1..=18).contains(&b.len()) && b[0] != b'0' && b.iter().all(u8::is_ascii_digit);
    ok.then(|| raw.parse::<i64>().ok()).flatten().map(Some).ok_or_else(|| {
        ApiError::bad_request(
            "InvalidQueryParameter",
            "cursor is not one this service issued; use nextLink as given",
        )
        .with_target("cursor")
    })
}

// ---------------------------------------------------------------------------------------------
// The inputs the handlers share: parsed here, described here for OpenAPI (one source for both).

/// A GUID as a JSON-schema pattern fragment (hex, any case, hyphenated).
const GUID_RE: &str = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}";
/// The nil GUID, refused wherever a GUID names something.
const NIL_GUID_RE: &str = "0{8}-0{4}-0{4}-0{4}-0{12}";
/// A resource group name as far as a portable regex can say it: ARM also allows non-ASCII
/// letters and digits, which the service accepts but the pattern does not list.
const RESOURCE_GROUP_RE: &str = "[-A-Za-z0-9_.()]{0,89}[-A-Za-z0-9_()]";
const CLUSTER_NAME_RE: &str = "[A-Za-z0-9](?:[-_A-Za-z0-9]{0,61}[A-Za-z0-9])?";
const REGISTRY_NAME_RE: &str = "[A-Za-z0-9]{5,50}";
const IDENTITY_NAME_RE: &str = "[A-Za-z0-9][-_A-Za-z0-9]{2,127}";
/// Strings of free text: anything but control characters.
pub const NO_CONTROL_PATTERN: &str = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$";

/// The longest ARM id of a resource type in a resource group, given its longest name.
const fn arm_id_max(resource_type: &str, name_max: usize) -> usize {
    "/subscriptions/".len()
        + 36
        + "/resourceGroups/".len()
        + 90
        + "/providers/".len()
        + resource_type.len()
        + 1
        + name_max
}

pub const CLUSTER_ID_MAX: usize = arm_id_max(ClusterId::RESOURCE_TYPE, 63);
pub const REGISTRY_ID_MAX: usize = arm_id_max(RegistryId::RESOURCE_TYPE, 50);
pub const IDENTITY_ID_MAX: usize = arm_id_max(UserAssignedIdentityId::RESOURCE_TYPE, 128);

/// A word matched in any letter case (ARM compares ids case-insensitively), as a pattern.
fn any_case(word: &str) -> String {
    word.chars()
        .map(|c| match c {
            c if c.is_ascii_alphabetic() => format!("[{}{}]", c.to_ascii_uppercase(), c.to_ascii_lowercase()),
            '.' => "\\.".to_string(),
            c => c.to_string(),
        })
        .collect()
}

/// `/subscriptions/{guid, not nil}/resourceGroups/{rg}/providers/{type}/{name}`, keywords and
/// type in any case: exactly what `crate::domain::ids` accepts for one resource type (but for
/// non-ASCII resource group names, see [`RESOURCE_GROUP_RE`]).
fn arm_id_re(resource_type: &str, name_re: &str) -> String {
    format!(
        "/{}/(?!{NIL_GUID_RE}/){GUID_RE}/{}/{RESOURCE_GROUP_RE}/{}/{}/{name_re}",
        any_case("subscriptions"),
        any_case("resourceGroups"),
        any_case("providers"),
        any_case(resource_type),
    )
}

pub fn cluster_id_pattern() -> String {
    format!("^{}$", arm_id_re(ClusterId::RESOURCE_TYPE, CLUSTER_NAME_RE))
}

pub fn registry_pattern() -> String {
    format!(
        "^(?:{REGISTRY_NAME_RE}|{})$",
        arm_id_re(RegistryId::RESOURCE_TYPE, REGISTRY_NAME_RE)
    )
}

pub fn identity_id_pattern() -> String {
    format!(
        "^{}$",
        arm_id_re(UserAssignedIdentityId::RESOURCE_TYPE, IDENTITY_NAME_RE)
    )
}

pub fn group_id_pattern() -> String {
    format!("^(?!{NIL_GUID_RE}$){GUID_RE}$")
}

/// An id error of the ARM id parser as a 400: the input and every piece of it the reason
/// quotes are bounded.
fn id_error(code: &str, target: &str, e: IdError) -> ApiError {
    ApiError::bad_request(
        code,
        format!("invalid {} {}: {}", e.what, quote(&e.input), bound_quotes(&e.reason)),
    )
    .with_target(target)
}

/// Longer than any valid id, or with spaces around it: refused before parsing (the schema's
/// pattern allows neither), quoting a bounded prefix.
fn precheck(code: &str, target: &str, what: &str, raw: &str, max: usize) -> ApiResult<()> {
    if raw.trim() != raw {
        return Err(ApiError::bad_request(
            code,
            format!("{} has spaces around it; send the {what} alone", quote(raw)),
        )
        .with_target(target));
    }
    let n = raw.chars().count();
    if n <= max {
        return Ok(());
    }
    Err(ApiError::bad_request(
        code,
        format!("{} is {n} characters long; a {what} has at most {max}", quote(raw)),
    )
    .with_target(target))
}

fn nil_subscription(code: &str, target: &str, what: &str, raw: &str) -> ApiError {
    ApiError::bad_request(
        code,
        format!(
            "invalid {what} {}: its subscription id is the nil GUID, which names no subscription",
            quote(raw)
        ),
    )
    .with_target(target)
}

/// An AKS cluster's ARM id.
pub fn parse_cluster(raw: &str, target: &str) -> ApiResult<ClusterId> {
    const CODE: &str = "InvalidClusterId";
    precheck(CODE, target, "cluster id", raw, CLUSTER_ID_MAX)?;
    let id: ClusterId = raw.parse().map_err(|e| id_error(CODE, target, e))?;
    if id.subscription().uuid().is_nil() {
        return Err(nil_subscription(CODE, target, "cluster id", raw));
    }
    Ok(id)
}

/// A registry's ARM id (any subscription) or bare name.
pub fn parse_registry(raw: &str, target: &str) -> ApiResult<RegistryRef> {
    const CODE: &str = "InvalidRegistry";
    precheck(CODE, target, "registry id or name", raw, REGISTRY_ID_MAX)?;
    let r: RegistryRef = raw.parse().map_err(|e| id_error(CODE, target, e))?;
    if let RegistryRef::Id(id) = &r
        && id.subscription().uuid().is_nil()
    {
        return Err(nil_subscription(CODE, target, "registry id", raw));
    }
    Ok(r)
}

/// A user-assigned managed identity's ARM id.
pub fn parse_identity(raw: &str, target: &str) -> ApiResult<UserAssignedIdentityId> {
    const CODE: &str = "InvalidIdentityId";
    precheck(CODE, target, "user-assigned identity id", raw, IDENTITY_ID_MAX)?;
    let id: UserAssignedIdentityId = raw.parse().map_err(|e| id_error(CODE, target, e))?;
    if id.subscription().uuid().is_nil() {
        return Err(nil_subscription(CODE, target, "user-assigned identity id", raw));
    }
    Ok(id)
}

/// An Entra group object id: a GUID, not the nil one (display names are not unique, so they
/// are not accepted).
pub fn parse_group(raw: &str, target: &str) -> ApiResult<Uuid> {
    match parse_hyphenated(raw) {
        Some(id) if id.is_nil() => Err(ApiError::bad_request(
            "InvalidGroupId",
            "the nil GUID names no Entra group; give the group's object id",
        )
        .with_target(target)),
        Some(id) => Ok(id),
        None => Err(ApiError::bad_request(
            "InvalidGroupId",
            format!(
                "{} is not an Entra group object id (a GUID like {EXAMPLE_GROUP}); display names are not accepted",
                quote(raw)
            ),
        )
        .with_target(target)),
    }
}

/// The demo world's Entra group (`acr-pullers`).
pub const EXAMPLE_GROUP: &str = "9a0b0000-0000-4000-8000-000000000001";

/// A string schema component (the ids the API takes).
fn string_schema(description: &str, pattern: String, min: usize, max: usize) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .min_length(Some(min))
        .max_length(Some(max))
        .pattern(Some(pattern))
}

/// Declares a documentation-only type whose OpenAPI component is the given string schema.
macro_rules! schema_component {
    ($(#[$doc:meta])* $ty:ident, $name:literal, $schema:expr) => {
        $(#[$doc])*
        pub struct $ty;

        impl utoipa::PartialSchema for $ty {
            fn schema() -> RefOr<Schema> {
                let s: ObjectBuilder = $schema;
                RefOr::T(Schema::Object(s.build()))
            }
        }

        impl utoipa::ToSchema for $ty {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed($name)
            }
        }
    };
}

schema_component!(
    /// OpenAPI component `ClusterId`.
    ClusterIdSchema,
    "ClusterId",
    string_schema(
        "ARM resource id of an AKS managed cluster: \
         /subscriptions/{subscriptionId}/resourceGroups/{resourceGroup}/providers/Microsoft.ContainerService/managedClusters/{name} \
         (keywords in any case; the subscription id is not the nil GUID).",
        cluster_id_pattern(),
        1,
        CLUSTER_ID_MAX,
    )
    .examples([serde_json::json!(EXAMPLE_CLUSTER)])
);

schema_component!(
    /// OpenAPI component `RegistryRef`.
    RegistryRefSchema,
    "RegistryRef",
    string_schema(
        "A container registry: its bare name (5-50 letters and digits, searched in the subscriptions \
         acr-attach is configured with), or its ARM resource id in any subscription of the tenant: \
         /subscriptions/{subscriptionId}/resourceGroups/{resourceGroup}/providers/Microsoft.ContainerRegistry/registries/{name}.",
        registry_pattern(),
        5,
        REGISTRY_ID_MAX,
    )
    .examples([serde_json::json!("acrdemo")])
);

schema_component!(
    /// OpenAPI component `UserAssignedIdentityId`.
    IdentityIdSchema,
    "UserAssignedIdentityId",
    string_schema(
        "ARM resource id of a user-assigned managed identity: \
         /subscriptions/{subscriptionId}/resourceGroups/{resourceGroup}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name} \
         (name: 3-128 letters, digits, '-' or '_', starting with a letter or digit).",
        identity_id_pattern(),
        1,
        IDENTITY_ID_MAX,
    )
    .examples([serde_json::json!(EXAMPLE_IDENTITY)])
);

schema_component!(
    /// OpenAPI component `GroupId`.
    GroupIdSchema,
    "GroupId",
    string_schema(
        "Object id of an Entra security group: a GUID (not the nil GUID); display names are not accepted.",
        group_id_pattern(),
        36,
        36,
    )
    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
);

/// The demo world's cluster `aks-demo`.
pub const EXAMPLE_CLUSTER: &str = "/subscriptions/11111111-1111-4111-8111-111111111111/resourceGroups/rg-aks-demo/providers/Microsoft.ContainerService/managedClusters/aks-demo";

/// An identity that does not exist in the demo world yet (preparing it creates it).
pub const EXAMPLE_IDENTITY: &str = "/subscriptions/11111111-1111-4111-8111-111111111111/resourceGroups/rg-aks-demo/providers/Microsoft.ManagedIdentity/userAssignedIdentities/aks-next-kubelet";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_application_json_is_json() {
        for ok in [
            "application/json",
            "Application/JSON",
            "application/json; charset=utf-8",
            "application/json;charset=\"UTF-8\"",
            "application/json;",
        ] {
            assert!(is_json(ok), "{ok}");
        }
        for bad in [
            "",
            "text/plain",
            "application/merge-patch+json",
            "application/vnd.api+json",
            "application/jsonx",
            "application/json; charset=latin1",
            "application/json; nonsense",
        ] {
            assert!(!is_json(bad), "{bad}");
        }
    }

    #[test]
    fn id_limits_follow_the_parser() {
        assert_eq!(CLUSTER_ID_MAX, 274);
        assert_eq!(REGISTRY_ID_MAX, 257);
        assert_eq!(IDENTITY_ID_MAX, 345);
        let longest_rg = "r".repeat(90);
        let cluster = format!(
            "/subscriptions/11111111-1111-4111-8111-111111111111/resourceGroups/{longest_rg}/providers/Microsoft.ContainerService/managedClusters/{}",
            "c".repeat(63)
        );
        assert_eq!(cluster.len(), CLUSTER_ID_MAX);
        assert!(parse_cluster(&cluster, "cluster").is_ok());
        assert!(parse_cluster(&format!("{cluster}c"), "cluster").is_err());
    }

    #[test]
    fn nil_guids_are_refused() {
        assert!(parse_group("00000000-0000-0000-0000-000000000000", "group").is_err());
        assert!(parse_group(EXAMPLE_GROUP, "group").is_ok());
        let nil_sub = EXAMPLE_CLUSTER.replace("11111111-1111-4111-8111-111111111111", &Uuid::nil().to_string());
        assert_eq!(
            parse_cluster(&nil_sub, "cluster").unwrap_err().body.code,
            "InvalidClusterId"
        );
        assert!(parse_cluster(EXAMPLE_CLUSTER, "cluster").is_ok());
    }

    #[test]
    fn job_ids_are_hyphenated_uuids() {
        assert!(parse_job_id("0f8fad5b-d9cb-469f-a165-70867728950e").is_ok());
        assert!(parse_job_id("0f8fad5bd9cb469fa16570867728950e").is_err());
        assert!(parse_job_id("{0f8fad5b-d9cb-469f-a165-70867728950e}").is_err());
    }
}
