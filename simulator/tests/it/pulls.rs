//! Pulls, run-command and import: AKS run-command probes whose outcome follows the world
//! (DNS, egress, the registry firewall, pull permissions, contents), ACR `importImage`,
//! registry `PATCH` and replacing a cluster's kubelet identity.

use std::time::{Duration, Instant};

use azure_simulator::{ImportStatus, PrivateEndpointConnection, RoleAssignmentRecord, World, roles};
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::*;

const V_AKS: &str = "2026-07-01";
const V_ACR: &str = "2025-11-01";
const PULLER_CLIENT: &str = "a1000000-0000-4000-8000-00000000000a";
const UAMI_PRINCIPAL: &str = "c1000000-0000-4000-8000-0000000000c1";
const UAMI_CLIENT: &str = "c1000000-0000-4000-8000-0000000000cc";
const CUSTOM_ROLE: &str = "5ca1ab1e-0000-4000-8000-000000000001";

fn cluster_path(name: &str) -> String {
    format!("/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.ContainerService/managedClusters/{name}")
}

fn shared_registry_id() -> String {
    format!("/subscriptions/{SUB2}/resourceGroups/rg-shared/providers/Microsoft.ContainerRegistry/registries/acrshared")
}

/// The base tenant plus registry contents, external registries, fast operations and a caller
/// that may import into `rg-aks` but read nothing in the second subscription.
async fn pull_env(edit: impl FnOnce(&mut Value)) -> Env {
    env_with(|w| {
        let rg = &mut w["subscriptions"][0]["resourceGroups"][0];
        rg["registries"][0]["repositories"] =
            json!({ "hello-world": { "latest": "" }, "team/app": { "v1": null } });
        rg["registries"][1]["repositories"] = json!({ "hello-world": { "latest": "" } });
        rg["userAssignedIdentities"] =
            json!([{ "name": "uami-pull", "principalId": UAMI_PRINCIPAL, "clientId": UAMI_CLIENT }]);
        w["subscriptions"][1]["resourceGroups"][0]["registries"][0]["repositories"] =
            json!({ "base/alpine": { "3.20": "" } });
        w["externalRegistries"] = json!([
            { "loginServer": "mcr.microsoft.com", "repositories": { "hello-world": { "latest": "" } } },
            { "loginServer": "private.example.com", "repositories": { "tools/jq": { "1.7": "" } },
              "username": "robot", "password": "hunter2" }
        ]);
        w["roleDefinitions"] = json!([{ "id": CUSTOM_ROLE, "roleName": "Image Puller",
            "permissions": [{ "actions": ["Microsoft.ContainerRegistry/registries/pull/read"] }] }]);
        w["callers"].as_array_mut().unwrap().push(json!({
            "clientId": PULLER_CLIENT, "clientSecret": SECRET, "objectId": "a1000000-0000-4000-8000-0000000000a1",
            "permissions": [ { "scope": format!("/subscriptions/{SUB}/resourceGroups/{RG}"),
                               "actions": ["*/read", "Microsoft.ContainerRegistry/registries/importImage/action"] } ] }));
        w["behaviour"] = json!({ "runCommandSeconds": 0.2, "importSeconds": 0.2 });
        edit(w);
    })
    .await
}

/// Seeds an assignment that is readable (and has propagated) at once.
fn grant(env: &Env, scope: &str, role: &str, principal: &str) {
    env.sim.insert_role_assignment(RoleAssignmentRecord::new(
        &uuid::Uuid::new_v4().to_string(),
        scope,
        role,
        principal,
    ));
}

/// Polls a `Location` until it stops answering 202; returns the last answer.
async fn poll(env: &Env, location: &str) -> Resp {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = env.arm(Method::GET, location, None).await;
        if r.status != 202 || Instant::now() > deadline {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs a command on a cluster to completion; returns the final result body.
async fn run(env: &Env, cluster: &str, command: &str) -> Value {
    let url = format!("{}/runCommand?api-version={V_AKS}", cluster_path(cluster));
    let r = env.arm(Method::POST, &url, Some(json!({ "command": command }))).await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    let r = poll(env, &r.header("location").expect("location header")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["properties"]["provisioningState"], "succeeded", "{:?}", r.body);
    r.body
}

/// A probe pod pulling `image`: (exit code, logs).
async fn probe(env: &Env, cluster: &str, image: &str) -> (i64, String) {
    let cmd = format!(
        "kubectl run acr-probe --image={image} --restart=Never --image-pull-policy=Always && sleep 20; \
         kubectl get events --field-selector involvedObject.name=acr-probe -o custom-columns=REASON:.reason,MESSAGE:.message --no-headers"
    );
    let b = run(env, cluster, &cmd).await;
    let p = &b["properties"];
    (p["exitCode"].as_i64().unwrap(), p["logs"].as_str().unwrap().to_string())
}

fn assert_pulled(result: &(i64, String), image: &str) {
    let (code, logs) = result;
    assert_eq!(*code, 0, "{logs}");
    let pulled = format!("Pulled      Successfully pulled image \"{image}\" in ");
    assert!(logs.lines().any(|l| l.starts_with(&pulled)), "{logs}");
    assert!(
        logs.trim_end().ends_with("Started     Started container acr-probe"),
        "{logs}"
    );
}

fn assert_failed(result: &(i64, String), needle: &str) {
    let (code, logs) = result;
    assert_eq!(*code, 1, "{logs}");
    let failed = logs
        .lines()
        .find(|l| l.starts_with("Failed      Failed to pull image"))
        .unwrap_or_else(|| panic!("no pull failure in {logs}"));
    assert!(failed.contains(needle), "{failed}");
    assert!(logs.contains("Failed      Error: ErrImagePull"), "{logs}");
}

const HELLO: &str = "acrone.azurecr.io/hello-world:latest";

#[tokio::test]
async fn probe_pulls_when_the_kubelet_holds_acr_pull() {
    let env = pull_env(|_| {}).await;
    grant(&env, &registry_id("acrOne"), roles::ACR_PULL, KUBELET);
    let result = probe(&env, "aks-msi", HELLO).await;
    assert_pulled(&result, HELLO);
    let lines: Vec<&str> = result.1.lines().collect();
    assert_eq!(lines[0], "pod/acr-probe created");
    assert!(
        lines[1].starts_with("Scheduled   Successfully assigned default/acr-probe to aks-nodepool1-"),
        "{}",
        lines[1]
    );
    assert_eq!(lines[2], format!("Pulling     Pulling image \"{HELLO}\""));
    let runs = env.sim.run_commands();
    assert_eq!(runs.len(), 1);
    assert!(runs[0].command.starts_with("kubectl run acr-probe --image="));
    assert_eq!(runs[0].exit_code, Some(0));
    assert!(runs[0].cluster_id.ends_with("/managedClusters/aks-msi"));
}

#[tokio::test]
async fn run_command_is_a_location_long_running_operation() {
    let env = pull_env(|w| w["behaviour"]["runCommandSeconds"] = json!(1.5)).await;
    let base = env.sim.base_url();
    let url = format!("{}/runCommand?api-version={V_AKS}", cluster_path("aks-msi"));
    let r = env
        .arm(
            Method::POST,
            &url,
            Some(json!({ "command": "kubectl get ns", "context": "", "clusterToken": "" })),
        )
        .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    assert_eq!(r.header("retry-after").as_deref(), Some("2"));
    let location = r.header("location").unwrap();
    let prefix = format!("{base}{}/commandResults/", cluster_path("aks-msi"));
    let id = location
        .strip_prefix(&prefix)
        .and_then(|s| s.strip_suffix(&format!("?api-version={V_AKS}")))
        .unwrap_or_else(|| panic!("unexpected location {location}"))
        .to_string();
    assert_eq!(id.len(), 32, "{id}");

    let r = env.arm(Method::GET, &location, None).await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    assert_eq!(r.header("location").as_deref(), Some(location.as_str()));
    assert!(r.header("retry-after").is_some());
    assert_eq!(env.sim.run_commands()[0].exit_code, None);

    tokio::time::sleep(Duration::from_millis(1600)).await;
    let r = env.arm(Method::GET, &location, None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["id"], id.as_str());
    let p = &r.body["properties"];
    assert_eq!(p["provisioningState"], "succeeded");
    assert_eq!(p["exitCode"], 0);
    assert_eq!(p["logs"], "");
    let time = |k: &str| chrono::DateTime::parse_from_rfc3339(p[k].as_str().unwrap()).unwrap();
    assert!(p["startedAt"].as_str().unwrap().ends_with('Z'));
    assert!((time("finishedAt") - time("startedAt")).num_seconds() >= 1);
    assert_eq!(env.sim.call_count("ManagedClusters_RunCommand"), 1);
    assert_eq!(env.sim.call_count("ManagedClusters_GetCommandResult"), 2);

    let r = env
        .arm(
            Method::GET,
            &format!("{prefix}{}?api-version={V_AKS}", "0".repeat(32)),
            None,
        )
        .await;
    assert_eq!(r.status, 404, "{:?}", r.body);
}

#[tokio::test]
async fn run_command_needs_the_runcommand_action() {
    let env = pull_env(|w| {
        w["callers"].as_array_mut().unwrap().push(json!({
            "clientId": "a2000000-0000-4000-8000-00000000000a", "clientSecret": SECRET,
            "objectId": "a2000000-0000-4000-8000-0000000000a1",
            "permissions": [ { "scope": format!("/subscriptions/{SUB}"), "actions": ["Microsoft.ContainerService/managedClusters/read"] } ] }));
    })
    .await;
    let t = env
        .token_for(
            "a2000000-0000-4000-8000-00000000000a",
            "https://management.azure.com/.default",
        )
        .await;
    let url = format!("{}/runCommand?api-version={V_AKS}", cluster_path("aks-msi"));
    let r = env
        .send(Method::POST, &url, Some(&t), Some(json!({ "command": "ls" })))
        .await;
    assert_eq!((r.status, r.code()), (403, "AuthorizationFailed"), "{:?}", r.body);
    assert!(
        r.message()
            .contains("'Microsoft.ContainerService/managedClusters/runcommand/action'"),
        "{}",
        r.message()
    );
    assert!(env.sim.run_commands().is_empty());
    let result = format!(
        "{}/commandResults/{}?api-version={V_AKS}",
        cluster_path("aks-msi"),
        "0".repeat(32)
    );
    let r = env.send(Method::GET, &result, Some(&t), None).await;
    assert_eq!((r.status, r.code()), (403, "AuthorizationFailed"), "{:?}", r.body);
}

#[tokio::test]
async fn run_command_refusals() {
    let env = pull_env(|w| {
        w["subscriptions"][0]["resourceGroups"][0]["managedClusters"][1]["disableRunCommand"] = json!(true)
    })
    .await;
    let post = |c: &str| format!("{}/runCommand?api-version={V_AKS}", cluster_path(c));
    let r = env
        .arm(Method::POST, &post("aks-sp"), Some(json!({ "command": "ls" })))
        .await;
    assert_eq!((r.status, r.code()), (400, "OperationNotAllowed"), "{:?}", r.body);
    assert!(r.message().contains("disabled"), "{}", r.message());
    let r = env
        .arm(
            Method::GET,
            &format!("{}?api-version={V_AKS}", cluster_path("aks-sp")),
            None,
        )
        .await;
    assert_eq!(
        r.body["properties"]["apiServerAccessProfile"]["disableRunCommand"],
        true
    );

    let r = env
        .arm(Method::POST, &post("aks-msi"), Some(json!({ "context": "" })))
        .await;
    assert_eq!((r.status, r.code()), (400, "InvalidRequestContent"), "{:?}", r.body);
    assert!(r.message().contains("'command'"), "{}", r.message());
    let r = env
        .arm(Method::POST, &post("aks-new"), Some(json!({ "command": "ls" })))
        .await;
    assert_eq!((r.status, r.code()), (409, "OperationNotAllowed"), "{:?}", r.body);
    let r = env
        .arm(Method::POST, &post("nope"), Some(json!({ "command": "ls" })))
        .await;
    assert_eq!((r.status, r.code()), (404, "ResourceNotFound"), "{:?}", r.body);
    let r = env
        .arm(
            Method::POST,
            &format!("{}/runCommand?api-version={V_ACR}", cluster_path("aks-msi")),
            Some(json!({ "command": "ls" })),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (400, "InvalidApiVersionParameter"),
        "{:?}",
        r.body
    );
    assert!(env.sim.run_commands().is_empty());
}

#[tokio::test]
async fn probe_of_an_unknown_host_fails_dns() {
    let env = pull_env(|_| {}).await;
    let result = probe(&env, "aks-msi", "nosuch.azurecr.io/hello-world:latest").await;
    assert_failed(
        &result,
        "failed to do request: Head \"https://nosuch.azurecr.io/v2/hello-world/manifests/latest\": dial tcp: lookup nosuch.azurecr.io on 168.63.129.16:53: no such host",
    );
    assert!(result.1.contains("BackOff     Back-off pulling image"), "{}", result.1);
}

#[tokio::test]
async fn probe_from_a_cluster_with_blocked_egress_times_out() {
    let env =
        pull_env(|w| w["subscriptions"][0]["resourceGroups"][0]["managedClusters"][0]["egressBlocked"] = json!(true))
            .await;
    grant(&env, &registry_id("acrOne"), roles::ACR_PULL, KUBELET);
    let result = probe(&env, "aks-msi", HELLO).await;
    assert_failed(&result, ":443: i/o timeout");
    assert!(result.1.contains("dial tcp 20."), "{}", result.1);
}

#[tokio::test]
async fn registry_firewall_refuses_with_403_until_private_link_or_an_ip_rule() {
    let env = pull_env(|w| {
        w["subscriptions"][0]["resourceGroups"][0]["registries"][0]["publicNetworkAccess"] = json!("Disabled")
    })
    .await;
    grant(&env, &registry_id("acrOne"), roles::ACR_PULL, KUBELET);
    let forbidden = "unexpected status from HEAD request to https://acrone.azurecr.io/v2/hello-world/manifests/latest: 403 Forbidden";
    assert_failed(&probe(&env, "aks-msi", HELLO).await, forbidden);
    let set_connection = |status: &str| {
        let pe = PrivateEndpointConnection {
            name: "pe-aks".into(),
            status: status.into(),
        };
        env.sim.update_world(|w| {
            w.subscriptions[0].resource_groups[0].registries[0].private_endpoint_connections = vec![pe]
        });
    };
    set_connection("Pending");
    assert_failed(&probe(&env, "aks-msi", HELLO).await, forbidden);
    set_connection("Approved");
    assert_pulled(&probe(&env, "aks-msi", HELLO).await, HELLO);

    // Public access again, but a Deny firewall: only an ipRule covering 20.50.0.1 lets it in.
    env.sim.update_world(|w| {
        w.subscriptions[0].resource_groups[0].registries[0]
            .private_endpoint_connections
            .clear()
    });
    let patch = |rules: Value| {
        json!({ "properties": { "publicNetworkAccess": "Enabled",
                                "networkRuleSet": { "defaultAction": "Deny", "ipRules": rules } } })
    };
    let url = format!("{}?api-version={V_ACR}", registry_id("acrOne"));
    let r = env
        .arm(
            Method::PATCH,
            &url,
            Some(patch(json!([{ "action": "Allow", "value": "40.1.1.0/24" }]))),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["properties"]["networkRuleSet"]["defaultAction"], "Deny");
    assert_failed(&probe(&env, "aks-msi", HELLO).await, forbidden);
    let r = env
        .arm(Method::PATCH, &url, Some(patch(json!([{ "value": "20.50.0.0/24" }]))))
        .await;
    assert_eq!(
        r.body["properties"]["networkRuleSet"]["ipRules"],
        json!([{ "action": "Allow", "value": "20.50.0.0/24" }])
    );
    assert_pulled(&probe(&env, "aks-msi", HELLO).await, HELLO);
}

#[tokio::test]
async fn probe_without_a_pull_grant_is_unauthorized() {
    let env = pull_env(|_| {}).await;
    // A grant on another registry gives nothing here.
    grant(&env, &registry_id("acrabac"), roles::ACR_PULL, KUBELET);
    assert_failed(
        &probe(&env, "aks-msi", "acrone.azurecr.io/team/app:v1").await,
        "failed to authorize: failed to fetch anonymous token: unexpected status from GET request to https://acrone.azurecr.io/oauth2/token?scope=repository%3Ateam%2Fapp%3Apull&service=acrone.azurecr.io: 401 Unauthorized",
    );
}

#[tokio::test]
async fn abac_registries_ignore_acr_pull_and_honour_repository_reader() {
    let env = pull_env(|_| {}).await;
    let image = "acrabac.azurecr.io/hello-world:latest";
    grant(&env, &registry_id("acrabac"), roles::ACR_PULL, KUBELET);
    grant(&env, &registry_id("acrabac"), roles::OWNER, KUBELET);
    assert_failed(&probe(&env, "aks-msi", image).await, "401 Unauthorized");
    grant(&env, &registry_id("acrabac"), roles::REPOSITORY_READER, KUBELET);
    assert_pulled(&probe(&env, "aks-msi", image).await, image);
}

#[tokio::test]
async fn group_grants_count_once_membership_reaches_arm() {
    let late = "e0000000-0000-4000-8000-0000000000e9";
    let env = pull_env(|w| {
        w["directory"]
            .as_array_mut()
            .unwrap()
            .push(json!({ "objectId": late, "type": "Group", "displayName": "late-pullers" }));
        w["behaviour"]["groupMembershipArmDelayMs"] = json!(60_000);
    })
    .await;
    // KUBELET is in GROUP_INNER, itself in GROUP_OUTER: a grant to the outer group counts.
    grant(&env, &registry_id("acrOne"), roles::ACR_PULL, GROUP_OUTER);
    assert_pulled(&probe(&env, "aks-msi", HELLO).await, HELLO);
    // A membership added just now is not seen by ARM for a minute.
    grant(&env, &registry_id("acrabac"), roles::REPOSITORY_READER, late);
    let t = env.graph_token().await;
    let add = json!({ "@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{KUBELET}") });
    let r = env
        .send(
            Method::POST,
            &format!("/v1.0/groups/{late}/members/$ref"),
            Some(&t),
            Some(add),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    assert_failed(
        &probe(&env, "aks-msi", "acrabac.azurecr.io/hello-world:latest").await,
        "401 Unauthorized",
    );
}

#[tokio::test]
async fn custom_role_at_the_resource_group_lets_an_sp_cluster_pull() {
    let env = pull_env(|_| {}).await;
    let image = "acrone.azurecr.io/team/app:v1";
    assert_failed(&probe(&env, "aks-sp", image).await, "401 Unauthorized");
    grant(
        &env,
        &format!("/subscriptions/{SUB}/resourceGroups/{RG}"),
        CUSTOM_ROLE,
        SP_OBJ,
    );
    assert_pulled(&probe(&env, "aks-sp", image).await, image);
}

#[tokio::test]
async fn missing_tags_are_not_found_and_anonymous_pull_needs_no_grant() {
    let env = pull_env(|_| {}).await;
    let url = format!("{}?api-version={V_ACR}", registry_id("acrOne"));
    let r = env
        .arm(
            Method::PATCH,
            &url,
            Some(json!({ "properties": { "anonymousPullEnabled": true } })),
        )
        .await;
    assert_eq!(r.body["properties"]["anonymousPullEnabled"], true);
    assert_pulled(&probe(&env, "aks-msi", HELLO).await, HELLO);
    let missing = "acrone.azurecr.io/hello-world:nope";
    assert_failed(
        &probe(&env, "aks-msi", missing).await,
        &format!(
            "rpc error: code = NotFound desc = failed to pull and unpack image \"{missing}\": failed to resolve reference \"{missing}\": {missing}: not found"
        ),
    );
}

#[tokio::test]
async fn fresh_grants_count_only_after_propagation() {
    let env = pull_env(|w| w["behaviour"]["pullPermissionPropagationSeconds"] = json!(1.0)).await;
    let r = env
        .put_assignment(
            &registry_id("acrOne"),
            &uuid::Uuid::new_v4().to_string(),
            ACR_PULL,
            KUBELET,
            Some("ServicePrincipal"),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_failed(&probe(&env, "aks-msi", HELLO).await, "401 Unauthorized");
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_pulled(&probe(&env, "aks-msi", HELLO).await, HELLO);
}

/// Starts an import into acrOne and polls it to the end.
async fn import(env: &Env, token: Option<&str>, body: Value) -> (Resp, Resp) {
    let url = format!("{}/importImage?api-version={V_ACR}", registry_id("acrOne"));
    let t = match token {
        Some(t) => t.to_string(),
        None => env.arm_token().await,
    };
    let started = env.send(Method::POST, &url, Some(&t), Some(body)).await;
    if started.status != 202 {
        return (
            started,
            Resp {
                status: 0,
                headers: Default::default(),
                body: Value::Null,
            },
        );
    }
    let location = started.header("location").expect("Location header");
    let deadline = Instant::now() + Duration::from_secs(10);
    let done = loop {
        let r = env.send(Method::GET, &location, Some(&t), None).await;
        if r.status != 202 || Instant::now() > deadline {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    (started, done)
}

fn acr_one_digest(env: &Env, repo: &str, tag: &str) -> Option<String> {
    let w: World = env.sim.world();
    w.subscriptions[0].resource_groups[0].registries[0]
        .repositories
        .get(repo)?
        .get(tag)
        .cloned()
}

#[tokio::test]
async fn import_by_resource_id_copies_the_image_and_a_probe_pulls_it() {
    let env = pull_env(|w| w["behaviour"]["importSeconds"] = json!(0.5)).await;
    let base = env.sim.base_url();
    let body = json!({ "source": { "resourceId": shared_registry_id(), "sourceImage": "base/alpine:3.20" },
                       "targetTags": ["alpine:3.20"], "mode": "NoForce" });
    let (started, done) = import(&env, None, body).await;
    assert_eq!(started.status, 202, "{:?}", started.body);
    assert_eq!(started.header("retry-after").as_deref(), Some("1"));
    let location = started.header("location").unwrap();
    let prefix = format!(
        "{base}/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.ContainerRegistry/locations/westeurope/operationResults/operationStatuses/registries-"
    );
    let guid = location
        .strip_prefix(&prefix)
        .and_then(|s| s.strip_suffix(&format!("?api-version={V_ACR}")))
        .unwrap_or_else(|| panic!("unexpected location {location}"));
    uuid::Uuid::parse_str(guid).expect("a GUID");
    assert_eq!(done.status, 200, "{:?}", done.body);
    assert_eq!(done.body, Value::Null);
    assert!(
        env.sim.call_count("Registries_ImportImageStatus") >= 2,
        "polled while running"
    );

    let imports = env.sim.imports();
    assert_eq!(imports.len(), 1);
    assert_eq!(imports[0].status, ImportStatus::Succeeded);
    assert_eq!(imports[0].target_tags, vec!["alpine:3.20".to_string()]);
    let source_digest = azure_simulator::derived_digest("acrshared.azurecr.io", "base/alpine", "3.20");
    assert_eq!(acr_one_digest(&env, "alpine", "3.20"), Some(source_digest));

    let image = "acrone.azurecr.io/alpine:3.20";
    assert_failed(&probe(&env, "aks-msi", image).await, "401 Unauthorized");
    grant(&env, &registry_id("acrOne"), roles::ACR_PULL, KUBELET);
    assert_pulled(&probe(&env, "aks-msi", image).await, image);
}

#[tokio::test]
async fn import_checks_the_callers_rights_on_both_registries() {
    let env = pull_env(|_| {}).await;
    let body = json!({ "source": { "resourceId": shared_registry_id(), "sourceImage": "base/alpine:3.20" } });
    let reader = env
        .token_for(READER_CLIENT, "https://management.azure.com/.default")
        .await;
    let (started, _) = import(&env, Some(&reader), body.clone()).await;
    assert_eq!(
        (started.status, started.code()),
        (403, "AuthorizationFailed"),
        "{:?}",
        started.body
    );
    assert!(
        started.message().contains("registries/importImage/action"),
        "{}",
        started.message()
    );
    // May import into acrOne, but cannot read the source in the other subscription.
    let puller = env
        .token_for(PULLER_CLIENT, "https://management.azure.com/.default")
        .await;
    let (started, done) = import(&env, Some(&puller), body).await;
    assert_eq!(started.status, 202, "{:?}", started.body);
    assert_eq!(
        (done.status, done.code()),
        (403, "AuthorizationFailed"),
        "{:?}",
        done.body
    );
    assert!(done.message().contains(&shared_registry_id()), "{}", done.message());
    assert!(acr_one_digest(&env, "base/alpine", "3.20").is_none());
}

#[tokio::test]
async fn import_from_external_registries_by_uri_with_credentials() {
    let env = pull_env(|_| {}).await;
    let (_, done) = import(
        &env,
        None,
        json!({ "source": { "registryUri": "mcr.microsoft.com", "sourceImage": "hello-world" },
                                               "targetTags": ["mcr/hello-world"] }),
    )
    .await;
    assert_eq!(done.status, 200, "{:?}", done.body);
    assert_eq!(
        acr_one_digest(&env, "mcr/hello-world", "latest"),
        Some(azure_simulator::derived_digest(
            "mcr.microsoft.com",
            "hello-world",
            "latest"
        ))
    );
    let private = |password: Option<&str>| {
        let mut source = json!({ "registryUri": "private.example.com", "sourceImage": "tools/jq:1.7" });
        if let Some(p) = password {
            source["credentials"] = json!({ "username": "robot", "password": p });
        }
        json!({ "source": source })
    };
    for wrong in [None, Some("guess")] {
        let (started, done) = import(&env, None, private(wrong)).await;
        assert_eq!(started.status, 202);
        assert_eq!((done.status, done.code()), (400, "Unauthorized"), "{:?}", done.body);
        assert!(done.message().contains("unauthorized"), "{}", done.message());
    }
    let (_, done) = import(&env, None, private(Some("hunter2"))).await;
    assert_eq!(done.status, 200, "{:?}", done.body);
    assert!(acr_one_digest(&env, "tools/jq", "1.7").is_some());
    let (_, done) = import(
        &env,
        None,
        json!({ "source": { "registryUri": "ghcr.io", "sourceImage": "x/y:1" } }),
    )
    .await;
    assert_eq!(
        (done.status, done.code()),
        (400, "InvalidParameters"),
        "{:?}",
        done.body
    );
    let (_, done) = import(
        &env,
        None,
        json!({ "source": { "registryUri": "mcr.microsoft.com", "sourceImage": "hello-world:v9" } }),
    )
    .await;
    assert_eq!((done.status, done.code()), (400, "ImageNotFound"), "{:?}", done.body);
    let statuses: Vec<bool> = env
        .sim
        .imports()
        .iter()
        .map(|i| i.status == ImportStatus::Succeeded)
        .collect();
    assert_eq!(statuses, vec![true, false, false, true, false, false]);
}

#[tokio::test]
async fn import_no_force_refuses_existing_tags_and_force_overwrites() {
    let env = pull_env(|_| {}).await;
    let body = |mode: &str| {
        json!({ "source": { "registryUri": "mcr.microsoft.com", "sourceImage": "hello-world:latest" },
                "targetTags": ["hello-world:latest"], "mode": mode })
    };
    let before = acr_one_digest(&env, "hello-world", "latest").unwrap();
    let (_, done) = import(&env, None, body("NoForce")).await;
    assert_eq!(
        (done.status, done.code()),
        (400, "InvalidParameters"),
        "{:?}",
        done.body
    );
    assert!(
        done.message().contains("already exists") && done.message().contains("Force"),
        "{}",
        done.message()
    );
    assert_eq!(acr_one_digest(&env, "hello-world", "latest").unwrap(), before);
    let (_, done) = import(&env, None, body("Force")).await;
    assert_eq!(done.status, 200, "{:?}", done.body);
    let after = acr_one_digest(&env, "hello-world", "latest").unwrap();
    assert_eq!(
        after,
        azure_simulator::derived_digest("mcr.microsoft.com", "hello-world", "latest")
    );
    assert_ne!(after, before);
}

#[tokio::test]
async fn import_bodies_are_validated_before_acceptance() {
    let env = pull_env(|_| {}).await;
    let cases = [
        (
            json!({ "source": { "registryUri": "mcr.microsoft.com" } }),
            "InvalidRequestContent",
            "sourceImage",
        ),
        (json!({ "targetTags": ["a:b"] }), "InvalidRequestContent", "source"),
        (
            json!({ "source": { "sourceImage": "a:b" } }),
            "InvalidParameters",
            "registryUri",
        ),
        (
            json!({ "source": { "registryUri": "mcr.microsoft.com", "sourceImage": "Bad Image" } }),
            "InvalidParameters",
            "Bad Image",
        ),
        (
            json!({ "source": { "registryUri": "mcr.microsoft.com", "sourceImage": "a" }, "mode": "Always" }),
            "InvalidRequestContent",
            "ImportMode",
        ),
    ];
    for (body, code, needle) in cases {
        let (r, _) = import(&env, None, body).await;
        assert_eq!((r.status, r.code()), (400, code), "{:?}", r.body);
        assert!(r.message().contains(needle), "{}", r.message());
    }
    assert!(env.sim.imports().is_empty());
}

#[tokio::test]
async fn patch_to_abac_cuts_off_acr_pull() {
    let env = pull_env(|_| {}).await;
    grant(&env, &registry_id("acrOne"), roles::ACR_PULL, KUBELET);
    assert_pulled(&probe(&env, "aks-msi", HELLO).await, HELLO);
    let url = format!("{}?api-version={V_ACR}", registry_id("acrOne"));
    let r = env
        .arm(Method::PATCH, &url, Some(json!({ "tags": { "mode": "abac" }, "properties": { "roleAssignmentMode": "AbacRepositoryPermissions" } })))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["properties"]["roleAssignmentMode"], "AbacRepositoryPermissions");
    assert_eq!(r.body["tags"], json!({ "mode": "abac" }));
    assert_eq!(
        env.arm(Method::GET, &url, None).await.body["tags"],
        json!({ "mode": "abac" })
    );
    assert_eq!(env.sim.call_count("Registries_Update"), 1);
    assert_failed(&probe(&env, "aks-msi", HELLO).await, "401 Unauthorized");

    let r = env
        .arm(
            Method::PATCH,
            &url,
            Some(json!({ "properties": { "publicNetworkAccess": "Sometimes" } })),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "InvalidRequestContent"), "{:?}", r.body);
    assert!(r.message().contains("PublicNetworkAccess"), "{}", r.message());
    let r = env
        .arm(Method::PATCH, &url, Some(json!({ "properties": { "networkRuleSet": { "defaultAction": "Deny", "ipRules": [{ "value": "1.2.3.4/40" }] } } })))
        .await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    let reader = env
        .token_for(READER_CLIENT, "https://management.azure.com/.default")
        .await;
    let r = env
        .send(Method::PATCH, &url, Some(&reader), Some(json!({ "tags": {} })))
        .await;
    assert_eq!((r.status, r.code()), (403, "AuthorizationFailed"), "{:?}", r.body);
    assert!(
        r.message().contains("Microsoft.ContainerRegistry/registries/write"),
        "{}",
        r.message()
    );
}

#[tokio::test]
async fn cluster_put_replaces_the_kubelet_identity() {
    let env = pull_env(|w| w["behaviour"]["managedClusterUpdateSeconds"] = json!(0.1)).await;
    grant(&env, &registry_id("acrOne"), roles::ACR_PULL, KUBELET);
    assert_pulled(&probe(&env, "aks-msi", HELLO).await, HELLO);
    let url = format!("{}?api-version={V_AKS}", cluster_path("aks-msi"));
    let mut body = env.arm(Method::GET, &url, None).await.body;
    let uami = format!(
        "/subscriptions/{SUB}/resourcegroups/{RG}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/uami-pull"
    );
    body["properties"]["identityProfile"]["kubeletidentity"] = json!({ "resourceId": "/subscriptions/x/nope" });
    let r = env.arm(Method::PUT, &url, Some(body.clone())).await;
    assert_eq!((r.status, r.code()), (400, "InvalidParameter"), "{:?}", r.body);
    body["properties"]["identityProfile"]["kubeletidentity"] = json!({ "resourceId": uami.to_uppercase() });
    let r = env.arm(Method::PUT, &url, Some(body)).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let k = &env.arm(Method::GET, &url, None).await.body["properties"]["identityProfile"]["kubeletidentity"];
    assert_eq!(k["objectId"], UAMI_PRINCIPAL);
    assert_eq!(k["clientId"], UAMI_CLIENT);
    assert_eq!(k["resourceId"], uami);
    // The new identity holds nothing yet.
    assert_failed(&probe(&env, "aks-msi", HELLO).await, "401 Unauthorized");
    grant(&env, &registry_id("acrOne"), roles::ACR_PULL, UAMI_PRINCIPAL);
    assert_pulled(&probe(&env, "aks-msi", HELLO).await, HELLO);
}

#[tokio::test]
async fn registry_get_reflects_network_settings_and_world_checks_them() {
    let env = pull_env(|w| {
        let reg = &mut w["subscriptions"][0]["resourceGroups"][0]["registries"][1];
        reg["dataEndpointEnabled"] = json!(true);
        reg["networkRuleSet"] = json!({ "defaultAction": "Deny", "ipRules": [{ "value": "20.50.0.0/24" }] });
        reg["privateEndpointConnections"] = json!([{ "name": "pe1", "status": "Pending" }]);
        reg["tags"] = json!({ "env": "prod" });
    })
    .await;
    let r = env
        .arm(
            Method::GET,
            &format!("{}?api-version={V_ACR}", registry_id("acrabac")),
            None,
        )
        .await;
    let p = &r.body["properties"];
    assert_eq!(p["dataEndpointEnabled"], true);
    assert_eq!(
        p["dataEndpointHostNames"],
        json!(["acrabac.westeurope.data.azurecr.io"])
    );
    assert_eq!(
        p["networkRuleSet"],
        json!({ "defaultAction": "Deny", "ipRules": [{ "action": "Allow", "value": "20.50.0.0/24" }] })
    );
    assert_eq!(p["publicNetworkAccess"], "Enabled");
    assert_eq!(p["anonymousPullEnabled"], false);
    let pe = &p["privateEndpointConnections"][0];
    assert_eq!(
        pe["id"],
        format!("{}/privateEndpointConnections/pe1", registry_id("acrabac"))
    );
    assert_eq!(
        pe["properties"]["privateLinkServiceConnectionState"]["status"],
        "Pending"
    );
    assert_eq!(pe["properties"]["provisioningState"], "Succeeded");
    assert_eq!(r.body["tags"], json!({ "env": "prod" }));

    let mut w = world();
    w["subscriptions"][0]["resourceGroups"][0]["registries"][0]["publicNetworkAccess"] = json!("Off");
    let err = World::from_json(&w.to_string()).unwrap_err();
    assert!(format!("{err:#}").contains("publicNetworkAccess"), "{err:#}");
    let mut w = world();
    w["subscriptions"][0]["resourceGroups"][0]["registries"][0]["networkRuleSet"] =
        json!({ "defaultAction": "Deny", "ipRules": [{ "value": "not-an-ip" }] });
    assert!(World::from_json(&w.to_string()).is_err());
}
