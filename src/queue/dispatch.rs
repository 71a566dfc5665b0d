//! The dispatcher: claims due jobs into free slots.
//!
//! A claim asks for at most the free slots (no local prefetch: a claimed job is always running).
//! Up to [`MAX_IN_FLIGHT`] claims can be on their way at once, each reserving the slots it asked
//! for: under a backlog, jobs finish while a claim is still committing, and the next claim
//! starts without waiting for it (Postgres can then group the commits). When a claim comes back
//! short, everything due is taken; the dispatcher then sleeps until the next trigger: a
//! notification, a finished job, the timer to the next scheduled job, or the poll fallback.
use chrono::Utc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::completer::Success;
use super::model::Job;
use super::runner::start_job;
use super::shared::Shared;

const MAX_IN_FLIGHT: usize = 2;
/// How long freed slots are gathered under a backlog (never when the queue is idle).
const GATHER: Duration = Duration::from_millis(2);

struct Claimed {
    asked: usize,
    jobs: sqlx::Result<Vec<Job>>,
    /// How many triggers the dispatcher had seen when the claim started.
    generation: u64,
    /// For a short claim: when the next scheduled job becomes due.
    next_due: Option<chrono::DateTime<Utc>>,
}

pub(super) async fn run(
    shared: &Arc<Shared>,
    tasks: &TaskTracker,
    success_tx: &mpsc::UnboundedSender<Success>,
    shutdown: &CancellationToken,
) {
    let cfg = &shared.cfg;
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Claimed>();
    let mut reserved = 0usize;
    let mut in_flight = 0usize;
    // Triggers seen so far, and whether the last short claim saw them all (nothing new is due).
    let mut generation = 0u64;
    let mut drained = false;
    let mut sleep_until = Instant::now() + cfg.poll_interval;
    // Under a backlog (the last claim came back full), a claim for one or two slots while the
    // others are busy costs as much as one for all of them: gather freed slots briefly.
    let mut backlog = false;
    let mut gather_until: Option<Instant> = None;
    loop {
        if shutdown.is_cancelled() {
            break;
        }
        while !drained
            && in_flight < MAX_IN_FLIGHT
            && shared.healthy.load(std::sync::atomic::Ordering::Relaxed)
            && shared.alive.load(std::sync::atomic::Ordering::Relaxed)
        {
            let running = shared.running_count();
            let free = cfg.concurrency.saturating_sub(running + reserved);
            if free == 0 {
                break;
            }
            if backlog && free < cfg.concurrency && running + reserved > 0 {
                let until = *gather_until.get_or_insert_with(|| Instant::now() + GATHER);
                if Instant::now() < until {
                    break;
                }
            }
            gather_until = None;
            reserved += free;
            in_flight += 1;
            tokio::spawn(claim(shared.clone(), free, generation, done_tx.clone()));
        }
        let gather = gather_until.unwrap_or_else(|| Instant::now() + cfg.poll_interval);
        tokio::select! {
            _ = tokio::time::sleep_until(gather.into()), if gather_until.is_some() => {}
            _ = shared.wake.notified() => {
                generation += 1;
                drained = false;
            }
            Some(c) = done_rx.recv() => {
                reserved -= c.asked;
                in_flight -= 1;
                match c.jobs {
                    Ok(jobs) => {
                        let short = jobs.len() < c.asked;
                        backlog = !short;
                        for job in jobs {
                            start_job(shared, tasks, success_tx, job);
                        }
                        if short && c.generation == generation {
                            drained = true;
                            let until = c
                                .next_due
                                .and_then(|at| (at - Utc::now()).to_std().ok())
                                .unwrap_or(cfg.poll_interval)
                                .min(cfg.poll_interval);
                            sleep_until = Instant::now() + until;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "claiming jobs failed");
                        drained = true;
                        sleep_until = Instant::now() + cfg.poll_interval.min(Duration::from_millis(500));
                    }
                }
            }
            _ = tokio::time::sleep_until(sleep_until.into()), if drained => {
                generation += 1;
                drained = false;
                sleep_until = Instant::now() + cfg.poll_interval;
            }
            _ = shutdown.cancelled() => break,
        }
    }
    // Claims still on their way become running jobs (each will be handed back by the shutdown).
    while in_flight > 0 {
        let Some(c) = done_rx.recv().await else { break };
        in_flight -= 1;
        for job in c.jobs.unwrap_or_default() {
            start_job(shared, tasks, success_tx, job);
        }
    }
}

async fn claim(shared: Arc<Shared>, asked: usize, generation: u64, done: mpsc::UnboundedSender<Claimed>) {
    let cfg = &shared.cfg;
    let started = Instant::now();
    let jobs = shared
        .store
        .claim(&cfg.worker_id, asked, cfg.lease, &shared.kinds)
        .await;
    metrics::histogram!("acr_attach_claim_seconds").record(started.elapsed().as_secs_f64());
    if let Ok(j) = &jobs {
        metrics::histogram!("acr_attach_claim_batch_size").record(j.len() as f64);
    }
    let next_due = match &jobs {
        Ok(j) if j.len() < asked => shared.store.next_due().await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "next-due query failed");
            None
        }),
        _ => None,
    };
    let _ = done.send(Claimed {
        asked,
        jobs,
        generation,
        next_due,
    });
}
