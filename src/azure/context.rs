//! Per-job call context: the correlation id sent with every request, and a record of every
//! call made, so the job queue can store what happened on each attempt (support cases with
//! Microsoft need `x-ms-request-id` and the correlation id).

use serde::{Deserialize, Serialize};
use std::sync::Mutex;
use uuid::Uuid;

/// One HTTP call to ARM or Graph.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRecord {
    /// Client operation, e.g. `put_role_assignment`.
    pub operation: String,
    /// HTTP method.
    pub method: String,
    /// Request path without query string.
    pub path: String,
    /// HTTP status (absent on transport errors/timeouts).
    pub status: Option<u16>,
    /// ARM/Graph error code, if the call failed with one.
    pub error_code: Option<String>,
    /// `x-ms-request-id` (ARM) or `request-id` (Graph).
    pub request_id: Option<String>,
    /// The `x-ms-client-request-id` we sent.
    pub client_request_id: Uuid,
    /// Wall-clock duration in milliseconds (excluding token acquisition).
    pub duration_ms: u64,
    /// When the request started.
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// `x-ms-ratelimit-remaining-*` headers (name, value).
    pub ratelimit_remaining: Vec<(String, String)>,
}

/// The context of one job attempt. Create one per attempt (or per job) and pass it to every call.
#[derive(Debug)]
pub struct CallContext {
    /// Sent as `x-ms-correlation-request-id` on every request.
    pub correlation_id: Uuid,
    records: Mutex<Vec<CallRecord>>,
}

impl CallContext {
    /// A context with the given correlation id (typically the job id).
    pub fn new(correlation_id: Uuid) -> Self {
        CallContext {
            correlation_id,
            records: Mutex::new(Vec::new()),
        }
    }

    /// A copy of the calls recorded so far.
    pub fn records(&self) -> Vec<CallRecord> {
        self.records.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Takes the recorded calls, leaving the list empty.
    pub fn take_records(&self) -> Vec<CallRecord> {
        std::mem::take(&mut *self.records.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub(crate) fn push(&self, record: CallRecord) {
        self.records.lock().unwrap_or_else(|e| e.into_inner()).push(record);
    }
}
