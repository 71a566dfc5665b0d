//! One error type for every ARM, Graph and token failure, and its classification.
//!
//! The client never retries: the job queue does, with back-off, and records every attempt.
//! So the client's job is to say precisely *what* failed (status, code, message, request ids)
//! and *which kind of retry makes sense* ([`AzureErrorClass`]). Classification is by ARM/Graph
//! error `code` first (codes are the contract; messages are not) and HTTP status second.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;
use uuid::Uuid;

/// Where the failure happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// ARM or Graph answered with an error status.
    Http,
    /// The connection failed (DNS, TCP, TLS, reset) before a complete response.
    Transport,
    /// The request or the token acquisition exceeded its timeout.
    Timeout,
    /// Acquiring an Entra token failed (the token endpoint answered with an error, or the
    /// credential could not run).
    Token,
    /// A success response whose body did not match the expected shape.
    Decode,
    /// The client refused to send the request (e.g. a `nextLink` to a foreign host).
    Refused,
    /// Not sent: acr-attach's budget of ARM's quota has a token for it only after
    /// `retry_after` (reserved for this job; see [`super::quota`]).
    Quota,
}

/// What kind of Azure error this is, which decides what the caller does about it (the job
/// kinds map it to the class of a failed attempt: transient, permanent, not yet consistent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AzureErrorClass {
    /// Retry until the job deadline, honouring `retry_after`.
    Transient,
    /// The principal is not (yet) visible to ARM: directory replication. Retry for a bounded window.
    PrincipalNotFound,
    /// The caller lacks a permission. Its own RBAC may still be propagating: retry briefly,
    /// then report [`AzureError::authorization`].
    AuthorizationFailed,
    /// The resource does not exist.
    NotFound,
    /// The same (scope, principal, role) is already assigned under another name.
    RoleAssignmentExists,
    /// ARM's request quota is spent (429 `Retry-After`), or acr-attach's own budget of it
    /// ([`ErrorKind::Quota`]): wait, without counting a failed attempt.
    Throttled,
    /// A validation or configuration error: retrying will not help.
    Permanent,
}

/// One entry of an ARM error's `details`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ErrorDetail {
    /// Error code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// Who was denied what, parsed from an authorization failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct AuthorizationDenied {
    /// The action (ARM, e.g. `Microsoft.Authorization/roleAssignments/write`) or the Graph
    /// permission the operation needs (e.g. `GroupMember.ReadWrite.All`).
    pub action: Option<String>,
    /// The ARM scope, or the Graph resource path.
    pub scope: Option<String>,
}

/// A failed Azure call. A thin box around [`AzureErrorInfo`] (read its fields directly
/// through `Deref`), so `Result<T, AzureError>` stays one pointer wide.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AzureError(Box<AzureErrorInfo>);

impl std::ops::Deref for AzureError {
    type Target = AzureErrorInfo;
    fn deref(&self) -> &AzureErrorInfo {
        &self.0
    }
}

impl std::ops::DerefMut for AzureError {
    fn deref_mut(&mut self) -> &mut AzureErrorInfo {
        &mut self.0
    }
}

impl From<AzureErrorInfo> for AzureError {
    fn from(info: AzureErrorInfo) -> Self {
        AzureError(Box::new(info))
    }
}

/// Everything known about a failed Azure call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AzureErrorInfo {
    /// The client operation, e.g. `put_role_assignment`.
    pub operation: String,
    /// Where it failed.
    pub kind: ErrorKind,
    /// HTTP status, if a response arrived.
    pub status: Option<u16>,
    /// ARM/Graph error code (`AuthorizationFailed`, `Request_ResourceNotFound`) or the
    /// OAuth error (`invalid_client`).
    pub code: Option<String>,
    /// Human-readable message.
    pub message: String,
    /// ARM error target.
    pub target: Option<String>,
    /// ARM error details.
    pub details: Vec<ErrorDetail>,
    /// Graph/Entra permission hint for [`AzureErrorClass::AuthorizationFailed`] (internal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_permission: Option<String>,
    /// Request path (no query string).
    pub path: Option<String>,
    /// `x-ms-request-id` (ARM) / `request-id` (Graph).
    pub request_id: Option<String>,
    /// The correlation id sent as `x-ms-correlation-request-id`.
    pub correlation_id: Option<Uuid>,
    /// Parsed `Retry-After`.
    pub retry_after: Option<Duration>,
}

impl fmt::Display for AzureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for AzureErrorInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed", self.operation)?;
        match self.kind {
            ErrorKind::Http => {}
            ErrorKind::Transport => f.write_str(" (transport error)")?,
            ErrorKind::Timeout => f.write_str(" (timeout)")?,
            ErrorKind::Token => f.write_str(" (token acquisition)")?,
            ErrorKind::Decode => f.write_str(" (unexpected response body)")?,
            ErrorKind::Refused => f.write_str(" (refused by client)")?,
            ErrorKind::Quota => f.write_str(" (not sent: waiting for ARM quota)")?,
        }
        if let Some(s) = self.status {
            write!(f, ": HTTP {s}")?;
        }
        if let Some(c) = &self.code {
            write!(f, " {c}")?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(r) = &self.request_id {
            write!(f, " (request id {r}")?;
            if let Some(c) = self.correlation_id {
                write!(f, ", correlation id {c}")?;
            }
            f.write_str(")")?;
        } else if let Some(c) = self.correlation_id {
            write!(f, " (correlation id {c})")?;
        }
        Ok(())
    }
}

impl std::error::Error for AzureError {}

/// `code` given to transport/token errors caused by a rejected TLS certificate.
pub const TLS_CERTIFICATE: &str = "tls_certificate";

/// True if an error chain's text shows rustls rejecting the peer certificate.
pub(crate) fn is_certificate_error(chain: &str) -> bool {
    chain.contains("invalid peer certificate")
}

fn code_is(code: &Option<String>, candidates: &[&str]) -> bool {
    code.as_deref()
        .is_some_and(|c| candidates.iter().any(|k| c.eq_ignore_ascii_case(k)))
}

impl AzureError {
    /// A bare error of `kind` (used for transport/timeout/refusals).
    pub fn new(operation: &str, kind: ErrorKind, message: impl Into<String>) -> Self {
        AzureErrorInfo {
            operation: operation.to_string(),
            kind,
            status: None,
            code: None,
            message: message.into(),
            target: None,
            details: Vec::new(),
            required_permission: None,
            path: None,
            request_id: None,
            correlation_id: None,
            retry_after: None,
        }
        .into()
    }
}

impl AzureErrorInfo {
    /// Classifies the error (see [`AzureErrorClass`]).
    pub fn class(&self) -> AzureErrorClass {
        use AzureErrorClass::*;
        // An untrusted or invalid server certificate is configuration (missing --ca-bundle,
        // wrong endpoint), not something a retry fixes.
        if code_is(&self.code, &[TLS_CERTIFICATE]) {
            return Permanent;
        }
        match self.kind {
            ErrorKind::Quota => return Throttled,
            ErrorKind::Transport | ErrorKind::Timeout => return Transient,
            ErrorKind::Refused | ErrorKind::Decode => return Permanent,
            ErrorKind::Token => {
                return match self.status {
                    Some(s) if s >= 500 || s == 429 || s == 408 => Transient,
                    Some(_) => Permanent,
                    // No response status: the credential failed before or without a
                    // response. `code` carries `transport` for connection problems.
                    None if code_is(&self.code, &["transport", "timeout"]) => Transient,
                    None => Permanent,
                };
            }
            ErrorKind::Http => {}
        }
        let code = &self.code;
        if code_is(
            code,
            &[
                "RetryableErrorDueToAnotherOperation",
                "AnotherOperationInProgress",
                "ExpiredAuthenticationToken",
            ],
        ) {
            return Transient;
        }
        if code_is(code, &["PrincipalNotFound"]) {
            return PrincipalNotFound;
        }
        if code_is(
            code,
            &[
                "AuthorizationFailed",
                "LinkedAuthorizationFailed",
                "Authorization_RequestDenied",
            ],
        ) {
            return AuthorizationFailed;
        }
        if code_is(code, &["RoleAssignmentExists"]) {
            return RoleAssignmentExists;
        }
        if code_is(
            code,
            &[
                "ResourceNotFound",
                "ResourceGroupNotFound",
                "SubscriptionNotFound",
                "RoleAssignmentNotFound",
                "Request_ResourceNotFound",
            ],
        ) {
            return NotFound;
        }
        match self.status {
            Some(429) => Throttled,
            Some(408) => Transient,
            Some(s) if s >= 500 => Transient,
            Some(404) => NotFound,
            _ => Permanent,
        }
    }

    /// For authorization failures: the denied action and scope. ARM messages read
    /// "... does not have authorization ... to perform action 'X' over scope 'Y' ..."; Graph's
    /// `Authorization_RequestDenied` names neither, so the operation's permission hint and
    /// the request path are given instead.
    pub fn authorization(&self) -> Option<AuthorizationDenied> {
        if self.class() != AzureErrorClass::AuthorizationFailed {
            return None;
        }
        let action = quoted_after(&self.message, "action '").or_else(|| self.required_permission.clone());
        let scope = quoted_after(&self.message, "scope '").or_else(|| self.path.clone());
        Some(AuthorizationDenied { action, scope })
    }

    /// For `RoleAssignmentExists`: the existing assignment's name, when ARM's message carries
    /// "The ID of the existing role assignment is {guid}".
    pub fn existing_role_assignment(&self) -> Option<Uuid> {
        const MARK: &str = "the id of the existing role assignment is ";
        let lower = self.message.to_ascii_lowercase();
        let start = lower.find(MARK)? + MARK.len();
        let hex: String = self.message[start..]
            .chars()
            .take_while(|c| c.is_ascii_hexdigit() || *c == '-')
            .collect();
        Uuid::parse_str(&hex).ok()
    }
}

fn quoted_after(message: &str, marker: &str) -> Option<String> {
    let start = message.find(marker)? + marker.len();
    let len = message[start..].find('\'')?;
    let v = &message[start..start + len];
    (!v.is_empty()).then(|| v.to_string())
}

/// Parses `Retry-After`: delta-seconds or an HTTP date (relative to `now`).
pub fn parse_retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let date = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let delta = date.with_timezone(&chrono::Utc) - now;
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: serde_json::Value,
}

#[derive(Deserialize, Default)]
struct ErrorBody {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    details: Vec<serde_json::Value>,
}

fn detail_from(v: &serde_json::Value) -> ErrorDetail {
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
    ErrorDetail {
        code: s("code"),
        message: s("message"),
        target: s("target"),
    }
}

/// The fields parsed from an error response body.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct ParsedBody {
    pub code: Option<String>,
    pub message: String,
    pub target: Option<String>,
    pub details: Vec<ErrorDetail>,
    pub graph_request_id: Option<String>,
}

/// Parses ARM (`{error:{code,message,target,details,additionalInfo}}`), Graph
/// (`{error:{code,message,innerError}}`), flat (`{code,message}`), Entra token
/// (`{error:"invalid_client",error_description}`) and non-JSON bodies.
pub(crate) fn parse_error_body(body: &[u8]) -> ParsedBody {
    let text = String::from_utf8_lossy(body);
    let fallback = || ParsedBody {
        message: if text.trim().is_empty() {
            "(empty response body)".to_string()
        } else {
            truncate(text.trim(), 500)
        },
        ..Default::default()
    };
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return fallback();
    };
    if let Ok(env) = serde_json::from_value::<ErrorEnvelope>(value.clone()) {
        match env.error {
            serde_json::Value::Object(_) => {
                let inner = env.error;
                let b: ErrorBody = serde_json::from_value(inner.clone()).unwrap_or_default();
                let graph_request_id = inner
                    .get("innerError")
                    .or_else(|| inner.get("innererror"))
                    .and_then(|i| i.get("request-id"))
                    .and_then(|v| v.as_str())
                    .map(str::to_string);
                return ParsedBody {
                    code: b.code,
                    message: b.message.unwrap_or_default(),
                    target: b.target,
                    details: b.details.iter().map(detail_from).collect(),
                    graph_request_id,
                };
            }
            serde_json::Value::String(oauth_error) => {
                let description = value
                    .get("error_description")
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_string();
                return ParsedBody {
                    code: Some(oauth_error),
                    message: description,
                    ..Default::default()
                };
            }
            _ => {}
        }
    }
    if let Some(code) = value.get("code").and_then(|v| v.as_str()) {
        let b: ErrorBody = serde_json::from_value(value.clone()).unwrap_or_default();
        return ParsedBody {
            code: Some(code.to_string()),
            message: b.message.unwrap_or_default(),
            target: b.target,
            details: b.details.iter().map(detail_from).collect(),
            graph_request_id: None,
        };
    }
    fallback()
}

/// `err: source: source...`, skipping sources whose text is already included.
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut s = err.to_string();
    let mut cur = err.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !m.is_empty() && !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max).collect();
        t.push('…');
        t
    }
}

/// Maps a credential's error into an [`AzureError`] of kind [`ErrorKind::Token`],
/// digging the token endpoint's HTTP status and OAuth error out of the error chain.
pub(crate) fn from_token_error(operation: &str, scope: &str, err: &azure_core::Error) -> AzureError {
    use azure_core::error::ErrorKind as K;
    let mut status = None;
    let mut parsed = None;
    let mut transport = false;
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(ae) = e.downcast_ref::<azure_core::Error>() {
            match ae.kind() {
                K::HttpResponse {
                    status: s,
                    raw_response,
                    ..
                } => {
                    status.get_or_insert(u16::from(*s));
                    if parsed.is_none()
                        && let Some(r) = raw_response
                    {
                        parsed = Some(parse_error_body(r.body().as_ref()));
                    }
                }
                K::Connection | K::Io => transport = true,
                _ => {}
            }
        }
        if let Some(re) = e.downcast_ref::<reqwest::Error>()
            && (re.is_connect() || re.is_timeout() || re.is_request())
        {
            transport = true;
        }
        if e.downcast_ref::<std::io::Error>().is_some() {
            transport = true;
        }
        current = e.source();
    }
    let parsed = parsed.unwrap_or_default();
    let chain = error_chain(err);
    let certificate = is_certificate_error(&chain);
    let mut message = format!("acquiring a token for {scope}: {chain}");
    if !parsed.message.is_empty() && !message.contains(&parsed.message) {
        message.push_str(&format!(" ({})", parsed.message));
    }
    let code = parsed.code.or_else(|| {
        if certificate {
            Some(TLS_CERTIFICATE.to_string())
        } else {
            (status.is_none() && transport).then(|| "transport".to_string())
        }
    });
    let mut e = AzureError::new(operation, ErrorKind::Token, truncate(&message, 2000));
    e.status = status;
    e.code = code;
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(status: u16, body: &str) -> AzureError {
        let p = parse_error_body(body.as_bytes());
        let mut e = AzureError::new("op", ErrorKind::Http, p.message);
        e.status = Some(status);
        e.code = p.code;
        e.target = p.target;
        e.details = p.details;
        e
    }

    fn arm(status: u16, code: &str, message: &str) -> AzureError {
        http(
            status,
            &serde_json::json!({"error": {"code": code, "message": message}}).to_string(),
        )
    }

    #[test]
    fn classification_table() {
        use AzureErrorClass::*;
        let cases = [
            (arm(500, "InternalServerError", "x"), Transient),
            (arm(503, "ServiceUnavailable", "x"), Transient),
            (arm(429, "TooManyRequests", "x"), Throttled),
            (arm(429, "SubscriptionRequestsThrottled", "x"), Throttled),
            (arm(409, "AnotherOperationInProgress", "x"), Transient),
            (arm(429, "RetryableErrorDueToAnotherOperation", "x"), Transient),
            (arm(401, "ExpiredAuthenticationToken", "x"), Transient),
            (
                arm(
                    400,
                    "PrincipalNotFound",
                    "Principal abc does not exist in the directory t.",
                ),
                PrincipalNotFound,
            ),
            (arm(403, "AuthorizationFailed", "x"), AuthorizationFailed),
            (arm(403, "LinkedAuthorizationFailed", "x"), AuthorizationFailed),
            (
                arm(
                    403,
                    "Authorization_RequestDenied",
                    "Insufficient privileges to complete the operation.",
                ),
                AuthorizationFailed,
            ),
            (arm(404, "ResourceNotFound", "x"), NotFound),
            (arm(404, "ResourceGroupNotFound", "x"), NotFound),
            (arm(404, "SubscriptionNotFound", "x"), NotFound),
            (arm(404, "RoleAssignmentNotFound", "x"), NotFound),
            (arm(404, "Request_ResourceNotFound", "x"), NotFound),
            (arm(404, "SomethingElse", "x"), NotFound),
            (
                arm(409, "RoleAssignmentExists", "The role assignment already exists."),
                RoleAssignmentExists,
            ),
            (arm(400, "RoleAssignmentUpdateNotPermitted", "x"), Permanent),
            (arm(400, "InvalidApiVersionParameter", "x"), Permanent),
            (arm(401, "InvalidAuthenticationToken", "x"), Permanent),
            (arm(401, "InvalidAuthenticationTokenAudience", "x"), Permanent),
            (arm(401, "InvalidAuthenticationTokenTenant", "x"), Permanent),
            (arm(403, "RequestDisallowedByPolicy", "x"), Permanent),
            (arm(409, "Conflict", "x"), Permanent),
            (http(502, "<html>Bad gateway</html>"), Transient),
            (AzureError::new("op", ErrorKind::Transport, "reset"), Transient),
            (AzureError::new("op", ErrorKind::Timeout, "slow"), Transient),
            (AzureError::new("op", ErrorKind::Refused, "foreign nextLink"), Permanent),
            (AzureError::new("op", ErrorKind::Decode, "bad json"), Permanent),
        ];
        for (e, want) in cases {
            assert_eq!(e.class(), want, "{e}");
        }
    }

    #[test]
    fn token_error_classification() {
        let mut e = AzureError::new("get_registry", ErrorKind::Token, "x");
        e.status = Some(401);
        e.code = Some("invalid_client".into());
        assert_eq!(e.class(), AzureErrorClass::Permanent);
        e.status = Some(503);
        assert_eq!(e.class(), AzureErrorClass::Transient);
        e.status = None;
        e.code = Some("transport".into());
        assert_eq!(e.class(), AzureErrorClass::Transient);
        e.code = None;
        assert_eq!(e.class(), AzureErrorClass::Permanent);
        let t = AzureError::new("get_registry", ErrorKind::Timeout, "token timeout");
        assert_eq!(t.class(), AzureErrorClass::Transient);
        e.code = Some(TLS_CERTIFICATE.into());
        assert_eq!(e.class(), AzureErrorClass::Permanent);
        let mut tls = AzureError::new("op", ErrorKind::Transport, "invalid peer certificate: UnknownIssuer");
        tls.code = Some(TLS_CERTIFICATE.into());
        assert_eq!(tls.class(), AzureErrorClass::Permanent);
    }

    #[test]
    fn parses_arm_error_with_details() {
        let body = r#"{"error":{"code":"InvalidTemplate","message":"Bad","target":"properties.x","details":[{"code":"Inner","message":"inner msg"}],"additionalInfo":[{"type":"PolicyViolation","info":{}}]}}"#;
        let p = parse_error_body(body.as_bytes());
        assert_eq!(p.code.as_deref(), Some("InvalidTemplate"));
        assert_eq!(p.target.as_deref(), Some("properties.x"));
        assert_eq!(p.details.len(), 1);
        assert_eq!(p.details[0].code.as_deref(), Some("Inner"));
    }

    #[test]
    fn parses_graph_error() {
        let body = r#"{"error":{"code":"Request_ResourceNotFound","message":"Resource 'x' does not exist or one of its queried reference-property objects are not present.","innerError":{"date":"2024-01-01T00:00:00","request-id":"9b1c-req","client-request-id":"9b1c-creq"}}}"#;
        let p = parse_error_body(body.as_bytes());
        assert_eq!(p.code.as_deref(), Some("Request_ResourceNotFound"));
        assert_eq!(p.graph_request_id.as_deref(), Some("9b1c-req"));
    }

    #[test]
    fn parses_entra_flat_and_non_json_errors() {
        let body = r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.","error_codes":[7000215]}"#;
        let p = parse_error_body(body.as_bytes());
        assert_eq!(p.code.as_deref(), Some("invalid_client"));
        assert!(p.message.starts_with("AADSTS7000215"));

        let p = parse_error_body(br#"{"code":"BadRequest","message":"flat"}"#);
        assert_eq!(p.code.as_deref(), Some("BadRequest"));
        assert_eq!(p.message, "flat");

        let p = parse_error_body(b"<html><body>502 Bad Gateway</body></html>");
        assert_eq!(p.code, None);
        assert!(p.message.contains("502 Bad Gateway"));
        assert_eq!(parse_error_body(b"").message, "(empty response body)");
        let long = "x".repeat(2000);
        assert!(parse_error_body(long.as_bytes()).message.chars().count() <= 501);
    }

    #[test]
    fn authorization_action_and_scope() {
        let e = arm(
            403,
            "AuthorizationFailed",
            "The client 'c' with object id 'o' does not have authorization or an ABAC condition not fulfilled to perform action 'Microsoft.Authorization/roleAssignments/write' over scope '/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/r/providers/Microsoft.Authorization/roleAssignments/g' or the scope is invalid. If access was recently granted, please refresh your credentials.",
        );
        let a = e.authorization().unwrap();
        assert_eq!(
            a.action.as_deref(),
            Some("Microsoft.Authorization/roleAssignments/write")
        );
        assert!(a.scope.unwrap().ends_with("/roleAssignments/g"));

        let mut g = arm(
            403,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        );
        g.required_permission = Some("GroupMember.ReadWrite.All".into());
        g.path = Some("/v1.0/groups/x/members/$ref".into());
        let a = g.authorization().unwrap();
        assert_eq!(a.action.as_deref(), Some("GroupMember.ReadWrite.All"));
        assert_eq!(a.scope.as_deref(), Some("/v1.0/groups/x/members/$ref"));
        assert!(arm(404, "ResourceNotFound", "x").authorization().is_none());
    }

    #[test]
    fn existing_assignment_id() {
        let e = arm(
            409,
            "RoleAssignmentExists",
            "The role assignment already exists. The ID of the existing role assignment is 88bd9d9f6e3c4d6d9bd5ea1b8c5ba98f.",
        );
        assert_eq!(
            e.existing_role_assignment().unwrap().to_string(),
            "88bd9d9f-6e3c-4d6d-9bd5-ea1b8c5ba98f"
        );
        let e = arm(409, "RoleAssignmentExists", "The role assignment already exists.");
        assert_eq!(e.existing_role_assignment(), None);
    }

    #[test]
    fn retry_after_forms() {
        let now = chrono::DateTime::parse_from_rfc3339("2015-10-21T07:28:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn serde_round_trip_for_job_records() {
        let mut e = arm(429, "TooManyRequests", "slow down");
        e.retry_after = Some(Duration::from_secs(3));
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["code"], "TooManyRequests");
        assert_eq!(json["kind"], "http");
        let back: AzureError = serde_json::from_value(json).unwrap();
        assert_eq!(back, e);
        assert_eq!(std::mem::size_of::<AzureError>(), std::mem::size_of::<usize>());
    }

    #[test]
    fn display_includes_ids() {
        let mut e = arm(429, "TooManyRequests", "slow down");
        e.request_id = Some("rid".into());
        e.correlation_id = Some(Uuid::nil());
        let s = e.to_string();
        assert!(
            s.contains("HTTP 429 TooManyRequests: slow down (request id rid, correlation id 00000000"),
            "{s}"
        );
    }
}
