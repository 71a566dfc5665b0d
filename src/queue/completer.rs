//! Batched, fenced success completions. Jobs finish far faster than one UPDATE each can be
//! committed, so successes are written together: whatever is waiting when the previous batch
//! commits goes in the next one (no fixed delay, so an idle queue adds no latency).
use serde_json::Value;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, mpsc};
use uuid::Uuid;

use super::store::JobStore;

pub struct Success {
    pub id: Uuid,
    pub epoch: i32,
    pub result: Value,
    pub kind: String,
}

const MAX_BATCH: usize = 500;

/// Runs until every sender is dropped, then flushes what is left.
pub async fn run(store: JobStore, mut rx: mpsc::UnboundedReceiver<Success>, wake: Arc<Notify>, lease: Duration) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let rows: Vec<(Uuid, i32, Value)> = batch.iter().map(|s| (s.id, s.epoch, s.result.clone())).collect();
        let started = std::time::Instant::now();
        let flushed = flush(&store, &rows, lease).await;
        metrics::histogram!("acr_attach_completion_flush_seconds").record(started.elapsed().as_secs_f64());
        metrics::histogram!("acr_attach_completion_batch_size").record(rows.len() as f64);
        match flushed {
            Ok((accepted, successors)) => {
                let accepted: HashSet<Uuid> = accepted.into_iter().collect();
                for s in &batch {
                    if accepted.contains(&s.id) {
                        metrics::counter!("acr_attach_jobs_finished_total", "kind" => s.kind.clone(), "outcome" => "succeeded")
                            .increment(1);
                    } else {
                        metrics::counter!("acr_attach_lease_lost_total").increment(1);
                        tracing::warn!(job = %s.id, "result dropped: the lease was lost before completion");
                    }
                }
                if successors {
                    wake.notify_one();
                }
            }
            // Not even within the lease: the jobs stay `running` until their leases expire and
            // the rescuer retries them; handlers are idempotent, so a repeat is safe.
            Err(e) => tracing::error!(error = %e, jobs = batch.len(), "could not record job successes"),
        }
        batch.clear();
    }
}

/// A database outage should not turn finished jobs into rescues: retried within the lease.
async fn flush(store: &JobStore, rows: &[(Uuid, i32, Value)], lease: Duration) -> sqlx::Result<(Vec<Uuid>, bool)> {
    super::persist::persistently("job successes", lease, || store.succeed_many(rows)).await
}
