//! The job kinds: attach and detach (directly or through an Entra group) and kubelet-identity
//! preparation, each a short list of idempotent steps that read or write Azure through
//! [`crate::azure`], save a checkpoint, or wait for eventual consistency.
use std::sync::Arc;
use std::time::Duration;

use crate::attachments::AttachmentStore;
use crate::azure::AzureClient;
use crate::queue::{Handlers, NewJob, RetryPolicy};

mod attach;
mod detach;
mod failures;
mod grant;
mod group_attach;
mod group_detach;
mod group_guard;
mod kubelet_identity;
mod membership;
mod resolve;
pub mod waits;

pub use crate::domain::{KubeletIdentityArgs, PairArgs, RegistryRef};
pub use attach::Attach;
pub use detach::Detach;
pub use kubelet_identity::KubeletIdentity;

pub const ATTACH: &str = "attach";
pub const DETACH: &str = "detach";
pub const KUBELET_IDENTITY: &str = "kubelet-identity";

/// Budgets and limits of the Azure job kinds (from the service configuration).
#[derive(Debug, Clone)]
pub struct OpsSettings {
    /// How long `PrincipalNotFound` is treated as replication delay before the job fails.
    pub principal_budget: Duration,
    /// How long `AuthorizationFailed` is retried (the caller's own RBAC may be propagating).
    pub authorization_budget: Duration,
    /// How long to wait for a new role assignment to become readable.
    pub readable_budget: Duration,
    /// How long to wait for a cluster that is still being created.
    pub provisioning_budget: Duration,
    /// How long a new identity may stay unknown to Microsoft Graph (404 on membership calls).
    pub identity_replication_budget: Duration,
    /// How long a new membership may stay invisible to Graph's `checkMemberGroups`.
    pub membership_visibility_budget: Duration,
    /// How long an attach through a group waits for ARM's `assignedTo()` to show the grant.
    pub group_propagation_budget: Duration,
    /// Each job fails if it is not done by then (transient errors retry until it).
    pub job_deadline: Duration,
    pub max_attempts: i32,
    /// Back-off of transient errors (5xx, 429 without Retry-After, network): first delay and cap.
    pub retry_base: Duration,
    pub retry_cap: Duration,
}

impl Default for OpsSettings {
    fn default() -> Self {
        OpsSettings {
            principal_budget: Duration::from_secs(10 * 60),
            authorization_budget: Duration::from_secs(2 * 60),
            readable_budget: Duration::from_secs(5 * 60),
            provisioning_budget: Duration::from_secs(60 * 60),
            identity_replication_budget: Duration::from_secs(15 * 60),
            membership_visibility_budget: Duration::from_secs(30 * 60),
            group_propagation_budget: Duration::from_secs(6 * 3600),
            job_deadline: Duration::from_secs(2 * 3600),
            max_attempts: 50,
            retry_base: Duration::from_secs(1),
            retry_cap: Duration::from_secs(60),
        }
    }
}

impl OpsSettings {
    /// Transient errors back off exponentially with jitter, honouring Retry-After.
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            base: self.retry_base,
            cap: self.retry_cap,
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
    pub settings: OpsSettings,
}

/// The production job kinds.
pub fn handlers(ops: Arc<Ops>) -> Handlers {
    Handlers::new()
        .job(Attach(ops.clone()))
        .job(Detach(ops.clone()))
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
