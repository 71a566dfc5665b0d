//! ARM bearer-token validation with ARM's 401 codes and `WWW-Authenticate` challenge.

use axum::http::{HeaderMap, StatusCode};
use chrono::Utc;

use super::errors::ArmError;
use crate::auth::{self, TokenError};
use crate::state::Shared;

/// Validates the bearer token for ARM; returns its claims.
pub(super) fn authenticate(
    shared: &Shared,
    headers: &HeaderMap,
    arm_audience: &str,
    tenant: &str,
) -> Result<auth::Claims, ArmError> {
    let challenge = |desc: &str| {
        format!(
            "Bearer authorization_uri=\"{}/{tenant}\", error=\"invalid_token\", error_description=\"{desc}\"",
            shared.base_url
        )
    };
    let fail = |code: &str, message: String, desc: &str| {
        ArmError::new(StatusCode::UNAUTHORIZED, code, message).with_header("www-authenticate", challenge(desc))
    };
    let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else {
        return Err(fail(
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing.".into(),
            "The authentication failed because of missing 'Authorization' header.",
        ));
    };
    let value = value.to_str().unwrap_or_default();
    let Some(token) = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")) else {
        return Err(fail(
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is provided in an invalid format.".into(),
            "The access token is missing or invalid.",
        ));
    };
    let claims = match auth::verify(&shared.signing_key, token.trim()) {
        Ok(c) => c,
        Err(TokenError::Malformed) => {
            return Err(fail(
                "InvalidAuthenticationToken",
                "The access token is invalid.".into(),
                "The access token is invalid.",
            ));
        }
        Err(TokenError::Expired { exp }) => {
            let fmt = |t: chrono::DateTime<Utc>| t.format("%-m/%-d/%Y %-I:%M:%S %p").to_string();
            let exp = chrono::DateTime::from_timestamp(exp, 0).unwrap_or_default();
            return Err(fail(
                "ExpiredAuthenticationToken",
                format!(
                    "The access token expiry UTC time '{}' is earlier than current UTC time '{}'.",
                    fmt(exp),
                    fmt(Utc::now())
                ),
                "The access token has expired.",
            ));
        }
    };
    if !auth::same_audience(&claims.aud, arm_audience)
        && !auth::same_audience(&claims.aud, "https://management.core.windows.net")
    {
        let a = arm_audience.trim_end_matches('/');
        return Err(fail(
            "InvalidAuthenticationTokenAudience",
            format!(
                "The access token has been obtained for wrong audience or resource '{}'. It should exactly match with one of the allowed audiences 'https://management.core.windows.net/','https://management.core.windows.net','{a}/','{a}'.",
                claims.aud
            ),
            "The access token has been obtained for wrong audience or resource.",
        ));
    }
    if !claims.tid.eq_ignore_ascii_case(tenant) {
        return Err(fail(
            "InvalidAuthenticationTokenTenant",
            format!(
                "The access token is from the wrong issuer '{}'. It must match the tenant '{tenant}' associated with this subscription.",
                claims.iss
            ),
            "The access token is from the wrong issuer.",
        ));
    }
    Ok(claims)
}
