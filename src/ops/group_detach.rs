//! `detach` through an Entra group: undo what an attach through that group did, and no more.
//!
//! Steps, in order (each idempotent; progress in the checkpoint):
//! 1. grantee    – as for detach (the recorded identity if the cluster is gone).
//! 2. registry   – as for detach.
//! 3. membership – removed only if acr-attach's attach added it (the `group_membership` table)
//!    and no other attachment of the identity through the same group still needs it. A
//!    membership that existed before, that someone else made, or that was added while preparing
//!    the kubelet identity is kept, and the result says why.
//! 4. grant      – the group's own pull grant serves every member: kept, unless the request
//!    says `removeGroupGrant: true` (then it and any other pull grant of the group made exactly
//!    at the registry are deleted).
//! 5. record     – the attachment becomes `detached`; the result lists what was kept and why.
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::failures::generic;
use super::resolve::{self, Grantee, Pair, ResolvedRegistry};
use super::waits::{Snapshot, Waits};
use super::{Ops, PairArgs};
use crate::attachments::{Verified, via_group};
use crate::azure::roles::PULL_ROLES;
use crate::azure::{
    CallContext, Deleted, GroupRemove, RegistryId, RoleAssignment, RoleAssignmentFilter, RoleAssignmentId,
    assignment_name,
};
use crate::queue::{JobContext, JobError, Outcome};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Progress {
    grantee: Option<Grantee>,
    registry: Option<ResolvedRegistry>,
    membership: Option<MembershipResult>,
    /// Group grants deleted so far (with `removeGroupGrant`).
    #[serde(default)]
    deleted: Vec<String>,
    #[serde(default)]
    waits: Waits,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MembershipResult {
    /// `removed`, `notMember` (it was already gone) or `kept`.
    outcome: String,
    reason: String,
}

super::resolve::pair_progress!(Progress);

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct KeptGrant {
    id: String,
    scope: String,
    role_definition_id: String,
    reason: &'static str,
}

pub(super) async fn steps(
    ops: &Ops,
    ctx: &JobContext,
    args: &PairArgs,
    group: Uuid,
    call: &CallContext,
) -> Result<Outcome, JobError> {
    let mut p: Progress = ctx.checkpoint();
    let (
        Pair {
            grantee,
            registry,
            registry_id,
        },
        mut waits,
    ) = resolve::resolved_pair!(ops, ctx, call, args, &mut p, detaching: true);
    let member = grantee.object_id;

    let membership = match p.membership.clone() {
        Some(m) => m,
        None => {
            let m = membership(ops, call, args, &registry, group, member, &mut waits, |w| p.snapshot(w)).await?;
            p.membership = Some(m.clone());
            ctx.save_checkpoint(&p.snapshot(&waits)).await?;
            m
        }
    };

    let kept = group_grants(ops, ctx, call, args, &registry_id, &registry, group, &mut p, &mut waits).await?;

    ops.attachments
        .record(&Verified {
            cluster_id: &args.cluster.to_string(),
            registry_id: &registry.id,
            state: "detached",
            principal_id: Some(member),
            role_definition_id: None,
            role_name: None,
            assignment_id: None,
            via: &via_group(group),
            membership_added: None,
            job_id: ctx.id,
        })
        .await
        .map_err(|e| JobError::transient("DatabaseUnavailable", format!("recording the detachment failed: {e}")))?;

    let removed = membership.outcome == "removed";
    let message = match (removed, p.deleted.is_empty()) {
        (true, true) => "removed the kubelet identity from the group; the group's grant was kept for its other members",
        (true, false) => "removed the kubelet identity from the group and deleted the group's pull grant",
        (false, true) => "nothing removed: see `membership.reason` and `kept`",
        (false, false) => "deleted the group's pull grant; the membership was kept (see `membership.reason`)",
    };
    Ok(Outcome::Succeeded(json!({
        "path": "group",
        "outcome": if removed || !p.deleted.is_empty() { "removed" } else { "nothingRemoved" },
        "group": { "id": group },
        "membership": membership,
        "deleted": p.deleted,
        "kept": kept,
        "message": message,
        "effective": "a managed identity removed from a group can keep the group in its cached tokens for up to ~24 hours: \
                      nodes may keep pulling that long; deleting a grant takes up to ~10 minutes",
        "principal": { "objectId": member, "source": grantee.source },
        "registry": { "id": registry.id, "loginServer": registry.login_server },
        "cluster": { "id": args.cluster.to_string() },
    })))
}

/// Remove the membership only if an attach of acr-attach added it and nothing else needs it.
#[allow(clippy::too_many_arguments)]
async fn membership<C: Serialize>(
    ops: &Ops,
    call: &CallContext,
    args: &PairArgs,
    registry: &ResolvedRegistry,
    group: Uuid,
    member: Uuid,
    waits: &mut Waits,
    checkpoint: impl Fn(&Waits) -> C,
) -> Result<MembershipResult, JobError> {
    let db =
        |e: sqlx::Error| JobError::transient("DatabaseUnavailable", format!("reading the memberships failed: {e}"));
    let kept = |reason: String| {
        Ok(MembershipResult {
            outcome: "kept".into(),
            reason,
        })
    };
    let Some(added) = ops.attachments.membership(group, member).await.map_err(db)? else {
        return kept(
            "acr-attach did not add this membership (the identity was a member before, or someone else added it)"
                .into(),
        );
    };
    if added.added_by != super::ATTACH {
        return kept(format!(
            "the membership was added when the identity was prepared as a kubelet identity (job {}): it is part of the \
             identity's set-up, not of this attachment; remove it yourself if it is no longer wanted",
            added.job_id
        ));
    }
    let others = ops
        .attachments
        .others_through_group(
            group,
            member,
            &args.cluster.lower_key(),
            &registry.id.to_ascii_lowercase(),
        )
        .await
        .map_err(db)?;
    if !others.is_empty() {
        return kept(format!(
            "the identity is still attached through this group to {}",
            others.join(", ")
        ));
    }
    let outcome = match ops.azure.remove_group_member(call, group, member).await {
        Ok(GroupRemove::Removed) => "removed",
        Ok(GroupRemove::NotMember) => "notMember",
        Err(e) => {
            return Err(generic(
                e,
                &format!("removing the kubelet identity from the group {group}"),
                waits,
                &ops.settings,
                checkpoint,
            ));
        }
    };
    ops.attachments.forget_membership(group, member).await.map_err(db)?;
    Ok(MembershipResult {
        outcome: outcome.into(),
        reason: format!(
            "acr-attach added it when attaching (job {}), and no other attachment needs it",
            added.job_id
        ),
    })
}

/// The group's pull grants at the registry: deleted with `removeGroupGrant`, otherwise reported.
#[allow(clippy::too_many_arguments)]
async fn group_grants(
    ops: &Ops,
    ctx: &JobContext,
    call: &CallContext,
    args: &PairArgs,
    registry_id: &RegistryId,
    registry: &ResolvedRegistry,
    group: Uuid,
    p: &mut Progress,
    waits: &mut Waits,
) -> Result<Vec<KeptGrant>, JobError> {
    let scope = registry_id.as_resource_id().clone();
    if args.remove_group_grant {
        let ours = RoleAssignmentId::new(scope.clone(), assignment_name(registry_id, &group, &registry.role));
        if !p.deleted.iter().any(|d| d.eq_ignore_ascii_case(&ours.to_string())) {
            match ops.azure.delete_role_assignment(call, &ours).await {
                Ok(Deleted::Deleted(_)) => p.deleted.push(ours.to_string()),
                Ok(Deleted::AlreadyAbsent) => {}
                Err(e) => {
                    return Err(generic(
                        e,
                        "deleting the group's role assignment",
                        waits,
                        &ops.settings,
                        |w| p.snapshot(w),
                    ));
                }
            }
            ctx.save_checkpoint(&p.snapshot(waits)).await?;
        }
    }
    let listed = match ops
        .azure
        .list_role_assignments(call, &scope, RoleAssignmentFilter::PrincipalId(group))
        .await
    {
        Ok(l) => l,
        Err(e) => {
            return Err(generic(
                e,
                "listing the group's role assignments",
                waits,
                &ops.settings,
                |w| p.snapshot(w),
            ));
        }
    };
    let is_pull = |ra: &RoleAssignment| PULL_ROLES.iter().any(|r| ra.is_role(*r));
    let mut kept = Vec::new();
    for ra in listed.iter().filter(|ra| is_pull(ra) && ra.is_for_principal(group)) {
        if p.deleted.iter().any(|d| d.eq_ignore_ascii_case(&ra.id)) {
            continue;
        }
        let exact = ra.is_at_scope(&scope);
        if exact && args.remove_group_grant {
            let id: RoleAssignmentId = ra
                .id
                .parse()
                .map_err(|e| JobError::permanent("InvalidRoleAssignmentId", format!("ARM listed {e}")))?;
            match ops.azure.delete_role_assignment(call, &id).await {
                Ok(Deleted::Deleted(_)) => p.deleted.push(ra.id.clone()),
                Ok(Deleted::AlreadyAbsent) => {}
                Err(e) => {
                    return Err(generic(
                        e,
                        "deleting the group's role assignment",
                        waits,
                        &ops.settings,
                        |w| p.snapshot(w),
                    ));
                }
            }
            ctx.save_checkpoint(&p.snapshot(waits)).await?;
            continue;
        }
        kept.push(KeptGrant {
            id: ra.id.clone(),
            scope: ra.scope.clone(),
            role_definition_id: ra.role_definition_id.clone(),
            reason: if !exact {
                "the group's grant is inherited from a parent scope; not deleted"
            } else {
                "the group's grant serves every member of the group; not deleted (send removeGroupGrant: true to delete it)"
            },
        });
    }
    Ok(kept)
}
