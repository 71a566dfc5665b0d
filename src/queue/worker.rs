//! The worker pool of one replica: a dispatcher that claims due jobs into free slots, one task
//! per running job, a heartbeat that renews leases, and the maintenance loops.
use chrono::Utc;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;
use uuid::Uuid;

use super::completer::{self, Success};
use super::config::WorkerConfig;
use super::handler::{JobContext, JobError, JobHandler, Outcome, StopReason, StopSignal};
use super::model::{ErrorClass, ErrorRecord, Job};
use super::store::{Finish, JobStore};
use super::{listener, maintenance};

/// The job kinds this replica runs.
#[derive(Clone, Default)]
pub struct Handlers(HashMap<&'static str, Arc<dyn JobHandler>>);

impl Handlers {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn with(mut self, h: impl JobHandler) -> Self {
        self.0.insert(h.kind(), Arc::new(h));
        self
    }
    pub fn kinds(&self) -> Vec<String> {
        self.0.keys().map(|k| k.to_string()).collect()
    }
    fn get(&self, kind: &str) -> Option<Arc<dyn JobHandler>> {
        self.0.get(kind).cloned()
    }
}

struct Running {
    epoch: i32,
    stop: Arc<StopSignal>,
}

struct Shared {
    store: JobStore,
    cfg: WorkerConfig,
    handlers: Handlers,
    kinds: Vec<String>,
    running: Mutex<HashMap<Uuid, Running>>,
    wake: Arc<Notify>,
    /// False while heartbeats fail: a replica that cannot reach the database stops claiming.
    healthy: std::sync::atomic::AtomicBool,
}

impl Shared {
    fn running_count(&self) -> usize {
        self.running.lock().unwrap().len()
    }
    fn stop_job(&self, id: Uuid, why: StopReason) {
        if let Some(r) = self.running.lock().unwrap().get(&id) {
            r.stop.stop(why);
        }
    }
}

/// A started worker pool; `wait` returns after a graceful shutdown.
pub struct WorkerPool {
    done: tokio::task::JoinHandle<()>,
}

impl WorkerPool {
    /// Start the pool. `listen_pool` is a separate one-connection pool for LISTEN, so waiting
    /// for notifications never takes a connection from the workers. Stops when `shutdown` fires.
    pub fn start(
        store: JobStore,
        listen_pool: sqlx::PgPool,
        handlers: Handlers,
        cfg: WorkerConfig,
        shutdown: CancellationToken,
    ) -> WorkerPool {
        let shared = Arc::new(Shared {
            kinds: handlers.kinds(),
            store,
            cfg,
            handlers,
            running: Mutex::new(HashMap::new()),
            wake: Arc::new(Notify::new()),
            healthy: true.into(),
        });
        let done = tokio::spawn(run(shared, listen_pool, shutdown));
        WorkerPool { done }
    }

    pub async fn wait(self) {
        if let Err(e) = self.done.await {
            tracing::error!(error = %e, "worker pool task failed");
        }
    }
}

async fn run(shared: Arc<Shared>, listen_pool: sqlx::PgPool, shutdown: CancellationToken) {
    let background = CancellationToken::new();
    let (success_tx, success_rx) = mpsc::unbounded_channel();
    let completer = tokio::spawn(completer::run(shared.store.clone(), success_rx, shared.wake.clone()));
    let listener = tokio::spawn(listener::run(
        listen_pool,
        shared.wake.clone(),
        {
            let s = shared.clone();
            move |id| s.stop_job(id, StopReason::Cancelled)
        },
        background.clone(),
    ));
    let heartbeat = tokio::spawn(heartbeat(shared.clone(), background.clone()));
    let maintenance = tokio::spawn(maintenance::run(
        shared.store.clone(),
        shared.cfg.clone(),
        background.clone(),
    ));
    let tasks = TaskTracker::new();

    tracing::info!(worker = %shared.cfg.worker_id, concurrency = shared.cfg.concurrency,
        kinds = ?shared.kinds, "worker pool started");
    dispatch(&shared, &tasks, &success_tx, &shutdown).await;

    // Graceful shutdown: no more claims; running jobs get the grace period, then are handed back.
    tracing::info!(running = shared.running_count(), "worker pool stopping");
    tasks.close();
    if tokio::time::timeout(shared.cfg.shutdown_grace, tasks.wait()).await.is_err() {
        let ids: Vec<Uuid> = shared.running.lock().unwrap().keys().copied().collect();
        tracing::warn!(jobs = ids.len(), "grace period over; handing running jobs back to the queue");
        for id in ids {
            shared.stop_job(id, StopReason::Shutdown);
        }
        tasks.wait().await;
    }
    drop(success_tx);
    let _ = completer.await;
    background.cancel();
    let _ = tokio::join!(listener, heartbeat, maintenance);
    tracing::info!("worker pool stopped");
}

/// Claim into free slots whenever something may be due: a notification, a finished job, the
/// timer to the next scheduled job, or the poll fallback.
async fn dispatch(
    shared: &Arc<Shared>,
    tasks: &TaskTracker,
    success_tx: &mpsc::UnboundedSender<Success>,
    shutdown: &CancellationToken,
) {
    let cfg = &shared.cfg;
    loop {
        if shutdown.is_cancelled() {
            return;
        }
        let free = cfg.concurrency.saturating_sub(shared.running_count());
        let mut sleep_for = cfg.poll_interval;
        if free > 0 && shared.healthy.load(std::sync::atomic::Ordering::Relaxed) {
            let started = std::time::Instant::now();
            match shared.store.claim(&cfg.worker_id, free, cfg.lease, &shared.kinds).await {
                Ok(jobs) => {
                    metrics::histogram!("acr_attach_claim_seconds").record(started.elapsed().as_secs_f64());
                    let full = jobs.len() == free;
                    for job in jobs {
                        start_job(shared, tasks, success_tx, job);
                    }
                    if full {
                        // Slots are all busy now; a finishing job wakes us.
                        continue;
                    }
                    // Everything due is claimed: sleep until the next scheduled job, at most the poll interval.
                    match shared.store.next_due().await {
                        Ok(Some(at)) => {
                            let until = (at - Utc::now()).to_std().unwrap_or_default();
                            sleep_for = sleep_for.min(until);
                        }
                        Ok(None) => {}
                        Err(e) => tracing::warn!(error = %e, "next-due query failed"),
                    }
                }
                Err(e) => tracing::warn!(error = %e, "claiming jobs failed"),
            }
        }
        tokio::select! {
            _ = shared.wake.notified() => {}
            _ = tokio::time::sleep(sleep_for) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

fn start_job(shared: &Arc<Shared>, tasks: &TaskTracker, success_tx: &mpsc::UnboundedSender<Success>, job: Job) {
    let stop = Arc::new(StopSignal::default());
    shared
        .running
        .lock()
        .unwrap()
        .insert(job.id, Running { epoch: job.lease_epoch, stop: stop.clone() });
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
        // Unreachable: claims are filtered by the kinds this replica has.
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
            let _ = success_tx.send(Success { id: job.id, epoch: job.lease_epoch, result, kind: job.kind.clone() });
            return;
        }
        Some(Ok(Ok(Outcome::Wait(w)))) => {
            let run_at = Utc::now() + chrono::Duration::from_std(w.delay).unwrap_or_default();
            if run_at > job.deadline_at {
                deadline_failure(&job, &w.condition, &w.message)
            } else {
                Finish::Snooze {
                    run_at,
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
    match shared.store.finish(job.id, job.lease_epoch, &finish).await {
        Ok(true) => {
            tracing::info!(parent: &span, outcome, "attempt finished");
            metrics::counter!("acr_attach_jobs_finished_total", "kind" => job.kind.clone(), "outcome" => outcome)
                .increment(1);
        }
        Ok(false) => {
            metrics::counter!("acr_attach_lease_lost_total").increment(1);
            tracing::warn!(parent: &span, outcome, "result dropped: the lease was lost");
        }
        // The lease will expire and the rescuer retries the job.
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
        ErrorClass::Permanent => Finish::Fail { error: record, consumed_attempt: true },
        ErrorClass::Transient => {
            if attempt >= job.max_attempts {
                let mut error = record;
                error.message = format!("{} (gave up after {attempt} attempts)", error.message);
                return Finish::Fail { error, consumed_attempt: true };
            }
            let delay = policy.delay(attempt as u32, e.retry_after);
            let run_at = Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default();
            if run_at > job.deadline_at {
                let mut error = record;
                error.message = format!(
                    "{} (the job's deadline {} leaves no time for another attempt)",
                    error.message,
                    job.deadline_at.to_rfc3339()
                );
                return Finish::Fail { error, consumed_attempt: true };
            }
            Finish::Retry { run_at, error: record, checkpoint: e.checkpoint }
        }
        ErrorClass::NotYetConsistent => {
            let delay = policy.delay((job.snoozes as u32).saturating_add(1), e.retry_after);
            let run_at = Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default();
            let condition = e.condition.clone().unwrap_or_else(|| e.code.clone());
            if run_at > job.deadline_at {
                return deadline_failure(job, &condition, &e.message);
            }
            Finish::Snooze { run_at, condition, message: e.message, error: Some(record), checkpoint: e.checkpoint }
        }
    }
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

/// Renew this replica's leases; stop jobs whose lease is gone or whose cancel was requested.
async fn heartbeat(shared: Arc<Shared>, stop: CancellationToken) {
    let cfg = &shared.cfg;
    let mut failures = 0u32;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(cfg.heartbeat_interval) => {}
            _ = stop.cancelled() => return,
        }
        let leases: Vec<(Uuid, i32)> =
            shared.running.lock().unwrap().iter().map(|(id, r)| (*id, r.epoch)).collect();
        match shared.store.heartbeat(&leases, cfg.lease).await {
            Ok(held) => {
                failures = 0;
                shared.healthy.store(true, std::sync::atomic::Ordering::Relaxed);
                let held: HashMap<Uuid, bool> = held.into_iter().collect();
                for (id, _) in &leases {
                    match held.get(id) {
                        None => shared.stop_job(*id, StopReason::LeaseLost),
                        Some(true) => shared.stop_job(*id, StopReason::Cancelled),
                        Some(false) => {}
                    }
                }
            }
            Err(e) => {
                failures += 1;
                tracing::warn!(error = %e, failures, "heartbeat failed");
                // Once the leases may have expired, another replica may own these jobs.
                if cfg.heartbeat_interval * failures >= cfg.lease {
                    shared.healthy.store(false, std::sync::atomic::Ordering::Relaxed);
                    for (id, _) in &leases {
                        shared.stop_job(*id, StopReason::LeaseLost);
                    }
                }
            }
        }
    }
}
