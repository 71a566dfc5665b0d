//! What Azure shows of the pairs a sweep verifies, read in bulk so the cost grows with the
//! number of registries, not of attachments:
//!
//! - clusters and their kubelet identities: one Resource Graph query per 250 subscriptions;
//! - registries and their permission modes: one Resource Graph query likewise;
//! - grants: one role-assignment list (`atScope()`) per registry.
//!
//! Resource Graph lags behind ARM, so every *negative* reading (a cluster or registry missing,
//! a kubelet identity or mode other than recorded) is confirmed with a `GET` before it can
//! become a drift; those are few (the drifted ones), and a registry gone under its id is looked
//! for by name (it may have moved). A read that fails leaves its pairs unverified for this
//! sweep instead of failing the sweep; only a failing Resource Graph query fails the attempt.
use std::collections::{BTreeMap, BTreeSet, HashMap};

use futures::StreamExt;
use uuid::Uuid;

use super::super::Ops;
use super::super::failures::generic;
use super::super::waits::Waits;
use crate::attachments::Seen;
use crate::azure::models::trailing_guid;
use crate::azure::{
    AzureError, AzureErrorClass, CallContext, ClusterId, RegistryId, ResourceId, RoleAssignment, RoleAssignmentFilter,
    RoleAssignmentMode, SubscriptionId, pull_role_for,
};
use crate::queue::JobError;

/// Role-assignment lists in flight at once (ARM throttles per subscription and caller).
const CONCURRENT_LISTS: usize = 4;

#[derive(Debug, Clone)]
pub enum ClusterState {
    /// `kubelet`: its kubelet identity's object id (`None` for a service-principal cluster).
    Present {
        kubelet: Option<Uuid>,
    },
    Gone,
    Unread(String),
}

#[derive(Debug, Clone)]
pub enum RegistryState {
    /// `role`: the pull role its permission mode honours.
    Present {
        scope: ResourceId,
        role: Uuid,
        mode: String,
    },
    Gone,
    /// Gone under its id, but registries of that name exist: these.
    Moved(Vec<String>),
    Unread(String),
}

/// Keyed by lower-cased ids (as `Seen::cluster_key` and `Seen::registry_key`).
#[derive(Debug, Default)]
pub struct Inventory {
    pub clusters: HashMap<String, ClusterState>,
    pub registries: HashMap<String, RegistryState>,
    /// Each present registry's assignments at or above it, or why they could not be read.
    pub grants: HashMap<String, Result<Vec<RoleAssignment>, String>>,
}

impl Inventory {
    pub async fn read(ops: &Ops, call: &CallContext, seen: &[Seen]) -> Result<Inventory, JobError> {
        let mut inv = Inventory::default();
        inv.read_clusters(ops, call, seen).await?;
        inv.read_registries(ops, call, seen).await?;
        inv.read_grants(ops, call).await;
        Ok(inv)
    }

    async fn read_clusters(&mut self, ops: &Ops, call: &CallContext, seen: &[Seen]) -> Result<(), JobError> {
        let ids: BTreeMap<String, Result<ClusterId, String>> = seen
            .iter()
            .map(|s| (s.cluster_key.clone(), s.cluster_id.parse().map_err(|e| format!("{e}"))))
            .collect();
        let subs = subscriptions(ids.values().filter_map(|r| r.as_ref().ok()).map(|c| c.subscription()));
        let listed: HashMap<String, Option<Uuid>> = ops
            .azure
            .cluster_identities(call, &subs)
            .await
            .map_err(|e| arg_failed(ops, e, "reading the clusters through Azure Resource Graph"))?
            .into_iter()
            .map(|c| (c.id.to_ascii_lowercase(), Uuid::parse_str(&c.kubelet_object_id).ok()))
            .collect();
        for (key, id) in ids {
            let id = match id {
                Ok(id) => id,
                Err(e) => {
                    self.clusters.insert(key, ClusterState::Unread(e));
                    continue;
                }
            };
            let principals = || seen.iter().filter(|s| s.cluster_key == key).map(|s| s.principal_id);
            let state = match listed.get(&key) {
                // Listed with the identity every pair recorded (or none to compare, as for a
                // service-principal cluster): nothing to confirm.
                Some(kubelet) if kubelet.is_none() || principals().all(|p| p == *kubelet) => {
                    ClusterState::Present { kubelet: *kubelet }
                }
                _ => match ops.azure.get_managed_cluster(call, &id).await {
                    Ok(mc) => ClusterState::Present {
                        kubelet: mc.kubelet_object_id().and_then(|k| Uuid::parse_str(k).ok()),
                    },
                    Err(e) if e.class() == AzureErrorClass::NotFound => ClusterState::Gone,
                    Err(e) => ClusterState::Unread(unread("reading the cluster", &e)),
                },
            };
            self.clusters.insert(key, state);
        }
        Ok(())
    }

    async fn read_registries(&mut self, ops: &Ops, call: &CallContext, seen: &[Seen]) -> Result<(), JobError> {
        let ids: BTreeMap<String, Result<RegistryId, String>> = seen
            .iter()
            .map(|s| {
                (
                    s.registry_key.clone(),
                    s.registry_id.parse().map_err(|e| format!("{e}")),
                )
            })
            .collect();
        let subs = subscriptions(ids.values().filter_map(|r| r.as_ref().ok()).map(|r| r.subscription()));
        let listed: HashMap<String, RoleAssignmentMode> = ops
            .azure
            .registries_in(call, &subs)
            .await
            .map_err(|e| arg_failed(ops, e, "reading the registries through Azure Resource Graph"))?
            .into_iter()
            .map(|r| (r.id.to_ascii_lowercase(), r.role_assignment_mode))
            .collect();
        for (key, id) in ids {
            let id = match id {
                Ok(id) => id,
                Err(e) => {
                    self.registries.insert(key, RegistryState::Unread(e));
                    continue;
                }
            };
            let roles = || seen.iter().filter(|s| s.registry_key == key).map(recorded_role);
            let state = match listed.get(&key) {
                // Listed in the mode every pair's role was chosen for: nothing to confirm.
                Some(mode) if roles().all(|r| r.is_none_or(|r| r == role_of(mode))) => present(&id, mode),
                _ => match ops.azure.get_registry(call, &id).await {
                    Ok(reg) => present(&id, &reg.role_assignment_mode),
                    Err(e) if e.class() == AzureErrorClass::NotFound => moved_or_gone(ops, call, &id).await,
                    Err(e) => RegistryState::Unread(unread("reading the registry", &e)),
                },
            };
            self.registries.insert(key, state);
        }
        Ok(())
    }

    /// One list per present registry, a few at a time.
    async fn read_grants(&mut self, ops: &Ops, call: &CallContext) {
        let scopes: Vec<(String, ResourceId)> = self
            .registries
            .iter()
            .filter_map(|(k, r)| match r {
                RegistryState::Present { scope, .. } => Some((k.clone(), scope.clone())),
                _ => None,
            })
            .collect();
        let read: Vec<_> = futures::stream::iter(scopes)
            .map(|(key, scope)| async move {
                let listed = ops
                    .azure
                    .list_role_assignments(call, &scope, RoleAssignmentFilter::AtScope)
                    .await
                    .map_err(|e| unread("listing the registry's role assignments", &e));
                (key, listed)
            })
            .buffer_unordered(CONCURRENT_LISTS)
            .collect()
            .await;
        self.grants.extend(read);
    }

    /// How many registries' grants were read (the sweep's cost driver).
    pub fn registries_read(&self) -> usize {
        self.grants.len()
    }
}

/// The pull role a pair was granted (from its recorded role definition id).
pub fn recorded_role(seen: &Seen) -> Option<Uuid> {
    seen.role_definition_id.as_deref().and_then(trailing_guid)
}

/// The pull role of a permission mode (asked of the one function that decides it for attach).
fn role_of(mode: &RoleAssignmentMode) -> Uuid {
    pull_role_for(&crate::azure::Registry {
        role_assignment_mode: mode.clone(),
        ..Default::default()
    })
}

fn present(id: &RegistryId, mode: &RoleAssignmentMode) -> RegistryState {
    RegistryState::Present {
        scope: id.as_resource_id().clone(),
        role: role_of(mode),
        mode: mode.as_str().to_string(),
    }
}

/// A registry gone under its id: moved if Resource Graph finds its name elsewhere (in the
/// configured subscriptions, as attach by name searches).
async fn moved_or_gone(ops: &Ops, call: &CallContext, id: &RegistryId) -> RegistryState {
    match ops
        .azure
        .find_registries_by_name(call, &id.registry_name(), ops.azure.default_subscriptions())
        .await
    {
        Ok(found) => {
            let elsewhere: Vec<String> = found
                .into_iter()
                .map(|r| r.id)
                .filter(|other| !other.eq_ignore_ascii_case(&id.to_string()))
                .collect();
            if elsewhere.is_empty() {
                RegistryState::Gone
            } else {
                RegistryState::Moved(elsewhere)
            }
        }
        Err(e) => RegistryState::Unread(unread("searching the registry by name", &e)),
    }
}

fn subscriptions(subs: impl Iterator<Item = SubscriptionId>) -> Vec<SubscriptionId> {
    subs.collect::<BTreeSet<_>>().into_iter().collect()
}

fn unread(what: &str, e: &AzureError) -> String {
    format!(
        "{what} failed ({}): {}",
        e.code.as_deref().unwrap_or("no code"),
        e.message
    )
}

/// A Resource Graph query failed: the whole sweep needs it, so the attempt fails (and retries
/// if the error is transient).
fn arg_failed(ops: &Ops, e: AzureError, what: &str) -> JobError {
    generic(e, what, &mut Waits::default(), &ops.settings, |_| ())
}
