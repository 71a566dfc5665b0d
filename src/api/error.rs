//! The one error type of the HTTP layer and its body, the shape Azure users know:
//! `{"error": {"code", "message", "target"?, "details"?}}`.
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorResponse {
    pub error: ErrorBody,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable, machine-readable code (e.g. `InvalidRequestContent`, `JobNotFound`).
    pub code: String,
    /// What went wrong and how to fix it, for people.
    pub message: String,
    /// The part of the request the error is about (a field, a header, a parameter).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(no_recursion)]
    pub details: Vec<ErrorBody>,
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            body: ErrorBody {
                code: code.into(),
                message: message.into(),
                target: None,
                details: Vec::new(),
            },
        }
    }
    /// The part of the request the error is about; clipped like any quoted input (a target
    /// may name a map key the client chose).
    pub fn with_target(mut self, target: impl Into<String>) -> Self {
        self.body.target = Some(clip(&target.into()));
        self
    }
    pub fn with_details(mut self, details: Vec<ErrorBody>) -> Self {
        self.body.details = details;
        self
    }
    pub fn bad_request(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
    pub fn not_found(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }
    pub fn conflict(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            "the service failed to handle the request; the x-request-id header identifies it in the logs",
        )
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            e if crate::queue::persist::database_unreachable(&e) || matches!(e, sqlx::Error::PoolClosed) => {
                tracing::error!(error = %e, "database unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "DatabaseUnavailable",
                    "the job database is not reachable right now; retry shortly",
                )
            }
            e => {
                tracing::error!(error = %e, "database error");
                ApiError::internal()
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(mut self) -> Response {
        if self.body.message.chars().count() > MESSAGE_MAX {
            self.body.message = self.body.message.chars().take(MESSAGE_MAX).chain(['…']).collect();
        }
        if self.status.is_server_error() {
            tracing::warn!(status = %self.status, code = %self.body.code, "request failed");
        }
        let mut res = (
            self.status,
            axum::Json(ErrorResponse {
                error: self.body.clone(),
            }),
        )
            .into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE && !res.headers().contains_key(header::RETRY_AFTER) {
            // Every 503 says when to come back (clients and load balancers honour it).
            res.headers_mut()
                .insert(header::RETRY_AFTER, axum::http::HeaderValue::from_static("5"));
        }
        res.headers_mut().insert(
            "x-ms-error-code",
            self.body
                .code
                .parse()
                .unwrap_or(axum::http::HeaderValue::from_static("Error")),
        );
        res
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// How many characters of any input an error message quotes.
pub const QUOTE_MAX: usize = 200;

/// The longest error message the service sends (a safety net: messages quote inputs through
/// [`quote`], so only a bug could make one longer).
const MESSAGE_MAX: usize = 2000;

/// An input as error messages show it: at most [`QUOTE_MAX`] characters then `…`, with control
/// characters escaped (`\u{0}`), in single quotes. Every message that echoes input uses this.
pub fn quote(input: &str) -> String {
    format!("'{}'", clip(input))
}

/// An input cut to at most [`QUOTE_MAX`] characters (then `…`), control characters escaped:
/// for targets and for texts that quote in their own way.
pub fn clip(input: &str) -> String {
    let mut out = String::new();
    for (i, c) in input.chars().enumerate() {
        if i == QUOTE_MAX {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

/// A message written by code that quotes inputs in full (the ARM id parser, serde): every
/// stretch between quote characters (`'`, `"`, backtick) is clipped like [`clip`].
pub fn bound_quotes(message: &str) -> String {
    let mut out = String::new();
    let mut piece = String::new();
    for c in message.chars() {
        if matches!(c, '\'' | '"' | '`') {
            out.push_str(&clip(&piece));
            piece.clear();
            out.push(c);
        } else {
            piece.push(c);
        }
    }
    out.push_str(&clip(&piece));
    out
}
