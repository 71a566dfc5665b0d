//! Role definitions and the caller's own permissions.
use serde::{Deserialize, Serialize};

/// One permission block (role definition or caller permissions).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Permission {
    /// Allowed control-plane actions (wildcards allowed).
    #[serde(default)]
    pub actions: Vec<String>,
    /// Subtracted from `actions`.
    #[serde(default)]
    pub not_actions: Vec<String>,
    /// Allowed data actions.
    #[serde(default)]
    pub data_actions: Vec<String>,
    /// Subtracted from `data_actions`.
    #[serde(default)]
    pub not_data_actions: Vec<String>,
}

/// A role definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleDefinition {
    /// Full id.
    pub id: String,
    /// GUID name (as returned).
    pub name: String,
    /// Display name, e.g. `AcrPull`.
    pub role_name: String,
    /// `BuiltInRole` / `CustomRole`.
    pub role_type: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Permissions.
    pub permissions: Vec<Permission>,
    /// Assignable scopes.
    pub assignable_scopes: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct WireRdProps {
    #[serde(default)]
    role_name: String,
    #[serde(rename = "type", default)]
    role_type: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    permissions: Vec<Permission>,
    #[serde(default)]
    assignable_scopes: Vec<String>,
}

#[derive(Deserialize)]
pub(crate) struct WireRoleDefinition {
    id: String,
    name: String,
    #[serde(default)]
    properties: WireRdProps,
}

impl From<WireRoleDefinition> for RoleDefinition {
    fn from(w: WireRoleDefinition) -> Self {
        RoleDefinition {
            id: w.id,
            name: w.name,
            role_name: w.properties.role_name,
            role_type: w.properties.role_type,
            description: w.properties.description,
            permissions: w.properties.permissions,
            assignable_scopes: w.properties.assignable_scopes,
        }
    }
}
