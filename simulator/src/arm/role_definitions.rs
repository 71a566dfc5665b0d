//! Role definitions: the always-present built-ins plus the world's custom roles.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::Ctx;
use super::errors::ArmError;
use super::paging;
use super::permissions::guard;
use super::resources::{parse_eq, split_and};
use super::scope;
use crate::reply;
use crate::world::{RoleDefinition, RolePermission, World};

fn builtin(
    id: &str,
    name: &str,
    description: &str,
    actions: &[&str],
    not_actions: &[&str],
    data_actions: &[&str],
) -> RoleDefinition {
    let v = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    RoleDefinition {
        id: id.to_string(),
        role_name: name.to_string(),
        description: description.to_string(),
        role_type: "BuiltInRole".to_string(),
        permissions: vec![RolePermission {
            actions: v(actions),
            not_actions: v(not_actions),
            data_actions: v(data_actions),
            not_data_actions: Vec::new(),
        }],
        assignable_scopes: vec!["/".to_string()],
    }
}

const REPO: &str = "Microsoft.ContainerRegistry/registries/repositories";

/// The built-in roles relevant to attaching registries (GUIDs from the reference).
pub(crate) fn builtin_role_definitions() -> Vec<RoleDefinition> {
    let content = |verbs: &[&str]| -> Vec<String> {
        verbs
            .iter()
            .flat_map(|v| [format!("{REPO}/content/{v}"), format!("{REPO}/metadata/{v}")])
            .collect()
    };
    let reader = content(&["read"]);
    let writer = content(&["read", "write"]);
    let contributor = content(&["read", "write", "delete"]);
    fn refs(xs: &[String]) -> Vec<&str> {
        xs.iter().map(String::as_str).collect()
    }
    vec![
        builtin(
            "7f951dda-4ed3-4680-a7ca-43fe172d538d",
            "AcrPull",
            "acr pull",
            &["Microsoft.ContainerRegistry/registries/pull/read"],
            &[],
            &[],
        ),
        builtin(
            "8311e382-0749-4cb8-b61a-304f252e45ec",
            "AcrPush",
            "acr push",
            &[
                "Microsoft.ContainerRegistry/registries/pull/read",
                "Microsoft.ContainerRegistry/registries/push/write",
            ],
            &[],
            &[],
        ),
        builtin(
            "c2f4ef07-c644-48eb-af81-4b1b4947fb11",
            "AcrDelete",
            "acr delete",
            &["Microsoft.ContainerRegistry/registries/artifacts/delete"],
            &[],
            &[],
        ),
        builtin(
            "b93aa761-3e63-49ed-ac28-beffa264f7ac",
            "Container Registry Repository Reader",
            "Allows read access to Azure Container Registry repositories, with optional ABAC conditions.",
            &[],
            &[],
            &refs(&reader),
        ),
        builtin(
            "2a1e307c-b015-4ebd-883e-5b7698a07328",
            "Container Registry Repository Writer",
            "Allows read and write access to Azure Container Registry repositories, with optional ABAC conditions.",
            &[],
            &[],
            &refs(&writer),
        ),
        builtin(
            "2efddaa5-3f1f-4df3-97df-af3f13818f4c",
            "Container Registry Repository Contributor",
            "Allows read, write and delete access to Azure Container Registry repositories, with optional ABAC conditions.",
            &[],
            &[],
            &refs(&contributor),
        ),
        builtin(
            "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
            "Owner",
            "Grants full access to manage all resources, including the ability to assign roles in Azure RBAC.",
            &["*"],
            &[],
            &[],
        ),
        builtin(
            "b24988ac-6180-42a0-ab88-20f7382dd24c",
            "Contributor",
            "Grants full access to manage all resources, but does not allow you to assign roles in Azure RBAC.",
            &["*"],
            &[
                "Microsoft.Authorization/*/Delete",
                "Microsoft.Authorization/*/Write",
                "Microsoft.Authorization/elevateAccess/Action",
            ],
            &[],
        ),
        builtin(
            "acdd72a7-3385-48ef-bd42-f606fba81ae7",
            "Reader",
            "View all resources, but does not allow you to make any changes.",
            &["*/read"],
            &[],
            &[],
        ),
        builtin(
            "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9",
            "User Access Administrator",
            "Lets you manage user access to Azure resources.",
            &["*/read", "Microsoft.Authorization/*", "Microsoft.Support/*"],
            &[],
            &[],
        ),
        builtin(
            "f1a07417-d97a-45cb-824c-7a7467783830",
            "Managed Identity Operator",
            "Read and Assign User Assigned Identity",
            &[
                "Microsoft.ManagedIdentity/userAssignedIdentities/*/read",
                "Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action",
                "Microsoft.Authorization/*/read",
                "Microsoft.Resources/subscriptions/resourceGroups/read",
            ],
            &[],
            &[],
        ),
    ]
}

fn all(world: &World) -> Vec<RoleDefinition> {
    let mut v = builtin_role_definitions();
    v.extend(world.role_definitions.iter().cloned());
    v
}

/// A role by GUID (built-in or custom).
pub(crate) fn find(world: &World, guid: &str) -> Option<RoleDefinition> {
    all(world).into_iter().find(|r| r.id.eq_ignore_ascii_case(guid))
}

/// Whether a role GUID is known (built-in or custom).
pub(crate) fn role_definition_guid_exists(world: &World, guid: &str) -> bool {
    all(world).iter().any(|r| r.id.eq_ignore_ascii_case(guid))
}

/// The id prefix ARM uses for role definitions read at `scope`.
pub(crate) fn id_prefix(scope_str: &str) -> String {
    match scope::subscription_of(scope_str) {
        Some(sub) => {
            format!("/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/")
        }
        None => "/providers/Microsoft.Authorization/roleDefinitions/".to_string(),
    }
}

fn to_json(rd: &RoleDefinition, scope_str: &str) -> Value {
    json!({
        "properties": {
            "roleName": rd.role_name,
            "type": rd.role_type,
            "description": rd.description,
            "assignableScopes": rd.assignable_scopes,
            "permissions": rd.permissions,
            "createdOn": "2018-01-01T00:00:00.0000000Z",
            "updatedOn": "2025-01-01T00:00:00.0000000Z",
            "createdBy": null,
            "updatedBy": null,
        },
        "id": format!("{}{}", id_prefix(scope_str), rd.id),
        "type": "Microsoft.Authorization/roleDefinitions",
        "name": rd.id,
    })
}

/// Roles visible at a scope: built-ins everywhere, custom ones within their assignable scopes.
fn visible_at(rd: &RoleDefinition, scope_str: &str) -> bool {
    rd.assignable_scopes
        .iter()
        .any(|a| scope::covers(a, scope_str) || scope::covers(scope_str, a))
}

fn authorize_read(ctx: &Ctx<'_>, world: &World, scope_str: &str) -> Result<(), ArmError> {
    // Tenant-level role definition reads are open to any authenticated caller, as in Azure.
    if scope::norm(scope_str).is_empty() {
        return Ok(());
    }
    guard(
        world,
        &ctx.caller_oid,
        "Microsoft.Authorization/roleDefinitions/read",
        scope_str,
    )
    .map(|_| ())
}

/// `GET {scope}/providers/Microsoft.Authorization/roleDefinitions/{id}`.
pub(crate) fn get(ctx: &Ctx<'_>, world: &World, scope_str: &str, id: &str) -> Result<Response, ArmError> {
    authorize_read(ctx, world, scope_str)?;
    all(world)
        .iter()
        .find(|r| r.id.eq_ignore_ascii_case(id) && visible_at(r, scope_str))
        .map(|r| reply::json(StatusCode::OK, &to_json(r, scope_str)))
        .ok_or_else(|| {
            ArmError::not_found(
                "RoleDefinitionDoesNotExist",
                format!("The specified role definition with ID '{id}' does not exist."),
            )
        })
}

/// `GET {scope}/providers/Microsoft.Authorization/roleDefinitions[?$filter=roleName eq 'X']`.
pub(crate) fn list(ctx: &Ctx<'_>, world: &World, scope_str: &str) -> Result<Response, ArmError> {
    authorize_read(ctx, world, scope_str)?;
    let filter = ctx
        .param("$filter")
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(str::to_string);
    let mut name = None;
    let mut role_type = None;
    if let Some(f) = &filter {
        for clause in split_and(f) {
            let bad = || {
                ArmError::bad_request(
                    "UnsupportedQuery",
                    format!(
                        "The filter '{f}' is not supported. Supported filters are 'roleName eq '{{value}}'' and 'type eq '{{value}}''."
                    ),
                )
            };
            let (field, value) = parse_eq(clause).ok_or_else(bad)?;
            match field.to_ascii_lowercase().as_str() {
                "rolename" => name = Some(value),
                "type" => role_type = Some(value),
                _ => return Err(bad()),
            }
        }
    }
    let values: Vec<Value> = all(world)
        .iter()
        .filter(|r| visible_at(r, scope_str))
        .filter(|r| name.as_deref().is_none_or(|n| r.role_name.eq_ignore_ascii_case(n)))
        .filter(|r| role_type.as_deref().is_none_or(|t| r.role_type.eq_ignore_ascii_case(t)))
        .map(|r| to_json(r, scope_str))
        .collect();
    let extra: Vec<(&str, &str)> = filter.as_deref().map(|f| vec![("$filter", f)]).unwrap_or_default();
    paging::respond(ctx, values, &extra)
}
