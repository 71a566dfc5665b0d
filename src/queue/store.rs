//! Every SQL statement of the queue. Workers borrow a connection only for one statement at a
//! time; nothing here is held open while a handler talks to Azure.
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder};
use std::time::Duration;
use uuid::Uuid;

use super::backoff::RetryPolicy;
use super::model::{Enqueued, ErrorRecord, Job, JobEvent, JobFilter, NewJob};
use super::state::JobState;

/// The NOTIFY channel that wakes dispatchers (payload unused).
pub const WAKE_CHANNEL: &str = "acr_attach_jobs";
/// The NOTIFY channel that tells the replica running a job that it was cancelled (payload: job id).
pub const CANCEL_CHANNEL: &str = "acr_attach_cancel";

// The state lists below are written out in each statement (sqlx only takes static SQL):
// pending = ('queued', 'waiting', 'retrying'); unfinished = pending + 'running'.

/// How a running job ends its attempt (other than success, which is batched).
#[derive(Debug, Clone)]
pub enum Finish {
    Retry {
        delay: Duration,
        error: ErrorRecord,
        checkpoint: Option<Value>,
    },
    Snooze {
        delay: Duration,
        condition: String,
        message: String,
        error: Option<ErrorRecord>,
        checkpoint: Option<Value>,
    },
    Fail {
        error: ErrorRecord,
        consumed_attempt: bool,
    },
    Cancelled,
    HandBack,
}

/// Result of a cancel request.
#[derive(Debug, Clone)]
pub enum CancelOutcome {
    /// A pending job: cancelled at once.
    Cancelled(Job),
    /// A running job: its worker is told and ends it as cancelled.
    Requested(Job),
    /// Already succeeded, failed or cancelled; nothing changed.
    AlreadyFinished(Job),
}

/// The back-off of a rescued job: its own kind's, or `fallback` for kinds this replica does
/// not run (a dead worker's job is retried by whichever replica notices first).
#[derive(Debug, Clone, Default)]
pub struct KindPolicies {
    pub kinds: Vec<(String, RetryPolicy)>,
    pub fallback: RetryPolicy,
}

#[derive(Clone)]
pub struct JobStore {
    pool: PgPool,
}

impl JobStore {
    pub fn new(pool: PgPool) -> Self {
        JobStore { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Enqueue on `conn`, inside the caller's transaction if it has one (so an API can store its
    /// idempotency record in the same commit). SQL function `enqueue_job` (see the migration):
    /// per-target advisory lock, dedup against the target's latest unfinished job, NOTIFY.
    /// 200 concurrent identical requests produce exactly one job.
    /// A job with an initial checkpoint gets it in the same transaction (a savepoint inside the
    /// caller's), so no worker can claim it without it.
    pub async fn enqueue(&self, conn: &mut PgConnection, new: &NewJob) -> sqlx::Result<Enqueued> {
        let Some(checkpoint) = &new.checkpoint else {
            return self.enqueue_row(conn, new).await;
        };
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        let mut enq = self.enqueue_row(&mut tx, new).await?;
        if !enq.deduplicated {
            sqlx::query("UPDATE job SET checkpoint = $2 WHERE id = $1")
                .bind(enq.job.id)
                .bind(checkpoint)
                .execute(&mut *tx)
                .await?;
            enq.job.checkpoint = Some(checkpoint.clone());
        }
        tx.commit().await?;
        Ok(enq)
    }

    async fn enqueue_row(&self, conn: &mut PgConnection, new: &NewJob) -> sqlx::Result<Enqueued> {
        let id = Uuid::new_v4();
        let job: Job = new
            .bind_enqueue(
                sqlx::query_as("SELECT * FROM enqueue_job($1, $2, $3, $4, $5, $6, $7, $8)"),
                id,
            )
            .fetch_one(&mut *conn)
            .await?;
        let deduplicated = job.id != id;
        Ok(Enqueued { job, deduplicated })
    }

    /// Enqueue on its own (one round trip: the statement is its own transaction).
    pub async fn enqueue_one(&self, new: &NewJob) -> sqlx::Result<Enqueued> {
        let mut conn = self.pool.acquire().await?;
        self.enqueue(&mut conn, new).await
    }

    /// Bulk insert without dedup (benchmarks, batch imports): one statement, one NOTIFY.
    pub async fn enqueue_many(&self, jobs: &[NewJob]) -> sqlx::Result<u64> {
        if jobs.is_empty() {
            return Ok(0);
        }
        let mut tx = self.pool.begin().await?;
        let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(
            "WITH ins AS (INSERT INTO job (id, kind, target_key, args, run_at, max_attempts, deadline_at) ",
        );
        qb.push_values(jobs, |mut b, j| {
            b.push_bind(Uuid::new_v4())
                .push_bind(&j.kind)
                .push_bind(&j.target_key)
                .push_bind(&j.args)
                .push("coalesce(")
                .push_bind_unseparated(j.run_at)
                .push_unseparated(", now())")
                .push_bind(j.max_attempts)
                .push("now() + make_interval(secs => ")
                .push_bind_unseparated(j.deadline.as_secs_f64())
                .push_unseparated(")");
        });
        qb.push(" RETURNING id) SELECT count(*) FROM ins");
        let n: i64 = qb.build_query_scalar().fetch_one(&mut *tx).await?;
        notify(&mut tx, WAKE_CHANNEL, "").await?;
        tx.commit().await?;
        Ok(n as u64)
    }

    pub async fn get(&self, id: Uuid) -> sqlx::Result<Option<Job>> {
        sqlx::query_as("SELECT * FROM job WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
    }

    /// The jobs of `ids` that exist, in no particular order.
    pub async fn get_many(&self, ids: &[Uuid]) -> sqlx::Result<Vec<Job>> {
        sqlx::query_as("SELECT * FROM job WHERE id = ANY($1)")
            .bind(ids)
            .fetch_all(&self.pool)
            .await
    }

    /// Newest first; `before_seq` continues a previous page.
    pub async fn list(&self, f: &JobFilter) -> sqlx::Result<Vec<Job>> {
        sqlx::query_as(
            "SELECT * FROM job \
             WHERE ($1::text IS NULL OR kind = $1) AND ($2::job_state IS NULL OR state = $2) \
               AND ($3::text IS NULL OR target_key = $3) AND ($4::bigint IS NULL OR seq < $4) \
               AND ($6::text IS NULL OR EXISTS \
                   (SELECT 1 FROM job_requester r WHERE r.job_id = job.id AND r.requested_by = $6)) \
             ORDER BY seq DESC LIMIT $5",
        )
        .bind(&f.kind)
        .bind(f.state)
        .bind(&f.target_key)
        .bind(f.before_seq)
        .bind(f.limit)
        .bind(&f.requested_by)
        .fetch_all(&self.pool)
        .await
    }

    /// Records that `who` (an opaque requester name) asked for the job; a job asked for by
    /// several requesters (dedup) has them all. Part of the caller's enqueue transaction.
    pub async fn add_requester(&self, conn: &mut PgConnection, job: Uuid, who: &str) -> sqlx::Result<()> {
        sqlx::query("INSERT INTO job_requester (job_id, requested_by) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(job)
            .bind(who)
            .execute(conn)
            .await?;
        Ok(())
    }

    /// Whether `who` asked for the job.
    pub async fn is_requester(&self, job: Uuid, who: &str) -> sqlx::Result<bool> {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM job_requester WHERE job_id = $1 AND requested_by = $2)")
            .bind(job)
            .bind(who)
            .fetch_one(&self.pool)
            .await
    }

    /// The job's timeline, oldest first: the stored events plus those its row implies
    /// (enqueued, the first start, success), which carry id 0.
    pub async fn events(&self, id: Uuid) -> sqlx::Result<Option<Vec<JobEvent>>> {
        let Some(job) = self.get(id).await? else {
            return Ok(None);
        };
        let stored: Vec<JobEvent> = sqlx::query_as("SELECT * FROM job_event WHERE job_id = $1 ORDER BY id")
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
        let implied = |kind: &str, at: DateTime<Utc>, attempt: i32, data: Option<Value>| JobEvent {
            id: 0,
            job_id: id,
            at,
            kind: kind.into(),
            attempt,
            data,
        };
        let mut all = vec![implied("enqueued", job.created_at, 0, None)];
        if let Some(at) = job.started_at {
            all.push(implied("started", at, 1, Some(json!({ "leaseEpoch": 1 }))));
        }
        all.extend(stored);
        if let (JobState::Succeeded, Some(at)) = (job.state, job.finalized_at) {
            all.push(implied("succeeded", at, job.attempts + 1, None));
        }
        // Stable: implied events keep their place among stored ones with the same time.
        all.sort_by_key(|e| e.at);
        Ok(Some(all))
    }

    /// The most recent errors of a job, newest last.
    pub async fn errors(&self, id: Uuid, limit: i64) -> sqlx::Result<Vec<ErrorRecord>> {
        let rows: Vec<(sqlx::types::Json<ErrorRecord>,)> = sqlx::query_as(
            "SELECT data->'error' FROM (SELECT id, data FROM job_event \
               WHERE job_id = $1 AND data ? 'error' ORDER BY id DESC LIMIT $2) e ORDER BY id",
        )
        .bind(id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|r| r.0.0).collect())
    }

    /// Pending → cancelled now; running → flagged, and its replica is told through NOTIFY.
    pub async fn cancel(&self, id: Uuid) -> sqlx::Result<Option<CancelOutcome>> {
        let mut tx = self.pool.begin().await?;
        let Some(job): Option<Job> = sqlx::query_as("SELECT * FROM job WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(None);
        };
        let outcome = match job.state {
            s if s.is_terminal() => CancelOutcome::AlreadyFinished(job),
            JobState::Running => {
                let job: Job = sqlx::query_as(
                    "UPDATE job SET cancel_requested_at = coalesce(cancel_requested_at, now()), \
                       updated_at = now() WHERE id = $1 RETURNING *",
                )
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
                event(&mut tx, id, "cancel_requested", job.attempts + 1, None).await?;
                notify(&mut tx, CANCEL_CHANNEL, &id.to_string()).await?;
                CancelOutcome::Requested(job)
            }
            _ => {
                let job: Job = sqlx::query_as(
                    "UPDATE job SET state = 'cancelled', cancel_requested_at = now(), finalized_at = now(), \
                       updated_at = now() WHERE id = $1 RETURNING *",
                )
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
                event(&mut tx, id, "cancelled", job.attempts, None).await?;
                // A cancelled job may have been blocking later jobs of its target.
                notify(&mut tx, WAKE_CHANNEL, "").await?;
                CancelOutcome::Cancelled(job)
            }
        };
        tx.commit().await?;
        Ok(Some(outcome))
    }

    /// Claim up to `limit` due jobs in one round trip (SQL function `claim_jobs`, see the
    /// migration: SKIP LOCKED, per-target FIFO, cached plans).
    pub async fn claim(&self, worker: &str, limit: usize, lease: Duration, kinds: &[String]) -> sqlx::Result<Vec<Job>> {
        let result = sqlx::query_as("SELECT * FROM claim_jobs($1, $2, $3, $4)")
            .bind(limit as i32)
            .bind(worker)
            .bind(lease.as_secs_f64())
            .bind(kinds)
            .fetch_all(&self.pool)
            .await;
        match result {
            // The unique "one running job per target" index fired: a race the FIFO predicate
            // should prevent. Treat as an empty fetch; the next one sorts it out.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("23505") => Ok(Vec::new()),
            other => other,
        }
    }

    /// Renew the leases this replica holds. Returns, for each lease still held, whether a
    /// cancel was requested; a job missing from the answer has lost its lease.
    pub async fn heartbeat(&self, leases: &[(Uuid, i32)], lease: Duration) -> sqlx::Result<Vec<(Uuid, bool)>> {
        if leases.is_empty() {
            return Ok(Vec::new());
        }
        let (ids, epochs): (Vec<Uuid>, Vec<i32>) = leases.iter().copied().unzip();
        sqlx::query_as(
            "UPDATE job SET lease_until = now() + make_interval(secs => $3) \
             FROM unnest($1::uuid[], $2::int[]) AS l(id, epoch) \
             WHERE job.id = ANY($1) AND job.id = l.id AND job.lease_epoch = l.epoch AND job.state = 'running' \
             RETURNING job.id, job.cancel_requested_at IS NOT NULL",
        )
        .bind(&ids)
        .bind(&epochs)
        .bind(lease.as_secs_f64())
        .fetch_all(&self.pool)
        .await
    }

    /// Fenced success of many jobs in one statement. (`id = ANY($1)` steers the planner to the
    /// primary key; joining on the running-jobs index would walk its dead entries under churn.) Returns the ids whose completion was
    /// accepted (a worker that lost its lease gets nothing back) and whether a job of one of
    /// their targets is now waiting.
    pub async fn succeed_many(&self, done: &[(Uuid, i32, Value)]) -> sqlx::Result<(Vec<Uuid>, bool)> {
        if done.is_empty() {
            return Ok((Vec::new(), false));
        }
        let ids: Vec<Uuid> = done.iter().map(|d| d.0).collect();
        let epochs: Vec<i32> = done.iter().map(|d| d.1).collect();
        let results: Vec<Value> = done.iter().map(|d| d.2.clone()).collect();
        // The same statement wakes the replicas when a finished job's target has a successor
        // waiting (its snapshot predates the update; successors are pending, untouched by it).
        let rows: Vec<(Uuid, bool)> = sqlx::query_as(
            "WITH input AS (SELECT * FROM unnest($1::uuid[], $2::int[], $3::jsonb[]) AS t(id, epoch, result)), \
             done AS ( \
               UPDATE job SET state = 'succeeded', result = input.result, finalized_at = now(), \
                 lease_until = NULL, locked_by = NULL, wait = NULL, updated_at = now() \
               FROM input WHERE job.id = ANY($1) AND job.id = input.id AND job.lease_epoch = input.epoch \
                 AND job.state = 'running' \
               RETURNING job.id, job.target_key), \
             woke AS ( \
               SELECT count(pg_notify('acr_attach_jobs', '')) AS n FROM ( \
                 SELECT 1 FROM job s WHERE s.target_key IN (SELECT target_key FROM done) \
                   AND s.state IN ('queued', 'waiting', 'retrying') LIMIT 1) successor) \
             SELECT done.id, woke.n > 0 FROM done, woke",
        )
        .bind(&ids)
        .bind(&epochs)
        .bind(&results)
        .fetch_all(&self.pool)
        .await?;
        let successors = rows.iter().any(|r| r.1);
        Ok((rows.into_iter().map(|r| r.0).collect(), successors))
    }

    /// Every non-success end of an attempt, fenced by the lease epoch. Returns false when the
    /// worker no longer holds the lease (its result is dropped).
    pub async fn finish(&self, id: Uuid, epoch: i32, how: &Finish) -> sqlx::Result<bool> {
        let mut tx = self.pool.begin().await?;
        // run_at is set with the database clock, the one claims compare against.
        let row: Option<(i32, Option<String>, DateTime<Utc>)> = match how {
            Finish::Retry { delay, error, checkpoint } => {
                sqlx::query_as(
                    "UPDATE job SET state = 'retrying', attempts = attempts + 1, run_at = now() + make_interval(secs => $3), \
                       last_error = $4, checkpoint = coalesce($5, checkpoint), wait = NULL, \
                       lease_until = NULL, locked_by = NULL, updated_at = now() \
                     WHERE id = $1 AND lease_epoch = $2 AND state = 'running' RETURNING attempts, target_key, run_at",
                )
                .bind(id)
                .bind(epoch)
                .bind(delay.as_secs_f64())
                .bind(sqlx::types::Json(error))
                .bind(checkpoint)
                .fetch_optional(&mut *tx)
                .await?
            }
            Finish::Snooze { delay, condition, message, error, checkpoint } => {
                sqlx::query_as(
                    "UPDATE job SET state = 'waiting', snoozes = snoozes + 1, run_at = now() + make_interval(secs => $3), \
                       checkpoint = coalesce($4, checkpoint), last_error = coalesce($5, last_error), \
                       wait = jsonb_build_object('condition', $6::text, 'message', $7::text, \
                         'nextCheckAt', now() + make_interval(secs => $3), \
                         'since', CASE WHEN wait->>'condition' = $6 THEN wait->'since' ELSE to_jsonb(now()) END), \
                       lease_until = NULL, locked_by = NULL, updated_at = now() \
                     WHERE id = $1 AND lease_epoch = $2 AND state = 'running' RETURNING attempts + 1, target_key, run_at",
                )
                .bind(id)
                .bind(epoch)
                .bind(delay.as_secs_f64())
                .bind(checkpoint)
                .bind(error.as_ref().map(sqlx::types::Json))
                .bind(condition)
                .bind(message)
                .fetch_optional(&mut *tx)
                .await?
            }
            Finish::Fail { error, consumed_attempt } => {
                sqlx::query_as(
                    "UPDATE job SET state = 'failed', attempts = attempts + $3, last_error = $4, wait = NULL, \
                       finalized_at = now(), lease_until = NULL, locked_by = NULL, updated_at = now() \
                     WHERE id = $1 AND lease_epoch = $2 AND state = 'running' RETURNING attempts, target_key, run_at",
                )
                .bind(id)
                .bind(epoch)
                .bind(i32::from(*consumed_attempt))
                .bind(sqlx::types::Json(error))
                .fetch_optional(&mut *tx)
                .await?
            }
            Finish::Cancelled => {
                sqlx::query_as(
                    "UPDATE job SET state = 'cancelled', wait = NULL, finalized_at = now(), \
                       lease_until = NULL, locked_by = NULL, updated_at = now() \
                     WHERE id = $1 AND lease_epoch = $2 AND state = 'running' RETURNING attempts + 1, target_key, run_at",
                )
                .bind(id)
                .bind(epoch)
                .fetch_optional(&mut *tx)
                .await?
            }
            Finish::HandBack => {
                sqlx::query_as(
                    "UPDATE job SET state = 'queued', run_at = now(), lease_until = NULL, locked_by = NULL, \
                       updated_at = now() \
                     WHERE id = $1 AND lease_epoch = $2 AND state = 'running' RETURNING attempts + 1, target_key, run_at",
                )
                .bind(id)
                .bind(epoch)
                .fetch_optional(&mut *tx)
                .await?
            }
        };
        let Some((attempt, target, run_at)) = row else {
            return Ok(false);
        };
        let (kind, data) = finish_event(how, run_at);
        event(&mut tx, id, kind, attempt, data).await?;
        if target.is_some() || matches!(how, Finish::HandBack) {
            notify(&mut tx, WAKE_CHANNEL, "").await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Save a step's checkpoint so a restart resumes there (fenced).
    pub async fn save_checkpoint(&self, id: Uuid, epoch: i32, checkpoint: &Value) -> sqlx::Result<bool> {
        let r = sqlx::query(
            "UPDATE job SET checkpoint = $3, updated_at = now() \
             WHERE id = $1 AND lease_epoch = $2 AND state = 'running'",
        )
        .bind(id)
        .bind(epoch)
        .bind(checkpoint)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// A handler's own note in the timeline (a step done, a remote call made), fenced.
    pub async fn record(&self, id: Uuid, epoch: i32, kind: &str, data: Value) -> sqlx::Result<bool> {
        let r = sqlx::query(
            "INSERT INTO job_event (job_id, type, attempt, data) \
             SELECT id, $3, attempts + 1, $4 FROM job WHERE id = $1 AND lease_epoch = $2 AND state = 'running'",
        )
        .bind(id)
        .bind(epoch)
        .bind(kind)
        .bind(data)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Jobs whose worker is gone go back to `retrying` (an attempt is consumed: a job that kills
    /// its worker must not loop forever), or end `failed`/`cancelled`. Gone: its lease expired
    /// (a hung worker), or at once when the worker's liveness lock is no longer held (its
    /// database session ended: the process died). A live-but-slow worker keeps its lock and its
    /// jobs; fencing makes any late result of a rescued attempt count for nothing.
    /// Safe on every replica at once (SKIP LOCKED); no leader needed.
    pub async fn rescue_expired(&self, limit: i64, policies: &KindPolicies) -> sqlx::Result<Vec<Uuid>> {
        let rows: Vec<(Uuid,)> = sqlx::query_as(
            "WITH live AS (SELECT objid::text::bigint AS worker FROM pg_locks \
                           WHERE locktype = 'advisory' AND classid = $7::bigint::text::oid AND objsubid = 2 AND granted \
                             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())), \
             s AS (SELECT id, kind FROM job WHERE state = 'running' \
                     AND (lease_until < now() \
                          OR (hashtext(locked_by) & 2147483647) NOT IN (SELECT worker FROM live)) \
                   ORDER BY lease_until LIMIT $1 FOR NO KEY UPDATE SKIP LOCKED), \
             r AS ( \
               UPDATE job SET \
                 state = (CASE WHEN cancel_requested_at IS NOT NULL THEN 'cancelled' \
                               WHEN attempts + 1 >= max_attempts OR now() >= deadline_at THEN 'failed' \
                               ELSE 'retrying' END)::job_state, \
                 finalized_at = CASE WHEN cancel_requested_at IS NOT NULL OR attempts + 1 >= max_attempts \
                                       OR now() >= deadline_at THEN now() END, \
                 attempts = attempts + 1, \
                 run_at = now() + make_interval(secs => least(coalesce(p.cap, $3), coalesce(p.base, $2) * power(2, attempts)) \
                                                         * (0.8 + random() * 0.4)), \
                 last_error = jsonb_build_object('code', 'WorkerLost', 'class', 'transient', \
                   'message', 'the worker ' || coalesce(locked_by, '?') \
                     || CASE WHEN lease_until < now() THEN ' stopped renewing its lease' \
                             ELSE ' lost its database session (the process died, or lost the database)' END, \
                   'attempt', attempts + 1, 'at', now()), \
                 lease_until = NULL, locked_by = NULL, updated_at = now() \
               FROM s LEFT JOIN unnest($4::text[], $5::float8[], $6::float8[]) AS p (kind, base, cap) ON p.kind = s.kind \
               WHERE job.id = s.id \
               RETURNING job.id, job.attempts, job.state, job.last_error), \
             ev AS (INSERT INTO job_event (job_id, type, attempt, data) \
               SELECT id, 'rescued', attempts, jsonb_build_object('newState', state, 'error', last_error) FROM r) \
             SELECT id FROM r",
        )
        .bind(limit)
        .bind(policies.fallback.base.as_secs_f64())
        .bind(policies.fallback.cap.as_secs_f64())
        .bind(policies.kinds.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>())
        .bind(policies.kinds.iter().map(|(_, p)| p.base.as_secs_f64()).collect::<Vec<_>>())
        .bind(policies.kinds.iter().map(|(_, p)| p.cap.as_secs_f64()).collect::<Vec<_>>())
        .bind(i64::from(super::listener::LIVENESS_LOCK_CLASS))
        .fetch_all(&self.pool)
        .await?;
        if !rows.is_empty() {
            notify_pool(&self.pool, WAKE_CHANNEL).await?;
        }
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    /// Delete finished jobs older than their retention, `batch` rows per statement so vacuum
    /// and other writers are never starved. Returns how many were deleted.
    pub async fn prune(&self, keep_done: Duration, keep_failed: Duration, batch: i64) -> sqlx::Result<u64> {
        let mut total = 0;
        loop {
            let n: i64 = sqlx::query_scalar(
                "WITH d AS (SELECT id FROM job WHERE finalized_at IS NOT NULL AND ( \
                     (state = 'failed' AND finalized_at < now() - make_interval(secs => $2)) OR \
                     (state <> 'failed' AND finalized_at < now() - make_interval(secs => $1))) \
                   ORDER BY finalized_at LIMIT $3 FOR UPDATE SKIP LOCKED), \
                 gone AS (DELETE FROM job USING d WHERE job.id = d.id RETURNING job.id), \
                 ev AS (DELETE FROM job_event WHERE job_id IN (SELECT id FROM gone)) \
                 SELECT count(*) FROM gone",
            )
            .bind(keep_done.as_secs_f64())
            .bind(keep_failed.as_secs_f64())
            .bind(batch)
            .fetch_one(&self.pool)
            .await?;
            total += n as u64;
            if n < batch {
                return Ok(total);
            }
        }
    }

    /// When the next not-yet-due pending job becomes due (for the dispatcher's timer).
    pub async fn next_due(&self) -> sqlx::Result<Option<DateTime<Utc>>> {
        let row: Option<(DateTime<Utc>,)> = sqlx::query_as(
            "SELECT run_at FROM job WHERE state IN ('queued', 'waiting', 'retrying') AND run_at > now() ORDER BY run_at LIMIT 1"
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.0))
    }

    /// Jobs per state (for metrics).
    pub async fn depth_by_state(&self) -> sqlx::Result<Vec<(JobState, i64)>> {
        sqlx::query_as("SELECT state, count(*) FROM job GROUP BY state")
            .fetch_all(&self.pool)
            .await
    }

    /// Per kind: jobs not finished, and how long the longest-due one has been due without a
    /// worker taking it (0 when none is due): the "stuck queue" signal, for metrics.
    pub async fn pending_by_kind(&self) -> sqlx::Result<Vec<(String, i64, f64)>> {
        sqlx::query_as(
            "SELECT kind, count(*), coalesce(extract(epoch FROM now() - min(run_at) \
                 FILTER (WHERE state IN ('queued', 'retrying', 'waiting') AND run_at <= now()))::float8, 0) \
             FROM job WHERE state IN ('queued', 'retrying', 'waiting', 'running') GROUP BY kind",
        )
        .fetch_all(&self.pool)
        .await
    }

    /// Jobs waiting, grouped by the condition they wait for (for metrics).
    pub async fn waiting_by_condition(&self) -> sqlx::Result<Vec<(String, i64)>> {
        sqlx::query_as(
            "SELECT coalesce(wait->>'condition', 'unknown'), count(*) FROM job WHERE state = 'waiting' GROUP BY 1",
        )
        .fetch_all(&self.pool)
        .await
    }
}

fn finish_event(how: &Finish, run_at: DateTime<Utc>) -> (&'static str, Option<Value>) {
    match how {
        Finish::Retry { delay, error, .. } => (
            "retry_scheduled",
            Some(json!({ "error": error, "nextAttemptAt": run_at, "delayMs": delay.as_millis() as u64 })),
        ),
        Finish::Snooze {
            delay,
            condition,
            message,
            error,
            ..
        } => {
            let mut data = json!({ "condition": condition, "message": message, "nextCheckAt": run_at,
                                   "delayMs": delay.as_millis() as u64 });
            if let Some(e) = error {
                data["error"] = json!(e);
            }
            ("waiting", Some(data))
        }
        Finish::Fail { error, .. } => ("failed", Some(json!({ "error": error }))),
        Finish::Cancelled => ("cancelled", None),
        Finish::HandBack => ("handed_back", None),
    }
}

async fn event(conn: &mut PgConnection, id: Uuid, kind: &str, attempt: i32, data: Option<Value>) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO job_event (job_id, type, attempt, data) VALUES ($1, $2, $3, $4)")
        .bind(id)
        .bind(kind)
        .bind(attempt)
        .bind(data)
        .execute(conn)
        .await?;
    Ok(())
}

async fn notify(conn: &mut PgConnection, channel: &str, payload: &str) -> sqlx::Result<()> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(channel)
        .bind(payload)
        .execute(conn)
        .await?;
    Ok(())
}

async fn notify_pool(pool: &PgPool, channel: &str) -> sqlx::Result<()> {
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(channel)
        .execute(pool)
        .await?;
    Ok(())
}
