//! The Entra token endpoint and the access tokens it mints (JWT-shaped, HMAC-signed with a
//! per-start key so a token from another simulator run is rejected like a forged one).

use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use ring::hmac;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use crate::reply;
use crate::state::Shared;

/// Claims carried by simulator tokens (the subset ARM and Graph actually look at).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Claims {
    pub aud: String,
    pub iss: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub tid: String,
    pub oid: String,
    pub sub: String,
    pub appid: String,
    pub appidacr: String,
    pub idtyp: String,
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

fn sign(key: &[u8], data: &[u8]) -> Vec<u8> {
    let k = hmac::Key::new(hmac::HMAC_SHA256, key);
    hmac::sign(&k, data).as_ref().to_vec()
}

pub(crate) fn mint(key: &[u8], claims: &Claims) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"HS256"}"#);
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims serialize"));
    let signing_input = format!("{header}.{payload}");
    let sig = URL_SAFE_NO_PAD.encode(sign(key, signing_input.as_bytes()));
    format!("{signing_input}.{sig}")
}

/// Checks signature and lifetime; audience is the caller's business (ARM and Graph differ).
pub(crate) fn verify(key: &[u8], token: &str) -> Result<Claims, TokenError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(TokenError::Malformed);
    };
    let sig = URL_SAFE_NO_PAD.decode(s).map_err(|_| TokenError::Malformed)?;
    let k = hmac::Key::new(hmac::HMAC_SHA256, key);
    hmac::verify(&k, format!("{h}.{p}").as_bytes(), &sig).map_err(|_| TokenError::Malformed)?;
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

fn entra_error(shared: &Shared, status: StatusCode, error: &str, code: u32, text: &str) -> Response {
    let trace = Uuid::new_v4();
    let corr = Uuid::new_v4();
    let ts = Utc::now().format("%Y-%m-%d %H:%M:%SZ").to_string();
    let body = json!({
        "error": error,
        "error_description": format!("AADSTS{code}: {text} Trace ID: {trace} Correlation ID: {corr} Timestamp: {ts}"),
        "error_codes": [code],
        "timestamp": ts,
        "trace_id": trace.to_string(),
        "correlation_id": corr.to_string(),
        "error_uri": format!("{}/error?code={code}", shared.base_url),
    });
    reply::json(status, &body)
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
    let state = shared.lock();
    let world = &state.world;
    if !tenant.eq_ignore_ascii_case(&world.tenant_id) {
        let text = format!(
            "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."
        );
        return (
            client_id,
            entra_error(shared, StatusCode::BAD_REQUEST, "invalid_request", 90002, &text),
        );
    }
    let Some(grant) = field("grant_type") else {
        let text = "The request body must contain the following parameter: 'grant_type'.";
        return (
            client_id,
            entra_error(shared, StatusCode::BAD_REQUEST, "invalid_request", 900144, text),
        );
    };
    if grant != "client_credentials" {
        let text = format!(
            "The request body must contain the following parameter: 'grant_type'. The provided grant type '{grant}' is not supported by this simulator."
        );
        return (
            client_id,
            entra_error(shared, StatusCode::BAD_REQUEST, "unsupported_grant_type", 70003, &text),
        );
    }
    let Some(cid) = client_id.clone() else {
        let text = "The request body must contain the following parameter: 'client_id'.";
        return (
            None,
            entra_error(shared, StatusCode::BAD_REQUEST, "invalid_request", 900144, text),
        );
    };
    let Some(caller) = world.callers.iter().find(|c| c.client_id.eq_ignore_ascii_case(&cid)) else {
        let text = format!(
            "Application with identifier '{cid}' was not found in the directory '{}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
            world.tenant_id
        );
        return (
            client_id,
            entra_error(shared, StatusCode::BAD_REQUEST, "unauthorized_client", 700016, &text),
        );
    };
    match field("client_secret") {
        None => {
            let text = "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.";
            return (
                client_id,
                entra_error(shared, StatusCode::UNAUTHORIZED, "invalid_client", 7000218, text),
            );
        }
        Some(secret) if secret != caller.client_secret => {
            let text = format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.",
                caller.client_id
            );
            return (
                client_id,
                entra_error(shared, StatusCode::UNAUTHORIZED, "invalid_client", 7000215, &text),
            );
        }
        Some(_) => {}
    }
    let scope = field("scope").unwrap_or_default();
    let resource = scope.strip_suffix("/.default").unwrap_or("");
    let is_arm =
        same_audience(resource, &world.arm_audience) || same_audience(resource, "https://management.core.windows.net");
    let is_graph = same_audience(resource, &world.graph_audience);
    if scope.contains(' ') || !(is_arm || is_graph) {
        let text = format!(
            "The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."
        );
        return (
            client_id,
            entra_error(shared, StatusCode::BAD_REQUEST, "invalid_scope", 70011, &text),
        );
    }
    let now = Utc::now().timestamp();
    let lifetime = world.behaviour.token_lifetime_seconds as i64;
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
    let token = mint(&shared.signing_key, &claims);
    let body = json!({
        "token_type": "Bearer",
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": token,
    });
    (client_id, reply::json(StatusCode::OK, &body))
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

    #[test]
    fn tokens_round_trip_and_reject_tampering_and_expiry() {
        let key = b"k1";
        let t = mint(key, &claims(i64::MAX / 2));
        assert_eq!(verify(key, &t).unwrap().oid, "o");
        assert!(matches!(verify(b"k2", &t), Err(TokenError::Malformed)));
        assert!(matches!(verify(key, "a.b"), Err(TokenError::Malformed)));
        let old = mint(key, &claims(1));
        assert!(matches!(verify(key, &old), Err(TokenError::Expired { exp: 1 })));
    }
}
