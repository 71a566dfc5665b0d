//! The OpenAPI shapes of the queue's types in the job view, and of the job kinds' results that
//! have no Rust type of their own. The queue and the job kinds serialise them; the API documents
//! them (the queue knows nothing of HTTP or OpenAPI). Documentation only: the
//! `job_view_schemas_match_the_queue` test keeps the queue's equal to what it serialises.
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

/// The result of a `check` job.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct CheckResult {
    /// `canPull`: nothing stands in the way; `cannotPull`: something does (an `error`
    /// finding); `unknown`: something ARM cannot show decides, or a grant may not be effective yet.
    verdict: crate::ops::check::findings::Verdict,
    /// What the check found, most important first is not guaranteed: look at `severity`.
    findings: Vec<crate::ops::check::findings::Finding>,
    /// `{id}`.
    #[schema(value_type = Object)]
    cluster: Value,
    /// `{id, loginServer, roleAssignmentMode}` (absent when the registry was not found).
    #[schema(value_type = Option<Object>)]
    registry: Option<Value>,
    /// The identity that pulls: `{objectId, source, clientId}`.
    #[schema(value_type = Option<Object>)]
    principal: Option<Value>,
    checked_at: chrono::DateTime<chrono::Utc>,
}

/// The result of an `import` job.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct ImportResult {
    /// `{id, loginServer}` of the target.
    #[schema(value_type = Object)]
    registry: Value,
    /// The source as accepted: `{registryId | loginServer, image}` (never credentials).
    #[schema(value_type = Object)]
    source: Value,
    mode: String,
    /// The tags written, `repository:tag`.
    imported: Vec<String>,
    /// The same, with the target's login server: what a pod pulls.
    images: Vec<String>,
    /// The digest, when the source was given by digest (ACR's import reports none).
    digest: Option<String>,
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
