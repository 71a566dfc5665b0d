//! `batch-expand`: turns a batch (`POST /v1/batches`) into ordinary attach or detach jobs.
//!
//! Steps (each resumable: items are rows, each enqueued at most once):
//! 1. select   – a selection runs its Resource Graph query once and stores the chosen clusters
//!    as items (with the kubelet identity ARG showed for provisioned clusters).
//! 2. shared   – what every item shares is read once: the registry (one registry, many
//!    clusters: its id, mode → pull role, login server) or the cluster's kubelet identity (one
//!    cluster, many registries). A read that fails for good fails the items (never enqueued);
//!    except that a detach from a cluster that is gone goes ahead (its items use the identity
//!    recorded at attach time).
//! 3. enqueue  – in chunks, each in one transaction that holds the batch row (so a cancel
//!    either sees the chunk's jobs or stops it): every item is authorised again by the policy
//!    for the batch's caller (denied items are recorded and audited, never enqueued), then
//!    enqueued as the normal attach/detach job (dedup and per-pair ordering as for single
//!    requests), owned by the caller, audited, with the shared reads as its initial checkpoint
//!    (trusted for [`super::resolve::HANDOVER_LIFETIME`], then read again by the item job).
//!
//! What was read is handed over only through checkpoints, never through job arguments: the
//! arguments are the caller's, and a caller must not be able to say what a registry's mode is.
use async_trait::async_trait;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Arc;
use uuid::Uuid;

use super::resolve::{self, Grantee, ResolvedRegistry, Step};
use super::waits::{Snapshot, Waits};
use super::{Ops, PairArgs};
use crate::audit::{AuditEntry, AuditStore};
use crate::azure::CallContext;
use crate::batches::{Batch, BatchStore, PendingItem};
use crate::domain::{ClusterId, RegistryRef};
use crate::queue::{BackgroundJob, ErrorClass, JobContext, JobError, JobStore, NewJob, Outcome, RetryPolicy};

pub mod selection;
pub use selection::Selection;

pub const BATCH_EXPAND: &str = "batch-expand";

/// Most items a batch may have, listed or selected.
pub const MAX_ITEMS: usize = 5_000;

/// Items enqueued per transaction: each enqueue holds a per-target advisory lock until commit,
/// and Postgres' lock table is finite.
const CHUNK: i64 = 200;

/// Attach or detach: what every item of a batch does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum BatchAction {
    Attach,
    Detach,
}

impl BatchAction {
    pub fn as_str(self) -> &'static str {
        match self {
            BatchAction::Attach => "attach",
            BatchAction::Detach => "detach",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "attach" => Some(BatchAction::Attach),
            "detach" => Some(BatchAction::Detach),
            _ => None,
        }
    }
}

/// What a batch asks, as stored in `batch.request` (ids in canonical form): one registry with
/// listed (`clusters`, kept as items) or selected clusters, or one cluster with listed registries.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<RegistryRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub select: Option<Selection>,
    /// How many items were listed (selections: 0 until selected).
    pub listed: usize,
}

/// The policy's answer for one item.
#[derive(Debug, Clone)]
pub struct ItemDecision {
    pub allowed: bool,
    pub rule: Option<String>,
    pub reason: String,
}

/// The authorisation policy as the expansion asks it: may the batch's caller (`requester`, as
/// recorded in the batch) do `action` on this pair, exactly as a single attach or detach would
/// ask? Implemented by the API's policy and handed in at start-up, so the decision stays in one
/// place and the job kinds do not depend on the HTTP layer. An implementation must deny what
/// it cannot decide (say, a requester it cannot read).
pub trait PairAuthorizer: Send + Sync + 'static {
    fn authorize(
        &self,
        requester: &Value,
        action: BatchAction,
        cluster: &ClusterId,
        registry: &RegistryRef,
    ) -> ItemDecision;
}

/// The arguments of a `batch-expand` job: the batch (everything else is in its row).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BatchExpandArgs {
    pub batch: Uuid,
}

impl BatchExpandArgs {
    /// One expansion per batch.
    pub fn target_key(&self) -> String {
        format!("batch:{}", self.batch)
    }
}

pub struct BatchExpand {
    pub ops: Arc<Ops>,
    pub batches: BatchStore,
    pub jobs: JobStore,
    pub policy: Arc<dyn PairAuthorizer>,
}

/// The shared reads, kept across attempts.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Progress {
    registry: Option<ResolvedRegistry>,
    grantee: Option<Grantee>,
    /// The shared read failed for good and the items were failed (or, for a detach from a
    /// cluster that is gone, go ahead without it).
    #[serde(default)]
    shared_done: bool,
    #[serde(default)]
    waits: Waits,
}

super::waits::snapshot_with_waits!(Progress);

/// What the item jobs start from (a subset of the attach and detach checkpoints).
#[derive(Serialize)]
struct Handover<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    registry: Option<&'a ResolvedRegistry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    grantee: Option<&'a Grantee>,
}

#[async_trait]
impl BackgroundJob for BatchExpand {
    const KIND: &'static str = BATCH_EXPAND;
    type Args = BatchExpandArgs;

    fn retry_policy(&self) -> RetryPolicy {
        self.ops.settings.retry_policy()
    }

    async fn run(&self, ctx: &JobContext, args: BatchExpandArgs) -> Result<Outcome, JobError> {
        super::with_calls(ctx, async |call| {
            self.expand(ctx, args.batch, &mut ctx.checkpoint(), call).await
        })
        .await
    }
}

fn database(e: sqlx::Error) -> JobError {
    JobError::transient(
        "DatabaseUnavailable",
        format!("the batch's tables could not be used: {e}"),
    )
}

impl BatchExpand {
    async fn expand(
        &self,
        ctx: &JobContext,
        id: Uuid,
        p: &mut Progress,
        call: &CallContext,
    ) -> Result<Outcome, JobError> {
        let ops = &*self.ops;
        let batch = self
            .batches
            .get(id)
            .await
            .map_err(database)?
            .ok_or_else(|| JobError::permanent("BatchNotFound", format!("batch {id} does not exist (any more)")))?;
        let request: BatchRequest = serde_json::from_value(batch.request.clone())
            .map_err(|e| JobError::permanent("InvalidBatch", format!("the batch's request does not parse: {e}")))?;
        let action = BatchAction::parse(&batch.action)
            .ok_or_else(|| JobError::permanent("InvalidBatch", format!("unknown action {}", batch.action)))?;
        let mut waits = std::mem::take(&mut p.waits);

        if let (Some(select), None, None) = (&request.select, batch.selected_at, batch.cancel_requested_at) {
            let rows = ops
                .azure
                .clusters_for_selection(call, &select.subscription_ids())
                .await
                .map_err(|e| {
                    super::failures::generic(
                        e,
                        "selecting clusters (Azure Resource Graph)",
                        &mut waits,
                        &ops.settings,
                        |w| p.snapshot(w),
                    )
                })?;
            let chosen = select.choose(rows, Utc::now());
            if chosen.len() > MAX_ITEMS {
                return Err(JobError::permanent(
                    "SelectionTooLarge",
                    format!(
                        "the selection matches {} clusters; a batch takes at most {MAX_ITEMS}: narrow it by resource group or tags, or split it",
                        chosen.len()
                    ),
                ));
            }
            let registry = request.registry.as_ref().map(|r| r.to_string()).unwrap_or_default();
            let items: Vec<(String, String, Option<Value>)> = chosen
                .into_iter()
                .map(|c| {
                    (
                        c.cluster.to_string(),
                        registry.clone(),
                        c.grantee.and_then(|g| serde_json::to_value(g).ok()),
                    )
                })
                .collect();
            self.batches.add_selection(id, &items).await.map_err(database)?;
        }

        if !p.shared_done && batch.cancel_requested_at.is_none() {
            match self.shared(ctx, id, call, &request, action, p, &mut waits).await? {
                Step::Done(()) => {}
                Step::Wait(outcome) => return Ok(outcome),
            }
        }

        let mut totals = json!({ "enqueued": 0, "deduplicated": 0, "denied": 0, "cancelled": 0 });
        loop {
            let items = self.batches.pending(id, CHUNK).await.map_err(database)?;
            if items.is_empty() {
                break;
            }
            self.enqueue_chunk(&batch, action, p, &items, &mut totals)
                .await
                .map_err(database)?;
        }
        Ok(Outcome::Succeeded(json!({ "batch": id, "items": totals })))
    }

    /// Reads what every item shares, once (see the module's step 2).
    #[allow(clippy::too_many_arguments)]
    async fn shared(
        &self,
        ctx: &JobContext,
        id: Uuid,
        call: &CallContext,
        request: &BatchRequest,
        action: BatchAction,
        p: &mut Progress,
        waits: &mut Waits,
    ) -> Result<Step<()>, JobError> {
        let ops = &*self.ops;
        let snapshot = |w: &Waits| p.snapshot(w);
        let read = if let Some(cluster) = &request.cluster {
            match resolve::grantee(ops, call, cluster, waits, snapshot).await {
                Ok(Step::Done(mut g)) => {
                    g.resolved_at = Some(Utc::now());
                    p.grantee = Some(g);
                    Ok(())
                }
                Ok(Step::Wait(outcome)) => return Ok(Step::Wait(outcome)),
                Err(e) => Err(e),
            }
        } else if let Some(registry) = &request.registry {
            match resolve::registry(ops, call, registry, waits, snapshot).await {
                Ok(mut r) => {
                    r.resolved_at = Some(Utc::now());
                    p.registry = Some(r);
                    Ok(())
                }
                Err(e) => Err(e),
            }
        } else {
            Ok(())
        };
        match read {
            Ok(()) => {}
            Err(e) if e.class != ErrorClass::Permanent => return Err(e),
            // A detach from a cluster that is gone: each item uses the identity recorded at attach.
            Err(e) if action == BatchAction::Detach && e.code == "ClusterNotFound" => {}
            Err(e) => {
                let error = json!({ "code": e.code, "message": e.message });
                let mut tx = self.batches_pool().begin().await.map_err(database)?;
                BatchStore::settle(&mut tx, id, None, "failed", Some(&error))
                    .await
                    .map_err(database)?;
                tx.commit().await.map_err(database)?;
                return Err(e);
            }
        }
        p.shared_done = true;
        p.waits = waits.clone();
        ctx.save_checkpoint(&*p).await?;
        Ok(Step::Done(()))
    }

    fn batches_pool(&self) -> &sqlx::PgPool {
        self.jobs.pool()
    }

    /// One transaction: the batch row locked against cancel, then each item authorised and
    /// either settled as denied or enqueued, owned and audited.
    async fn enqueue_chunk(
        &self,
        batch: &Batch,
        action: BatchAction,
        p: &Progress,
        items: &[PendingItem],
        totals: &mut Value,
    ) -> sqlx::Result<()> {
        let mut tx = self.batches_pool().begin().await?;
        if BatchStore::lock_cancelled(&mut tx, batch.id).await? {
            let error =
                json!({ "code": "BatchCancelled", "message": "the batch was cancelled before this item was enqueued" });
            let n = BatchStore::settle(&mut tx, batch.id, None, "cancelled", Some(&error)).await?;
            tx.commit().await?;
            bump(totals, "cancelled", n);
            return Ok(());
        }
        let path = format!("/v1/batches/{}", batch.id);
        for item in items {
            let (Ok(cluster), Ok(registry)) = (
                item.cluster_id.parse::<ClusterId>(),
                item.registry.parse::<RegistryRef>(),
            ) else {
                // Validated when stored; a row that does not parse is failed, not retried forever.
                let error =
                    json!({ "code": "InvalidBatchItem", "message": "the item's cluster or registry does not parse" });
                BatchStore::settle(&mut tx, batch.id, Some(&[item.seq]), "failed", Some(&error)).await?;
                continue;
            };
            let decision = self.policy.authorize(&batch.requester, action, &cluster, &registry);
            let mut resources = json!({ "cluster": item.cluster_id, "registry": item.registry, "batch": batch.id });
            let audit = |status: u16, job_id: Option<Uuid>, resources: Value| AuditEntry {
                request_id: batch.request_id.as_deref(),
                caller: &batch.requested_by,
                caller_info: batch.requester.clone(),
                action: action.as_str(),
                method: "JOB",
                path: &path,
                resources,
                allowed: decision.allowed,
                rule: decision.rule.as_deref(),
                reason: &decision.reason,
                status,
                job_id,
            };
            if !decision.allowed {
                let error = json!({ "code": "Forbidden", "message": format!("the authorisation policy does not allow this: {}", decision.reason) });
                BatchStore::settle(&mut tx, batch.id, Some(&[item.seq]), "denied", Some(&error)).await?;
                AuditStore::record(&mut *tx, &audit(403, None, resources)).await?;
                bump(totals, "denied", 1);
                continue;
            }
            let args = PairArgs {
                cluster,
                registry,
                group: None,
                remove_group_grant: false,
            };
            let job = self.item_job(action, &args, p, item);
            let enq = self.jobs.enqueue(&mut tx, &job).await?;
            self.jobs
                .add_requester(&mut tx, enq.job.id, &batch.requested_by)
                .await?;
            BatchStore::enqueued(&mut tx, batch.id, item.seq, enq.job.id, !enq.deduplicated).await?;
            resources["job"] = json!(enq.job.id);
            let status = if enq.deduplicated { 200 } else { 202 };
            AuditStore::record(&mut *tx, &audit(status, Some(enq.job.id), resources)).await?;
            let (counter, total) = if enq.deduplicated {
                ("acr_attach_jobs_deduplicated_total", "deduplicated")
            } else {
                ("acr_attach_jobs_enqueued_total", "enqueued")
            };
            metrics::counter!(counter, "kind" => job.kind.clone()).increment(1);
            bump(totals, total, 1);
        }
        tx.commit().await
    }

    /// The item's attach or detach job, as a single request makes it, starting from the shared
    /// reads (and, for a selected cluster, the kubelet identity Resource Graph showed).
    fn item_job(&self, action: BatchAction, args: &PairArgs, p: &Progress, item: &PendingItem) -> NewJob {
        let job = match action {
            BatchAction::Attach => self.ops.settings.attach_job(args),
            BatchAction::Detach => self.ops.settings.detach_job(args),
        };
        let selected: Option<Grantee> = item.grantee.clone().and_then(|g| serde_json::from_value(g).ok());
        let handover = Handover {
            registry: p.registry.as_ref(),
            grantee: p.grantee.as_ref().or(selected.as_ref()),
        };
        if handover.registry.is_none() && handover.grantee.is_none() {
            return job;
        }
        match serde_json::to_value(&handover) {
            Ok(cp) => job.with_checkpoint(cp),
            Err(_) => job,
        }
    }
}

fn bump(totals: &mut Value, key: &str, n: u64) {
    let now = totals[key].as_u64().unwrap_or(0);
    totals[key] = json!(now + n);
}
