//! Typed views of the ARM and Graph resources the service reads and writes.
//!
//! Only the fields the attach/detach logic needs are kept; unknown fields are ignored so new
//! api-versions don't break decoding. Ids inside responses stay strings (ARM echoes them in
//! whatever form it likes); parse them with the `ids` types where a URL is needed.
//! The public types are flat and serialisable so job handlers can store them.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use uuid::Uuid;

/// A `{value, nextLink}` page of an ARM list.
#[derive(Debug, Deserialize)]
pub(crate) struct ArmPage<T> {
    #[serde(default = "Vec::new")]
    pub value: Vec<T>,
    #[serde(rename = "nextLink", default)]
    pub next_link: Option<String>,
}

/// A `{value, @odata.nextLink}` page of a Graph list.
#[derive(Debug, Deserialize)]
pub(crate) struct GraphPage<T> {
    #[serde(default = "Vec::new")]
    pub value: Vec<T>,
    #[serde(rename = "@odata.nextLink", default)]
    pub next_link: Option<String>,
}

// ---------------------------------------------------------------- managed clusters

/// The kubelet identity of an AKS cluster (`identityProfile.kubeletidentity`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct KubeletIdentity {
    /// Object (principal) id: the grantee of role assignments.
    #[serde(default)]
    pub object_id: Option<String>,
    /// Client id (what kubelet/IMDS uses).
    #[serde(default)]
    pub client_id: Option<String>,
    /// ARM id of the user-assigned identity.
    #[serde(default)]
    pub resource_id: Option<String>,
}

/// An AKS managed cluster, reduced to what attach needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManagedCluster {
    /// ARM id as returned.
    pub id: String,
    /// Cluster name.
    pub name: String,
    /// Region.
    pub location: String,
    /// `properties.provisioningState`.
    pub provisioning_state: Option<String>,
    /// `properties.identityProfile.kubeletidentity`, if any.
    pub kubelet_identity: Option<KubeletIdentity>,
    /// `properties.servicePrincipalProfile.clientId`: `"msi"` for managed-identity clusters,
    /// the service principal's app id for SP clusters.
    pub service_principal_client_id: Option<String>,
    /// `properties.nodeResourceGroup`.
    pub node_resource_group: Option<String>,
}

impl ManagedCluster {
    /// True for managed-identity clusters (a kubelet identity with an object id, or
    /// `servicePrincipalProfile.clientId == "msi"`).
    pub fn is_msi_cluster(&self) -> bool {
        self.kubelet_object_id().is_some()
            || self
                .service_principal_client_id
                .as_deref()
                .is_some_and(|c| c.eq_ignore_ascii_case("msi"))
    }

    /// The kubelet identity's object id, if the cluster reports one.
    pub fn kubelet_object_id(&self) -> Option<&str> {
        self.kubelet_identity
            .as_ref()
            .and_then(|k| k.object_id.as_deref())
            .filter(|s| !s.is_empty())
    }

    /// For service-principal clusters: the SP's app id (to resolve through Graph).
    pub fn service_principal_app_id(&self) -> Option<&str> {
        if self.kubelet_object_id().is_some() {
            return None;
        }
        self.service_principal_client_id
            .as_deref()
            .filter(|c| !c.is_empty() && !c.eq_ignore_ascii_case("msi"))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireClusterProps {
    #[serde(default)]
    provisioning_state: Option<String>,
    #[serde(default)]
    identity_profile: Option<BTreeMap<String, KubeletIdentity>>,
    #[serde(default)]
    service_principal_profile: Option<WireSpProfile>,
    #[serde(default)]
    node_resource_group: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireSpProfile {
    #[serde(default)]
    client_id: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct WireCluster {
    id: String,
    name: String,
    #[serde(default)]
    location: String,
    properties: Option<WireClusterProps>,
}

impl From<WireCluster> for ManagedCluster {
    fn from(w: WireCluster) -> Self {
        let p = w.properties;
        let (provisioning_state, kubelet_identity, sp, node_rg) = match p {
            Some(p) => (
                p.provisioning_state,
                p.identity_profile.and_then(|m| {
                    m.into_iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case("kubeletidentity"))
                        .map(|(_, v)| v)
                }),
                p.service_principal_profile.and_then(|s| s.client_id),
                p.node_resource_group,
            ),
            None => (None, None, None, None),
        };
        ManagedCluster {
            id: w.id,
            name: w.name,
            location: w.location,
            provisioning_state,
            kubelet_identity,
            service_principal_client_id: sp,
            node_resource_group: node_rg,
        }
    }
}

// ---------------------------------------------------------------- registries

/// A registry's `roleAssignmentMode`. Absent (older api-versions, or ARG's empty string)
/// means legacy.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum RoleAssignmentMode {
    /// `LegacyRegistryPermissions`: AcrPull works.
    #[default]
    LegacyRegistryPermissions,
    /// `AbacRepositoryPermissions`: AcrPull is not honoured; use Repository Reader.
    AbacRepositoryPermissions,
    /// A value this client does not know.
    Other(String),
}

impl RoleAssignmentMode {
    /// Parses case-insensitively; empty means legacy.
    pub fn parse(s: Option<&str>) -> Self {
        match s.map(str::trim) {
            None | Some("") => Self::LegacyRegistryPermissions,
            Some(v) if v.eq_ignore_ascii_case("LegacyRegistryPermissions") => Self::LegacyRegistryPermissions,
            Some(v) if v.eq_ignore_ascii_case("AbacRepositoryPermissions") => Self::AbacRepositoryPermissions,
            Some(v) => Self::Other(v.to_string()),
        }
    }
    /// The ARM string.
    pub fn as_str(&self) -> &str {
        match self {
            Self::LegacyRegistryPermissions => "LegacyRegistryPermissions",
            Self::AbacRepositoryPermissions => "AbacRepositoryPermissions",
            Self::Other(s) => s,
        }
    }
}

impl fmt::Display for RoleAssignmentMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
impl Serialize for RoleAssignmentMode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}
impl<'de> Deserialize<'de> for RoleAssignmentMode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Option::<String>::deserialize(d)?;
        Ok(Self::parse(s.as_deref()))
    }
}

/// A container registry, reduced to what attach and its diagnostics need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Registry {
    /// ARM id in ARM's canonical casing (use it as the role-assignment scope).
    pub id: String,
    /// Name.
    pub name: String,
    /// Region.
    pub location: String,
    /// `properties.loginServer`, e.g. `myregistry.azurecr.io`.
    pub login_server: Option<String>,
    /// `properties.roleAssignmentMode` (absent ⇒ legacy).
    pub role_assignment_mode: RoleAssignmentMode,
    /// `properties.provisioningState`.
    pub provisioning_state: Option<String>,
    /// `properties.publicNetworkAccess` (`Enabled`/`Disabled`).
    pub public_network_access: Option<String>,
    /// `properties.networkRuleSet.defaultAction` (`Allow`/`Deny`).
    pub network_default_action: Option<String>,
    /// `properties.anonymousPullEnabled`.
    pub anonymous_pull_enabled: Option<bool>,
    /// `properties.dataEndpointEnabled`.
    pub data_endpoint_enabled: Option<bool>,
    /// `properties.policies.azureADAuthenticationAsArmPolicy.status`.
    pub aad_auth_as_arm_policy: Option<String>,
    /// `sku.name`.
    pub sku: Option<String>,
}

impl Registry {
    /// The id as a typed [`super::ids::RegistryId`] (the scope for role assignments).
    pub fn registry_id(&self) -> Result<super::ids::RegistryId, super::ids::IdError> {
        self.id.parse()
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct WireRegistryProps {
    #[serde(default)]
    login_server: Option<String>,
    #[serde(default)]
    role_assignment_mode: Option<String>,
    #[serde(default)]
    provisioning_state: Option<String>,
    #[serde(default)]
    public_network_access: Option<String>,
    #[serde(default)]
    network_rule_set: Option<serde_json::Value>,
    #[serde(default)]
    anonymous_pull_enabled: Option<bool>,
    #[serde(default)]
    data_endpoint_enabled: Option<bool>,
    #[serde(default)]
    policies: Option<serde_json::Value>,
}

#[derive(Deserialize)]
pub(crate) struct WireRegistry {
    id: String,
    name: String,
    #[serde(default)]
    location: String,
    #[serde(default)]
    sku: Option<serde_json::Value>,
    #[serde(default)]
    properties: Option<WireRegistryProps>,
}

impl From<WireRegistry> for Registry {
    fn from(w: WireRegistry) -> Self {
        let p = w.properties.unwrap_or_default();
        let str_at = |v: &Option<serde_json::Value>, path: &[&str]| {
            let mut cur = v.as_ref()?;
            for k in path {
                cur = cur.get(k)?;
            }
            cur.as_str().map(str::to_string)
        };
        Registry {
            id: w.id,
            name: w.name,
            location: w.location,
            login_server: p.login_server,
            role_assignment_mode: RoleAssignmentMode::parse(p.role_assignment_mode.as_deref()),
            provisioning_state: p.provisioning_state,
            public_network_access: p.public_network_access,
            network_default_action: str_at(&p.network_rule_set, &["defaultAction"]),
            anonymous_pull_enabled: p.anonymous_pull_enabled,
            data_endpoint_enabled: p.data_endpoint_enabled,
            aad_auth_as_arm_policy: str_at(&p.policies, &["azureADAuthenticationAsArmPolicy", "status"]),
            sku: str_at(&w.sku, &["name"]),
        }
    }
}

/// A registry found through Azure Resource Graph.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistrySummary {
    /// ARM id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Subscription id.
    #[serde(default)]
    pub subscription_id: String,
    /// Resource group.
    #[serde(default)]
    pub resource_group: String,
    /// Region.
    #[serde(default)]
    pub location: String,
    /// Login server (empty if the index has none).
    #[serde(default)]
    pub login_server: String,
    /// Role assignment mode (ARG returns `""` when absent ⇒ legacy).
    #[serde(default)]
    pub role_assignment_mode: RoleAssignmentMode,
}

impl RegistrySummary {
    /// The id as a typed [`super::ids::RegistryId`].
    pub fn registry_id(&self) -> Result<super::ids::RegistryId, super::ids::IdError> {
        self.id.parse()
    }
}

/// Azure Resource Graph `QueryResponse`.
#[derive(Debug, Deserialize)]
pub(crate) struct ArgResponse {
    #[serde(default)]
    pub data: serde_json::Value,
    #[serde(rename = "$skipToken", default)]
    pub skip_token: Option<String>,
}

// ---------------------------------------------------------------- role assignments

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
    /// Full role definition id, see [`super::roles::role_definition_id`].
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
    pub fn is_at_scope(&self, scope: &super::ids::ResourceId) -> bool {
        self.scope
            .trim_end_matches('/')
            .eq_ignore_ascii_case(&scope.to_string())
            || self.scope.parse::<super::ids::ResourceId>().is_ok_and(|s| &s == scope)
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

// ---------------------------------------------------------------- role definitions / permissions

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

// ---------------------------------------------------------------- user-assigned identities

/// A user-assigned managed identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserAssignedIdentity {
    /// ARM id as returned.
    pub id: String,
    /// Name.
    pub name: String,
    /// Region.
    pub location: String,
    /// Object id of the backing service principal (the grantee in role assignments).
    pub principal_id: String,
    /// Client (application) id.
    pub client_id: String,
    /// Tenant.
    pub tenant_id: String,
    /// Tags.
    pub tags: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct WireUamiProps {
    #[serde(default)]
    principal_id: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    tenant_id: String,
}

#[derive(Deserialize)]
pub(crate) struct WireIdentity {
    id: String,
    name: String,
    #[serde(default)]
    location: String,
    #[serde(default)]
    tags: Option<BTreeMap<String, String>>,
    #[serde(default)]
    properties: WireUamiProps,
}

impl From<WireIdentity> for UserAssignedIdentity {
    fn from(w: WireIdentity) -> Self {
        UserAssignedIdentity {
            id: w.id,
            name: w.name,
            location: w.location,
            principal_id: w.properties.principal_id,
            client_id: w.properties.client_id,
            tenant_id: w.properties.tenant_id,
            tags: w.tags.unwrap_or_default(),
        }
    }
}

// ---------------------------------------------------------------- Microsoft Graph

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

/// Result of deleting a role assignment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Deleted {
    /// Deleted now (ARM returned the deleted assignment when it had a body).
    Deleted(Option<Box<RoleAssignment>>),
    /// It did not exist (204 or 404).
    AlreadyAbsent,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(path: &str) -> serde_json::Value {
        let full = format!("{}/tests/fixtures/azure-examples/{path}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"));
        serde_json::from_str(&text).unwrap()
    }

    fn body(path: &str, status: &str) -> serde_json::Value {
        example(path)["responses"][status]["body"].clone()
    }

    fn ra(path: &str, status: &str) -> RoleAssignment {
        serde_json::from_value::<WireRoleAssignment>(body(path, status))
            .unwrap()
            .into()
    }

    #[test]
    fn role_assignment_examples_parse() {
        for (file, statuses) in [
            (
                "authorization/2022-04-01/RoleAssignments_CreateForResource.json",
                &["201", "200"][..],
            ),
            (
                "authorization/2022-04-01/RoleAssignments_CreateForResourceGroup.json",
                &["201", "200"],
            ),
            ("authorization/2022-04-01/RoleAssignments_Get.json", &["200"]),
            ("authorization/2022-04-01/RoleAssignments_Delete.json", &["200"]),
            ("authorization/2022-04-01/RoleAssignments_DeleteById.json", &["200"]),
        ] {
            for s in statuses {
                let a = ra(file, s);
                assert_eq!(
                    a.role_definition_guid().unwrap().to_string(),
                    "0b5fe924-9a61-425c-96af-cfe6e287ca2d",
                    "{file}"
                );
                assert!(a.is_for_principal("ce2ce14e-85d7-4629-bdbc-454d0519d987".parse().unwrap()));
                assert_eq!(a.principal_type, Some(PrincipalType::User));
                let id: super::super::ids::RoleAssignmentId = a.id.parse().unwrap();
                assert_eq!(id.name(), a.name_guid().unwrap());
                assert!(a.is_at_scope(id.scope()), "{file}");
            }
        }
        // 204 of delete has no body
        assert!(
            example("authorization/2022-04-01/RoleAssignments_Delete.json")["responses"]["204"]
                .get("body")
                .is_none()
        );

        let page: ArmPage<WireRoleAssignment> = serde_json::from_value(body(
            "authorization/2022-04-01/RoleAssignments_ListForScope.json",
            "200",
        ))
        .unwrap();
        assert_eq!(page.value.len(), 1);
        assert!(page.next_link.is_none());
    }

    #[test]
    fn role_assignment_create_body_matches_example_request() {
        let ex = example("authorization/2022-04-01/RoleAssignments_CreateForResource.json");
        let req = &ex["parameters"]["parameters"];
        let create = RoleAssignmentCreate {
            role_definition_id: req["properties"]["roleDefinitionId"].as_str().unwrap().into(),
            principal_id: req["properties"]["principalId"].as_str().unwrap().parse().unwrap(),
            principal_type: PrincipalType::User,
            description: None,
        };
        assert_eq!(&create.to_body(), req);
    }

    #[test]
    fn role_definition_example_parses() {
        let d: RoleDefinition = serde_json::from_value::<WireRoleDefinition>(body(
            "authorization/2022-04-01/GetRoleDefinitionById.json",
            "200",
        ))
        .unwrap()
        .into();
        assert_eq!(d.role_name, "Role name");
        assert_eq!(d.role_type.as_deref(), Some("roletype"));
        assert_eq!(d.permissions[0].actions, vec!["action"]);
        assert_eq!(d.permissions[0].data_actions, vec!["dataAction"]);
        assert_eq!(d.assignable_scopes, vec!["/subscriptions/subId"]);
    }

    #[test]
    fn registry_examples_parse() {
        let r: Registry =
            serde_json::from_value::<WireRegistry>(body("containerregistry/2025-11-01/RegistryGet.json", "200"))
                .unwrap()
                .into();
        assert_eq!(r.name, "myRegistry");
        assert_eq!(r.login_server.as_deref(), Some("myRegistry.azurecr.io"));
        assert_eq!(r.role_assignment_mode, RoleAssignmentMode::LegacyRegistryPermissions);
        assert_eq!(r.provisioning_state.as_deref(), Some("Succeeded"));
        assert_eq!(r.public_network_access.as_deref(), Some("Enabled"));
        assert_eq!(r.network_default_action.as_deref(), Some("Allow"));
        assert_eq!(r.aad_auth_as_arm_policy.as_deref(), Some("enabled"));
        assert_eq!(r.sku.as_deref(), Some("Standard"));
        assert_eq!(r.registry_id().unwrap().name(), "myRegistry");

        let page: ArmPage<WireRegistry> =
            serde_json::from_value(body("containerregistry/2025-11-01/RegistryList.json", "200")).unwrap();
        assert_eq!(page.value.len(), 1);

        let abac = example("containerregistry/2025-11-01/RegistryCreateAbac.json");
        let responses = abac["responses"].as_object().unwrap();
        assert!(!responses.is_empty());
        for (status, resp) in responses {
            if let Some(b) = resp.get("body") {
                let r: Registry = serde_json::from_value::<WireRegistry>(b.clone()).unwrap().into();
                assert_eq!(
                    r.role_assignment_mode,
                    RoleAssignmentMode::AbacRepositoryPermissions,
                    "status {status}"
                );
            }
        }
        // absent ⇒ legacy; unknown kept
        let mut b = body("containerregistry/2025-11-01/RegistryGet.json", "200");
        b["properties"].as_object_mut().unwrap().remove("roleAssignmentMode");
        let r: Registry = serde_json::from_value::<WireRegistry>(b).unwrap().into();
        assert_eq!(r.role_assignment_mode, RoleAssignmentMode::LegacyRegistryPermissions);
        assert_eq!(
            RoleAssignmentMode::parse(Some("Future")),
            RoleAssignmentMode::Other("Future".into())
        );
    }

    #[test]
    fn managed_cluster_example_parses_sp_cluster() {
        let c: ManagedCluster =
            serde_json::from_value::<WireCluster>(body("containerservice/2026-07-01/ManagedClustersGet.json", "200"))
                .unwrap()
                .into();
        assert_eq!(c.name, "clustername1");
        assert_eq!(c.location, "location1");
        assert_eq!(c.provisioning_state.as_deref(), Some("Succeeded"));
        assert!(c.kubelet_identity.is_none());
        assert!(!c.is_msi_cluster());
        assert_eq!(c.service_principal_app_id(), Some("clientid"));
        assert_eq!(c.node_resource_group.as_deref(), Some("MC_rg1_clustername1_location1"));
    }

    #[test]
    fn managed_cluster_with_kubelet_identity() {
        let mut b = body("containerservice/2026-07-01/ManagedClustersGet.json", "200");
        b["properties"]["servicePrincipalProfile"]["clientId"] = "msi".into();
        b["properties"]["identityProfile"] = serde_json::json!({
            "kubeletidentity": {
                "resourceId": "/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/MC_rg1/providers/Microsoft.ManagedIdentity/userAssignedIdentities/clustername1-agentpool",
                "clientId": "4024ab25-56a8-4370-aea6-6389221caf29",
                "objectId": "25cc773c-7f05-40fc-a104-32d2300754ad"
            }
        });
        let c: ManagedCluster = serde_json::from_value::<WireCluster>(b).unwrap().into();
        assert!(c.is_msi_cluster());
        assert_eq!(c.kubelet_object_id(), Some("25cc773c-7f05-40fc-a104-32d2300754ad"));
        assert_eq!(c.service_principal_app_id(), None);
    }

    #[test]
    fn identity_examples_parse() {
        for file in [
            "msi/2023-01-31/IdentityCreate.json",
            "msi/2023-01-31/IdentityGet.json",
            "msi/2026-05-31/IdentityCreate.json",
            "msi/2026-05-31/IdentityGet.json",
        ] {
            let ex = example(file);
            for (_, resp) in ex["responses"].as_object().unwrap() {
                let i: UserAssignedIdentity = serde_json::from_value::<WireIdentity>(resp["body"].clone())
                    .unwrap()
                    .into();
                assert_eq!(i.principal_id, "25cc773c-7f05-40fc-a104-32d2300754ad", "{file}");
                assert_eq!(i.client_id, "4024ab25-56a8-4370-aea6-6389221caf29");
                assert_eq!(i.tenant_id, "b6c948ef-f6b5-4384-8354-da3a15eca969");
                assert_eq!(i.tags.get("key1").map(String::as_str), Some("value1"));
            }
        }
    }

    #[test]
    fn resource_graph_examples_parse() {
        for file in [
            "resourcegraph/2024-04-01/ResourcesFilterQuery.json",
            "resourcegraph/2024-04-01/ResourcesTenantBasicQuery.json",
            "resourcegraph/2024-04-01/ResourcesNextPageQuery.json",
        ] {
            let r: ArgResponse = serde_json::from_value(body(file, "200")).unwrap();
            assert_eq!(r.data.as_array().unwrap().len(), 3, "{file}");
            let rows: Vec<RegistrySummary> = serde_json::from_value(r.data).unwrap();
            assert!(rows.iter().all(|r| r.id.starts_with("/subscriptions/")));
        }
        let r: ArgResponse =
            serde_json::from_value(body("resourcegraph/2024-04-01/ResourcesNextPageQuery.json", "200")).unwrap();
        assert_eq!(
            r.skip_token.as_deref(),
            Some("eyAibm8yIjogImx1Y2syIiwgImJ1dDIiOiAibmljZTIiLCAidHJ5MiI6ICIhIiB9")
        );
    }

    #[test]
    fn filter_expressions() {
        let p: Uuid = "ce2ce14e-85d7-4629-bdbc-454d0519d987".parse().unwrap();
        assert_eq!(RoleAssignmentFilter::None.expression(), None);
        assert_eq!(RoleAssignmentFilter::AtScope.expression().unwrap(), "atScope()");
        assert_eq!(
            RoleAssignmentFilter::PrincipalId(p).expression().unwrap(),
            format!("principalId eq '{p}'")
        );
        assert_eq!(
            RoleAssignmentFilter::AssignedTo(p).expression().unwrap(),
            format!("assignedTo('{p}')")
        );
        assert_eq!(
            RoleAssignmentFilter::AtScopeAndAssignedTo(p).expression().unwrap(),
            format!("atScope() and assignedTo('{p}')")
        );
    }

    #[test]
    fn trailing_guid_forms() {
        let g = "7f951dda-4ed3-4680-a7ca-43fe172d538d";
        for id in [
            format!("/subscriptions/x/providers/Microsoft.Authorization/roleDefinitions/{g}"),
            format!(
                "/providers/microsoft.authorization/ROLEDEFINITIONS/{}",
                g.to_uppercase()
            ),
            format!("{g}/"),
        ] {
            assert_eq!(trailing_guid(&id).unwrap().to_string(), g);
        }
        assert_eq!(trailing_guid("/x/roleDefinitions/roleDefinitionId"), None);
    }
}
