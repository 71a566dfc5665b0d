//! Entra group steps shared by the job kinds: check that a group exists, make an identity a
//! member exactly once (remembering whether acr-attach added it, so a detach removes only what
//! it added), and wait until Microsoft Graph shows the membership.
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Ops;
use super::failures::{details, generic};
use super::resolve::Step;
use super::waits::{Snapshot, Verdict, Waits, condition, human, not_yet, record_poll, wait};
use crate::azure::{AzureError, CallContext, GroupAdd};
use crate::queue::{JobContext, JobError, Outcome};

/// A group as Graph described it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupInfo {
    pub id: Uuid,
    pub display_name: Option<String>,
}

/// Where the membership step stands (kept in the checkpoint).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Membership {
    /// Graph said "not a member" and the add was sent; its outcome is not known yet. A retry
    /// that finds the member there counts the add as acr-attach's (its response was lost).
    Adding,
    /// acr-attach added the member.
    Added,
    /// The identity was a member before (directly or through a nested group).
    AlreadyMember,
}

impl Membership {
    pub fn as_str(self) -> &'static str {
        match self {
            Membership::Adding => "adding",
            Membership::Added => "added",
            Membership::AlreadyMember => "alreadyMember",
        }
    }
}

/// A checkpoint with a membership step per group.
pub trait MembershipSlots: Snapshot {
    fn slot(&mut self, group: Uuid) -> &mut Option<Membership>;
}

/// The group exists (a group id unknown to Graph may be a just-created group, so it is waited
/// for like any new principal, within the principal budget).
pub async fn group<C: Serialize>(
    ops: &Ops,
    call: &CallContext,
    group: Uuid,
    waits: &mut Waits,
    checkpoint: impl Fn(&Waits) -> C,
) -> Result<Step<GroupInfo>, JobError> {
    match ops.azure.get_group(call, group).await {
        Ok(Some(g)) => {
            waits.met(condition::PRINCIPAL_REPLICATION);
            if g.group_types
                .iter()
                .any(|t| t.eq_ignore_ascii_case("DynamicMembership"))
            {
                return Err(JobError::permanent(
                    "DynamicGroup",
                    format!(
                        "the group {group} has dynamic membership: members cannot be added to it; use an assigned-membership security group"
                    ),
                ));
            }
            Ok(Step::Done(GroupInfo {
                id: group,
                display_name: g.display_name,
            }))
        }
        Ok(None) => match waits.poll(condition::PRINCIPAL_REPLICATION, ops.settings.principal_budget) {
            Verdict::Wait(delay) => Err(not_yet(
                condition::PRINCIPAL_REPLICATION,
                "Request_ResourceNotFound",
                format!(
                    "Microsoft Graph does not know the group {group} yet (a new group can take minutes to replicate)"
                ),
                delay,
                &checkpoint(waits),
            )),
            Verdict::Exhausted(waited) => Err(JobError::permanent(
                "GroupNotFound",
                format!(
                    "Microsoft Graph still did not know the group {group} after {}: check that it is the object id of a \
                     security group (not a user or service principal) in acr-attach's tenant",
                    human(waited)
                ),
            )),
        },
        Err(e) => Err(generic(
            e,
            "reading the group in Microsoft Graph",
            waits,
            &ops.settings,
            checkpoint,
        )),
    }
}

/// Make `member` a member of `group`, once. The outcome is saved in the checkpoint before this
/// returns, and a membership acr-attach added is remembered in the database (`added_by`: the job
/// kind), so that neither a retry nor a restart sends the add twice or forgets who made it.
#[allow(clippy::too_many_arguments)]
pub async fn ensure_member<P: MembershipSlots>(
    ops: &Ops,
    ctx: &JobContext,
    call: &CallContext,
    p: &mut P,
    group: Uuid,
    member: Uuid,
    who: &str,
    added_by: &str,
    waits: &mut Waits,
) -> Result<Step<Membership>, JobError> {
    let prior = *p.slot(group);
    match prior {
        Some(m @ (Membership::Added | Membership::AlreadyMember)) => return Ok(Step::Done(m)),
        Some(Membership::Adding) => {}
        None => {
            // Graph's (transitive) view first: a membership that exists is left alone, and no
            // write is made. A very recent one may not show yet; the add then says so.
            match ops.azure.check_member_groups(call, member, &[group]).await {
                Ok(found) => {
                    waits.met(condition::IDENTITY_REPLICATION);
                    if found.contains(&group) {
                        return settle(ctx, p, group, Membership::AlreadyMember, waits).await;
                    }
                }
                Err(e) if e.status == Some(404) => return Err(unknown_member(ops, who, e, waits, |w| p.snapshot(w))),
                Err(e) => {
                    return Err(generic(
                        e,
                        "checking group membership in Microsoft Graph",
                        waits,
                        &ops.settings,
                        |w| p.snapshot(w),
                    ));
                }
            }
            *p.slot(group) = Some(Membership::Adding);
            ctx.save_checkpoint(&p.snapshot(waits)).await?;
        }
    }
    // Checked afresh right before every add: the group must carry nothing but pull.
    super::group_guard::verify_pull_only(ops, call, group, waits, |w| p.snapshot(w)).await?;
    let outcome = match ops.azure.add_group_member(call, group, member).await {
        Ok(GroupAdd::Added) => Membership::Added,
        // Our own earlier add whose response was lost, or someone else's very recent one.
        Ok(GroupAdd::AlreadyMember) if prior == Some(Membership::Adding) => Membership::Added,
        Ok(GroupAdd::AlreadyMember) => Membership::AlreadyMember,
        Err(e) if e.status == Some(404) => return Err(unknown_member(ops, who, e, waits, |w| p.snapshot(w))),
        Err(e) => {
            return Err(generic(
                e,
                &format!("adding {who} to the group {group}"),
                waits,
                &ops.settings,
                |w| p.snapshot(w),
            ));
        }
    };
    waits.met(condition::IDENTITY_REPLICATION);
    if outcome == Membership::Added {
        ops.attachments
            .record_membership(group, member, added_by, ctx.id)
            .await
            .map_err(|e| {
                JobError::transient("DatabaseUnavailable", format!("recording the membership failed: {e}"))
                    .with_checkpoint(p.snapshot(waits))
            })?;
    }
    settle(ctx, p, group, outcome, waits).await
}

async fn settle<P: MembershipSlots>(
    ctx: &JobContext,
    p: &mut P,
    group: Uuid,
    m: Membership,
    waits: &Waits,
) -> Result<Step<Membership>, JobError> {
    *p.slot(group) = Some(m);
    ctx.save_checkpoint(&p.snapshot(waits)).await?;
    Ok(Step::Done(m))
}

/// Graph answered 404 for the member: a new identity that has not replicated yet.
fn unknown_member<C: Serialize>(
    ops: &Ops,
    who: &str,
    e: AzureError,
    waits: &mut Waits,
    checkpoint: impl Fn(&Waits) -> C,
) -> JobError {
    match waits.poll(
        condition::IDENTITY_REPLICATION,
        ops.settings.identity_replication_budget,
    ) {
        Verdict::Wait(delay) => not_yet(
            condition::IDENTITY_REPLICATION,
            "Request_ResourceNotFound",
            format!("Microsoft Graph does not know {who} yet (a new identity takes a while to replicate)"),
            delay,
            &checkpoint(waits),
        )
        .with_details(details(&e)),
        Verdict::Exhausted(waited) => JobError::permanent(
            "MemberNotFound",
            format!(
                "condition {}: Microsoft Graph still did not know {who} after {}: the identity may have been deleted, \
                 or the group removed meanwhile",
                condition::IDENTITY_REPLICATION,
                human(waited)
            ),
        )
        .with_details(details(&e)),
    }
}

/// Wait until Graph's `checkMemberGroups` shows `member` in every one of `groups`.
/// `None`: all visible; `Some(outcome)`: wait and check again.
#[allow(clippy::too_many_arguments)]
pub async fn visible<C: Serialize>(
    ops: &Ops,
    ctx: &JobContext,
    call: &CallContext,
    member: Uuid,
    who: &str,
    groups: &[Uuid],
    waits: &mut Waits,
    checkpoint: impl Fn(&Waits) -> C,
) -> Result<Option<Outcome>, JobError> {
    if groups.is_empty() {
        return Ok(None);
    }
    let found = match ops.azure.check_member_groups(call, member, groups).await {
        Ok(found) => found,
        Err(e) if e.status == Some(404) => return Err(unknown_member(ops, who, e, waits, checkpoint)),
        Err(e) => {
            return Err(generic(
                e,
                "checking group membership in Microsoft Graph",
                waits,
                &ops.settings,
                checkpoint,
            ));
        }
    };
    let missing: Vec<Uuid> = groups.iter().filter(|g| !found.contains(g)).copied().collect();
    let observed = if missing.is_empty() {
        format!("checkMemberGroups shows {who} in all {} group(s)", groups.len())
    } else {
        format!(
            "checkMemberGroups does not show {who} in {} yet",
            missing.iter().map(Uuid::to_string).collect::<Vec<_>>().join(", ")
        )
    };
    record_poll(
        ctx,
        call,
        condition::GROUP_MEMBERSHIP_VISIBLE,
        missing.is_empty(),
        observed,
        waits,
    )
    .await;
    if missing.is_empty() {
        waits.met(condition::GROUP_MEMBERSHIP_VISIBLE);
        return Ok(None);
    }
    match waits.poll(
        condition::GROUP_MEMBERSHIP_VISIBLE,
        ops.settings.membership_visibility_budget,
    ) {
        Verdict::Wait(delay) => Ok(Some(wait(
            condition::GROUP_MEMBERSHIP_VISIBLE,
            format!(
                "{who} was added to {}; waiting until Microsoft Graph shows the membership",
                missing.iter().map(Uuid::to_string).collect::<Vec<_>>().join(", ")
            ),
            delay,
            &checkpoint(waits),
        ))),
        Verdict::Exhausted(waited) => Err(JobError::permanent(
            "MembershipNotVisible",
            format!(
                "condition {}: Microsoft Graph still did not show {who} as a member of {} after {}",
                condition::GROUP_MEMBERSHIP_VISIBLE,
                missing.iter().map(Uuid::to_string).collect::<Vec<_>>().join(", "),
                human(waited)
            ),
        )),
    }
}
