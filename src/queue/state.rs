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
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type, ToSchema)]
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

    /// The status vocabulary of the Azure REST API guidelines' operation-status monitor, for
    /// clients that already poll Azure long-running operations.
    pub fn azure_status(self) -> &'static str {
        match self {
            JobState::Queued => "NotStarted",
            JobState::Running | JobState::Waiting | JobState::Retrying => "Running",
            JobState::Succeeded => "Succeeded",
            JobState::Failed => "Failed",
            JobState::Cancelled => "Canceled",
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
