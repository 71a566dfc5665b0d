//! One sweep: read what Azure shows ([`Inventory`]), judge every pair ([`judge`]), record the
//! verdicts, repair what may be repaired (with `--repair-drift`), and say what happened in the
//! job's result.
use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};

use super::VerifyArgs;
use super::inventory::Inventory;
use super::verdict::{Reason, Verdict, judge};
use crate::attachments::{Drift, Seen};
use crate::azure::CallContext;
use crate::domain::{PairArgs, RegistryRef};
use crate::ops::Ops;
use crate::ops::group_guard::{GROUP_GRANTS_MORE_THAN_PULL, verify_pull_only};
use crate::ops::waits::Waits;
use crate::queue::{JobContext, JobError, Outcome};
use uuid::Uuid;

/// Pairs listed by name in a result (the counts are always complete).
const LISTED: usize = 100;

/// The job's result.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct Tally {
    window: String,
    checked: usize,
    /// Azure shows them (including `restored`).
    attached: usize,
    /// Drifted before, attached again (someone re-granted, or a repair finished).
    restored: usize,
    drifted: usize,
    drifted_by_reason: BTreeMap<Reason, usize>,
    /// Drifted since this sweep (or for another reason than before).
    newly_drifted: usize,
    /// Attach jobs enqueued to repair drifted pairs.
    repaired: usize,
    repair_enabled: bool,
    /// Not verified this time: Azure could not be read for them.
    unverified: usize,
    /// Changed by an attach or detach while the sweep ran: verified next time.
    changed_meanwhile: usize,
    registries_read: usize,
    arm_calls: usize,
    arm_calls_by_operation: BTreeMap<String, usize>,
    drifts: Vec<Value>,
    repairs: Vec<Value>,
    unverified_pairs: Vec<Value>,
}

fn listed(list: &mut Vec<Value>, v: Value) {
    if list.len() < LISTED {
        list.push(v);
    }
}

fn database(e: sqlx::Error) -> JobError {
    JobError::transient("DatabaseUnavailable", format!("the attachment records: {e}"))
}

pub async fn sweep(ops: &Ops, ctx: &JobContext, args: &VerifyArgs, call: &CallContext) -> Result<Outcome, JobError> {
    let seen = ops.attachments.to_verify().await.map_err(database)?;
    let inv = if seen.is_empty() {
        Inventory::default()
    } else {
        Inventory::read(ops, call, &seen).await?
    };
    let mut t = Tally {
        window: args.window.clone(),
        repair_enabled: ops.settings.drift.repair_drift,
        ..Tally::default()
    };
    let groups = guard_groups(ops, call, &seen).await;
    for s in &seen {
        t.checked += 1;
        let verdict = match s.group().and_then(|g| groups.get(&g)) {
            Some(Err(e)) if e.code == GROUP_GRANTS_MORE_THAN_PULL => Verdict::Drifted {
                reason: Reason::GroupGrantsMoreThanPull,
                detail: json!({ "message": e.message, "grants": e.details }),
                repair_to: None,
            },
            Some(Err(e)) => Verdict::Unverified(format!("the group could not be checked: {}", e.message)),
            _ => judge(s, &inv),
        };
        match verdict {
            Verdict::Holds { assignment_id } => {
                if !ops
                    .attachments
                    .confirm(s, &assignment_id, ctx.id)
                    .await
                    .map_err(database)?
                {
                    t.changed_meanwhile += 1;
                    continue;
                }
                t.attached += 1;
                if s.state == "drifted" {
                    t.restored += 1;
                }
            }
            Verdict::Drifted {
                reason,
                detail,
                repair_to,
            } => {
                let drift = Drift {
                    reason: reason.as_str(),
                    job_id: ctx.id,
                };
                if !ops.attachments.mark_drifted(s, &drift).await.map_err(database)? {
                    t.changed_meanwhile += 1;
                    continue;
                }
                let new = s.state != "drifted" || s.drift_reason.as_deref() != Some(reason.as_str());
                if new {
                    metrics::counter!("acr_attach_drift_total", "reason" => reason.as_str()).increment(1);
                    t.newly_drifted += 1;
                    tracing::warn!(cluster = %s.cluster_id, registry = %s.registry_id, via = %s.via,
                        reason = reason.as_str(), %detail, "an attachment drifted");
                }
                t.drifted += 1;
                *t.drifted_by_reason.entry(reason).or_default() += 1;
                listed(
                    &mut t.drifts,
                    json!({ "cluster": s.cluster_id, "registry": s.registry_id, "via": s.via,
                            "reason": reason, "new": new, "detail": detail }),
                );
                if t.repair_enabled
                    && let Some(to) = repair_to
                    && let Some(job) = repair(ops, ctx, s, &to, reason).await?
                {
                    t.repaired += 1;
                    listed(
                        &mut t.repairs,
                        json!({ "cluster": s.cluster_id, "registry": to, "reason": reason, "jobId": job }),
                    );
                }
            }
            Verdict::Unverified(why) => {
                t.unverified += 1;
                listed(
                    &mut t.unverified_pairs,
                    json!({ "cluster": s.cluster_id, "registry": s.registry_id, "why": why }),
                );
            }
        }
    }
    t.registries_read = inv.registries_read();
    for c in call.records() {
        t.arm_calls += 1;
        *t.arm_calls_by_operation.entry(c.operation).or_default() += 1;
    }
    let result = serde_json::to_value(&t).map_err(|e| JobError::permanent("ResultNotSerializable", e.to_string()))?;
    Ok(Outcome::Succeeded(result))
}

/// The pull-only guard of every group pairs are attached through, once per group: a grant
/// added to a group (or a parent group) after the attach would reach the kubelet identities in
/// it. A group that fails it makes its pairs drift; nothing repairs that automatically (the
/// fix is removing the grant, or the membership).
async fn guard_groups(ops: &Ops, call: &CallContext, seen: &[Seen]) -> BTreeMap<Uuid, Result<(), JobError>> {
    let mut out = BTreeMap::new();
    for g in seen.iter().filter_map(Seen::group) {
        if let std::collections::btree_map::Entry::Vacant(slot) = out.entry(g) {
            let mut waits = Waits::default();
            slot.insert(verify_pull_only(ops, call, g, &mut waits, |_| ()).await);
        }
    }
    out
}

/// Enqueue the normal attach job for a drifted pair (so every attach guarantee holds: the
/// pair's ordering, dedup, deadline; the attach resolves the cluster's current kubelet
/// identity and the registry's current pull role), once per drift. The job's id, if enqueued.
async fn repair(
    ops: &Ops,
    ctx: &JobContext,
    s: &Seen,
    to: &str,
    reason: Reason,
) -> Result<Option<uuid::Uuid>, JobError> {
    if s.repair_job_id.is_some() && s.drift_reason.as_deref() == Some(reason.as_str()) {
        return Ok(None);
    }
    let (Ok(cluster), Ok(registry)) = (s.cluster_id.parse(), to.parse()) else {
        return Ok(None);
    };
    let args = PairArgs {
        cluster,
        registry: RegistryRef::Id(registry),
        group: s.group(),
        remove_group_grant: false,
    };
    let job = ops.settings.attach_job(&args);
    let enq = ops
        .attachments
        .enqueue_repair(s, &job, reason.as_str(), ctx.id)
        .await
        .map_err(database)?;
    Ok(enq.map(|e| {
        let counter = if e.deduplicated {
            "acr_attach_jobs_deduplicated_total"
        } else {
            "acr_attach_jobs_enqueued_total"
        };
        metrics::counter!(counter, "kind" => job.kind.clone()).increment(1);
        e.job.id
    }))
}
