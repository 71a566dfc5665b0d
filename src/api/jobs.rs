//! `/v1/jobs`: read jobs, their timelines, and cancel them; plus `submit`, which every POST
//! that starts work uses (202 + Operation-Location, dedup, Idempotency-Key).
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::AppState;
use super::error::{ApiError, ApiResult, ErrorResponse};
use super::extract::{IdempotencyKey, QueryParams, parse_job_id};
use super::idempotency::{self, Claim};
use crate::queue::{CancelOutcome, ErrorRecord, Job, JobEvent, JobFilter, JobState, NewJob, WaitRecord};

/// A job: what was asked, where it stands, what happened.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobView {
    pub id: Uuid,
    /// The job kind, e.g. `attach` or `detach`.
    pub kind: String,
    /// Azure REST API guidelines status: NotStarted, Running, Succeeded, Failed, Canceled.
    pub status: &'static str,
    /// The queue's detailed state (see the README's state machine).
    pub state: JobState,
    /// What the job acts on; jobs of one target run one at a time, in order.
    pub target: Option<String>,
    /// The job's arguments, as accepted.
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
    pub wait: Option<WaitRecord>,
    pub cancel_requested: bool,
    /// The job's result once it succeeded.
    pub result: Option<Value>,
    /// Why the job failed (when `status` is Failed).
    pub error: Option<ErrorRecord>,
    /// The most recent error, also while the job is still retrying.
    pub last_error: Option<ErrorRecord>,
    /// Error history, oldest first (up to 20; the full timeline is at `/v1/jobs/{id}/events`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<ErrorRecord>>,
}

impl JobView {
    pub fn from_job(j: Job, errors: Option<Vec<ErrorRecord>>) -> Self {
        let last_error = j.last_error.map(|e| e.0);
        JobView {
            id: j.id,
            kind: j.kind,
            status: j.state.azure_status(),
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

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only jobs of this kind.
    pub kind: Option<String>,
    /// Only jobs in this state (queued, running, waiting, retrying, succeeded, failed, cancelled).
    pub state: Option<String>,
    /// Only jobs of this target (as shown in a job's `target`).
    pub target: Option<String>,
    /// Page size, 1 to 200 (default 50).
    pub limit: Option<i64>,
    /// Continuation token from `nextLink`.
    pub cursor: Option<String>,
}

pub async fn load_view(state: &AppState, id: Uuid) -> ApiResult<JobView> {
    let job = state.store.get(id).await?.ok_or_else(|| job_not_found(id))?;
    let errors = state.store.errors(id, 20).await?;
    Ok(JobView::from_job(job, Some(errors)))
}

fn job_not_found(id: Uuid) -> ApiError {
    ApiError::not_found(
        "JobNotFound",
        format!("no job with id {id} (finished jobs are kept 7 days, failed 30)"),
    )
    .with_target("id")
}

/// Get a job.
#[utoipa::path(get, path = "/v1/jobs/{id}", tag = "jobs",
    params(("id" = String, Path, description = "Job id (UUID)")),
    responses((status = 200, body = JobView), (status = "4XX", body = ErrorResponse)))]
pub async fn get_job(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<JobView>> {
    Ok(Json(load_view(&state, parse_job_id(&id)?).await?))
}

/// List jobs, newest first.
#[utoipa::path(get, path = "/v1/jobs", tag = "jobs", params(ListParams),
    responses((status = 200, body = JobList), (status = "4XX", body = ErrorResponse)))]
pub async fn list_jobs(
    State(state): State<AppState>,
    QueryParams(p): QueryParams<ListParams>,
) -> ApiResult<Json<JobList>> {
    let limit = p.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(
            ApiError::bad_request("InvalidQueryParameter", "limit must be between 1 and 200").with_target("limit"),
        );
    }
    let job_state = p
        .state
        .as_deref()
        .map(str::parse::<JobState>)
        .transpose()
        .map_err(|m| ApiError::bad_request("InvalidQueryParameter", m).with_target("state"))?;
    let before_seq = p
        .cursor
        .as_deref()
        .map(|c| c.parse::<i64>().ok().filter(|n| *n > 0))
        .map(|o| {
            o.ok_or_else(|| {
                ApiError::bad_request(
                    "InvalidQueryParameter",
                    "cursor is not one this service issued; use nextLink as given",
                )
                .with_target("cursor")
            })
        })
        .transpose()?;
    let filter = JobFilter {
        kind: p.kind.clone(),
        state: job_state,
        target_key: p.target.clone(),
        before_seq,
        limit: limit + 1,
    };
    let mut jobs = state.store.list(&filter).await?;
    let next_link = (jobs.len() as i64 > limit).then(|| {
        jobs.truncate(limit as usize);
        let last = jobs.last().map(|j| j.seq).unwrap_or_default();
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        if let Some(k) = &p.kind {
            q.append_pair("kind", k);
        }
        if let Some(s) = &p.state {
            q.append_pair("state", s);
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
    params(("id" = String, Path, description = "Job id (UUID)")),
    responses((status = 200, body = EventList), (status = "4XX", body = ErrorResponse)))]
pub async fn job_events(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<EventList>> {
    let id = parse_job_id(&id)?;
    let events = state.store.events(id).await?.ok_or_else(|| job_not_found(id))?;
    Ok(Json(EventList {
        value: events.into_iter().map(EventView::from).collect(),
    }))
}

/// Cancel a job. A queued or waiting job is cancelled at once (200); a running one is told to
/// stop and ends `cancelled` (202). Cancelling a cancelled job is a no-op (200).
#[utoipa::path(post, path = "/v1/jobs/{id}/cancel", tag = "jobs",
    params(("id" = String, Path, description = "Job id (UUID)"),
           ("Idempotency-Key" = Option<String>, Header, description = "Makes the request safely repeatable")),
    responses((status = 200, body = JobView), (status = 202, body = JobView),
              (status = 409, body = ErrorResponse, description = "The job already succeeded or failed"),
              (status = "4XX", body = ErrorResponse)))]
pub async fn cancel_job(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    IdempotencyKey(key): IdempotencyKey,
) -> ApiResult<Response> {
    let id = parse_job_id(&raw)?;
    let scope = "POST /v1/jobs/{id}/cancel";
    if let Some(key) = &key {
        let mut tx = state.pool.begin().await?;
        let hash = idempotency::request_hash(&format!("/v1/jobs/{id}/cancel"), b"");
        if let Claim::Replay { status, job_id } = idempotency::claim(&mut tx, scope, key, &hash).await? {
            tx.commit().await?;
            return job_response(&state, status, job_id).await;
        }
        let status = cancel_status(&state, id).await?;
        idempotency::remember(&mut tx, scope, key, status, id).await?;
        tx.commit().await?;
        return job_response(&state, status, id).await;
    }
    let status = cancel_status(&state, id).await?;
    job_response(&state, status, id).await
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
    let view = load_view(state, id).await?;
    let mut res = (status, Json(view)).into_response();
    let loc = HeaderValue::from_str(&format!("/v1/jobs/{id}")).expect("a UUID path is a valid header");
    res.headers_mut().insert("operation-location", loc.clone());
    if status == StatusCode::ACCEPTED {
        res.headers_mut().insert(header::LOCATION, loc);
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    Ok(res)
}

/// Enqueue a job for a POST: 202 for a new job, 200 when an identical unfinished job was found
/// or the Idempotency-Key was seen before. Job and idempotency record commit together.
pub async fn submit(
    state: &AppState,
    scope: &str,
    path: &str,
    key: Option<String>,
    raw_body: &[u8],
    new: NewJob,
) -> ApiResult<Response> {
    let enq = match &key {
        // One round trip: the enqueue is its own transaction.
        None => state.store.enqueue_one(&new).await?,
        // The job and the idempotency record commit together.
        Some(key) => {
            let mut tx = state.pool.begin().await?;
            let hash = idempotency::request_hash(path, raw_body);
            if let Claim::Replay { status, job_id } = idempotency::claim(&mut tx, scope, key, &hash).await? {
                tx.commit().await?;
                return job_response(state, status, job_id).await;
            }
            let enq = state.store.enqueue(&mut tx, &new).await?;
            idempotency::remember(&mut tx, scope, key, submit_status(enq.deduplicated), enq.job.id).await?;
            tx.commit().await?;
            enq
        }
    };
    let status = submit_status(enq.deduplicated);
    if enq.deduplicated {
        metrics::counter!("acr_attach_jobs_deduplicated_total", "kind" => new.kind.clone()).increment(1);
    } else {
        metrics::counter!("acr_attach_jobs_enqueued_total", "kind" => new.kind.clone()).increment(1);
    }
    job_response(state, status, enq.job.id).await
}

fn submit_status(deduplicated: bool) -> StatusCode {
    if deduplicated {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    }
}
