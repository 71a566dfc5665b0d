//! The audit trail: who asked for what, on which resources, when, what the policy decided (and
//! by which rule), and the job that resulted. Every mutating request is recorded, allowed or
//! denied. The table is append-only, enforced by the database (see the migration).
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

/// One record to write.
#[derive(Debug, Clone)]
pub struct AuditEntry<'a> {
    pub request_id: Option<&'a str>,
    /// `entra:<oid>`, `key:<name>`, `anonymous`.
    pub caller: &'a str,
    pub caller_info: Value,
    pub action: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub resources: Value,
    pub allowed: bool,
    pub rule: Option<&'a str>,
    pub reason: &'a str,
    pub status: u16,
    pub job_id: Option<Uuid>,
}

type PgQueryAs<'q, O> = sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>;

impl AuditEntry<'_> {
    /// Binds the entry's fields up to `reason`, in the table's column order (`request_id`,
    /// `caller`, `caller_info`, `action`, `method`, `path`, `resources`, `decision`, `rule`,
    /// `reason`); `status` and `job_id` are the statement's to give.
    pub fn bind<'q, O>(&'q self, q: PgQueryAs<'q, O>) -> PgQueryAs<'q, O> {
        q.bind(self.request_id)
            .bind(self.caller)
            .bind(&self.caller_info)
            .bind(self.action)
            .bind(self.method)
            .bind(self.path)
            .bind(&self.resources)
            .bind(if self.allowed { "allowed" } else { "denied" })
            .bind(self.rule)
            .bind(self.reason)
    }
}

/// A record as auditors read it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditRecord {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub request_id: Option<String>,
    /// `entra:<object id>`, `key:<name>` or `anonymous`.
    pub caller: String,
    /// Kind, client application id, tenant and app roles of the caller.
    #[schema(value_type = Object)]
    pub caller_info: Value,
    /// attach, detach, prepareKubeletIdentity, cancel.
    pub action: String,
    pub method: String,
    pub path: String,
    /// The cluster, registry, group, identity or job the request named.
    #[schema(value_type = Object)]
    pub resources: Value,
    /// `allowed` or `denied`.
    pub decision: String,
    /// The policy rule that allowed the request.
    pub rule: Option<String>,
    pub reason: String,
    /// The HTTP status answered.
    pub status: i16,
    pub job_id: Option<Uuid>,
}

/// Filters of `GET /v1/audit`.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub caller: Option<String>,
    pub action: Option<String>,
    pub decision: Option<String>,
    pub job_id: Option<Uuid>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Records older than this id (the `nextLink` cursor).
    pub before_id: Option<i64>,
}

#[derive(Clone)]
pub struct AuditStore {
    pool: PgPool,
}

impl AuditStore {
    pub fn new(pool: PgPool) -> Self {
        AuditStore { pool }
    }

    /// Writes `entry` with `executor` (a transaction, so a record and the job it describes
    /// are written together, or the pool).
    pub async fn record<'e>(executor: impl PgExecutor<'e>, entry: &AuditEntry<'_>) -> Result<(), sqlx::Error> {
        let _id: (i64,) = entry
            .bind(sqlx::query_as(
                "INSERT INTO audit_record (request_id, caller, caller_info, action, method, path, resources, decision, \
                 rule, reason, status, job_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id",
            ))
            .bind(entry.status as i16)
            .bind(entry.job_id)
            .fetch_one(executor)
            .await?;
        Ok(())
    }

    /// Records outside a request's transaction (refusals).
    pub async fn record_now(&self, entry: &AuditEntry<'_>) -> Result<(), sqlx::Error> {
        Self::record(&self.pool, entry).await
    }

    /// Newest first; `limit` records.
    pub async fn list(&self, f: &AuditFilter, limit: i64) -> Result<Vec<AuditRecord>, sqlx::Error> {
        sqlx::query_as(
            "SELECT id, at, request_id, caller, caller_info, action, method, path, resources, decision, rule, reason, \
                    status, job_id \
             FROM audit_record \
             WHERE ($1::text IS NULL OR caller = $1) \
               AND ($2::text IS NULL OR action = $2) \
               AND ($3::text IS NULL OR decision = $3) \
               AND ($4::uuid IS NULL OR job_id = $4) \
               AND ($5::timestamptz IS NULL OR at >= $5) \
               AND ($6::timestamptz IS NULL OR at < $6) \
               AND ($7::bigint IS NULL OR id < $7) \
             ORDER BY id DESC LIMIT $8",
        )
        .bind(&f.caller)
        .bind(&f.action)
        .bind(&f.decision)
        .bind(f.job_id)
        .bind(f.since)
        .bind(f.until)
        .bind(f.before_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
    }
}
