//! Logs (tracing-subscriber, human or JSON) and metrics (Prometheus text at `/metrics`).
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Logs go to stderr; `RUST_LOG` overrides the default level (`info`).
pub fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new("info,sqlx=warn,hyper=warn,reqwest=warn,azure_core=warn,azure_identity=warn")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).try_init(),
    };
}

/// The process-wide Prometheus recorder (installed once; tests start many apps in one process).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let latency = [
                0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ];
            let long = [
                0.1,
                1.0,
                5.0,
                15.0,
                30.0,
                60.0,
                300.0,
                900.0,
                1800.0,
                3600.0,
                4.0 * 3600.0,
                24.0 * 3600.0,
            ];
            PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full("acr_attach_job_insert_to_start_seconds".into()), &latency)
                .and_then(|b| b.set_buckets_for_metric(Matcher::Full("acr_attach_claim_seconds".into()), &latency))
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("acr_attach_http_request_duration_seconds".into()),
                        &latency,
                    )
                })
                .and_then(|b| b.set_buckets_for_metric(Matcher::Full("acr_attach_job_run_seconds".into()), &latency))
                .and_then(|b| b.set_buckets_for_metric(Matcher::Full("acr_attach_propagation_seconds".into()), &long))
                .expect("bucket lists are non-empty")
                .install_recorder()
                .expect("the Prometheus recorder is installed once")
        })
        .clone()
}
