//! Roles: built-in role GUIDs, which role grants pull on a registry, deterministic role
//! assignment names, and ARM's action-wildcard semantics for permission checks.

use super::ids::{RegistryId, ResourceId, SubscriptionId};
use super::models::{Permission, Registry, RoleAssignmentMode};
use uuid::Uuid;

/// AcrPull (`Microsoft.ContainerRegistry/registries/pull/read`).
pub const ACR_PULL: Uuid = Uuid::from_u128(0x7f951dda_4ed3_4680_a7ca_43fe172d538d);

/// Container Registry Repository Reader: the pull role for registries in
/// `AbacRepositoryPermissions` mode, where AcrPull is not honoured.
pub const CONTAINER_REGISTRY_REPOSITORY_READER: Uuid = Uuid::from_u128(0xb93aa761_3e63_49ed_ac28_beffa264f7ac);

/// The only roles acr-attach ever grants: the pull role of each registry mode.
pub const PULL_ROLES: [Uuid; 2] = [ACR_PULL, CONTAINER_REGISTRY_REPOSITORY_READER];

/// Whether `role` (a role definition GUID) is one of [`PULL_ROLES`].
pub fn is_pull_role(role: Uuid) -> bool {
    PULL_ROLES.contains(&role)
}

/// The write guard: acr-attach may only ever create an assignment of a pull role, at a
/// registry's scope, with the role definition named the way [`role_definition_id`] names it
/// for that registry's subscription. Anything else is a bug or an attack, and is refused before
/// a request leaves the process. `Err` says why.
pub fn check_assignment_write(scope: &ResourceId, role_definition: &str) -> Result<RegistryId, String> {
    let registry: RegistryId = scope
        .to_string()
        .parse()
        .map_err(|_| format!("the scope '{scope}' is not a container registry"))?;
    let allowed = PULL_ROLES
        .iter()
        .any(|r| role_definition_id(&registry.subscription(), *r).eq_ignore_ascii_case(role_definition));
    if !allowed {
        return Err(format!(
            "the role definition '{}' is not a pull role of the registry's subscription",
            role_definition.chars().take(200).collect::<String>()
        ));
    }
    Ok(registry)
}

/// The delete guard: acr-attach only deletes assignments at registry scopes (its callers
/// also check that the assignment is a pull grant before deleting it).
pub fn check_assignment_delete(scope: &ResourceId) -> Result<RegistryId, String> {
    scope
        .to_string()
        .parse()
        .map_err(|_| format!("the scope '{scope}' is not a container registry"))
}

/// Namespace of [`assignment_name`]'s UUIDv5.
///
/// **Never change this value**: every role assignment acr-attach has ever created is named
/// from it; a new namespace would make attach create duplicates (409 `RoleAssignmentExists`)
/// and detach miss the assignments it created.
pub const ASSIGNMENT_NAMESPACE: Uuid = Uuid::from_u128(0x8207cfe0_ff4f_405f_98b6_bdb4d6ed1b55);

/// The role that lets a principal pull from `registry`: AcrPull for legacy registries (and
/// unknown modes), Container Registry Repository Reader for ABAC-mode registries.
pub fn pull_role_for(registry: &Registry) -> Uuid {
    match registry.role_assignment_mode {
        RoleAssignmentMode::AbacRepositoryPermissions => CONTAINER_REGISTRY_REPOSITORY_READER,
        _ => ACR_PULL,
    }
}

/// The built-in name of a pull role (`AcrPull`, `Container Registry Repository Reader`).
pub fn pull_role_name(role: Uuid) -> &'static str {
    if role == CONTAINER_REGISTRY_REPOSITORY_READER {
        "Container Registry Repository Reader"
    } else {
        "AcrPull"
    }
}

/// `/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{guid}`.
pub fn role_definition_id(subscription: &SubscriptionId, role: Uuid) -> String {
    format!("/subscriptions/{subscription}/providers/Microsoft.Authorization/roleDefinitions/{role}")
}

/// The deterministic role assignment name for (registry, principal, role):
/// UUIDv5([`ASSIGNMENT_NAMESPACE`], `lower(registry id) | lower(principal) | lower(role guid)`).
///
/// Retries of the same attach PUT the same name, so a PUT whose response was lost is
/// idempotent, and two workers racing converge on one assignment. The registry id is the
/// canonical form (case-insensitive), so `resourcegroups` vs `resourceGroups` doesn't matter.
pub fn assignment_name(registry: &RegistryId, principal_object_id: &Uuid, role: &Uuid) -> Uuid {
    let key = format!(
        "{}|{}|{}",
        registry.lower_key(),
        principal_object_id.hyphenated(),
        role.hyphenated()
    );
    Uuid::new_v5(&ASSIGNMENT_NAMESPACE, key.as_bytes())
}

/// ARM wildcard match: `*` matches any run of characters (including `/`), case-insensitive.
fn action_matches(pattern: &str, action: &str) -> bool {
    let p = pattern.to_ascii_lowercase();
    let a = action.to_ascii_lowercase();
    let parts: Vec<&str> = p.split('*').collect();
    if parts.len() == 1 {
        return p == a;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !a.starts_with(first) || a.len() < first.len() + last.len() || !a.ends_with(last) {
        return false;
    }
    let mut rest = &a[first.len()..a.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

/// True if the caller's permissions allow control-plane `action`
/// (e.g. `Microsoft.Authorization/roleAssignments/write`).
///
/// Each block (one per role assignment of the caller) allows `actions − notActions`; the
/// effective permission is the union of the blocks. Wildcards (`*`, `Microsoft.Authorization/*`,
/// `*/write`) and case-insensitive comparison follow ARM.
pub fn permits(permissions: &[Permission], action: &str) -> bool {
    permissions.iter().any(|p| {
        p.actions.iter().any(|a| action_matches(a, action)) && !p.not_actions.iter().any(|n| action_matches(n, action))
    })
}

/// Like [`permits`] for data actions (`dataActions − notDataActions`).
pub fn permits_data_action(permissions: &[Permission], data_action: &str) -> bool {
    permissions.iter().any(|p| {
        p.data_actions.iter().any(|a| action_matches(a, data_action))
            && !p.not_data_actions.iter().any(|n| action_matches(n, data_action))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SUBS: [&str; 2] = [
        "11111111-1111-4111-8111-111111111111",
        "22222222-2222-4222-8222-222222222222",
    ];
    /// Built-in roles an attacker would like (Owner, Contributor, User Access Administrator,
    /// AcrPush, Repository Writer), the two pull roles, and the nil GUID.
    const ROLES: [&str; 8] = [
        "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
        "b24988ac-6180-42a0-ab88-20f7382dd24c",
        "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9",
        "8311e382-0749-4cb8-b61a-304f252e45ec",
        "2a1e307c-b015-4ebd-883e-5b7698a07328",
        "7f951dda-4ed3-4680-a7ca-43fe172d538d",
        "b93aa761-3e63-49ed-ac28-beffa264f7ac",
        "00000000-0000-0000-0000-000000000000",
    ];

    /// Scopes of every shape: subscription, resource group, registries and their children,
    /// other resource types, management groups, in any casing.
    fn scope() -> impl Strategy<Value = String> {
        let tail = prop_oneof![
            Just(String::new()),
            Just("/resourceGroups/rg".to_string()),
            Just("/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/acrone1".to_string()),
            Just("/resourceGroups/rg/providers/microsoft.containerregistry/REGISTRIES/acrone1".to_string()),
            Just(
                "/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/acrone1/replications/r"
                    .to_string()
            ),
            Just("/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/acrone1/scopeMaps/s".to_string()),
            Just("/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/acrone1".to_string()),
            Just("/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks".to_string()),
        ];
        prop_oneof![
            (0..SUBS.len(), tail).prop_map(|(s, t)| format!("/subscriptions/{}{t}", SUBS[s])),
            Just("/providers/Microsoft.Management/managementGroups/root".to_string()),
        ]
    }

    fn role_definition() -> impl Strategy<Value = String> {
        prop_oneof![
            (0..SUBS.len(), 0..ROLES.len()).prop_map(|(s, r)| format!(
                "/subscriptions/{}/providers/Microsoft.Authorization/roleDefinitions/{}",
                SUBS[s], ROLES[r]
            )),
            (0..ROLES.len()).prop_map(|r| format!("/providers/Microsoft.Authorization/roleDefinitions/{}", ROLES[r])),
            any::<u128>().prop_map(|g| format!(
                "/subscriptions/{}/providers/Microsoft.Authorization/roleDefinitions/{}",
                SUBS[0],
                Uuid::from_u128(g)
            )),
        ]
    }

    #[test]
    fn the_guard_passes_the_pull_grant_acr_attach_makes() {
        let registry: ResourceId = format!(
            "/subscriptions/{}/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/acrone1",
            SUBS[1]
        )
        .parse()
        .unwrap();
        for role in PULL_ROLES {
            let id = role_definition_id(&SUBS[1].parse().unwrap(), role);
            assert!(check_assignment_write(&registry, &id).is_ok());
            let other_sub = role_definition_id(&SUBS[0].parse().unwrap(), role);
            assert!(check_assignment_write(&registry, &other_sub).is_err());
        }
        let sub: ResourceId = format!("/subscriptions/{}", SUBS[1]).parse().unwrap();
        let pull = role_definition_id(&SUBS[1].parse().unwrap(), ACR_PULL);
        assert!(
            check_assignment_write(&sub, &pull)
                .unwrap_err()
                .contains("not a container registry")
        );
    }

    proptest! {
        /// The guard lets a write through exactly when it is a pull role of the registry's own
        /// subscription, at a registry scope, and never anything else.
        #[test]
        fn only_pull_roles_at_registry_scopes_are_ever_written(scope in scope(), role in role_definition()) {
            let Ok(parsed) = scope.parse::<ResourceId>() else { return Ok(()) };
            let allowed = check_assignment_write(&parsed, &role).is_ok();
            let lower = scope.to_ascii_lowercase();
            let is_registry = lower.ends_with("/providers/microsoft.containerregistry/registries/acrone1");
            let sub = SUBS.iter().find(|s| lower.starts_with(&format!("/subscriptions/{s}")));
            let is_pull_of_same_sub = sub.is_some_and(|s| {
                role.eq_ignore_ascii_case(&role_definition_id(&s.parse().unwrap(), ACR_PULL))
                    || role.eq_ignore_ascii_case(&role_definition_id(&s.parse().unwrap(), CONTAINER_REGISTRY_REPOSITORY_READER))
            });
            prop_assert_eq!(allowed, is_registry && is_pull_of_same_sub, "scope {} role {}", scope, role);
            prop_assert_eq!(check_assignment_delete(&parsed).is_ok(), is_registry);
        }
    }

    #[test]
    fn constants() {
        assert_eq!(ACR_PULL.to_string(), "7f951dda-4ed3-4680-a7ca-43fe172d538d");
        assert_eq!(
            CONTAINER_REGISTRY_REPOSITORY_READER.to_string(),
            "b93aa761-3e63-49ed-ac28-beffa264f7ac"
        );
        assert_eq!(ASSIGNMENT_NAMESPACE.to_string(), "8207cfe0-ff4f-405f-98b6-bdb4d6ed1b55");
        let sub: SubscriptionId = "00000000-0000-0000-0000-000000000000".parse().unwrap();
        assert_eq!(
            role_definition_id(&sub, ACR_PULL),
            "/subscriptions/00000000-0000-0000-0000-000000000000/providers/Microsoft.Authorization/roleDefinitions/7f951dda-4ed3-4680-a7ca-43fe172d538d"
        );
    }

    #[test]
    fn assignment_name_is_pinned_and_case_insensitive() {
        let reg: RegistryId = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/myResourceGroup/providers/Microsoft.ContainerRegistry/registries/myRegistry".parse().unwrap();
        let principal: Uuid = "25cc773c-7f05-40fc-a104-32d2300754ad".parse().unwrap();
        let name = assignment_name(&reg, &principal, &ACR_PULL);
        // Pinned: changing this breaks idempotency for every assignment ever created.
        let expected = Uuid::new_v5(
            &ASSIGNMENT_NAMESPACE,
            b"/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/myresourcegroup/providers/microsoft.containerregistry/registries/myregistry|25cc773c-7f05-40fc-a104-32d2300754ad|7f951dda-4ed3-4680-a7ca-43fe172d538d",
        );
        assert_eq!(name, expected);
        assert_eq!(name.to_string(), PINNED_NAME);
        assert_eq!(name.get_version_num(), 5);

        let upper: RegistryId = "/SUBSCRIPTIONS/00000000-0000-0000-0000-000000000000/RESOURCEGROUPS/MYRESOURCEGROUP/PROVIDERS/MICROSOFT.CONTAINERREGISTRY/REGISTRIES/MYREGISTRY".parse().unwrap();
        assert_eq!(assignment_name(&upper, &principal, &ACR_PULL), name);
        assert_ne!(
            assignment_name(&reg, &principal, &CONTAINER_REGISTRY_REPOSITORY_READER),
            name
        );
    }

    /// Cross-checked with Python: uuid.uuid5(ASSIGNMENT_NAMESPACE, key).
    const PINNED_NAME: &str = "972716e7-3dde-5712-aa82-4148101e1718";

    #[test]
    fn pull_role_depends_on_mode() {
        let mut r = Registry {
            role_assignment_mode: RoleAssignmentMode::LegacyRegistryPermissions,
            ..Default::default()
        };
        assert_eq!(pull_role_for(&r), ACR_PULL);
        r.role_assignment_mode = RoleAssignmentMode::AbacRepositoryPermissions;
        assert_eq!(pull_role_for(&r), CONTAINER_REGISTRY_REPOSITORY_READER);
    }

    fn perm(actions: &[&str], not: &[&str]) -> Permission {
        Permission {
            actions: actions.iter().map(|s| s.to_string()).collect(),
            not_actions: not.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn permits_wildcards_and_not_actions() {
        const W: &str = "Microsoft.Authorization/roleAssignments/write";
        assert!(permits(&[perm(&["*"], &[])], W));
        assert!(permits(&[perm(&["Microsoft.Authorization/*"], &[])], W));
        assert!(permits(
            &[perm(&["microsoft.authorization/roleassignments/WRITE"], &[])],
            W
        ));
        assert!(permits(&[perm(&["*/write"], &[])], W));
        assert!(permits(&[perm(&["Microsoft.Authorization/*/write"], &[])], W));
        assert!(!permits(&[perm(&["*/read"], &[])], W));
        assert!(!permits(
            &[perm(&["Microsoft.Authorization/roleAssignments/read"], &[])],
            W
        ));
        assert!(!permits(&[], W));
        // Contributor: * minus Microsoft.Authorization/*/Write
        assert!(!permits(
            &[perm(
                &["*"],
                &["Microsoft.Authorization/*/Write", "Microsoft.Authorization/*/Delete"]
            )],
            W
        ));
        // ...but a second role (User Access Administrator) grants it: union of blocks.
        assert!(permits(
            &[
                perm(&["*"], &["Microsoft.Authorization/*/Write"]),
                perm(&["*/read", "Microsoft.Authorization/*"], &[]),
            ],
            W
        ));
        assert!(!permits(&[perm(&["Microsoft.Auth"], &[])], W));
        assert!(!permits(
            &[perm(&["Microsoft.Authorization/roleAssignments/write/x"], &[])],
            W
        ));
        let data = Permission {
            data_actions: vec!["Microsoft.ContainerRegistry/registries/repositories/*".into()],
            not_data_actions: vec!["*/delete".into()],
            ..Default::default()
        };
        assert!(permits_data_action(
            std::slice::from_ref(&data),
            "Microsoft.ContainerRegistry/registries/repositories/content/read"
        ));
        assert!(!permits_data_action(
            &[data],
            "Microsoft.ContainerRegistry/registries/repositories/content/delete"
        ));
    }
}
