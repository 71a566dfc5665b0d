//! What the drift sweep (the `verify` job) reads and writes of the attachment records.
//!
//! Every write is conditional on the row still being as the sweep read it (`updated_at`): an
//! attach or detach that recorded while the sweep was reading Azure wins, and the pair is
//! verified again by the next sweep. A plain confirmation does not move `updated_at`, so it
//! never makes a concurrent writer's condition fail.
use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use super::AttachmentStore;
use crate::audit::{AuditEntry, AuditStore};
use crate::queue::{Enqueued, JobStore, NewJob};

/// Who asks for the attach jobs `--repair-drift` enqueues (job requester and audit caller).
pub const REPAIRER: &str = "service:drift-repair";

/// An attached or drifted pair, as the sweep read it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Seen {
    pub cluster_key: String,
    pub registry_key: String,
    pub cluster_id: String,
    pub registry_id: String,
    pub state: String,
    pub principal_id: Option<Uuid>,
    pub role_definition_id: Option<String>,
    pub assignment_id: Option<String>,
    pub via: String,
    pub drift_reason: Option<String>,
    pub repair_job_id: Option<Uuid>,
    pub updated_at: DateTime<Utc>,
}

impl Seen {
    /// The Entra group the pair is attached through, if any (`via = group:<id>`).
    pub fn group(&self) -> Option<Uuid> {
        self.via.strip_prefix("group:").and_then(|g| Uuid::parse_str(g).ok())
    }
}

/// A drift to record.
pub struct Drift<'a> {
    pub reason: &'a str,
    pub job_id: Uuid,
}

impl AttachmentStore {
    /// Every pair the sweep verifies: attached, or drifted (which may have been fixed), by
    /// registry so the sweep reads each registry's grants once.
    pub async fn to_verify(&self) -> sqlx::Result<Vec<Seen>> {
        sqlx::query_as(
            "SELECT cluster_key, registry_key, cluster_id, registry_id, state, principal_id, role_definition_id, \
               assignment_id, via, drift_reason, repair_job_id, updated_at \
             FROM attachment WHERE state IN ('attached', 'drifted') ORDER BY registry_key, cluster_key",
        )
        .fetch_all(&self.pool)
        .await
    }

    /// Azure shows the attachment: `attached` (again), verified now. `assignment_id`: the
    /// grant that holds it (another one than recorded when someone re-granted by hand).
    /// False when the row changed since it was read.
    pub async fn confirm(&self, seen: &Seen, assignment_id: &str, job_id: Uuid) -> sqlx::Result<bool> {
        let done = sqlx::query(
            "UPDATE attachment SET state = 'attached', drift_reason = NULL, drifted_at = NULL, verified_at = now(), \
               assignment_id = $3, last_job_id = $4, \
               updated_at = CASE WHEN state = 'drifted' THEN now() ELSE updated_at END \
             WHERE cluster_key = $1 AND registry_key = $2 AND updated_at = $5 AND state IN ('attached', 'drifted')",
        )
        .bind(&seen.cluster_key)
        .bind(&seen.registry_key)
        .bind(assignment_id)
        .bind(job_id)
        .bind(seen.updated_at)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Azure no longer shows the attachment. A new drift (or a new reason) restarts
    /// `drifted_at` and forgets the previous repair job; the same drift seen again keeps both.
    /// `verified_at` stays: it is when Azure last confirmed the attachment. False when the row
    /// changed since it was read.
    pub async fn mark_drifted(&self, seen: &Seen, drift: &Drift<'_>) -> sqlx::Result<bool> {
        let done = sqlx::query(
            "UPDATE attachment SET state = 'drifted', drift_reason = $3, last_job_id = $4, \
               drifted_at = CASE WHEN state = 'drifted' AND drift_reason = $3 THEN drifted_at ELSE now() END, \
               repair_job_id = CASE WHEN state = 'drifted' AND drift_reason = $3 THEN repair_job_id END, \
               updated_at = CASE WHEN state = 'drifted' AND drift_reason = $3 THEN updated_at ELSE now() END \
             WHERE cluster_key = $1 AND registry_key = $2 AND updated_at = $5 AND state IN ('attached', 'drifted')",
        )
        .bind(&seen.cluster_key)
        .bind(&seen.registry_key)
        .bind(drift.reason)
        .bind(drift.job_id)
        .bind(seen.updated_at)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Enqueue `job` (an attach) to repair a drifted pair, once per drift: in one transaction
    /// the pair is checked to be still drifted without a repair, the job is enqueued (with
    /// the queue's usual dedup), owned by [`REPAIRER`], audited like an API request, and
    /// remembered on the pair. `None` when the pair no longer needs it.
    pub async fn enqueue_repair(
        &self,
        seen: &Seen,
        job: &NewJob,
        reason: &str,
        sweep_job: Uuid,
    ) -> sqlx::Result<Option<Enqueued>> {
        let mut tx = self.pool.begin().await?;
        let still: Option<i32> = sqlx::query_scalar(
            "SELECT 1 FROM attachment WHERE cluster_key = $1 AND registry_key = $2 AND state = 'drifted' \
               AND repair_job_id IS NULL FOR UPDATE",
        )
        .bind(&seen.cluster_key)
        .bind(&seen.registry_key)
        .fetch_optional(&mut *tx)
        .await?;
        if still.is_none() {
            return Ok(None);
        }
        let jobs = JobStore::new(self.pool.clone());
        let enq = jobs.enqueue(&mut tx, job).await?;
        jobs.add_requester(&mut tx, enq.job.id, REPAIRER).await?;
        let resources = json!({ "cluster": seen.cluster_id, "registry": seen.registry_id, "via": seen.via,
            "job": enq.job.id, "sweepJob": sweep_job, "args": job.args });
        let why = format!("drift repair (ACR_ATTACH_REPAIR_DRIFT) of a pair that drifted: {reason}");
        AuditStore::record(
            &mut *tx,
            &AuditEntry {
                request_id: None,
                caller: REPAIRER,
                caller_info: json!({ "kind": "service", "sweepJob": sweep_job }),
                action: "attach",
                method: "JOB",
                path: &format!("/v1/jobs/{sweep_job}"),
                resources,
                allowed: true,
                rule: Some("repairDrift"),
                reason: &why,
                status: 202,
                job_id: Some(enq.job.id),
            },
        )
        .await?;
        sqlx::query("UPDATE attachment SET repair_job_id = $3 WHERE cluster_key = $1 AND registry_key = $2")
            .bind(&seen.cluster_key)
            .bind(&seen.registry_key)
            .bind(enq.job.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(enq))
    }
}
