//! Container registries: login server, permission mode, network settings.
use serde::{Deserialize, Serialize};
use std::fmt;

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
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
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
    /// `properties.networkRuleSet.ipRules`: the allowed addresses (CIDR or IP).
    pub ip_rules: Vec<String>,
    /// `properties.dataEndpointHostNames`.
    pub data_endpoint_host_names: Vec<String>,
    /// `properties.privateEndpointConnections[].properties.privateLinkServiceConnectionState.status`.
    pub private_endpoint_states: Vec<String>,
}

impl Registry {
    /// The id as a typed [`crate::azure::ids::RegistryId`] (the scope for role assignments).
    pub fn registry_id(&self) -> Result<crate::azure::ids::RegistryId, crate::azure::ids::IdError> {
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
    #[serde(default)]
    data_endpoint_host_names: Option<Vec<String>>,
    #[serde(default)]
    private_endpoint_connections: Option<Vec<serde_json::Value>>,
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
            ip_rules: p
                .network_rule_set
                .as_ref()
                .and_then(|n| n.get("ipRules"))
                .and_then(|r| r.as_array())
                .map(|rules| {
                    rules
                        .iter()
                        .filter_map(|r| r.get("value").and_then(|v| v.as_str()).map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            data_endpoint_host_names: p.data_endpoint_host_names.unwrap_or_default(),
            private_endpoint_states: p
                .private_endpoint_connections
                .unwrap_or_default()
                .iter()
                .filter_map(|c| {
                    c.pointer("/properties/privateLinkServiceConnectionState/status")
                        .and_then(|s| s.as_str())
                        .map(str::to_string)
                })
                .collect(),
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
    /// The id as a typed [`crate::azure::ids::RegistryId`].
    pub fn registry_id(&self) -> Result<crate::azure::ids::RegistryId, crate::azure::ids::IdError> {
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
