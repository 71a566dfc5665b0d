//! The HTTP layer: thin axum handlers that validate, enqueue, and read jobs back.
//! Every route is documented by utoipa; `/openapi.json` is generated from the code and the
//! committed `openapi/openapi.json` must match it (a test checks).
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::HeaderName;
use metrics_exporter_prometheus::PrometheusHandle;
use sqlx::PgPool;
use std::time::Duration;

use crate::duration::parse_duration;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::{router::OpenApiRouter, routes};
use utoipa_swagger_ui::SwaggerUi;

use crate::attachments::AttachmentStore;
use crate::ops::OpsSettings;
use crate::queue::JobStore;

pub mod access;
pub mod attachments;
pub mod audit;
pub mod auth;
mod batch_request;
pub mod batches;
pub mod checks;
pub mod error;
pub mod extract;
pub mod health;
pub mod idempotency;
pub mod imports;
mod job_schemas;
pub mod jobs;
pub mod kubelet_identities;
mod middleware;
pub mod policy;
pub mod rate_limit;
pub mod verifications;
mod verify_schemas;

#[derive(Clone)]
pub struct AppState {
    pub store: JobStore,
    pub attachments: AttachmentStore,
    pub ops: OpsSettings,
    pub pool: PgPool,
    pub metrics: PrometheusHandle,
    /// Who may do what (checked before anything is enqueued).
    pub policy: policy::PolicyHandle,
    pub audit: crate::audit::AuditStore,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "acr-attach", description = "Attach-as-a-service: let AKS clusters pull from Azure Container Registries, durably. \
Requests that change Azure are accepted as jobs (202 + Operation-Location) and run by a worker pool with retries; \
poll the job for its state, result and timeline."),
    modifiers(&ApiKeyScheme),
    security(("bearer" = [])),
    tags(
        (name = "attachments", description = "Let a cluster pull from a registry, or stop it"),
        (name = "checks", description = "Can a cluster pull from a registry, and if not, why"),
        (name = "imports", description = "Put an image into a registry (az acr import)"),
        (name = "batches", description = "Many attaches or detaches in one request: one registry to many clusters (listed, or selected through Resource Graph), or one cluster to many registries"),
        (name = "kubelet identities", description = "Prepare a kubelet identity (groups, grants) before the cluster exists"),
        (name = "jobs", description = "Every long-running request is a job"),
        (name = "audit", description = "Who asked for what, and what the policy decided"),
        (name = "operations", description = "Health, readiness, metrics"),
    )
)]
struct ApiDoc;

/// The `/v1` API key, so Swagger UI offers an "Authorize" button.
struct ApiKeyScheme;

impl utoipa::Modify for ApiKeyScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "bearer",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .description(Some(
                            "A Microsoft Entra ID access token for acr-attach's API application, or an API key \
                             (`acr-attach keys create`). Not needed when the service runs with --auth none.",
                        ))
                        .build(),
                ),
            );
    }
}

fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(attachments::attach, attachments::list_attachments))
        .routes(routes!(attachments::detach))
        .merge(batch_routes())
        .routes(routes!(checks::check))
        .routes(routes!(imports::import))
        .routes(routes!(verifications::verify))
        .routes(routes!(kubelet_identities::prepare))
        .routes(routes!(jobs::list_jobs))
        .routes(routes!(jobs::get_job))
        .routes(routes!(jobs::job_events))
        .routes(routes!(jobs::cancel_job))
        .routes(routes!(audit::list_audit))
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(health::metrics))
}

/// `/v1/batches`: its POST takes bodies up to [`batches::BATCH_MAX_BODY_BYTES`] (5,000 ids).
fn batch_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(batches::create_batch, batches::list_batches))
        .routes(routes!(batches::get_batch))
        .routes(routes!(batches::batch_items))
        .routes(routes!(batches::cancel_batch))
        .layer(DefaultBodyLimit::max(batches::BATCH_MAX_BODY_BYTES))
}

/// The OpenAPI document (what `/openapi.json` serves and `openapi/openapi.json` holds).
pub fn openapi() -> utoipa::openapi::OpenApi {
    with_job_links(api_router().split_for_parts().1)
}

/// OpenAPI links from every answer that carries a job (the POSTs that start or cancel one) to the
/// operations that read or cancel it, with `id` taken from the answer's body: clients and
/// Swagger UI see where to go next, and stateful fuzzers (schemathesis) follow real job ids
/// instead of guessing links from field names.
fn with_job_links(mut spec: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    use utoipa::openapi::RefOr;
    use utoipa::openapi::link::LinkBuilder;
    let targets = [
        ("getJob", "get_job", "The job"),
        ("getJobEvents", "job_events", "The job's timeline"),
        ("cancelJob", "cancel_job", "Cancel the job"),
    ];
    for (path, item) in spec.paths.paths.iter_mut() {
        // A batch's answers carry a batch id, not a job id.
        if path.starts_with("/v1/batches") {
            continue;
        }
        let Some(op) = item.post.as_mut() else { continue };
        for status in ["200", "202"] {
            let Some(RefOr::T(response)) = op.responses.responses.get_mut(status) else {
                continue;
            };
            for (name, operation_id, description) in targets {
                if path == "/v1/jobs/{id}/cancel" && operation_id == "cancel_job" {
                    continue;
                }
                let link = LinkBuilder::new()
                    .operation_id(operation_id)
                    .parameter("id", "$response.body#/id")
                    .description(description)
                    .build();
                response.links.insert(name.to_string(), RefOr::T(link));
            }
        }
    }
    spec
}

/// Limits of the HTTP API (flags and environment variables of `acr-attach serve`).
#[derive(Debug, Clone, clap::Args)]
pub struct ApiConfig {
    /// Largest accepted request body.
    #[arg(long, env = "ACR_ATTACH_MAX_BODY_BYTES", default_value_t = 64 * 1024)]
    pub max_body_bytes: usize,
    /// Requests taking longer are answered 503.
    #[arg(long, env = "ACR_ATTACH_REQUEST_TIMEOUT", value_parser = parse_duration, default_value = "30s")]
    pub request_timeout: Duration,
    /// Requests per second each caller may make (sustained); 429 + Retry-After beyond.
    #[arg(long, env = "ACR_ATTACH_RATE_LIMIT", default_value_t = 20.0)]
    pub rate_limit: f64,
    /// Requests a caller may make at once before the rate applies.
    #[arg(long, env = "ACR_ATTACH_RATE_BURST", default_value_t = 100)]
    pub rate_burst: u32,
}

/// The whole HTTP surface; `authenticator` checks the credentials of `/v1` requests.
pub fn router(state: AppState, settings: &ApiConfig, authenticator: auth::Authenticator) -> Router {
    let (routes, spec) = api_router().split_for_parts();
    let spec = with_job_links(spec);
    let request_id = HeaderName::from_static("x-request-id");
    let timeout = settings.request_timeout;
    routes
        .merge(SwaggerUi::new("/docs").url("/openapi.json", spec))
        .fallback(middleware::not_found)
        .method_not_allowed_fallback(middleware::method_not_allowed)
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(
            rate_limit::RateLimiter::new(settings.rate_limit, settings.rate_burst),
            rate_limit::limit,
        ))
        .layer(axum::middleware::from_fn_with_state(authenticator, auth::authenticate))
        .layer(axum::middleware::from_fn(
            move |req, next: axum::middleware::Next| async move {
                match tokio::time::timeout(timeout, next.run(req)).await {
                    Ok(res) => res,
                    Err(_) => axum::response::IntoResponse::into_response(middleware::timeout_response()),
                }
            },
        ))
        .layer(DefaultBodyLimit::max(settings.max_body_bytes))
        .layer(axum::middleware::from_fn(middleware::record_metrics))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
                        let id = req
                            .headers()
                            .get("x-request-id")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("");
                        tracing::info_span!("http", method = %req.method(), path = %req.uri().path(), request_id = %id)
                    }),
                )
                .layer(PropagateRequestIdLayer::new(request_id))
                .layer(CatchPanicLayer::custom(middleware::panic_response)),
        )
}
