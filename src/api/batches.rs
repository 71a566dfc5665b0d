//! `/v1/batches`: many attaches or detaches in one request. The handler validates everything,
//! asks the policy about every listed item (all or nothing: one denied item refuses the batch)
//! or about every scope of a selection, and stores the batch with its `batch-expand` job in one
//! transaction; the job reads what the items share once and enqueues each item as the ordinary
//! attach or detach job (see `crate::ops::batch`).
use axum::Json;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::HashMap;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::AppState;
use super::access::Access;
use super::auth::Caller;
use super::batch_request::BatchBody;
use super::error::{ApiError, ApiResult, ErrorBody, ErrorResponse};
use super::extract::{
    ClusterIdSchema, IdempotencyKey, JsonBody, QueryParams, RegistryRefSchema, parse_cursor, parse_limit,
};
use super::idempotency::Key;
use super::job_schemas::ErrorRecordSchema;
use super::policy::{Action, Ask, Decision, PolicyHandle};
use crate::audit::AuditStore;
use crate::batches::{Batch, BatchStore, NewBatch, Tally};
use crate::domain::{ClusterId, RegistryRef};
use crate::ops::batch::{BatchAction, BatchExpandArgs, ItemDecision, PairAuthorizer};
use crate::queue::{CancelOutcome, ErrorRecord, Job, JobState};

/// Largest body `POST /v1/batches` accepts (5,000 cluster ids fit), whatever
/// ACR_ATTACH_MAX_BODY_BYTES says for the other requests.
pub const BATCH_MAX_BODY_BYTES: usize = 1024 * 1024;

/// Denied items named in a 403 (the audit trail has every one).
const DENIED_SHOWN: usize = 20;

fn action_of(a: BatchAction) -> Action {
    match a {
        BatchAction::Attach => Action::Attach,
        BatchAction::Detach => Action::Detach,
    }
}

/// The policy as the batch expansion asks it: the same `Ask::Pair` as a single attach or
/// detach, for the caller recorded in the batch.
impl PairAuthorizer for PolicyHandle {
    fn authorize(
        &self,
        requester: &Value,
        action: BatchAction,
        cluster: &ClusterId,
        registry: &RegistryRef,
    ) -> ItemDecision {
        let Ok(caller) = serde_json::from_value::<Caller>(requester.clone()) else {
            return ItemDecision {
                allowed: false,
                rule: None,
                reason: "the batch's caller could not be read back; nothing is allowed for it".into(),
            };
        };
        let cluster = cluster.to_string();
        let ask = Ask::Pair {
            action: action_of(action),
            cluster: &cluster,
            registry,
            group: None,
        };
        let d = self.decide(&caller, &ask);
        ItemDecision {
            allowed: d.allowed,
            rule: d.rule,
            reason: d.reason,
        }
    }
}

/// Items by the state they show.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct BatchCounts {
    /// Not started: waiting for the batch's expansion, or queued.
    pub queued: i64,
    pub running: i64,
    /// Waiting for Azure to catch up (eventual consistency, ARM's quota).
    pub waiting: i64,
    /// Failed transiently; retried.
    pub retrying: i64,
    pub succeeded: i64,
    pub failed: i64,
    pub cancelled: i64,
    /// Refused by the authorisation policy when the batch was expanded; never enqueued.
    pub denied: i64,
    /// Its job was deleted by retention.
    pub expired: i64,
}

/// A batch: what was asked, and where its items stand.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BatchView {
    pub id: Uuid,
    /// `attach` or `detach`.
    pub action: String,
    /// Azure REST API guidelines status: NotStarted, Running, Succeeded, Failed (an item failed
    /// or was denied, or the batch could not be expanded), Canceled.
    pub status: &'static str,
    /// The request as accepted (ids in canonical form): `registry` with `listed` clusters or a
    /// `select`ion, or `cluster` with `listed` registries.
    #[schema(value_type = Object)]
    pub input: Value,
    /// Items in total (a selection's are known once it has run).
    pub total: i64,
    pub counts: BatchCounts,
    /// Finished items / total, 0 to 1.
    pub progress: f64,
    pub created_at: DateTime<Utc>,
    /// When the last item finished (status Succeeded, Failed or Canceled).
    pub finished_at: Option<DateTime<Utc>>,
    pub cancel_requested: bool,
    /// The `batch-expand` job that enqueues the items (its timeline shows the shared reads).
    pub expand_job_id: Uuid,
    /// Why the batch could not be expanded (its selection matched too many clusters, or the
    /// registry or cluster all items share could not be read).
    #[schema(value_type = Option<ErrorRecordSchema>)]
    pub error: Option<ErrorRecord>,
    /// The items, paged.
    pub items_link: String,
}

/// One item of a batch.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BatchItemView {
    /// The item's place in the batch (1-based).
    pub seq: i32,
    #[schema(value_type = ClusterIdSchema)]
    pub cluster: String,
    #[schema(value_type = RegistryRefSchema)]
    pub registry: String,
    /// pending (not enqueued yet), a job state (queued, running, waiting, retrying, succeeded,
    /// failed, cancelled), denied, or expired (its job was deleted by retention).
    pub state: String,
    /// The attach or detach job (absent for items that were never enqueued).
    pub job_id: Option<Uuid>,
    /// False when an identical unfinished job was reused (it belongs to other requests too, and
    /// cancelling the batch leaves it alone).
    pub created_job: Option<bool>,
    /// The last error's code (a denied item: `Forbidden`).
    pub error_code: Option<String>,
    pub error_message: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BatchItemList {
    pub value: Vec<BatchItemView>,
    /// The next page, when there is one.
    pub next_link: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ItemParams {
    /// Page size, 1 to 500 (default 100).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 500, default = 100)]
    pub limit: Option<String>,
    /// Continuation token from `nextLink`.
    #[param(pattern = "^[1-9][0-9]{0,17}$")]
    pub cursor: Option<String>,
}

/// A page of batches, newest first.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({
    "value": [{
        "id": "5b3c1f0e-8d2a-4c6b-9e7f-0a1b2c3d4e5f",
        "action": "attach",
        "status": "Running",
        "input": { "registry": "acrdemo", "listed": 2 },
        "total": 2,
        "counts": { "queued": 0, "running": 1, "waiting": 0, "retrying": 0, "succeeded": 1,
                    "failed": 0, "cancelled": 0, "denied": 0, "expired": 0 },
        "progress": 0.5,
        "createdAt": "2026-12-02T09:30:00Z",
        "finishedAt": null,
        "cancelRequested": false,
        "expandJobId": "9c8b7a6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
        "error": null,
        "itemsLink": "/v1/batches/5b3c1f0e-8d2a-4c6b-9e7f-0a1b2c3d4e5f/items"
    }],
    "nextLink": "/v1/batches?limit=1&cursor=41"
}))]
pub struct BatchList {
    pub value: Vec<BatchView>,
    /// The next page, when there is one.
    pub next_link: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BatchListParams {
    /// Page size, 1 to 200 (default 50).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 200, default = 50)]
    pub limit: Option<String>,
    /// Continuation token from `nextLink`.
    #[param(pattern = "^[1-9][0-9]{0,17}$")]
    pub cursor: Option<String>,
}

/// The batch id of a `/v1/batches/{id}...` path: a 400 for anything but a UUID.
pub struct BatchIdPath(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for BatchIdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let raw = Path::<String>::from_request_parts(parts, state)
            .await
            .map(|p| p.0)
            .unwrap_or_default();
        super::extract::parse_hyphenated(&raw).map(BatchIdPath).ok_or_else(|| {
            ApiError::bad_request(
                "InvalidBatchId",
                format!("{} is not a batch id; batch ids are UUIDs", super::error::quote(&raw)),
            )
            .with_target("id")
        })
    }
}

fn batch_not_found(id: Uuid) -> ApiError {
    ApiError::not_found(
        "BatchNotFound",
        format!("no batch with id {id} visible to this caller (finished batches are deleted after their retention)"),
    )
    .with_target("id")
}

/// The batch, if this caller may see it: its own, or any with `readAllJobs` (as jobs).
async fn visible_batch(state: &AppState, access: &Access, id: Uuid) -> ApiResult<Batch> {
    let every = access.job_reader(state)?;
    match BatchStore::new(state.pool.clone()).get(id).await? {
        Some(b) if every || b.requested_by == access.caller.principal() => Ok(b),
        _ => Err(batch_not_found(id)),
    }
}

async fn view(state: &AppState, batch: &Batch) -> ApiResult<BatchView> {
    let tally = BatchStore::new(state.pool.clone()).tally(batch.id).await?;
    let expand = state.store.get(batch.expand_job_id).await?;
    Ok(build_view(batch, &tally, expand))
}

/// The batch as the API shows it, from its items' tally and its `batch-expand` job (`None`:
/// deleted by retention).
fn build_view(batch: &Batch, tally: &Tally, expand: Option<Job>) -> BatchView {
    let mut counts = BatchCounts::default();
    for (s, n) in &tally.by_state {
        let slot = match s.as_str() {
            "pending" | "queued" => &mut counts.queued,
            "running" => &mut counts.running,
            "waiting" => &mut counts.waiting,
            "retrying" => &mut counts.retrying,
            "succeeded" => &mut counts.succeeded,
            "failed" => &mut counts.failed,
            "cancelled" => &mut counts.cancelled,
            "denied" => &mut counts.denied,
            _ => &mut counts.expired,
        };
        *slot += n;
    }
    let total: i64 = tally.by_state.values().sum();
    let unfinished = counts.queued + counts.running + counts.waiting + counts.retrying;
    let finished = total - unfinished;
    let expanded = expand.as_ref().is_none_or(|j| j.state.is_terminal());
    let expansion_failed = expand.as_ref().is_some_and(|j| j.state == JobState::Failed);
    let started = finished + counts.running + counts.waiting + counts.retrying > 0
        || expand.as_ref().is_some_and(|j| j.started_at.is_some());
    let cancelled = batch.cancel_requested_at.is_some();
    let status = if !expanded || unfinished > 0 {
        if started { "Running" } else { "NotStarted" }
    } else if cancelled
        && (counts.cancelled > 0 || total == 0 || expand.as_ref().is_some_and(|j| j.state == JobState::Cancelled))
    {
        "Canceled"
    } else if expansion_failed || counts.failed + counts.denied > 0 {
        "Failed"
    } else if counts.cancelled > 0 {
        "Canceled"
    } else {
        "Succeeded"
    };
    let done = status != "Running" && status != "NotStarted";
    let progress = if total > 0 {
        finished as f64 / total as f64
    } else if done {
        1.0
    } else {
        0.0
    };
    let finished_at = done
        .then(|| tally.last_finished_at.max(expand.as_ref().and_then(|j| j.finalized_at)))
        .flatten();
    BatchView {
        id: batch.id,
        action: batch.action.clone(),
        status,
        input: batch.request.clone(),
        total,
        counts,
        progress,
        created_at: batch.created_at,
        finished_at,
        cancel_requested: cancelled,
        expand_job_id: batch.expand_job_id,
        error: expand
            .filter(|j| j.state == JobState::Failed)
            .and_then(|j| j.last_error.map(|e| e.0)),
        items_link: format!("/v1/batches/{}/items", batch.id),
    }
}

/// The answer of a POST about a batch: the batch, and where to poll it.
async fn batch_response(state: &AppState, status: StatusCode, id: Uuid) -> ApiResult<Response> {
    let batch = BatchStore::new(state.pool.clone())
        .get(id)
        .await?
        .ok_or_else(|| batch_not_found(id))?;
    let mut res = (status, Json(view(state, &batch).await?)).into_response();
    let loc = HeaderValue::from_str(&format!("/v1/batches/{id}")).expect("a UUID path is a valid header");
    res.headers_mut().insert("operation-location", loc.clone());
    if status == StatusCode::ACCEPTED {
        res.headers_mut().insert(header::LOCATION, loc);
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    Ok(res)
}

/// Start a batch of attaches or detaches: one registry and many clusters (listed, or selected
/// by subscription, resource group and tags through Azure Resource Graph), or one cluster and
/// many registries. Every listed item is authorised now (one denied item refuses the whole
/// batch, 403, and nothing is enqueued); a selection's scopes are authorised now and each
/// selected cluster when the batch runs (refused ones become `denied` items). Each item runs as
/// the ordinary attach or detach job (an identical unfinished job is reused), owned by the
/// caller; the registry (or the cluster) all items share is read once for the whole batch.
#[utoipa::path(post, path = "/v1/batches", tag = "batches", request_body = BatchBody,
    params(("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[ -~]*[!-~][ -~]*$",
        description = "Makes the request safely repeatable: 1 to 255 printable ASCII characters (a UUID is a good choice)")),
    responses(
        (status = 202, body = BatchView, description = "Accepted: poll the batch at Operation-Location (a repeated Idempotency-Key gets the first answer again)"),
        (status = 403, body = ErrorResponse, description = "The policy does not allow some items (listed in details) or some selected scope: nothing was enqueued"),
        (status = 413, body = ErrorResponse, description = "The body is larger than 1 MiB"),
        (status = 415, body = ErrorResponse, description = "The body is not sent as Content-Type: application/json"),
        (status = 422, body = ErrorResponse, description = "The Idempotency-Key was already used for a different request"),
        (status = "4XX", body = ErrorResponse, description = "Refused: the error says why and about what"),
        (status = "5XX", body = ErrorResponse, description = "Unavailable for now (503: the database or the Entra keys), or an internal error (500)")))]
pub async fn create_batch(
    State(state): State<AppState>,
    access: Access,
    IdempotencyKey(key): IdempotencyKey,
    body: JsonBody<BatchBody>,
) -> ApiResult<Response> {
    let action = action_of(BatchAction::from(body.value.action));
    let plan = match body.value.plan() {
        Ok(p) => p,
        Err(e) => return Err(access.refuse(&state, action, e).await),
    };
    let decision = authorize(&state, &access, action, &plan).await?;
    let principal = access.caller.principal();
    let key = Key::new(&principal, "POST /v1/batches", key, "/v1/batches", &body.raw);
    let mut tx = state.pool.begin().await?;
    if let Some(key) = &key
        && let Some((status, id)) = key.replay(&mut tx).await?
    {
        // A repeat gets the first answer: same status, same batch.
        tx.commit().await?;
        return batch_response(&state, status, id).await;
    }
    let id = Uuid::new_v4();
    let expand = state.ops.batch_expand_job(&BatchExpandArgs { batch: id });
    let enq = state.store.enqueue(&mut tx, &expand).await?;
    state.store.add_requester(&mut tx, enq.job.id, &principal).await?;
    let request = serde_json::to_value(&plan.request).map_err(|_| ApiError::internal())?;
    let items: Vec<(String, String)> = plan
        .items
        .iter()
        .map(|(_, c, r)| (c.to_string(), r.to_string()))
        .collect();
    BatchStore::create(
        &mut tx,
        &NewBatch {
            id,
            action: plan.action.as_str(),
            request: &request,
            requested_by: &principal,
            requester: &serde_json::to_value(&access.caller).map_err(|_| ApiError::internal())?,
            request_id: access.request_id(),
            expand_job_id: enq.job.id,
        },
        &items,
    )
    .await?;
    if let Some(key) = &key {
        key.remember(&mut tx, StatusCode::ACCEPTED, id).await?;
    }
    let mut resources = json!({ "batch": id, "items": items.len(), "job": enq.job.id });
    for field in ["registry", "cluster", "select"] {
        if let Some(v) = request.get(field) {
            resources[field] = v.clone();
        }
    }
    let entry = access.entry(
        action,
        &resources,
        &decision,
        StatusCode::ACCEPTED,
        Some(enq.job.id),
        &principal,
    );
    AuditStore::record(&mut *tx, &entry).await?;
    tx.commit().await?;
    metrics::counter!("acr_attach_jobs_enqueued_total", "kind" => expand.kind.clone()).increment(1);
    batch_response(&state, StatusCode::ACCEPTED, id).await
}

/// Every listed item (as a single request would be asked), or every scope a selection reaches,
/// must be allowed; otherwise each refusal is audited and the batch is refused (403), naming them.
async fn authorize(
    state: &AppState,
    access: &Access,
    action: Action,
    plan: &super::batch_request::Plan,
) -> ApiResult<Decision> {
    let mut denied: Vec<(String, Value, Decision)> = Vec::new();
    let mut rules: Vec<String> = Vec::new();
    let mut asked = 0;
    let mut note = |target: String, resources: Value, d: Decision| {
        asked += 1;
        if !d.allowed {
            denied.push((target, resources, d));
        } else if let Some(r) = d.rule
            && !rules.contains(&r)
        {
            rules.push(r);
        }
    };
    for (target, cluster, registry) in &plan.items {
        let cluster = cluster.to_string();
        let ask = Ask::Pair {
            action,
            cluster: &cluster,
            registry,
            group: None,
        };
        let resources = json!({ "cluster": cluster, "registry": registry.to_string() });
        note(target.clone(), resources, state.policy.decide(&access.caller, &ask));
    }
    if let (Some(select), Some(registry)) = (&plan.request.select, &plan.request.registry) {
        for scope in select.scopes() {
            let ask = Ask::Selection {
                action,
                scope: &scope,
                registry,
            };
            let resources = json!({ "select": scope, "registry": registry.to_string() });
            note("select".into(), resources, state.policy.decide(&access.caller, &ask));
        }
    }
    if denied.is_empty() {
        let what = if plan.request.select.is_some() {
            "every scope of the selection is allowed; each selected cluster is authorised when the batch runs"
        } else {
            "every item is allowed (and authorised again when the batch runs)"
        };
        return Ok(Decision {
            allowed: true,
            rule: (!rules.is_empty()).then(|| rules.join(", ")),
            reason: format!("{what}: {asked} checked"),
        });
    }
    for (_, resources, d) in &denied {
        access
            .record_decision(state, action, resources, d, StatusCode::FORBIDDEN)
            .await?;
    }
    let details = denied
        .iter()
        .take(DENIED_SHOWN)
        .map(|(target, _, d)| ErrorBody {
            code: "Forbidden".into(),
            message: d.reason.clone(),
            target: Some(target.clone()),
            details: Vec::new(),
        })
        .collect();
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "Forbidden",
        format!(
            "the authorisation policy does not allow {} of the {asked} {} (details name up to {DENIED_SHOWN}); nothing was enqueued",
            denied.len(),
            if plan.request.select.is_some() { "scopes or items" } else { "items" }
        ),
    )
    .with_details(details))
}

/// Get a batch: its status, counts by state and progress.
#[utoipa::path(get, path = "/v1/batches/{id}", tag = "batches",
    params(("id" = Uuid, Path, description = "Batch id (UUID)")),
    responses((status = 200, body = BatchView, description = "The batch"), (status = "4XX", body = ErrorResponse, description = "Refused: the error says why and about what"),
        (status = "5XX", body = ErrorResponse, description = "Unavailable for now (503: the database or the Entra keys), or an internal error (500)")))]
pub async fn get_batch(
    State(state): State<AppState>,
    access: Access,
    BatchIdPath(id): BatchIdPath,
) -> ApiResult<Json<BatchView>> {
    let batch = visible_batch(&state, &access, id).await?;
    Ok(Json(view(&state, &batch).await?))
}

/// List batches, newest first: the caller's own (every caller's with `readAllJobs`), each as
/// `GET /v1/batches/{id}` shows it, paged by `nextLink`.
#[utoipa::path(get, path = "/v1/batches", tag = "batches", params(BatchListParams),
    responses((status = 200, body = BatchList, description = "A page of batches"), (status = "4XX", body = ErrorResponse, description = "Refused: the error says why and about what"),
        (status = "5XX", body = ErrorResponse, description = "Unavailable for now (503: the database or the Entra keys), or an internal error (500)")))]
pub async fn list_batches(
    State(state): State<AppState>,
    access: Access,
    QueryParams(p): QueryParams<BatchListParams>,
) -> ApiResult<Json<BatchList>> {
    let every = access.job_reader(&state)?;
    let limit = parse_limit(p.limit.as_deref(), 50, 200)?;
    let before_seq = parse_cursor(p.cursor.as_deref())?;
    let requested_by = (!every).then(|| access.caller.principal());
    let store = BatchStore::new(state.pool.clone());
    let mut batches = store.list(requested_by.as_deref(), before_seq, limit + 1).await?;
    let next_link = (batches.len() as i64 > limit).then(|| {
        batches.truncate(limit as usize);
        let last = batches.last().map(|b| b.seq).unwrap_or_default();
        format!("/v1/batches?limit={limit}&cursor={last}")
    });
    // Three queries for the page, not two per batch.
    let ids: Vec<Uuid> = batches.iter().map(|b| b.id).collect();
    let tallies = store.tallies(&ids).await?;
    let expand_ids: Vec<Uuid> = batches.iter().map(|b| b.expand_job_id).collect();
    let mut expands: HashMap<Uuid, Job> = state
        .store
        .get_many(&expand_ids)
        .await?
        .into_iter()
        .map(|j| (j.id, j))
        .collect();
    let none = Tally::default();
    Ok(Json(BatchList {
        value: batches
            .iter()
            .map(|b| build_view(b, tallies.get(&b.id).unwrap_or(&none), expands.remove(&b.expand_job_id)))
            .collect(),
        next_link,
    }))
}

/// A batch's items in order, each with its job and state, paged by `nextLink`.
#[utoipa::path(get, path = "/v1/batches/{id}/items", tag = "batches",
    params(("id" = Uuid, Path, description = "Batch id (UUID)"), ItemParams),
    responses((status = 200, body = BatchItemList, description = "A page of items"), (status = "4XX", body = ErrorResponse, description = "Refused: the error says why and about what"),
        (status = "5XX", body = ErrorResponse, description = "Unavailable for now (503: the database or the Entra keys), or an internal error (500)")))]
pub async fn batch_items(
    State(state): State<AppState>,
    access: Access,
    BatchIdPath(id): BatchIdPath,
    QueryParams(p): QueryParams<ItemParams>,
) -> ApiResult<Json<BatchItemList>> {
    let batch = visible_batch(&state, &access, id).await?;
    let limit = parse_limit(p.limit.as_deref(), 100, 500)?;
    let after = parse_cursor(p.cursor.as_deref())?;
    let mut rows = BatchStore::new(state.pool.clone())
        .items(batch.id, after, limit + 1)
        .await?;
    let next_link = (rows.len() as i64 > limit).then(|| {
        rows.truncate(limit as usize);
        let last = rows.last().map(|r| r.seq).unwrap_or_default();
        format!("/v1/batches/{id}/items?limit={limit}&cursor={last}")
    });
    Ok(Json(BatchItemList {
        value: rows
            .into_iter()
            .map(|r| BatchItemView {
                seq: r.seq,
                cluster: r.cluster_id,
                registry: r.registry,
                state: r.state,
                job_id: r.job_id,
                created_job: r.created_job,
                error_code: r.error_code,
                error_message: r.error_message,
            })
            .collect(),
        next_link,
    }))
}

/// Cancel a batch: items not enqueued yet never will be, and every unfinished job the batch
/// created is cancelled (queued and waiting ones at once, running ones are told to stop). Jobs
/// the batch reused (an identical job another request had already started) are left alone.
/// 200 when everything stopped at once (or the batch was cancelled before), 202 when running
/// jobs were told to stop, 409 when the batch had already finished.
#[utoipa::path(post, path = "/v1/batches/{id}/cancel", tag = "batches",
    params(("id" = Uuid, Path, description = "Batch id (UUID)"),
           ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[ -~]*[!-~][ -~]*$",
        description = "Makes the request safely repeatable: 1 to 255 printable ASCII characters (a UUID is a good choice)")),
    responses((status = 200, body = BatchView, description = "Cancelled (or already cancelled)"),
              (status = 202, body = BatchView, description = "Running jobs were told to stop; poll the batch"),
              (status = 409, body = ErrorResponse, description = "The batch already finished"),
              (status = 422, body = ErrorResponse, description = "The Idempotency-Key was already used for a different request"),
              (status = "4XX", body = ErrorResponse, description = "Refused: the error says why and about what"),
        (status = "5XX", body = ErrorResponse, description = "Unavailable for now (503: the database or the Entra keys), or an internal error (500)")))]
pub async fn cancel_batch(
    State(state): State<AppState>,
    access: Access,
    BatchIdPath(id): BatchIdPath,
    IdempotencyKey(key): IdempotencyKey,
) -> ApiResult<Response> {
    let resources = json!({ "batch": id });
    let all = state.policy.decide(&access.caller, &Ask::Plain(Action::CancelAllJobs));
    let granted = if all.allowed {
        super::access::Granted {
            action: Action::Cancel,
            decision: all,
            resources: resources.clone(),
        }
    } else {
        let own = access
            .authorize(&state, &Ask::Plain(Action::Cancel), resources.clone())
            .await?;
        let mine = BatchStore::new(state.pool.clone())
            .get(id)
            .await?
            .is_some_and(|b| b.requested_by == access.caller.principal());
        if !mine {
            let err = batch_not_found(id);
            access.record_refusal(&state, Action::Cancel, &resources, &err).await?;
            return Err(err);
        }
        own
    };
    let batch = BatchStore::new(state.pool.clone())
        .get(id)
        .await?
        .ok_or_else(|| batch_not_found(id))?;
    let path = format!("/v1/batches/{id}/cancel");
    let status = match Key::new(
        &access.caller.principal(),
        "POST /v1/batches/{id}/cancel",
        key,
        &path,
        b"",
    ) {
        Some(key) => {
            let mut tx = state.pool.begin().await?;
            if let Some((status, id)) = key.replay(&mut tx).await? {
                tx.commit().await?;
                return batch_response(&state, status, id).await;
            }
            let status = cancel_status(&state, &batch).await?;
            key.remember(&mut tx, status, id).await?;
            tx.commit().await?;
            status
        }
        None => cancel_status(&state, &batch).await?,
    };
    access.record(&state, &granted, status, batch.expand_job_id).await?;
    batch_response(&state, status, id).await
}

async fn cancel_status(state: &AppState, batch: &Batch) -> ApiResult<StatusCode> {
    let before = view(state, batch).await?;
    if before.finished_at.is_some() && !before.cancel_requested {
        return Err(ApiError::conflict(
            "BatchAlreadyFinished",
            format!(
                "batch {} already finished ({}); only unfinished batches can be cancelled",
                batch.id, before.status
            ),
        ));
    }
    let jobs = BatchStore::new(state.pool.clone())
        .request_cancel(batch.id)
        .await?
        .ok_or_else(|| batch_not_found(batch.id))?;
    let mut stopping = false;
    for job in std::iter::once(batch.expand_job_id).chain(jobs) {
        if let Some(CancelOutcome::Requested(_)) = state.store.cancel(job).await? {
            stopping = true;
        }
    }
    Ok(if stopping { StatusCode::ACCEPTED } else { StatusCode::OK })
}
