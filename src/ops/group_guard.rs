//! A group may only ever carry pull. Making the kubelet identity (every node of a cluster) a
//! member of a group hands it everything the group holds, so before acr-attach adds any member
//! to a group it checks, at that moment, that the group grants nothing but the pull roles at
//! registry scopes; anything more fails the job before a membership is written, naming what
//! was found.
//!
//! What is checked (the group and every group it belongs to, transitively, since members
//! inherit what the parents hold):
//! 1. Entra directory roles: the group is not role-assignable (only role-assignable groups can
//!    hold directory roles, and they cannot be nested into other groups, so no parent can be),
//!    and Graph's `transitiveMemberOf` shows no `directoryRole`.
//! 2. App roles: `GET /groups/{id}/appRoleAssignments` is empty for each of them.
//! 3. Azure RBAC: ARM `principalId eq '{id}'` at each subscription acr-attach can see (the
//!    configured ones, else every readable one) lists only AcrPull / Container Registry
//!    Repository Reader at registry scopes. That filter returns assignments at, above
//!    (management groups, root) and below the subscription. (`assignedTo()` would include the
//!    parents in one call, but ARM refuses a group id there.)
//!
//! Residual risk, documented in docs/groups.md: grants in subscriptions acr-attach cannot read,
//! and grants added to the group after the check.
use serde::Serialize;
use uuid::Uuid;

use super::Ops;
use super::failures::generic;
use super::waits::Waits;
use crate::azure::roles::is_pull_role;
use crate::azure::{AzureError, CallContext, RegistryId, ResourceId, RoleAssignmentFilter, SubscriptionId};
use crate::queue::JobError;

/// Error code of a refused group (stable: portals match on it).
pub const GROUP_GRANTS_MORE_THAN_PULL: &str = "GroupGrantsMoreThanPull";

/// One thing a group holds beyond pull.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Excess {
    /// The group holding it (the group itself or a parent).
    group: Uuid,
    kind: &'static str,
    what: String,
}

/// Checks `group`; `Ok(())` when it (and its parents) hold nothing but pull at registry scopes.
pub async fn verify_pull_only<C: Serialize>(
    ops: &Ops,
    call: &CallContext,
    group: Uuid,
    waits: &mut Waits,
    checkpoint: impl Fn(&Waits) -> C + Copy,
) -> Result<(), JobError> {
    let fail = |e: AzureError, what: &str, waits: &mut Waits| generic(e, what, waits, &ops.settings, checkpoint);
    let mut excess = Vec::new();

    let info = match ops.azure.get_group(call, group).await {
        Ok(Some(g)) => g,
        Ok(None) => {
            return Err(JobError::permanent(
                "GroupNotFound",
                format!("Microsoft Graph does not know the group {group}"),
            ));
        }
        Err(e) => return Err(fail(e, "reading the group in Microsoft Graph", waits)),
    };
    if info.is_assignable_to_role == Some(true) {
        excess.push(Excess {
            group,
            kind: "roleAssignableGroup",
            what: "a role-assignable group, which can hold Entra directory roles".into(),
        });
    }

    let parents = match ops.azure.group_transitive_member_of(call, group).await {
        Ok(p) => p,
        Err(e) => {
            return Err(fail(
                e,
                "listing the groups the group belongs to (Microsoft Graph)",
                waits,
            ));
        }
    };
    let mut holders = vec![group];
    for p in &parents {
        let name = p.display_name.clone().unwrap_or_else(|| p.id.clone());
        if p.is_directory_role() {
            excess.push(Excess {
                group,
                kind: "directoryRole",
                what: format!("the Entra directory role '{name}'"),
            });
        } else if p.is_group() {
            let Ok(parent) = Uuid::parse_str(&p.id) else { continue };
            if p.is_assignable_to_role == Some(true) {
                excess.push(Excess {
                    group: parent,
                    kind: "roleAssignableGroup",
                    what: format!("membership of the role-assignable group '{name}'"),
                });
            }
            holders.push(parent);
        }
    }

    for holder in &holders {
        let granted = match ops.azure.group_app_role_assignments(call, *holder).await {
            Ok(a) => a,
            Err(e) => {
                return Err(fail(
                    e,
                    "listing the group's app role assignments (Microsoft Graph)",
                    waits,
                ));
            }
        };
        excess.extend(granted.into_iter().map(|a| Excess {
            group: *holder,
            kind: "appRole",
            what: format!(
                "the app role {} of '{}'",
                a.app_role_id.unwrap_or_default(),
                a.resource_display_name.or(a.resource_id).unwrap_or_default()
            ),
        }));
    }

    let subscriptions: Vec<SubscriptionId> = match ops.azure.default_subscriptions() {
        [] => match ops.azure.list_subscriptions(call).await {
            Ok(s) => s,
            Err(e) => return Err(fail(e, "listing the subscriptions acr-attach can read", waits)),
        },
        configured => configured.to_vec(),
    };
    let mut seen = std::collections::HashSet::new();
    for sub in &subscriptions {
        let scope = ResourceId::subscription_scope(*sub);
        for holder in &holders {
            let listed = match ops
                .azure
                .list_role_assignments(call, &scope, RoleAssignmentFilter::PrincipalId(*holder))
                .await
            {
                Ok(l) => l,
                Err(e) => return Err(fail(e, "listing the group's Azure role assignments", waits)),
            };
            for ra in listed {
                let pull_on_registry =
                    ra.role_definition_guid().is_some_and(is_pull_role) && ra.scope.parse::<RegistryId>().is_ok();
                if !pull_on_registry && seen.insert(ra.id.to_ascii_lowercase()) {
                    excess.push(Excess {
                        group: *holder,
                        kind: "azureRole",
                        what: format!("the role {} at '{}' ({})", ra.role_definition_id, ra.scope, ra.id),
                    });
                }
            }
        }
    }

    if excess.is_empty() {
        return Ok(());
    }
    let listed: Vec<String> = excess
        .iter()
        .take(10)
        .map(|e| {
            if e.group == group {
                e.what.clone()
            } else {
                format!("{} (through the parent group {})", e.what, e.group)
            }
        })
        .collect();
    let more = excess.len().saturating_sub(listed.len());
    Err(JobError::permanent(
        GROUP_GRANTS_MORE_THAN_PULL,
        format!(
            "the group {group} grants more than pull, so acr-attach will not make anyone a member of it: {}{}. \
             Use a group that holds only AcrPull or Container Registry Repository Reader on registries, or attach \
             directly (without a group)",
            listed.join("; "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        ),
    )
    .with_details(serde_json::json!({ "group": group, "grants": excess })))
}
