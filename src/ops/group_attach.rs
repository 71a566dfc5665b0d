//! `attach` through an Entra group: the group holds the pull role, the kubelet identity is a
//! member, and the job waits until ARM says the grant reaches the identity.
//!
//! Steps, in order (each idempotent; progress in the checkpoint, so a restart resumes at the
//! step it was in, and no Graph or ARM write is repeated):
//! 1. grantee    – the cluster's kubelet identity, as for a direct attach.
//! 2. registry   – as for a direct attach.
//! 3. group      – Graph `GET /groups/{id}`: it exists (a just-created group is waited for).
//! 4. grant      – the **group** gets the pull role: deterministic name over (registry, group,
//!    role), `principalType: Group`, adopt on `RoleAssignmentExists`; then readable.
//! 5. membership – the kubelet identity becomes a member (Graph `$ref`); "already a member" is
//!    success. Whether acr-attach added it is kept in the checkpoint and the database.
//! 6. effective  – a persisted wait (no worker slot held) until ARM's `assignedTo('{kubelet}')`
//!    at the registry shows the group's pull role, polled with back-off within
//!    `--group-propagation-budget`; every poll is in the job's timeline.
//! 7. record     – the attachment, `via: group:<id>`; the result says what is still uncertain.
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::grant::{self, Granted, Recipient};
use super::membership::{self, GroupInfo, Membership, MembershipSlots};
use super::resolve::{self, Grantee, Pair, ResolvedRegistry, Step, step};
use super::waits::{Snapshot, Verdict, Waits, condition, human, record_poll, wait};
use super::{Ops, PairArgs, failures::generic};
use crate::attachments::{Verified, via_group};
use crate::azure::{CallContext, PrincipalType, RegistryId, RoleAssignmentFilter, role_definition_id};
use crate::queue::{JobContext, JobError, Outcome};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Progress {
    grantee: Option<Grantee>,
    registry: Option<ResolvedRegistry>,
    group: Option<GroupInfo>,
    granted: Option<Granted>,
    membership: Option<Membership>,
    /// The group's grant showed in `assignedTo` (seconds waited, polls).
    effective: Option<Propagation>,
    #[serde(default)]
    waits: Waits,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Propagation {
    waited_seconds: f64,
    polls: u32,
}

super::resolve::pair_progress!(Progress);

impl MembershipSlots for Progress {
    fn slot(&mut self, _group: Uuid) -> &mut Option<Membership> {
        &mut self.membership
    }
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
    ) = resolve::resolved_pair!(ops, ctx, call, args, &mut p, detaching: false);

    let info = match p.group.clone() {
        Some(g) => g,
        None => match membership::group(ops, call, group, &mut waits, |w| p.snapshot(w)).await? {
            Step::Done(g) => {
                p.group = Some(g.clone());
                ctx.save_checkpoint(&p.snapshot(&waits)).await?;
                g
            }
            Step::Wait(outcome) => return Ok(outcome),
        },
    };

    let mut granted = match p.granted.clone() {
        Some(g) => g,
        None => {
            // Refuse a group that carries more than pull before writing anything (the
            // membership step checks again right before it adds the member).
            super::group_guard::verify_pull_only(ops, call, group, &mut waits, |w| p.snapshot(w)).await?;
            let recipient = Recipient {
                object_id: group,
                principal_type: PrincipalType::Group,
                who: format!("the group {group}"),
                unknown_hint: "check the group's object id",
                description: format!(
                    "AKS pull access for the members of this group, managed by acr-attach (job {})",
                    ctx.id
                ),
            };
            match grant::grant(ops, call, &registry_id, &registry, &recipient, &mut waits, |w| {
                p.snapshot(w)
            })
            .await?
            {
                Step::Done(g) => {
                    p.granted = Some(g.clone());
                    ctx.save_checkpoint(&p.snapshot(&waits)).await?;
                    g
                }
                Step::Wait(outcome) => return Ok(outcome),
            }
        }
    };
    if !granted.readable {
        if let Some(outcome) =
            grant::readable(ops, call, &registry_id, &mut granted, &mut waits, |w| p.snapshot(w)).await?
        {
            return Ok(outcome);
        }
        p.granted = Some(granted.clone());
        ctx.save_checkpoint(&p.snapshot(&waits)).await?;
    }

    let who = format!("the kubelet identity {}", grantee.object_id);
    let member = step!(
        membership::ensure_member(
            ops,
            ctx,
            call,
            &mut p,
            group,
            grantee.object_id,
            &who,
            super::ATTACH,
            &mut waits,
        )
        .await?
    );

    let propagation = match p.effective.clone() {
        Some(e) => e,
        None => match effective(
            ops,
            ctx,
            call,
            &registry_id,
            &registry,
            &grantee,
            &info,
            &mut waits,
            |w| p.snapshot(w),
        )
        .await?
        {
            Step::Done(e) => {
                p.effective = Some(e.clone());
                ctx.save_checkpoint(&p.snapshot(&waits)).await?;
                e
            }
            Step::Wait(outcome) => return Ok(outcome),
        },
    };

    let role_id = role_definition_id(&registry_id.subscription(), registry.role);
    let added = member == Membership::Added;
    ops.attachments
        .record(&Verified {
            cluster_id: &args.cluster.to_string(),
            registry_id: &registry.id,
            state: "attached",
            principal_id: Some(grantee.object_id),
            role_definition_id: Some(&role_id),
            role_name: Some(&registry.role_name),
            assignment_id: Some(&granted.id),
            via: &via_group(group),
            membership_added: Some(added),
            job_id: ctx.id,
        })
        .await
        .map_err(|e| JobError::transient("DatabaseUnavailable", format!("recording the attachment failed: {e}")))?;

    let group_name = info.display_name.clone().unwrap_or_else(|| group.to_string());
    let uncertain = if added {
        format!(
            "ARM now shows the pull role for the kubelet identity through the group '{group_name}', but managed-identity \
             tokens carry group claims and are cached for up to ~24 hours: if the kubelet identity already had tokens, \
             pulls can keep failing for hours, and this cannot be forced. A direct grant (no group) takes effect within \
             ~10 minutes; for new clusters, pre-create the kubelet identity and add it to the group before the cluster \
             exists (POST /v1/kubelet-identities)."
        )
    } else {
        format!(
            "The kubelet identity was already a member of '{group_name}' before this job. If that membership is older \
             than the identity's tokens, the group's grant applies like a direct one (within ~10 minutes); if it was \
             made recently, tokens cached for up to ~24 hours may not carry the group yet."
        )
    };
    Ok(Outcome::Succeeded(json!({
        "path": "group",
        "outcome": "effective",
        "group": { "id": group, "displayName": info.display_name },
        "membership": member.as_str(),
        "membershipAdded": added,
        "groupAssignment": { "id": granted.id, "name": granted.name, "outcome": granted.outcome },
        "assignmentId": granted.id,
        "role": { "id": role_id, "name": registry.role_name },
        "principal": { "objectId": grantee.object_id, "type": "ServicePrincipal", "source": grantee.source, "clientId": grantee.client_id },
        "registry": { "id": registry.id, "loginServer": registry.login_server, "roleAssignmentMode": registry.role_assignment_mode },
        "cluster": { "id": args.cluster.to_string() },
        "propagation": {
            "condition": condition::GROUP_GRANT_EFFECTIVE,
            "waitedSeconds": propagation.waited_seconds,
            "polls": propagation.polls,
        },
        "uncertain": uncertain,
    })))
}

/// One poll: does `assignedTo('{kubelet}')` at the registry show the group's pull role?
#[allow(clippy::too_many_arguments)]
async fn effective<C: Serialize>(
    ops: &Ops,
    ctx: &JobContext,
    call: &CallContext,
    registry_id: &RegistryId,
    registry: &ResolvedRegistry,
    grantee: &Grantee,
    group: &GroupInfo,
    waits: &mut Waits,
    checkpoint: impl Fn(&Waits) -> C,
) -> Result<Step<Propagation>, JobError> {
    let c = condition::GROUP_GRANT_EFFECTIVE;
    let scope = registry_id.as_resource_id();
    let listed = match ops
        .azure
        .list_role_assignments(
            call,
            scope,
            RoleAssignmentFilter::AtScopeAndAssignedTo(grantee.object_id),
        )
        .await
    {
        Ok(l) => l,
        Err(e) => {
            return Err(generic(
                e,
                "listing the role assignments that reach the kubelet identity",
                waits,
                &ops.settings,
                checkpoint,
            ));
        }
    };
    let through_group = listed
        .iter()
        .find(|ra| ra.is_role(registry.role) && ra.is_for_principal(group.id));
    let observed = match through_group {
        Some(ra) => format!(
            "assignedTo('{}') shows {} through the group ({})",
            grantee.object_id, registry.role_name, ra.id
        ),
        None => format!(
            "assignedTo('{}') lists {} assignment(s) at the registry, none for the group {}",
            grantee.object_id,
            listed.len(),
            group.id
        ),
    };
    record_poll(ctx, call, c, through_group.is_some(), observed, waits).await;
    if through_group.is_some() {
        let polls = waits.0.get(c).map(|s| s.polls).unwrap_or(0);
        let waited = waits.met(c).unwrap_or_default();
        return Ok(Step::Done(Propagation {
            waited_seconds: (waited.as_secs_f64() * 1000.0).round() / 1000.0,
            polls: polls + 1,
        }));
    }
    match waits.poll(c, ops.settings.group_propagation_budget) {
        Verdict::Wait(delay) => Ok(Step::Wait(wait(
            c,
            format!(
                "the kubelet identity {} is a member of the group {}, which holds {} on the registry; waiting until ARM's \
                 assignedTo() shows the grant reaching the identity (group changes can take long to propagate)",
                grantee.object_id, group.id, registry.role_name
            ),
            delay,
            &checkpoint(waits),
        ))),
        Verdict::Exhausted(waited) => Err(JobError::permanent(
            "GroupGrantNotEffective",
            format!(
                "condition {c}: after {} ARM's assignedTo('{}') at {} still did not show the {} grant of the group {}; \
                 the membership and the group's grant are in place and may still take effect later. Consider a direct \
                 grant (attach without `group`)",
                human(waited),
                grantee.object_id,
                registry.id,
                registry.role_name,
                group.id
            ),
        )),
    }
}
