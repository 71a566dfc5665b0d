//! `check`: can this cluster pull from this registry, and if not, exactly why and how to fix it.
//! `az aks check-acr` needs kubectl, cluster credentials and a privileged pod; this reads what
//! ARM knows instead, and (with `probe`) has the cluster try a pull through AKS run-command.
//!
//! Steps (read-only; a missing cluster or registry is a finding, not a failure):
//! 1. cluster  – its state, and the identity that pulls (kubelet identity, or the service
//!    principal of an older cluster, from Graph).
//! 2. registry – by id or name; its state and network settings.
//! 3. grants   – `assignedTo(identity)` at the registry: every assignment reaching the identity,
//!    directly, inherited from a resource group or subscription, or through groups; each role's
//!    definition says whether it lets the identity pull in the registry's permission mode.
//! 4. probe    – with `probe`: a pod in the cluster pulls the image (AKS run-command; see
//!    [`probe`]). The command id is checkpointed as soon as AKS accepts it, and the job waits
//!    between polls, so a restart follows the same command instead of starting another.
//! 5. verdict  – `canPull`, `cannotPull` or `unknown`, with the findings (see [`findings`]); a
//!    probe that pulled (or was refused) decides over what ARM suggests.
use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::failures::{details, generic};
use super::resolve::{self, Grantee, Step};
use super::waits::{Snapshot, Verdict as WaitVerdict, Waits, condition, human, wait};
use super::{CHECK, Ops};
use crate::azure::{AzureErrorClass, CallContext, CommandState, Registry, RoleAssignmentFilter, RoleDefinition, roles};
use crate::domain::CheckArgs;
use crate::queue::{JobContext, JobError, Outcome};

pub mod findings;
mod probe;

use findings::{Finding, Reaching, Severity, Verdict};

/// The control-plane permission that lets an identity pull from a legacy-mode registry.
const PULL_ACTION: &str = "Microsoft.ContainerRegistry/registries/pull/read";
/// The data action that lets an identity pull from an ABAC-mode registry.
const REPOSITORY_READ: &str = "Microsoft.ContainerRegistry/registries/repositories/content/read";

pub struct Check(pub Arc<Ops>);

/// What the ARM part established, kept in the checkpoint while a probe runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    findings: Vec<Finding>,
    cluster: Value,
    registry: Option<Value>,
    principal: Option<Value>,
    login_server: Option<String>,
    run_command_disabled: bool,
}

/// A probe AKS accepted: all a resumed job needs to follow it, not start another.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProbeRun {
    command_id: String,
    /// The image it pulls (`repository:tag`), as chosen when it started.
    image: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Progress {
    report: Option<Report>,
    probe: Option<ProbeRun>,
    #[serde(default)]
    waits: Waits,
}

crate::ops::waits::snapshot_with_waits!(Progress);

#[async_trait::async_trait]
impl crate::queue::BackgroundJob for Check {
    const KIND: &'static str = CHECK;
    type Args = CheckArgs;

    fn retry_policy(&self) -> crate::queue::RetryPolicy {
        self.0.settings.retry_policy()
    }

    async fn run(&self, ctx: &JobContext, args: CheckArgs) -> Result<Outcome, JobError> {
        super::with_calls(ctx, async |call| {
            self.steps(ctx, &args, &mut ctx.checkpoint(), call).await
        })
        .await
    }
}

/// Errors that describe the pair rather than acr-attach's ability to look: they become findings.
const PAIR_PROBLEMS: [&str; 7] = [
    "ClusterNotFound",
    "NoKubeletIdentity",
    "ServicePrincipalNotFound",
    "InvalidKubeletIdentity",
    "InvalidServicePrincipal",
    "RegistryNotFound",
    "AmbiguousRegistryName",
];

fn as_finding(e: &JobError) -> Option<Finding> {
    PAIR_PROBLEMS.contains(&e.code.as_str()).then(|| {
        let fix = match e.code.as_str() {
            "ClusterNotFound" => "check the cluster's resource id (subscription, resource group, name)",
            "RegistryNotFound" | "AmbiguousRegistryName" => "give the registry's full resource id",
            _ => "give the cluster a kubelet identity (az aks update --assign-kubelet-identity) or fix its service principal",
        };
        Finding::new(&e.code, Severity::Error, e.message.clone(), e.details.clone().unwrap_or(json!({}))).fix(fix)
    })
}

impl Check {
    async fn steps(
        &self,
        ctx: &JobContext,
        args: &CheckArgs,
        p: &mut Progress,
        call: &CallContext,
    ) -> Result<Outcome, JobError> {
        let mut waits = std::mem::take(&mut p.waits);
        let report = match p.report.clone() {
            Some(r) => r,
            None => {
                let r = self.read_azure(args, call, &mut waits).await?;
                if args.probe {
                    p.report = Some(r.clone());
                    ctx.save_checkpoint(&p.snapshot(&waits)).await?;
                }
                r
            }
        };
        let mut found = report.findings.clone();
        let mut decided = None;
        if args.probe {
            match self.probe(ctx, args, &report, p, &mut waits, call).await? {
                Step::Wait(outcome) => return Ok(outcome),
                Step::Done((finding, decides)) => {
                    found.push(finding);
                    decided = decides;
                }
            }
        }
        // A pull the cluster did (or could not do) decides over what ARM suggests; a probe
        // that could not tell (not run, image missing, no answer) leaves ARM's verdict.
        let verdict = match decided {
            Some(true) => Verdict::CanPull,
            Some(false) => Verdict::CannotPull,
            None => findings::verdict(&report.findings),
        };
        Ok(Outcome::Succeeded(json!({
            "verdict": verdict,
            "findings": found,
            "cluster": report.cluster,
            "registry": report.registry,
            "principal": report.principal,
            "checkedAt": Utc::now(),
        })))
    }

    /// Steps 1–3: what ARM and Graph show.
    async fn read_azure(&self, args: &CheckArgs, call: &CallContext, waits: &mut Waits) -> Result<Report, JobError> {
        let ops = &*self.0;
        let no_checkpoint = |_: &Waits| ();
        let mut found: Vec<Finding> = Vec::new();
        let cluster = match resolve::read_cluster(ops, call, &args.cluster, waits, no_checkpoint).await {
            Ok(mc) => Some(mc),
            Err(e) => {
                found.push(as_finding(&e).ok_or(e)?);
                None
            }
        };
        let mut grantee: Option<Grantee> = None;
        if let Some(mc) = &cluster {
            found.extend(findings::cluster(mc));
            match resolve::grantee_of(ops, call, &args.cluster, mc, waits, no_checkpoint).await {
                Ok(Step::Done(g)) => grantee = Some(g),
                Ok(Step::Wait(_)) => found.push(Finding::new(
                    "NoKubeletIdentityYet",
                    Severity::Warning,
                    "the cluster is still being created: it has no kubelet identity yet",
                    json!({ "cluster": mc.id, "provisioningState": mc.provisioning_state }),
                )),
                Err(e) => found.push(as_finding(&e).ok_or(e)?),
            }
        }
        let registry = match resolve::read_registry(ops, call, &args.registry, waits, no_checkpoint).await {
            Ok(r) => Some(r),
            Err(e) => {
                found.push(as_finding(&e).ok_or(e)?);
                None
            }
        };
        if let Some(reg) = &registry {
            found.extend(findings::registry(reg));
        }
        if let (Some(g), Some(reg)) = (&grantee, &registry) {
            let reaching = reaching(ops, call, reg, g.object_id, waits).await?;
            let mut judged = findings::grants(reg, &g.object_id.to_string(), &reaching, Utc::now());
            if judged.iter().any(|f| f.code == "NoPullGrant") {
                let recorded = ops
                    .attachments
                    .recent_direct_grant(&reg.id, g.object_id, ops.settings.readable_budget)
                    .await
                    .map_err(|e| {
                        JobError::transient("DatabaseUnavailable", format!("reading the attachment failed: {e}"))
                    })?;
                if let Some((id, at)) = recorded {
                    judged.retain(|f| f.code != "NoPullGrant");
                    judged.push(findings::not_listed_yet(&id, at));
                }
            }
            found.extend(judged);
        }
        Ok(Report {
            findings: found,
            cluster: json!({ "id": cluster.as_ref().map(|c| c.id.clone()).unwrap_or_else(|| args.cluster.to_string()) }),
            registry: registry.as_ref().map(|r| {
                json!({
                    "id": r.id,
                    "loginServer": r.login_server,
                    "roleAssignmentMode": r.role_assignment_mode.as_str(),
                })
            }),
            principal: grantee
                .as_ref()
                .map(|g| json!({ "objectId": g.object_id, "source": g.source, "clientId": g.client_id })),
            login_server: registry
                .as_ref()
                .filter(|_| grantee.is_some())
                .and_then(|r| r.login_server.clone()),
            run_command_disabled: cluster.as_ref().is_some_and(|c| c.run_command_disabled),
        })
    }

    /// The in-cluster probe: start the command once (checkpointed), then follow it, waiting
    /// between polls without holding a worker, within the probe budget.
    async fn probe(
        &self,
        ctx: &JobContext,
        args: &CheckArgs,
        report: &Report,
        p: &mut Progress,
        waits: &mut Waits,
        call: &CallContext,
    ) -> Result<Step<(Finding, Option<bool>)>, JobError> {
        let ops = &*self.0;
        let skipped = |severity, message: &str, fix: &str| {
            Ok(Step::Done((
                Finding::new("ProbeSkipped", severity, message, json!({})).fix(fix),
                None,
            )))
        };
        let Some(login) = report.login_server.clone() else {
            return skipped(
                Severity::Info,
                "no probe: the cluster's identity or the registry could not be resolved",
                "fix the findings above first",
            );
        };
        if report.run_command_disabled {
            return Ok(Step::Done((
                Finding::new(
                    "RunCommandDisabled",
                    Severity::Warning,
                    "the cluster has run-command disabled (apiServerAccessProfile.disableRunCommand), so acr-attach cannot probe from inside it",
                    json!({ "cluster": report.cluster }),
                )
                .fix("enable run-command, or run `az aks check-acr` with cluster credentials"),
                None,
            )));
        }
        // The caller's image, else the one acr-attach last imported into the registry.
        let newest = match (&args.image, &report.registry) {
            _ if p.probe.is_some() => p.probe.as_ref().map(|run| run.image.clone()),
            (None, Some(reg)) => {
                let name = reg["id"]
                    .as_str()
                    .and_then(|id| id.rsplit('/').next())
                    .unwrap_or_default();
                ops.imports
                    .newest_image(name)
                    .await
                    .map_err(|e| JobError::transient("DatabaseUnavailable", e.to_string()))?
            }
            _ => None,
        };
        let Some(image) = newest.or(args.image.clone()) else {
            return skipped(
                Severity::Warning,
                "no probe: no image was named, and acr-attach has imported none into the registry",
                "give \"image\": \"repository:tag\" (an image the registry holds), or import one (POST /v1/imports)",
            );
        };
        let probe = probe::command(&login, &image, ctx.id).map_err(|e| JobError::permanent("InvalidProbe", e))?;
        let state = match &p.probe {
            Some(run) => ops.azure.command_result(call, &args.cluster, &run.command_id).await,
            None => ops.azure.run_command(call, &args.cluster, &probe.command).await,
        };
        let state = match state {
            Ok(s) => s,
            Err(e) if p.probe.is_none() && e.class() == AzureErrorClass::AuthorizationFailed => {
                return Ok(Step::Done((
                    Finding::new(
                        "ProbeNotPermitted",
                        Severity::Warning,
                        format!("acr-attach may not run commands in the cluster: {}", e.message),
                        details(&e),
                    )
                    .fix("grant acr-attach's identity Microsoft.ContainerService/managedClusters/runcommand/action on the cluster (or leave probes off)"),
                    None,
                )));
            }
            Err(e) if p.probe.is_none() && e.class() == AzureErrorClass::Permanent => {
                return Ok(Step::Done((
                    Finding::new(
                        "ProbeRefused",
                        Severity::Warning,
                        format!("AKS refused the probe: {}", e.message),
                        details(&e),
                    ),
                    None,
                )));
            }
            Err(e) => {
                return Err(generic(
                    e,
                    "running the probe in the cluster",
                    waits,
                    &ops.settings,
                    |w| p.snapshot(w),
                ));
            }
        };
        match state {
            CommandState::Finished(result) => {
                waits.done(condition::PROBE_COMMAND);
                Ok(Step::Done(probe::finding(&result, &probe)))
            }
            CommandState::Running {
                command_id,
                retry_after,
            } => {
                if p.probe.is_none() {
                    p.probe = Some(ProbeRun {
                        command_id: command_id.clone(),
                        image: image.clone(),
                    });
                    ctx.save_checkpoint(&p.snapshot(waits)).await?;
                }
                match waits.poll(condition::PROBE_COMMAND, ops.settings.probe_budget) {
                    WaitVerdict::Wait(delay) => Ok(Step::Wait(wait(
                        condition::PROBE_COMMAND,
                        format!(
                            "the probe pod {} is pulling {} in the cluster (command {command_id})",
                            probe.pod, probe.image_ref
                        ),
                        retry_after.map_or(delay, |r| r.max(delay)),
                        &p.snapshot(waits),
                    ))),
                    WaitVerdict::Exhausted(waited) => Ok(Step::Done((
                        Finding::new(
                            "ProbeTimedOut",
                            Severity::Warning,
                            format!("the probe did not finish within {}", human(waited)),
                            json!({ "commandId": command_id, "image": probe.image_ref }),
                        )
                        .fix("probe again; a node that cannot start pods, or a slow registry, delays it"),
                        None,
                    ))),
                }
            }
        }
    }
}

/// Every assignment reaching `principal` at the registry, with what its role allows (each
/// role's definition read once).
async fn reaching(
    ops: &Ops,
    call: &CallContext,
    reg: &Registry,
    principal: Uuid,
    waits: &mut Waits,
) -> Result<Vec<Reaching>, JobError> {
    let registry_id = reg
        .registry_id()
        .map_err(|e| JobError::permanent("InvalidRegistryId", format!("ARM returned {e}")))?;
    let scope = registry_id.as_resource_id().clone();
    let listed = ops
        .azure
        .list_role_assignments(call, &scope, RoleAssignmentFilter::AssignedTo(principal))
        .await
        .map_err(|e| {
            generic(
                e,
                "listing the role assignments reaching the identity",
                waits,
                &ops.settings,
                |_| (),
            )
        })?;
    let mut definitions: HashMap<Uuid, RoleDefinition> = HashMap::new();
    let mut out = Vec::new();
    for a in listed {
        let Some(role) = a.role_definition_guid() else { continue };
        let def = match definitions.entry(role) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => e.insert(
                ops.azure
                    .get_role_definition(call, &scope, role)
                    .await
                    .map_err(|e| generic(e, "reading a role definition", waits, &ops.settings, |_| ()))?,
            ),
        };
        out.push(Reaching {
            assignment_id: a.id.clone(),
            scope: a.scope.clone(),
            role_id: a.role_definition_id.clone(),
            role_name: def.role_name.clone(),
            principal_id: a.principal_id.clone(),
            principal_type: a.principal_type.as_ref().map(|t| t.as_str().to_string()),
            created_on: a
                .created_on
                .as_deref()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc)),
            condition: a.condition.clone(),
            pull_action: roles::permits(&def.permissions, PULL_ACTION),
            repository_read: roles::permits_data_action(&def.permissions, REPOSITORY_READ),
        });
    }
    Ok(out)
}
