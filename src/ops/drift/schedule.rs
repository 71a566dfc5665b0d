//! Every replica schedules the sweep; one runs per interval window.
//!
//! Windows are aligned to the Unix epoch, so every replica computes the same one. A replica
//! enqueues the current window's sweep unless the newest sweep already is that window's; the
//! queue's dedup (same kind, target and arguments) folds enqueues that race while it is
//! unfinished, and a sweep that finds its window already swept by an earlier job skips
//! (sweeps share one target, so they run one at a time and that check cannot race).
use chrono::{DateTime, TimeZone, Utc};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

use super::{TARGET, VerifyArgs};
use crate::ops::{OpsSettings, VERIFY};
use crate::queue::{Enqueued, JobFilter, JobStore};

/// Replicas look at least this often, so a window's sweep starts soon after the window does.
const MAX_TICK: Duration = Duration::from_secs(60);

/// The start of the window `now` falls in.
pub fn window_of(now: DateTime<Utc>, every: Duration) -> DateTime<Utc> {
    let step = every.as_millis().max(1) as i64;
    let start = now.timestamp_millis().div_euclid(step) * step;
    Utc.timestamp_millis_opt(start).single().unwrap_or(now)
}

/// The label of a window in the sweep's arguments.
pub fn window_label(start: DateTime<Utc>) -> String {
    start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Enqueue the sweep of `window` unless the newest sweep is already that window's. `None`
/// when nothing was enqueued.
pub async fn enqueue_sweep(store: &JobStore, settings: &OpsSettings, window: &str) -> sqlx::Result<Option<Enqueued>> {
    let newest = store
        .list(&JobFilter {
            kind: Some(VERIFY.into()),
            target_key: Some(TARGET.into()),
            limit: 1,
            ..JobFilter::default()
        })
        .await?;
    if newest.first().is_some_and(|j| j.args["window"] == window) {
        return Ok(None);
    }
    let job = settings.verify_job(&VerifyArgs { window: window.into() });
    let enq = store.enqueue_one(&job).await?;
    if enq.deduplicated {
        return Ok(None);
    }
    metrics::counter!("acr_attach_jobs_enqueued_total", "kind" => VERIFY).increment(1);
    Ok(Some(enq))
}

/// The scheduler task: until `stop`, enqueue each window's sweep (nothing when the interval
/// is `off`). A database error is logged and tried again at the next tick.
pub async fn schedule(store: JobStore, settings: OpsSettings, stop: CancellationToken) {
    let Some(every) = settings.drift.verify_interval.0 else {
        return;
    };
    let mut tick = tokio::time::interval(every.min(MAX_TICK));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let window = window_label(window_of(Utc::now(), every));
        match enqueue_sweep(&store, &settings, &window).await {
            Ok(Some(e)) => tracing::info!(job = %e.job.id, %window, "drift sweep enqueued"),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, %window, "could not enqueue the drift sweep; trying again"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_replica_computes_the_same_window() {
        let hour = Duration::from_secs(3600);
        let a = Utc.with_ymd_and_hms(2026, 12, 2, 10, 0, 0).unwrap();
        let b = Utc.with_ymd_and_hms(2026, 12, 2, 10, 59, 59).unwrap();
        let c = Utc.with_ymd_and_hms(2026, 12, 2, 11, 0, 0).unwrap();
        assert_eq!(window_of(a, hour), a);
        assert_eq!(window_of(b, hour), a);
        assert_eq!(window_of(c, hour), c);
        assert_eq!(window_label(window_of(b, hour)), "2026-12-02T10:00:00Z");
    }
}
