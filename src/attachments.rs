//! The attachments acr-attach knows: one row per cluster/registry pair with the last verified
//! state. Job handlers record; the API reads.
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

mod drift;
pub use drift::{Drift, REPAIRER, Seen};

#[derive(Debug, Clone, Serialize, sqlx::FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    #[serde(skip)]
    pub cluster_key: String,
    #[serde(skip)]
    pub registry_key: String,
    pub cluster_id: String,
    pub registry_id: String,
    /// `attached`, `detached`, or `drifted` (Azure no longer shows the attachment: see
    /// `driftReason`).
    pub state: String,
    /// The grantee: the kubelet identity (or the cluster's service principal).
    pub principal_id: Option<Uuid>,
    pub role_definition_id: Option<String>,
    pub role_name: Option<String>,
    pub assignment_id: Option<String>,
    /// `direct`, or `group:<object id>` for grants through an Entra group.
    pub via: String,
    /// Through a group: whether the attach added the kubelet identity to the group (a detach
    /// through the group removes only a membership acr-attach added).
    pub membership_added: Option<bool>,
    /// When Azure last confirmed this state.
    pub verified_at: DateTime<Utc>,
    /// The job that verified it.
    pub last_job_id: Uuid,
    pub updated_at: DateTime<Utc>,
    /// While `drifted`: `assignmentGone`, `kubeletIdentityChanged`, `clusterGone`,
    /// `registryGone`, `registryMoved` or `modeSwitched` (README "Drift").
    pub drift_reason: Option<String>,
    /// While `drifted`: when the drift (with this reason) was first seen.
    pub drifted_at: Option<DateTime<Utc>>,
    /// The attach job `--repair-drift` enqueued for the latest drift, if any.
    pub repair_job_id: Option<Uuid>,
}

/// A verified state to record.
pub struct Verified<'a> {
    pub cluster_id: &'a str,
    pub registry_id: &'a str,
    pub state: &'a str,
    pub principal_id: Option<Uuid>,
    pub role_definition_id: Option<&'a str>,
    pub role_name: Option<&'a str>,
    pub assignment_id: Option<&'a str>,
    pub via: &'a str,
    pub membership_added: Option<bool>,
    pub job_id: Uuid,
}

/// A group membership acr-attach added (see [`AttachmentStore::membership`]).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AddedMembership {
    /// The job kind that added it: `attach` or `kubelet-identity`.
    pub added_by: String,
    pub job_id: Uuid,
    pub added_at: DateTime<Utc>,
}

/// `via` of an attachment through a group.
pub fn via_group(group: Uuid) -> String {
    format!("group:{group}")
}

#[derive(Clone)]
pub struct AttachmentStore {
    pool: PgPool,
}

impl AttachmentStore {
    pub fn new(pool: PgPool) -> Self {
        AttachmentStore { pool }
    }

    pub async fn record(&self, v: &Verified<'_>) -> sqlx::Result<()> {
        sqlx::query(
            "INSERT INTO attachment (cluster_key, registry_key, cluster_id, registry_id, state, principal_id, \
               role_definition_id, role_name, assignment_id, via, membership_added, verified_at, last_job_id) \
             VALUES (lower($1), lower($2), $1, $2, $3, $4, $5, $6, $7, $8, $10, now(), $9) \
             ON CONFLICT (cluster_key, registry_key) DO UPDATE SET cluster_id = EXCLUDED.cluster_id, \
               registry_id = EXCLUDED.registry_id, state = EXCLUDED.state, \
               principal_id = coalesce(EXCLUDED.principal_id, attachment.principal_id), \
               role_definition_id = EXCLUDED.role_definition_id, role_name = EXCLUDED.role_name, \
               assignment_id = EXCLUDED.assignment_id, via = EXCLUDED.via, \
               membership_added = EXCLUDED.membership_added, verified_at = now(), \
               last_job_id = EXCLUDED.last_job_id, updated_at = now(), drift_reason = NULL, drifted_at = NULL",
        )
        .bind(v.cluster_id)
        .bind(v.registry_id)
        .bind(v.state)
        .bind(v.principal_id)
        .bind(v.role_definition_id)
        .bind(v.role_name)
        .bind(v.assignment_id)
        .bind(v.via)
        .bind(v.job_id)
        .bind(v.membership_added)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The direct grant an attach recorded for `principal` on `registry_id` within `within`:
    /// ARM may not read it back yet (read-after-write lag), so a detach or check that follows
    /// soon trusts the record over an empty answer. Returns the assignment id and when.
    pub async fn recent_direct_grant(
        &self,
        registry_id: &str,
        principal: Uuid,
        within: std::time::Duration,
    ) -> sqlx::Result<Option<(String, DateTime<Utc>)>> {
        sqlx::query_as(
            "SELECT assignment_id, verified_at FROM attachment \
             WHERE registry_key = lower($1) AND principal_id = $2 AND state = 'attached' AND via = 'direct' \
               AND assignment_id IS NOT NULL AND verified_at > now() - make_interval(secs => $3)",
        )
        .bind(registry_id)
        .bind(principal)
        .bind(within.as_secs_f64())
        .fetch_optional(&self.pool)
        .await
    }

    /// Remember that acr-attach added `member` to `group` (the first adder is kept).
    pub async fn record_membership(&self, group: Uuid, member: Uuid, added_by: &str, job_id: Uuid) -> sqlx::Result<()> {
        sqlx::query(
            "INSERT INTO group_membership (group_id, member_id, added_by, job_id) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (group_id, member_id) DO NOTHING",
        )
        .bind(group)
        .bind(member)
        .bind(added_by)
        .bind(job_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Whether (and by which job) acr-attach added `member` to `group`.
    pub async fn membership(&self, group: Uuid, member: Uuid) -> sqlx::Result<Option<AddedMembership>> {
        sqlx::query_as("SELECT added_by, job_id, added_at FROM group_membership WHERE group_id = $1 AND member_id = $2")
            .bind(group)
            .bind(member)
            .fetch_optional(&self.pool)
            .await
    }

    /// The membership was removed.
    pub async fn forget_membership(&self, group: Uuid, member: Uuid) -> sqlx::Result<()> {
        sqlx::query("DELETE FROM group_membership WHERE group_id = $1 AND member_id = $2")
            .bind(group)
            .bind(member)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Registries (ids) other than `registry_key` that `member` is attached to through `group`
    /// (drifted ones too: nobody detached them, and a repair needs the membership): the
    /// membership still serves them.
    pub async fn others_through_group(
        &self,
        group: Uuid,
        member: Uuid,
        cluster_key: &str,
        registry_key: &str,
    ) -> sqlx::Result<Vec<String>> {
        sqlx::query_scalar(
            "SELECT registry_id FROM attachment WHERE state IN ('attached', 'drifted') AND via = $1 \
               AND principal_id = $2 AND NOT (cluster_key = $3 AND registry_key = $4) ORDER BY registry_id",
        )
        .bind(via_group(group))
        .bind(member)
        .bind(cluster_key)
        .bind(registry_key)
        .fetch_all(&self.pool)
        .await
    }

    /// The principal recorded for a pair (used when the cluster no longer exists).
    pub async fn principal_of(&self, cluster_key: &str, registry_name: &str) -> sqlx::Result<Option<Uuid>> {
        sqlx::query_scalar(
            "SELECT principal_id FROM attachment WHERE cluster_key = $1 \
               AND split_part(registry_key, '/', 9) = lower($2) AND principal_id IS NOT NULL LIMIT 1",
        )
        .bind(cluster_key)
        .bind(registry_name)
        .fetch_optional(&self.pool)
        .await
        .map(Option::flatten)
    }

    /// Filter by cluster key and/or by registry (lower-cased id, or bare name).
    /// In key order (cluster, then registry), so pages are stable while attachments change;
    /// `after` is the last key of the previous page.
    pub async fn list(
        &self,
        cluster_key: Option<&str>,
        registry: Option<&str>,
        after: Option<&(String, String)>,
        limit: i64,
    ) -> sqlx::Result<Vec<Attachment>> {
        sqlx::query_as(
            "SELECT * FROM attachment \
             WHERE ($1::text IS NULL OR cluster_key = $1) \
               AND ($2::text IS NULL OR registry_key = $2 OR split_part(registry_key, '/', 9) = $2) \
               AND ($4::text IS NULL OR (cluster_key, registry_key) > ($4, $5)) \
             ORDER BY cluster_key, registry_key LIMIT $3",
        )
        .bind(cluster_key)
        .bind(registry)
        .bind(limit)
        .bind(after.map(|a| a.0.as_str()))
        .bind(after.map(|a| a.1.as_str()))
        .fetch_all(&self.pool)
        .await
    }
}
