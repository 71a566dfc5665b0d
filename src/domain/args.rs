//! The arguments of the job kinds, as the API validates and the queue stores them.
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;
use std::fmt;
use uuid::Uuid;

use super::ids::{ClusterId, IdError, RegistryId, RegistryName, UserAssignedIdentityId};

/// A registry given by ARM id (any subscription) or by bare name (searched in the configured
/// subscriptions). Registry names are globally unique, so both forms name one registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryRef {
    Id(RegistryId),
    Name(RegistryName),
}

impl RegistryRef {
    pub fn name(&self) -> String {
        match self {
            RegistryRef::Id(id) => id.name().to_string(),
            RegistryRef::Name(n) => n.as_str().to_string(),
        }
    }
}

impl std::str::FromStr for RegistryRef {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        let s = s.trim();
        if s.starts_with('/') {
            s.parse().map(RegistryRef::Id)
        } else {
            s.parse().map(RegistryRef::Name)
        }
    }
}

impl fmt::Display for RegistryRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegistryRef::Id(id) => write!(f, "{id}"),
            RegistryRef::Name(n) => write!(f, "{n}"),
        }
    }
}

impl Serialize for RegistryRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RegistryRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// Arguments of `attach` and `detach`: one cluster, one registry, and optionally the Entra
/// group to grant through. Absent fields are not serialised, so the arguments (and dedup keys)
/// of direct jobs are what they always were.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PairArgs {
    pub cluster: ClusterId,
    pub registry: RegistryRef,
    /// Attach: grant the group and make the kubelet identity a member; detach: undo that.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<Uuid>,
    /// Detach through a group: also delete the group's own pull grant (its other members lose it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub remove_group_grant: bool,
}

impl PairArgs {
    /// Jobs of one pair run one at a time, in order, whichever way the registry was named.
    pub fn target_key(&self) -> String {
        format!(
            "{}|acr:{}",
            self.cluster.lower_key(),
            self.registry.name().to_ascii_lowercase()
        )
    }
}

/// Arguments of `check`: can this cluster pull from this registry, and if not, why. With
/// `probe`, a pod in the cluster tries to pull `image` (a repository and tag or digest in the
/// registry), through AKS run-command.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckArgs {
    pub cluster: ClusterId,
    pub registry: RegistryRef,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub probe: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

impl CheckArgs {
    /// A check runs after the pair's attach and detach jobs queued before it, so it sees them.
    pub fn target_key(&self) -> String {
        PairArgs {
            cluster: self.cluster.clone(),
            registry: self.registry.clone(),
            group: None,
            remove_group_grant: false,
        }
        .target_key()
    }
}

/// Arguments of `import`: copy an image into a registry (`az acr import`). Source credentials
/// are never here: when `credentials` is true they are sealed in the job's secret.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportArgs {
    /// The target registry.
    pub registry: RegistryRef,
    pub source: ImportSourceArgs,
    /// `repository:tag` in the target; empty: the source's repository and tag.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target_tags: Vec<String>,
    /// `NoForce` (default: fail if a target tag exists) or `Force`.
    pub mode: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub credentials: bool,
}

/// An import's source: a registry of the tenant by resource id, or any registry by login
/// server; and the image in it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportSourceArgs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry_id: Option<RegistryId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_server: Option<String>,
    /// `repository:tag` or `repository@sha256:digest`.
    pub image: String,
}

impl ImportArgs {
    /// Imports into one registry run one at a time, in order.
    pub fn target_key(&self) -> String {
        format!("import:{}", self.registry.name().to_ascii_lowercase())
    }
}

/// Arguments of `kubelet-identity`: a user-assigned identity to create or adopt, the groups to
/// add it to and the registries to grant it pull on, before any cluster uses it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KubeletIdentityArgs {
    pub identity: UserAssignedIdentityId,
    /// Region for a new identity (an existing one keeps its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<Uuid>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub registries: Vec<RegistryRef>,
    /// Replace the identity's tags with these (absent: an existing identity's tags are kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
}

impl KubeletIdentityArgs {
    /// Jobs of one identity run one at a time, in order.
    pub fn target_key(&self) -> String {
        format!("identity:{}", self.identity.lower_key())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLUSTER: &str = "/subscriptions/11111111-1111-4111-8111-111111111111/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/c1";

    #[test]
    fn direct_pair_arguments_serialise_as_before() {
        // Stored jobs and dedup keys of direct attaches must not change with the group fields.
        let direct: PairArgs =
            serde_json::from_value(serde_json::json!({ "cluster": CLUSTER, "registry": "acrdemo1" })).unwrap();
        assert_eq!(
            serde_json::to_value(&direct).unwrap(),
            serde_json::json!({ "cluster": CLUSTER, "registry": "acrdemo1" })
        );
        let group = Uuid::from_u128(1);
        let via = PairArgs {
            group: Some(group),
            remove_group_grant: true,
            ..direct.clone()
        };
        let v = serde_json::to_value(&via).unwrap();
        assert_eq!(v["group"], group.to_string());
        assert_eq!(v["removeGroupGrant"], true);
        assert_eq!(via.target_key(), direct.target_key(), "one pair, one ordered target");
    }
}
