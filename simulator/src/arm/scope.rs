//! ARM scopes: parsing, containment ("at or above") and existence checks.

use super::errors::{ArmError, resource_group_not_found, resource_not_found, subscription_not_found};
use super::resources::{ResType, find_resource};
use crate::world::World;

/// Lower-cased scope without trailing slash; the root scope `/` becomes "".
pub(crate) fn norm(scope: &str) -> String {
    let s = scope.trim().trim_end_matches('/').to_ascii_lowercase();
    if s.is_empty() || s.starts_with('/') {
        s
    } else {
        format!("/{s}")
    }
}

/// True when `ancestor` is `scope` itself or one of its parents (case-insensitive).
pub(crate) fn covers(ancestor: &str, scope: &str) -> bool {
    let a = norm(ancestor);
    let s = norm(scope);
    a.is_empty() || s == a || s.starts_with(&format!("{a}/"))
}

/// Joins path segments into a scope string (`/` for none).
pub(crate) fn from_segments(segs: &[String]) -> String {
    if segs.is_empty() {
        "/".to_string()
    } else {
        format!("/{}", segs.join("/"))
    }
}

fn segments(scope: &str) -> Vec<&str> {
    scope.split('/').filter(|s| !s.is_empty()).collect()
}

/// The subscription a scope lives in, if any.
pub(crate) fn subscription_of(scope: &str) -> Option<String> {
    let s = segments(scope);
    (s.len() >= 2 && s[0].eq_ignore_ascii_case("subscriptions")).then(|| s[1].to_string())
}

/// SubscriptionNotFound is answered before authorization, like ARM's front door does.
pub(crate) fn check_subscription(world: &World, scope: &str) -> Result<(), ArmError> {
    match subscription_of(scope) {
        Some(sub) if world.subscription(&sub).is_none() => Err(subscription_not_found(&sub)),
        _ => Ok(()),
    }
}

/// Verifies the scope exists and returns it in the world's canonical casing.
pub(crate) fn resolve(world: &World, scope: &str) -> Result<String, ArmError> {
    let s = segments(scope);
    let is = |i: usize, v: &str| s.get(i).is_some_and(|x| x.eq_ignore_ascii_case(v));
    if s.is_empty() {
        return Ok("/".to_string());
    }
    if !is(0, "subscriptions") || s.len() < 2 {
        return Err(ArmError::bad_request(
            "MissingSubscription",
            "The request did not have a subscription or a valid tenant level resource provider.",
        ));
    }
    let sub = world.subscription(s[1]).ok_or_else(|| subscription_not_found(s[1]))?;
    if s.len() == 2 {
        return Ok(format!("/subscriptions/{}", sub.subscription_id));
    }
    if !is(2, "resourceGroups") || s.len() < 4 {
        return Err(ArmError::bad_request(
            "InvalidScope",
            format!("The scope '{scope}' is not valid."),
        ));
    }
    let rg = world
        .resource_group(s[1], s[3])
        .ok_or_else(|| resource_group_not_found(s[3]))?;
    if s.len() == 4 {
        return Ok(format!(
            "/subscriptions/{}/resourceGroups/{}",
            sub.subscription_id, rg.name
        ));
    }
    if !is(4, "providers") || s.len() < 8 || !s.len().is_multiple_of(2) {
        return Err(ArmError::bad_request(
            "InvalidScope",
            format!("The scope '{scope}' is not valid."),
        ));
    }
    let type_path = format!("{}/{}", s[5], s[6]);
    let found = ResType::from_namespace_type(s[5], s[6])
        .filter(|_| s.len() == 8)
        .and_then(|rt| find_resource(world, s[1], s[3], rt, s[7]));
    match found {
        Some(r) => Ok(r.id()),
        None => Err(resource_not_found(&type_path, s[s.len() - 1], s[3])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covers_is_prefix_on_segments_and_case_insensitive() {
        assert!(covers("/", "/subscriptions/a"));
        assert!(covers("/subscriptions/A", "/subscriptions/a/resourceGroups/x"));
        assert!(covers("/subscriptions/a/", "/subscriptions/a"));
        assert!(!covers("/subscriptions/a", "/subscriptions/ab"));
        assert!(!covers("/subscriptions/a/resourceGroups/x", "/subscriptions/a"));
    }
}
