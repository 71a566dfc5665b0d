//! The first steps of attach and detach: who is the grantee (the cluster's kubelet identity,
//! or its service principal), and which registry is meant.
use chrono::{DateTime, Utc};
use serde::Serialize as Ser;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use uuid::Uuid;

use super::failures::{details, generic};
use super::waits::{Verdict, Waits, condition, human, wait};
use super::{Ops, RegistryRef};
use crate::azure::{AzureErrorClass, CallContext, ClusterId, ManagedCluster, Registry};
use crate::queue::{JobError, Outcome};

/// A step either produced its value or asks the job to wait.
pub enum Step<T> {
    Done(T),
    Wait(Outcome),
}

/// The identity that pulls images for the cluster.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Grantee {
    pub object_id: Uuid,
    /// `kubeletIdentity` (managed-identity clusters) or `servicePrincipal` (older clusters).
    pub source: String,
    pub client_id: Option<String>,
    pub resource_id: Option<String>,
    /// Set when another job read it and handed it over (a batch's shared read): the job
    /// trusts it for [`HANDOVER_LIFETIME`] from then, and reads it itself after that. Absent
    /// when the job read it itself (kept for the job's whole life, as before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<DateTime<Utc>>,
}

/// The registry as ARM spells it, and the pull role its permission mode honours.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedRegistry {
    pub id: String,
    pub name: String,
    pub login_server: Option<String>,
    pub role_assignment_mode: String,
    pub role: Uuid,
    pub role_name: String,
    /// As [`Grantee::resolved_at`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<DateTime<Utc>>,
}

/// How long a read handed over by another job (a batch's registry or cluster read) stands in
/// for the item job's own. Short: a registry's permission mode or a cluster's kubelet identity
/// rarely changes, but an item that runs later than this (a big batch under ARM's quota, a
/// long wait) reads it again rather than act on a stale picture.
pub const HANDOVER_LIFETIME: Duration = Duration::from_secs(5 * 60);

/// Whether a handed-over read is still young enough to use (a job's own reads always are).
fn fresh(resolved_at: Option<DateTime<Utc>>) -> bool {
    resolved_at.is_none_or(|at| {
        let age = Utc::now().signed_duration_since(at);
        age >= chrono::TimeDelta::zero() && age.to_std().is_ok_and(|a| a < HANDOVER_LIFETIME)
    })
}

const TERMINAL: [&str; 3] = ["Succeeded", "Failed", "Canceled"];

pub async fn grantee<C: Ser>(
    ops: &Ops,
    call: &CallContext,
    cluster: &ClusterId,
    waits: &mut Waits,
    checkpoint: impl Fn(&Waits) -> C,
) -> Result<Step<Grantee>, JobError> {
    let mc = read_cluster(ops, call, cluster, waits, &checkpoint).await?;
    grantee_of(ops, call, cluster, &mc, waits, checkpoint).await
}

/// GETs the cluster; a missing one is `ClusterNotFound`.
pub async fn read_cluster<C: Ser>(
    ops: &Ops,
    call: &CallContext,
    cluster: &ClusterId,
    waits: &mut Waits,
    checkpoint: impl Fn(&Waits) -> C,
) -> Result<ManagedCluster, JobError> {
    match ops.azure.get_managed_cluster(call, cluster).await {
        Ok(mc) => Ok(mc),
        Err(e) if e.class() == AzureErrorClass::NotFound => Err(JobError::permanent(
            "ClusterNotFound",
            format!(
                "the managed cluster {cluster} does not exist ({})",
                e.code.clone().unwrap_or_default()
            ),
        )
        .with_details(details(&e))),
        Err(e) => Err(generic(
            e,
            "reading the managed cluster",
            waits,
            &ops.settings,
            checkpoint,
        )),
    }
}

/// The identity that pulls for a cluster just read: its kubelet identity, or the object id
/// of its service principal (from Microsoft Graph); a cluster still being created is waited for.
pub async fn grantee_of<C: Ser>(
    ops: &Ops,
    call: &CallContext,
    cluster: &ClusterId,
    mc: &ManagedCluster,
    waits: &mut Waits,
    checkpoint: impl Fn(&Waits) -> C,
) -> Result<Step<Grantee>, JobError> {
    if let Some(oid) = mc.kubelet_object_id() {
        let object_id = Uuid::parse_str(oid).map_err(|_| {
            JobError::permanent(
                "InvalidKubeletIdentity",
                format!("the cluster reports a kubelet object id '{oid}' that is not a GUID"),
            )
        })?;
        waits.met(condition::CLUSTER_PROVISIONING);
        let k = mc.kubelet_identity.clone().unwrap_or_default();
        return Ok(Step::Done(Grantee {
            object_id,
            source: "kubeletIdentity".into(),
            client_id: k.client_id,
            resource_id: k.resource_id,
            resolved_at: None,
        }));
    }
    if let Some(app_id) = mc.service_principal_app_id() {
        let app = Uuid::parse_str(app_id).map_err(|_| {
            JobError::permanent(
                "InvalidServicePrincipal",
                format!("the cluster's service principal client id '{app_id}' is not a GUID"),
            )
        })?;
        return match ops.azure.get_service_principal_by_app_id(call, app).await {
            Ok(Some(sp)) => {
                let object_id = Uuid::parse_str(&sp.id).map_err(|_| {
                    JobError::permanent(
                        "InvalidServicePrincipal",
                        format!("Graph returned a non-GUID object id '{}'", sp.id),
                    )
                })?;
                Ok(Step::Done(Grantee {
                    object_id,
                    source: "servicePrincipal".into(),
                    client_id: Some(app_id.into()),
                    resource_id: None,
                    resolved_at: None,
                }))
            }
            Ok(None) => Err(JobError::permanent(
                "ServicePrincipalNotFound",
                format!(
                    "the cluster uses the service principal with application id {app_id}, which Microsoft Graph does not know"
                ),
            )),
            Err(e) => Err(generic(
                e,
                "resolving the cluster's service principal in Microsoft Graph",
                waits,
                &ops.settings,
                checkpoint,
            )),
        };
    }
    let state = mc.provisioning_state.clone().unwrap_or_else(|| "Unknown".into());
    if TERMINAL.iter().any(|t| t.eq_ignore_ascii_case(&state)) {
        return Err(JobError::permanent(
            "NoKubeletIdentity",
            format!(
                "the cluster {cluster} (provisioningState {state}) reports neither a kubelet identity nor a service principal; \
                 grant pull to the identity named <cluster>-agentpool in its node resource group yourself"
            ),
        ));
    }
    match waits.poll(condition::CLUSTER_PROVISIONING, ops.settings.provisioning_budget) {
        Verdict::Wait(delay) => Ok(Step::Wait(wait(
            condition::CLUSTER_PROVISIONING,
            format!(
                "the cluster is still being created (provisioningState {state}); its kubelet identity does not exist yet"
            ),
            delay,
            &checkpoint(waits),
        ))),
        Verdict::Exhausted(waited) => Err(JobError::permanent(
            "ClusterNotReady",
            format!(
                "the cluster was still {state} without a kubelet identity after {}",
                human(waited)
            ),
        )),
    }
}

pub async fn registry<C: Ser>(
    ops: &Ops,
    call: &CallContext,
    reference: &RegistryRef,
    waits: &mut Waits,
    checkpoint: impl Fn(&Waits) -> C + Copy,
) -> Result<ResolvedRegistry, JobError> {
    let reg = read_registry(ops, call, reference, waits, checkpoint).await?;
    let role = crate::azure::pull_role_for(&reg);
    let role_name = crate::azure::roles::pull_role_name(role);
    Ok(ResolvedRegistry {
        id: reg.id.clone(),
        name: reg.name.clone(),
        login_server: reg.login_server.clone(),
        role_assignment_mode: reg.role_assignment_mode.as_str().to_string(),
        role,
        role_name: role_name.into(),
        resolved_at: None,
    })
}

/// Finds the registry (by id, or by bare name through Azure Resource Graph) and GETs it:
/// `RegistryNotFound` or `AmbiguousRegistryName` when it cannot.
pub async fn read_registry<C: Ser>(
    ops: &Ops,
    call: &CallContext,
    reference: &RegistryRef,
    waits: &mut Waits,
    checkpoint: impl Fn(&Waits) -> C + Copy,
) -> Result<Registry, JobError> {
    let id = match reference {
        RegistryRef::Id(id) => id.clone(),
        RegistryRef::Name(name) => {
            let subs = ops.azure.default_subscriptions();
            let found = ops.azure.find_registries_by_name(call, name, subs).await.map_err(|e| {
                generic(
                    e,
                    "searching the registry by name (Azure Resource Graph)",
                    waits,
                    &ops.settings,
                    checkpoint,
                )
            })?;
            let scope = if subs.is_empty() {
                "every subscription acr-attach can read".to_string()
            } else {
                format!(
                    "subscriptions {}",
                    subs.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", ")
                )
            };
            match found.as_slice() {
                [] => {
                    return Err(JobError::permanent(
                        "RegistryNotFound",
                        format!(
                            "no registry named '{name}' in {scope}; give the registry's resource id to attach one elsewhere"
                        ),
                    ));
                }
                [one] => one
                    .registry_id()
                    .map_err(|e| JobError::permanent("InvalidRegistryId", e.to_string()))?,
                many => {
                    let ids: Vec<_> = many.iter().map(|r| r.id.clone()).collect();
                    return Err(JobError::permanent(
                        "AmbiguousRegistryName",
                        format!(
                            "{} registries are named '{name}' in {scope}: {}; give the resource id instead",
                            ids.len(),
                            ids.join(", ")
                        ),
                    )
                    .with_details(serde_json::json!({ "matches": ids })));
                }
            }
        }
    };
    match ops.azure.get_registry(call, &id).await {
        Ok(r) => Ok(r),
        Err(e) if e.class() == AzureErrorClass::NotFound => Err(JobError::permanent(
            "RegistryNotFound",
            format!(
                "the registry {id} does not exist ({})",
                e.code.clone().unwrap_or_default()
            ),
        )
        .with_details(details(&e))),
        Err(e) => Err(generic(e, "reading the registry", waits, &ops.settings, checkpoint)),
    }
}

/// The resolved registry's id, parsed (ARM returned it, so a failure is ARM's fault).
pub fn registry_id(registry: &ResolvedRegistry) -> Result<crate::azure::RegistryId, JobError> {
    registry
        .id
        .parse()
        .map_err(|e| JobError::permanent("InvalidRegistryId", format!("ARM returned {e}")))
}

/// What a job must know before it touches a grant: who pulls, and from which registry.
pub struct Pair {
    pub grantee: Grantee,
    pub registry: ResolvedRegistry,
    pub registry_id: crate::azure::RegistryId,
}

/// Implements [`PairProgress`] and [`super::waits::Snapshot`] for a checkpoint struct with
/// `grantee`, `registry` and `waits` fields.
macro_rules! pair_progress {
    ($t:ty) => {
        impl $crate::ops::resolve::PairProgress for $t {
            fn pair_slots(
                &mut self,
            ) -> (
                &mut Option<$crate::ops::resolve::Grantee>,
                &mut Option<$crate::ops::resolve::ResolvedRegistry>,
            ) {
                (&mut self.grantee, &mut self.registry)
            }
        }

        $crate::ops::waits::snapshot_with_waits!($t);
    };
}
pub(crate) use pair_progress;

/// The value of a step that is done; when the step must wait, the attempt returns its outcome.
macro_rules! step {
    ($e:expr) => {
        match $e {
            $crate::ops::resolve::Step::Done(v) => v,
            $crate::ops::resolve::Step::Wait(outcome) => return Ok(outcome),
        }
    };
}
pub(crate) use step;

/// Every pair job's first step: the waits taken out of the checkpoint `$p`, and the pair
/// resolved (and checkpointed); evaluates to `(Pair, Waits)`, or returns the attempt's wait.
macro_rules! resolved_pair {
    ($ops:expr, $ctx:expr, $call:expr, $args:expr, $p:expr, detaching: $detaching:expr) => {{
        let mut waits = std::mem::take(&mut $p.waits);
        let pair = $crate::ops::resolve::step!(
            $crate::ops::resolve::pair($ops, $ctx, $call, $args, $p, &mut waits, $detaching).await?
        );
        (pair, waits)
    }};
}
pub(crate) use resolved_pair;

/// The [`crate::queue::BackgroundJob`] of a pair kind (attach, detach): its kind, `PairArgs`,
/// the configured back-off, and a run whose Azure calls go to the timeline; with a `group` in
/// the arguments the group variant of the steps runs (`$group::steps`), else `Self::steps`.
macro_rules! pair_job {
    ($job:ty, $kind:expr, $group:ident) => {
        #[async_trait::async_trait]
        impl $crate::queue::BackgroundJob for $job {
            const KIND: &'static str = $kind;
            type Args = $crate::domain::PairArgs;

            fn retry_policy(&self) -> $crate::queue::RetryPolicy {
                self.0.settings.retry_policy()
            }

            async fn run(
                &self,
                ctx: &$crate::queue::JobContext,
                args: $crate::domain::PairArgs,
            ) -> Result<$crate::queue::Outcome, $crate::queue::JobError> {
                $crate::ops::with_calls(ctx, async |call| match args.group {
                    Some(group) => $crate::ops::$group::steps(&self.0, ctx, &args, group, call).await,
                    None => self.steps(ctx, &args, &mut ctx.checkpoint(), call).await,
                })
                .await
            }
        }
    };
}
pub(crate) use pair_job;

/// A checkpoint that keeps the resolved pair, so a resumed job does not read it again.
pub trait PairProgress: super::waits::Snapshot {
    fn pair_slots(&mut self) -> (&mut Option<Grantee>, &mut Option<ResolvedRegistry>);
}

/// The first two steps of every attach and detach, read in parallel and checkpointed. When
/// `detaching`, a deleted cluster's identity is the one recorded at attach time.
pub async fn pair<P: PairProgress>(
    ops: &Ops,
    ctx: &crate::queue::JobContext,
    call: &CallContext,
    args: &super::PairArgs,
    p: &mut P,
    waits: &mut Waits,
    detaching: bool,
) -> Result<Step<Pair>, JobError> {
    // The cluster and the registry do not depend on each other: read them at once (each with
    // its own copy of the waits, merged after), and checkpoint both together.
    // A read handed over by a batch that has grown old is read again (and replaced).
    let known_grantee = p.pair_slots().0.clone().filter(|g| fresh(g.resolved_at));
    let known_registry = p.pair_slots().1.clone().filter(|r| fresh(r.resolved_at));
    let (mut grantee_waits, mut registry_waits) = (waits.clone(), waits.clone());
    let (found_grantee, found_registry) = {
        let snapshot = |w: &Waits| p.snapshot(w);
        let find_grantee = async {
            match known_grantee.clone() {
                Some(g) => Ok(Step::Done(g)),
                None => grantee(ops, call, &args.cluster, &mut grantee_waits, snapshot).await,
            }
        };
        let find_registry = async {
            match known_registry.clone() {
                Some(r) => Ok(r),
                None => registry(ops, call, &args.registry, &mut registry_waits, snapshot).await,
            }
        };
        tokio::join!(find_grantee, find_registry)
    };
    waits.join(grantee_waits, registry_waits);
    // Keep what was found even when the other read failed or must wait, so the next attempt
    // reads only what is missing (with one read token left, two reads at once must not keep
    // failing each other); the attempt's own checkpoint is this one.
    let mut found_new = false;
    if let (None, Ok(Step::Done(g))) = (&known_grantee, &found_grantee) {
        *p.pair_slots().0 = Some(g.clone());
        found_new = true;
    }
    if let (None, Ok(r)) = (&known_registry, &found_registry) {
        *p.pair_slots().1 = Some(r.clone());
        found_new = true;
    }
    let checkpoint = p.snapshot(waits);
    if found_new {
        ctx.save_checkpoint(&checkpoint).await?;
    }
    let grantee = match found_grantee {
        Ok(Step::Done(g)) => g,
        Ok(Step::Wait(mut outcome)) => {
            if let Outcome::Wait(w) = &mut outcome {
                w.checkpoint = serde_json::to_value(&checkpoint).ok();
            }
            return Ok(Step::Wait(outcome));
        }
        Err(e) if detaching && e.code == "ClusterNotFound" => recorded_grantee(ops, args).await?.ok_or(e)?,
        Err(e) => return Err(e.with_checkpoint(&checkpoint)),
    };
    let registry = found_registry.map_err(|e| e.with_checkpoint(&checkpoint))?;
    let registry_id = registry_id(&registry)?;
    Ok(Step::Done(Pair {
        grantee,
        registry,
        registry_id,
    }))
}

/// The identity recorded when the pair was attached (the cluster may be gone since).
async fn recorded_grantee(ops: &Ops, args: &super::PairArgs) -> Result<Option<Grantee>, JobError> {
    let principal = ops
        .attachments
        .principal_of(&args.cluster.lower_key(), &args.registry.name())
        .await
        .map_err(|e| JobError::transient("DatabaseUnavailable", e.to_string()))?;
    Ok(principal.map(|object_id| Grantee {
        object_id,
        source: "recordedAtAttach".into(),
        client_id: None,
        resource_id: None,
        resolved_at: None,
    }))
}
