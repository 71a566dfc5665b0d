//! Leaderless upkeep on every replica: rescue jobs of dead workers, prune old jobs.
use tokio_util::sync::CancellationToken;

use super::backoff::RetryPolicy;
use super::config::WorkerConfig;
use super::store::JobStore;

pub async fn run(store: JobStore, cfg: WorkerConfig, stop: CancellationToken) {
    let mut rescue = tokio::time::interval(cfg.rescue_interval);
    let mut prune = tokio::time::interval(cfg.prune_interval);
    rescue.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    prune.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let policy = RetryPolicy::default();
    loop {
        tokio::select! {
            _ = rescue.tick() => rescue_once(&store, &policy).await,
            _ = prune.tick() => prune_once(&store, &cfg).await,
            _ = stop.cancelled() => return,
        }
    }
}

async fn rescue_once(store: &JobStore, policy: &RetryPolicy) {
    match store.rescue_expired(100, policy.base, policy.cap).await {
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
    if let Err(e) = sqlx::query("DELETE FROM idempotency_key WHERE created_at < now() - interval '24 hours'")
        .execute(store.pool())
        .await
    {
        tracing::warn!(error = %e, "pruning idempotency keys failed");
    }
}
