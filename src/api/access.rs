//! One request's access: the authenticated caller, the policy's decision, and the audit record
//! every mutating request leaves (allowed or denied). Handlers take [`Access`] as an extractor,
//! ask [`Access::authorize`] before anything is enqueued, and hand the [`Granted`] to
//! [`super::jobs::submit`], which writes the audit record in the enqueue transaction.
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde_json::{Value, json};

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::policy::{Action, Ask, Decision};
use crate::audit::{AuditEntry, AuditStore};

/// The caller and the request line, for decisions and the audit trail.
pub struct Access {
    pub caller: Caller,
    request_id: Option<String>,
    method: String,
    path: String,
}

/// An allowed mutating request, to be audited with the job it produces.
pub struct Granted {
    pub action: Action,
    pub decision: Decision,
    pub resources: Value,
}

impl<S: Send + Sync> FromRequestParts<S> for Access {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        Ok(Access {
            caller,
            request_id: parts
                .headers
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .map(|s| s.chars().take(200).collect()),
            method: parts.method.as_str().to_string(),
            path: parts.uri.path().chars().take(500).collect(),
        })
    }
}

fn forbidden(decision: &Decision) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "Forbidden",
        format!("the authorisation policy does not allow this: {}", decision.reason),
    )
}

impl Access {
    /// A mutating request: the policy decides; a denial is audited and answered 403.
    pub async fn authorize(&self, state: &AppState, ask: &Ask<'_>, resources: Value) -> ApiResult<Granted> {
        let decision = state.policy.decide(&self.caller, ask);
        let action = ask.action();
        if !decision.allowed {
            let err = forbidden(&decision);
            self.audit(state, action, &resources, &decision, err.status, None)
                .await?;
            return Err(err);
        }
        Ok(Granted {
            action,
            decision,
            resources,
        })
    }

    /// A mutating request refused before the policy could look at it (invalid input):
    /// audited as denied with the error, then answered with it.
    pub async fn refuse(&self, state: &AppState, action: Action, err: ApiError) -> ApiError {
        let decision = Decision {
            allowed: false,
            rule: None,
            reason: format!("invalid request: {}", err.body.code),
        };
        if let Err(e) = self.audit(state, action, &json!({}), &decision, err.status, None).await {
            return e;
        }
        err
    }

    /// A read: the policy decides, nothing is audited.
    pub fn check(&self, state: &AppState, action: Action) -> ApiResult<Decision> {
        let decision = state.policy.decide(&self.caller, &Ask::Plain(action));
        if decision.allowed {
            Ok(decision)
        } else {
            Err(forbidden(&decision))
        }
    }

    /// Whether the policy allows `action` (for "every job" versus "own jobs").
    pub fn may(&self, state: &AppState, action: Action) -> bool {
        state.policy.decide(&self.caller, &Ask::Plain(action)).allowed
    }

    /// The audit entry of this request.
    pub fn entry<'a>(
        &'a self,
        action: Action,
        resources: &Value,
        decision: &'a Decision,
        status: StatusCode,
        job_id: Option<uuid::Uuid>,
        principal: &'a str,
    ) -> AuditEntry<'a> {
        AuditEntry {
            request_id: self.request_id.as_deref(),
            caller: principal,
            caller_info: serde_json::to_value(&self.caller).unwrap_or(Value::Null),
            action: action.as_str(),
            method: &self.method,
            path: &self.path,
            resources: resources.clone(),
            allowed: decision.allowed,
            rule: decision.rule.as_deref(),
            reason: &decision.reason,
            status: status.as_u16(),
            job_id,
        }
    }

    /// Audits an allowed request that did not go through [`super::jobs::submit`] (cancel).
    pub async fn record(
        &self,
        state: &AppState,
        granted: &Granted,
        status: StatusCode,
        job_id: uuid::Uuid,
    ) -> ApiResult<()> {
        self.audit(
            state,
            granted.action,
            &granted.resources,
            &granted.decision,
            status,
            Some(job_id),
        )
        .await
    }

    /// Audits a refusal decided outside the policy (another caller's job: 404).
    pub async fn record_refusal(
        &self,
        state: &AppState,
        action: Action,
        resources: &Value,
        err: &ApiError,
    ) -> ApiResult<()> {
        let decision = Decision {
            allowed: false,
            rule: None,
            reason: err.body.message.clone(),
        };
        self.audit(state, action, resources, &decision, err.status, None).await
    }

    /// The request's `x-request-id` (kept with a batch, for the audit records of its items).
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }

    /// Audits a decision about part of a request (a batch's item, or its selection's scope).
    pub async fn record_decision(
        &self,
        state: &AppState,
        action: Action,
        resources: &Value,
        decision: &Decision,
        status: StatusCode,
    ) -> ApiResult<()> {
        self.audit(state, action, resources, decision, status, None).await
    }

    /// Reads of jobs: own jobs with `read`, every job with `readAllJobs`. `Ok(true)`: every job.
    pub fn job_reader(&self, state: &AppState) -> ApiResult<bool> {
        if self.may(state, Action::ReadAllJobs) {
            return Ok(true);
        }
        self.check(state, Action::Read).map(|_| false)
    }

    async fn audit(
        &self,
        state: &AppState,
        action: Action,
        resources: &Value,
        decision: &Decision,
        status: StatusCode,
        job_id: Option<uuid::Uuid>,
    ) -> ApiResult<()> {
        let principal = self.caller.principal();
        let entry = self.entry(action, resources, decision, status, job_id, &principal);
        AuditStore::record(&state.pool, &entry).await?;
        Ok(())
    }
}
