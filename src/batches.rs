//! What batches leave in the database (`batch`, `batch_item`; see the migration): the request,
//! its caller, and one row per item that points at the item's attach or detach job once it is
//! enqueued. An item's state is its job's (the job row is the truth); only items that never got
//! a job (pending, denied, failed, cancelled) carry their own.
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// One row of `batch`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Batch {
    pub id: Uuid,
    pub seq: i64,
    pub action: String,
    pub request: Value,
    pub requested_by: String,
    pub requester: Value,
    pub request_id: Option<String>,
    pub expand_job_id: Uuid,
    pub cancel_requested_at: Option<DateTime<Utc>>,
    pub selected_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// A batch to create.
pub struct NewBatch<'a> {
    pub id: Uuid,
    pub action: &'a str,
    pub request: &'a Value,
    pub requested_by: &'a str,
    pub requester: &'a Value,
    pub request_id: Option<&'a str>,
    pub expand_job_id: Uuid,
}

/// An item as the expansion reads it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PendingItem {
    pub seq: i32,
    pub cluster_id: String,
    pub registry: String,
    pub grantee: Option<Value>,
}

/// An item as the API shows it: its state is its job's when it has one.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ItemRow {
    pub seq: i32,
    pub cluster_id: String,
    pub registry: String,
    pub job_id: Option<Uuid>,
    pub created_job: Option<bool>,
    /// pending, queued, running, waiting, retrying, succeeded, failed, cancelled, denied, or
    /// expired (its job was deleted by retention).
    pub state: String,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
}

/// The items of a batch by state, and when the last of its jobs finished.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    pub by_state: BTreeMap<String, i64>,
    pub last_finished_at: Option<DateTime<Utc>>,
}

/// The state an item shows: its job's, or its own when it has no job (SQL, for `concat!`).
macro_rules! item_state {
    () => {
        "CASE WHEN i.state = 'enqueued' THEN coalesce(j.state::text, 'expired') ELSE i.state END"
    };
}

#[derive(Clone)]
pub struct BatchStore {
    pool: PgPool,
}

impl BatchStore {
    pub fn new(pool: PgPool) -> Self {
        BatchStore { pool }
    }

    /// The batch and its listed items (`(cluster id, registry)`, in request order), in the
    /// caller's transaction (the one that enqueues its expansion).
    pub async fn create(conn: &mut PgConnection, b: &NewBatch<'_>, items: &[(String, String)]) -> sqlx::Result<()> {
        sqlx::query(
            "INSERT INTO batch (id, action, request, requested_by, requester, request_id, expand_job_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(b.id)
        .bind(b.action)
        .bind(b.request)
        .bind(b.requested_by)
        .bind(b.requester)
        .bind(b.request_id)
        .bind(b.expand_job_id)
        .execute(&mut *conn)
        .await?;
        insert_items(conn, b.id, items.iter().map(|(c, r)| (c.as_str(), r.as_str(), None))).await
    }

    pub async fn get(&self, id: Uuid) -> sqlx::Result<Option<Batch>> {
        sqlx::query_as("SELECT * FROM batch WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
    }

    /// The selection's clusters as items (each with the kubelet identity Resource Graph showed,
    /// if any), once: a repeated expansion keeps the first selection.
    pub async fn add_selection(&self, id: Uuid, items: &[(String, String, Option<Value>)]) -> sqlx::Result<()> {
        let mut tx = self.pool.begin().await?;
        let first: Option<(Uuid,)> =
            sqlx::query_as("UPDATE batch SET selected_at = now() WHERE id = $1 AND selected_at IS NULL RETURNING id")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        if first.is_some() {
            insert_items(
                &mut tx,
                id,
                items.iter().map(|(c, r, g)| (c.as_str(), r.as_str(), g.as_ref())),
            )
            .await?;
        }
        tx.commit().await
    }

    /// Up to `limit` items not enqueued yet, in order.
    pub async fn pending(&self, id: Uuid, limit: i64) -> sqlx::Result<Vec<PendingItem>> {
        sqlx::query_as(
            "SELECT seq, cluster_id, registry, grantee FROM batch_item \
             WHERE batch_id = $1 AND state = 'pending' ORDER BY seq LIMIT $2",
        )
        .bind(id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
    }

    /// Locks the batch against a concurrent cancel for the rest of the transaction; whether it
    /// was cancelled.
    pub async fn lock_cancelled(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<bool> {
        let cancelled: Option<bool> =
            sqlx::query_scalar("SELECT cancel_requested_at IS NOT NULL FROM batch WHERE id = $1 FOR UPDATE")
                .bind(id)
                .fetch_optional(conn)
                .await?;
        Ok(cancelled.unwrap_or(true))
    }

    /// The item now has its job (`created`: this batch made it, rather than reusing one).
    pub async fn enqueued(conn: &mut PgConnection, id: Uuid, seq: i32, job: Uuid, created: bool) -> sqlx::Result<()> {
        sqlx::query(
            "UPDATE batch_item SET state = 'enqueued', job_id = $3, created_job = $4 \
             WHERE batch_id = $1 AND seq = $2 AND state = 'pending'",
        )
        .bind(id)
        .bind(seq)
        .bind(job)
        .bind(created)
        .execute(conn)
        .await
        .map(|_| ())
    }

    /// Items that will never get a job (`denied`, `failed`, `cancelled`), with why.
    pub async fn settle(
        conn: &mut PgConnection,
        id: Uuid,
        seqs: Option<&[i32]>,
        state: &str,
        error: Option<&Value>,
    ) -> sqlx::Result<u64> {
        sqlx::query(
            "UPDATE batch_item SET state = $3, error = $4 \
             WHERE batch_id = $1 AND state = 'pending' AND ($2::int[] IS NULL OR seq = ANY($2))",
        )
        .bind(id)
        .bind(seqs)
        .bind(state)
        .bind(error)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    }

    /// Newest first: the batches `requested_by` asked for (every batch when `None`), before
    /// `before_seq` (the cursor of a previous page), at most `limit`.
    pub async fn list(
        &self,
        requested_by: Option<&str>,
        before_seq: Option<i64>,
        limit: i64,
    ) -> sqlx::Result<Vec<Batch>> {
        sqlx::query_as(
            "SELECT * FROM batch \
             WHERE ($1::text IS NULL OR requested_by = $1) AND ($2::bigint IS NULL OR seq < $2) \
             ORDER BY seq DESC LIMIT $3",
        )
        .bind(requested_by)
        .bind(before_seq)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
    }

    /// The items by the state they show, and when the last of their jobs finished.
    pub async fn tally(&self, id: Uuid) -> sqlx::Result<Tally> {
        Ok(self.tallies(&[id]).await?.remove(&id).unwrap_or_default())
    }

    /// [`Self::tally`] of several batches in one query (a batch without items has none).
    pub async fn tallies(&self, ids: &[Uuid]) -> sqlx::Result<HashMap<Uuid, Tally>> {
        let rows: Vec<(Uuid, String, i64, Option<DateTime<Utc>>)> = sqlx::query_as(concat!(
            "SELECT i.batch_id, ",
            item_state!(),
            " AS s, count(*), max(j.finalized_at) \
             FROM batch_item i LEFT JOIN job j ON j.id = i.job_id WHERE i.batch_id = ANY($1) GROUP BY 1, 2"
        ))
        .bind(ids)
        .fetch_all(&self.pool)
        .await?;
        let mut tallies: HashMap<Uuid, Tally> = HashMap::new();
        for (id, state, n, finished) in rows {
            let t = tallies.entry(id).or_default();
            t.by_state.insert(state, n);
            t.last_finished_at = t.last_finished_at.max(finished);
        }
        Ok(tallies)
    }

    /// A page of items in order, after `after_seq`.
    pub async fn items(&self, id: Uuid, after_seq: Option<i64>, limit: i64) -> sqlx::Result<Vec<ItemRow>> {
        sqlx::query_as(concat!(
            "SELECT i.seq, i.cluster_id, i.registry, i.job_id, i.created_job, ",
            item_state!(),
            " AS state, \
               coalesce(CASE WHEN j.state IN ('succeeded', 'cancelled') THEN NULL ELSE j.last_error->>'code' END, \
                        i.error->>'code') AS error_code, \
               coalesce(CASE WHEN j.state IN ('succeeded', 'cancelled') THEN NULL ELSE j.last_error->>'message' END, \
                        i.error->>'message') AS error_message \
             FROM batch_item i LEFT JOIN job j ON j.id = i.job_id \
             WHERE i.batch_id = $1 AND ($2::bigint IS NULL OR i.seq > $2) ORDER BY i.seq LIMIT $3"
        ))
        .bind(id)
        .bind(after_seq)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
    }

    /// Marks the batch cancelled (under its row lock, so an expansion in progress enqueues
    /// nothing more), settles its pending items as cancelled, and returns the unfinished jobs
    /// it created itself (not those it reused: they belong to other requests too). `None`: no
    /// such batch.
    pub async fn request_cancel(&self, id: Uuid) -> sqlx::Result<Option<Vec<Uuid>>> {
        let mut tx = self.pool.begin().await?;
        let found: Option<(Uuid,)> = sqlx::query_as(
            "UPDATE batch SET cancel_requested_at = coalesce(cancel_requested_at, now()) WHERE id = $1 RETURNING id",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        if found.is_none() {
            return Ok(None);
        }
        let cancelled = serde_json::json!({ "code": "BatchCancelled", "message": "the batch was cancelled before this item was enqueued" });
        Self::settle(&mut tx, id, None, "cancelled", Some(&cancelled)).await?;
        let jobs: Vec<Uuid> = sqlx::query_scalar(
            "SELECT i.job_id FROM batch_item i JOIN job j ON j.id = i.job_id \
             WHERE i.batch_id = $1 AND i.created_job AND j.state IN ('queued', 'running', 'waiting', 'retrying') \
             ORDER BY i.seq",
        )
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(jobs))
    }

    /// Deletes batches past their retention: as jobs, counted from the batch's creation
    /// (`keep_failed` when an item failed or was denied, else `keep_done`), and never while its
    /// expansion or one of its jobs is unfinished. Returns how many were deleted.
    pub async fn prune(&self, keep_done: Duration, keep_failed: Duration) -> sqlx::Result<u64> {
        sqlx::query(
            "DELETE FROM batch b WHERE b.created_at < now() - make_interval(secs => $1) \
               AND NOT EXISTS (SELECT 1 FROM job j WHERE j.id = b.expand_job_id AND j.finalized_at IS NULL) \
               AND NOT EXISTS (SELECT 1 FROM batch_item i JOIN job j ON j.id = i.job_id \
                               WHERE i.batch_id = b.id AND j.finalized_at IS NULL) \
               AND (b.created_at < now() - make_interval(secs => $2) OR NOT EXISTS ( \
                    SELECT 1 FROM batch_item i LEFT JOIN job j ON j.id = i.job_id WHERE i.batch_id = b.id \
                      AND (i.state IN ('denied', 'failed') OR j.state = 'failed')))",
        )
        .bind(keep_done.min(keep_failed).as_secs_f64())
        .bind(keep_failed.as_secs_f64())
        .execute(&self.pool)
        .await
        .map(|r| r.rows_affected())
    }

    /// [`Self::prune`] every `interval` until `stop` (every replica; the deletes are idempotent).
    pub async fn prune_every(
        self,
        interval: Duration,
        keep_done: Duration,
        keep_failed: Duration,
        stop: CancellationToken,
    ) {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(interval) => {}
            }
            match self.prune(keep_done, keep_failed).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(batches = n, "batches past their retention deleted"),
                Err(e) => tracing::warn!(error = %e, "pruning batches failed; trying again"),
            }
        }
    }
}

/// Items numbered from 1 after the batch's last one, in one statement.
async fn insert_items<'a>(
    conn: &mut PgConnection,
    id: Uuid,
    items: impl Iterator<Item = (&'a str, &'a str, Option<&'a Value>)>,
) -> sqlx::Result<()> {
    let (mut clusters, mut registries, mut grantees) = (Vec::new(), Vec::new(), Vec::new());
    for (c, r, g) in items {
        clusters.push(c.to_string());
        registries.push(r.to_string());
        grantees.push(g.cloned());
    }
    if clusters.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO batch_item (batch_id, seq, cluster_id, registry, grantee) \
         SELECT $1, (SELECT coalesce(max(seq), 0) FROM batch_item WHERE batch_id = $1) + t.n, t.c, t.r, t.g \
         FROM unnest($2::text[], $3::text[], $4::jsonb[]) WITH ORDINALITY AS t(c, r, g, n)",
    )
    .bind(id)
    .bind(&clusters)
    .bind(&registries)
    .bind(&grantees)
    .execute(conn)
    .await
    .map(|_| ())
}
