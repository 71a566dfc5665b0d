//! acr-attach's copy of ARM's quota buckets, in Postgres so every replica spends the same
//! tokens: the [`QuotaGate`] of the Azure client. The algorithm (GCRA with reserved slots) is
//! in the migration `20261202000004_arm_quota.sql`; docs/queue.md, "ARM quota", says why.
use futures::future::BoxFuture;
use sqlx::PgPool;
use std::time::Duration;
use uuid::Uuid;

use crate::azure::quota::{Bucket, Observed, QuotaGate, QuotaSettings};

pub struct PgQuota {
    pool: PgPool,
    settings: QuotaSettings,
}

impl PgQuota {
    pub fn new(pool: PgPool, settings: QuotaSettings) -> Self {
        PgQuota { pool, settings }
    }
}

/// Reservations nobody came back for (a job cancelled or failed while waiting): their slots are
/// long past, so they hold nothing back; the sweep (`db::sweep_every`) only keeps the table small.
pub const FORGET_STALE_TICKETS: &str = "DELETE FROM arm_quota_ticket WHERE at < now() - interval '1 hour'";

impl QuotaGate for PgQuota {
    fn take<'a>(&'a self, bucket: &'a Bucket, holder: Uuid) -> BoxFuture<'a, Result<Duration, String>> {
        Box::pin(async move {
            let limit = bucket.limit(&self.settings);
            let wait: f64 = sqlx::query_scalar("SELECT arm_quota_take($1, $2, $3, $4, $5)")
                .bind(&bucket.key)
                .bind(holder)
                .bind(limit.per_second)
                .bind(limit.burst)
                .bind(self.settings.inline_wait.as_secs_f64())
                .fetch_one(&self.pool)
                .await
                .map_err(|e| e.to_string())?;
            Ok(Duration::try_from_secs_f64(wait).unwrap_or_default())
        })
    }

    fn observe<'a>(&'a self, bucket: &'a Bucket, seen: Observed) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let limit = bucket.limit(&self.settings);
            let (retry_after, remaining) = match seen {
                Observed::Throttled(d) => (Some(d.as_secs_f64()), None),
                Observed::Remaining(n) => (None, Some(n)),
            };
            if retry_after.is_some() {
                metrics::counter!("acr_attach_arm_throttled_total", "kind" => bucket.kind.as_str()).increment(1);
            }
            sqlx::query("SELECT arm_quota_observe($1, $2, $3, $4, $5)")
                .bind(&bucket.key)
                .bind(limit.per_second)
                .bind(limit.burst)
                .bind(retry_after)
                .bind(remaining)
                .execute(&self.pool)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    }

    fn settings(&self) -> &QuotaSettings {
        &self.settings
    }
}
