//! `Microsoft.Authorization/roleAssignments`: create, get, delete and list with ARM's
//! `$filter` semantics, tenant-wide names, principal replication and read-after-write lag.

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::response::Response;
use chrono::{SecondsFormat, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use super::Ctx;
use super::errors::ArmError;
use super::paging;
use super::permissions::guard;
use super::resources::split_and;
use super::role_definitions::{id_prefix, role_definition_guid_exists};
use super::scope;
use crate::reply;
use crate::state::{State, StoredAssignment};
use crate::world::{PrincipalKind, PrincipalNotFoundMode, RoleAssignmentRecord, World};

const PRINCIPAL_TYPES: &[&str] = &["User", "Group", "ServicePrincipal", "ForeignGroup", "Device"];

fn lag(st: &State) -> Duration {
    Duration::from_millis(st.world.behaviour.read_after_write_lag_ms)
}

/// Drops deleted assignments once they no longer linger in lists.
fn purge(st: &mut State) {
    let lag = lag(st);
    st.assignments
        .retain(|a| a.deleted_at.is_none_or(|d| d.elapsed() < lag));
}

fn is_guid(s: &str) -> bool {
    s.len() == 36 && Uuid::parse_str(s).is_ok()
}

/// ARM's JSON for an assignment.
pub(crate) fn render(world: &World, rec: &RoleAssignmentRecord) -> Value {
    let ts = |t: Option<chrono::DateTime<Utc>>| t.map(|t| t.to_rfc3339_opts(SecondsFormat::Micros, true));
    let principal_type = rec.principal_type.clone().unwrap_or_else(|| {
        world
            .principal(&rec.principal_id)
            .map(|p| p.kind.as_str().to_string())
            .unwrap_or_else(|| "User".into())
    });
    let scope = if rec.scope.is_empty() {
        "/".to_string()
    } else {
        rec.scope.clone()
    };
    let id_scope = scope.trim_end_matches('/');
    json!({
        "properties": {
            "roleDefinitionId": format!("{}{}", id_prefix(&scope), rec.role_definition_guid()),
            "principalId": rec.principal_id,
            "principalType": principal_type,
            "scope": scope,
            "condition": rec.condition,
            "conditionVersion": rec.condition_version,
            "createdOn": ts(rec.created_on),
            "updatedOn": ts(rec.updated_on),
            "createdBy": rec.created_by,
            "updatedBy": rec.updated_by,
            "delegatedManagedIdentityResourceId": null,
            "description": rec.description,
        },
        "id": format!("{id_scope}/providers/Microsoft.Authorization/roleAssignments/{}", rec.name),
        "type": "Microsoft.Authorization/roleAssignments",
        "name": rec.name,
    })
}

fn invalid_content(msg: &str) -> ArmError {
    ArmError::bad_request(
        "InvalidRequestContent",
        format!("The request content was invalid and could not be deserialized: '{msg}'."),
    )
}

fn principal_not_found(pid: &str, tenant: &str) -> ArmError {
    ArmError::bad_request(
        "PrincipalNotFound",
        format!(
            "Principal {} does not exist in the directory {tenant}. Check that you have the correct principal ID. If you are creating this principal and then immediately assigning a role, this error might be related to a replication delay. In this case, set the role assignment principalType property to a value, such as ServicePrincipal, User, or Group. See https://aka.ms/docs-principaltype",
            pid.replace('-', "")
        ),
    )
}

struct Body {
    role_guid: String,
    principal_id: String,
    principal_type: Option<String>,
    description: Option<String>,
    condition: Option<String>,
    condition_version: Option<String>,
}

fn parse_body(raw: &[u8]) -> Result<Body, ArmError> {
    let v: Value = serde_json::from_slice(raw).map_err(|e| invalid_content(&e.to_string()))?;
    let props = v
        .get("properties")
        .filter(|p| p.is_object())
        .ok_or_else(|| invalid_content("Required property 'properties' not found in JSON"))?;
    let text = |k: &str| -> Result<Option<String>, ArmError> {
        match props.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(invalid_content(&format!("Property '{k}' must be a string"))),
        }
    };
    let role = text("roleDefinitionId")?
        .ok_or_else(|| invalid_content("Required property 'roleDefinitionId' not found in JSON"))?;
    let principal_id =
        text("principalId")?.ok_or_else(|| invalid_content("Required property 'principalId' not found in JSON"))?;
    if !is_guid(&principal_id) {
        return Err(ArmError::bad_request(
            "InvalidPrincipalId",
            "A valid principal ID must be provided for role assignment.",
        ));
    }
    let principal_type = match text("principalType")? {
        None => None,
        Some(t) => Some(
            PRINCIPAL_TYPES
                .iter()
                .find(|p| p.eq_ignore_ascii_case(&t))
                .map(|p| p.to_string())
                .ok_or_else(|| invalid_content(&format!("Error converting value \"{t}\" to type 'PrincipalType'")))?,
        ),
    };
    let condition = text("condition")?;
    let condition_version = text("conditionVersion")?.or_else(|| condition.as_ref().map(|_| "2.0".to_string()));
    Ok(Body {
        role_guid: role.rsplit('/').next().unwrap_or_default().to_ascii_lowercase(),
        principal_id,
        principal_type,
        description: text("description")?,
        condition,
        condition_version,
    })
}

/// `PUT {scope}/providers/Microsoft.Authorization/roleAssignments/{name}`.
pub(crate) fn create(ctx: &Ctx<'_>, st: &mut State, scope_str: &str, name: &str) -> Result<Response, ArmError> {
    purge(st);
    let canonical = guard(
        &st.world,
        &ctx.caller_oid,
        "Microsoft.Authorization/roleAssignments/write",
        scope_str,
    )?;
    if !is_guid(name) {
        return Err(ArmError::bad_request(
            "InvalidRoleAssignmentId",
            format!("The role assignment ID '{name}' is not valid. The role assignment ID must be a GUID."),
        ));
    }
    let body = parse_body(ctx.body)?;
    if !is_guid(&body.role_guid) || !role_definition_guid_exists(&st.world, &body.role_guid) {
        return Err(ArmError::bad_request(
            "RoleDefinitionDoesNotExist",
            format!(
                "The specified role definition with ID '{}' does not exist.",
                body.role_guid
            ),
        ));
    }
    let tenant = st.world.tenant_id.clone();
    let principal = st.world.principal(&body.principal_id).cloned();
    let Some(principal) = principal else {
        return Err(principal_not_found(&body.principal_id, &tenant));
    };
    let replicating = st.is_replicating(ctx.shared.started, &principal.object_id);
    if replicating {
        let mode = st.world.behaviour.principal_not_found;
        if mode == PrincipalNotFoundMode::Always || body.principal_type.is_none() {
            return Err(principal_not_found(&body.principal_id, &tenant));
        }
    } else if let Some(t) = &body.principal_type {
        let actual = principal.kind.as_str();
        let compatible = t == actual || (t == "ForeignGroup" && principal.kind == PrincipalKind::Group);
        if !compatible {
            return Err(ArmError::bad_request(
                "UnmatchedPrincipalType",
                format!(
                    "The PrincipalType in the request '{t}' does not match the actual PrincipalType '{actual}' of the principal '{}'.",
                    body.principal_id
                ),
            ));
        }
    }
    let same_triple = |r: &RoleAssignmentRecord| {
        scope::norm(&r.scope) == scope::norm(&canonical)
            && r.role_definition_guid() == body.role_guid
            && r.principal_id.eq_ignore_ascii_case(&body.principal_id)
    };
    let now = Utc::now();
    let live = |a: &StoredAssignment| a.deleted_at.is_none();
    if let Some(existing) = st
        .assignments
        .iter_mut()
        .find(|a| live(a) && a.rec.name.eq_ignore_ascii_case(name))
    {
        if !same_triple(&existing.rec) {
            return Err(ArmError::bad_request(
                "RoleAssignmentUpdateNotPermitted",
                "Tenant ID, application ID, principal ID, and scope are not allowed to be updated.",
            ));
        }
        let rec = &mut existing.rec;
        rec.description = body.description;
        rec.condition = body.condition;
        rec.condition_version = body.condition_version;
        rec.updated_on = Some(now);
        rec.updated_by = Some(ctx.caller_oid.clone());
        let rec = rec.clone();
        return Ok(reply::json(StatusCode::OK, &render(&st.world, &rec)));
    }
    if let Some(other) = st.assignments.iter().find(|a| live(a) && same_triple(&a.rec)) {
        return Err(ArmError::new(
            StatusCode::CONFLICT,
            "RoleAssignmentExists",
            format!(
                "The role assignment already exists. The ID of the existing role assignment is {}.",
                other.rec.name.replace('-', "").to_ascii_lowercase()
            ),
        ));
    }
    let rec = RoleAssignmentRecord {
        name: name.to_ascii_lowercase(),
        scope: canonical,
        role_definition_id: body.role_guid,
        principal_id: body.principal_id,
        principal_type: Some(
            body.principal_type
                .unwrap_or_else(|| principal.kind.as_str().to_string()),
        ),
        description: body.description,
        condition: body.condition,
        condition_version: body.condition_version,
        created_on: Some(now),
        updated_on: Some(now),
        created_by: Some(ctx.caller_oid.clone()),
        updated_by: Some(ctx.caller_oid.clone()),
    };
    st.assignments.retain(|a| !a.rec.name.eq_ignore_ascii_case(name));
    st.assignments.push(StoredAssignment {
        rec: rec.clone(),
        written_at: Some(Instant::now()),
        deleted_at: None,
    });
    Ok(reply::json(StatusCode::CREATED, &render(&st.world, &rec)))
}

fn not_found(name: &str) -> ArmError {
    ArmError::not_found(
        "RoleAssignmentNotFound",
        format!("The role assignment '{name}' is not found."),
    )
}

/// `GET {scope}/providers/Microsoft.Authorization/roleAssignments/{name}`.
pub(crate) fn get(ctx: &Ctx<'_>, st: &mut State, scope_str: &str, name: &str) -> Result<Response, ArmError> {
    purge(st);
    guard(
        &st.world,
        &ctx.caller_oid,
        "Microsoft.Authorization/roleAssignments/read",
        scope_str,
    )?;
    let lag = lag(st);
    let found = st.assignments.iter().find(|a| {
        a.deleted_at.is_none()
            && a.rec.name.eq_ignore_ascii_case(name)
            && scope::norm(&a.rec.scope) == scope::norm(scope_str)
    });
    match found {
        Some(a) if a.readable(lag) => Ok(reply::json(StatusCode::OK, &render(&st.world, &a.rec))),
        _ => Err(not_found(name)),
    }
}

/// `DELETE {scope}/providers/Microsoft.Authorization/roleAssignments/{name}`: 200 with the
/// deleted body, 204 when there is nothing to delete.
pub(crate) fn delete(ctx: &Ctx<'_>, st: &mut State, scope_str: &str, name: &str) -> Result<Response, ArmError> {
    purge(st);
    guard(
        &st.world,
        &ctx.caller_oid,
        "Microsoft.Authorization/roleAssignments/delete",
        scope_str,
    )?;
    let found = st.assignments.iter_mut().find(|a| {
        a.deleted_at.is_none()
            && a.rec.name.eq_ignore_ascii_case(name)
            && scope::norm(&a.rec.scope) == scope::norm(scope_str)
    });
    let Some(a) = found else {
        return Ok(reply::empty(StatusCode::NO_CONTENT));
    };
    a.deleted_at = Some(Instant::now());
    let rec = a.rec.clone();
    purge(st);
    Ok(reply::json(StatusCode::OK, &render(&st.world, &rec)))
}

/// `who` and every group it belongs to transitively, as ARM's `assignedTo()` sees them (group
/// membership changes arrive after `behaviour.groupMembershipArmDelayMs`).
pub(crate) fn assigned_to_principals(st: &State, who: &str) -> Vec<String> {
    let delay = Duration::from_millis(st.world.behaviour.group_membership_arm_delay_ms);
    let mut ids = st.transitive_groups(who, delay);
    ids.push(who.to_string());
    ids
}

/// Live assignments at or above `scope` held by `who` directly or through its groups, as ARM
/// reads them now (`atScope() and assignedTo('{who}')`, with the read-after-write lag).
pub(crate) fn effective_for<'s>(st: &'s State, who: &str, scope_str: &str) -> Vec<&'s StoredAssignment> {
    let lag = lag(st);
    let principals = assigned_to_principals(st, who);
    st.assignments
        .iter()
        .filter(|a| a.deleted_at.is_none() && a.readable(lag))
        .filter(|a| scope::covers(&a.rec.scope, scope_str))
        .filter(|a| principals.iter().any(|p| p.eq_ignore_ascii_case(&a.rec.principal_id)))
        .collect()
}

/// The parsed `$filter` of a list call.
#[derive(Debug, Default, PartialEq)]
struct Filter {
    at_scope: bool,
    principal_id: Option<String>,
    assigned_to: Option<String>,
}

fn unsupported(f: &str) -> ArmError {
    ArmError::bad_request(
        "UnsupportedQuery",
        format!(
            "The filter '{f}' is not supported. Supported filters are either 'atScope()' or 'principalId eq '{{value}}' or assignedTo('{{value}}')'."
        ),
    )
}

fn quoted(s: &str) -> Option<String> {
    let s = s.trim();
    (s.len() >= 2 && s.starts_with('\'') && s.ends_with('\'')).then(|| s[1..s.len() - 1].to_string())
}

fn parse_filter(f: &str) -> Result<Filter, ArmError> {
    let mut out = Filter::default();
    for clause in split_and(f) {
        let lower = clause.to_ascii_lowercase();
        if lower.replace(' ', "") == "atscope()" && !out.at_scope {
            out.at_scope = true;
        } else if lower.starts_with("assignedto(") && clause.ends_with(')') && out.assigned_to.is_none() {
            out.assigned_to = Some(quoted(&clause[11..clause.len() - 1]).ok_or_else(|| unsupported(f))?);
        } else if lower.starts_with("principalid ") && out.principal_id.is_none() {
            let rest = clause[12..].trim_start();
            let value = rest
                .get(..3)
                .filter(|op| op.eq_ignore_ascii_case("eq "))
                .and_then(|_| quoted(&rest[3..]))
                .ok_or_else(|| unsupported(f))?;
            out.principal_id = Some(value);
        } else {
            return Err(unsupported(f));
        }
    }
    if out.assigned_to.is_some() && out.principal_id.is_some() {
        return Err(unsupported(f));
    }
    Ok(out)
}

/// `GET {scope}/providers/Microsoft.Authorization/roleAssignments[?$filter=...]`.
pub(crate) fn list(ctx: &Ctx<'_>, st: &mut State, scope_str: &str) -> Result<Response, ArmError> {
    purge(st);
    guard(
        &st.world,
        &ctx.caller_oid,
        "Microsoft.Authorization/roleAssignments/read",
        scope_str,
    )?;
    let raw_filter = ctx
        .param("$filter")
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(str::to_string);
    let filter = match &raw_filter {
        Some(f) => parse_filter(f)?,
        None => Filter::default(),
    };
    let mut principals: Option<Vec<String>> = filter.principal_id.clone().map(|p| vec![p]);
    if let Some(who) = &filter.assigned_to {
        if st.world.principal(who).is_some_and(|p| p.kind == PrincipalKind::Group) {
            return Err(ArmError::bad_request(
                "UnsupportedQuery",
                format!(
                    "The assignedTo() filter only accepts a user or service principal object id; '{who}' is a group."
                ),
            ));
        }
        principals = Some(assigned_to_principals(st, who));
    }
    let lag = lag(st);
    let values: Vec<Value> = st
        .assignments
        .iter()
        .filter(|a| a.readable(lag) && a.deleted_at.is_none_or(|d| d.elapsed() < lag))
        .filter(|a| {
            scope::covers(&a.rec.scope, scope_str) || (!filter.at_scope && scope::covers(scope_str, &a.rec.scope))
        })
        .filter(|a| {
            principals
                .as_ref()
                .is_none_or(|ps| ps.iter().any(|p| p.eq_ignore_ascii_case(&a.rec.principal_id)))
        })
        .map(|a| render(&st.world, &a.rec))
        .collect();
    let extra: Vec<(&str, &str)> = raw_filter.as_deref().map(|f| vec![("$filter", f)]).unwrap_or_default();
    paging::respond(ctx, values, &extra)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_like_arm() {
        assert_eq!(
            parse_filter("atScope()").unwrap(),
            Filter {
                at_scope: true,
                ..Default::default()
            }
        );
        let f = parse_filter("atScope() and assignedTo('abc')").unwrap();
        assert!(f.at_scope);
        assert_eq!(f.assigned_to.as_deref(), Some("abc"));
        assert_eq!(
            parse_filter("principalId eq 'x'").unwrap().principal_id.as_deref(),
            Some("x")
        );
        assert!(parse_filter("roleName eq 'x'").is_err());
        assert!(parse_filter("principalId eq 'x' and assignedTo('y')").is_err());
    }
}
