//! `POST /v1/checks`: the verdict and each finding, produced by a simulated Azure that has
//! exactly what the finding is about.
use chrono::{Duration, Utc};
use serde_json::{Value, json};

use azure_simulator::{RoleAssignmentRecord, RoleDefinition, RolePermission, World};

use crate::azure_app::*;

const GROUP: &str = "9a0b0000-0000-4000-8000-000000000001";
const CUSTOM_PULLER: &str = "c5a1e000-0000-4000-8000-000000000001";

async fn check(a: &AzureApp, cluster: &str, registry: &str) -> Value {
    let r = a
        .app
        .post_json("/v1/checks", &json!({ "cluster": cluster, "registry": registry }))
        .await;
    let job = a.run(r).await;
    assert_eq!(job["state"], "succeeded", "a check reports, it does not fail: {job:#}");
    assert_eq!(job["kind"], "check");
    job["result"].clone()
}

fn codes(result: &Value) -> Vec<(String, String)> {
    result["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["code"].as_str().unwrap().to_string(),
                f["severity"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn finding<'a>(result: &'a Value, code: &str) -> &'a Value {
    result["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == code)
        .unwrap_or_else(|| panic!("no {code} in {result:#}"))
}

/// An assignment made long enough ago to be effective.
fn settled(name: &str, scope: &str, role: &str, principal: &str, principal_type: &str) -> RoleAssignmentRecord {
    let mut rec = RoleAssignmentRecord::new(name, scope, role, principal);
    rec.principal_type = Some(principal_type.into());
    rec.created_on = Some(Utc::now() - Duration::hours(30));
    rec
}

fn rg() -> String {
    format!("/subscriptions/{SUB1}/resourceGroups/rg-aks-demo")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_grant_cannot_pull_and_says_how_to_fix_it() {
    let a = AzureApp::spawn(demo_world()).await;
    let r = check(&a, &cluster("aks-demo"), "acrdemo").await;
    assert_eq!(r["verdict"], "cannotPull", "{r:#}");
    assert_eq!(codes(&r), [("NoPullGrant".to_string(), "error".to_string())]);
    let f = finding(&r, "NoPullGrant");
    assert!(f["fix"].as_str().unwrap().contains("/v1/attachments"));
    assert_eq!(r["principal"]["objectId"], KUBELET);
    assert_eq!(r["registry"]["id"], registry("acrdemo"));
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_attach_may_not_be_effective_yet_and_a_settled_grant_can_pull() {
    let a = AzureApp::spawn(demo_world()).await;
    let job = a.run(a.attach(&cluster("aks-demo"), &registry("acrdemo")).await).await;
    assert_eq!(job["state"], "succeeded");
    let r = check(&a, &cluster("aks-demo"), &registry("acrdemo")).await;
    assert_eq!(r["verdict"], "unknown", "{r:#}");
    let f = finding(&r, "GrantMayNotBeEffectiveYet");
    assert_eq!(f["evidence"]["assignmentId"], job["result"]["assignmentId"]);
    assert!(f["message"].as_str().unwrap().contains("10 minutes"));

    let b = AzureApp::spawn(demo_world()).await;
    b.sim.insert_role_assignment(settled(
        "0d5c0000-0000-4000-8000-000000000001",
        &registry("acrdemo"),
        ACR_PULL,
        KUBELET,
        "ServicePrincipal",
    ));
    let r = check(&b, &cluster("aks-demo"), "acrdemo").await;
    assert_eq!(r["verdict"], "canPull", "{r:#}");
    assert_eq!(codes(&r), [("PullGranted".to_string(), "info".to_string())]);
    assert!(
        finding(&r, "PullGranted")["message"]
            .as_str()
            .unwrap()
            .contains("directly at the registry")
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acr_pull_on_an_abac_registry_is_the_wrong_role() {
    let a = AzureApp::spawn(demo_world()).await;
    a.sim.insert_role_assignment(settled(
        "0d5c0000-0000-4000-8000-000000000002",
        &registry("acrabac"),
        ACR_PULL,
        KUBELET,
        "ServicePrincipal",
    ));
    let r = check(&a, &cluster("aks-demo"), "acrabac").await;
    assert_eq!(r["verdict"], "cannotPull", "{r:#}");
    let wrong = finding(&r, "WrongRoleForMode");
    assert_eq!(wrong["evidence"]["roleAssignmentMode"], "AbacRepositoryPermissions");
    assert!(wrong["fix"].as_str().unwrap().contains("Repository Reader"));
    assert_eq!(finding(&r, "NoPullGrant")["severity"], "error");

    // Repository Reader is what such a registry honours.
    a.sim.insert_role_assignment(settled(
        "0d5c0000-0000-4000-8000-000000000003",
        &registry("acrabac"),
        REPOSITORY_READER,
        KUBELET,
        "ServicePrincipal",
    ));
    let r = check(&a, &cluster("aks-demo"), "acrabac").await;
    assert_eq!(r["verdict"], "canPull", "{r:#}");
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inherited_custom_roles_and_group_grants_count() {
    let mut world: World = demo_world();
    world.role_definitions.push(RoleDefinition {
        id: CUSTOM_PULLER.into(),
        role_name: "Image Puller (custom)".into(),
        description: String::new(),
        role_type: "CustomRole".into(),
        permissions: vec![RolePermission {
            actions: vec!["Microsoft.ContainerRegistry/registries/pull/read".into()],
            ..Default::default()
        }],
        assignable_scopes: vec!["/".into()],
    });
    let a = AzureApp::spawn(world).await;
    a.sim.insert_role_assignment(settled(
        "0d5c0000-0000-4000-8000-000000000004",
        &rg(),
        CUSTOM_PULLER,
        KUBELET,
        "ServicePrincipal",
    ));
    let r = check(&a, &cluster("aks-demo"), "acrdemo").await;
    assert_eq!(r["verdict"], "canPull", "{r:#}");
    let f = finding(&r, "PullGranted");
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains(&format!("inherited from {}", rg())),
        "{f:#}"
    );
    assert_eq!(f["evidence"]["role"]["name"], "Image Puller (custom)");

    // Through a group at the registry: counted, with the group named.
    let b = AzureApp::spawn(demo_world()).await;
    b.sim.update_world(|w| {
        w.directory
            .iter_mut()
            .find(|p| p.object_id == GROUP)
            .unwrap()
            .members
            .push(KUBELET.into())
    });
    b.sim.insert_role_assignment(settled(
        "0d5c0000-0000-4000-8000-000000000005",
        &registry("acrdemo"),
        ACR_PULL,
        GROUP,
        "Group",
    ));
    let r = check(&b, &cluster("aks-demo"), "acrdemo").await;
    assert_eq!(r["verdict"], "canPull", "{r:#}");
    let f = finding(&r, "PullGranted");
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains(&format!("through the group {GROUP}")),
        "{f:#}"
    );
    assert_eq!(f["evidence"]["principalType"], "Group");
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_cluster_or_registry_is_a_finding_and_the_sp_cluster_is_resolved() {
    let a = AzureApp::spawn(demo_world()).await;
    let r = check(&a, &cluster("aks-gone"), "acrdemo").await;
    assert_eq!(r["verdict"], "cannotPull");
    assert_eq!(finding(&r, "ClusterNotFound")["severity"], "error");
    let r = check(&a, &cluster("aks-demo"), "acrnowhere").await;
    assert_eq!(finding(&r, "RegistryNotFound")["severity"], "error");
    assert!(r["registry"].is_null());

    let r = check(&a, &cluster("aks-legacy-sp"), "acrdemo").await;
    assert_eq!(r["principal"]["source"], "servicePrincipal", "{r:#}");
    assert_eq!(r["principal"]["objectId"], LEGACY_SP_OBJECT);
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_check_requests_are_refused_and_change_nothing() {
    let a = AzureApp::spawn(demo_world()).await;
    for (body, code) in [
        (
            json!({ "cluster": cluster("aks-demo"), "registry": "acrdemo", "image": "hello:v1" }),
            "ProbeRequired",
        ),
        (
            json!({ "cluster": cluster("aks-demo"), "registry": "acrdemo", "probe": true, "image": "hello:v1; reboot" }),
            "InvalidImage",
        ),
        (
            json!({ "cluster": "aks-demo", "registry": "acrdemo" }),
            "InvalidClusterId",
        ),
        (
            json!({ "cluster": cluster("aks-demo"), "registry": "acrdemo", "extra": 1 }),
            "InvalidRequestContent",
        ),
    ] {
        let r = a.app.post_json("/v1/checks", &body).await;
        assert_eq!(r.status(), 400, "{body}");
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"]["code"], code, "{e:#}");
    }
    assert_eq!(a.app.count_jobs().await, 0);
    a.stop().await;
}
