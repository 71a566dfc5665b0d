//! Caller authorization (ARM role semantics over the world's permission entries) and the
//! `Microsoft.Authorization/permissions` pre-flight endpoint.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::errors::ArmError;
use super::scope;
use crate::reply;
use crate::world::{PermissionEntry, World};

/// Glob match with `*` matching any run of characters, case-insensitively (ARM action syntax).
pub(crate) fn action_matches(pattern: &str, action: &str) -> bool {
    fn go(p: &[u8], a: &[u8]) -> bool {
        match p.split_first() {
            None => a.is_empty(),
            Some((b'*', rest)) => (0..=a.len()).any(|i| go(rest, &a[i..])),
            Some((c, rest)) => a
                .split_first()
                .is_some_and(|(d, arest)| c.eq_ignore_ascii_case(d) && go(rest, arest)),
        }
    }
    go(pattern.as_bytes(), action.as_bytes())
}

fn entry_allows(e: &PermissionEntry, action: &str) -> bool {
    e.actions.iter().any(|p| action_matches(p, action)) && !e.not_actions.iter().any(|p| action_matches(p, action))
}

/// Whether the caller may perform `action` at `target` (grants are inherited downwards).
pub(crate) fn is_allowed(world: &World, caller_oid: &str, action: &str, target: &str) -> bool {
    world
        .callers
        .iter()
        .filter(|c| c.object_id.eq_ignore_ascii_case(caller_oid))
        .flat_map(|c| c.permissions.iter())
        .any(|e| scope::covers(&e.scope, target) && entry_allows(e, action))
}

/// Whether the caller holds `action` anywhere at or below `target` (for filtered lists).
pub(crate) fn allowed_somewhere_below(world: &World, caller_oid: &str, action: &str, target: &str) -> bool {
    world
        .callers
        .iter()
        .filter(|c| c.object_id.eq_ignore_ascii_case(caller_oid))
        .flat_map(|c| c.permissions.iter())
        .any(|e| (scope::covers(&e.scope, target) || scope::covers(target, &e.scope)) && entry_allows(e, action))
}

/// ARM's 403 with its exact wording.
pub(crate) fn authorization_failed(caller_oid: &str, action: &str, target: &str) -> ArmError {
    ArmError::new(
        StatusCode::FORBIDDEN,
        "AuthorizationFailed",
        format!(
            "The client '{caller_oid}' with object id '{caller_oid}' does not have authorization or an ABAC condition not fulfilled to perform action '{action}' over scope '{target}' or the scope is invalid. If access was recently granted, please refresh your credentials."
        ),
    )
}

/// 403 unless allowed.
pub(crate) fn authorize(world: &World, caller_oid: &str, action: &str, target: &str) -> Result<(), ArmError> {
    if is_allowed(world, caller_oid, action, target) {
        Ok(())
    } else {
        Err(authorization_failed(caller_oid, action, target))
    }
}

/// The usual ARM order: unknown subscription (404), then missing action (403), then the
/// scope's own existence (404). Returns the canonical scope.
pub(crate) fn guard(world: &World, caller_oid: &str, action: &str, target: &str) -> Result<String, ArmError> {
    scope::check_subscription(world, target)?;
    authorize(world, caller_oid, action, target)?;
    scope::resolve(world, target)
}

/// `GET {scope}/providers/Microsoft.Authorization/permissions`: the caller's own permission
/// blocks that apply at the scope, one per grant like ARM returns one per role assignment.
pub(crate) fn list(world: &World, caller_oid: &str, target: &str) -> Result<Response, ArmError> {
    scope::resolve(world, target)?;
    let value: Vec<Value> = world
        .callers
        .iter()
        .filter(|c| c.object_id.eq_ignore_ascii_case(caller_oid))
        .flat_map(|c| c.permissions.iter())
        .filter(|e| scope::covers(&e.scope, target))
        .map(|e| {
            json!({
                "actions": e.actions,
                "notActions": e.not_actions,
                "dataActions": [],
                "notDataActions": [],
            })
        })
        .collect();
    Ok(reply::json(StatusCode::OK, &json!({ "value": value })))
}

#[cfg(test)]
mod tests {
    use super::action_matches;

    #[test]
    fn wildcards_follow_arm_action_syntax() {
        assert!(action_matches("*", "Microsoft.Authorization/roleAssignments/write"));
        assert!(action_matches(
            "microsoft.authorization/*",
            "Microsoft.Authorization/roleAssignments/write"
        ));
        assert!(action_matches("*/read", "Microsoft.ContainerRegistry/registries/read"));
        assert!(!action_matches(
            "*/read",
            "Microsoft.ContainerRegistry/registries/write"
        ));
        assert!(!action_matches("Microsoft.Authorization/*", "Microsoft.AuthorizationX"));
    }
}
