//! The OpenAPI shapes of the queue's types in the job view. The queue serialises them; the API
//! documents them (the queue knows nothing of HTTP or OpenAPI). Documentation only: the
//! `job_view_schemas_match_the_queue` test keeps them equal to what the queue serialises.
#![allow(dead_code)]
use chrono::{DateTime, Utc};
use serde_json::Value;
use utoipa::ToSchema;

/// A job's state in the queue (see the README's state machine).
#[derive(ToSchema)]
#[schema(as = JobState, rename_all = "lowercase")]
pub enum JobStateSchema {
    Queued,
    Running,
    Waiting,
    Retrying,
    Succeeded,
    Failed,
    Cancelled,
}

/// How a handler classified a failure.
#[derive(ToSchema)]
#[schema(as = ErrorClass, rename_all = "camelCase")]
pub enum ErrorClassSchema {
    /// Worth retrying with back-off (network, 5xx, throttling); consumes an attempt.
    Transient,
    /// Retrying cannot help (validation, missing resource, missing permission after its budget).
    Permanent,
    /// The remote side has not caught up yet (replication, propagation); the job waits without
    /// consuming an attempt.
    NotYetConsistent,
}

/// One error in a job's history (also the job's `lastError`).
#[derive(ToSchema)]
#[schema(as = ErrorRecord, rename_all = "camelCase")]
pub struct ErrorRecordSchema {
    code: String,
    message: String,
    #[schema(value_type = ErrorClassSchema)]
    class: ErrorClassSchema,
    attempt: i32,
    at: DateTime<Utc>,
    details: Option<Value>,
}

/// What a waiting job waits for, and since when.
#[derive(ToSchema)]
#[schema(as = WaitRecord, rename_all = "camelCase")]
pub struct WaitRecordSchema {
    /// A stable name of the condition, e.g. `principalReplication`.
    condition: String,
    message: String,
    /// When the job started waiting for this condition (kept across consecutive polls).
    since: DateTime<Utc>,
    /// When the condition is checked next.
    next_check_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::{ErrorClass, ErrorRecord, JobState, WaitRecord};
    use serde_json::json;

    fn schema_json<T: utoipa::PartialSchema>() -> Value {
        serde_json::to_value(T::schema()).unwrap()
    }

    fn keys(v: &Value) -> Vec<String> {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    }

    #[test]
    fn job_view_schemas_match_the_queue() {
        let states: Vec<Value> = JobState::ALL.iter().map(|s| json!(s)).collect();
        assert_eq!(schema_json::<JobStateSchema>()["enum"], json!(states));
        let classes = [
            ErrorClass::Transient,
            ErrorClass::Permanent,
            ErrorClass::NotYetConsistent,
        ];
        let classes: Vec<Value> = classes.iter().map(|c| json!(c)).collect();
        assert_eq!(schema_json::<ErrorClassSchema>()["enum"], json!(classes));
        let record = ErrorRecord {
            code: "c".into(),
            message: "m".into(),
            class: ErrorClass::Transient,
            attempt: 1,
            at: Utc::now(),
            details: Some(json!({})),
        };
        assert_eq!(
            keys(&json!(record)),
            keys(&schema_json::<ErrorRecordSchema>()["properties"])
        );
        let wait = WaitRecord {
            condition: "c".into(),
            message: "m".into(),
            since: Utc::now(),
            next_check_at: Utc::now(),
        };
        assert_eq!(
            keys(&json!(wait)),
            keys(&schema_json::<WaitRecordSchema>()["properties"])
        );
    }
}
