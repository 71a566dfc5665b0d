//! Leaderless upkeep on every replica: rescue jobs of dead workers, prune old jobs.
use tokio_util::sync::CancellationToken;

use super::config::WorkerConfig;
use super::store::{JobStore, KindPolicies};

/// `policies`: each kind's back-off, so a rescued job backs off like any failed attempt of its kind.
pub async fn run(store: JobStore, cfg: WorkerConfig, policies: KindPolicies, stop: CancellationToken) {
    let mut rescue = tokio::time::interval(cfg.rescue_interval);
    let mut prune = tokio::time::interval(cfg.prune_interval);
    rescue.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    prune.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = rescue.tick() => rescue_once(&store, &policies).await,
            _ = prune.tick() => prune_once(&store, &cfg).await,
            _ = stop.cancelled() => return,
        }
    }
}

async fn rescue_once(store: &JobStore, policies: &KindPolicies) {
    match store.rescue_expired(100, policies).await {
        Ok(ids) if !ids.is_empty() => {
            metrics::counter!("acr_attach_jobs_rescued_total").increment(ids.len() as u64);
            tracing::warn!(jobs = ?ids, "rescued jobs whose worker stopped heartbeating");
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "rescue pass failed"),
    }
}

async fn prune_once(store: &JobStore, cfg: &WorkerConfig) {
    match store.prune(cfg.keep_succeeded, cfg.keep_failed, 1000).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(jobs = n, "pruned finished jobs past their retention"),
        Err(e) => tracing::warn!(error = %e, "prune pass failed"),
    }
}
