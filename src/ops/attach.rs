//! `attach`: grant the registry's pull role to the cluster's kubelet identity.
//!
//! Steps, in order (each idempotent; progress is saved in the job's checkpoint, so a restart
//! resumes at the step it was in):
//! 1. grantee  – read the cluster: `identityProfile.kubeletidentity.objectId` (service-principal
//!    clusters: the SP's object id from Microsoft Graph); a cluster still being created is waited for.
//! 2. registry – by id, or by bare name through Azure Resource Graph; its `roleAssignmentMode`
//!    picks the role (AcrPull, or Container Registry Repository Reader for ABAC registries).
//! 3. grant    – PUT the role assignment under a deterministic name (UUIDv5 of registry,
//!    principal and role) with `principalType: ServicePrincipal`. `RoleAssignmentExists` means
//!    the grant exists under another name: adopt it. `PrincipalNotFound` is waited out (budget).
//! 4. readable – after a create, GET the assignment until ARM returns it (read-after-write lag).
//! 5. record   – remember the verified attachment; return the result.
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::Arc;

use super::failures::{details, generic};
use super::resolve::{self, Grantee, ResolvedRegistry, Step};
use super::waits::{Verdict, Waits, condition, human, not_yet, wait};
use super::{ATTACH, Ops, PairArgs};
use crate::attachments::Verified;
use crate::azure::{
    CallContext, ErrorClass, PrincipalType, RegistryId, RoleAssignment, RoleAssignmentCreate, RoleAssignmentFilter,
    RoleAssignmentId, assignment_name, role_definition_id,
};
use crate::queue::{JobContext, JobError, JobHandler, Outcome, RetryPolicy};

pub struct Attach(pub Arc<Ops>);

/// What the grant step found.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Granted {
    id: String,
    name: String,
    /// `created`, `alreadyPresent` (same deterministic name) or `adopted` (another name).
    outcome: String,
    readable: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Progress {
    grantee: Option<Grantee>,
    registry: Option<ResolvedRegistry>,
    granted: Option<Granted>,
    #[serde(default)]
    waits: Waits,
}

impl Progress {
    fn snapshot(&self, waits: &Waits) -> Progress {
        Progress {
            waits: waits.clone(),
            ..self.clone()
        }
    }
}

#[async_trait]
impl JobHandler for Attach {
    fn kind(&self) -> &'static str {
        ATTACH
    }

    fn retry_policy(&self) -> RetryPolicy {
        self.0.settings.retry_policy()
    }

    async fn run(&self, ctx: &JobContext) -> Result<Outcome, JobError> {
        let args: PairArgs = ctx.args()?;
        let mut progress: Progress = ctx.checkpoint();
        let call = CallContext::new(ctx.id);
        let result = self.steps(ctx, &args, &mut progress, &call).await;
        super::record_calls(ctx, &call).await;
        result
    }
}

impl Attach {
    async fn steps(
        &self,
        ctx: &JobContext,
        args: &PairArgs,
        p: &mut Progress,
        call: &CallContext,
    ) -> Result<Outcome, JobError> {
        let ops = &*self.0;
        let mut waits = std::mem::take(&mut p.waits);

        let grantee = match p.grantee.clone() {
            Some(g) => g,
            None => match resolve::grantee(ops, call, &args.cluster, &mut waits, |w| p.snapshot(w)).await? {
                Step::Done(g) => {
                    p.grantee = Some(g.clone());
                    ctx.save_checkpoint(&p.snapshot(&waits)).await?;
                    g
                }
                Step::Wait(outcome) => return Ok(outcome),
            },
        };

        let registry = match p.registry.clone() {
            Some(r) => r,
            None => {
                let r = resolve::registry(ops, call, &args.registry, &mut waits, |w| p.snapshot(w)).await?;
                p.registry = Some(r.clone());
                ctx.save_checkpoint(&p.snapshot(&waits)).await?;
                r
            }
        };
        let registry_id: RegistryId = registry
            .id
            .parse()
            .map_err(|e| JobError::permanent("InvalidRegistryId", format!("ARM returned {e}")))?;

        let mut granted = match p.granted.clone() {
            Some(g) => g,
            None => match self
                .grant(ctx, &registry_id, &registry, &grantee, call, &mut waits, p)
                .await?
            {
                Step::Done(g) => {
                    p.granted = Some(g.clone());
                    ctx.save_checkpoint(&p.snapshot(&waits)).await?;
                    g
                }
                Step::Wait(outcome) => return Ok(outcome),
            },
        };

        if !granted.readable {
            let id = RoleAssignmentId::new(
                registry_id.as_resource_id().clone(),
                uuid::Uuid::parse_str(&granted.name).unwrap_or_default(),
            );
            match ops.azure.get_role_assignment(call, &id).await {
                Ok(Some(_)) => {
                    if let Some(waited) = waits.done(condition::ASSIGNMENT_READABLE) {
                        metrics::histogram!("acr_attach_propagation_seconds", "condition" => condition::ASSIGNMENT_READABLE)
                            .record(waited.as_secs_f64());
                    }
                    granted.readable = true;
                    p.granted = Some(granted.clone());
                }
                Ok(None) => {
                    return match waits.poll(condition::ASSIGNMENT_READABLE, ops.settings.readable_budget) {
                        Verdict::Wait(delay) => Ok(wait(
                            condition::ASSIGNMENT_READABLE,
                            format!(
                                "the role assignment {} was created; waiting until ARM can read it back",
                                granted.id
                            ),
                            delay,
                            &p.snapshot(&waits),
                        )),
                        Verdict::Exhausted(waited) => Err(JobError::permanent(
                            "AssignmentNotReadable",
                            format!(
                                "the role assignment {} was created but ARM still did not return it after {}",
                                granted.id,
                                human(waited)
                            ),
                        )),
                    };
                }
                Err(e) => {
                    return Err(generic(
                        e,
                        "reading the new role assignment back",
                        &mut waits,
                        &ops.settings,
                        |w| p.snapshot(w),
                    ));
                }
            }
        }

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
                job_id: ctx.id,
            })
            .await
            .map_err(|e| JobError::transient("DatabaseUnavailable", format!("recording the attachment failed: {e}")))?;

        Ok(Outcome::Succeeded(json!({
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

    #[allow(clippy::too_many_arguments)]
    async fn grant(
        &self,
        ctx: &JobContext,
        registry_id: &RegistryId,
        registry: &ResolvedRegistry,
        grantee: &Grantee,
        call: &CallContext,
        waits: &mut Waits,
        p: &Progress,
    ) -> Result<Step<Granted>, JobError> {
        let ops = &*self.0;
        let scope = registry_id.as_resource_id();
        let name = assignment_name(registry_id, &grantee.object_id, &registry.role);
        let body = RoleAssignmentCreate {
            role_definition_id: role_definition_id(&registry_id.subscription(), registry.role),
            principal_id: grantee.object_id,
            principal_type: PrincipalType::ServicePrincipal,
            description: Some(format!("AKS pull access, managed by acr-attach (job {})", ctx.id)),
        };
        let err = match ops.azure.put_role_assignment(call, scope, name, &body).await {
            Ok((ra, created)) => {
                self.replicated(waits);
                return Ok(Step::Done(Granted {
                    id: ra.id,
                    name: ra.name,
                    outcome: if created { "created" } else { "alreadyPresent" }.into(),
                    readable: !created,
                }));
            }
            Err(e) => e,
        };
        match err.class() {
            ErrorClass::RoleAssignmentExists => {
                self.replicated(waits);
                match self.find_existing(call, registry_id, registry, grantee, err.existing_role_assignment()).await {
                    Ok(Some(ra)) => Ok(Step::Done(Granted { id: ra.id, name: ra.name, outcome: "adopted".into(), readable: true })),
                    // ARM says it exists but does not list it yet: read-after-write lag of
                    // someone else's recent grant.
                    Ok(None) => match waits.poll(condition::ASSIGNMENT_READABLE, ops.settings.readable_budget) {
                        Verdict::Wait(delay) => Ok(Step::Wait(wait(
                            condition::ASSIGNMENT_READABLE,
                            "ARM reports an existing equivalent role assignment that it does not list yet".into(),
                            delay,
                            &p.snapshot(waits),
                        ))),
                        Verdict::Exhausted(waited) => Err(JobError::permanent(
                            "ExistingAssignmentNotFound",
                            format!("ARM answered RoleAssignmentExists but listed no matching assignment for {}", human(waited)),
                        )
                        .with_details(details(&err))),
                    },
                    Err(e) => Err(generic(e, "looking up the existing role assignment", waits, &ops.settings, |w| p.snapshot(w))),
                }
            }
            ErrorClass::PrincipalNotFound => match waits.poll(condition::PRINCIPAL_REPLICATION, ops.settings.principal_budget) {
                Verdict::Wait(delay) => Err(not_yet(
                    condition::PRINCIPAL_REPLICATION,
                    "PrincipalNotFound",
                    format!(
                        "ARM does not know the principal {} yet (directory replication of a new identity can take minutes)",
                        grantee.object_id
                    ),
                    delay,
                    &p.snapshot(waits),
                )
                .with_details(details(&err))),
                Verdict::Exhausted(waited) => Err(JobError::permanent(
                    "PrincipalNotFound",
                    format!(
                        "the principal {} ({} of the cluster) was still unknown to the directory after {}: it may be wrong, \
                         deleted or replaced (re-read the cluster: its kubelet identity may have changed)",
                        grantee.object_id,
                        grantee.source,
                        human(waited)
                    ),
                )
                .with_details(details(&err))),
            },
            _ => Err(generic(err, "granting the pull role", waits, &ops.settings, |w| p.snapshot(w))),
        }
    }

    fn replicated(&self, waits: &mut Waits) {
        if let Some(waited) = waits.done(condition::PRINCIPAL_REPLICATION) {
            metrics::histogram!("acr_attach_propagation_seconds", "condition" => condition::PRINCIPAL_REPLICATION)
                .record(waited.as_secs_f64());
        }
    }

    /// The equivalent assignment ARM says exists: by the id in its message when given,
    /// otherwise by listing the principal's assignments at the registry.
    async fn find_existing(
        &self,
        call: &CallContext,
        registry_id: &RegistryId,
        registry: &ResolvedRegistry,
        grantee: &Grantee,
        hinted: Option<uuid::Uuid>,
    ) -> Result<Option<RoleAssignment>, crate::azure::AzureError> {
        let ops = &*self.0;
        let scope = registry_id.as_resource_id();
        let matches = |ra: &RoleAssignment| {
            ra.is_at_scope(scope) && ra.is_role(registry.role) && ra.is_for_principal(grantee.object_id)
        };
        if let Some(guid) = hinted
            && let Some(ra) = ops
                .azure
                .get_role_assignment(call, &RoleAssignmentId::new(scope.clone(), guid))
                .await?
            && matches(&ra)
        {
            return Ok(Some(ra));
        }
        let listed = ops
            .azure
            .list_role_assignments(call, scope, RoleAssignmentFilter::PrincipalId(grantee.object_id))
            .await?;
        Ok(listed.into_iter().find(matches))
    }
}
