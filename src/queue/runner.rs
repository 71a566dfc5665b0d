//! One running job: its task, the handler call, and what its outcome does to the job's state.
use chrono::Utc;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use super::completer::Success;
use super::handler::{JobContext, JobError, JobHandler, Outcome, StopReason, StopSignal};
use super::model::{ErrorClass, ErrorRecord, Job};
use super::shared::{Running, Shared};
use super::store::Finish;

pub(super) fn start_job(
    shared: &Arc<Shared>,
    tasks: &TaskTracker,
    success_tx: &mpsc::UnboundedSender<Success>,
    job: Job,
) {
    let stop = Arc::new(StopSignal::default());
    shared.running.lock().unwrap().insert(
        job.id,
        Running {
            epoch: job.lease_epoch,
            stop: stop.clone(),
        },
    );
    metrics::counter!("acr_attach_jobs_started_total", "kind" => job.kind.clone()).increment(1);
    if job.lease_epoch == 1 {
        let delay = (Utc::now() - job.created_at.max(job.run_at)).as_seconds_f64().max(0.0);
        metrics::histogram!("acr_attach_job_insert_to_start_seconds", "kind" => job.kind.clone()).record(delay);
    }
    let shared = shared.clone();
    let success_tx = success_tx.clone();
    tasks.spawn(async move {
        let id = job.id;
        run_job(&shared, &success_tx, job, stop).await;
        shared.running.lock().unwrap().remove(&id);
        shared.wake.notify_one();
    });
}

async fn run_job(shared: &Shared, success_tx: &mpsc::UnboundedSender<Success>, job: Job, stop: Arc<StopSignal>) {
    let started = std::time::Instant::now();
    let Some(handler) = shared.handlers.get(&job.kind) else {
        // Claims only take the kinds this replica runs, so this is a bug: say so, and hand the
        // job back (no attempt consumed) for a replica that runs its kind.
        tracing::error!(id = %job.id, kind = %job.kind, "claimed a job of a kind this replica does not run; handing it back");
        if let Err(e) = shared.store.finish(job.id, job.lease_epoch, &Finish::HandBack).await {
            tracing::warn!(id = %job.id, error = %e, "could not hand the job back; its lease will expire");
        }
        return;
    };
    let ctx = JobContext {
        id: job.id,
        kind: job.kind.clone(),
        args: job.args.clone(),
        attempts: job.attempts,
        run: job.lease_epoch,
        checkpoint: job.checkpoint.clone(),
        wait: job.wait.as_ref().map(|w| w.0.clone()),
        created_at: job.created_at,
        deadline_at: job.deadline_at,
        stop: stop.clone(),
        store: shared.store.clone(),
        persist_for: shared.cfg.lease,
    };
    let span = tracing::info_span!("job", id = %job.id, kind = %job.kind, attempt = job.attempts + 1,
        lease_epoch = job.lease_epoch, target = job.target_key.as_deref().unwrap_or(""));
    let attempt = tokio::time::timeout(handler.attempt_timeout(), handler.run(&ctx)).instrument(span.clone());
    let result = tokio::select! {
        r = attempt => Some(r),
        _ = stop.token.cancelled() => None,
    };
    metrics::histogram!("acr_attach_job_run_seconds", "kind" => job.kind.clone())
        .record(started.elapsed().as_secs_f64());

    let finish = match result {
        None => match stop.reason() {
            StopReason::Cancelled => Finish::Cancelled,
            StopReason::Shutdown => Finish::HandBack,
            // Another worker owns the job now: write nothing.
            StopReason::LeaseLost | StopReason::None => {
                tracing::warn!(parent: &span, "stopped: the lease was lost");
                return;
            }
        },
        Some(Err(_elapsed)) => decide(
            &job,
            JobError::transient(
                "AttemptTimeout",
                format!("the attempt did not finish within {:?}", handler.attempt_timeout()),
            ),
            handler.as_ref(),
        ),
        Some(Ok(Ok(Outcome::Succeeded(result)))) => {
            let _ = success_tx.send(Success {
                id: job.id,
                epoch: job.lease_epoch,
                result,
                kind: job.kind.clone(),
            });
            return;
        }
        Some(Ok(Ok(Outcome::Wait(w)))) => {
            if past_deadline(&job, w.delay) {
                deadline_failure(&job, &w.condition, &w.message)
            } else {
                Finish::Snooze {
                    delay: w.delay,
                    condition: w.condition,
                    message: w.message,
                    error: None,
                    checkpoint: w.checkpoint,
                }
            }
        }
        Some(Ok(Err(e))) => decide(&job, e, handler.as_ref()),
    };
    let outcome = outcome_label(&finish);
    // Kept in `running` meanwhile, so its lease is still renewed once the database is back.
    let recorded = super::persist::persistently("the attempt's end", shared.cfg.lease, || {
        shared.store.finish(job.id, job.lease_epoch, &finish)
    })
    .await;
    match recorded {
        Ok(true) => {
            tracing::info!(parent: &span, outcome, "attempt finished");
            metrics::counter!("acr_attach_jobs_finished_total", "kind" => job.kind.clone(), "outcome" => outcome)
                .increment(1);
            if let Finish::Fail { error, .. } = &finish {
                metrics::counter!("acr_attach_jobs_failed_total", "kind" => job.kind.clone(), "code" => error.code.clone())
                    .increment(1);
            }
        }
        Ok(false) => {
            metrics::counter!("acr_attach_lease_lost_total").increment(1);
            tracing::warn!(parent: &span, outcome, "result dropped: the lease was lost");
        }
        // Not even within the lease: it expires and the rescuer retries the job.
        Err(e) => tracing::error!(parent: &span, error = %e, "could not record the attempt's end"),
    }
}

/// Turn a classified error into the job's next state.
fn decide(job: &Job, e: JobError, handler: &dyn JobHandler) -> Finish {
    let attempt = job.attempts + 1;
    let record = ErrorRecord {
        code: e.code.clone(),
        message: e.message.clone(),
        class: e.class,
        attempt,
        at: Utc::now(),
        details: e.details.clone(),
    };
    let policy = handler.retry_policy();
    match e.class {
        ErrorClass::Permanent => Finish::Fail {
            error: record,
            consumed_attempt: true,
        },
        ErrorClass::Transient => {
            if attempt >= job.max_attempts {
                let mut error = record;
                error.message = format!("{} (gave up after {attempt} attempts)", error.message);
                return Finish::Fail {
                    error,
                    consumed_attempt: true,
                };
            }
            let delay = policy.delay(attempt as u32, e.retry_after);
            if past_deadline(job, delay) {
                let mut error = record;
                error.message = format!(
                    "{} (the job's deadline {} leaves no time for another attempt)",
                    error.message,
                    job.deadline_at.to_rfc3339()
                );
                return Finish::Fail {
                    error,
                    consumed_attempt: true,
                };
            }
            Finish::Retry {
                delay,
                error: record,
                checkpoint: e.checkpoint,
            }
        }
        ErrorClass::NotYetConsistent => {
            let delay = policy.delay((job.snoozes as u32).saturating_add(1), e.retry_after);
            let condition = e.condition.clone().unwrap_or_else(|| e.code.clone());
            if past_deadline(job, delay) {
                return deadline_failure(job, &condition, &e.message);
            }
            Finish::Snooze {
                delay,
                condition,
                message: e.message,
                error: (!e.planned).then_some(record),
                checkpoint: e.checkpoint,
            }
        }
    }
}

fn past_deadline(job: &Job, delay: std::time::Duration) -> bool {
    Utc::now() + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX) > job.deadline_at
}

fn deadline_failure(job: &Job, condition: &str, message: &str) -> Finish {
    Finish::Fail {
        error: ErrorRecord {
            code: "DeadlineExceeded".into(),
            message: format!(
                "the job's deadline {} passed while waiting for {condition}: {message}",
                job.deadline_at.to_rfc3339()
            ),
            class: ErrorClass::Permanent,
            attempt: job.attempts + 1,
            at: Utc::now(),
            details: None,
        },
        consumed_attempt: false,
    }
}

fn outcome_label(f: &Finish) -> &'static str {
    match f {
        Finish::Retry { .. } => "retrying",
        Finish::Snooze { .. } => "waiting",
        Finish::Fail { .. } => "failed",
        Finish::Cancelled => "cancelled",
        Finish::HandBack => "handed_back",
    }
}
