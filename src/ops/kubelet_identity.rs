//! `kubelet-identity`: prepare a user-assigned identity to be a cluster's kubelet identity
//! (bring-your-own kubelet identity), so group-based and direct pull grants are in place and
//! visible before the cluster's kubelet ever asks for a token. That is the AKS documentation's
//! workaround for the hours-long latency of grants through Entra groups.
//!
//! Steps, in order (each idempotent; progress in the checkpoint):
//! 1. identity   – GET it; absent: `PUT` it (synchronous) in `location`; present: adopt it
//!    (a `PUT` only if the requested tags differ).
//! 2. groups     – each exists, and the identity becomes a member (Graph `$ref`; "already a
//!    member" is success). A brand-new identity is unknown to Graph for a while: that 404 is
//!    waited out within `--identity-replication-budget`.
//! 3. registries – each gets a direct pull grant, exactly as attach makes it (deterministic
//!    name, `principalType: ServicePrincipal`, adopt, `PrincipalNotFound` waited out), readable.
//! 4. visible    – wait until Graph's `checkMemberGroups` shows every membership
//!    (`--membership-visibility-budget`) and ARM's `assignedTo()` shows every registry grant.
//! 5. result     – the ids `az aks create --assign-kubelet-identity` needs, and what the
//!    control-plane identity needs (Managed Identity Operator on this identity).
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use uuid::Uuid;

use super::failures::generic;
use super::grant::{self, Granted, Recipient};
use super::membership::{self, GroupInfo, Membership, MembershipSlots};
use super::resolve::{self, ResolvedRegistry, Step};
use super::waits::{Snapshot, Verdict, Waits, condition, human, record_poll, wait};
use super::{KUBELET_IDENTITY, KubeletIdentityArgs, Ops};
use crate::azure::{AzureErrorClass, CallContext, PrincipalType, RoleAssignmentFilter, UserAssignedIdentity};
use crate::queue::{BackgroundJob, JobContext, JobError, Outcome, RetryPolicy};

/// Built-in role the cluster's control-plane identity needs on a user-assigned kubelet identity.
pub const MANAGED_IDENTITY_OPERATOR: &str = "f1a07417-d97a-45cb-824c-7a7467783830";

pub struct KubeletIdentity(pub Arc<Ops>);

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Identity {
    resource_id: String,
    name: String,
    location: String,
    principal_id: Uuid,
    client_id: String,
    tenant_id: String,
    tags: BTreeMap<String, String>,
    /// `created`, `adopted` or `updated` (tags replaced).
    outcome: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GroupStep {
    id: Uuid,
    info: Option<GroupInfo>,
    membership: Option<Membership>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RegistryStep {
    registry: Option<ResolvedRegistry>,
    granted: Option<Granted>,
    /// The grant showed in `assignedTo()`.
    #[serde(default)]
    visible: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Progress {
    identity: Option<Identity>,
    /// One per requested group, in request order.
    #[serde(default)]
    groups: Vec<GroupStep>,
    /// One per requested registry, in request order.
    #[serde(default)]
    registries: Vec<RegistryStep>,
    #[serde(default)]
    memberships_visible: bool,
    #[serde(default)]
    waits: Waits,
}

crate::ops::waits::snapshot_with_waits!(Progress);

impl MembershipSlots for Progress {
    fn slot(&mut self, group: Uuid) -> &mut Option<Membership> {
        let i = self
            .groups
            .iter()
            .position(|g| g.id == group)
            .expect("a slot per requested group");
        &mut self.groups[i].membership
    }
}

#[async_trait]
impl BackgroundJob for KubeletIdentity {
    const KIND: &'static str = KUBELET_IDENTITY;
    type Args = KubeletIdentityArgs;

    fn retry_policy(&self) -> RetryPolicy {
        self.0.settings.retry_policy()
    }

    async fn run(&self, ctx: &JobContext, args: KubeletIdentityArgs) -> Result<Outcome, JobError> {
        super::with_calls(ctx, async |call| {
            steps(&self.0, ctx, &args, &mut ctx.checkpoint(), call).await
        })
        .await
    }
}

async fn steps(
    ops: &Ops,
    ctx: &JobContext,
    args: &KubeletIdentityArgs,
    p: &mut Progress,
    call: &CallContext,
) -> Result<Outcome, JobError> {
    let mut waits = std::mem::take(&mut p.waits);
    if p.groups.len() != args.groups.len() {
        p.groups = args
            .groups
            .iter()
            .map(|&id| GroupStep {
                id,
                info: None,
                membership: None,
            })
            .collect();
    }
    p.registries.resize_with(args.registries.len(), RegistryStep::default);

    let identity = match p.identity.clone() {
        Some(i) => i,
        None => {
            let i = identity(ops, call, args, &mut waits, |w| p.snapshot(w)).await?;
            p.identity = Some(i.clone());
            ctx.save_checkpoint(&p.snapshot(&waits)).await?;
            i
        }
    };
    let principal = identity.principal_id;
    let who = format!("the identity {} (principal {principal})", identity.name);

    for i in 0..args.groups.len() {
        let group = args.groups[i];
        if p.groups[i].info.is_none() {
            match membership::group(ops, call, group, &mut waits, |w| p.snapshot(w)).await? {
                Step::Done(g) => {
                    p.groups[i].info = Some(g);
                    ctx.save_checkpoint(&p.snapshot(&waits)).await?;
                }
                Step::Wait(outcome) => return Ok(outcome),
            }
        }
        if let Step::Wait(outcome) =
            membership::ensure_member(ops, ctx, call, p, group, principal, &who, KUBELET_IDENTITY, &mut waits).await?
        {
            return Ok(outcome);
        }
    }

    for (i, reference) in args.registries.iter().enumerate() {
        let registry = match p.registries[i].registry.clone() {
            Some(r) => r,
            None => {
                let r = resolve::registry(ops, call, reference, &mut waits, |w| p.snapshot(w)).await?;
                p.registries[i].registry = Some(r.clone());
                ctx.save_checkpoint(&p.snapshot(&waits)).await?;
                r
            }
        };
        let registry_id = resolve::registry_id(&registry)?;
        let mut granted = match p.registries[i].granted.clone() {
            Some(g) => g,
            None => {
                let recipient = Recipient {
                    object_id: principal,
                    principal_type: PrincipalType::ServicePrincipal,
                    who: who.clone(),
                    unknown_hint: "it may have been deleted",
                    description: format!("AKS kubelet pull access, managed by acr-attach (job {})", ctx.id),
                };
                match grant::grant(ops, call, &registry_id, &registry, &recipient, &mut waits, |w| {
                    p.snapshot(w)
                })
                .await?
                {
                    Step::Done(g) => {
                        p.registries[i].granted = Some(g.clone());
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
            p.registries[i].granted = Some(granted);
            ctx.save_checkpoint(&p.snapshot(&waits)).await?;
        }
    }

    if !p.memberships_visible {
        if let Some(outcome) = membership::visible(ops, ctx, call, principal, &who, &args.groups, &mut waits, |w| {
            p.snapshot(w)
        })
        .await?
        {
            return Ok(outcome);
        }
        p.memberships_visible = true;
        ctx.save_checkpoint(&p.snapshot(&waits)).await?;
    }

    for i in 0..p.registries.len() {
        if p.registries[i].visible {
            continue;
        }
        if let Some(outcome) = grant_visible(ops, ctx, call, principal, p, i, &mut waits).await? {
            return Ok(outcome);
        }
        p.registries[i].visible = true;
        ctx.save_checkpoint(&p.snapshot(&waits)).await?;
    }

    Ok(Outcome::Succeeded(result(&identity, p)))
}

/// Create the identity, or adopt the existing one (replacing its tags only if asked to).
async fn identity<C: Serialize>(
    ops: &Ops,
    call: &CallContext,
    args: &KubeletIdentityArgs,
    waits: &mut Waits,
    checkpoint: impl Fn(&Waits) -> C + Copy,
) -> Result<Identity, JobError> {
    let put = async |location: &str, tags: &BTreeMap<String, String>, waits: &mut Waits| {
        ops.azure
            .put_user_assigned_identity(call, &args.identity, location, tags)
            .await
            .map_err(|e| {
                generic(
                    e,
                    "creating or updating the user-assigned identity",
                    waits,
                    &ops.settings,
                    checkpoint,
                )
            })
    };
    let (uami, outcome): (UserAssignedIdentity, &str) =
        match ops.azure.get_user_assigned_identity(call, &args.identity).await {
            Ok(existing) => match &args.tags {
                Some(tags) if *tags != existing.tags => (put(&existing.location, tags, waits).await?, "updated"),
                _ => (existing, "adopted"),
            },
            Err(e) if e.class() == AzureErrorClass::NotFound && e.code.as_deref() == Some("ResourceNotFound") => {
                let Some(location) = &args.location else {
                    return Err(JobError::permanent(
                        "LocationRequired",
                        format!(
                            "the identity {} does not exist; give `location` (e.g. the cluster's region) to create it",
                            args.identity
                        ),
                    ));
                };
                (
                    put(location, &args.tags.clone().unwrap_or_default(), waits).await?,
                    "created",
                )
            }
            Err(e) => {
                return Err(generic(
                    e,
                    "reading the user-assigned identity",
                    waits,
                    &ops.settings,
                    checkpoint,
                ));
            }
        };
    let principal_id = Uuid::parse_str(&uami.principal_id).map_err(|_| {
        JobError::permanent(
            "InvalidIdentity",
            format!(
                "ARM returned the principal id '{}', which is not a GUID",
                uami.principal_id
            ),
        )
    })?;
    Ok(Identity {
        resource_id: uami.id,
        name: uami.name,
        location: uami.location,
        principal_id,
        client_id: uami.client_id,
        tenant_id: uami.tenant_id,
        tags: uami.tags,
        outcome: outcome.into(),
    })
}

/// Does `assignedTo()` at the registry show the identity's direct grant yet?
async fn grant_visible(
    ops: &Ops,
    ctx: &JobContext,
    call: &CallContext,
    principal: Uuid,
    p: &Progress,
    i: usize,
    waits: &mut Waits,
) -> Result<Option<Outcome>, JobError> {
    let c = condition::ASSIGNMENT_READABLE;
    let step = &p.registries[i];
    let (Some(registry), Some(granted)) = (&step.registry, &step.granted) else {
        return Ok(None);
    };
    let registry_id = resolve::registry_id(registry)?;
    let listed = match ops
        .azure
        .list_role_assignments(
            call,
            registry_id.as_resource_id(),
            RoleAssignmentFilter::AtScopeAndAssignedTo(principal),
        )
        .await
    {
        Ok(l) => l,
        Err(e) => {
            return Err(generic(
                e,
                "listing the identity's role assignments",
                waits,
                &ops.settings,
                |w| p.snapshot(w),
            ));
        }
    };
    let shown = listed
        .iter()
        .any(|ra| ra.is_role(registry.role) && ra.is_for_principal(principal));
    let observed = format!(
        "assignedTo('{principal}') at {} {} {}",
        registry.name,
        if shown { "shows" } else { "does not show yet" },
        registry.role_name
    );
    record_poll(ctx, call, c, shown, observed, waits).await;
    if shown {
        waits.met(c);
        return Ok(None);
    }
    match waits.poll(c, ops.settings.readable_budget) {
        Verdict::Wait(delay) => Ok(Some(wait(
            c,
            format!(
                "the grant {} was made; waiting until ARM's assignedTo() on {} shows it",
                granted.id, registry.name
            ),
            delay,
            &p.snapshot(waits),
        ))),
        Verdict::Exhausted(waited) => Err(JobError::permanent(
            "AssignmentNotReadable",
            format!(
                "condition {c}: the grant {} exists but ARM's assignedTo('{principal}') on {} still did not show it after {}",
                granted.id,
                registry.id,
                human(waited)
            ),
        )),
    }
}

fn result(identity: &Identity, p: &Progress) -> serde_json::Value {
    let rid = &identity.resource_id;
    let groups: Vec<_> = p
        .groups
        .iter()
        .map(|g| {
            json!({
                "id": g.id,
                "displayName": g.info.as_ref().and_then(|i| i.display_name.clone()),
                "membership": g.membership.map(Membership::as_str),
            })
        })
        .collect();
    let registries: Vec<_> = p
        .registries
        .iter()
        .filter_map(|r| {
            let (reg, granted) = (r.registry.as_ref()?, r.granted.as_ref()?);
            Some(json!({
                "id": reg.id,
                "loginServer": reg.login_server,
                "role": reg.role_name,
                "assignmentId": granted.id,
                "outcome": granted.outcome,
            }))
        })
        .collect();
    let mut notes = vec![format!(
        "Create the cluster with a user-assigned control-plane identity and this kubelet identity: \
         az aks create --resource-group <rg> --name <cluster> --enable-managed-identity \
         --assign-identity <control-plane-identity-resource-id> --assign-kubelet-identity {rid}"
    )];
    notes.push(format!(
        "The control-plane identity needs the Managed Identity Operator role ({MANAGED_IDENTITY_OPERATOR}) on this \
         identity: az role assignment create --assignee-object-id <control-plane-principal-id> \
         --assignee-principal-type ServicePrincipal --role {MANAGED_IDENTITY_OPERATOR} --scope {rid} \
         (az aks create grants it itself when its caller may)."
    ));
    if !p.groups.is_empty() {
        notes.push(
            "The identity is in its groups before any cluster requests a token with it, so the kubelet's first token \
             already carries the group claims: grants through these groups do not hit the ~24 h token-cache delay. \
             Group memberships changed after the cluster exists do."
                .into(),
        );
    }
    json!({
        "identity": {
            "resourceId": rid,
            "name": identity.name,
            "location": identity.location,
            "clientId": identity.client_id,
            "principalId": identity.principal_id,
            "tenantId": identity.tenant_id,
            "tags": identity.tags,
            "outcome": identity.outcome,
        },
        "groups": groups,
        "registries": registries,
        "kubeletIdentity": { "resourceId": rid, "clientId": identity.client_id, "objectId": identity.principal_id },
        "managedIdentityOperator": {
            "roleDefinitionId": MANAGED_IDENTITY_OPERATOR,
            "scope": rid,
            "assignee": "the cluster's control-plane identity (--assign-identity)",
        },
        "notes": notes,
    })
}
