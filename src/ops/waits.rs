//! Named, bounded waits for Azure's eventual consistency. Each condition has its own budget;
//! polls back off; the first time a condition was seen is kept in the job's checkpoint, so a
//! restart does not reset the clock.
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

pub use crate::duration::human;

use crate::azure::CallContext;
use crate::queue::{JobContext, JobError, Outcome, Wait};

/// Conditions a job can wait for (names appear in job status, events and metrics).
pub mod condition {
    /// A new principal is not yet known to ARM's directory replica (`PrincipalNotFound`).
    pub const PRINCIPAL_REPLICATION: &str = "principalReplication";
    /// acr-attach's own permission may still be propagating (`AuthorizationFailed`).
    pub const CALLER_PERMISSION: &str = "callerPermissionPropagation";
    /// A just-created role assignment is not yet readable (ARM read-after-write lag).
    pub const ASSIGNMENT_READABLE: &str = "roleAssignmentReadable";
    /// The cluster is still being created and has no kubelet identity yet.
    pub const CLUSTER_PROVISIONING: &str = "clusterProvisioning";
    /// A new identity is not yet known to Microsoft Graph (404 on membership calls).
    pub const IDENTITY_REPLICATION: &str = "identityReplication";
    /// A membership acr-attach made is not yet visible to Graph reads (`checkMemberGroups`).
    pub const GROUP_MEMBERSHIP_VISIBLE: &str = "groupMembershipVisible";
    /// ARM's `assignedTo()` does not yet show the group's grant for the member.
    pub const GROUP_GRANT_EFFECTIVE: &str = "groupGrantEffective";
    /// A check's probe command is still running in the cluster (AKS run-command).
    pub const PROBE_COMMAND: &str = "probeCommand";
    /// ACR is still importing an image (`importImage`'s operation).
    pub const IMPORT_OPERATION: &str = "importOperation";
    /// ARM's request quota: a token reserved for later, or a 429's `Retry-After`.
    pub const ARM_QUOTA: &str = "armQuota";
}

/// A job's checkpoint that carries its [`Waits`]: the value to save with these waits.
pub trait Snapshot: Serialize + Sized {
    fn snapshot(&self, waits: &Waits) -> Self;
}

/// Implements [`Snapshot`] for a `Clone` checkpoint struct with a `waits` field.
macro_rules! snapshot_with_waits {
    ($t:ty) => {
        impl $crate::ops::waits::Snapshot for $t {
            fn snapshot(&self, waits: &$crate::ops::waits::Waits) -> Self {
                Self {
                    waits: waits.clone(),
                    ..self.clone()
                }
            }
        }
    };
}
pub(crate) use snapshot_with_waits;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WaitState {
    pub since: DateTime<Utc>,
    pub polls: u32,
}

/// The waits of one job (part of its checkpoint).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Waits(pub BTreeMap<String, WaitState>);

/// Polls start at budget/50 (at least 100 ms, at most 5 s), double, and stay under budget/5
/// (at most 60 s): a short budget polls often, an hours-long one does not hammer ARM.
pub fn poll_delay(budget: Duration, polls: u32) -> Duration {
    let first = (budget / 50).clamp(Duration::from_millis(100), Duration::from_secs(5));
    let cap = (budget / 5).clamp(first, Duration::from_secs(60));
    first.saturating_mul(1u32 << polls.min(16)).min(cap)
}

pub enum Verdict {
    /// Still within budget: check again after this delay.
    Wait(Duration),
    /// Budget spent: fail, saying how long we waited.
    Exhausted(Duration),
}

impl Waits {
    /// Record one more poll of `condition` and decide whether to keep waiting.
    pub fn poll(&mut self, condition: &str, budget: Duration) -> Verdict {
        let now = Utc::now();
        let st = self
            .0
            .entry(condition.to_string())
            .or_insert(WaitState { since: now, polls: 0 });
        let waited = (now - st.since).to_std().unwrap_or_default();
        if waited >= budget {
            return Verdict::Exhausted(waited);
        }
        let delay = poll_delay(budget, st.polls).min(budget - waited + Duration::from_millis(50));
        st.polls += 1;
        Verdict::Wait(delay)
    }

    /// The waits after two steps ran side by side, each on its own copy of `self`: a condition
    /// either step met (removed) stays met; one either started is kept; for one both kept, the
    /// earlier start and the larger poll count.
    pub fn join(&mut self, a: Waits, b: Waits) {
        let base = std::mem::take(&mut self.0);
        let met = |c: &String| base.contains_key(c) && !(a.0.contains_key(c) && b.0.contains_key(c));
        for (condition, theirs) in a.0.iter().chain(b.0.iter()).filter(|(c, _)| !met(c)) {
            self.0
                .entry(condition.clone())
                .and_modify(|ours| {
                    ours.since = ours.since.min(theirs.since);
                    ours.polls = ours.polls.max(theirs.polls);
                })
                .or_insert_with(|| theirs.clone());
        }
    }

    /// The condition is met: forget it (and say how long it took, for the metrics).
    pub fn done(&mut self, condition: &str) -> Option<Duration> {
        self.0
            .remove(condition)
            .map(|st| (Utc::now() - st.since).to_std().unwrap_or_default())
    }

    /// [`Waits::done`], and the time it took into `acr_attach_propagation_seconds{condition}`.
    pub fn met(&mut self, condition: &str) -> Option<Duration> {
        let waited = self.done(condition)?;
        metrics::histogram!("acr_attach_propagation_seconds", "condition" => condition.to_string())
            .record(waited.as_secs_f64());
        Some(waited)
    }
}

/// One check of a condition, in the job's timeline: what was looked at and what was seen, so a
/// long wait can be followed poll by poll. The calls made so far are recorded first, so the
/// poll follows the calls it is based on.
pub async fn record_poll(
    ctx: &JobContext,
    call: &CallContext,
    condition: &str,
    satisfied: bool,
    observed: String,
    waits: &Waits,
) {
    super::record_calls(ctx, call).await;
    let st = waits.0.get(condition);
    ctx.record(
        "poll",
        serde_json::json!({
            "condition": condition,
            "satisfied": satisfied,
            "observed": observed,
            "poll": st.map(|s| s.polls + 1).unwrap_or(1),
            "waitingSince": st.map(|s| s.since),
        }),
    )
    .await;
}

/// A planned wait (nothing failed; e.g. polling for readability).
pub fn wait(condition: &str, message: String, delay: Duration, checkpoint: &impl Serialize) -> Outcome {
    Outcome::Wait(Wait::new(condition, message, delay).with_checkpoint(checkpoint))
}

/// An observed not-yet-consistent error: recorded in the job's error history, no attempt used.
pub fn not_yet(condition: &str, code: &str, message: String, delay: Duration, checkpoint: &impl Serialize) -> JobError {
    JobError::not_yet_consistent(condition, code, message)
        .with_retry_after(Some(delay))
        .with_checkpoint(checkpoint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_of_parallel_steps_join() {
        let mut base = Waits::default();
        base.poll("a", Duration::from_secs(60));
        base.poll("b", Duration::from_secs(60));
        let (mut one, mut two) = (base.clone(), base.clone());
        one.met("a"); // the first step met `a`
        one.poll("b", Duration::from_secs(60));
        two.poll("c", Duration::from_secs(60)); // the second started waiting for `c`
        base.join(one, two);
        let keys: Vec<&str> = base.0.keys().map(String::as_str).collect();
        assert_eq!(keys, ["b", "c"]);
        assert_eq!(base.0["b"].polls, 2);
    }

    #[test]
    fn polls_back_off_within_the_budget() {
        let b = Duration::from_secs(600);
        assert_eq!(poll_delay(b, 0), Duration::from_secs(5));
        assert_eq!(poll_delay(b, 1), Duration::from_secs(10));
        assert_eq!(poll_delay(b, 10), Duration::from_secs(60));
        let short = Duration::from_secs(2);
        assert_eq!(poll_delay(short, 0), Duration::from_millis(100));
        assert!(poll_delay(short, 10) <= Duration::from_millis(400));
    }

    #[test]
    fn a_budget_runs_out() {
        let mut w = Waits::default();
        assert!(matches!(w.poll("x", Duration::from_secs(60)), Verdict::Wait(_)));
        w.0.get_mut("x").unwrap().since = Utc::now() - chrono::Duration::seconds(61);
        assert!(matches!(w.poll("x", Duration::from_secs(60)), Verdict::Exhausted(d) if d.as_secs() >= 61));
        assert!(w.done("x").is_some());
        assert!(w.done("x").is_none());
    }
}
