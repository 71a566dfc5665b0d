//! `attach`: grant the registry's pull role to the cluster's kubelet identity.
//!
//! Steps, in order (each idempotent; progress is saved in the job's checkpoint, so a restart
//! resumes at the step it was in):
//! 1. grantee  – read the cluster: `identityProfile.kubeletidentity.objectId` (service-principal
//!    clusters: the SP's object id from Microsoft Graph); a cluster still being created is waited for.
//! 2. registry – by id, or by bare name through Azure Resource Graph; its `roleAssignmentMode`
//!    picks the role (AcrPull, or Container Registry Repository Reader for ABAC registries).
//!    Steps 1 and 2 run at the same time (see [`super::resolve::pair`]).
//! 3. grant    – PUT the role assignment under a deterministic name (UUIDv5 of registry,
//!    principal and role) with `principalType: ServicePrincipal`. `RoleAssignmentExists` means
//!    the grant exists under another name: adopt it. `PrincipalNotFound` is waited out (budget).
//! 4. record   – remember the attachment; return the result.
//!
//! No read-back after the PUT: ARM's 201 carries the assignment it stored, which is the proof.
//! The read-after-write lag matters to whoever *reads* the grant next, so the wait lives there:
//! a detach that finds nothing to delete, or a check that finds no grant, within the readable
//! budget of a grant recorded here, waits or says so (see [`super::detach`], `check`).
//!
//! With a `group` in its arguments the job grants through that Entra group instead: see
//! [`super::group_attach`].
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::Arc;

use super::grant::{self, Granted, Recipient};
use super::resolve::{self, Grantee, Pair, ResolvedRegistry, Step};
use super::waits::{Snapshot, Waits};
use super::{ATTACH, Ops, PairArgs};
use crate::attachments::Verified;
use crate::azure::{CallContext, PrincipalType, role_definition_id};
use crate::queue::{JobContext, JobError, Outcome};

pub struct Attach(pub Arc<Ops>);

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Progress {
    grantee: Option<Grantee>,
    registry: Option<ResolvedRegistry>,
    granted: Option<Granted>,
    #[serde(default)]
    waits: Waits,
}

super::resolve::pair_progress!(Progress);

super::resolve::pair_job!(Attach, ATTACH, group_attach);

impl Attach {
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
        ) = resolve::resolved_pair!(ops, ctx, call, args, p, detaching: false);

        let granted = match p.granted.clone() {
            Some(g) => g,
            None => {
                let recipient = kubelet_recipient(&grantee, ctx);
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

        let role_id = role_definition_id(&registry_id.subscription(), registry.role);
        ops.attachments
            .record(&Verified {
                cluster_id: &args.cluster.to_string(),
                registry_id: &registry.id,
                state: "attached",
                principal_id: Some(grantee.object_id),
                role_definition_id: Some(&role_id),
                role_name: Some(&registry.role_name),
                assignment_id: Some(&granted.id),
                via: "direct",
                membership_added: None,
                job_id: ctx.id,
            })
            .await
            .map_err(|e| JobError::transient("DatabaseUnavailable", format!("recording the attachment failed: {e}")))?;

        Ok(Outcome::Succeeded(json!({
            "path": "direct",
            "outcome": granted.outcome,
            "assignmentId": granted.id,
            "assignmentName": granted.name,
            "role": { "id": role_id, "name": registry.role_name },
            "principal": { "objectId": grantee.object_id, "type": "ServicePrincipal", "source": grantee.source, "clientId": grantee.client_id },
            "registry": { "id": registry.id, "loginServer": registry.login_server, "roleAssignmentMode": registry.role_assignment_mode },
            "cluster": { "id": args.cluster.to_string() },
            "effective": "Azure RBAC can take up to 10 minutes before nodes can pull with a new grant",
        })))
    }
}

/// The cluster's kubelet identity (or service principal) as the recipient of a direct grant.
fn kubelet_recipient<'a>(grantee: &Grantee, ctx: &JobContext) -> Recipient<'a> {
    Recipient {
        object_id: grantee.object_id,
        principal_type: PrincipalType::ServicePrincipal,
        who: format!(
            "the principal {} ({} of the cluster)",
            grantee.object_id, grantee.source
        ),
        unknown_hint: "it may be wrong, deleted or replaced (re-read the cluster: its kubelet identity may have changed)",
        description: format!("AKS pull access, managed by acr-attach (job {})", ctx.id),
    }
}
