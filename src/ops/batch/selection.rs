//! A batch's selection: the clusters of some subscriptions (optionally only some resource groups,
//! optionally only those with some tags), found through Azure Resource Graph. Resource group and
//! tags are matched here, not in KQL, so nothing a caller sends ever becomes part of a query.
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

use crate::azure::ClusterSelectionRow;
use crate::domain::{ClusterId, SubscriptionId};
use crate::ops::resolve::Grantee;

/// What a selection asks for, as validated by the API (ids in canonical form).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Selection {
    /// Subscription GUIDs, lower-case: the only subscriptions Resource Graph is asked about.
    pub subscriptions: Vec<String>,
    /// Resource group names (in every listed subscription) or ids
    /// (`/subscriptions/{id}/resourceGroups/{name}`, in a listed subscription); empty: all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_groups: Vec<String>,
    /// Tags every selected cluster carries (name case-insensitive, value exact); empty: any.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

/// A cluster the selection chose, and the identity that pulls for it when Resource Graph
/// showed one worth trusting (a cluster that finished provisioning).
pub struct Chosen {
    pub cluster: ClusterId,
    pub grantee: Option<Grantee>,
}

impl Selection {
    pub fn subscription_ids(&self) -> Vec<SubscriptionId> {
        self.subscriptions.iter().filter_map(|s| s.parse().ok()).collect()
    }

    /// The ARM scopes the selection can reach: each subscription, or each of its resource
    /// groups when some are named. The caller's policy must reach into every one of them.
    pub fn scopes(&self) -> Vec<String> {
        let mut out = Vec::new();
        for sub in &self.subscriptions {
            if self.resource_groups.is_empty() {
                out.push(format!("/subscriptions/{sub}"));
                continue;
            }
            for rg in &self.resource_groups {
                match rg.strip_prefix('/') {
                    None => out.push(format!("/subscriptions/{sub}/resourceGroups/{rg}")),
                    Some(_) if in_subscription(rg, sub) => out.push(rg.clone()),
                    Some(_) => {}
                }
            }
        }
        out
    }

    fn covers(&self, row: &ClusterSelectionRow) -> bool {
        let in_group = self.resource_groups.is_empty()
            || self.resource_groups.iter().any(|rg| match rg.strip_prefix('/') {
                None => rg.eq_ignore_ascii_case(&row.resource_group),
                Some(_) => rg.eq_ignore_ascii_case(&format!(
                    "/subscriptions/{}/resourceGroups/{}",
                    row.subscription_id, row.resource_group
                )),
            });
        let tags = row.tags.clone().unwrap_or_default();
        let tagged = self.tags.iter().all(|(k, v)| {
            tags.iter()
                .any(|(name, value)| name.eq_ignore_ascii_case(k) && value.as_str() == Some(v.as_str()))
        });
        in_group && tagged
    }

    /// The clusters of `rows` this selection chooses, in id order, once each.
    pub fn choose(&self, rows: Vec<ClusterSelectionRow>, read_at: DateTime<Utc>) -> Vec<Chosen> {
        let mut chosen: BTreeMap<String, Chosen> = BTreeMap::new();
        for row in rows.into_iter().filter(|r| self.covers(r)) {
            // Resource Graph returned it, so an id that does not parse is skipped, not fatal.
            let Ok(cluster) = row.id.parse::<ClusterId>() else {
                tracing::warn!(id = %row.id, "Resource Graph listed a cluster id that does not parse; skipped");
                continue;
            };
            let grantee = kubelet_identity(&row, read_at);
            chosen.entry(cluster.lower_key()).or_insert(Chosen { cluster, grantee });
        }
        chosen.into_values().collect()
    }
}

fn in_subscription(rg_id: &str, sub: &str) -> bool {
    rg_id
        .to_ascii_lowercase()
        .starts_with(&format!("/subscriptions/{}/", sub.to_ascii_lowercase()))
}

/// The kubelet identity Resource Graph shows, trusted only for a cluster that finished
/// provisioning (one being created or updated may be about to change it).
fn kubelet_identity(row: &ClusterSelectionRow, read_at: DateTime<Utc>) -> Option<Grantee> {
    if !row.provisioning_state.eq_ignore_ascii_case("Succeeded") {
        return None;
    }
    let object_id = Uuid::parse_str(&row.kubelet_object_id).ok()?;
    let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_string());
    Some(Grantee {
        object_id,
        source: "kubeletIdentity".into(),
        client_id: non_empty(&row.kubelet_client_id),
        resource_id: non_empty(&row.kubelet_resource_id),
        resolved_at: Some(read_at),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUB: &str = "11111111-1111-4111-8111-111111111111";

    fn row(rg: &str, name: &str, tags: serde_json::Value, state: &str, oid: &str) -> ClusterSelectionRow {
        ClusterSelectionRow {
            id: format!(
                "/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.ContainerService/managedClusters/{name}"
            ),
            subscription_id: SUB.into(),
            resource_group: rg.to_ascii_lowercase(),
            tags: serde_json::from_value(tags).unwrap(),
            provisioning_state: state.into(),
            kubelet_object_id: oid.into(),
            kubelet_client_id: String::new(),
            kubelet_resource_id: String::new(),
        }
    }

    #[test]
    fn resource_groups_and_tags_narrow_the_selection() {
        let oid = "c0be1e70-0000-4000-8000-000000000001";
        let rows = vec![
            row("rg-a", "one", serde_json::json!({ "Env": "prod" }), "Succeeded", oid),
            row("rg-a", "two", serde_json::json!({ "env": "dev" }), "Succeeded", oid),
            row("rg-b", "three", serde_json::json!({ "env": "prod" }), "Creating", oid),
            row("rg-c", "four", serde_json::Value::Null, "Succeeded", oid),
        ];
        let sel = Selection {
            subscriptions: vec![SUB.into()],
            resource_groups: vec!["RG-A".into(), format!("/subscriptions/{SUB}/resourceGroups/rg-b")],
            tags: [("env".to_string(), "prod".to_string())].into(),
        };
        let chosen = sel.choose(rows.clone(), Utc::now());
        let names: Vec<_> = chosen.iter().map(|c| c.cluster.name().to_string()).collect();
        assert_eq!(names, ["one", "three"]);
        assert!(
            chosen[0].grantee.is_some(),
            "a provisioned cluster's identity is trusted"
        );
        assert!(
            chosen[1].grantee.is_none(),
            "a cluster being created is read by its job"
        );
        let all = Selection {
            subscriptions: vec![SUB.into()],
            resource_groups: vec![],
            tags: BTreeMap::new(),
        };
        assert_eq!(all.choose(rows, Utc::now()).len(), 4);
        assert_eq!(all.scopes(), [format!("/subscriptions/{SUB}")]);
        assert_eq!(
            sel.scopes(),
            [
                format!("/subscriptions/{SUB}/resourceGroups/RG-A"),
                format!("/subscriptions/{SUB}/resourceGroups/rg-b")
            ]
        );
    }
}
