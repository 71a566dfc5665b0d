//! Contract tests: the simulator answers in the shapes of the official Azure REST API examples
//! (tests/fixtures/azure-examples, copied unmodified from azure-rest-api-specs). The client's
//! parsing of every example is tested next to the client (src/azure). Together they keep the
//! simulator and the client honest to the real wire contracts, not just to each other.
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::azure_app::*;

/// Every key of the example is in the actual response with the same JSON type, recursively
/// (arrays: their first elements), except the paths listed as not modelled.
fn same_shape(example: &Value, actual: &Value, path: &str, not_modelled: &[&str], problems: &mut Vec<String>) {
    if not_modelled.contains(&path) {
        return;
    }
    match (example, actual) {
        (Value::Null, _) => {}
        // Tags are the user's own keys: only their being a map is the contract.
        (Value::Object(_), Value::Object(_)) if path.ends_with(".tags") => {}
        (Value::Object(e), Value::Object(a)) => {
            for (k, ev) in e {
                let p = format!("{path}.{k}");
                match a.get(k) {
                    Some(av) => same_shape(ev, av, &p, not_modelled, problems),
                    None if not_modelled.contains(&p.as_str()) => {}
                    None => problems.push(format!("missing {p}")),
                }
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            if let (Some(e0), Some(a0)) = (e.first(), a.first()) {
                same_shape(e0, a0, &format!("{path}[]"), not_modelled, problems);
            }
        }
        (Value::String(_), Value::String(_))
        | (Value::Number(_), Value::Number(_))
        | (Value::Bool(_), Value::Bool(_)) => {}
        (e, a) => problems.push(format!("{path}: example {e} vs simulator {a}")),
    }
}

fn assert_shape(name: &str, example: &Value, actual: &Value, not_modelled: &[&str]) {
    let mut problems = Vec::new();
    same_shape(example, actual, "", not_modelled, &mut problems);
    assert!(
        problems.is_empty(),
        "{name}: the simulator's response differs from the official example: {problems:#?}\n{actual:#}"
    );
}

struct Arm {
    base: String,
    token: String,
    client: reqwest::Client,
}

impl Arm {
    async fn new(a: &AzureApp) -> Arm {
        let client = reqwest::Client::builder()
            .tls_certs_merge(reqwest::Certificate::from_pem_bundle(a.sim.ca_pem().as_bytes()).unwrap())
            .build()
            .unwrap();
        let world = a.sim.world();
        let caller = &world.callers[0];
        let token = crate::helpers::client_credentials(
            &client,
            &a.sim.base_url(),
            &world.tenant_id,
            caller,
            "https://management.azure.com/.default",
        )
        .await;
        assert_eq!(
            token["token_type"], "Bearer",
            "the token endpoint speaks OAuth2 client credentials"
        );
        Arm {
            base: a.sim.base_url(),
            token: token["access_token"].as_str().unwrap().into(),
            client,
        }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut r = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let res = r.send().await.unwrap();
        let status = res.status();
        (status, res.json().await.unwrap_or(Value::Null))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulator_responses_have_the_shapes_of_the_official_examples() {
    let mut world = demo_world();
    world.callers[0]
        .permissions
        .push(serde_json::from_value(json!({ "scope": "/", "actions": ["*"] })).unwrap());
    let a = AzureApp::spawn(world).await;
    let arm = Arm::new(&a).await;
    let reg = registry("acrdemo");

    let (s, v) = arm
        .call(Method::GET, &format!("{reg}?api-version=2025-11-01"), None)
        .await;
    assert_eq!(s, 200);
    assert_shape(
        "RegistryGet",
        &crate::helpers::azure_example("containerregistry/2025-11-01/RegistryGet.json", "200"),
        &v,
        &[],
    );

    let (s, v) = arm
        .call(
            Method::GET,
            &format!("/subscriptions/{SUB1}/providers/Microsoft.ContainerRegistry/registries?api-version=2025-11-01"),
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert_shape(
        "RegistryList",
        &crate::helpers::azure_example("containerregistry/2025-11-01/RegistryList.json", "200"),
        &v,
        &[],
    );

    // The spec's example is a service-principal cluster; features acr-attach never reads are
    // not modelled by the simulator.
    let (s, v) = arm
        .call(
            Method::GET,
            &format!("{}?api-version=2026-07-01", cluster("aks-legacy-sp")),
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert_shape(
        "ManagedClustersGet",
        &crate::helpers::azure_example("containerservice/2026-07-01/ManagedClustersGet.json", "200"),
        &v,
        &[
            ".properties.agentPoolProfiles[].availabilityZones",
            ".properties.agentPoolProfiles[].eTag",
            ".properties.agentPoolProfiles[].nodeImageVersion",
            ".properties.agentPoolProfiles[].upgradeSettings",
            ".properties.diskEncryptionSetID",
            ".properties.linuxProfile",
            ".properties.networkProfile.ipFamilies",
            ".properties.networkProfile.loadBalancerProfile",
            ".properties.networkProfile.podCidr",
            ".properties.networkProfile.podCidrs",
            ".properties.networkProfile.serviceCidrs",
            ".properties.upgradeSettings",
        ],
    );

    let name = uuid::Uuid::new_v4();
    let assignment = format!("{reg}/providers/Microsoft.Authorization/roleAssignments/{name}");
    let body = json!({ "properties": {
        "roleDefinitionId": format!("/subscriptions/{SUB1}/providers/Microsoft.Authorization/roleDefinitions/{ACR_PULL}"),
        "principalId": KUBELET, "principalType": "ServicePrincipal" } });
    let (s, v) = arm
        .call(
            Method::PUT,
            &format!("{assignment}?api-version=2022-04-01"),
            Some(body.clone()),
        )
        .await;
    assert_eq!(s, 201);
    assert_shape(
        "RoleAssignments_Create 201",
        &crate::helpers::azure_example("authorization/2022-04-01/RoleAssignments_CreateForResource.json", "201"),
        &v,
        &[],
    );
    let (s, v) = arm
        .call(Method::PUT, &format!("{assignment}?api-version=2022-04-01"), Some(body))
        .await;
    assert_eq!(s, 200, "the same PUT again is an idempotent 200");
    assert_shape(
        "RoleAssignments_Create 200",
        &crate::helpers::azure_example("authorization/2022-04-01/RoleAssignments_CreateForResource.json", "200"),
        &v,
        &[],
    );
    let (s, v) = arm
        .call(Method::GET, &format!("{assignment}?api-version=2022-04-01"), None)
        .await;
    assert_eq!(s, 200);
    assert_shape(
        "RoleAssignments_Get",
        &crate::helpers::azure_example("authorization/2022-04-01/RoleAssignments_Get.json", "200"),
        &v,
        &[],
    );
    let (s, v) = arm
        .call(
            Method::GET,
            &format!(
                "{reg}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01&$filter=atScope()"
            ),
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert_shape(
        "RoleAssignments_ListForScope",
        &crate::helpers::azure_example("authorization/2022-04-01/RoleAssignments_ListForScope.json", "200"),
        &v,
        &[],
    );
    let (s, v) = arm
        .call(Method::DELETE, &format!("{assignment}?api-version=2022-04-01"), None)
        .await;
    assert_eq!(s, 200);
    assert_shape(
        "RoleAssignments_Delete",
        &crate::helpers::azure_example("authorization/2022-04-01/RoleAssignments_Delete.json", "200"),
        &v,
        &[],
    );
    let (s, _) = arm
        .call(Method::DELETE, &format!("{assignment}?api-version=2022-04-01"), None)
        .await;
    assert_eq!(s, 204, "deleting what is gone is 204, as the spec says");

    let (s, v) = arm
        .call(
            Method::GET,
            &format!("/providers/Microsoft.Authorization/roleDefinitions/{ACR_PULL}?api-version=2022-04-01"),
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert_shape(
        "RoleDefinitions_Get",
        &crate::helpers::azure_example("authorization/2022-04-01/GetRoleDefinitionById.json", "200"),
        &v,
        &[],
    );
    assert_eq!(v["properties"]["roleName"], "AcrPull");

    let uami = format!(
        "/subscriptions/{SUB1}/resourceGroups/rg-aks-demo/providers/Microsoft.ManagedIdentity/userAssignedIdentities/contract-id"
    );
    let (s, v) = arm
        .call(
            Method::PUT,
            &format!("{uami}?api-version=2023-01-31"),
            Some(json!({ "location": "westeurope", "tags": { "key1": "value1" } })),
        )
        .await;
    assert_eq!(s, 201);
    assert_shape(
        "UserAssignedIdentities_CreateOrUpdate",
        &crate::helpers::azure_example("msi/2023-01-31/IdentityCreate.json", "201"),
        &v,
        &[],
    );
    let (s, v) = arm
        .call(Method::GET, &format!("{uami}?api-version=2023-01-31"), None)
        .await;
    assert_eq!(s, 200);
    assert_shape(
        "UserAssignedIdentities_Get",
        &crate::helpers::azure_example("msi/2023-01-31/IdentityGet.json", "200"),
        &v,
        &[],
    );

    let query = json!({ "query": "resources | where type =~ 'microsoft.containerregistry/registries' and name =~ 'acrdemo' | project id, name, type, location",
                        "subscriptions": [SUB1] });
    let (s, v) = arm
        .call(
            Method::POST,
            "/providers/Microsoft.ResourceGraph/resources?api-version=2024-04-01",
            Some(query),
        )
        .await;
    assert_eq!(s, 200);
    assert_shape(
        "Resources (Resource Graph)",
        &crate::helpers::azure_example("resourcegraph/2024-04-01/ResourcesFilterQuery.json", "200"),
        &v,
        &[],
    );
    assert_eq!(
        v["data"][0]["type"], "microsoft.containerregistry/registries",
        "types come back lower-cased"
    );
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulator_errors_have_the_arm_error_shape() {
    let a = AzureApp::spawn(demo_world()).await;
    let arm = Arm::new(&a).await;
    for (path, status, code) in [
        (
            format!("{}?api-version=2026-07-01", cluster("nope")),
            404,
            "ResourceNotFound",
        ),
        (
            format!(
                "/subscriptions/{SUB1}/resourceGroups/rg-none/providers/Microsoft.ContainerService/managedClusters/x?api-version=2026-07-01"
            ),
            404,
            "ResourceGroupNotFound",
        ),
        (cluster("aks-demo"), 400, "MissingApiVersionParameter"),
        (
            format!("{}?api-version=1999-01-01", cluster("aks-demo")),
            400,
            "InvalidApiVersionParameter",
        ),
    ] {
        let (s, v) = arm.call(Method::GET, &path, None).await;
        assert_eq!(s.as_u16(), status, "{path}: {v}");
        assert_eq!(v["error"]["code"], code, "{v}");
        assert!(v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let unauthenticated = arm
        .client
        .get(format!("{}{}?api-version=2026-07-01", arm.base, cluster("aks-demo")))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);
    assert!(unauthenticated.headers().contains_key("www-authenticate"));
    let body: Value = unauthenticated.json().await.unwrap();
    assert_eq!(body["error"]["code"], "AuthenticationFailed");
    a.stop().await;
}
