//! Microsoft Graph directory objects, groups and membership outcomes.
use serde::{Deserialize, Serialize};

/// A Graph service principal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePrincipal {
    /// Object id.
    pub id: String,
    /// Application (client) id.
    #[serde(default)]
    pub app_id: Option<String>,
    /// Display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// `Application`, `ManagedIdentity`, ...
    #[serde(default)]
    pub service_principal_type: Option<String>,
}

/// A Graph group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    /// Object id.
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Dynamic groups (`DynamicMembership`) cannot have members added.
    #[serde(default)]
    pub group_types: Vec<String>,
    /// Security groups can hold Azure role assignments.
    #[serde(default)]
    pub security_enabled: Option<bool>,
    /// Role-assignable groups are the only ones Entra lets hold directory roles.
    #[serde(default)]
    pub is_assignable_to_role: Option<bool>,
}

/// A Graph directory object (from `transitiveMemberOf`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryObject {
    /// Object id.
    pub id: String,
    /// `#microsoft.graph.group`, ...
    #[serde(rename = "@odata.type", default)]
    pub odata_type: Option<String>,
    /// Display name.
    #[serde(rename = "displayName", default)]
    pub display_name: Option<String>,
    /// Groups only: whether the group can hold Entra directory roles.
    #[serde(rename = "isAssignableToRole", default)]
    pub is_assignable_to_role: Option<bool>,
}

impl DirectoryObject {
    fn is_type(&self, name: &str) -> bool {
        self.odata_type.as_deref().is_some_and(|t| t.eq_ignore_ascii_case(name))
    }

    pub fn is_group(&self) -> bool {
        self.is_type("#microsoft.graph.group")
    }

    /// An Entra directory role (Global Administrator, ...).
    pub fn is_directory_role(&self) -> bool {
        self.is_type("#microsoft.graph.directoryRole")
    }
}

/// An app role granted to a principal (`GET /groups/{id}/appRoleAssignments`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppRoleAssignment {
    pub id: String,
    #[serde(default)]
    pub app_role_id: Option<String>,
    /// The service principal of the application the role belongs to.
    #[serde(default)]
    pub resource_id: Option<String>,
    #[serde(default)]
    pub resource_display_name: Option<String>,
}

/// Result of adding a group member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GroupAdd {
    /// Newly added.
    Added,
    /// Was already a member.
    AlreadyMember,
}

/// Result of removing a group member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GroupRemove {
    /// Removed.
    Removed,
    /// Was not a member.
    NotMember,
}
