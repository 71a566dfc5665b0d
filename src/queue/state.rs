//! The job state machine, in one place.
//!
//! ```text
//!            enqueue
//!               │
//!               ▼            claim (lease_epoch+1)
//!   ┌───────► queued ───────────────────────────┐
//!   │                                           ▼
//!   │  hand back at shutdown (no attempt)    running ──► succeeded
//!   ├───────────────────────────────────────────┤  ├───► failed     (permanent error, attempts or deadline exhausted)
//!   │                                           │  └───► cancelled  (cancel requested)
//!   │  waiting ◄── snooze / not yet consistent ─┤
//!   │  retrying ◄─ transient error, lease expired (rescue) ─┘
//!   │     │
//!   └─────┴── claimed again when run_at is due
//! ```
//! `queued`, `waiting` and `retrying` are the *pending* states: a worker may claim the job once
//! `run_at` has passed and no older unfinished job of the same target exists. A pending job can be
//! cancelled at once; a running one is told through its cancellation token.
//!
//! The same machine as a table ([`TRANSITIONS`]): every state change the SQL in
//! [`super::store`] and the `claim_jobs`/`enqueue_job` functions makes is one of these rows, and
//! nothing else changes `state`.
use serde::{Deserialize, Serialize};

/// `(from, event, to)`: every transition of a job's state, and the store function making it.
pub const TRANSITIONS: &[(JobState, &str, JobState)] = {
    use JobState::*;
    &[
        (Queued, "claim (claim_jobs)", Running),
        (Waiting, "claim when due (claim_jobs)", Running),
        (Retrying, "claim when due (claim_jobs)", Running),
        (Running, "succeeded (succeed_many)", Succeeded),
        (
            Running,
            "permanent error, attempts or deadline exhausted (finish: Fail)",
            Failed,
        ),
        (Running, "transient error (finish: Retry)", Retrying),
        (Running, "not yet consistent / snooze (finish: Snooze)", Waiting),
        (
            Running,
            "cancel requested, worker stopped (finish: Cancelled)",
            Cancelled,
        ),
        (
            Running,
            "shutdown hand-back, no attempt used (finish: HandBack)",
            Queued,
        ),
        (Running, "lease expired (rescue_expired)", Retrying),
        (
            Running,
            "lease expired, attempts or deadline exhausted (rescue_expired)",
            Failed,
        ),
        (
            Running,
            "lease expired with a cancel requested (rescue_expired)",
            Cancelled,
        ),
        (Queued, "cancel (cancel)", Cancelled),
        (Waiting, "cancel (cancel)", Cancelled),
        (Retrying, "cancel (cancel)", Cancelled),
    ]
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[sqlx(type_name = "job_state", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Queued,
    Running,
    Waiting,
    Retrying,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobState {
    pub const ALL: [JobState; 7] = [
        JobState::Queued,
        JobState::Running,
        JobState::Waiting,
        JobState::Retrying,
        JobState::Succeeded,
        JobState::Failed,
        JobState::Cancelled,
    ];

    pub fn is_terminal(self) -> bool {
        matches!(self, JobState::Succeeded | JobState::Failed | JobState::Cancelled)
    }

    pub fn is_pending(self) -> bool {
        matches!(self, JobState::Queued | JobState::Waiting | JobState::Retrying)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Waiting => "waiting",
            JobState::Retrying => "retrying",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }
}

impl std::str::FromStr for JobState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobState::ALL
            .into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                let all: Vec<_> = JobState::ALL.iter().map(|s| s.as_str()).collect();
                format!("unknown job state '{s}'; expected one of {}", all.join(", "))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_transition_table_is_the_machine_the_states_describe() {
        for (from, event, to) in TRANSITIONS {
            assert!(!from.is_terminal(), "{event}: nothing leaves a terminal state");
            assert_ne!(from, to, "{event}");
            if *to == JobState::Running {
                assert!(from.is_pending(), "{event}: only pending jobs are claimed");
            }
        }
        // Every non-terminal state can reach an end, and every state is reachable.
        for s in JobState::ALL {
            let enters = TRANSITIONS.iter().any(|(_, _, to)| *to == s) || s == JobState::Queued;
            assert!(enters, "{s:?} is never entered");
            if !s.is_terminal() {
                assert!(TRANSITIONS.iter().any(|(from, _, _)| *from == s), "{s:?} is a dead end");
            }
        }
        // A pending job can always be cancelled at once.
        for s in JobState::ALL.into_iter().filter(|s| s.is_pending()) {
            assert!(TRANSITIONS.iter().any(|t| t.0 == s && t.2 == JobState::Cancelled));
        }
    }
}
