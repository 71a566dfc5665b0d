//! `Microsoft.ManagedIdentity/userAssignedIdentities` PUT (GET is generic): creating one also
//! creates its service principal, which then goes through a replication window.

use std::time::Instant;

use axum::http::StatusCode;
use axum::response::Response;
use uuid::Uuid;

use super::Ctx;
use super::errors::ArmError;
use super::puts::{PutBody, authorize_put, parse_body, refuse_move};
use super::resources::{ResType, find_resource, identity_json};
use crate::reply;
use crate::state::State;
use crate::world::{Principal, PrincipalKind, UserAssignedIdentity};

fn valid_name(name: &str) -> bool {
    (3..=128).contains(&name.len())
        && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// `PUT .../providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}`.
pub(crate) fn put(ctx: &Ctx<'_>, st: &mut State, sub: &str, rg: &str, name: &str) -> Result<Response, ArmError> {
    let rg_location = authorize_put(ctx, &st.world, sub, rg, ResType::Identity, name)?;
    if !valid_name(name) {
        return Err(ArmError::bad_request(
            "InvalidResourceName",
            format!(
                "Resource name {name} is invalid. The name can contain only letters, numbers, underscores and hyphens. The name must start with a letter or number."
            ),
        ));
    }
    let PutBody { location, tags } = parse_body(ctx)?;
    if let Some(r) = find_resource(&st.world, sub, rg, ResType::Identity, name)
        && let super::resources::Kind::Identity(_) = r.kind
    {
        // Create-or-update: an existing identity keeps its principal; the PUT replaces its
        // tags. ARM refuses to move a resource to another region.
        refuse_move(name, rg, r.location(), &location)?;
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
