//! Role assignments: create bodies, the assignment itself, list filters.
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// `principalType` of a role assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalType {
    /// User.
    User,
    /// Group.
    Group,
    /// Service principal (managed identities are service principals).
    ServicePrincipal,
    /// Foreign group.
    ForeignGroup,
    /// Device.
    Device,
    /// Anything else ARM returns.
    Other(String),
}

impl PrincipalType {
    /// The ARM string.
    pub fn as_str(&self) -> &str {
        match self {
            Self::User => "User",
            Self::Group => "Group",
            Self::ServicePrincipal => "ServicePrincipal",
            Self::ForeignGroup => "ForeignGroup",
            Self::Device => "Device",
            Self::Other(s) => s,
        }
    }
    fn parse(s: &str) -> Self {
        [
            Self::User,
            Self::Group,
            Self::ServicePrincipal,
            Self::ForeignGroup,
            Self::Device,
        ]
        .into_iter()
        .find(|v| v.as_str().eq_ignore_ascii_case(s))
        .unwrap_or_else(|| Self::Other(s.to_string()))
    }
}
impl Serialize for PrincipalType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}
impl<'de> Deserialize<'de> for PrincipalType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Self::parse(&String::deserialize(d)?))
    }
}

/// Body of a role assignment PUT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleAssignmentCreate {
    /// Full role definition id, see [`crate::azure::roles::role_definition_id`].
    pub role_definition_id: String,
    /// Object id of the grantee.
    pub principal_id: Uuid,
    /// Setting it lets ARM skip the directory lookup (avoids `PrincipalNotFound` on new identities).
    pub principal_type: PrincipalType,
    /// Free text (≤ 2 KB), e.g. "managed by acr-attach".
    pub description: Option<String>,
}

impl RoleAssignmentCreate {
    pub(crate) fn to_body(&self) -> serde_json::Value {
        let mut props = serde_json::json!({
            "roleDefinitionId": self.role_definition_id,
            "principalId": self.principal_id.to_string(),
            "principalType": self.principal_type.as_str(),
        });
        if let Some(d) = &self.description {
            props["description"] = serde_json::Value::String(d.clone());
        }
        serde_json::json!({ "properties": props })
    }
}

/// A role assignment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleAssignment {
    /// Full id.
    pub id: String,
    /// GUID name.
    pub name: String,
    /// Scope it is made at.
    pub scope: String,
    /// Role definition id (forms and casing vary; compare with [`Self::role_definition_guid`]).
    pub role_definition_id: String,
    /// Grantee object id.
    pub principal_id: String,
    /// Grantee type.
    pub principal_type: Option<PrincipalType>,
    /// Description.
    pub description: Option<String>,
    /// ABAC condition.
    pub condition: Option<String>,
    /// `createdOn` as returned.
    pub created_on: Option<String>,
    /// `updatedOn` as returned.
    pub updated_on: Option<String>,
    /// `createdBy` as returned.
    pub created_by: Option<String>,
}

impl RoleAssignment {
    /// The role definition's trailing GUID (role ids come back as
    /// `/subscriptions/{s}/providers/...` or `/providers/...`, in any casing).
    pub fn role_definition_guid(&self) -> Option<Uuid> {
        trailing_guid(&self.role_definition_id)
    }
    /// True if the assignment is for role `role` (by trailing GUID).
    pub fn is_role(&self, role: Uuid) -> bool {
        self.role_definition_guid() == Some(role)
    }
    /// True if made exactly at `scope` (case-insensitive; inherited assignments are not).
    pub fn is_at_scope(&self, scope: &crate::azure::ids::ResourceId) -> bool {
        self.scope
            .trim_end_matches('/')
            .eq_ignore_ascii_case(&scope.to_string())
            || self
                .scope
                .parse::<crate::azure::ids::ResourceId>()
                .is_ok_and(|s| &s == scope)
    }
    /// True if granted to `principal`.
    pub fn is_for_principal(&self, principal: Uuid) -> bool {
        Uuid::parse_str(&self.principal_id).is_ok_and(|p| p == principal)
    }
    /// The name as a GUID.
    pub fn name_guid(&self) -> Option<Uuid> {
        Uuid::parse_str(&self.name).ok()
    }
}

/// The last path segment of `id` as a GUID.
pub fn trailing_guid(id: &str) -> Option<Uuid> {
    let last = id.trim_end_matches('/').rsplit('/').next()?;
    Uuid::parse_str(last).ok()
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct WireRaProps {
    #[serde(default)]
    scope: String,
    #[serde(default)]
    role_definition_id: String,
    #[serde(default)]
    principal_id: String,
    #[serde(default)]
    principal_type: Option<PrincipalType>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    condition: Option<String>,
    #[serde(default)]
    created_on: Option<String>,
    #[serde(default)]
    updated_on: Option<String>,
    #[serde(default)]
    created_by: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct WireRoleAssignment {
    id: String,
    name: String,
    #[serde(default)]
    properties: WireRaProps,
}

impl From<WireRoleAssignment> for RoleAssignment {
    fn from(w: WireRoleAssignment) -> Self {
        let p = w.properties;
        RoleAssignment {
            id: w.id,
            name: w.name,
            scope: p.scope,
            role_definition_id: p.role_definition_id,
            principal_id: p.principal_id,
            principal_type: p.principal_type,
            description: p.description,
            condition: p.condition,
            created_on: p.created_on,
            updated_on: p.updated_on,
            created_by: p.created_by,
        }
    }
}

/// Which role assignments to list at a scope (`$filter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleAssignmentFilter {
    /// Everything that applies at, above and below the scope.
    None,
    /// `atScope()`: at or above the scope.
    AtScope,
    /// `principalId eq '{id}'`: exactly this principal (no group expansion), at/above/below.
    PrincipalId(Uuid),
    /// `assignedTo('{id}')`: this user/SP including via (nested) groups.
    AssignedTo(Uuid),
    /// `atScope() and assignedTo('{id}')`.
    AtScopeAndAssignedTo(Uuid),
}

impl RoleAssignmentFilter {
    /// The OData filter expression, unencoded.
    pub fn expression(&self) -> Option<String> {
        match self {
            Self::None => None,
            Self::AtScope => Some("atScope()".into()),
            Self::PrincipalId(p) => Some(format!("principalId eq '{p}'")),
            Self::AssignedTo(p) => Some(format!("assignedTo('{p}')")),
            Self::AtScopeAndAssignedTo(p) => Some(format!("atScope() and assignedTo('{p}')")),
        }
    }
}

/// Result of deleting a role assignment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Deleted {
    /// Deleted now (ARM returned the deleted assignment when it had a body).
    Deleted(Option<Box<RoleAssignment>>),
    /// It did not exist (204 or 404).
    AlreadyAbsent,
}
