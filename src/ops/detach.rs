//! `detach`: remove the pull grants that let the cluster's kubelet identity pull from the registry.
//!
//! Steps, in order (each idempotent; progress in the checkpoint):
//! 1. grantee  – as for attach; if the cluster is gone, the principal recorded when it was attached.
//! 2. registry – as for attach.
//! 3. delete   – DELETE the deterministic assignment (204: it was not there), then list the
//!    principal's assignments at the registry (`assignedTo`, which also shows group grants) and
//!    delete every other pull-role grant made exactly at the registry scope to this principal
//!    (e.g. one `az aks update --attach-acr` made under a random name).
//! 4. report   – grants inherited from the resource group or subscription, and grants through
//!    groups, are not ours to delete: they are reported in the result. Record; return.
//!
//! With a `group` in its arguments the job undoes an attach through that group instead: see
//! [`super::group_detach`].
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::Arc;

use super::failures::generic;
use super::resolve::{self, Grantee, Pair, ResolvedRegistry};
use super::waits::{Snapshot, Verdict, Waits, condition, wait};
use super::{DETACH, Ops, PairArgs};
use crate::attachments::Verified;
use crate::azure::roles::PULL_ROLES;
use crate::azure::{CallContext, Deleted, RoleAssignment, RoleAssignmentFilter, RoleAssignmentId, assignment_name};
use crate::queue::{JobContext, JobError, Outcome};

pub struct Detach(pub Arc<Ops>);

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Progress {
    grantee: Option<Grantee>,
    registry: Option<ResolvedRegistry>,
    #[serde(default)]
    deleted: Vec<String>,
    #[serde(default)]
    waits: Waits,
}

super::resolve::pair_progress!(Progress);

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Kept {
    id: String,
    scope: String,
    role_definition_id: String,
    principal_id: String,
    reason: &'static str,
}

super::resolve::pair_job!(Detach, DETACH, group_detach);

impl Detach {
    /// ARM says our assignment is not there, but an attach recorded it moments ago: ARM may not
    /// see it yet (read-after-write lag), and concluding "nothing to delete" would leave the
    /// grant in place. Wait and delete again, within the readable budget of that attach.
    async fn absent_but_just_granted(
        &self,
        ours: &RoleAssignmentId,
        registry_id: &str,
        grantee: &Grantee,
        waits: &mut Waits,
        p: &Progress,
    ) -> Result<Option<Outcome>, JobError> {
        let ops = &*self.0;
        let recorded = ops
            .attachments
            .recent_direct_grant(registry_id, grantee.object_id, ops.settings.readable_budget)
            .await
            .map_err(|e| JobError::transient("DatabaseUnavailable", format!("reading the attachment failed: {e}")))?;
        let Some((id, at)) = recorded.filter(|(id, _)| id.eq_ignore_ascii_case(&ours.to_string())) else {
            waits.done(condition::ASSIGNMENT_READABLE);
            return Ok(None);
        };
        Ok(
            match waits.poll(condition::ASSIGNMENT_READABLE, ops.settings.readable_budget) {
                Verdict::Wait(delay) => Some(wait(
                    condition::ASSIGNMENT_READABLE,
                    format!(
                        "ARM does not find the role assignment {id} that an attach made at {}; waiting until it does, to delete it",
                        at.to_rfc3339()
                    ),
                    delay,
                    &p.snapshot(waits),
                )),
                // Within the budget ARM never showed it: someone else deleted it.
                Verdict::Exhausted(_) => {
                    waits.done(condition::ASSIGNMENT_READABLE);
                    None
                }
            },
        )
    }

    async fn steps(
        &self,
        ctx: &JobContext,
        args: &PairArgs,
        p: &mut Progress,
        call: &CallContext,
    ) -> Result<Outcome, JobError> {
        let ops = &*self.0;
        let (
            Pair {
                grantee,
                registry,
                registry_id,
            },
            mut waits,
        ) = resolve::resolved_pair!(ops, ctx, call, args, p, detaching: true);
        let scope = registry_id.as_resource_id().clone();

        // The deterministic assignment first: a just-made grant may not be listed yet.
        let ours = RoleAssignmentId::new(
            scope.clone(),
            assignment_name(&registry_id, &grantee.object_id, &registry.role),
        );
        match ops.azure.delete_role_assignment(call, &ours).await {
            Ok(Deleted::Deleted(_)) => {
                waits.met(condition::ASSIGNMENT_READABLE);
                p.deleted.push(ours.to_string());
            }
            Ok(Deleted::AlreadyAbsent) => {
                if let Some(outcome) = self
                    .absent_but_just_granted(&ours, &registry.id, &grantee, &mut waits, p)
                    .await?
                {
                    return Ok(outcome);
                }
            }
            Err(e) => {
                return Err(generic(
                    e,
                    "deleting the role assignment",
                    &mut waits,
                    &ops.settings,
                    |w| p.snapshot(w),
                ));
            }
        }
        ctx.save_checkpoint(&p.snapshot(&waits)).await?;

        let listed = ops
            .azure
            .list_role_assignments(call, &scope, RoleAssignmentFilter::AssignedTo(grantee.object_id))
            .await
            .map_err(|e| {
                generic(
                    e,
                    "listing the principal's role assignments",
                    &mut waits,
                    &ops.settings,
                    |w| p.snapshot(w),
                )
            })?;
        let is_pull = |ra: &RoleAssignment| PULL_ROLES.iter().any(|r| ra.is_role(*r));
        let mut kept = Vec::new();
        for ra in listed.iter().filter(|ra| is_pull(ra)) {
            let direct = ra.is_for_principal(grantee.object_id);
            if direct && ra.is_at_scope(&scope) {
                if p.deleted.iter().any(|d| d.eq_ignore_ascii_case(&ra.id)) {
                    continue;
                }
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
                            "deleting the role assignment",
                            &mut waits,
                            &ops.settings,
                            |w| p.snapshot(w),
                        ));
                    }
                }
                ctx.save_checkpoint(&p.snapshot(&waits)).await?;
            } else {
                kept.push(Kept {
                    id: ra.id.clone(),
                    scope: ra.scope.clone(),
                    role_definition_id: ra.role_definition_id.clone(),
                    principal_id: ra.principal_id.clone(),
                    reason: if !direct {
                        "granted to a group the identity belongs to; not deleted"
                    } else {
                        "inherited from a parent scope (resource group, subscription or management group); not deleted"
                    },
                });
            }
        }

        ops.attachments
            .record(&Verified {
                cluster_id: &args.cluster.to_string(),
                registry_id: &registry.id,
                state: "detached",
                principal_id: Some(grantee.object_id),
                role_definition_id: None,
                role_name: None,
                assignment_id: None,
                via: "direct",
                membership_added: None,
                job_id: ctx.id,
            })
            .await
            .map_err(|e| JobError::transient("DatabaseUnavailable", format!("recording the detachment failed: {e}")))?;

        let message = match (p.deleted.len(), kept.len()) {
            (0, 0) => "nothing to delete: the identity had no pull grant on this registry".to_string(),
            (0, _) => {
                "nothing deleted here; the identity can still pull through the grants listed in `kept`".to_string()
            }
            (n, 0) => format!(
                "deleted {n} pull grant(s); nodes may keep pulling for up to 10 minutes while Azure RBAC catches up"
            ),
            (n, _) => format!(
                "deleted {n} pull grant(s), but the identity can still pull through the grants listed in `kept`"
            ),
        };
        Ok(Outcome::Succeeded(json!({
            "path": "direct",
            "outcome": if p.deleted.is_empty() { "nothingToDelete" } else { "deleted" },
            "deleted": p.deleted,
            "kept": kept,
            "message": message,
            "principal": { "objectId": grantee.object_id, "source": grantee.source },
            "registry": { "id": registry.id, "loginServer": registry.login_server },
            "cluster": { "id": args.cluster.to_string() },
        })))
    }
}
