//! Detach end to end, and what it leaves alone.
use serde_json::Value;

use azure_simulator::RoleAssignmentRecord;

use crate::azure_app::*;

const OTHER_PRINCIPAL: &str = "5e6ac5b0-0000-4000-8000-000000000001";
const ACR_PUSH: &str = "8311e382-0749-4cb8-b61a-304f252e45ec";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detach_removes_exact_scope_pull_grants_of_the_principal_only_and_reports_inherited_ones() {
    let a = AzureApp::spawn(demo_world()).await;
    let attached = a.run(a.attach(&cluster("aks-demo"), &registry("acrdemo")).await).await;
    assert_eq!(attached["state"], "succeeded");
    let rg = format!("/subscriptions/{SUB1}/resourceGroups/rg-aks-demo");
    let cli = uuid::Uuid::new_v4().to_string();
    let inherited = uuid::Uuid::new_v4().to_string();
    let someone_else = uuid::Uuid::new_v4().to_string();
    let push = uuid::Uuid::new_v4().to_string();
    a.sim
        .insert_role_assignment(RoleAssignmentRecord::new(&cli, &registry("acrdemo"), ACR_PULL, KUBELET));
    a.sim
        .insert_role_assignment(RoleAssignmentRecord::new(&inherited, &rg, ACR_PULL, KUBELET));
    a.sim.insert_role_assignment(RoleAssignmentRecord::new(
        &someone_else,
        &registry("acrdemo"),
        ACR_PULL,
        OTHER_PRINCIPAL,
    ));
    a.sim.insert_role_assignment(RoleAssignmentRecord::new(
        &push,
        &registry("acrdemo"),
        ACR_PUSH,
        KUBELET,
    ));

    let job = a.run(a.detach(&cluster("aks-demo"), &registry("acrdemo")).await).await;
    assert_eq!(job["state"], "succeeded", "{job:#}");
    let r = &job["result"];
    assert_eq!(r["outcome"], "deleted");
    assert_eq!(r["deleted"].as_array().unwrap().len(), 2, "ours and the CLI's: {r:#}");
    let kept: Vec<&str> = r["kept"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap())
        .collect();
    assert!(
        kept.iter().any(|k| k.ends_with(&inherited)),
        "the inherited grant is reported: {r:#}"
    );

    let left: Vec<String> = a.sim.role_assignments().into_iter().map(|r| r.name).collect();
    assert!(!left.contains(&attached["result"]["assignmentName"].as_str().unwrap().to_string()));
    assert!(!left.contains(&cli));
    for name in [&inherited, &someone_else, &push] {
        assert!(left.contains(name), "{name} must stay");
    }
    let view: Value = a
        .app
        .get("/v1/attachments?registry=acrdemo")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(view["value"][0]["state"], "detached");
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detaching_what_is_not_attached_succeeds_and_says_so() {
    let a = AzureApp::spawn(demo_world()).await;
    let job = a.run(a.detach(&cluster("aks-demo"), "acrshared").await).await;
    assert_eq!(job["state"], "succeeded", "{job:#}");
    assert_eq!(job["result"]["outcome"], "nothingToDelete");
    assert!(job["result"]["message"].as_str().unwrap().contains("nothing to delete"));
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_detach_attach_run_in_order_and_end_attached() {
    let a = AzureApp::spawn(demo_world()).await;
    let mut ids = Vec::new();
    for r in [
        a.attach(&cluster("aks-demo"), "acrdemo").await,
        a.detach(&cluster("aks-demo"), &registry("acrdemo")).await,
        a.attach(&cluster("aks-demo"), &registry("acrdemo")).await,
    ] {
        assert_eq!(r.status(), 202, "three different requests, three jobs");
        ids.push(r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string());
    }
    let mut finished = Vec::new();
    for id in &ids {
        let j = a.app.wait_finished(id, std::time::Duration::from_secs(30)).await;
        assert_eq!(j["state"], "succeeded", "{j:#}");
        finished.push(j["finishedAt"].as_str().unwrap().to_string());
    }
    assert!(
        finished.windows(2).all(|w| w[0] <= w[1]),
        "ran in the order accepted: {finished:?}"
    );
    assert_eq!(a.assignments_at(&registry("acrdemo"), KUBELET).len(), 1);
    a.stop().await;
}

/// The README states these counts; this keeps it honest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arm_calls_per_attach_and_detach() {
    let a = AzureApp::spawn(demo_world()).await;
    let arm_calls = |a: &AzureApp| a.sim.calls().iter().filter(|c| c.operation != "Token").count();
    a.run(a.attach(&cluster("aks-demo"), &registry("acrdemo")).await).await;
    assert_eq!(arm_calls(&a), 3, "attach by id: cluster GET, registry GET, PUT");
    a.sim.clear_calls();
    a.run(a.attach(&cluster("aks-demo"), "acrshared").await).await;
    assert_eq!(arm_calls(&a), 4, "attach by name: + one Resource Graph query");
    a.sim.clear_calls();
    a.run(a.detach(&cluster("aks-demo"), &registry("acrdemo")).await).await;
    assert_eq!(arm_calls(&a), 4, "detach: cluster GET, registry GET, DELETE, list");
    a.stop().await;
}
