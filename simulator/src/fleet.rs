//! A fleet added to a world: many clusters over many subscriptions, for tests and benchmarks
//! that need ARM's per-subscription quotas to matter. Each cluster has its own kubelet identity
//! (known to the directory), and the world's first caller (acr-attach in the demo world) gets the
//! same permissions on the new subscriptions as on its first scope.
use serde_json::{Value, json};

use crate::world::World;

/// The `i`-th fleet subscription's id.
pub fn fleet_subscription(s: usize) -> String {
    format!("f1ee5000-0000-4000-a000-{s:012}")
}

/// The kubelet identity (object id) of fleet cluster `i`.
pub fn fleet_kubelet(i: usize) -> String {
    format!("f1ee0000-0000-4000-8000-{i:012}")
}

/// The ARM id of fleet cluster `i` (in subscription `i % subscriptions`).
pub fn fleet_cluster(i: usize, subscriptions: usize) -> String {
    format!(
        "/subscriptions/{}/resourceGroups/rg-fleet/providers/Microsoft.ContainerService/managedClusters/fleet-{i}",
        fleet_subscription(i % subscriptions)
    )
}

/// `world` plus `clusters` clusters `fleet-{i}` spread round-robin over `subscriptions` new
/// subscriptions (resource group `rg-fleet`).
pub fn with_fleet(world: &World, subscriptions: usize, clusters: usize) -> World {
    let mut w = serde_json::to_value(world).expect("a world serialises");
    let mut per_sub: Vec<Vec<Value>> = vec![Vec::new(); subscriptions.max(1)];
    for i in 0..clusters {
        let oid = fleet_kubelet(i);
        let client = format!("f1ee0000-0000-4000-9000-{i:012}");
        w["directory"].as_array_mut().expect("directory").push(json!({
            "objectId": oid, "type": "ServicePrincipal", "appId": client,
            "displayName": format!("fleet-{i}-agentpool"), "servicePrincipalType": "ManagedIdentity"
        }));
        per_sub[i % subscriptions.max(1)].push(json!({
            "name": format!("fleet-{i}"),
            "kubeletIdentity": { "objectId": oid, "clientId": client }
        }));
    }
    let actions = w["callers"][0]["permissions"][0]["actions"].clone();
    for (s, clusters) in per_sub.into_iter().enumerate().take(subscriptions) {
        let id = fleet_subscription(s);
        w["subscriptions"].as_array_mut().expect("subscriptions").push(json!({
            "subscriptionId": id, "displayName": format!("fleet-{s}"),
            "resourceGroups": [{ "name": "rg-fleet", "location": "westeurope", "managedClusters": clusters }]
        }));
        if let Some(perms) = w["callers"][0]["permissions"].as_array_mut() {
            perms.push(json!({ "scope": format!("/subscriptions/{id}"), "actions": actions }));
        }
    }
    serde_json::from_value(w).expect("the fleet world is a world")
}
