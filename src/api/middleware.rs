//! Cross-cutting HTTP concerns: request ids, access logs, metrics, and the error shape for
//! requests that reach no handler.
use axum::extract::{MatchedPath, Request};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use std::time::Instant;

use super::error::{ApiError, clip, quote};

/// `acr_attach_http_requests_total{route,method,status}` and a latency histogram. Every label
/// has a bounded set of values, whatever clients send: `route` is the route template (or
/// `unmatched`), `method` a standard method (or `other`), `status` a status code.
pub async fn record_metrics(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = method_label(req.method());
    let started = Instant::now();
    let res = next.run(req).await;
    let status = res.status().as_u16().to_string();
    metrics::counter!("acr_attach_http_requests_total", "route" => route.clone(), "method" => method, "status" => status)
        .increment(1);
    metrics::histogram!("acr_attach_http_request_duration_seconds", "route" => route, "method" => method)
        .record(started.elapsed().as_secs_f64());
    res
}

/// The metrics label of a method: the standard ones by name, any other as `other` (methods are
/// client-chosen tokens; each new one would be a new time series).
fn method_label(method: &Method) -> &'static str {
    const STANDARD: [Method; 9] = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::HEAD,
        Method::OPTIONS,
        Method::TRACE,
        Method::CONNECT,
    ];
    STANDARD
        .iter()
        .find(|m| *m == method)
        .map(|m| m.as_str())
        .unwrap_or("other")
}

pub async fn not_found(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(
        "NotFound",
        format!(
            "there is no {} {}; see /docs for the API",
            clip(method.as_str()),
            quote(uri.path())
        ),
    )
}

pub async fn method_not_allowed(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        format!(
            "{} is not allowed on {}; see /docs for the API",
            clip(method.as_str()),
            quote(uri.path())
        ),
    )
}

pub fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    axum::response::IntoResponse::into_response(ApiError::internal())
}

pub fn timeout_response() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "RequestTimeout",
        "the request took too long; retry shortly",
    )
}
