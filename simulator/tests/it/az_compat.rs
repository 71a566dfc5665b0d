//! What the real Azure CLI and Python SDKs need beyond acr-attach's own calls: cloud metadata,
//! discovery for the multi-tenant aliases, az-style scopes, managed cluster writes with AKS's
//! long-running operation, Graph's getByIds, the CLI's api-versions and host-name options.

use std::time::Duration;

use reqwest::{Certificate, Method};
use serde_json::{Value, json};

use crate::common::*;

fn cluster(name: &str) -> String {
    format!(
        "/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.ContainerService/managedClusters/{name}?api-version=2026-06-01"
    )
}

fn ids(r: &Resp) -> Vec<String> {
    let v = r.body["value"].as_array().expect("a value array");
    v.iter().map(|o| o["id"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn metadata_endpoints_describe_the_simulated_cloud() {
    let env = env().await;
    let base = env.sim.base_url();
    // Unauthenticated, as on ARM; the Azure CLI doubles the leading slash.
    for path in ["/metadata/endpoints", "//metadata/endpoints"] {
        let r = env
            .send(Method::GET, &format!("{path}?api-version=2022-09-01"), None, None)
            .await;
        assert_eq!(r.status, 200, "{path}: {:?}", r.body);
        let c = &r.body;
        assert!(c.is_object(), "{c}");
        assert_eq!(c["name"], "AzureSimulator");
        assert_eq!(c["authentication"]["loginEndpoint"], base.as_str());
        assert_eq!(
            c["authentication"]["audiences"],
            json!(["https://management.core.windows.net/", "https://management.azure.com/"])
        );
        assert_eq!(c["resourceManager"], format!("{base}/"));
        assert_eq!(c["microsoftGraphResourceId"], format!("{base}/"));
        assert_eq!(c["suffixes"]["acrLoginServer"], "azurecr.io");
    }
    // The doubled slash really reached the simulator as such.
    let paths: Vec<String> = env.sim.calls().into_iter().map(|c| c.path).collect();
    assert_eq!(paths, ["/metadata/endpoints", "//metadata/endpoints"]);
    let old = env
        .send(Method::GET, "/metadata/endpoints?api-version=2019-05-01", None, None)
        .await;
    assert_eq!(old.status, 200, "{:?}", old.body);
    let clouds = old.body.as_array().expect("2019-05-01 answers an array");
    assert_eq!(clouds.len(), 1);
    assert_eq!(clouds[0]["name"], "AzureSimulator");
    assert_eq!(clouds[0]["resourceManager"], format!("{base}/"));

    let r = env.send(Method::GET, "/metadata/endpoints", None, None).await;
    assert_eq!((r.status, r.code()), (400, "MissingApiVersionParameter"));
    let r = env
        .send(Method::GET, "/metadata/endpoints?api-version=2020-01-01", None, None)
        .await;
    assert_eq!((r.status, r.code()), (400, "InvalidApiVersionParameter"));
    assert!(r.message().contains("2022-09-01"), "{}", r.message());
    let r = env
        .send(
            Method::POST,
            "/metadata/endpoints?api-version=2022-09-01",
            None,
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, 405, "{:?}", r.body);
}

#[tokio::test]
async fn openid_discovery_serves_the_multi_tenant_aliases() {
    let env = env().await;
    let base = env.sim.base_url();
    for alias in ["organizations", "common"] {
        let r = env
            .send(
                Method::GET,
                &format!("/{alias}/v2.0/.well-known/openid-configuration"),
                None,
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{alias}: {:?}", r.body);
        assert_eq!(r.body["issuer"], format!("{base}/{{tenantid}}/v2.0"));
        assert_eq!(r.body["token_endpoint"], format!("{base}/{alias}/oauth2/v2.0/token"));
    }
    let r = env
        .send(
            Method::GET,
            "/00000000-0000-4000-8000-00000000dead/v2.0/.well-known/openid-configuration",
            None,
            None,
        )
        .await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert_eq!(r.body["error"], "invalid_tenant");
}

#[tokio::test]
async fn az_style_scopes_are_issued_and_accepted() {
    let env = env().await;
    let base = env.sim.base_url();
    // az asks for the ARM resource with its trailing slash, hence `//.default`.
    let arm = env
        .token_for(CLIENT, "https://management.core.windows.net//.default")
        .await;
    let r = env
        .send(Method::GET, "/subscriptions?api-version=2022-12-01", Some(&arm), None)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(ids(&r).contains(&format!("/subscriptions/{SUB}")), "{:?}", r.body);

    // A cloud registered from /metadata/endpoints uses the simulator's URL as Graph's audience.
    let graph = env.token_for(CLIENT, &format!("{base}//.default")).await;
    let r = env
        .send(
            Method::GET,
            &format!("/v1.0/servicePrincipals/{SP_OBJ}"),
            Some(&graph),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["appId"], SP_APP);
    // ...but that token is not one for ARM.
    let r = env
        .send(Method::GET, "/subscriptions?api-version=2022-12-01", Some(&graph), None)
        .await;
    assert_eq!((r.status, r.code()), (401, "InvalidAuthenticationTokenAudience"));
}

#[tokio::test]
async fn cluster_put_needs_the_write_action() {
    let writer = "a0000000-0000-4000-8000-00000000000c";
    let env = env_with(|w| {
        w["callers"][0]["permissions"] = json!([{ "scope": format!("/subscriptions/{SUB}"), "actions": ["*/read"] }]);
        w["callers"].as_array_mut().unwrap().push(json!({
            "clientId": writer, "clientSecret": SECRET, "objectId": "a0000000-0000-4000-8000-0000000000c1",
            "permissions": [ { "scope": format!("/subscriptions/{SUB}"),
                               "actions": ["*/read", "Microsoft.ContainerService/managedClusters/write"] } ] }));
    })
    .await;
    let current = env.arm(Method::GET, &cluster("aks-msi"), None).await;
    assert_eq!(current.status, 200, "{:?}", current.body);
    let r = env
        .arm(Method::PUT, &cluster("aks-msi"), Some(current.body.clone()))
        .await;
    assert_eq!((r.status, r.code()), (403, "AuthorizationFailed"), "{:?}", r.body);
    assert!(
        r.message().contains("Microsoft.ContainerService/managedClusters/write"),
        "{}",
        r.message()
    );

    let t = env.token_for(writer, "https://management.azure.com/.default").await;
    let r = env
        .send(Method::PUT, &cluster("aks-msi"), Some(&t), Some(current.body))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

#[tokio::test]
async fn cluster_put_runs_as_a_long_running_update() {
    let env = env_with(|w| w["behaviour"]["managedClusterUpdateSeconds"] = json!(2.0)).await;
    let base = env.sim.base_url();
    let mut body = env.arm(Method::GET, &cluster("aks-msi"), None).await.body;
    assert_eq!(body["properties"]["provisioningState"], "Succeeded");
    body["tags"] = json!({ "team": "platform", "attached": "acrOne" });

    let r = env.arm(Method::PUT, &cluster("aks-msi"), Some(body.clone())).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["properties"]["provisioningState"], "Updating");
    assert_eq!(r.body["tags"], json!({ "team": "platform", "attached": "acrOne" }));
    assert_eq!(r.header("retry-after").as_deref(), Some("1"));
    let status_url = r.header("azure-asyncoperation").expect("Azure-AsyncOperation header");
    let prefix =
        format!("{base}/subscriptions/{SUB}/providers/Microsoft.ContainerService/locations/westeurope/operations/");
    let op_id = status_url
        .strip_prefix(&prefix)
        .and_then(|s| s.strip_suffix("?api-version=2016-03-30"))
        .unwrap_or_else(|| panic!("unexpected status URL {status_url}"));
    uuid::Uuid::parse_str(op_id).expect("the operation id is a GUID");

    let r = env.arm(Method::GET, &cluster("aks-msi"), None).await;
    assert_eq!(r.body["properties"]["provisioningState"], "Updating");
    let r = env.arm(Method::PUT, &cluster("aks-msi"), Some(body)).await;
    assert_eq!((r.status, r.code()), (409, "OperationNotAllowed"), "{:?}", r.body);
    assert!(r.message().contains(op_id), "{}", r.message());

    let r = env.arm(Method::GET, &status_url, None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["name"], op_id);
    assert_eq!(r.body["status"], "InProgress");
    assert!(r.body["startTime"].is_string(), "{:?}", r.body);
    assert!(r.body.get("endTime").is_none(), "{:?}", r.body);
}

#[tokio::test]
async fn cluster_update_completes_and_keeps_the_tags() {
    let env = env_with(|w| w["behaviour"]["managedClusterUpdateSeconds"] = json!(0.3)).await;
    let mut body = env.arm(Method::GET, &cluster("aks-sp"), None).await.body;
    body["tags"] = json!({ "owner": "dana" });
    let r = env.arm(Method::PUT, &cluster("aks-sp"), Some(body.clone())).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let status_url = r.header("azure-asyncoperation").unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;

    let r = env.arm(Method::GET, &status_url, None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["status"], "Succeeded");
    let time = |k: &str| chrono::DateTime::parse_from_rfc3339(r.body[k].as_str().unwrap()).unwrap();
    assert_eq!((time("endTime") - time("startTime")).num_milliseconds(), 300);
    let r = env.arm(Method::GET, &cluster("aks-sp"), None).await;
    assert_eq!(r.body["properties"]["provisioningState"], "Succeeded");
    assert_eq!(r.body["tags"], json!({ "owner": "dana" }));
    // Done, so the next write is accepted.
    let r = env.arm(Method::PUT, &cluster("aks-sp"), Some(body)).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

#[tokio::test]
async fn cluster_put_refusals_and_unknown_operations() {
    let env = env().await;
    let body = env.arm(Method::GET, &cluster("aks-msi"), None).await.body;

    let mut no_location = body.clone();
    no_location.as_object_mut().unwrap().remove("location");
    let r = env.arm(Method::PUT, &cluster("aks-msi"), Some(no_location)).await;
    assert_eq!((r.status, r.code()), (400, "LocationRequired"), "{:?}", r.body);

    let mut moved = body.clone();
    moved["location"] = json!("northeurope");
    let r = env.arm(Method::PUT, &cluster("aks-msi"), Some(moved)).await;
    assert_eq!((r.status, r.code()), (400, "InvalidResourceLocation"), "{:?}", r.body);

    let r = env
        .arm(Method::PUT, &cluster("aks-brand-new"), Some(body.clone()))
        .await;
    assert_eq!((r.status, r.code()), (400, "OperationNotSupported"), "{:?}", r.body);

    let r = env
        .arm(
            Method::GET,
            &format!(
                "/subscriptions/{SUB}/providers/Microsoft.ContainerService/locations/westeurope/operations/{}?api-version=2016-03-30",
                uuid::Uuid::new_v4()
            ),
            None,
        )
        .await;
    assert_eq!(r.status, 404, "{:?}", r.body);

    // None of the refusals started an operation; the region is compared ignoring case and spaces.
    let mut same_region = body;
    same_region["location"] = json!("West Europe");
    let r = env.arm(Method::PUT, &cluster("aks-msi"), Some(same_region)).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

#[tokio::test]
async fn directory_objects_get_by_ids() {
    let env = env_with(|w| {
        w["callers"][0]["graphPermissions"] = json!(["Directory.Read.All"]);
        w["callers"][1]["graphPermissions"] = json!(["Application.Read.All", "GroupMember.ReadWrite.All"]);
    })
    .await;
    let t = env.graph_token().await;
    let unknown = "99999999-0000-4000-8000-000000000099";
    let get = |body: Value, token: String| {
        let env = &env;
        async move {
            env.send(
                Method::POST,
                "/v1.0/directoryObjects/getByIds",
                Some(&token),
                Some(body),
            )
            .await
        }
    };

    let r = get(json!({ "ids": [SP_OBJ, unknown, GROUP_OUTER, USER] }), t.clone()).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(ids(&r), [SP_OBJ, GROUP_OUTER, USER]);
    let v = &r.body["value"];
    assert_eq!(v[0]["@odata.type"], "#microsoft.graph.servicePrincipal");
    assert_eq!(v[0]["appId"], SP_APP);
    assert_eq!(v[1]["@odata.type"], "#microsoft.graph.group");
    assert_eq!(v[1]["displayName"], "acr-pullers");
    assert_eq!(v[2]["@odata.type"], "#microsoft.graph.user");

    let r = get(
        json!({ "ids": [SP_OBJ, GROUP_OUTER, USER, GROUP_INNER], "types": ["servicePrincipal", "group"] }),
        t,
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(ids(&r), [SP_OBJ, GROUP_OUTER, GROUP_INNER]);

    // Application.Read.All and GroupMember.ReadWrite.All are not enough.
    let reader = env
        .token_for(READER_CLIENT, "https://graph.microsoft.com/.default")
        .await;
    let r = get(json!({ "ids": [SP_OBJ] }), reader).await;
    assert_eq!(
        (r.status, r.code()),
        (403, "Authorization_RequestDenied"),
        "{:?}",
        r.body
    );
}

#[tokio::test]
async fn azure_cli_api_versions_are_accepted() {
    let env = env().await;
    let r = env.arm(Method::GET, &cluster("aks-msi"), None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);

    let r = env
        .arm(
            Method::GET,
            &format!("{}?api-version=2026-09-01-preview", registry_id("acrabac")),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["properties"]["roleAssignmentMode"], "AbacRepositoryPermissions");

    let r = env
        .arm(
            Method::GET,
            &format!(
                "/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions?api-version=2022-05-01-preview&$filter=roleName%20eq%20%27AcrPull%27"
            ),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(names(r.body["value"].as_array().unwrap()), [ACR_PULL]);

    let r = env
        .arm(
            Method::GET,
            &format!(
                "/subscriptions/{SUB}/resources?api-version=2024-11-01&$filter=resourceType%20eq%20%27Microsoft.ContainerRegistry/registries%27"
            ),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let listed = r.body["value"].as_array().unwrap();
    assert!(
        listed
            .iter()
            .all(|v| v["type"] == "Microsoft.ContainerRegistry/registries"),
        "{listed:?}"
    );
    let mut want = vec!["acrOne".to_string(), "acrabac".to_string()];
    want.extend((1..=5).map(|i| format!("acrmany{i}")));
    want.sort();
    assert_eq!(names(listed), want);

    let r = env
        .arm(
            Method::GET,
            &cluster("aks-msi").replace("2026-06-01", "2024-01-01"),
            None,
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (400, "InvalidApiVersionParameter"),
        "{:?}",
        r.body
    );
    assert!(r.message().contains("2026-06-01"), "{}", r.message());
}

#[tokio::test]
async fn hostname_option_names_the_base_url_and_the_certificate() {
    let world = azure_simulator::World::from_json(&world().to_string()).unwrap();
    let mut options = azure_simulator::Options::listen("127.0.0.1:0".parse().unwrap());
    options.hostnames = vec!["sim.test".into()];
    let sim = azure_simulator::start_with(world, options)
        .await
        .expect("simulator starts");
    let addr = sim.local_addr();
    assert_eq!(sim.base_url(), format!("https://sim.test:{}", addr.port()));

    let ca = Certificate::from_pem(sim.ca_pem().as_bytes()).unwrap();
    let http = reqwest::Client::builder()
        .tls_certs_only([ca])
        .resolve("sim.test", addr)
        .build()
        .unwrap();
    let r = http
        .get(format!("{}/metadata/endpoints?api-version=2022-09-01", sim.base_url()))
        .send()
        .await
        .expect("TLS handshake with sim.test succeeds");
    let r = decode(r).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["authentication"]["loginEndpoint"], sim.base_url());
    let r = decode(
        http.get(format!("{}/metadata/endpoints", sim.base_url()))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 400);

    let calls = sim.calls();
    let recorded: Vec<_> = calls
        .iter()
        .map(|c| {
            (
                c.operation.as_str(),
                c.path.as_str(),
                c.api_version.as_deref(),
                c.status,
            )
        })
        .collect();
    assert_eq!(
        recorded,
        [
            ("Metadata_Endpoints", "/metadata/endpoints", Some("2022-09-01"), 200),
            ("Metadata_Endpoints", "/metadata/endpoints", None, 400),
        ]
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn a_state_dir_keeps_the_ca_and_the_signing_key_across_restarts() {
    let dir = std::env::temp_dir().join(format!("azsim-state-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let world = || azure_simulator::World::from_json(&world().to_string()).unwrap();
    let options = || {
        let mut o = azure_simulator::Options::listen("127.0.0.1:0".parse().unwrap());
        o.state_dir = Some(dir.clone());
        o
    };
    let first = azure_simulator::start_with(world(), options()).await.unwrap();
    let caller = first.world().callers[0].client_id.clone();
    let token = first
        .access_token(&caller, "https://management.azure.com/.default")
        .unwrap();
    let (ca, kid) = (first.ca_pem(), first.signing_key_id());
    first.shutdown().await;

    let second = azure_simulator::start_with(world(), options()).await.unwrap();
    assert_eq!(second.ca_pem(), ca, "clients keep trusting the same CA");
    assert_eq!(second.signing_key_id(), kid);
    // A token cached from the first run still verifies, over a connection trusting the old CA.
    let http = reqwest::Client::builder()
        .tls_certs_only([Certificate::from_pem(ca.as_bytes()).unwrap()])
        .build()
        .unwrap();
    let r = http
        .get(format!("{}/subscriptions?api-version=2022-12-01", second.base_url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    second.shutdown().await;

    // Without a state dir, each start is a new cloud: the old token is refused.
    let fresh = azure_simulator::start(world(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    assert_ne!(fresh.signing_key_id(), kid);
    let http = reqwest::Client::builder()
        .tls_certs_only([Certificate::from_pem(fresh.ca_pem().as_bytes()).unwrap()])
        .build()
        .unwrap();
    let r = http
        .get(format!("{}/subscriptions?api-version=2022-12-01", fresh.base_url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    fresh.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
