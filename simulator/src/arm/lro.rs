//! Long-running operations polled through a `Location` URL (AKS run-command, ACR import):
//! the 202 answers and finishing work exactly when the operation ends, so its outcome reflects
//! the world at that moment rather than at the next poll.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;

use crate::reply;
use crate::state::{SharedRef, State};

/// `Retry-After` in whole seconds: the time left, rounded up, at least 1.
pub(crate) fn retry_after(remaining_secs: f64) -> String {
    (remaining_secs.max(0.0).ceil() as u64).max(1).to_string()
}

/// 202 Accepted without a body, with `Location` and `Retry-After`.
pub(crate) fn accepted(location: &str, remaining_secs: f64) -> Response {
    let mut resp = reply::empty(StatusCode::ACCEPTED);
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(location) {
        h.insert("location", v);
    }
    if let Ok(v) = HeaderValue::from_str(&retry_after(remaining_secs)) {
        h.insert("retry-after", v);
    }
    resp
}

/// Runs `finish(state, now)` once `at_secs` (seconds since simulator start) has passed.
/// Pollers call the same idempotent `finish` first, so a poll racing the timer sees the result.
pub(crate) fn finish_at(shared: &SharedRef, at_secs: f64, finish: fn(&mut State, f64)) {
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let shared = shared.clone();
    let wait = (at_secs - shared.elapsed_secs()).max(0.0);
    rt.spawn(async move {
        tokio::time::sleep(Duration::from_secs_f64(wait)).await;
        let now = shared.elapsed_secs();
        let mut st = shared.lock();
        finish(&mut st, now);
    });
}
