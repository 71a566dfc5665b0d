//! Whether one pair still holds, from what the sweep read of Azure ([`Inventory`]): pure, so
//! each reason is unit-tested without Azure.
//!
//! The reasons, in the order they are looked for (the first that applies is the drift):
//! `clusterGone`, `registryGone` / `registryMoved`, `kubeletIdentityChanged` (the cluster
//! reports another kubelet identity than the one granted; service-principal clusters are not
//! compared), `modeSwitched` (the registry's mode honours another pull role than the one
//! granted), `assignmentGone` (neither the recorded assignment nor an equivalent one, same
//! principal and role made exactly at the registry, exists). For a pair attached through a
//! group, the grant looked for is the group's.
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::inventory::{ClusterState, Inventory, RegistryState, recorded_role};
use crate::attachments::Seen;
use crate::azure::roles::pull_role_name;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Reason {
    AssignmentGone,
    KubeletIdentityChanged,
    ClusterGone,
    RegistryGone,
    RegistryMoved,
    ModeSwitched,
    /// Through a group: the group (or a group above it) now holds more than pull, so the
    /// kubelet identity, a member, does too (see `ops::group_guard`).
    GroupGrantsMoreThanPull,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::AssignmentGone => "assignmentGone",
            Reason::KubeletIdentityChanged => "kubeletIdentityChanged",
            Reason::ClusterGone => "clusterGone",
            Reason::RegistryGone => "registryGone",
            Reason::RegistryMoved => "registryMoved",
            Reason::ModeSwitched => "modeSwitched",
            Reason::GroupGrantsMoreThanPull => "groupGrantsMoreThanPull",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Azure shows the attachment, through this assignment.
    Holds { assignment_id: String },
    /// `repair_to`: the registry (id) an attach job would restore the pair with, if it can be
    /// repaired at all (not when the cluster or registry is gone, or moved ambiguously).
    Drifted {
        reason: Reason,
        detail: Value,
        repair_to: Option<String>,
    },
    /// What Azure shows could not be read this time.
    Unverified(String),
}

fn drifted(reason: Reason, detail: Value, repair_to: Option<&str>) -> Verdict {
    Verdict::Drifted {
        reason,
        detail,
        repair_to: repair_to.map(str::to_string),
    }
}

pub fn judge(seen: &Seen, inv: &Inventory) -> Verdict {
    let kubelet = match inv.clusters.get(&seen.cluster_key) {
        Some(ClusterState::Present { kubelet }) => *kubelet,
        Some(ClusterState::Gone) => return drifted(Reason::ClusterGone, json!({}), None),
        Some(ClusterState::Unread(why)) => return Verdict::Unverified(why.clone()),
        None => return Verdict::Unverified("the cluster was not read".into()),
    };
    let (scope, role, mode) = match inv.registries.get(&seen.registry_key) {
        Some(RegistryState::Present { scope, role, mode }) => (scope, *role, mode),
        Some(RegistryState::Gone) => return drifted(Reason::RegistryGone, json!({}), None),
        Some(RegistryState::Moved(to)) => {
            let single = (to.len() == 1).then(|| to[0].as_str());
            return drifted(Reason::RegistryMoved, json!({ "movedTo": to }), single);
        }
        Some(RegistryState::Unread(why)) => return Verdict::Unverified(why.clone()),
        None => return Verdict::Unverified("the registry was not read".into()),
    };
    let here = Some(seen.registry_id.as_str());
    if let Some(now) = kubelet
        && seen.principal_id != Some(now)
    {
        let detail = json!({ "recordedPrincipalId": seen.principal_id, "kubeletObjectId": now });
        return drifted(Reason::KubeletIdentityChanged, detail, here);
    }
    let granted = recorded_role(seen);
    if granted.is_some_and(|g| g != role) {
        let detail = json!({
            "roleAssignmentMode": mode,
            "grantedRole": granted.map(pull_role_name),
            "pullRole": pull_role_name(role),
        });
        return drifted(Reason::ModeSwitched, detail, here);
    }
    let grants = match inv.grants.get(&seen.registry_key) {
        Some(Ok(g)) => g,
        Some(Err(why)) => return Verdict::Unverified(why.clone()),
        None => return Verdict::Unverified("the registry's role assignments were not read".into()),
    };
    let grantee: Option<Uuid> = seen.group().or(seen.principal_id);
    let recorded = grants.iter().find(|a| {
        seen.assignment_id
            .as_deref()
            .is_some_and(|id| a.id.eq_ignore_ascii_case(id))
    });
    // Re-granted by hand (or by the Azure CLI) under another name: the attachment holds again.
    let equivalent = || {
        grants
            .iter()
            .find(|a| grantee.is_some_and(|g| a.is_for_principal(g)) && a.is_role(role) && a.is_at_scope(scope))
    };
    match recorded.or_else(equivalent) {
        Some(a) => Verdict::Holds {
            assignment_id: a.id.clone(),
        },
        None => drifted(
            Reason::AssignmentGone,
            json!({ "assignmentId": seen.assignment_id, "grantee": grantee }),
            here,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::azure::{ACR_PULL, CONTAINER_REGISTRY_REPOSITORY_READER, ResourceId, RoleAssignment};
    use chrono::Utc;

    const CLUSTER: &str = "/subscriptions/11111111-1111-4111-8111-111111111111/resourcegroups/rg/providers/microsoft.containerservice/managedclusters/c1";
    const REGISTRY: &str = "/subscriptions/11111111-1111-4111-8111-111111111111/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/acr1";
    const KUBELET: Uuid = Uuid::from_u128(1);

    fn role_id(role: Uuid) -> String {
        format!(
            "/subscriptions/11111111-1111-4111-8111-111111111111/providers/Microsoft.Authorization/roleDefinitions/{role}"
        )
    }

    fn assignment(name: &str, principal: Uuid, role: Uuid) -> RoleAssignment {
        RoleAssignment {
            id: format!("{REGISTRY}/providers/Microsoft.Authorization/roleAssignments/{name}"),
            name: name.into(),
            scope: REGISTRY.into(),
            role_definition_id: role_id(role),
            principal_id: principal.to_string(),
            principal_type: None,
            description: None,
            condition: None,
            created_on: None,
            updated_on: None,
            created_by: None,
        }
    }

    fn seen() -> Seen {
        Seen {
            cluster_key: CLUSTER.into(),
            registry_key: REGISTRY.to_lowercase(),
            cluster_id: CLUSTER.into(),
            registry_id: REGISTRY.into(),
            state: "attached".into(),
            principal_id: Some(KUBELET),
            role_definition_id: Some(role_id(ACR_PULL)),
            assignment_id: Some(assignment("ours", KUBELET, ACR_PULL).id),
            via: "direct".into(),
            drift_reason: None,
            repair_job_id: None,
            updated_at: Utc::now(),
        }
    }

    /// The world in which `seen()` holds.
    fn world() -> Inventory {
        let mut inv = Inventory::default();
        inv.clusters
            .insert(CLUSTER.into(), ClusterState::Present { kubelet: Some(KUBELET) });
        let scope: ResourceId = REGISTRY.parse().unwrap();
        let present = RegistryState::Present {
            scope,
            role: ACR_PULL,
            mode: "LegacyRegistryPermissions".into(),
        };
        inv.registries.insert(REGISTRY.to_lowercase(), present);
        inv.grants
            .insert(REGISTRY.to_lowercase(), Ok(vec![assignment("ours", KUBELET, ACR_PULL)]));
        inv
    }

    fn reason(v: Verdict) -> Reason {
        match v {
            Verdict::Drifted { reason, .. } => reason,
            other => panic!("expected a drift, got {other:?}"),
        }
    }

    #[test]
    fn a_pair_azure_still_shows_holds() {
        assert!(matches!(judge(&seen(), &world()), Verdict::Holds { .. }));
    }

    #[test]
    fn each_change_is_its_reason() {
        let mut w = world();
        w.grants.insert(REGISTRY.to_lowercase(), Ok(vec![]));
        assert_eq!(reason(judge(&seen(), &w)), Reason::AssignmentGone);

        let mut w = world();
        w.clusters.insert(
            CLUSTER.into(),
            ClusterState::Present {
                kubelet: Some(Uuid::from_u128(2)),
            },
        );
        assert_eq!(reason(judge(&seen(), &w)), Reason::KubeletIdentityChanged);

        let mut w = world();
        w.clusters.insert(CLUSTER.into(), ClusterState::Gone);
        assert_eq!(reason(judge(&seen(), &w)), Reason::ClusterGone);

        let mut w = world();
        w.registries.insert(REGISTRY.to_lowercase(), RegistryState::Gone);
        assert_eq!(reason(judge(&seen(), &w)), Reason::RegistryGone);

        let mut w = world();
        w.registries
            .insert(REGISTRY.to_lowercase(), RegistryState::Moved(vec!["/elsewhere".into()]));
        let Verdict::Drifted {
            reason: moved,
            repair_to,
            ..
        } = judge(&seen(), &w)
        else {
            panic!()
        };
        assert_eq!(
            (moved, repair_to.as_deref()),
            (Reason::RegistryMoved, Some("/elsewhere"))
        );

        let mut w = world();
        if let Some(RegistryState::Present { role, .. }) = w.registries.get_mut(&REGISTRY.to_lowercase()) {
            *role = CONTAINER_REGISTRY_REPOSITORY_READER;
        }
        assert_eq!(reason(judge(&seen(), &w)), Reason::ModeSwitched);
    }

    #[test]
    fn gone_resources_cannot_be_repaired_the_rest_can() {
        let mut w = world();
        w.clusters.insert(CLUSTER.into(), ClusterState::Gone);
        assert!(matches!(judge(&seen(), &w), Verdict::Drifted { repair_to: None, .. }));
        let mut w = world();
        w.grants.insert(REGISTRY.to_lowercase(), Ok(vec![]));
        assert!(matches!(
            judge(&seen(), &w),
            Verdict::Drifted { repair_to: Some(_), .. }
        ));
    }

    #[test]
    fn a_grant_made_again_under_another_name_holds_and_is_adopted() {
        let mut w = world();
        let again = assignment("by-hand", KUBELET, ACR_PULL);
        w.grants.insert(REGISTRY.to_lowercase(), Ok(vec![again.clone()]));
        assert_eq!(
            judge(&seen(), &w),
            Verdict::Holds {
                assignment_id: again.id
            }
        );
        // Another principal's grant, or another role, is not the attachment.
        w.grants.insert(
            REGISTRY.to_lowercase(),
            Ok(vec![
                assignment("x", Uuid::from_u128(9), ACR_PULL),
                assignment("y", KUBELET, CONTAINER_REGISTRY_REPOSITORY_READER),
            ]),
        );
        assert_eq!(reason(judge(&seen(), &w)), Reason::AssignmentGone);
    }

    #[test]
    fn a_group_attachment_needs_the_groups_grant() {
        let group = Uuid::from_u128(7);
        let mut s = seen();
        s.via = format!("group:{group}");
        s.assignment_id = Some(assignment("group-grant", group, ACR_PULL).id);
        let mut w = world();
        w.grants
            .insert(REGISTRY.to_lowercase(), Ok(vec![assignment("ours", KUBELET, ACR_PULL)]));
        assert_eq!(
            reason(judge(&s, &w)),
            Reason::AssignmentGone,
            "the kubelet's own grant is not the group's"
        );
        w.grants.insert(
            REGISTRY.to_lowercase(),
            Ok(vec![assignment("other-name", group, ACR_PULL)]),
        );
        assert!(matches!(judge(&s, &w), Verdict::Holds { .. }));
    }

    #[test]
    fn what_could_not_be_read_is_unverified_not_drifted() {
        let mut w = world();
        w.grants.insert(REGISTRY.to_lowercase(), Err("throttled".into()));
        assert_eq!(judge(&seen(), &w), Verdict::Unverified("throttled".into()));
    }
}
