//! What a job kind implements, and what it gets while it runs.
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::backoff::RetryPolicy;
use super::model::{ErrorClass, WaitRecord};
use super::store::JobStore;

/// One job kind. Handlers must be idempotent per step: delivery is at-least-once (a worker can
/// die after a remote write and before recording it).
#[async_trait]
pub trait JobHandler: Send + Sync + 'static {
    /// The `kind` column this handler runs.
    fn kind(&self) -> &'static str;

    /// Back-off for transient errors; the default suits remote APIs.
    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy::default()
    }

    /// Upper bound for one attempt; past it the attempt counts as a transient failure.
    fn attempt_timeout(&self) -> Duration {
        Duration::from_secs(600)
    }

    async fn run(&self, ctx: &JobContext) -> Result<Outcome, JobError>;
}

/// A job kind with typed arguments, in the spirit of crates.io's `BackgroundJob`: the type
/// names its kind and its arguments, so a kind is never paired with the wrong arguments.
/// Register it with [`super::Handlers::job`]; enqueue it with [`super::NewJob::of`]. The queue
/// itself stays generic: it sees the kind only as the string in a row.
#[async_trait]
pub trait BackgroundJob: Send + Sync + 'static {
    /// The `kind` column of this job's rows.
    const KIND: &'static str;
    /// What the job is asked to do, as stored in the row's `args`.
    type Args: Serialize + DeserializeOwned + Send + Sync + 'static;

    /// Back-off for transient errors; the default suits remote APIs.
    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy::default()
    }

    /// Upper bound for one attempt; past it the attempt counts as a transient failure.
    fn attempt_timeout(&self) -> Duration {
        Duration::from_secs(600)
    }

    async fn run(&self, ctx: &JobContext, args: Self::Args) -> Result<Outcome, JobError>;
}

impl super::model::NewJob {
    /// A job of the typed kind `J`: its kind comes from the type, its arguments are `J`'s.
    pub fn of<J: BackgroundJob>(args: &J::Args) -> Self {
        Self::new(J::KIND, serde_json::to_value(args).expect("job arguments serialise"))
    }
}

/// A [`BackgroundJob`] as the worker runs it: arguments decoded first (a row whose arguments
/// do not decode fails permanently, it cannot get better).
pub(super) struct Typed<J>(pub J);

#[async_trait]
impl<J: BackgroundJob> JobHandler for Typed<J> {
    fn kind(&self) -> &'static str {
        J::KIND
    }
    fn retry_policy(&self) -> RetryPolicy {
        self.0.retry_policy()
    }
    fn attempt_timeout(&self) -> Duration {
        self.0.attempt_timeout()
    }
    async fn run(&self, ctx: &JobContext) -> Result<Outcome, JobError> {
        let args: J::Args = ctx.args()?;
        self.0.run(ctx, args).await
    }
}

/// How an attempt ended well.
#[derive(Debug)]
pub enum Outcome {
    Succeeded(Value),
    /// Not done yet, nothing wrong: check again later without consuming an attempt.
    Wait(Wait),
}

/// A persisted wait for a named condition (the worker slot is freed meanwhile).
#[derive(Debug, Clone)]
pub struct Wait {
    pub condition: String,
    pub message: String,
    pub delay: Duration,
    pub checkpoint: Option<Value>,
}

impl Wait {
    pub fn new(condition: impl Into<String>, message: impl Into<String>, delay: Duration) -> Self {
        Wait {
            condition: condition.into(),
            message: message.into(),
            delay,
            checkpoint: None,
        }
    }
    pub fn with_checkpoint(mut self, cp: impl Serialize) -> Self {
        self.checkpoint = serde_json::to_value(cp).ok();
        self
    }
}

/// How an attempt ended badly, classified by the handler.
#[derive(Debug, Clone)]
pub struct JobError {
    pub class: ErrorClass,
    pub code: String,
    pub message: String,
    /// The remote side's hint (`Retry-After`); honoured instead of the back-off.
    pub retry_after: Option<Duration>,
    pub details: Option<Value>,
    /// For `NotYetConsistent`: the condition waited for (defaults to the code).
    pub condition: Option<String>,
    pub checkpoint: Option<Value>,
    /// A wait that is nobody's error (a slot of ARM's quota reserved for later, found deep in
    /// a step): the job waits, and its error history is left alone.
    pub planned: bool,
}

impl JobError {
    fn new(class: ErrorClass, code: impl Into<String>, message: impl Into<String>) -> Self {
        JobError {
            class,
            code: code.into(),
            message: message.into(),
            retry_after: None,
            details: None,
            condition: None,
            checkpoint: None,
            planned: false,
        }
    }
    pub fn transient(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(ErrorClass::Transient, code, message)
    }
    pub fn permanent(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(ErrorClass::Permanent, code, message)
    }
    pub fn not_yet_consistent(
        condition: impl Into<String>,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        let mut e = Self::new(ErrorClass::NotYetConsistent, code, message);
        e.condition = Some(condition.into());
        e
    }
    /// A `NotYetConsistent` wait for `condition` that is not an error (see [`JobError::planned`]).
    pub fn planned_wait(condition: impl Into<String>, code: impl Into<String>, message: impl Into<String>) -> Self {
        let mut e = Self::not_yet_consistent(condition, code, message);
        e.planned = true;
        e
    }
    pub fn with_retry_after(mut self, d: Option<Duration>) -> Self {
        self.retry_after = d;
        self
    }
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }
    pub fn with_checkpoint(mut self, cp: impl Serialize) -> Self {
        self.checkpoint = serde_json::to_value(cp).ok();
        self
    }
}

impl std::fmt::Display for JobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// Why a running job's token was cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum StopReason {
    None = 0,
    /// A user asked to cancel the job.
    Cancelled = 1,
    /// Another worker owns the job now; stop all side effects.
    LeaseLost = 2,
    /// This replica is shutting down; the job is handed back.
    Shutdown = 3,
}

/// Shared between a running job, the heartbeat and the cancel listener.
#[derive(Debug, Default)]
pub struct StopSignal {
    pub token: CancellationToken,
    reason: AtomicU8,
}

impl StopSignal {
    pub fn stop(&self, why: StopReason) {
        // The first reason wins: a job cancelled by its user stays cancelled during shutdown.
        let _ = self
            .reason
            .compare_exchange(0, why as u8, Ordering::SeqCst, Ordering::SeqCst);
        self.token.cancel();
    }
    pub fn reason(&self) -> StopReason {
        match self.reason.load(Ordering::SeqCst) {
            1 => StopReason::Cancelled,
            2 => StopReason::LeaseLost,
            3 => StopReason::Shutdown,
            _ => StopReason::None,
        }
    }
}

/// What a handler sees of its job.
pub struct JobContext {
    pub id: Uuid,
    pub kind: String,
    pub args: Value,
    /// Attempts consumed before this one (failures and rescues; waits do not count).
    pub attempts: i32,
    /// The lease epoch: how many times the job has been claimed, including this time.
    pub run: i32,
    pub checkpoint: Option<Value>,
    /// The condition the job was waiting for before this run, if it was waiting.
    pub wait: Option<WaitRecord>,
    pub created_at: DateTime<Utc>,
    pub deadline_at: DateTime<Utc>,
    pub stop: Arc<StopSignal>,
    pub(crate) store: JobStore,
    /// How long writes of this attempt's progress are retried through a database outage.
    pub(crate) persist_for: Duration,
}

impl JobContext {
    pub fn args<T: DeserializeOwned>(&self) -> Result<T, JobError> {
        serde_json::from_value(self.args.clone())
            .map_err(|e| JobError::permanent("InvalidJobArguments", format!("the job's arguments do not parse: {e}")))
    }

    pub fn checkpoint<T: DeserializeOwned + Default>(&self) -> T {
        self.checkpoint
            .clone()
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default()
    }

    /// Persist progress so a crash or restart resumes from here. Fails when the lease is lost.
    pub async fn save_checkpoint(&self, cp: &impl Serialize) -> Result<(), JobError> {
        let v =
            serde_json::to_value(cp).map_err(|e| JobError::permanent("CheckpointNotSerializable", e.to_string()))?;
        let saved = super::persist::persistently("a checkpoint", self.persist_for, || {
            self.store.save_checkpoint(self.id, self.run, &v)
        })
        .await;
        match saved {
            Ok(true) => Ok(()),
            Ok(false) => Err(lease_lost()),
            Err(e) => Err(JobError::transient(
                "QueueUnavailable",
                format!("saving the checkpoint failed: {e}"),
            )),
        }
    }

    /// Add an entry to the job's timeline (a step's outcome, a remote call).
    pub async fn record(&self, kind: &str, data: Value) {
        let recorded = super::persist::persistently("a job event", self.persist_for, || {
            self.store.record(self.id, self.run, kind, data.clone())
        })
        .await;
        if let Err(e) = recorded {
            tracing::warn!(job = %self.id, error = %e, "could not record a job event");
        }
    }
}

fn lease_lost() -> JobError {
    JobError::transient("LeaseLost", "this worker no longer holds the job's lease")
}

/// The job kinds this replica runs.
#[derive(Clone, Default)]
pub struct Handlers(HashMap<&'static str, Arc<dyn JobHandler>>);

impl Handlers {
    pub fn new() -> Self {
        Self::default()
    }
    /// Registers a typed job kind.
    pub fn job<J: BackgroundJob>(self, job: J) -> Self {
        self.with(Typed(job))
    }
    /// Registers an untyped handler (tests, benchmarks).
    pub fn with(mut self, h: impl JobHandler) -> Self {
        self.0.insert(h.kind(), Arc::new(h));
        self
    }
    pub fn kinds(&self) -> Vec<String> {
        self.0.keys().map(|k| k.to_string()).collect()
    }
    /// Each kind's back-off (for rescued jobs).
    pub(super) fn policies(&self) -> super::store::KindPolicies {
        super::store::KindPolicies {
            kinds: self.0.iter().map(|(k, h)| (k.to_string(), h.retry_policy())).collect(),
            fallback: Default::default(),
        }
    }
    pub(super) fn get(&self, kind: &str) -> Option<Arc<dyn JobHandler>> {
        self.0.get(kind).cloned()
    }
}
