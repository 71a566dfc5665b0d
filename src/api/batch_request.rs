//! The body of `POST /v1/batches` and its validation: everything is checked before anything is
//! written, with the shared parsers (a bad id in `clusters[7]` is refused as it would be in a
//! single attach, with that target).
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};
use utoipa::ToSchema;

use super::error::{ApiError, ApiResult, quote};
use super::extract::{ClusterIdSchema, EXAMPLE_CLUSTER, RegistryRefSchema, parse_cluster, parse_registry};
use crate::domain::{ClusterId, RegistryRef, ResourceId, SubscriptionId};
use crate::ops::batch::{BatchAction, BatchRequest, MAX_ITEMS, Selection};

/// Most subscriptions, resource groups and tags a selection may name.
const MAX_SUBSCRIPTIONS: usize = 100;
const MAX_RESOURCE_GROUPS: usize = 100;
const MAX_TAGS: usize = 20;

/// What every item of the batch does.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum BatchActionName {
    Attach,
    Detach,
}

impl From<BatchActionName> for BatchAction {
    fn from(a: BatchActionName) -> Self {
        match a {
            BatchActionName::Attach => BatchAction::Attach,
            BatchActionName::Detach => BatchAction::Detach,
        }
    }
}

/// Many attaches or detaches in one request: one registry and many clusters (listed in
/// `clusters`, or chosen by `select` through Azure Resource Graph), or one cluster and many
/// registries (`registries`). Duplicates are collapsed; at most 5,000 items.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(examples(
    json!({ "action": "attach", "registry": "acrdemo", "clusters": [EXAMPLE_CLUSTER] }),
    json!({ "action": "attach", "cluster": EXAMPLE_CLUSTER, "registries": ["acrdemo", "acrshared"] }),
    json!({ "action": "attach", "registry": "acrdemo", "select": {
        "subscriptions": ["11111111-1111-4111-8111-111111111111"], "resourceGroups": ["rg-aks-demo"], "tags": { "env": "demo" } } })
))]
pub struct BatchBody {
    pub action: BatchActionName,
    /// With `clusters` or `select`: the registry (ARM id, or bare name).
    #[schema(value_type = Option<RegistryRefSchema>)]
    pub registry: Option<String>,
    /// With `registry`: the clusters (ARM ids), 1 to 5,000.
    #[schema(value_type = Option<Vec<ClusterIdSchema>>, min_items = 1, max_items = 5000)]
    pub clusters: Option<Vec<String>>,
    /// With `registries`: the cluster (ARM id).
    #[schema(value_type = Option<ClusterIdSchema>)]
    pub cluster: Option<String>,
    /// With `cluster`: the registries (ARM ids or bare names), 1 to 5,000.
    #[schema(value_type = Option<Vec<RegistryRefSchema>>, min_items = 1, max_items = 5000)]
    pub registries: Option<Vec<String>>,
    /// With `registry`: choose the clusters through Azure Resource Graph when the batch runs.
    pub select: Option<SelectBody>,
}

/// Which clusters a selection chooses: those of `subscriptions`, in `resourceGroups` if given,
/// carrying every tag of `tags` if given. Resource Graph is eventually consistent: a cluster
/// created a minute ago may be missed. More than 5,000 matches fail the batch.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SelectBody {
    /// Subscription ids (GUIDs), 1 to 100.
    #[schema(min_items = 1, max_items = 100)]
    pub subscriptions: Vec<String>,
    /// Resource group names (looked for in every listed subscription) or ids (in a listed
    /// subscription), up to 100.
    #[schema(max_items = 100)]
    pub resource_groups: Option<Vec<String>>,
    /// Tag name → value: a cluster must carry all of them (names case-insensitive, values
    /// exact), up to 20.
    pub tags: Option<BTreeMap<String, String>>,
}

/// A validated batch: what to store and the items to authorise.
pub struct Plan {
    pub action: BatchAction,
    pub request: BatchRequest,
    /// Listed items, duplicates removed, in request order, each with where it was in the body.
    pub items: Vec<(String, ClusterId, RegistryRef)>,
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("InvalidBatch", message)
}

impl BatchBody {
    pub fn plan(self) -> ApiResult<Plan> {
        let action = BatchAction::from(self.action);
        let one_registry = self.registry.is_some();
        match (
            &self.registry,
            &self.clusters,
            &self.cluster,
            &self.registries,
            &self.select,
        ) {
            (Some(_), Some(_), None, None, None)
            | (None, None, Some(_), Some(_), None)
            | (Some(_), None, None, None, Some(_)) => {}
            _ => {
                return Err(invalid(
                    "a batch is one of: {action, registry, clusters} (one registry, listed clusters), {action, cluster, \
                     registries} (one cluster, listed registries) or {action, registry, select} (one registry, clusters \
                     chosen through Resource Graph)",
                ));
            }
        }
        let registry = self
            .registry
            .as_deref()
            .map(|r| parse_registry(r, "registry"))
            .transpose()?;
        let cluster = self
            .cluster
            .as_deref()
            .map(|c| parse_cluster(c, "cluster"))
            .transpose()?;
        let mut items = Vec::new();
        if let (Some(registry), Some(clusters)) = (&registry, &self.clusters) {
            check_count("clusters", clusters.len())?;
            let mut seen = HashSet::new();
            for (i, raw) in clusters.iter().enumerate() {
                let target = format!("clusters[{i}]");
                let c = parse_cluster(raw, &target)?;
                if seen.insert(c.lower_key()) {
                    items.push((target, c, registry.clone()));
                }
            }
        }
        if let (Some(cluster), Some(registries)) = (&cluster, &self.registries) {
            check_count("registries", registries.len())?;
            let mut seen = HashSet::new();
            for (i, raw) in registries.iter().enumerate() {
                let target = format!("registries[{i}]");
                let r = parse_registry(raw, &target)?;
                let key = match &r {
                    RegistryRef::Id(id) => id.lower_key(),
                    RegistryRef::Name(n) => n.as_str().to_ascii_lowercase(),
                };
                if seen.insert(key) {
                    items.push((target, cluster.clone(), r));
                }
            }
        }
        let select = self.select.map(SelectBody::validate).transpose()?;
        let request = BatchRequest {
            registry: if one_registry { registry } else { None },
            cluster,
            select,
            listed: items.len(),
        };
        Ok(Plan { action, request, items })
    }
}

fn check_count(field: &str, n: usize) -> ApiResult<()> {
    if n == 0 || n > MAX_ITEMS {
        return Err(invalid(format!("{field} lists {n} items; a batch takes 1 to {MAX_ITEMS}")).with_target(field));
    }
    Ok(())
}

impl SelectBody {
    fn validate(self) -> ApiResult<Selection> {
        let n = self.subscriptions.len();
        if n == 0 || n > MAX_SUBSCRIPTIONS {
            return Err(invalid(format!(
                "select.subscriptions lists {n} subscriptions; give 1 to {MAX_SUBSCRIPTIONS}"
            ))
            .with_target("select.subscriptions"));
        }
        let mut subscriptions: Vec<String> = Vec::new();
        for (i, raw) in self.subscriptions.iter().enumerate() {
            let sub: SubscriptionId = raw.parse().map_err(|_| {
                invalid(format!("{} is not a subscription id (a GUID)", quote(raw)))
                    .with_target(format!("select.subscriptions[{i}]"))
            })?;
            if sub.uuid().is_nil() {
                return Err(
                    invalid("the nil GUID names no subscription").with_target(format!("select.subscriptions[{i}]"))
                );
            }
            if !subscriptions.contains(&sub.to_string()) {
                subscriptions.push(sub.to_string());
            }
        }
        let groups = self.resource_groups.unwrap_or_default();
        if groups.len() > MAX_RESOURCE_GROUPS {
            return Err(
                invalid(format!("select.resourceGroups takes at most {MAX_RESOURCE_GROUPS}"))
                    .with_target("select.resourceGroups"),
            );
        }
        let mut resource_groups = Vec::new();
        for (i, raw) in groups.iter().enumerate() {
            let rg = resource_group(raw, &subscriptions).map_err(|why| {
                invalid(format!("{} {why}", quote(raw))).with_target(format!("select.resourceGroups[{i}]"))
            })?;
            if !resource_groups.iter().any(|g: &String| g.eq_ignore_ascii_case(&rg)) {
                resource_groups.push(rg);
            }
        }
        let tags = self.tags.unwrap_or_default();
        if tags.len() > MAX_TAGS {
            return Err(invalid(format!("select.tags takes at most {MAX_TAGS} tags")).with_target("select.tags"));
        }
        for (k, v) in &tags {
            // Azure's limits: names 1 to 512 characters, values up to 256.
            if k.is_empty() || k.chars().count() > 512 || v.chars().count() > 256 {
                return Err(invalid(format!(
                    "the tag {} is not a valid Azure tag (names 1 to 512 characters, values up to 256)",
                    quote(k)
                ))
                .with_target(format!("select.tags.{k}")));
            }
        }
        Ok(Selection {
            subscriptions,
            resource_groups,
            tags,
        })
    }
}

/// A resource group: a name (kept as given), or an id in one of `subscriptions` (canonical).
fn resource_group(raw: &str, subscriptions: &[String]) -> Result<String, String> {
    if raw.starts_with('/') {
        let id: ResourceId = raw.parse().map_err(|e| format!("is not a resource group id: {e}"))?;
        let (Some(sub), Some(_), None) = (id.subscription(), id.resource_group(), id.namespace()) else {
            return Err("is not a resource group id (/subscriptions/{id}/resourceGroups/{name})".into());
        };
        if !subscriptions.contains(&sub.to_string()) {
            return Err("is in a subscription that select.subscriptions does not list".into());
        }
        return Ok(id.to_string());
    }
    // A name is valid where it is valid in an id.
    let probe = format!("/subscriptions/{}/resourceGroups/{raw}", subscriptions[0]);
    match probe.parse::<ResourceId>() {
        Ok(id) if id.resource_group() == Some(raw) && id.namespace().is_none() => Ok(raw.to_string()),
        _ => Err("is not a resource group name (1 to 90 letters, digits, '-', '_', '.', '(' and ')')".into()),
    }
}
