//! `/v1/imports`: put an image into a registry (`az acr import` as a job). Source credentials
//! are sealed in the transaction that enqueues the job and never stored readable, logged or
//! returned (see `crate::secrets`).
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use super::AppState;
use super::access::Access;
use super::error::{ApiError, ApiResult, ErrorResponse};
use super::extract::{IdempotencyKey, JsonBody, RegistryRefSchema, parse_registry};
use super::jobs::{JobView, submit_with_secret};
use super::policy::{Action, Ask};
use crate::domain::{ImportArgs, ImportSourceArgs, RegistryRef, valid_image};

/// Where the image comes from.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportSourceRequest {
    /// A registry of the tenant by ARM resource id (acr-attach reads it with its own identity,
    /// so the policy must cover it too), or any registry's login server
    /// (`mcr.microsoft.com`, `docker.io`; an Azure registry's only with `credentials`).
    #[schema(max_length = 512, example = "mcr.microsoft.com")]
    pub registry: String,
    /// `repository:tag` or `repository@sha256:digest`.
    #[schema(max_length = 512, example = "hello-world:latest")]
    pub image: String,
    /// For a registry that needs them: used once for the import, never returned.
    pub credentials: Option<CredentialsRequest>,
}

/// A source registry's user name and password (or token).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialsRequest {
    #[schema(min_length = 1, max_length = 256)]
    pub username: String,
    #[schema(min_length = 1, max_length = 4096, format = Password)]
    pub password: String,
}

impl std::fmt::Debug for CredentialsRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CredentialsRequest(***)")
    }
}

/// An image to import into a registry.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(example = json!({ "registry": "acrdemo", "source": { "registry": "mcr.microsoft.com", "image": "hello-world:latest" } }))]
pub struct ImportRequestBody {
    /// The target: ARM resource id of the container registry, or its bare name.
    #[schema(value_type = RegistryRefSchema)]
    pub registry: String,
    pub source: ImportSourceRequest,
    /// `repository:tag` in the target (default: the source's repository and tag).
    #[schema(max_items = 20)]
    pub target_tags: Option<Vec<String>>,
    /// `NoForce` (default): fail if a target tag exists; `Force`: overwrite it.
    #[schema(pattern = "^(NoForce|Force)$")]
    pub mode: Option<String>,
}

/// An Azure Container Registry login server: those are read with `resourceId` (and the policy).
fn is_acr_host(host: &str) -> bool {
    [".azurecr.io", ".azurecr.cn", ".azurecr.us"]
        .iter()
        .any(|s| host.ends_with(s))
}

fn valid_host(h: &str) -> bool {
    let (host, port) = match h.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (h, None),
    };
    port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))
        && !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

impl ImportRequestBody {
    fn parse(&self) -> ApiResult<(ImportArgs, Option<&CredentialsRequest>)> {
        let registry = parse_registry(&self.registry, "registry")?;
        let source = &self.source;
        let (registry_id, login_server) = if source.registry.starts_with('/') {
            match parse_registry(&source.registry, "source.registry")? {
                RegistryRef::Id(id) => (Some(id), None),
                RegistryRef::Name(_) => unreachable!("a path parses as an id"),
            }
        } else {
            let host = source.registry.to_ascii_lowercase();
            if !valid_host(&host) {
                return Err(ApiError::bad_request(
                    "InvalidSourceRegistry",
                    "source.registry must be a registry's resource id or a login server (host[:port])",
                )
                .with_target("source.registry"));
            }
            if is_acr_host(&host) && source.credentials.is_none() {
                return Err(ApiError::bad_request(
                    "SourceRegistryById",
                    "an Azure container registry of the tenant is given by its resource id (the policy must cover it), or by login server with credentials",
                )
                .with_target("source.registry"));
            }
            (None, Some(host))
        };
        if !valid_image(&source.image) {
            return Err(ApiError::bad_request(
                "InvalidImage",
                "source.image must be repository:tag or repository@sha256:<64 hex digits>",
            )
            .with_target("source.image"));
        }
        let target_tags = self.target_tags.clone().unwrap_or_default();
        if target_tags.len() > 20 {
            return Err(ApiError::bad_request("TooManyTags", "at most 20 target tags").with_target("targetTags"));
        }
        if let Some(bad) = target_tags.iter().find(|t| t.contains('@') || !valid_image(t)) {
            return Err(ApiError::bad_request(
                "InvalidTargetTag",
                format!("'{}' is not repository:tag", super::error::quote(bad)),
            )
            .with_target("targetTags"));
        }
        let mode = self.mode.clone().unwrap_or_else(|| "NoForce".into());
        if mode != "NoForce" && mode != "Force" {
            return Err(ApiError::bad_request("InvalidMode", "mode is NoForce or Force").with_target("mode"));
        }
        if let Some(c) = &source.credentials
            && (c.username.is_empty() || c.username.len() > 256 || c.password.is_empty() || c.password.len() > 4096)
        {
            return Err(ApiError::bad_request(
                "InvalidCredentials",
                "credentials need a user name (1-256 characters) and a password (1-4096)",
            )
            .with_target("source.credentials"));
        }
        Ok((
            ImportArgs {
                registry,
                source: ImportSourceArgs {
                    registry_id,
                    login_server,
                    image: source.image.clone(),
                },
                target_tags,
                mode,
                credentials: source.credentials.is_some(),
            },
            source.credentials.as_ref(),
        ))
    }
}

/// Import: copy an image into a registry (ACR `importImage`, what `az acr import` does). Runs
/// as a job that follows ACR's long-running operation; imports into one registry run in order.
/// A later check with `"probe": true` and no image pulls the newest image imported this way.
#[utoipa::path(post, path = "/v1/imports", tag = "imports", request_body = ImportRequestBody,
    params(("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[ -~]*[!-~][ -~]*$",
        description = "Makes the request safely repeatable: 1 to 255 printable ASCII characters (a UUID is a good choice)")),
    responses(
        (status = 202, body = JobView, description = "Accepted: poll the job at Operation-Location; its result is an ImportResult"),
        (status = 200, body = JobView, description = "An identical import is already queued or running: that job"),
        (status = 413, body = ErrorResponse, description = "The body is larger than ACR_ATTACH_MAX_BODY_BYTES (default 64 KiB)"),
        (status = 415, body = ErrorResponse, description = "The body is not sent as Content-Type: application/json"),
        (status = 422, body = ErrorResponse, description = "The Idempotency-Key was already used for a different request"),
        (status = "4XX", body = ErrorResponse, description = "Refused: the error says why and about what"),
        (status = "5XX", body = ErrorResponse, description = "Unavailable for now (503: the database or the Entra keys), or an internal error (500)")))]
pub async fn import(
    State(state): State<AppState>,
    access: Access,
    IdempotencyKey(key): IdempotencyKey,
    body: JsonBody<ImportRequestBody>,
) -> ApiResult<Response> {
    let (args, credentials) = match body.value.parse() {
        Ok(parsed) => parsed,
        Err(e) => return Err(access.refuse(&state, Action::Import, e).await),
    };
    let secret = match (credentials, &state.ops.secrets_key) {
        (None, _) => None,
        (Some(c), Some(key)) => Some((
            key.clone(),
            serde_json::to_vec(&json!({ "username": c.username, "password": c.password }))
                .expect("credentials serialise"),
        )),
        (Some(_), None) => {
            let e = ApiError::bad_request(
                "CredentialsNotAccepted",
                "this service has no ACR_ATTACH_SECRETS_KEY, so it does not accept source credentials (it would have to store them readable)",
            )
            .with_target("source.credentials");
            return Err(access.refuse(&state, Action::Import, e).await);
        }
    };
    let source = args.source.registry_id.clone().map(RegistryRef::Id);
    let ask = Ask::Import {
        registry: &args.registry,
        source: source.as_ref(),
    };
    let resources = json!({
        "registry": args.registry.to_string(),
        "source": { "registry": args.source.registry_id.as_ref().map(|r| r.to_string()).or(args.source.login_server.clone()), "image": args.source.image },
        "credentials": args.credentials,
    });
    let granted = access.authorize(&state, &ask, resources).await?;
    let job = state.ops.import_job(&args);
    submit_with_secret(
        &state,
        &access,
        granted,
        "POST /v1/imports",
        "/v1/imports",
        key,
        &body.raw,
        job,
        secret,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(v: serde_json::Value) -> ImportRequestBody {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn sources_are_a_registry_id_or_a_login_server() {
        let ok = body(
            json!({ "registry": "acrdemo", "source": { "registry": "mcr.microsoft.com", "image": "hello-world:latest" } }),
        );
        let (args, creds) = ok.parse().unwrap();
        assert_eq!(args.source.login_server.as_deref(), Some("mcr.microsoft.com"));
        assert!(creds.is_none() && !args.credentials);
        for (v, code) in [
            (
                json!({ "registry": "acrdemo", "source": { "registry": "acrshared.azurecr.io", "image": "a:v1" } }),
                "SourceRegistryById",
            ),
            (
                json!({ "registry": "acrdemo", "source": { "registry": "evil host", "image": "a:v1" } }),
                "InvalidSourceRegistry",
            ),
            (
                json!({ "registry": "acrdemo", "source": { "registry": "docker.io", "image": "a" } }),
                "InvalidImage",
            ),
            (
                json!({ "registry": "acrdemo", "source": { "registry": "docker.io", "image": "a:v1" }, "mode": "Yolo" }),
                "InvalidMode",
            ),
            (
                json!({ "registry": "acrdemo", "source": { "registry": "docker.io", "image": "a:v1" }, "targetTags": ["b@sha256:00"] }),
                "InvalidTargetTag",
            ),
        ] {
            assert_eq!(body(v).parse().unwrap_err().body.code, code);
        }
    }

    #[test]
    fn credentials_never_show_in_debug_output() {
        let b = body(
            json!({ "registry": "acrdemo", "source": { "registry": "docker.io", "image": "a:v1", "credentials": { "username": "u", "password": "hunter2" } } }),
        );
        assert!(!format!("{b:?}").contains("hunter2"));
    }
}
