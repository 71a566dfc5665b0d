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
