use reqwest::Method;
use serde_json::json;

use crate::common::*;

fn cluster(name: &str) -> String {
    format!(
        "/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.ContainerService/managedClusters/{name}?api-version=2026-07-01"
    )
}

#[tokio::test]
async fn msi_cluster_has_kubelet_identity_and_canonical_casing() {
    let env = env().await;
    // Paths are case-insensitive; responses use the world's casing.
    let path = format!(
        "/SUBSCRIPTIONS/{SUB}/resourcegroups/RG-AKS/providers/microsoft.containerservice/MANAGEDCLUSTERS/AKS-MSI?api-version=2026-08-01"
    );
    let r = env.arm(Method::GET, &path, None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let b = &r.body;
    assert_eq!(
        b["id"],
        format!(
            "/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.ContainerService/managedClusters/aks-msi"
        )
    );
    assert_eq!(b["name"], "aks-msi");
    assert_eq!(b["type"], "Microsoft.ContainerService/managedClusters");
    assert_eq!(b["location"], "westeurope");
    assert!(b["eTag"].is_string());
    assert_eq!(b["identity"]["type"], "SystemAssigned");
    let p = &b["properties"];
    assert_eq!(p["provisioningState"], "Succeeded");
    assert_eq!(p["servicePrincipalProfile"]["clientId"], "msi");
    assert_eq!(p["nodeResourceGroup"], "MC_rg-aks_aks-msi_westeurope");
    let k = &p["identityProfile"]["kubeletidentity"];
    assert_eq!(k["objectId"], KUBELET);
    assert_eq!(k["clientId"], "c0000000-0000-4000-8000-0000000000cc");
    assert!(
        k["resourceId"]
            .as_str()
            .unwrap()
            .ends_with("/providers/Microsoft.ManagedIdentity/userAssignedIdentities/aks-msi-agentpool")
    );
    assert_eq!(env.sim.call_count("ManagedClusters_Get"), 1);
}

#[tokio::test]
async fn sp_cluster_has_no_identity_profile() {
    let env = env().await;
    let r = env.arm(Method::GET, &cluster("aks-sp"), None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["properties"]["servicePrincipalProfile"]["clientId"], SP_APP);
    assert!(r.body["properties"].get("identityProfile").is_none());
    assert!(r.body.get("identity").is_none());
}

#[tokio::test]
async fn cluster_is_creating_then_ready() {
    let env = env().await;
    let r = env.arm(Method::GET, &cluster("aks-new"), None).await;
    assert_eq!(r.body["properties"]["provisioningState"], "Creating");
    assert!(r.body["properties"].get("identityProfile").is_none());
    tokio::time::sleep(std::time::Duration::from_millis(450)).await;
    let r = env.arm(Method::GET, &cluster("aks-new"), None).await;
    assert_eq!(r.body["properties"]["provisioningState"], "Succeeded");
    assert_eq!(
        r.body["properties"]["identityProfile"]["kubeletidentity"]["objectId"],
        KUBELET_NEW
    );
}

#[tokio::test]
async fn missing_cluster_group_and_subscription_are_distinct_404s() {
    let env = env().await;
    let r = env.arm(Method::GET, &cluster("nope"), None).await;
    assert_eq!((r.status, r.code()), (404, "ResourceNotFound"));
    assert_eq!(
        r.message(),
        format!(
            "The Resource 'Microsoft.ContainerService/managedClusters/nope' under resource group '{RG}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"
        )
    );
    let r = env
        .arm(Method::GET, &format!("/subscriptions/{SUB}/resourceGroups/rg-x/providers/Microsoft.ContainerService/managedClusters/a?api-version=2026-07-01"), None)
        .await;
    assert_eq!(
        (r.status, r.code(), r.message()),
        (
            404,
            "ResourceGroupNotFound",
            "Resource group 'rg-x' could not be found."
        )
    );
    let r = env
        .arm(Method::GET, "/subscriptions/99999999-9999-4999-8999-999999999999/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/a?api-version=2026-07-01", None)
        .await;
    assert_eq!((r.status, r.code()), (404, "SubscriptionNotFound"));
}

#[tokio::test]
async fn registry_get_matches_the_example_shape() {
    let env = env().await;
    let r = env
        .arm(
            Method::GET,
            &format!("{}?api-version=2025-11-01", registry_id("acrone")),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["id"], registry_id("acrOne"));
    assert_eq!(r.body["name"], "acrOne");
    assert_eq!(r.body["type"], "Microsoft.ContainerRegistry/registries");
    assert_eq!(r.body["sku"], json!({ "name": "Standard", "tier": "Standard" }));
    let p = &r.body["properties"];
    assert_eq!(p["loginServer"], "acrone.azurecr.io");
    assert_eq!(p["roleAssignmentMode"], "LegacyRegistryPermissions");
    assert_eq!(p["provisioningState"], "Succeeded");
    assert_eq!(p["publicNetworkAccess"], "Enabled");
    let r = env
        .arm(
            Method::GET,
            &format!("{}?api-version=2025-11-01", registry_id("acrabac")),
            None,
        )
        .await;
    assert_eq!(r.body["properties"]["roleAssignmentMode"], "AbacRepositoryPermissions");
    // The older api-version predates roleAssignmentMode.
    let r = env
        .arm(
            Method::GET,
            &format!("{}?api-version=2023-07-01", registry_id("acrabac")),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(r.body["properties"].get("roleAssignmentMode").is_none());
}

#[tokio::test]
async fn registry_lists_page_with_absolute_next_links() {
    let env = env_with(|w| w["behaviour"]["pageSize"] = 2.into()).await;
    let t = env.arm_token().await;
    let mut next = Some(format!(
        "/subscriptions/{SUB}/resourceGroups/rg-many/providers/Microsoft.ContainerRegistry/registries?api-version=2025-11-01"
    ));
    let mut pages = 0;
    let mut seen = Vec::new();
    while let Some(u) = next {
        let r = env.send(Method::GET, &u, Some(&t), None).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        pages += 1;
        seen.extend(
            r.body["value"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["name"].as_str().unwrap().to_string()),
        );
        next = r.body["nextLink"].as_str().map(str::to_string);
        if let Some(n) = &next {
            assert!(n.starts_with(&env.sim.base_url()), "{n}");
            assert!(n.contains("api-version=2025-11-01"), "{n}");
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ["acrmany1", "acrmany2", "acrmany3", "acrmany4", "acrmany5"]);
    assert_eq!(env.sim.call_count("Registries_ListByResourceGroup"), 3);

    let r = env.arm(Method::GET, &format!("/subscriptions/{SUB}/providers/Microsoft.ContainerRegistry/registries?api-version=2025-11-01&$skipToken=6"), None).await;
    assert_eq!(r.body["value"].as_array().unwrap().len(), 1);
    assert!(r.body.get("nextLink").is_none());
}

#[tokio::test]
async fn generic_resource_list_filters_by_type() {
    let env = env().await;
    let path = format!(
        "/subscriptions/{SUB}/resources?$filter=resourceType%20eq%20%27Microsoft.ContainerRegistry%2Fregistries%27&api-version=2021-04-01"
    );
    let r = env.arm(Method::GET, &path, None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let v = r.body["value"].as_array().unwrap();
    assert_eq!(v.len(), 7);
    assert!(v.iter().all(|x| x["type"] == "Microsoft.ContainerRegistry/registries"));
    assert!(
        v.iter()
            .any(|x| x["name"] == "acrOne" && x["location"] == "westeurope" && x["id"] == registry_id("acrOne"))
    );
    let r = env
        .arm(
            Method::GET,
            &format!("/subscriptions/{SUB}/resources?api-version=2021-04-01"),
            None,
        )
        .await;
    assert_eq!(r.body["value"].as_array().unwrap().len(), 10);
    let r = env
        .arm(
            Method::GET,
            &format!("/subscriptions/{SUB}/resources?$filter=location%20eq%20%27x%27&api-version=2021-04-01"),
            None,
        )
        .await;
    assert_eq!(r.status, 400);
}

const SERVICE_QUERY: &str = "resources | where type =~ 'microsoft.containerregistry/registries' and name =~ 'ACRSHARED' | project id, name, type, subscriptionId, resourceGroup, location, loginServer = tostring(properties.loginServer), roleAssignmentMode = tostring(properties.roleAssignmentMode)";

#[tokio::test]
async fn resource_graph_runs_the_service_query() {
    let env = env().await;
    let url = "/providers/Microsoft.ResourceGraph/resources?api-version=2024-04-01";
    let r = env
        .arm(Method::POST, url, Some(json!({ "query": SERVICE_QUERY })))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["totalRecords"], 1);
    assert_eq!(r.body["count"], 1);
    assert_eq!(r.body["resultTruncated"], "false");
    assert_eq!(r.body["facets"], json!([]));
    let row = &r.body["data"][0];
    assert_eq!(
        *row,
        json!({
            "id": format!("/subscriptions/{SUB2}/resourceGroups/rg-shared/providers/Microsoft.ContainerRegistry/registries/acrshared"),
            "name": "acrshared",
            "type": "microsoft.containerregistry/registries",
            "subscriptionId": SUB2,
            "resourceGroup": "rg-shared",
            "location": "northeurope",
            "loginServer": "acrshared.azurecr.io",
            "roleAssignmentMode": "LegacyRegistryPermissions",
        })
    );
    // Restricted to other subscriptions: nothing.
    let r = env
        .arm(
            Method::POST,
            url,
            Some(json!({ "query": SERVICE_QUERY, "subscriptions": [SUB] })),
        )
        .await;
    assert_eq!(r.body["totalRecords"], 0);
    // A caller that cannot read the other subscription does not see it.
    let t = env
        .token_for(READER_CLIENT, "https://management.azure.com/.default")
        .await;
    let r = env
        .send(Method::POST, url, Some(&t), Some(json!({ "query": SERVICE_QUERY })))
        .await;
    assert_eq!(r.body["totalRecords"], 0);
    // == is case-sensitive; types are stored lower-cased.
    let q = "Resources | where type == 'Microsoft.ContainerRegistry/registries' | limit 3";
    let r = env.arm(Method::POST, url, Some(json!({ "query": q }))).await;
    assert_eq!(r.body["totalRecords"], 0);
    let q = "resources | where properties.loginServer =~ 'acrone.azurecr.io' | project id";
    let r = env.arm(Method::POST, url, Some(json!({ "query": q }))).await;
    assert_eq!(r.body["data"], json!([{ "id": registry_id("acrOne") }]));
    assert_eq!(env.sim.call_count("ResourceGraph_Resources"), 5);
}

#[tokio::test]
async fn resource_graph_pages_and_rejects_unsupported_kql() {
    let env = env().await;
    let url = "/providers/Microsoft.ResourceGraph/resources?api-version=2024-04-01";
    let q = "resources | where type =~ 'microsoft.containerregistry/registries' | project id, name";
    let r = env
        .arm(Method::POST, url, Some(json!({ "query": q, "options": { "$top": 5 } })))
        .await;
    assert_eq!(
        (r.body["totalRecords"].as_u64(), r.body["count"].as_u64()),
        (Some(8), Some(5))
    );
    let token = r.body["$skipToken"].as_str().unwrap().to_string();
    let r = env
        .arm(
            Method::POST,
            url,
            Some(json!({ "query": q, "options": { "$top": 5, "$skipToken": token } })),
        )
        .await;
    assert_eq!(r.body["count"], 3);
    assert!(r.body.get("$skipToken").is_none());
    let r = env
        .arm(
            Method::POST,
            url,
            Some(json!({ "query": "resources | summarize count() by type" })),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "BadRequest"));
    assert_eq!(r.body["error"]["details"][0]["code"], "InvalidQuery");
}

#[tokio::test]
async fn user_assigned_identity_put_get_and_replication() {
    let env = env_with(|w| w["behaviour"]["newIdentityReplicationSeconds"] = 0.4.into()).await;
    let path = format!(
        "/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/uami-1?api-version=2023-01-31"
    );
    let r = env
        .arm(Method::PUT, &path, Some(json!({ "location": "westeurope" })))
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let pid = r.body["properties"]["principalId"].as_str().unwrap().to_string();
    assert_eq!(r.body["properties"]["tenantId"], TENANT);
    assert_eq!(r.body["type"], "Microsoft.ManagedIdentity/userAssignedIdentities");
    let again = env
        .arm(Method::PUT, &path, Some(json!({ "location": "westeurope" })))
        .await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body["properties"]["principalId"], pid.as_str());
    let got = env.arm(Method::GET, &path, None).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body["properties"]["clientId"], r.body["properties"]["clientId"]);
    // The new identity's principal is still replicating.
    let scope = registry_id("acrOne");
    let r = env
        .put_assignment(&scope, "0a0a0a0a-0000-4000-8000-000000000001", ACR_PULL, &pid, None)
        .await;
    assert_eq!((r.status, r.code()), (400, "PrincipalNotFound"));
    let r = env
        .put_assignment(
            &scope,
            "0a0a0a0a-0000-4000-8000-000000000001",
            ACR_PULL,
            &pid,
            Some("ServicePrincipal"),
        )
        .await;
    assert_eq!(r.status, 201);
    let missing = env
        .arm(
            Method::PUT,
            &path.replace(RG, "rg-nope"),
            Some(json!({ "location": "westeurope" })),
        )
        .await;
    assert_eq!(missing.code(), "ResourceGroupNotFound");
}

#[tokio::test]
async fn a_user_assigned_identity_put_replaces_tags_and_cannot_move() {
    let env = env().await;
    let path = format!(
        "/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/uami-tags?api-version=2023-01-31"
    );
    let r = env
        .arm(
            Method::PUT,
            &path,
            Some(json!({ "location": "westeurope", "tags": { "team": "platform", "env": "prod" } })),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["tags"], json!({ "team": "platform", "env": "prod" }));
    let pid = r.body["properties"]["principalId"].clone();
    // PUT is create-or-update: the tags are replaced, the principal stays.
    let r = env
        .arm(
            Method::PUT,
            &path,
            Some(json!({ "location": "West Europe", "tags": { "team": "apps" } })),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["tags"], json!({ "team": "apps" }));
    assert_eq!(r.body["properties"]["principalId"], pid);
    assert_eq!(
        env.arm(Method::GET, &path, None).await.body["tags"],
        json!({ "team": "apps" })
    );
    let r = env.arm(Method::PUT, &path, Some(json!({ "location": "eastus" }))).await;
    assert_eq!((r.status, r.code()), (400, "InvalidResourceLocation"));
    let r = env
        .arm(
            Method::PUT,
            &path,
            Some(json!({ "location": "westeurope", "tags": { "n": 1 } })),
        )
        .await;
    assert_eq!(r.status, 400, "tag values are strings");
}

#[tokio::test]
async fn demo_world_loads_and_serves() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../demo/world.json");
    let world = azure_simulator::World::from_file(&path).expect("demo world parses");
    assert_eq!(world.subscriptions.len(), 2);
    let sim = azure_simulator::start(world, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    assert!(sim.base_url().starts_with("https://127.0.0.1:"));
    assert!(sim.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    sim.shutdown().await;
}
