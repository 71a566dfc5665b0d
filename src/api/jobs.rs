//! `/v1/jobs`: read jobs, their timelines, and cancel them; plus `submit`, which every POST
//! that starts work uses (202 + Operation-Location, dedup, Idempotency-Key).
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::borrow::Cow;
use utoipa::openapi::{RefOr, schema::Schema};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::AppState;
use super::access::{Access, Granted};
use super::error::{ApiError, ApiResult, ErrorResponse, quote};
use super::extract::{
    ClusterIdSchema, GroupIdSchema, IdempotencyKey, IdentityIdSchema, JobIdPath, QueryParams, RegistryRefSchema,
    parse_cursor, parse_limit,
};
use super::idempotency::Key;
use super::job_schemas::{ErrorRecordSchema, JobStateSchema, WaitRecordSchema};
use super::policy::{Action, Ask};
use crate::audit::AuditStore;
use crate::queue::{CancelOutcome, ErrorRecord, Job, JobEvent, JobFilter, JobState, NewJob, WaitRecord};

/// A job: what was asked, where it stands, what happened.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobView {
    pub id: Uuid,
    /// The job kind.
    #[schema(value_type = JobKind)]
    pub kind: String,
    /// Azure REST API guidelines status: NotStarted, Running, Succeeded, Failed, Canceled.
    pub status: &'static str,
    /// The queue's detailed state (see the README's state machine).
    #[schema(value_type = JobStateSchema)]
    pub state: JobState,
    /// What the job acts on; jobs of one target run one at a time, in order.
    pub target: Option<String>,
    /// The job's arguments, as accepted (ids in canonical form): `PairJobInput` for `attach` and
    /// `detach`, `CheckJobInput` for `check`, `ImportJobInput` for `import`, `VerifyJobInput` for
    /// `verify`, `KubeletIdentityJobInput` for `kubelet-identity`, `BatchExpandJobInput` for
    /// `batch-expand`.
    #[schema(value_type = JobInputSchema)]
    pub input: Value,
    /// Attempts consumed (failures and rescues; waits do not count).
    pub attempts: i32,
    pub max_attempts: i32,
    /// How many times a worker picked the job up.
    pub runs: i32,
    /// How many times the job waited for eventual consistency.
    pub waits: i32,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// When a pending job runs next.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The job fails if it is not done by then.
    pub deadline: DateTime<Utc>,
    /// While `state` is `waiting`: the condition, since when, next check.
    #[schema(value_type = Option<WaitRecordSchema>)]
    pub wait: Option<WaitRecord>,
    pub cancel_requested: bool,
    /// The job's result once it succeeded: `AttachResult`, `DetachResult`, `CheckResult`,
    /// `ImportResult`, `VerifyResult`, `KubeletIdentityResult` or `BatchExpandResult`, by `kind`.
    #[schema(value_type = Option<JobResultSchema>)]
    pub result: Option<Value>,
    /// Why the job failed (when `status` is Failed).
    #[schema(value_type = Option<ErrorRecordSchema>)]
    pub error: Option<ErrorRecord>,
    /// The most recent error, also while the job is still retrying.
    #[schema(value_type = Option<ErrorRecordSchema>)]
    pub last_error: Option<ErrorRecord>,
    /// Error history, oldest first (up to 20; the full timeline is at `/v1/jobs/{id}/events`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<ErrorRecordSchema>>)]
    pub errors: Option<Vec<ErrorRecord>>,
}

impl JobView {
    pub fn from_job(j: Job, errors: Option<Vec<ErrorRecord>>) -> Self {
        let last_error = j.last_error.map(|e| e.0);
        JobView {
            id: j.id,
            kind: j.kind,
            status: azure_status(j.state),
            state: j.state,
            target: j.target_key,
            input: j.args,
            attempts: j.attempts,
            max_attempts: j.max_attempts,
            runs: j.lease_epoch,
            waits: j.snoozes,
            created_at: j.created_at,
            started_at: j.started_at,
            updated_at: j.updated_at,
            finished_at: j.finalized_at,
            next_attempt_at: j.state.is_pending().then_some(j.run_at),
            deadline: j.deadline_at,
            wait: (j.state == JobState::Waiting).then(|| j.wait.map(|w| w.0)).flatten(),
            cancel_requested: j.cancel_requested_at.is_some(),
            result: j.result,
            error: (j.state == JobState::Failed).then(|| last_error.clone()).flatten(),
            last_error,
            errors,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobList {
    pub value: Vec<JobView>,
    /// The next page, when there is one.
    pub next_link: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    /// Order of recording; 0 for the events implied by the job itself (enqueued, first start,
    /// success).
    pub id: i64,
    pub at: DateTime<Utc>,
    /// enqueued, started, succeeded, retry_scheduled, waiting, failed, cancel_requested,
    /// cancelled, rescued, handed_back, or a step recorded by the job kind.
    #[serde(rename = "type")]
    pub kind: String,
    pub attempt: i32,
    pub data: Option<Value>,
}

impl From<JobEvent> for EventView {
    fn from(e: JobEvent) -> Self {
        EventView {
            id: e.id,
            at: e.at,
            kind: e.kind,
            attempt: e.attempt,
            data: e.data,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventList {
    pub value: Vec<EventView>,
}

/// The job kinds (what `kind` says and the `kind` filter accepts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum JobKind {
    Attach,
    Detach,
    Check,
    Import,
    Verify,
    KubeletIdentity,
    BatchExpand,
}

impl JobKind {
    pub const ALL: [JobKind; 7] = [
        JobKind::Attach,
        JobKind::Detach,
        JobKind::Check,
        JobKind::Import,
        JobKind::Verify,
        JobKind::KubeletIdentity,
        JobKind::BatchExpand,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Attach => crate::ops::ATTACH,
            JobKind::Detach => crate::ops::DETACH,
            JobKind::Check => crate::ops::CHECK,
            JobKind::Import => crate::ops::IMPORT,
            JobKind::Verify => crate::ops::VERIFY,
            JobKind::KubeletIdentity => crate::ops::KUBELET_IDENTITY,
            JobKind::BatchExpand => crate::ops::BATCH_EXPAND,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only jobs of this kind.
    #[param(value_type = Option<JobKind>)]
    pub kind: Option<String>,
    /// Only jobs in this state.
    #[param(value_type = Option<JobStateSchema>)]
    pub state: Option<String>,
    /// Only jobs of this target (as shown in a job's `target`); no control characters.
    #[param(pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    pub target: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 200, default = 50)]
    pub limit: Option<String>,
    /// Continuation token from `nextLink`.
    #[param(pattern = "^[1-9][0-9]{0,17}$")]
    pub cursor: Option<String>,
}

/// A query parameter that takes one of a few values, matched exactly.
pub(super) fn one_of<T: Copy>(name: &str, raw: &str, all: &[T], as_str: impl Fn(T) -> &'static str) -> ApiResult<T> {
    all.iter().copied().find(|v| as_str(*v) == raw).ok_or_else(|| {
        let allowed: Vec<&str> = all.iter().map(|v| as_str(*v)).collect();
        ApiError::bad_request(
            "InvalidQueryParameter",
            format!("{name} {} is not one of {}", quote(raw), allowed.join(", ")),
        )
        .with_target(name)
    })
}

/// The status vocabulary of the Azure REST API guidelines' operation-status monitor, for
/// clients that already poll Azure long-running operations.
fn azure_status(state: JobState) -> &'static str {
    match state {
        JobState::Queued => "NotStarted",
        JobState::Running | JobState::Waiting | JobState::Retrying => "Running",
        JobState::Succeeded => "Succeeded",
        JobState::Failed => "Failed",
        JobState::Cancelled => "Canceled",
    }
}

pub async fn load_view(state: &AppState, id: Uuid) -> ApiResult<JobView> {
    let job = state.store.get(id).await?.ok_or_else(|| job_not_found(id))?;
    let errors = state.store.errors(id, 20).await?;
    Ok(JobView::from_job(job, Some(errors)))
}

fn job_not_found(id: Uuid) -> ApiError {
    ApiError::not_found(
        "JobNotFound",
        format!("no job with id {id} visible to this caller (finished jobs are deleted after their retention)"),
    )
    .with_target("id")
}

/// Get a job.
#[utoipa::path(get, path = "/v1/jobs/{id}", tag = "jobs",
    params(("id" = Uuid, Path, description = "Job id (UUID)")),
    responses((status = 200, body = JobView, description = "The job"), (status = "4XX", body = ErrorResponse, description = "Refused: the error says why and about what"),
        (status = "5XX", body = ErrorResponse, description = "Unavailable for now (503: the database or the Entra keys), or an internal error (500)")))]
pub async fn get_job(
    State(state): State<AppState>,
    access: Access,
    JobIdPath(id): JobIdPath,
) -> ApiResult<Json<JobView>> {
    visible(&state, &access, id).await?;
    Ok(Json(load_view(&state, id).await?))
}

/// Jobs belong to their requesters: another caller's job is "not found" unless the caller may
/// read every job.
async fn visible(state: &AppState, access: &Access, id: Uuid) -> ApiResult<()> {
    if access.job_reader(state)? || state.store.is_requester(id, &access.caller.principal()).await? {
        Ok(())
    } else {
        Err(job_not_found(id))
    }
}

/// List jobs, newest first.
#[utoipa::path(get, path = "/v1/jobs", tag = "jobs", params(ListParams),
    responses((status = 200, body = JobList, description = "A page of jobs"), (status = "4XX", body = ErrorResponse, description = "Refused: the error says why and about what"),
        (status = "5XX", body = ErrorResponse, description = "Unavailable for now (503: the database or the Entra keys), or an internal error (500)")))]
pub async fn list_jobs(
    State(state): State<AppState>,
    access: Access,
    QueryParams(p): QueryParams<ListParams>,
) -> ApiResult<Json<JobList>> {
    let every_job = access.job_reader(&state)?;
    let limit = parse_limit(p.limit.as_deref(), 50, 200)?;
    let kind = p
        .kind
        .as_deref()
        .map(|k| one_of("kind", k, &JobKind::ALL, JobKind::as_str))
        .transpose()?;
    let job_state = p
        .state
        .as_deref()
        .map(|s| one_of("state", s, &JobState::ALL, JobState::as_str))
        .transpose()?;
    let before_seq = parse_cursor(p.cursor.as_deref())?;
    let filter = JobFilter {
        kind: kind.map(|k| k.as_str().to_string()),
        state: job_state,
        target_key: p.target.clone(),
        before_seq,
        limit: limit + 1,
        requested_by: (!every_job).then(|| access.caller.principal()),
    };
    let mut jobs = state.store.list(&filter).await?;
    let next_link = (jobs.len() as i64 > limit).then(|| {
        jobs.truncate(limit as usize);
        let last = jobs.last().map(|j| j.seq).unwrap_or_default();
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        if let Some(k) = kind {
            q.append_pair("kind", k.as_str());
        }
        if let Some(s) = job_state {
            q.append_pair("state", s.as_str());
        }
        if let Some(t) = &p.target {
            q.append_pair("target", t);
        }
        q.append_pair("limit", &limit.to_string());
        q.append_pair("cursor", &last.to_string());
        format!("/v1/jobs?{}", q.finish())
    });
    Ok(Json(JobList {
        value: jobs.into_iter().map(|j| JobView::from_job(j, None)).collect(),
        next_link,
    }))
}

/// A job's timeline: enqueued, each attempt, waits, errors, cancellation, rescues.
#[utoipa::path(get, path = "/v1/jobs/{id}/events", tag = "jobs",
    params(("id" = Uuid, Path, description = "Job id (UUID)")),
    responses((status = 200, body = EventList, description = "The timeline, oldest first"), (status = "4XX", body = ErrorResponse, description = "Refused: the error says why and about what"),
        (status = "5XX", body = ErrorResponse, description = "Unavailable for now (503: the database or the Entra keys), or an internal error (500)")))]
pub async fn job_events(
    State(state): State<AppState>,
    access: Access,
    JobIdPath(id): JobIdPath,
) -> ApiResult<Json<EventList>> {
    visible(&state, &access, id).await?;
    let events = state.store.events(id).await?.ok_or_else(|| job_not_found(id))?;
    Ok(Json(EventList {
        value: events.into_iter().map(EventView::from).collect(),
    }))
}

/// Cancel a job. A queued or waiting job is cancelled at once (200); a running one is told to
/// stop and ends `cancelled` (202). Cancelling a cancelled job is a no-op (200).
#[utoipa::path(post, path = "/v1/jobs/{id}/cancel", tag = "jobs",
    params(("id" = Uuid, Path, description = "Job id (UUID)"),
           ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[ -~]*[!-~][ -~]*$",
        description = "Makes the request safely repeatable: 1 to 255 printable ASCII characters (a UUID is a good choice)")),
    responses((status = 200, body = JobView, description = "Cancelled (or already cancelled)"),
              (status = 202, body = JobView, description = "Running: told to stop; poll the job"),
              (status = 409, body = ErrorResponse, description = "The job already succeeded or failed"),
              (status = 422, body = ErrorResponse, description = "The Idempotency-Key was already used for a different request"),
              (status = "4XX", body = ErrorResponse, description = "Refused: the error says why and about what"),
        (status = "5XX", body = ErrorResponse, description = "Unavailable for now (503: the database or the Entra keys), or an internal error (500)")))]
pub async fn cancel_job(
    State(state): State<AppState>,
    access: Access,
    JobIdPath(id): JobIdPath,
    IdempotencyKey(key): IdempotencyKey,
) -> ApiResult<Response> {
    let granted = authorize_cancel(&state, &access, id).await?;
    let path = format!("/v1/jobs/{id}/cancel");
    let status = match Key::new(&access.caller.principal(), "POST /v1/jobs/{id}/cancel", key, &path, b"") {
        Some(key) => {
            let mut tx = state.pool.begin().await?;
            if let Some((status, job_id)) = key.replay(&mut tx).await? {
                tx.commit().await?;
                return job_response(&state, status, job_id).await;
            }
            let status = cancel_status(&state, id).await?;
            key.remember(&mut tx, status, id).await?;
            tx.commit().await?;
            status
        }
        None => cancel_status(&state, id).await?,
    };
    access.record(&state, &granted, status, id).await?;
    job_response(&state, status, id).await
}

/// Own jobs with `cancel`, anyone's with `cancelAllJobs`; another caller's job is "not found".
async fn authorize_cancel(state: &AppState, access: &Access, id: Uuid) -> ApiResult<Granted> {
    let resources = serde_json::json!({ "job": id });
    let all = state.policy.decide(&access.caller, &Ask::Plain(Action::CancelAllJobs));
    if all.allowed {
        return Ok(Granted {
            action: Action::Cancel,
            decision: all,
            resources,
        });
    }
    let own = access
        .authorize(state, &Ask::Plain(Action::Cancel), resources.clone())
        .await?;
    if !state.store.is_requester(id, &access.caller.principal()).await? {
        let err = job_not_found(id);
        access.record_refusal(state, Action::Cancel, &resources, &err).await?;
        return Err(err);
    }
    Ok(own)
}

async fn cancel_status(state: &AppState, id: Uuid) -> ApiResult<StatusCode> {
    match state.store.cancel(id).await?.ok_or_else(|| job_not_found(id))? {
        CancelOutcome::Cancelled(_) => Ok(StatusCode::OK),
        CancelOutcome::Requested(_) => Ok(StatusCode::ACCEPTED),
        CancelOutcome::AlreadyFinished(j) if j.state == JobState::Cancelled => Ok(StatusCode::OK),
        CancelOutcome::AlreadyFinished(j) => Err(ApiError::conflict(
            "JobAlreadyFinished",
            format!(
                "job {id} already {}; only unfinished jobs can be cancelled",
                j.state.as_str()
            ),
        )),
    }
}

/// The answer of a POST that started (or found) a job: the job, and where to poll it.
pub async fn job_response(state: &AppState, status: StatusCode, id: Uuid) -> ApiResult<Response> {
    Ok(view_response(status, load_view(state, id).await?))
}

fn view_response(status: StatusCode, view: JobView) -> Response {
    let id = view.id;
    let mut res = (status, Json(view)).into_response();
    let loc = HeaderValue::from_str(&format!("/v1/jobs/{id}")).expect("a UUID path is a valid header");
    res.headers_mut().insert("operation-location", loc.clone());
    if status == StatusCode::ACCEPTED {
        res.headers_mut().insert(header::LOCATION, loc);
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    res
}

/// Enqueue a job for an allowed POST: 202 for a new job, 200 when an identical unfinished job
/// was found or the caller's Idempotency-Key was seen before. The job, its requester, the
/// idempotency record and the audit record commit together.
#[allow(clippy::too_many_arguments)]
pub async fn submit(
    state: &AppState,
    access: &Access,
    granted: Granted,
    scope: &str,
    path: &str,
    key: Option<String>,
    raw_body: &[u8],
    new: NewJob,
) -> ApiResult<Response> {
    submit_with_secret(state, access, granted, scope, path, key, raw_body, new, None).await
}

/// [`submit`], sealing `secret` for a new job in the same transaction (a deduplicated or
/// replayed request keeps the first job's secret; this one is dropped unread).
#[allow(clippy::too_many_arguments)]
pub async fn submit_with_secret(
    state: &AppState,
    access: &Access,
    granted: Granted,
    scope: &str,
    path: &str,
    key: Option<String>,
    raw_body: &[u8],
    new: NewJob,
    secret: Option<(crate::secrets::SecretKey, Vec<u8>)>,
) -> ApiResult<Response> {
    let principal = access.caller.principal();
    let key = Key::new(&principal, scope, key, path, raw_body);
    let entry = |status: StatusCode, job_id: Option<Uuid>| {
        let mut resources = granted.resources.clone();
        if let Some(id) = job_id {
            resources["job"] = Value::String(id.to_string());
        }
        access.entry(
            granted.action,
            &resources,
            &granted.decision,
            status,
            job_id,
            &principal,
        )
    };
    // The usual POST (no Idempotency-Key, nothing to seal): one statement, one round trip.
    if key.is_none() && secret.is_none() {
        let (job, deduplicated) = enqueue_audited(&state.pool, &new, &entry(StatusCode::ACCEPTED, None)).await?;
        return answer(state, &new, job, deduplicated).await;
    }
    let mut tx = state.pool.begin().await?;
    if let Some((status, job_id)) = match &key {
        Some(key) => key.replay(&mut tx).await?,
        None => None,
    } {
        AuditStore::record(&mut *tx, &entry(status, Some(job_id))).await?;
        tx.commit().await?;
        return job_response(state, status, job_id).await;
    }
    let (job, deduplicated) = enqueue_audited(&mut *tx, &new, &entry(StatusCode::ACCEPTED, None)).await?;
    if let (Some((seal_key, plain)), false) = (&secret, deduplicated) {
        let (nonce, sealed) = seal_key.seal(job.id, plain);
        crate::imports::ImportStore::put_secret(&mut tx, job.id, &nonce, &sealed).await?;
    }
    if let Some(key) = &key {
        key.remember(&mut tx, submit_status(deduplicated), job.id).await?;
    }
    tx.commit().await?;
    answer(state, &new, job, deduplicated).await
}

/// Enqueues `new` (`enqueue_job`: per-target lock, dedup, insert, NOTIFY) and writes its
/// requester and the request's audit record in one statement, so all three commit together
/// (synchronously, before the answer) whether `executor` is a transaction or the pool. The audit
/// record gets the job and the status: 202 for a new job, 200 for an identical unfinished one.
async fn enqueue_audited<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    new: &NewJob,
    entry: &crate::audit::AuditEntry<'_>,
) -> sqlx::Result<(Job, bool)> {
    debug_assert!(new.checkpoint.is_none(), "API jobs start without a checkpoint");
    let id = Uuid::new_v4();
    // $1..$8: enqueue_job's arguments; $9..$18: the audit entry's fields, $10 its caller (the
    // job's requester).
    let query = sqlx::query_as(
        "WITH j AS (SELECT * FROM enqueue_job($1, $2, $3, $4, $5, $6, $7, $8)), \
              r AS (INSERT INTO job_requester (job_id, requested_by) SELECT id, $10 FROM j ON CONFLICT DO NOTHING), \
              a AS (INSERT INTO audit_record (request_id, caller, caller_info, action, method, path, resources, \
                                              decision, rule, reason, status, job_id) \
                    SELECT $9, $10, $11, $12, $13, $14, $15 || jsonb_build_object('job', j.id::text), $16, $17, $18, \
                           CASE WHEN j.id = $1 THEN 202 ELSE 200 END, j.id FROM j) \
         SELECT * FROM j",
    );
    let job: Job = entry.bind(new.bind_enqueue(query, id)).fetch_one(executor).await?;
    let deduplicated = job.id != id;
    Ok((job, deduplicated))
}

/// The answer to a POST that enqueued (202, from the row just written: a new job has no error
/// history) or found an identical unfinished job (200, read as it is now).
async fn answer(state: &AppState, new: &NewJob, job: Job, deduplicated: bool) -> ApiResult<Response> {
    let counter = match deduplicated {
        true => "acr_attach_jobs_deduplicated_total",
        false => "acr_attach_jobs_enqueued_total",
    };
    metrics::counter!(counter, "kind" => new.kind.clone()).increment(1);
    if deduplicated {
        job_response(state, StatusCode::OK, job.id).await
    } else {
        Ok(view_response(
            StatusCode::ACCEPTED,
            JobView::from_job(job, Some(Vec::new())),
        ))
    }
}

fn submit_status(deduplicated: bool) -> StatusCode {
    if deduplicated {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    }
}

// ---------------------------------------------------------------------------------------------
// The shapes of a job's `input` and `result`, for the OpenAPI document only (the queue stores
// both as JSON; the job kinds in `crate::ops` write them).

/// The arguments of an `attach` or `detach` job.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct PairJobInput {
    #[schema(value_type = ClusterIdSchema)]
    cluster: String,
    /// As given: an ARM id in canonical form, or a bare name.
    #[schema(value_type = RegistryRefSchema)]
    registry: String,
    /// The Entra group granted through (absent for a direct attach or detach).
    #[schema(value_type = Option<GroupIdSchema>)]
    group: Option<String>,
    /// Detach through a group: also delete the group's pull grant (absent when false).
    remove_group_grant: Option<bool>,
}

/// The arguments of a `check` job.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct CheckJobInput {
    #[schema(value_type = ClusterIdSchema)]
    cluster: String,
    /// As given: an ARM id in canonical form, or a bare name.
    #[schema(value_type = RegistryRefSchema)]
    registry: String,
    /// Absent when false.
    probe: Option<bool>,
    /// The image a probe pulls (absent when not given).
    image: Option<String>,
}

/// The arguments of an `import` job (never credentials: only whether some are sealed).
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct ImportJobInput {
    #[schema(value_type = RegistryRefSchema)]
    registry: String,
    /// `{registryId | loginServer, image}`.
    #[schema(value_type = Object)]
    source: Value,
    target_tags: Option<Vec<String>>,
    mode: String,
    /// Present (true) when source credentials are sealed with the job.
    credentials: Option<bool>,
}

/// The arguments of a `kubelet-identity` job.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct KubeletIdentityJobInput {
    #[schema(value_type = IdentityIdSchema)]
    identity: String,
    /// Region for a new identity (absent when not given).
    location: Option<String>,
    /// Groups to add the identity to (absent when none).
    #[schema(value_type = Option<Vec<GroupIdSchema>>)]
    groups: Option<Vec<String>>,
    /// Registries to grant the identity pull on (absent when none).
    #[schema(value_type = Option<Vec<RegistryRefSchema>>)]
    registries: Option<Vec<String>>,
    /// Tags the identity gets (absent: an existing identity's tags are kept).
    tags: Option<std::collections::BTreeMap<String, String>>,
}

/// The arguments of a `batch-expand` job: the batch it enqueues the items of.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct BatchExpandJobInput {
    batch: Uuid,
}

/// The result of a `batch-expand` job.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct BatchExpandResult {
    batch: Uuid,
    /// What this run did with the items: `{enqueued, deduplicated, denied, cancelled}`.
    #[schema(value_type = Object)]
    items: Value,
}

/// A result of an `attach` job (`path` says which way it granted).
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct AttachResult {
    /// `direct` (the kubelet identity holds the grant) or `group` (through an Entra group).
    path: String,
    /// Direct: `created`, `alreadyPresent` or `adopted` (an existing grant under another name);
    /// group: `effective` (ARM shows the grant reaching the identity).
    outcome: String,
    /// The role assignment that grants pull (the group's, on the group path).
    assignment_id: Option<String>,
    /// Direct: the role assignment's name (a GUID).
    assignment_name: Option<String>,
    /// The pull role: `{id, name}` (AcrPull, or Container Registry Repository Reader for ABAC registries).
    #[schema(value_type = Option<Object>)]
    role: Option<Value>,
    /// The kubelet identity: `{objectId, type, source, clientId}`.
    #[schema(value_type = Option<Object>)]
    principal: Option<Value>,
    /// `{id, loginServer, roleAssignmentMode}`.
    #[schema(value_type = Option<Object>)]
    registry: Option<Value>,
    /// `{id}`.
    #[schema(value_type = Option<Object>)]
    cluster: Option<Value>,
    /// Direct: when nodes can pull with the new grant.
    effective: Option<String>,
    /// Group: `{id, displayName}`.
    #[schema(value_type = Option<Object>)]
    group: Option<Value>,
    /// Group: `added` or `alreadyMember`.
    membership: Option<String>,
    /// Group: whether acr-attach added the membership.
    membership_added: Option<bool>,
    /// Group: the group's grant, `{id, name, outcome}`.
    #[schema(value_type = Option<Object>)]
    group_assignment: Option<Value>,
    /// Group: how long ARM took to show the grant reaching the identity, `{condition, waitedSeconds, polls}`.
    #[schema(value_type = Option<Object>)]
    propagation: Option<Value>,
    /// Group: what may still lag (managed-identity tokens cache group claims).
    uncertain: Option<String>,
}

/// A result of a `detach` job.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct DetachResult {
    /// `direct` or `group`.
    path: String,
    /// Direct: `deleted` or `nothingToDelete`; group: `removed` or `nothingRemoved`.
    outcome: String,
    /// Ids of the role assignments deleted.
    deleted: Option<Vec<String>>,
    /// Grants left in place, each `{id, scope, roleDefinitionId, reason, ...}`.
    #[schema(value_type = Option<Vec<Object>>)]
    kept: Option<Vec<Value>>,
    /// What happened, for people.
    message: Option<String>,
    /// `{objectId, source}`.
    #[schema(value_type = Option<Object>)]
    principal: Option<Value>,
    /// `{id, loginServer}`.
    #[schema(value_type = Option<Object>)]
    registry: Option<Value>,
    /// `{id}`.
    #[schema(value_type = Option<Object>)]
    cluster: Option<Value>,
    /// Group: `{id}`.
    #[schema(value_type = Option<Object>)]
    group: Option<Value>,
    /// Group: what was done with the kubelet identity's membership, and why.
    #[schema(value_type = Option<Object>)]
    membership: Option<Value>,
    /// Group: how long nodes may keep pulling.
    effective: Option<String>,
}

/// The result of a `kubelet-identity` job: what `az aks create --assign-kubelet-identity` needs.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct KubeletIdentityResult {
    /// `{resourceId, name, location, clientId, principalId, tenantId, tags, outcome}`.
    #[schema(value_type = Object)]
    identity: Value,
    /// Each group: `{id, displayName, membership}`.
    #[schema(value_type = Option<Vec<Object>>)]
    groups: Option<Vec<Value>>,
    /// Each registry granted: `{id, loginServer, role, assignmentId, outcome}`.
    #[schema(value_type = Option<Vec<Object>>)]
    registries: Option<Vec<Value>>,
    /// `{resourceId, clientId, objectId}`: the values for `--assign-kubelet-identity`.
    #[schema(value_type = Option<Object>)]
    kubelet_identity: Option<Value>,
    /// The Managed Identity Operator grant the cluster's control-plane identity needs: `{roleDefinitionId, scope, assignee}`.
    #[schema(value_type = Option<Object>)]
    managed_identity_operator: Option<Value>,
    /// Next steps, for people.
    notes: Option<Vec<String>>,
}

/// Declares a documentation-only component that is a choice between other components.
macro_rules! choice_component {
    ($ty:ident, $name:literal, $description:literal, $builder:ident, [$($member:ty),+]) => {
        pub struct $ty;

        impl utoipa::PartialSchema for $ty {
            fn schema() -> RefOr<Schema> {
                utoipa::openapi::schema::$builder::new()
                    $(.item(utoipa::openapi::Ref::from_schema_name(<$member as utoipa::ToSchema>::name())))+
                    .description(Some($description))
                    .into()
            }
        }

        impl utoipa::ToSchema for $ty {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed($name)
            }
            fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
                $(
                    schemas.push((
                        <$member as utoipa::ToSchema>::name().into_owned(),
                        <$member as utoipa::PartialSchema>::schema(),
                    ));
                    <$member as utoipa::ToSchema>::schemas(schemas);
                )+
            }
        }
    };
}

choice_component!(
    JobInputSchema,
    "JobInput",
    "The job's arguments, by kind: attach and detach take a pair, check a pair and a probe, import a source and a target, verify a window, kubelet-identity an identity, batch-expand a batch.",
    AnyOfBuilder,
    [
        PairJobInput,
        CheckJobInput,
        ImportJobInput,
        super::verify_schemas::VerifyJobInput,
        KubeletIdentityJobInput,
        BatchExpandJobInput
    ]
);

choice_component!(
    JobResultSchema,
    "JobResult",
    "The job's result, by kind (fields not listed may be added).",
    AnyOfBuilder,
    [
        AttachResult,
        DetachResult,
        super::job_schemas::CheckResult,
        super::job_schemas::ImportResult,
        super::verify_schemas::VerifyResult,
        KubeletIdentityResult,
        BatchExpandResult
    ]
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_kinds_are_named_as_the_queue_names_them() {
        for k in JobKind::ALL {
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
    }
}
