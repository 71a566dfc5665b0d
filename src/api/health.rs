//! Liveness, readiness and metrics.
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::error::{ApiError, ErrorResponse};
use crate::queue::JobState;

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok`
    pub status: &'static str,
}

/// The process is alive (no dependency is checked).
#[utoipa::path(get, path = "/healthz", tag = "operations", security(()), responses((status = 200, body = Health, description = "Alive")))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Ready to serve: the database answers and every migration is applied. When not, the answer
/// says which of the two, and the detail (the driver's error) goes to the log only: it can name
/// hosts, databases and users.
#[utoipa::path(get, path = "/readyz", tag = "operations", security(()),
    responses((status = 200, body = Health, description = "Ready"),
        (status = 503, body = ErrorResponse, description = "Not ready: database unreachable (or no answer within 1 s), or migrations pending; with Retry-After")))]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    // Probes have short timeouts of their own: answer within a second, whatever the pool does.
    let checked = tokio::time::timeout(std::time::Duration::from_secs(1), crate::db::ready(&state.pool))
        .await
        .unwrap_or_else(|_| Err("database unreachable: no answer within 1 s".into()));
    checked.map(|_| Json(Health { status: "ok" })).map_err(|detail| {
        tracing::warn!(detail = %detail, "not ready");
        let message = if detail.starts_with("migrations not applied") {
            "migrations pending"
        } else {
            "database unreachable"
        };
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "NotReady", message)
    })
}

/// Prometheus metrics (text exposition format).
#[utoipa::path(get, path = "/metrics", tag = "operations", security(()),
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    // Queue depth is read at scrape time: it is a fact of the shared database, not of this replica.
    match state.store.depth_by_state().await {
        Ok(rows) => {
            for st in JobState::ALL {
                let n = rows.iter().find(|r| r.0 == st).map(|r| r.1).unwrap_or(0);
                metrics::gauge!("acr_attach_queue_depth", "state" => st.as_str()).set(n as f64);
            }
        }
        Err(e) => tracing::warn!(error = %e, "queue depth query failed"),
    }
    if let Ok(rows) = state.store.pending_by_kind().await {
        for (kind, n, due_for) in rows {
            metrics::gauge!("acr_attach_jobs_pending", "kind" => kind.clone()).set(n as f64);
            metrics::gauge!("acr_attach_oldest_due_job_seconds", "kind" => kind).set(due_for);
        }
    }
    if let Ok(rows) = state.store.waiting_by_condition().await {
        for (condition, n) in rows {
            metrics::gauge!("acr_attach_jobs_waiting", "condition" => condition).set(n as f64);
        }
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}
