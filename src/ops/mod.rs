//! The job kinds: attach and detach (directly or through an Entra group) and kubelet-identity
//! preparation, each a short list of idempotent steps that read or write Azure through
//! [`crate::azure`], save a checkpoint, or wait for eventual consistency.
use std::sync::Arc;
use std::time::Duration;

use crate::duration::parse_duration;

use crate::attachments::AttachmentStore;
use crate::azure::AzureClient;
use crate::queue::{Handlers, NewJob, RetryPolicy};

mod attach;
pub mod batch;
pub mod check;
mod detach;
pub mod drift;
mod failures;
mod grant;
mod group_attach;
mod group_detach;
pub(crate) mod group_guard;
pub mod import;
mod kubelet_identity;
mod membership;
mod resolve;
pub mod waits;

pub use crate::domain::{CheckArgs, ImportArgs, KubeletIdentityArgs, PairArgs, RegistryRef};
pub use attach::Attach;
pub use batch::{BATCH_EXPAND, BatchExpand, BatchExpandArgs, PairAuthorizer};
pub use check::Check;
pub use detach::Detach;
pub use drift::{DriftSettings, Verify, VerifyArgs};
pub use import::Import;
pub use kubelet_identity::KubeletIdentity;

pub const ATTACH: &str = "attach";
pub const DETACH: &str = "detach";
pub const KUBELET_IDENTITY: &str = "kubelet-identity";
pub const CHECK: &str = "check";
pub const IMPORT: &str = "import";
pub const VERIFY: &str = "verify";

/// Budgets and limits of the Azure job kinds: how long each kind of Azure delay is waited out
/// (flags and environment variables of `acr-attach serve`; the service configuration uses this
/// type as it is).
#[derive(Debug, Clone, clap::Args)]
pub struct OpsSettings {
    /// `PrincipalNotFound` is treated as directory replication for this long, then the job fails.
    #[arg(long, env = "ACR_ATTACH_PRINCIPAL_BUDGET", value_parser = parse_duration, default_value = "10m")]
    pub principal_budget: Duration,
    /// `AuthorizationFailed` is retried this long (acr-attach's own grant may be propagating).
    #[arg(long, env = "ACR_ATTACH_AUTHORIZATION_BUDGET", value_parser = parse_duration, default_value = "2m")]
    pub authorization_budget: Duration,
    /// A new role assignment must be readable within this.
    #[arg(long, env = "ACR_ATTACH_READABLE_BUDGET", value_parser = parse_duration, default_value = "5m")]
    pub readable_budget: Duration,
    /// A cluster still being created is waited for this long.
    #[arg(long, env = "ACR_ATTACH_PROVISIONING_BUDGET", value_parser = parse_duration, default_value = "60m")]
    pub provisioning_budget: Duration,
    /// A new identity unknown to Microsoft Graph (404 on membership calls) is waited for this long.
    #[arg(long, env = "ACR_ATTACH_IDENTITY_REPLICATION_BUDGET", value_parser = parse_duration, default_value = "15m")]
    pub identity_replication_budget: Duration,
    /// A group membership must be visible to Graph's `checkMemberGroups` within this.
    #[arg(long, env = "ACR_ATTACH_MEMBERSHIP_VISIBILITY_BUDGET", value_parser = parse_duration, default_value = "30m")]
    pub membership_visibility_budget: Duration,
    /// Attach through a group waits this long for ARM's `assignedTo()` to show the group's grant
    /// for the kubelet identity (Entra group changes can take hours).
    #[arg(long, env = "ACR_ATTACH_GROUP_PROPAGATION_BUDGET", value_parser = parse_duration, default_value = "6h")]
    pub group_propagation_budget: Duration,
    /// An image import (ACR's `importImage` operation) is followed this long.
    #[arg(long, env = "ACR_ATTACH_IMPORT_BUDGET", value_parser = parse_duration, default_value = "30m")]
    pub import_budget: Duration,
    /// Key sealing the source credentials an import holds until it uses them: base64 of 32
    /// random bytes (`openssl rand -base64 32`), the same on every replica. Without it, imports
    /// with credentials are refused. Under `--simulator` one is made at start.
    #[arg(long, env = "ACR_ATTACH_SECRETS_KEY", value_parser = crate::secrets::parse_key, hide_env_values = true)]
    pub secrets_key: Option<crate::secrets::SecretKey>,
    /// A check's in-cluster probe (AKS run-command pulling an image) is given this long.
    #[arg(long, env = "ACR_ATTACH_PROBE_BUDGET", value_parser = parse_duration, default_value = "5m")]
    pub probe_budget: Duration,
    /// Every attach/detach job fails if not done within this (transient errors retry until then);
    /// jobs that wait for Entra propagation get their waiting budgets on top.
    #[arg(long, env = "ACR_ATTACH_JOB_DEADLINE", value_parser = parse_duration, default_value = "2h")]
    pub job_deadline: Duration,
    /// Attempts (failures) a job may consume.
    #[arg(long = "job-max-attempts", env = "ACR_ATTACH_JOB_MAX_ATTEMPTS", default_value_t = 50,
        value_parser = clap::value_parser!(i32).range(1..))]
    pub max_attempts: i32,
    /// First back-off after a transient Azure error (5xx, throttling without Retry-After, network).
    #[arg(long, env = "ACR_ATTACH_RETRY_BASE", value_parser = parse_duration, default_value = "1s")]
    pub retry_base: Duration,
    /// Longest back-off between two attempts.
    #[arg(long, env = "ACR_ATTACH_RETRY_CAP", value_parser = parse_duration, default_value = "60s")]
    pub retry_cap: Duration,
    /// The drift sweep (`verify` jobs) and automatic repair.
    #[command(flatten)]
    pub drift: DriftSettings,
    /// ARM's request quota, budgeted before each call (shared by the replicas).
    #[command(flatten)]
    pub quota: crate::azure::quota::QuotaSettings,
}

impl OpsSettings {
    /// Transient errors back off exponentially with jitter, honouring Retry-After.
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            base: self.retry_base,
            cap: self.retry_cap.max(self.retry_base),
            max_retry_after: Duration::from_secs(600),
        }
    }

    /// An attach job. Attaching through a group may wait for hours: its deadline leaves room
    /// for the replication and propagation budgets on top of the usual one.
    pub fn attach_job(&self, args: &PairArgs) -> NewJob {
        let waits = if args.group.is_some() {
            self.identity_replication_budget + self.group_propagation_budget
        } else {
            Duration::ZERO
        };
        self.bounded(NewJob::of::<Attach>(args), args.target_key(), waits)
    }

    pub fn detach_job(&self, args: &PairArgs) -> NewJob {
        self.bounded(NewJob::of::<Detach>(args), args.target_key(), Duration::ZERO)
    }

    /// A check (ordered after the pair's attach and detach jobs); a probe adds its budget.
    pub fn check_job(&self, args: &CheckArgs) -> NewJob {
        let waits = if args.probe { self.probe_budget } else { Duration::ZERO };
        self.bounded(NewJob::of::<Check>(args), args.target_key(), waits)
    }

    /// A batch's expansion (its own target: one per batch). Its deadline leaves room for a
    /// cluster still being created (one cluster, many registries waits for its identity).
    pub fn batch_expand_job(&self, args: &BatchExpandArgs) -> NewJob {
        self.bounded(
            NewJob::of::<BatchExpand>(args),
            args.target_key(),
            self.provisioning_budget,
        )
    }

    /// A drift sweep (sweeps share one target: one runs at a time).
    pub fn verify_job(&self, args: &VerifyArgs) -> NewJob {
        self.bounded(NewJob::of::<Verify>(args), drift::TARGET.into(), Duration::ZERO)
    }

    /// An import (its deadline covers the import budget).
    pub fn import_job(&self, args: &ImportArgs) -> NewJob {
        self.bounded(NewJob::of::<Import>(args), args.target_key(), self.import_budget)
    }

    /// A kubelet-identity job (its deadline covers the replication and visibility budgets).
    pub fn kubelet_identity_job(&self, args: &KubeletIdentityArgs) -> NewJob {
        let waits = self.identity_replication_budget + self.membership_visibility_budget;
        self.bounded(NewJob::of::<KubeletIdentity>(args), args.target_key(), waits)
    }

    /// Every job of a target runs in order; its deadline is the usual one plus the budgets of
    /// the waits it may make.
    fn bounded(&self, job: NewJob, target: String, waits: Duration) -> NewJob {
        job.with_target(target)
            .with_deadline(self.job_deadline + waits)
            .with_max_attempts(self.max_attempts)
    }
}

/// What the job kinds share.
pub struct Ops {
    pub azure: AzureClient,
    pub attachments: AttachmentStore,
    pub imports: crate::imports::ImportStore,
    pub settings: OpsSettings,
}

/// The production job kinds. `policy` authorises a batch's items when it is expanded (the
/// API's policy: the same decisions as for single requests).
pub fn handlers(ops: Arc<Ops>, policy: Arc<dyn PairAuthorizer>, pool: &sqlx::PgPool) -> Handlers {
    Handlers::new()
        .job(Attach(ops.clone()))
        .job(Detach(ops.clone()))
        .job(Check(ops.clone()))
        .job(Import(ops.clone()))
        .job(Verify(ops.clone()))
        .job(BatchExpand {
            ops: ops.clone(),
            batches: crate::batches::BatchStore::new(pool.clone()),
            jobs: crate::queue::JobStore::new(pool.clone()),
            policy,
        })
        .job(KubeletIdentity(ops))
}

/// Run one attempt's steps with a call context carrying the job's id as correlation id, then
/// put every Azure call it made into the timeline (also when the steps failed).
pub(crate) async fn with_calls(
    ctx: &crate::queue::JobContext,
    steps: impl AsyncFnOnce(&crate::azure::CallContext) -> Result<crate::queue::Outcome, crate::queue::JobError>,
) -> Result<crate::queue::Outcome, crate::queue::JobError> {
    let call = crate::azure::CallContext::new(ctx.id);
    let result = steps(&call).await;
    record_calls(ctx, &call).await;
    result
}

/// Every ARM/Graph call of the attempt goes into the job's timeline (with `x-ms-request-id`,
/// which Azure support asks for) and into the metrics.
pub(crate) async fn record_calls(ctx: &crate::queue::JobContext, call: &crate::azure::CallContext) {
    for c in call.take_records() {
        let status = c.status.map(|s| s.to_string()).unwrap_or_else(|| "none".into());
        metrics::counter!("acr_attach_azure_calls_total", "operation" => c.operation.clone(), "status" => status)
            .increment(1);
        metrics::histogram!("acr_attach_azure_call_duration_seconds", "operation" => c.operation.clone())
            .record(c.duration_ms as f64 / 1000.0);
        // ARM's own count of what is left (the last answer seen by this replica).
        for (header, value) in &c.ratelimit_remaining {
            if let Ok(left) = value.trim().parse::<f64>() {
                metrics::gauge!("acr_attach_arm_ratelimit_remaining", "header" => header.clone()).set(left);
            }
        }
        ctx.record(
            "azure_call",
            serde_json::json!({
                "operation": c.operation,
                "method": c.method,
                "path": c.path,
                "status": c.status,
                "errorCode": c.error_code,
                "requestId": c.request_id,
                "durationMs": c.duration_ms,
            }),
        )
        .await;
    }
}
