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
//! 4. verdict  – `canPull`, `cannotPull` or `unknown`, with the findings (see [`findings`]).
use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use super::failures::generic;
use super::resolve::{self, Grantee, Step};
use super::waits::Waits;
use super::{CHECK, Ops};
use crate::azure::{CallContext, Registry, RoleAssignmentFilter, RoleDefinition, roles};
use crate::domain::CheckArgs;
use crate::queue::{JobContext, JobError, Outcome};

pub mod findings;

use findings::{Finding, Reaching, Severity};

/// The control-plane permission that lets an identity pull from a legacy-mode registry.
const PULL_ACTION: &str = "Microsoft.ContainerRegistry/registries/pull/read";
/// The data action that lets an identity pull from an ABAC-mode registry.
const REPOSITORY_READ: &str = "Microsoft.ContainerRegistry/registries/repositories/content/read";

pub struct Check(pub Arc<Ops>);

#[async_trait::async_trait]
impl crate::queue::BackgroundJob for Check {
    const KIND: &'static str = CHECK;
    type Args = CheckArgs;

    fn retry_policy(&self) -> crate::queue::RetryPolicy {
        self.0.settings.retry_policy()
    }

    async fn run(&self, ctx: &JobContext, args: CheckArgs) -> Result<Outcome, JobError> {
        super::with_calls(ctx, async |call| self.steps(&args, call).await).await
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
    async fn steps(&self, args: &CheckArgs, call: &CallContext) -> Result<Outcome, JobError> {
        let ops = &*self.0;
        let mut waits = Waits::default();
        let no_checkpoint = |_: &Waits| ();
        let mut found: Vec<Finding> = Vec::new();

        let cluster = match resolve::read_cluster(ops, call, &args.cluster, &mut waits, no_checkpoint).await {
            Ok(mc) => Some(mc),
            Err(e) => {
                found.push(as_finding(&e).ok_or(e)?);
                None
            }
        };
        let mut grantee: Option<Grantee> = None;
        if let Some(mc) = &cluster {
            found.extend(findings::cluster(mc));
            match resolve::grantee_of(ops, call, &args.cluster, mc, &mut waits, no_checkpoint).await {
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
        let registry = match resolve::read_registry(ops, call, &args.registry, &mut waits, no_checkpoint).await {
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
            let reaching = reaching(ops, call, reg, g.object_id, &mut waits).await?;
            found.extend(findings::grants(reg, &g.object_id.to_string(), &reaching, Utc::now()));
        }
        let verdict = findings::verdict(&found);
        Ok(Outcome::Succeeded(json!({
            "verdict": verdict,
            "findings": found,
            "cluster": { "id": cluster.as_ref().map(|c| c.id.clone()).unwrap_or_else(|| args.cluster.to_string()) },
            "registry": registry.as_ref().map(|r| json!({
                "id": r.id,
                "loginServer": r.login_server,
                "roleAssignmentMode": r.role_assignment_mode.as_str(),
            })),
            "principal": grantee.as_ref().map(|g| json!({ "objectId": g.object_id, "source": g.source, "clientId": g.client_id })),
            "checkedAt": Utc::now(),
        })))
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
