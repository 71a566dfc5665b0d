//! `verify`: the drift sweep. Attachments made once do not stay true by themselves: someone
//! deletes the role assignment by hand, the cluster is re-created with another kubelet
//! identity, the registry is deleted, moved or switched to ABAC mode. The sweep re-checks every
//! pair acr-attach attached (and every one it found drifted, which may have been fixed) and
//! records `attached` or `drifted` with the reason; with `--repair-drift` it re-attaches the
//! pairs that can be, through the normal attach job.
//!
//! It runs as a job of the durable queue, so any replica can schedule it ([`schedule`]) and
//! one sweep runs per interval. Its reads are in bulk ([`inventory`]): Resource Graph for
//! clusters and registries, one role-assignment list per registry.
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

use super::{Ops, VERIFY};
use crate::queue::{JobContext, JobError, JobFilter, JobState, Outcome};

mod inventory;
pub mod schedule;
mod settings;
mod sweep;
mod verdict;

pub use schedule::{enqueue_sweep, schedule, window_label, window_of};
pub use settings::{DriftSettings, SweepInterval};
pub use verdict::Reason;

/// Every sweep has this target: sweeps run one at a time, in order.
pub const TARGET: &str = "verify";

/// Arguments of `verify`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VerifyArgs {
    /// The interval window the sweep belongs to (its start, RFC 3339), or any label for a
    /// sweep enqueued by hand: a window is swept once.
    pub window: String,
}

pub struct Verify(pub Arc<Ops>);

#[async_trait::async_trait]
impl crate::queue::BackgroundJob for Verify {
    const KIND: &'static str = VERIFY;
    type Args = VerifyArgs;

    fn retry_policy(&self) -> crate::queue::RetryPolicy {
        self.0.settings.retry_policy()
    }

    /// A sweep reads one role-assignment list per registry: allow large fleets.
    fn attempt_timeout(&self) -> Duration {
        Duration::from_secs(30 * 60)
    }

    async fn run(&self, ctx: &JobContext, args: VerifyArgs) -> Result<Outcome, JobError> {
        if let Some(earlier) = swept_already(ctx, &args.window).await? {
            return Ok(Outcome::Succeeded(json!({
                "window": args.window,
                "skipped": true,
                "message": "this window was swept already (two replicas scheduled it)",
                "sweptBy": earlier,
            })));
        }
        super::with_calls(ctx, async |call| sweep::sweep(&self.0, ctx, &args, call).await).await
    }
}

/// The earlier sweep of the same window, if one succeeded: sweeps run one at a time, so the
/// newest succeeded sweep is the one to compare with.
async fn swept_already(ctx: &JobContext, window: &str) -> Result<Option<uuid::Uuid>, JobError> {
    let done = ctx
        .store
        .list(&JobFilter {
            kind: Some(VERIFY.into()),
            state: Some(JobState::Succeeded),
            target_key: Some(TARGET.into()),
            limit: 1,
            ..JobFilter::default()
        })
        .await
        .map_err(|e| JobError::transient("DatabaseUnavailable", format!("reading earlier sweeps: {e}")))?;
    Ok(done
        .into_iter()
        .find(|j| j.id != ctx.id && j.args["window"] == window)
        .map(|j| j.id))
}
