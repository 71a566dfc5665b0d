//! `/v1/verifications`: run a drift sweep now, instead of waiting for the next interval (a
//! portal's "re-verify" button; the walkthrough's way to see a drift at once).
use axum::extract::State;
use axum::response::Response;
use serde_json::json;

use super::AppState;
use super::access::Access;
use super::error::{ApiResult, ErrorResponse};
use super::extract::IdempotencyKey;
use super::jobs::{JobView, submit};
use super::policy::{Action, Ask};
use crate::ops::drift::VerifyArgs;

/// Verify: re-check every attachment acr-attach made against Azure now (the `verify` job the
/// scheduler runs every `ACR_ATTACH_VERIFY_INTERVAL`). Sweeps run one at a time, in order. The
/// result counts what holds and what drifted, and why.
#[utoipa::path(post, path = "/v1/verifications", tag = "attachments",
    params(("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[ -~]*[!-~][ -~]*$",
        description = "Makes the request safely repeatable: 1 to 255 printable ASCII characters (a UUID is a good choice)")),
    responses(
        (status = 202, body = JobView, description = "Accepted: poll the job at Operation-Location; its result is a VerifyResult"),
        (status = "4XX", body = ErrorResponse, description = "Refused: the error says why"),
        (status = "5XX", body = ErrorResponse, description = "Unavailable for now (503: the database or the Entra keys), or an internal error (500)")))]
pub async fn verify(
    State(state): State<AppState>,
    access: Access,
    IdempotencyKey(key): IdempotencyKey,
) -> ApiResult<Response> {
    let granted = access.authorize(&state, &Ask::Plain(Action::Verify), json!({})).await?;
    // Its own label: a sweep asked for by hand is never taken for an interval's, which runs
    // once per window.
    let job = state.ops.verify_job(&VerifyArgs {
        window: format!("requested {}", chrono::Utc::now().to_rfc3339()),
    });
    submit(
        &state,
        &access,
        granted,
        "POST /v1/verifications",
        "/v1/verifications",
        key,
        b"",
        job,
    )
    .await
}
