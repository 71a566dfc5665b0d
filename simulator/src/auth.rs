//! The Entra side: the token endpoint, OpenID discovery, the JWKS, and the access tokens the
//! simulator mints. Tokens are RS256 JWTs signed with per-start RSA keys (`keys.rs`), so a
//! token from another simulator run is refused like a forged one, and third-party validators
//! can check them against the published keys as they would check Entra's.

use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::keys::{KeyRing, SigningKey};
use crate::reply;
use crate::state::Shared;
use crate::world::{Application, Caller, World};

/// Claims ARM and Graph look at. ARM and Graph tokens are minted from this struct (v1.0
/// shape); reading is lenient, so any token the simulator signed can be presented.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Claims {
    pub aud: String,
    pub iss: String,
    #[serde(default)]
    pub iat: i64,
    #[serde(default)]
    pub nbf: i64,
    pub exp: i64,
    pub tid: String,
    pub oid: String,
    #[serde(default)]
    pub sub: String,
    /// `appid` (v1.0) or `azp` (v2.0).
    #[serde(default, alias = "azp")]
    pub appid: String,
    /// `appidacr` (v1.0) or `azpacr` (v2.0).
    #[serde(default, alias = "azpacr")]
    pub appidacr: String,
    #[serde(default)]
    pub idtyp: String,
    #[serde(default)]
    pub ver: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
}

/// Why a presented token was refused.
#[derive(Debug)]
pub(crate) enum TokenError {
    Malformed,
    Expired { exp: i64 },
}

/// Signs `claims` as a compact JWS: RS256, with `kid` and `x5t` naming `key`, as Entra does.
pub(crate) fn sign_with(key: &SigningKey, claims: &impl Serialize) -> String {
    let header = format!(
        r#"{{"typ":"JWT","alg":"RS256","x5t":"{kid}","kid":"{kid}"}}"#,
        kid = key.kid
    );
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims serialize"));
    let signing_input = format!("{}.{payload}", URL_SAFE_NO_PAD.encode(header));
    let sig = URL_SAFE_NO_PAD.encode(key.sign(signing_input.as_bytes()));
    format!("{signing_input}.{sig}")
}

/// Signs `claims` with the current signing key.
pub(crate) fn mint(keys: &KeyRing, claims: &impl Serialize) -> String {
    sign_with(&keys.current(), claims)
}

/// Checks the header (`alg` RS256, a `kid` in the JWKS), the signature and the lifetime;
/// audience is the caller's business (ARM and Graph differ).
pub(crate) fn verify(keys: &KeyRing, token: &str) -> Result<Claims, TokenError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(TokenError::Malformed);
    };
    let header: Value = URL_SAFE_NO_PAD
        .decode(h)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(TokenError::Malformed)?;
    if header["alg"] != "RS256" {
        return Err(TokenError::Malformed);
    }
    let key = header["kid"]
        .as_str()
        .and_then(|kid| keys.find(kid))
        .ok_or(TokenError::Malformed)?;
    let sig = URL_SAFE_NO_PAD.decode(s).map_err(|_| TokenError::Malformed)?;
    if !key.verify(format!("{h}.{p}").as_bytes(), &sig) {
        return Err(TokenError::Malformed);
    }
    let payload = URL_SAFE_NO_PAD.decode(p).map_err(|_| TokenError::Malformed)?;
    let claims: Claims = serde_json::from_slice(&payload).map_err(|_| TokenError::Malformed)?;
    let now = Utc::now().timestamp();
    if now >= claims.exp {
        return Err(TokenError::Expired { exp: claims.exp });
    }
    if now < claims.nbf {
        return Err(TokenError::Malformed);
    }
    Ok(claims)
}

/// Trims a trailing slash so `https://x/` and `https://x` compare equal, as ARM does.
pub(crate) fn same_audience(a: &str, b: &str) -> bool {
    a.trim_end_matches('/').eq_ignore_ascii_case(b.trim_end_matches('/'))
}

/// The v2.0 issuer of tokens for API applications: `{base}/{tenant}/v2.0`.
pub(crate) fn issuer_v2(base: &str, tenant: &str) -> String {
    format!("{base}/{tenant}/v2.0")
}

/// The v1.0 issuer on the simulator host (real Entra: `https://sts.windows.net/{tenant}/`).
pub(crate) fn issuer_v1(base: &str, tenant: &str) -> String {
    format!("{base}/{tenant}/")
}

/// An Entra error (`AADSTS...`) waiting to be rendered.
#[derive(Debug)]
pub(crate) struct EntraError {
    pub status: StatusCode,
    pub error: &'static str,
    pub code: u32,
    pub text: String,
}

fn fail(status: StatusCode, error: &'static str, code: u32, text: impl Into<String>) -> EntraError {
    EntraError {
        status,
        error,
        code,
        text: text.into(),
    }
}

impl EntraError {
    fn render(&self, shared: &Shared) -> Response {
        let trace = Uuid::new_v4();
        let corr = Uuid::new_v4();
        let ts = Utc::now().format("%Y-%m-%d %H:%M:%SZ").to_string();
        let (code, text) = (self.code, &self.text);
        let body = json!({
            "error": self.error,
            "error_description": format!("AADSTS{code}: {text} Trace ID: {trace} Correlation ID: {corr} Timestamp: {ts}"),
            "error_codes": [code],
            "timestamp": ts,
            "trace_id": trace.to_string(),
            "correlation_id": corr.to_string(),
            "error_uri": format!("{}/error?code={code}", shared.base_url),
        });
        reply::json(self.status, &body)
    }
}

fn tenant_not_found(tenant: &str, error: &'static str) -> EntraError {
    fail(
        StatusCode::BAD_REQUEST,
        error,
        90002,
        format!(
            "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."
        ),
    )
}

/// `POST /{tenant}/oauth2/v2.0/token` (client credentials). Returns the client id seen, for the
/// call log, and the response.
pub(crate) fn token_endpoint(shared: &Shared, tenant: &str, body: &[u8]) -> (Option<String>, Response) {
    let form: Vec<(String, String)> = form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    };
    let client_id = field("client_id");
    let result = {
        let state = shared.lock();
        authenticate_client(&state.world, tenant, &field)
            .and_then(|caller| issue(shared, &state.world, caller, &field("scope").unwrap_or_default()))
    };
    let response = match result {
        Ok(issued) => reply::json(
            StatusCode::OK,
            &json!({
                "token_type": "Bearer",
                "expires_in": issued.lifetime,
                "ext_expires_in": issued.lifetime,
                "access_token": issued.token,
            }),
        ),
        Err(e) => e.render(shared),
    };
    (client_id, response)
}

/// The client-credentials checks, in Entra's order: tenant, grant type, client, secret.
fn authenticate_client<'w>(
    world: &'w World,
    tenant: &str,
    field: &dyn Fn(&str) -> Option<String>,
) -> Result<&'w Caller, EntraError> {
    if !tenant.eq_ignore_ascii_case(&world.tenant_id) {
        return Err(tenant_not_found(tenant, "invalid_request"));
    }
    let missing = |name: &str| {
        fail(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            format!("The request body must contain the following parameter: '{name}'."),
        )
    };
    let grant = field("grant_type").ok_or_else(|| missing("grant_type"))?;
    if grant != "client_credentials" {
        return Err(fail(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            format!(
                "The request body must contain the following parameter: 'grant_type'. The provided grant type '{grant}' is not supported by this simulator."
            ),
        ));
    }
    let cid = field("client_id").ok_or_else(|| missing("client_id"))?;
    let Some(caller) = world.callers.iter().find(|c| c.client_id.eq_ignore_ascii_case(&cid)) else {
        return Err(fail(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            format!(
                "Application with identifier '{cid}' was not found in the directory '{}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
                world.tenant_id
            ),
        ));
    };
    match field("client_secret") {
        None => Err(fail(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        )),
        Some(secret) if secret != caller.client_secret => Err(fail(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.",
                caller.client_id
            ),
        )),
        Some(_) => Ok(caller),
    }
}

/// An issued access token.
pub(crate) struct Issued {
    pub token: String,
    pub lifetime: i64,
}

/// Issues an access token for `scope` to an authenticated caller: ARM and Graph get v1.0
/// tokens as before; an API application gets the token version it requests, with the app
/// roles assigned directly to the caller.
pub(crate) fn issue(shared: &Shared, world: &World, caller: &Caller, scope: &str) -> Result<Issued, EntraError> {
    if scope.is_empty() || scope.contains(' ') {
        return Err(fail(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            70011,
            format!(
                "The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."
            ),
        ));
    }
    let Some(resource) = scope.strip_suffix("/.default") else {
        return Err(fail(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            1002012,
            format!(
                "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
            ),
        ));
    };
    let now = Utc::now().timestamp();
    let lifetime = world.behaviour.token_lifetime_seconds as i64;
    let is_arm =
        same_audience(resource, &world.arm_audience) || same_audience(resource, "https://management.core.windows.net");
    // The simulator's own URL names Graph too: clouds registered from `/metadata/endpoints`
    // use it as Graph's audience and base URL at once.
    let is_graph = same_audience(resource, &world.graph_audience) || same_audience(resource, &shared.base_url);
    let token = if is_arm || is_graph {
        let claims = Claims {
            aud: resource.to_string(),
            iss: format!("https://sts.windows.net/{}/", world.tenant_id),
            iat: now,
            nbf: now,
            exp: now + lifetime,
            tid: world.tenant_id.clone(),
            oid: caller.object_id.clone(),
            sub: caller.object_id.clone(),
            appid: caller.client_id.clone(),
            appidacr: "1".into(),
            idtyp: "app".into(),
            ver: "1.0".into(),
            roles: if is_graph {
                caller.graph_permissions.clone()
            } else {
                Vec::new()
            },
        };
        mint(&shared.signing_key, &claims)
    } else if let Some((app, aud)) = world
        .applications
        .iter()
        .find_map(|a| a.resource_name(resource).map(|aud| (a, aud)))
    {
        let claims = app_claims(&shared.base_url, world, app, &aud, caller, now, lifetime)?;
        mint(&shared.signing_key, &claims)
    } else {
        return Err(fail(
            StatusCode::BAD_REQUEST,
            "invalid_resource",
            500011,
            format!(
                "The resource principal named {resource} was not found in the tenant named {}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.",
                world.tenant_id
            ),
        ));
    };
    Ok(Issued { token, lifetime })
}

/// App-only access token claims for an API application, v1.0 or v2.0 as it requests.
/// `roles` holds the values of app roles assigned directly to the caller's service principal:
/// Entra does not put roles a service principal holds through a group into app-only tokens.
fn app_claims(
    base: &str,
    world: &World,
    app: &Application,
    aud_v1: &str,
    caller: &Caller,
    now: i64,
    lifetime: i64,
) -> Result<Value, EntraError> {
    let roles: Vec<&str> = app
        .roles_of(&caller.object_id)
        .into_iter()
        .map(|r| r.value.as_str())
        .collect();
    if app.app_role_assignment_required && roles.is_empty() {
        let name = |n: &str| if n.is_empty() { String::new() } else { format!("({n})") };
        return Err(fail(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            501051,
            format!(
                "Application '{}'{} is not assigned to a role for the application '{}'{}.",
                caller.client_id,
                name(&caller.display_name),
                app.app_id,
                name(&app.display_name)
            ),
        ));
    }
    let tenant = &world.tenant_id;
    let uti = URL_SAFE_NO_PAD.encode(&Uuid::new_v4().as_bytes()[..16]);
    let mut claims = if app.requested_access_token_version == 1 {
        let iss = issuer_v1(base, tenant);
        json!({
            "aud": aud_v1,
            "iss": iss,
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "appid": caller.client_id,
            "appidacr": "1",
            "idp": iss,
            "idtyp": "app",
            "oid": caller.object_id,
            "sub": caller.object_id,
            "tid": tenant,
            "uti": uti,
            "ver": "1.0",
        })
    } else {
        json!({
            "aud": app.app_id,
            "iss": issuer_v2(base, tenant),
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "azp": caller.client_id,
            "azpacr": "1",
            "idtyp": "app",
            "oid": caller.object_id,
            "sub": caller.object_id,
            "tid": tenant,
            "uti": uti,
            "ver": "2.0",
        })
    };
    if !roles.is_empty() {
        claims["roles"] = json!(roles);
    }
    Ok(claims)
}

/// OpenID discovery and the JWKS, at the authority host like Entra's:
/// `/{tenant}/v2.0/.well-known/openid-configuration`, `/{tenant}/.well-known/openid-configuration`,
/// `/{tenant}/discovery/v2.0/keys` and `/{tenant}/discovery/keys`. `None` when the path is not one
/// of them; otherwise the operation id and the response.
pub(crate) fn discovery(shared: &Shared, method: &Method, segs: &[&str]) -> Option<(&'static str, Response)> {
    let l: Vec<String> = segs.iter().map(|s| s.to_ascii_lowercase()).collect();
    let ls: Vec<&str> = l.iter().map(String::as_str).collect();
    let (operation, v2, keys) = match ls.as_slice() {
        [_, "v2.0", ".well-known", "openid-configuration"] => ("OpenIdConfiguration", true, false),
        [_, ".well-known", "openid-configuration"] => ("OpenIdConfiguration", false, false),
        [_, "discovery", "v2.0", "keys"] => ("Jwks", true, true),
        [_, "discovery", "keys"] => ("Jwks", false, true),
        _ => return None,
    };
    if method != Method::GET && method != Method::HEAD {
        let body = json!({ "error": "invalid_request", "error_description": "AADSTS900561: The endpoint only accepts GET requests." });
        return Some((operation, reply::json(StatusCode::METHOD_NOT_ALLOWED, &body)));
    }
    let tenant = shared.lock().world.tenant_id.clone();
    // Entra serves discovery for the multi-tenant aliases too, with `{tenantid}` in the issuer:
    // MSAL opens `organizations` when the Azure CLI logs out or clears its accounts.
    let alias = ["common", "organizations", "consumers"]
        .into_iter()
        .find(|a| segs[0].eq_ignore_ascii_case(a));
    if !segs[0].eq_ignore_ascii_case(&tenant) && alias.is_none() {
        return Some((operation, tenant_not_found(segs[0], "invalid_tenant").render(shared)));
    }
    let base = &shared.base_url;
    let body = match (keys, v2) {
        (true, _) => {
            let issuer = issuer_v2(base, if alias.is_some() { "{tenantid}" } else { &tenant });
            let keys: Vec<Value> = shared
                .signing_key
                .published()
                .iter()
                .map(|k| k.jwk(v2.then_some(issuer.as_str())))
                .collect();
            json!({ "keys": keys })
        }
        (false, v2) => {
            let (path, issuer_tenant) = match alias {
                Some(a) => (a, "{tenantid}"),
                None => (tenant.as_str(), tenant.as_str()),
            };
            let mut doc = if v2 {
                openid_configuration_v2(base, path)
            } else {
                openid_configuration_v1(base, path)
            };
            doc["issuer"] = json!(if v2 {
                issuer_v2(base, issuer_tenant)
            } else {
                issuer_v1(base, issuer_tenant)
            });
            doc
        }
    };
    let mut response = reply::json(StatusCode::OK, &body);
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=86400, private"),
    );
    Some((operation, response))
}

fn host_of(base: &str) -> &str {
    base.trim_start_matches("https://")
}

fn openid_configuration_v2(base: &str, t: &str) -> Value {
    json!({
        "token_endpoint": format!("{base}/{t}/oauth2/v2.0/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{base}/{t}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": issuer_v2(base, t),
        "request_uri_parameter_supported": false,
        "userinfo_endpoint": format!("{base}/oidc/userinfo"),
        "authorization_endpoint": format!("{base}/{t}/oauth2/v2.0/authorize"),
        "device_authorization_endpoint": format!("{base}/{t}/oauth2/v2.0/devicecode"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "end_session_endpoint": format!("{base}/{t}/oauth2/v2.0/logout"),
        "claims_supported": [
            "sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name",
            "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username",
            "name", "tid", "ver", "at_hash", "c_hash", "email"
        ],
        "kerberos_endpoint": format!("{base}/{t}/kerberos"),
        "tenant_region_scope": "WW",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": host_of(base),
        "rbac_url": "https://pas.windows.net",
    })
}

fn openid_configuration_v1(base: &str, t: &str) -> Value {
    json!({
        "token_endpoint": format!("{base}/{t}/oauth2/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{base}/{t}/discovery/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "token id_token", "token"],
        "scopes_supported": ["openid"],
        "issuer": issuer_v1(base, t),
        "microsoft_multi_refresh_token": true,
        "authorization_endpoint": format!("{base}/{t}/oauth2/authorize"),
        "device_authorization_endpoint": format!("{base}/{t}/oauth2/devicecode"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "end_session_endpoint": format!("{base}/{t}/oauth2/logout"),
        "claims_supported": [
            "sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name",
            "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "amr", "nonce", "email",
            "given_name", "family_name", "nickname"
        ],
        "check_session_iframe": format!("{base}/{t}/oauth2/checksession"),
        "userinfo_endpoint": format!("{base}/{t}/openid/userinfo"),
        "kerberos_endpoint": format!("{base}/{t}/kerberos"),
        "tenant_region_scope": "WW",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": host_of(base),
        "rbac_url": "https://pas.windows.net",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Claims {
        Claims {
            aud: "a".into(),
            iss: "i".into(),
            iat: 0,
            nbf: 0,
            exp,
            tid: "t".into(),
            oid: "o".into(),
            sub: "o".into(),
            appid: "c".into(),
            appidacr: "1".into(),
            idtyp: "app".into(),
            ver: "1.0".into(),
            roles: vec![],
        }
    }

    fn tamper_header(token: &str, header: &str) -> String {
        let rest = token.split_once('.').unwrap().1;
        format!("{}.{rest}", URL_SAFE_NO_PAD.encode(header))
    }

    #[test]
    fn tokens_round_trip_and_reject_tampering_other_keys_and_expiry() {
        let keys = KeyRing::new(SigningKey::generate().unwrap());
        let t = mint(&keys, &claims(i64::MAX / 2));
        assert_eq!(verify(&keys, &t).unwrap().oid, "o");
        let other = KeyRing::new(SigningKey::generate().unwrap());
        assert!(matches!(verify(&other, &t), Err(TokenError::Malformed)));
        assert!(matches!(verify(&keys, "a.b"), Err(TokenError::Malformed)));
        let kid = keys.current().kid.clone();
        for header in [
            r#"{"typ":"JWT","alg":"none"}"#.to_string(),
            format!(r#"{{"typ":"JWT","alg":"HS256","kid":"{kid}"}}"#),
            r#"{"typ":"JWT","alg":"RS256"}"#.to_string(),
        ] {
            assert!(matches!(
                verify(&keys, &tamper_header(&t, &header)),
                Err(TokenError::Malformed)
            ));
        }
        let old = mint(&keys, &claims(1));
        assert!(matches!(verify(&keys, &old), Err(TokenError::Expired { exp: 1 })));
    }

    #[test]
    fn v2_claims_are_read_through_azp() {
        let keys = KeyRing::new(SigningKey::generate().unwrap());
        let t = mint(
            &keys,
            &json!({ "aud": "x", "iss": "i", "exp": i64::MAX / 2, "tid": "t", "oid": "o", "azp": "c", "azpacr": "1" }),
        );
        let c = verify(&keys, &t).unwrap();
        assert_eq!((c.appid.as_str(), c.appidacr.as_str()), ("c", "1"));
    }
}
