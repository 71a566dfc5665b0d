//! The simulated tenant: everything the simulator knows, loaded from a JSON "world file".
//!
//! Field names are camelCase on the wire; `simulator/README.md` documents each one.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::registry::{ExternalRegistry, NetworkRuleSet, PrivateEndpointConnection, Repositories, fill_digests};

/// The whole simulated tenant, so tests and demos can describe Azure as data instead of code.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct World {
    /// Entra tenant that owns every subscription; tokens are only issued for this tenant.
    pub tenant_id: String,
    /// Audience ARM accepts (`<armAudience>/.default` is the token scope).
    #[serde(default = "default_arm_audience")]
    pub arm_audience: String,
    /// Audience Microsoft Graph accepts.
    #[serde(default = "default_graph_audience")]
    pub graph_audience: String,
    /// Service principals that may obtain tokens (the simulator's clients).
    #[serde(default)]
    pub callers: Vec<Caller>,
    /// Directory objects that role assignments can be granted to.
    #[serde(default)]
    pub directory: Vec<Principal>,
    /// Subscriptions with their resource groups and resources.
    #[serde(default)]
    pub subscriptions: Vec<Subscription>,
    /// Role assignments that exist when the simulator starts.
    #[serde(default)]
    pub role_assignments: Vec<RoleAssignmentRecord>,
    /// Custom roles in addition to the always-present built-ins.
    #[serde(default)]
    pub role_definitions: Vec<RoleDefinition>,
    /// API applications callers can get access tokens for, with their app roles and who holds them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub applications: Vec<Application>,
    /// Registries outside the tenant (Docker Hub, MCR...) images can be imported or pulled from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub external_registries: Vec<ExternalRegistry>,
    /// Fault and timing knobs; all default to "behave like a healthy, consistent Azure".
    #[serde(default)]
    pub behaviour: Behaviour,
}

/// A client of the simulator, so tests control exactly what the caller may do.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Caller {
    /// Application (client) id used in the token request.
    pub client_id: String,
    /// Secret the token request must present.
    pub client_secret: String,
    /// Object id of the caller's service principal (the `oid` claim; used in 403 messages).
    pub object_id: String,
    /// Human-readable name, shown by Graph.
    #[serde(default)]
    pub display_name: String,
    /// ARM permissions, inherited downwards from each scope.
    #[serde(default)]
    pub permissions: Vec<PermissionEntry>,
    /// Microsoft Graph application permissions, e.g. `Application.Read.All`.
    #[serde(default)]
    pub graph_permissions: Vec<String>,
}

/// One grant of ARM actions at a scope, evaluated like an ARM role's permission block.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PermissionEntry {
    /// ARM scope (`/`, `/subscriptions/X`, a resource group or a resource id).
    pub scope: String,
    /// Allowed actions (wildcards allowed, case-insensitive).
    #[serde(default)]
    pub actions: Vec<String>,
    /// Actions removed from `actions`.
    #[serde(default)]
    pub not_actions: Vec<String>,
}

/// Kind of directory object, which decides how role assignments and Graph treat it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum PrincipalKind {
    /// An application or managed identity.
    ServicePrincipal,
    /// A human user.
    User,
    /// A security group (may contain other groups).
    Group,
}

impl PrincipalKind {
    /// The ARM `principalType` spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::ServicePrincipal => "ServicePrincipal",
            PrincipalKind::User => "User",
            PrincipalKind::Group => "Group",
        }
    }
}

/// A directory object that can receive role assignments.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Principal {
    /// Object id (what role assignments reference).
    pub object_id: String,
    /// User, group or service principal.
    #[serde(rename = "type")]
    pub kind: PrincipalKind,
    /// Application id (service principals only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    /// Display name shown by Graph.
    #[serde(default)]
    pub display_name: String,
    /// `ManagedIdentity` or `Application` (service principals only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_principal_type: Option<String>,
    /// Seconds after simulator start (or creation) during which the principal is not yet replicated.
    #[serde(default)]
    pub replication_delay_seconds: f64,
    /// Member object ids (groups only; may contain groups).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<String>,
    /// Groups only: a role-assignable group (`isAssignableToRole`), the only kind Entra lets
    /// hold directory roles; adding members to it needs `RoleManagement.ReadWrite.Directory`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_assignable_to_role: bool,
    /// Entra directory roles (display names, e.g. `Global Administrator`) this principal holds;
    /// Graph lists them as `#microsoft.graph.directoryRole` in `transitiveMemberOf`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub directory_roles: Vec<String>,
}

/// A subscription, the unit ARM throttles and authorises against.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Subscription {
    /// Subscription GUID.
    pub subscription_id: String,
    /// Display name.
    #[serde(default)]
    pub display_name: String,
    /// Resource groups in the subscription.
    #[serde(default)]
    pub resource_groups: Vec<ResourceGroup>,
}

/// A resource group and the resources the simulator models inside it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceGroup {
    /// Name (canonical casing used in responses).
    pub name: String,
    /// Default location for resources that don't set one.
    #[serde(default = "default_location")]
    pub location: String,
    /// AKS clusters.
    #[serde(default)]
    pub managed_clusters: Vec<ManagedCluster>,
    /// Container registries.
    #[serde(default)]
    pub registries: Vec<Registry>,
    /// User-assigned managed identities.
    #[serde(default)]
    pub user_assigned_identities: Vec<UserAssignedIdentity>,
}

/// An AKS cluster, reduced to what decides who pulls images.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ManagedCluster {
    /// Cluster name.
    pub name: String,
    /// Location (defaults to the resource group's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Provisioning state once ready (default `Succeeded`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_state: Option<String>,
    /// Seconds after start during which the cluster reports `Creating` and has no identity profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_after_seconds: Option<f64>,
    /// Kubelet identity of a managed-identity cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubelet_identity: Option<KubeletIdentity>,
    /// App id of the service principal of an old SP-based cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_principal_client_id: Option<String>,
    /// Node resource group (default `MC_<rg>_<name>_<location>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_resource_group: Option<String>,
    /// Kubernetes version reported (default `1.33.2`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes_version: Option<String>,
    /// Tags (a `PUT` of the cluster replaces them).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// The cluster's egress IP, matched against registries' `ipRules` (default `20.50.0.1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbound_ip: Option<String>,
    /// The cluster's own firewall drops traffic to registries: pulls time out.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub egress_blocked: bool,
    /// `properties.apiServerAccessProfile.disableRunCommand`: run-command is refused.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disable_run_command: bool,
    /// Not in world files: while a `PUT` runs, the simulator time (seconds since start) when it
    /// ends; the cluster reads `Updating` until then.
    #[serde(skip)]
    pub updating_until: Option<f64>,
}

/// The identity the kubelet uses to pull images: the grantee of AcrPull.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KubeletIdentity {
    /// Object (principal) id: what role assignments reference.
    pub object_id: String,
    /// Client id used by kubelet/IMDS.
    pub client_id: String,
    /// ARM id of the user-assigned identity (default `<cluster>-agentpool` in the node resource group).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
}

/// A container registry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Registry {
    /// Registry name.
    pub name: String,
    /// Location (defaults to the resource group's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// SKU name: Basic, Standard (default) or Premium.
    #[serde(default = "default_sku")]
    pub sku: String,
    /// `LegacyRegistryPermissions` (default) or `AbacRepositoryPermissions`.
    #[serde(default = "default_role_assignment_mode")]
    pub role_assignment_mode: String,
    /// Login server (default `<lowercase name>.azurecr.io`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_server: Option<String>,
    /// `Enabled` (default) or `Disabled`.
    #[serde(default = "default_enabled")]
    pub public_network_access: String,
    /// The IP firewall (default: allow everything).
    #[serde(default)]
    pub network_rule_set: NetworkRuleSet,
    /// Unauthenticated pulls are allowed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub anonymous_pull_enabled: bool,
    /// Dedicated data endpoints (`<name>.<region>.data.azurecr.io`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub data_endpoint_enabled: bool,
    /// Private endpoint connections; an `Approved` one lets clusters in through private link.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub private_endpoint_connections: Vec<PrivateEndpointConnection>,
    /// Contents: repository → tag → digest (an empty digest is derived).
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "crate::registry::repositories"
    )]
    pub repositories: Repositories,
    /// Resource tags (`PATCH` replaces them).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

impl Registry {
    /// The login server: the world's, else `<lowercase name>.azurecr.io`.
    pub fn login(&self) -> String {
        self.login_server
            .clone()
            .unwrap_or_else(|| format!("{}.azurecr.io", self.name.to_ascii_lowercase()))
    }
}

impl ManagedCluster {
    /// The egress IP registries see (default `20.50.0.1`).
    pub fn egress_ip(&self) -> &str {
        self.outbound_ip.as_deref().unwrap_or("20.50.0.1")
    }
}

/// A user-assigned managed identity.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserAssignedIdentity {
    /// Identity name.
    pub name: String,
    /// Location (defaults to the resource group's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Object id of the backing service principal.
    pub principal_id: String,
    /// Client (application) id.
    pub client_id: String,
    /// Resource tags (replaced by each PUT, as ARM does).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

/// A role assignment as stored by the simulator (world file entry and test inspection type).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RoleAssignmentRecord {
    /// Assignment name (a GUID, unique tenant-wide).
    pub name: String,
    /// Scope it was created at.
    pub scope: String,
    /// Role definition GUID or full role definition id.
    pub role_definition_id: String,
    /// Object id of the grantee.
    pub principal_id: String,
    /// `principalType` as sent or resolved; `None` means "look it up in the directory".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal_type: Option<String>,
    /// Free-text description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// ABAC condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// ABAC condition version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition_version: Option<String>,
    /// Creation time (defaults to load time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_on: Option<DateTime<Utc>>,
    /// Last update time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_on: Option<DateTime<Utc>>,
    /// Object id of the creator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    /// Object id of the last updater.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_by: Option<String>,
}

impl RoleAssignmentRecord {
    /// A minimal record, so tests can seed "an assignment someone else made" in one line.
    pub fn new(name: &str, scope: &str, role_definition_id: &str, principal_id: &str) -> Self {
        RoleAssignmentRecord {
            name: name.to_string(),
            scope: scope.to_string(),
            role_definition_id: role_definition_id.to_string(),
            principal_id: principal_id.to_string(),
            principal_type: None,
            description: None,
            condition: None,
            condition_version: None,
            created_on: None,
            updated_on: None,
            created_by: None,
            updated_by: None,
        }
    }

    /// The role definition GUID, so callers can compare roles whatever id form was used.
    pub fn role_definition_guid(&self) -> String {
        self.role_definition_id
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase()
    }
}

/// A custom role definition.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RoleDefinition {
    /// Role GUID.
    pub id: String,
    /// Role name (what `roleName eq '...'` matches).
    pub role_name: String,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// `CustomRole` (default) or `BuiltInRole`.
    #[serde(default = "default_role_type")]
    pub role_type: String,
    /// Permission blocks.
    #[serde(default)]
    pub permissions: Vec<RolePermission>,
    /// Scopes the role can be assigned at (default `/`).
    #[serde(default = "default_assignable_scopes")]
    pub assignable_scopes: Vec<String>,
}

/// A role definition's permission block (same shape as ARM's).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RolePermission {
    /// Control-plane actions.
    #[serde(default)]
    pub actions: Vec<String>,
    /// Excluded control-plane actions.
    #[serde(default)]
    pub not_actions: Vec<String>,
    /// Data-plane actions.
    #[serde(default)]
    pub data_actions: Vec<String>,
    /// Excluded data-plane actions.
    #[serde(default)]
    pub not_data_actions: Vec<String>,
}

/// An API application registered in the tenant (an app registration with its service
/// principal), so callers can get access tokens for it carrying the app roles they hold.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Application {
    /// Application (client) id: the `aud` of v2.0 access tokens.
    pub app_id: String,
    /// Display name (Graph's `resourceDisplayName`).
    #[serde(default)]
    pub display_name: String,
    /// Object id of the application's service principal (Graph's `resourceId`).
    pub service_principal_object_id: String,
    /// Application ID URIs, e.g. `api://acr-attach`: `<uri>/.default` is a token scope.
    #[serde(default)]
    pub identifier_uris: Vec<String>,
    /// `2` (default): v2.0 access tokens; `1`: v1.0 tokens.
    #[serde(default = "default_access_token_version")]
    pub requested_access_token_version: u8,
    /// When true, callers holding none of its app roles get no token (AADSTS501051).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub app_role_assignment_required: bool,
    /// The roles the application defines.
    #[serde(default)]
    pub app_roles: Vec<AppRole>,
    /// Who holds which role.
    #[serde(default)]
    pub app_role_assignments: Vec<AppRoleAssignment>,
}

/// An app role an application defines.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppRole {
    /// Role id (a GUID).
    pub id: String,
    /// Value carried in the `roles` claim, e.g. `Attachments.ReadWrite`.
    pub value: String,
    /// Display name.
    #[serde(default)]
    pub display_name: String,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// `Application` (service principals), `User` (users and groups), or both (default).
    #[serde(default = "default_allowed_member_types")]
    pub allowed_member_types: Vec<String>,
}

/// An app role granted to a service principal, user or group.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppRoleAssignment {
    /// Object id of the holder (a caller's `objectId`, or a directory principal).
    pub principal_id: String,
    /// The role, by id...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_role_id: Option<String>,
    /// ...or by value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_role_value: Option<String>,
}

impl Application {
    /// Whether `resource` (a scope without `/.default`) names this application: its app id or
    /// one of its identifier URIs, case-insensitively, a trailing slash ignored. Returns the
    /// application's own spelling of it (the `aud` of a v1.0 token).
    pub fn resource_name(&self, resource: &str) -> Option<String> {
        let same = |a: &str| {
            a.trim_end_matches('/')
                .eq_ignore_ascii_case(resource.trim_end_matches('/'))
        };
        if same(&self.app_id) {
            return Some(self.app_id.clone());
        }
        self.identifier_uris.iter().find(|u| same(u)).cloned()
    }

    /// The role an assignment refers to (by id or by value).
    pub fn role_of(&self, assignment: &AppRoleAssignment) -> Option<&AppRole> {
        self.app_roles.iter().find(|r| {
            assignment
                .app_role_id
                .as_deref()
                .is_some_and(|id| id.eq_ignore_ascii_case(&r.id))
                || assignment.app_role_value.as_deref() == Some(r.value.as_str())
        })
    }

    /// Roles assigned directly to `principal_id` (not through groups), in definition order.
    pub fn roles_of(&self, principal_id: &str) -> Vec<&AppRole> {
        self.app_roles
            .iter()
            .filter(|r| {
                self.app_role_assignments.iter().any(|a| {
                    a.principal_id.eq_ignore_ascii_case(principal_id) && self.role_of(a).is_some_and(|x| x.id == r.id)
                })
            })
            .collect()
    }
}

/// How `PrincipalNotFound` is produced during a principal's replication window.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum PrincipalNotFoundMode {
    /// Real ARM: only when the PUT body has no `principalType`.
    #[default]
    WithoutPrincipalType,
    /// Even with `principalType`, to exercise retry paths.
    Always,
}

/// One ARM token bucket (per subscription, per calling principal, per operation kind).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Bucket {
    /// Capacity (also the starting level).
    pub bucket: f64,
    /// Tokens added per second.
    pub refill_per_second: f64,
}

/// ARM throttling buckets; defaults are ARM's documented per-principal limits.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Throttling {
    /// GET requests.
    #[serde(default = "default_reads")]
    pub reads: Bucket,
    /// PUT/PATCH/POST requests.
    #[serde(default = "default_writes")]
    pub writes: Bucket,
    /// DELETE requests.
    #[serde(default = "default_writes")]
    pub deletes: Bucket,
}

impl Default for Throttling {
    fn default() -> Self {
        Throttling {
            reads: default_reads(),
            writes: default_writes(),
            deletes: default_writes(),
        }
    }
}

/// Fault and timing knobs, so the service's retry and consistency logic can be exercised.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Behaviour {
    /// New role assignments are invisible to GET/list (and deleted ones linger in lists) this long.
    #[serde(default)]
    pub read_after_write_lag_ms: u64,
    /// When a replicating principal yields `PrincipalNotFound`.
    #[serde(default)]
    pub principal_not_found: PrincipalNotFoundMode,
    /// ARM token buckets.
    #[serde(default)]
    pub throttling: Throttling,
    /// Delay added to every response.
    #[serde(default)]
    pub latency_ms: u64,
    /// Fraction (0..1) of ARM requests answered 500 `InternalServerError`.
    #[serde(default)]
    pub server_error_rate: f64,
    /// Fraction (0..1) of requests whose connection is closed without a response.
    #[serde(default)]
    pub drop_connection_rate: f64,
    /// Seed of the fault RNG (same seed, same request sequence: same faults).
    #[serde(default)]
    pub fault_seed: u64,
    /// Maximum items per list page before a `nextLink`.
    #[serde(default = "default_page_size")]
    pub page_size: usize,
    /// Lifetime of issued tokens.
    #[serde(default = "default_token_lifetime")]
    pub token_lifetime_seconds: u64,
    /// Replication window of identities created through the ARM API.
    #[serde(default)]
    pub new_identity_replication_seconds: f64,
    /// Group membership changes become visible to Graph reads after this long.
    #[serde(default)]
    pub group_membership_graph_delay_ms: u64,
    /// Group membership changes become visible to ARM `assignedTo()` after this long.
    #[serde(default)]
    pub group_membership_arm_delay_ms: u64,
    /// How long a managed cluster `PUT` runs (it reads `Updating` meanwhile). Fractions allowed.
    #[serde(default = "default_cluster_update_seconds")]
    pub managed_cluster_update_seconds: f64,
    /// How long an AKS run-command runs before its result is ready. Fractions allowed.
    #[serde(default = "default_run_command_seconds")]
    pub run_command_seconds: f64,
    /// How long an ACR `importImage` runs. Fractions allowed.
    #[serde(default = "default_import_seconds")]
    pub import_seconds: f64,
    /// A role assignment younger than this does not yet let kubelet pull (Entra and ACR
    /// propagation). Fractions allowed.
    #[serde(default)]
    pub pull_permission_propagation_seconds: f64,
}

impl Default for Behaviour {
    fn default() -> Self {
        serde_json::from_str("{}").expect("all behaviour fields have defaults")
    }
}

fn default_arm_audience() -> String {
    "https://management.azure.com".into()
}
fn default_graph_audience() -> String {
    "https://graph.microsoft.com".into()
}
fn default_location() -> String {
    "westeurope".into()
}
fn default_sku() -> String {
    "Standard".into()
}
fn default_role_assignment_mode() -> String {
    "LegacyRegistryPermissions".into()
}
fn default_role_type() -> String {
    "CustomRole".into()
}
fn default_assignable_scopes() -> Vec<String> {
    vec!["/".into()]
}
fn default_access_token_version() -> u8 {
    2
}
fn default_allowed_member_types() -> Vec<String> {
    vec!["Application".into(), "User".into()]
}
fn default_reads() -> Bucket {
    Bucket {
        bucket: 250.0,
        refill_per_second: 25.0,
    }
}
fn default_writes() -> Bucket {
    Bucket {
        bucket: 200.0,
        refill_per_second: 10.0,
    }
}
fn default_cluster_update_seconds() -> f64 {
    1.0
}
fn default_run_command_seconds() -> f64 {
    2.0
}
fn default_import_seconds() -> f64 {
    1.0
}
fn default_enabled() -> String {
    "Enabled".into()
}
fn default_page_size() -> usize {
    100
}
fn default_token_lifetime() -> u64 {
    3600
}

impl World {
    /// Loads a world file, so the standalone runner and tests share one format.
    pub fn from_file(path: &Path) -> anyhow::Result<World> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading world file {}", path.display()))?;
        Self::from_json(&text).with_context(|| format!("in world file {}", path.display()))
    }

    /// Parses and validates a world from JSON text.
    pub fn from_json(s: &str) -> anyhow::Result<World> {
        let mut world: World = serde_json::from_str(s).context("invalid world JSON")?;
        world.validate()?;
        world.normalize();
        world.validate_applications()?;
        Ok(world)
    }

    /// Checks `applications` once the directory is complete: ids are GUIDs, names are
    /// unambiguous, and every assignment names a known principal and a role its kind may hold.
    fn validate_applications(&self) -> anyhow::Result<()> {
        let guid = |what: &str, v: &str| {
            uuid::Uuid::parse_str(v)
                .map(|_| ())
                .with_context(|| format!("{what} '{v}' is not a GUID"))
        };
        let mut resources: Vec<String> = vec![self.arm_audience.clone(), self.graph_audience.clone()];
        for app in &self.applications {
            let name = &app.app_id;
            guid("applications[].appId", &app.app_id)?;
            guid(
                "applications[].servicePrincipalObjectId",
                &app.service_principal_object_id,
            )?;
            anyhow::ensure!(
                matches!(app.requested_access_token_version, 1 | 2),
                "application {name}: requestedAccessTokenVersion must be 1 or 2"
            );
            for r in std::iter::once(&app.app_id).chain(&app.identifier_uris) {
                let key = r.trim_end_matches('/').to_ascii_lowercase();
                anyhow::ensure!(
                    !resources
                        .iter()
                        .any(|x| x.trim_end_matches('/').eq_ignore_ascii_case(&key)),
                    "application {name}: '{r}' is already the app id or identifier URI of another resource"
                );
                resources.push(key);
            }
            for (i, role) in app.app_roles.iter().enumerate() {
                guid("appRoles[].id", &role.id)?;
                anyhow::ensure!(
                    !role.value.is_empty(),
                    "application {name}: app role {} has no value",
                    role.id
                );
                anyhow::ensure!(
                    !app.app_roles[..i]
                        .iter()
                        .any(|r| r.id.eq_ignore_ascii_case(&role.id) || r.value == role.value),
                    "application {name}: app role id {} or value '{}' is not unique",
                    role.id,
                    role.value
                );
                for t in &role.allowed_member_types {
                    anyhow::ensure!(
                        t == "Application" || t == "User",
                        "application {name}: allowedMemberTypes must be \"Application\" or \"User\", not \"{t}\""
                    );
                }
            }
            for a in &app.app_role_assignments {
                anyhow::ensure!(
                    a.app_role_id.is_some() != a.app_role_value.is_some(),
                    "application {name}: an appRoleAssignment for {} needs exactly one of appRoleId and appRoleValue",
                    a.principal_id
                );
                let role = app.role_of(a).with_context(|| {
                    format!(
                        "application {name}: appRoleAssignment for {} names no app role of the application ({})",
                        a.principal_id,
                        a.app_role_id.clone().or(a.app_role_value.clone()).unwrap_or_default()
                    )
                })?;
                let p = self.principal(&a.principal_id).with_context(|| {
                    format!(
                        "application {name}: appRoleAssignment principal {} is not a caller or in the directory",
                        a.principal_id
                    )
                })?;
                let member_type = match p.kind {
                    PrincipalKind::ServicePrincipal => "Application",
                    PrincipalKind::User | PrincipalKind::Group => "User",
                };
                anyhow::ensure!(
                    role.allowed_member_types.iter().any(|t| t == member_type),
                    "application {name}: app role '{}' cannot be assigned to {} (a {}): its allowedMemberTypes lack \"{member_type}\"",
                    role.value,
                    p.object_id,
                    p.kind.as_str()
                );
            }
        }
        Ok(())
    }

    fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(!self.tenant_id.is_empty(), "tenantId must not be empty");
        anyhow::ensure!(self.behaviour.page_size > 0, "behaviour.pageSize must be > 0");
        for rate in [self.behaviour.server_error_rate, self.behaviour.drop_connection_rate] {
            anyhow::ensure!((0.0..=1.0).contains(&rate), "fault rates must be within 0..1");
        }
        for c in &self.subscriptions {
            for rg in &c.resource_groups {
                for mc in &rg.managed_clusters {
                    anyhow::ensure!(
                        mc.kubelet_identity.is_some() || mc.service_principal_client_id.is_some(),
                        "cluster {} needs kubeletIdentity or servicePrincipalClientId",
                        mc.name
                    );
                    anyhow::ensure!(
                        mc.egress_ip().parse::<std::net::Ipv4Addr>().is_ok(),
                        "cluster {}: outboundIp '{}' is not an IPv4 address",
                        mc.name,
                        mc.egress_ip()
                    );
                }
                for r in &rg.registries {
                    crate::registry::validate(r)?;
                }
            }
        }
        for x in &self.external_registries {
            anyhow::ensure!(
                !x.login_server.is_empty(),
                "externalRegistries[].loginServer must not be empty"
            );
            anyhow::ensure!(
                x.username.is_some() == x.password.is_some(),
                "external registry {}: username and password go together",
                x.login_server
            );
        }
        Ok(())
    }

    /// Adds implicit directory entries (callers, kubelet identities, user-assigned identities)
    /// so a world file need not repeat every identity it already mentions.
    pub(crate) fn normalize(&mut self) {
        let mut extra: Vec<Principal> = Vec::new();
        let known = |dir: &[Principal], extra: &[Principal], oid: &str| {
            dir.iter()
                .chain(extra.iter())
                .any(|p| p.object_id.eq_ignore_ascii_case(oid))
        };
        for c in &self.callers {
            if !known(&self.directory, &extra, &c.object_id) {
                extra.push(sp(&c.object_id, &c.client_id, &c.display_name, "Application"));
            }
        }
        for sub in &self.subscriptions {
            for rg in &sub.resource_groups {
                for mc in &rg.managed_clusters {
                    if let Some(k) = &mc.kubelet_identity
                        && !known(&self.directory, &extra, &k.object_id)
                    {
                        let name = format!("{}-agentpool", mc.name);
                        extra.push(sp(&k.object_id, &k.client_id, &name, "ManagedIdentity"));
                    }
                }
                for id in &rg.user_assigned_identities {
                    if !known(&self.directory, &extra, &id.principal_id) {
                        extra.push(sp(&id.principal_id, &id.client_id, &id.name, "ManagedIdentity"));
                    }
                }
            }
        }
        for app in &self.applications {
            if !known(&self.directory, &extra, &app.service_principal_object_id) {
                extra.push(sp(
                    &app.service_principal_object_id,
                    &app.app_id,
                    &app.display_name,
                    "Application",
                ));
            }
        }
        self.directory.extend(extra);
        for sub in &mut self.subscriptions {
            for rg in &mut sub.resource_groups {
                for r in &mut rg.registries {
                    let login = r.login();
                    fill_digests(&login, &mut r.repositories);
                }
            }
        }
        for x in &mut self.external_registries {
            fill_digests(&x.login_server, &mut x.repositories);
        }
    }

    /// Finds a directory object by object id (case-insensitive).
    pub fn principal(&self, object_id: &str) -> Option<&Principal> {
        self.directory
            .iter()
            .find(|p| p.object_id.eq_ignore_ascii_case(object_id))
    }

    /// Finds a subscription by id (case-insensitive).
    pub fn subscription(&self, id: &str) -> Option<&Subscription> {
        self.subscriptions
            .iter()
            .find(|s| s.subscription_id.eq_ignore_ascii_case(id))
    }

    /// Finds a resource group (case-insensitive).
    pub fn resource_group(&self, sub: &str, rg: &str) -> Option<&ResourceGroup> {
        self.subscription(sub)?
            .resource_groups
            .iter()
            .find(|g| g.name.eq_ignore_ascii_case(rg))
    }

    /// Mutable access to a resource group (case-insensitive).
    pub fn resource_group_mut(&mut self, sub: &str, rg: &str) -> Option<&mut ResourceGroup> {
        self.subscriptions
            .iter_mut()
            .find(|s| s.subscription_id.eq_ignore_ascii_case(sub))?
            .resource_groups
            .iter_mut()
            .find(|g| g.name.eq_ignore_ascii_case(rg))
    }
}

fn sp(oid: &str, app_id: &str, name: &str, sp_type: &str) -> Principal {
    Principal {
        object_id: oid.to_string(),
        kind: PrincipalKind::ServicePrincipal,
        app_id: Some(app_id.to_string()),
        display_name: name.to_string(),
        service_principal_type: Some(sp_type.to_string()),
        replication_delay_seconds: 0.0,
        members: Vec::new(),
        is_assignable_to_role: false,
        directory_roles: Vec::new(),
    }
}
