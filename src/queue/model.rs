//! Rows of the queue's tables and the values handlers hand to it.
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::time::Duration;
use uuid::Uuid;

use super::state::JobState;

/// One row of `job`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Job {
    pub id: Uuid,
    pub seq: i64,
    pub kind: String,
    pub target_key: Option<String>,
    pub dedup_key: Option<String>,
    pub args: Value,
    pub state: JobState,
    pub run_at: DateTime<Utc>,
    pub attempts: i32,
    pub max_attempts: i32,
    pub snoozes: i32,
    pub deadline_at: DateTime<Utc>,
    pub lease_epoch: i32,
    pub locked_by: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
    pub checkpoint: Option<Value>,
    pub result: Option<Value>,
    pub last_error: Option<sqlx::types::Json<ErrorRecord>>,
    pub wait: Option<sqlx::types::Json<WaitRecord>>,
    pub cancel_requested_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    pub finalized_at: Option<DateTime<Utc>>,
}

/// A job to enqueue. Build it with [`NewJob::new`] and the `with_*` methods.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub kind: String,
    pub args: Value,
    pub target_key: Option<String>,
    pub dedup: bool,
    pub max_attempts: i32,
    pub deadline: Duration,
    pub run_at: Option<DateTime<Utc>>,
    /// The checkpoint a new job starts from (what its enqueuer already knows, e.g. a batch's
    /// shared reads); not part of the dedup key, and dropped when an identical job is reused.
    pub checkpoint: Option<Value>,
}

impl NewJob {
    pub fn new(kind: impl Into<String>, args: Value) -> Self {
        NewJob {
            kind: kind.into(),
            args,
            target_key: None,
            dedup: true,
            max_attempts: 25,
            deadline: Duration::from_secs(2 * 3600),
            run_at: None,
            checkpoint: None,
        }
    }
    pub fn with_target(mut self, key: impl Into<String>) -> Self {
        self.target_key = Some(key.into());
        self
    }
    pub fn with_max_attempts(mut self, n: i32) -> Self {
        self.max_attempts = n.max(1);
        self
    }
    pub fn with_deadline(mut self, d: Duration) -> Self {
        self.deadline = d;
        self
    }
    pub fn with_run_at(mut self, at: DateTime<Utc>) -> Self {
        self.run_at = Some(at);
        self
    }
    /// Start a new job from `checkpoint` instead of from nothing. Only the service's own
    /// knowledge belongs here (never caller input: the job trusts its checkpoint).
    pub fn with_checkpoint(mut self, checkpoint: Value) -> Self {
        self.checkpoint = Some(checkpoint);
        self
    }
    /// Identical requests normally share one job; opt out for jobs that must always run.
    pub fn without_dedup(mut self) -> Self {
        self.dedup = false;
        self
    }

    /// sha256 of the kind, target and canonical arguments (serde_json objects are key-sorted).
    pub fn dedup_key(&self) -> Option<String> {
        self.dedup.then(|| {
            let mut h = Sha256::new();
            h.update(self.kind.as_bytes());
            h.update([0]);
            h.update(self.target_key.as_deref().unwrap_or("").as_bytes());
            h.update([0]);
            h.update(self.args.to_string().as_bytes());
            hex::encode(h.finalize())
        })
    }
}

/// A query over `enqueue_job($1..$8)`: what [`NewJob::bind_enqueue`] fills in.
pub type PgQueryAs<'q, O> = sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>;

impl NewJob {
    /// Binds `enqueue_job`'s eight arguments, in order (`$1` is the new job's `id`), to a query
    /// that calls it: the queue's own enqueue and the API's enqueue-with-audit share them.
    pub fn bind_enqueue<'q, O>(&'q self, q: PgQueryAs<'q, O>, id: Uuid) -> PgQueryAs<'q, O> {
        q.bind(id)
            .bind(&self.kind)
            .bind(&self.target_key)
            .bind(self.dedup_key())
            .bind(&self.args)
            .bind(self.run_at)
            .bind(self.max_attempts)
            .bind(self.deadline.as_secs_f64())
    }
}

/// What `enqueue` did.
#[derive(Debug, Clone)]
pub struct Enqueued {
    pub job: Job,
    /// True when an identical queued or running job was returned instead of a new one.
    pub deduplicated: bool,
}

/// How a handler classified a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ErrorClass {
    /// Worth retrying with back-off (network, 5xx, throttling); consumes an attempt.
    Transient,
    /// Retrying cannot help (validation, missing resource, missing permission after its budget).
    Permanent,
    /// The remote side has not caught up yet (replication, propagation); the job waits without
    /// consuming an attempt.
    NotYetConsistent,
}

/// One error in a job's history (also the job's `lastError`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorRecord {
    pub code: String,
    pub message: String,
    pub class: ErrorClass,
    pub attempt: i32,
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
}

/// What a waiting job waits for, and since when.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WaitRecord {
    /// A stable name of the condition, e.g. `principalReplication`.
    pub condition: String,
    pub message: String,
    /// When the job started waiting for this condition (kept across consecutive polls).
    pub since: DateTime<Utc>,
    /// When the condition is checked next.
    pub next_check_at: DateTime<Utc>,
}

/// One entry of the job's timeline.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct JobEvent {
    pub id: i64,
    pub job_id: Uuid,
    pub at: DateTime<Utc>,
    #[sqlx(rename = "type")]
    pub kind: String,
    pub attempt: i32,
    pub data: Option<Value>,
}

/// Filters of the job listing; `before_seq` is the pagination cursor (newest first).
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    pub kind: Option<String>,
    pub state: Option<JobState>,
    pub target_key: Option<String>,
    /// Only jobs this requester asked for (see [`crate::queue::JobStore::add_requester`]).
    pub requested_by: Option<String>,
    pub before_seq: Option<i64>,
    pub limit: i64,
}
