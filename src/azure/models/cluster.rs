//! AKS managed clusters: the kubelet identity and the service principal profile.
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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
    /// `properties.powerState.code`: `Running` or `Stopped`.
    pub power_state: Option<String>,
    /// `properties.apiServerAccessProfile.disableRunCommand`.
    pub run_command_disabled: bool,
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
    #[serde(default)]
    power_state: Option<serde_json::Value>,
    #[serde(default)]
    api_server_access_profile: Option<serde_json::Value>,
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
        let Some(p) = w.properties else {
            return ManagedCluster {
                id: w.id,
                name: w.name,
                location: w.location,
                provisioning_state: None,
                kubelet_identity: None,
                service_principal_client_id: None,
                node_resource_group: None,
                power_state: None,
                run_command_disabled: false,
            };
        };
        ManagedCluster {
            id: w.id,
            name: w.name,
            location: w.location,
            provisioning_state: p.provisioning_state,
            kubelet_identity: p.identity_profile.and_then(|m| {
                m.into_iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("kubeletidentity"))
                    .map(|(_, v)| v)
            }),
            service_principal_client_id: p.service_principal_profile.and_then(|s| s.client_id),
            node_resource_group: p.node_resource_group,
            power_state: p
                .power_state
                .and_then(|v| v.get("code").and_then(|c| c.as_str()).map(str::to_string)),
            run_command_disabled: p
                .api_server_access_profile
                .and_then(|v| v.get("disableRunCommand").and_then(|d| d.as_bool()))
                .unwrap_or(false),
        }
    }
}

/// A managed cluster as Azure Resource Graph lists it for the drift sweep: the identity that
/// pulls (`""` when the cluster has no kubelet identity, e.g. a service-principal cluster).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSummary {
    pub id: String,
    #[serde(default)]
    pub kubelet_object_id: String,
}

/// A managed cluster as Azure Resource Graph lists it for a batch's selection
/// ([`super::super::arm::CLUSTER_SELECTION_QUERY`]): where it is, its tags, and the identity that
/// pulls for it (`""` when it has none yet, or is a service-principal cluster).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSelectionRow {
    pub id: String,
    #[serde(default)]
    pub subscription_id: String,
    #[serde(default)]
    pub resource_group: String,
    /// Tag name → value (`null` when the cluster has no tags).
    #[serde(default)]
    pub tags: Option<std::collections::BTreeMap<String, serde_json::Value>>,
    #[serde(default)]
    pub provisioning_state: String,
    #[serde(default)]
    pub kubelet_object_id: String,
    #[serde(default)]
    pub kubelet_client_id: String,
    #[serde(default)]
    pub kubelet_resource_id: String,
}
