//! `Microsoft.ManagedIdentity/userAssignedIdentities` PUT (GET is generic): creating one also
//! creates its service principal, which then goes through a replication window.

use std::collections::BTreeMap;
use std::time::Instant;

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;
use uuid::Uuid;

use super::Ctx;
use super::errors::{ArmError, resource_group_not_found};
use super::permissions::authorize;
use super::resources::{ResType, find_resource, identity_json};
use super::scope;
use crate::reply;
use crate::state::State;
use crate::world::{Principal, PrincipalKind, UserAssignedIdentity};

fn valid_name(name: &str) -> bool {
    (3..=128).contains(&name.len())
        && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// ARM's tag rules: at most 50, names up to 512 characters, values up to 256, strings only.
pub(super) fn parse_tags(body: &Value) -> Result<BTreeMap<String, String>, ArmError> {
    let Some(tags) = body.get("tags").filter(|t| !t.is_null()) else {
        return Ok(BTreeMap::new());
    };
    let obj = tags.as_object().ok_or_else(|| {
        ArmError::bad_request(
            "InvalidRequestContent",
            "The request content was invalid and could not be deserialized: 'tags must be an object'.",
        )
    })?;
    if obj.len() > 50 {
        return Err(ArmError::bad_request(
            "InvalidTag",
            "The resource has more than 50 tags; a resource can have at most 50 tags.",
        ));
    }
    obj.iter()
        .map(|(k, v)| match v.as_str() {
            Some(v) if k.len() <= 512 && v.len() <= 256 => Ok((k.clone(), v.to_string())),
            _ => Err(ArmError::bad_request(
                "InvalidTagNameCharacters",
                format!(
                    "The tag '{k}' is invalid: tag names are at most 512 characters and values strings of at most 256."
                ),
            )),
        })
        .collect()
}

/// `PUT .../providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}`.
pub(crate) fn put(ctx: &Ctx<'_>, st: &mut State, sub: &str, rg: &str, name: &str) -> Result<Response, ArmError> {
    let target = format!(
        "/subscriptions/{sub}/resourceGroups/{rg}/providers/{}/{name}",
        ResType::Identity.full()
    );
    scope::check_subscription(&st.world, &target)?;
    authorize(
        &st.world,
        &ctx.caller_oid,
        &format!("{}/write", ResType::Identity.full()),
        &target,
    )?;
    let rg_location = st
        .world
        .resource_group(sub, rg)
        .map(|g| g.location.clone())
        .ok_or_else(|| resource_group_not_found(rg))?;
    if !valid_name(name) {
        return Err(ArmError::bad_request(
            "InvalidResourceName",
            format!(
                "Resource name {name} is invalid. The name can contain only letters, numbers, underscores and hyphens. The name must start with a letter or number."
            ),
        ));
    }
    let body: Value = serde_json::from_slice(ctx.body).map_err(|e| {
        ArmError::bad_request(
            "InvalidRequestContent",
            format!("The request content was invalid and could not be deserialized: '{e}'."),
        )
    })?;
    let Some(location) = body.get("location").and_then(Value::as_str).map(str::to_string) else {
        return Err(ArmError::bad_request(
            "LocationRequired",
            "The location property is required for this definition.",
        ));
    };
    let tags = parse_tags(&body)?;
    if let Some(r) = find_resource(&st.world, sub, rg, ResType::Identity, name)
        && let super::resources::Kind::Identity(_) = r.kind
    {
        // Create-or-update: an existing identity keeps its principal; the PUT replaces its
        // tags. ARM refuses to move a resource to another region.
        let existing = r.location().to_string();
        let region = |l: &str| l.replace(' ', "").to_ascii_lowercase();
        if region(&existing) != region(&location) {
            return Err(ArmError::bad_request(
                "InvalidResourceLocation",
                format!(
                    "The resource '{name}' already exists in location '{existing}' in resource group '{rg}'. A resource with the same name cannot be created in location '{location}'. Please select a new resource name."
                ),
            ));
        }
        let group = st.world.resource_group_mut(sub, rg).expect("found above");
        let i = group
            .user_assigned_identities
            .iter_mut()
            .find(|i| i.name.eq_ignore_ascii_case(name))
            .expect("found above");
        i.tags = tags;
        let r = find_resource(&st.world, sub, rg, ResType::Identity, name).expect("found above");
        let super::resources::Kind::Identity(i) = r.kind else {
            unreachable!("identity lookup returns identities")
        };
        return Ok(reply::json(StatusCode::OK, &identity_json(&st.world, &r, i)));
    }
    let identity = UserAssignedIdentity {
        name: name.to_string(),
        location: (!location.eq_ignore_ascii_case(&rg_location)).then_some(location),
        principal_id: Uuid::new_v4().to_string(),
        client_id: Uuid::new_v4().to_string(),
        tags,
    };
    let delay = st.world.behaviour.new_identity_replication_seconds;
    st.world.directory.push(Principal {
        object_id: identity.principal_id.clone(),
        kind: PrincipalKind::ServicePrincipal,
        app_id: Some(identity.client_id.clone()),
        display_name: name.to_string(),
        service_principal_type: Some("ManagedIdentity".into()),
        replication_delay_seconds: delay,
        members: Vec::new(),
        is_assignable_to_role: false,
        directory_roles: Vec::new(),
    });
    st.principal_epochs
        .insert(identity.principal_id.to_ascii_lowercase(), Instant::now());
    if let Some(group) = st.world.resource_group_mut(sub, rg) {
        group.user_assigned_identities.push(identity);
    }
    let r = find_resource(&st.world, sub, rg, ResType::Identity, name).expect("just inserted");
    let super::resources::Kind::Identity(i) = r.kind else {
        unreachable!("identity lookup returns identities")
    };
    Ok(reply::json(StatusCode::CREATED, &identity_json(&st.world, &r, i)))
}
