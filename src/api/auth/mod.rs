//! Who is calling: every `/v1` request is authenticated before anything else looks at it,
//! with a Microsoft Entra ID access token (validated against the authority's keys) or an API
//! key (created with `acr-attach keys`). The caller ([`Caller`]) then goes to the policy
//! ([`super::policy`]) and the audit trail. No credential ⇒ 401 with `WWW-Authenticate`.
//! Health, readiness, metrics and the docs stay open (probes and scrapers carry no credential).
//! Without authentication (`--auth none`, an explicit choice) every request is `anonymous`.
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

use super::error::ApiError;
use crate::duration::parse_duration;

pub mod entra;
pub mod keys;

pub use entra::{EntraSettings, EntraValidator, TokenRefusal};
pub use keys::{ApiKeyInfo, ApiKeyStore, KeysCommand};

/// How callers may authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthMethod {
    /// Microsoft Entra ID access tokens (`--entra-authority`, `--entra-audience`).
    Entra,
    /// API keys made with `acr-attach keys create`.
    ApiKeys,
    /// No authentication: everyone is `anonymous` (demo only; logged as a warning).
    None,
}

/// Authentication and authorisation settings.
#[derive(Debug, Clone, Args)]
pub struct AuthConfig {
    /// Ways callers authenticate (comma-separated: entra, api-keys; or none). Default:
    /// entra,api-keys; with --simulator: none.
    #[arg(long = "auth", env = "ACR_ATTACH_AUTH", value_enum, value_delimiter = ',')]
    pub methods: Vec<AuthMethod>,
    /// Entra authority whose tokens are accepted, e.g.
    /// https://login.microsoftonline.com/<tenant>/v2.0 (discovery: <authority>/.well-known/openid-configuration).
    #[arg(long, env = "ACR_ATTACH_ENTRA_AUTHORITY")]
    pub entra_authority: Option<String>,
    /// Accepted token audiences: the API's application (client) id and/or its identifier URI.
    #[arg(long, env = "ACR_ATTACH_ENTRA_AUDIENCE", value_delimiter = ',')]
    pub entra_audience: Vec<String>,
    /// A token signed by an unknown key fetches the authority's keys again at most this often.
    #[arg(long, env = "ACR_ATTACH_ENTRA_KEYS_REFRESH", value_parser = parse_duration, default_value = "5m")]
    pub entra_keys_refresh: Duration,
    /// The authorisation policy (JSON; reloaded when it changes). Required unless --auth none.
    #[arg(long, env = "ACR_ATTACH_POLICY")]
    pub policy: Option<std::path::PathBuf>,
    /// How often the policy file is checked for changes.
    #[arg(long, env = "ACR_ATTACH_POLICY_RELOAD", value_parser = parse_duration, default_value = "5s")]
    pub policy_reload: Duration,
}

impl AuthConfig {
    /// The methods in effect: as configured, else `none` under the simulator (the demo), else
    /// Entra and API keys.
    pub fn effective_methods(&self, simulator: bool) -> Vec<AuthMethod> {
        match (self.methods.is_empty(), simulator) {
            (false, _) => self.methods.clone(),
            (true, true) => vec![AuthMethod::None],
            (true, false) => vec![AuthMethod::Entra, AuthMethod::ApiKeys],
        }
    }
}

/// Who made a request (kept with a batch, whose items are authorised for it later).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Caller {
    pub kind: CallerKind,
    /// Entra object id, API key name, or `anonymous`.
    pub id: String,
    /// Entra: the client application id (`azp`/`appid`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// Entra app roles (`roles` claim).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CallerKind {
    Entra,
    ApiKey,
    Anonymous,
}

impl Caller {
    pub fn entra(oid: String, app_id: Option<String>, tenant_id: Option<String>, roles: Vec<String>) -> Self {
        Caller {
            kind: CallerKind::Entra,
            id: oid.to_ascii_lowercase(),
            app_id,
            tenant_id,
            roles,
        }
    }

    pub fn api_key(name: String) -> Self {
        Caller {
            kind: CallerKind::ApiKey,
            id: name,
            app_id: None,
            tenant_id: None,
            roles: Vec::new(),
        }
    }

    pub fn anonymous() -> Self {
        Caller {
            kind: CallerKind::Anonymous,
            id: "anonymous".into(),
            app_id: None,
            tenant_id: None,
            roles: Vec::new(),
        }
    }

    /// One string per caller, for ownership of jobs, idempotency scopes and the audit trail:
    /// `entra:<oid>`, `key:<name>`, `anonymous`.
    pub fn principal(&self) -> String {
        match self.kind {
            CallerKind::Entra => format!("entra:{}", self.id),
            CallerKind::ApiKey => format!("key:{}", self.id),
            CallerKind::Anonymous => "anonymous".into(),
        }
    }
}

/// Checks credentials; shared by every request.
#[derive(Clone)]
pub struct Authenticator {
    inner: Arc<Inner>,
}

struct Inner {
    entra: Option<EntraValidator>,
    keys: Option<ApiKeyStore>,
}

impl Authenticator {
    pub fn new(entra: Option<EntraValidator>, keys: Option<ApiKeyStore>) -> Self {
        Authenticator {
            inner: Arc::new(Inner { entra, keys }),
        }
    }

    /// No authentication: everyone is anonymous.
    pub fn open() -> Self {
        Self::new(None, None)
    }

    pub fn is_open(&self) -> bool {
        self.inner.entra.is_none() && self.inner.keys.is_none()
    }

    async fn authenticate(&self, authorization: Option<&str>) -> Result<Caller, Refusal> {
        if self.is_open() {
            return Ok(Caller::anonymous());
        }
        let Some(value) = authorization else {
            return Err(Refusal::missing());
        };
        let credential = match value.split_once(' ') {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
            _ => return Err(Refusal::invalid("send Authorization: Bearer <token or API key>")),
        };
        if credential.starts_with(keys::KEY_PREFIX) {
            let Some(store) = &self.inner.keys else {
                return Err(Refusal::invalid("API keys are not accepted here"));
            };
            return match store.authenticate(credential).await {
                Ok(Some(name)) => Ok(Caller::api_key(name)),
                Ok(None) => Err(Refusal::invalid(
                    "the API key is not valid (unknown, revoked or expired)",
                )),
                Err(e) => {
                    tracing::error!(error = %e, "checking an API key failed");
                    Err(Refusal::unavailable())
                }
            };
        }
        let Some(entra) = &self.inner.entra else {
            return Err(Refusal::invalid("only API keys are accepted here"));
        };
        match entra.validate(credential).await {
            Ok(caller) => Ok(caller),
            Err(TokenRefusal::Invalid(why)) => Err(Refusal::invalid(&why)),
            Err(TokenRefusal::Unavailable(why)) => {
                tracing::error!(reason = %why, "Entra signing keys unavailable");
                Err(Refusal::unavailable())
            }
        }
    }
}

struct Refusal {
    status: StatusCode,
    /// RFC 6750 `error`.
    error: Option<&'static str>,
    message: String,
}

impl Refusal {
    fn missing() -> Self {
        Refusal {
            status: StatusCode::UNAUTHORIZED,
            error: None,
            message: "this API needs credentials: send Authorization: Bearer <Entra access token or API key>".into(),
        }
    }
    fn invalid(why: &str) -> Self {
        Refusal {
            status: StatusCode::UNAUTHORIZED,
            error: Some("invalid_token"),
            message: why.to_string(),
        }
    }
    fn unavailable() -> Self {
        Refusal {
            status: StatusCode::SERVICE_UNAVAILABLE,
            error: None,
            message: "credentials cannot be checked right now; retry shortly".into(),
        }
    }

    fn into_response(self) -> Response {
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            let mut res = ApiError::new(self.status, "AuthenticationUnavailable", self.message).into_response();
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            return res;
        }
        let challenge = match self.error {
            Some(e) => format!(
                "Bearer realm=\"acr-attach\", error=\"{e}\", error_description=\"{}\"",
                self.message.replace('"', "'")
            ),
            None => "Bearer realm=\"acr-attach\"".to_string(),
        };
        let mut res = ApiError::new(self.status, "Unauthorized", self.message)
            .with_target("Authorization")
            .into_response();
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            res.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        res
    }
}

/// Authenticates `/v1` requests; the [`Caller`] is put in the request's extensions.
pub async fn authenticate(State(auth): State<Authenticator>, mut req: Request, next: Next) -> Response {
    if !req.uri().path().starts_with("/v1/") {
        return next.run(req).await;
    }
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    match auth.authenticate(authorization.as_deref()).await {
        Ok(caller) => {
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        Err(refusal) => {
            // Counted, not audited: unauthenticated requests must not be able to fill the trail.
            let reason = match (refusal.status, refusal.error) {
                (StatusCode::SERVICE_UNAVAILABLE, _) => "unavailable",
                (_, None) => "missing",
                (_, Some(_)) => "invalid",
            };
            metrics::counter!("acr_attach_authentication_failures_total", "reason" => reason).increment(1);
            refusal.into_response()
        }
    }
}

/// The authenticated caller, in a handler.
impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, ApiError> {
        parts.extensions.get::<Caller>().cloned().ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                "this API needs credentials: send Authorization: Bearer <Entra access token or API key>",
            )
        })
    }
}
