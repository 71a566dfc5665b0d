//! Drift: attach, change the simulated Azure behind acr-attach's back, run a sweep (the
//! `verify` job, enqueued through the queue as the scheduler does), and read what
//! `GET /v1/attachments` says; with repair on, the pairs are attached again.
use serde_json::{Value, json};
use std::time::Duration;

use azure_simulator::{KubeletIdentity, ManagedCluster, Principal, Registry, RoleAssignmentRecord, World};

use acr_attach::ops::drift::{SweepInterval, enqueue_sweep};

use crate::azure_app::*;
use crate::helpers::test_config;

/// The demo world's operator (`*` everywhere), who changes Azure "by hand".
const OPERATOR: &str = "0be7a702-0000-4000-8000-000000000001";

fn object_id(n: u32) -> String {
    format!("d71f0000-0000-4000-8000-{n:012}")
}

/// A managed-identity cluster `name` in `rg-aks-demo` whose kubelet identity is `object_id(n)`.
fn add_cluster(w: &mut World, name: &str, n: u32) {
    add_principal(w, n);
    let c: ManagedCluster = serde_json::from_value(json!({ "name": name, "kubeletIdentity": kubelet(n) })).unwrap();
    w.subscriptions[0].resource_groups[0].managed_clusters.push(c);
}

fn kubelet(n: u32) -> Value {
    json!({ "objectId": object_id(n), "clientId": format!("d71fc000-0000-4000-8000-{n:012}") })
}

fn add_principal(w: &mut World, n: u32) {
    let p: Principal = serde_json::from_value(json!({
        "objectId": object_id(n), "type": "ServicePrincipal", "appId": format!("d71fc000-0000-4000-8000-{n:012}"),
        "displayName": format!("kubelet-{n}"), "servicePrincipalType": "ManagedIdentity",
    }))
    .unwrap();
    w.directory.push(p);
}

fn add_registry(w: &mut World, name: &str) {
    let r: Registry = serde_json::from_value(json!({ "name": name, "sku": "Standard" })).unwrap();
    w.subscriptions[0].resource_groups[0].registries.push(r);
}

fn rg_mut(w: &mut World) -> &mut azure_simulator::ResourceGroup {
    &mut w.subscriptions[0].resource_groups[0]
}

/// Run a sweep now, as the scheduler would enqueue it (each call its own window).
async fn sweep(a: &AzureApp) -> Value {
    let settings = test_config(&a.app.db).ops;
    let window = format!("test-{}", uuid::Uuid::new_v4());
    let enq = enqueue_sweep(&a.app.store, &settings, &window)
        .await
        .unwrap()
        .expect("a new sweep is enqueued");
    let job = a
        .app
        .wait_finished(&enq.job.id.to_string(), Duration::from_secs(30))
        .await;
    assert_eq!(job["state"], "succeeded", "{job:#}");
    assert_eq!(job["kind"], "verify");
    job["result"].clone()
}

/// The attachment of `cluster` to the registry named `registry`.
async fn attachment(a: &AzureApp, cluster_name: &str, registry_name: &str) -> Value {
    let r = a
        .app
        .get(&format!(
            "/v1/attachments?cluster={}&registry={registry_name}",
            cluster(cluster_name)
        ))
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let list = v["value"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{v:#}");
    list[0].clone()
}

async fn attach_ok(a: &AzureApp, cluster_name: &str, registry_name: &str) -> Value {
    let job = a
        .run(a.attach(&cluster(cluster_name), &registry(registry_name)).await)
        .await;
    assert_eq!(job["state"], "succeeded", "{job:#}");
    job["result"].clone()
}

/// Delete a role assignment "by hand": an ARM DELETE as the operator.
async fn delete_by_hand(a: &AzureApp, assignment_id: &str) {
    let token = a
        .sim
        .access_token(OPERATOR, "https://management.azure.com/.default")
        .unwrap();
    let client = reqwest::Client::builder()
        .tls_certs_merge(reqwest::Certificate::from_pem_bundle(a.sim.ca_pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    let r = client
        .delete(format!("{}{assignment_id}?api-version=2022-04-01", a.sim.base_url()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

fn assert_drifted(att: &Value, reason: &str) {
    assert_eq!(att["state"], "drifted", "{att:#}");
    assert_eq!(att["driftReason"], reason, "{att:#}");
    assert!(att["driftedAt"].is_string(), "{att:#}");
}

fn assert_attached(att: &Value) {
    assert_eq!(att["state"], "attached", "{att:#}");
    assert!(att["driftReason"].is_null() && att["driftedAt"].is_null(), "{att:#}");
}

fn pull_role(role: &str) -> String {
    format!("/subscriptions/{SUB1}/providers/Microsoft.Authorization/roleDefinitions/{role}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_change_behind_acr_attachs_back_is_a_drift_with_its_reason() {
    let mut w = demo_world();
    for (i, name) in ["aks-gone", "aks-new-identity", "aks-2", "aks-3", "aks-4", "aks-5"]
        .iter()
        .enumerate()
    {
        add_cluster(&mut w, name, i as u32 + 1);
    }
    for name in ["acrgone", "acrmoved", "acrmode"] {
        add_registry(&mut w, name);
    }
    add_principal(&mut w, 99);
    let a = AzureApp::spawn(w).await;

    let deleted = attach_ok(&a, "aks-demo", "acrdemo").await;
    attach_ok(&a, "aks-2", "acrdemo").await; // stays true
    attach_ok(&a, "aks-gone", "acrdemo").await;
    attach_ok(&a, "aks-new-identity", "acrdemo").await;
    attach_ok(&a, "aks-3", "acrgone").await;
    attach_ok(&a, "aks-4", "acrmoved").await;
    attach_ok(&a, "aks-5", "acrmode").await;
    let first = sweep(&a).await;
    assert_eq!(
        (first["checked"].as_i64(), first["attached"].as_i64()),
        (Some(7), Some(7)),
        "{first:#}"
    );
    assert_eq!(first["drifted"], 0, "{first:#}");
    let verified = attachment(&a, "aks-2", "acrdemo").await["verifiedAt"].clone();

    delete_by_hand(&a, deleted["assignmentId"].as_str().unwrap()).await;
    a.sim.update_world(|w| {
        let rg = rg_mut(w);
        rg.managed_clusters.retain(|c| c.name != "aks-gone");
        let c = rg
            .managed_clusters
            .iter_mut()
            .find(|c| c.name == "aks-new-identity")
            .unwrap();
        c.kubelet_identity = Some(serde_json::from_value::<KubeletIdentity>(kubelet(99)).unwrap());
        rg.registries.retain(|r| r.name != "acrgone");
        let moved = rg.registries.iter().position(|r| r.name == "acrmoved").unwrap();
        let moved = rg.registries.remove(moved);
        rg.registries
            .iter_mut()
            .find(|r| r.name == "acrmode")
            .unwrap()
            .role_assignment_mode = "AbacRepositoryPermissions".into();
        w.subscriptions[1].resource_groups[0].registries.push(moved);
    });

    let r = sweep(&a).await;
    assert_eq!(r["checked"], 7, "{r:#}");
    assert_eq!(r["attached"], 1, "{r:#}");
    assert_eq!(r["drifted"], 6, "{r:#}");
    assert_eq!(r["newlyDrifted"], 6, "{r:#}");
    assert_eq!(r["repaired"], 0, "repair is off by default: {r:#}");
    for reason in [
        "assignmentGone",
        "kubeletIdentityChanged",
        "clusterGone",
        "registryGone",
        "registryMoved",
        "modeSwitched",
    ] {
        assert_eq!(r["driftedByReason"][reason], 1, "{reason}: {r:#}");
    }
    assert_drifted(&attachment(&a, "aks-demo", "acrdemo").await, "assignmentGone");
    assert_drifted(
        &attachment(&a, "aks-new-identity", "acrdemo").await,
        "kubeletIdentityChanged",
    );
    assert_drifted(&attachment(&a, "aks-gone", "acrdemo").await, "clusterGone");
    assert_drifted(&attachment(&a, "aks-3", "acrgone").await, "registryGone");
    assert_drifted(&attachment(&a, "aks-4", "acrmoved").await, "registryMoved");
    assert_drifted(&attachment(&a, "aks-5", "acrmode").await, "modeSwitched");
    let kept = attachment(&a, "aks-2", "acrdemo").await;
    assert_attached(&kept);
    assert!(
        kept["verifiedAt"].as_str() > verified.as_str(),
        "verified again: {kept:#}"
    );
    // Where the registry went, and which identity the cluster has now, are in the result.
    let drift = |reason: &str| {
        r["drifts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["reason"] == reason)
            .unwrap()
            .clone()
    };
    assert!(
        drift("registryMoved")["detail"]["movedTo"][0]
            .as_str()
            .unwrap()
            .contains(SUB2)
    );
    assert_eq!(
        drift("kubeletIdentityChanged")["detail"]["kubeletObjectId"],
        object_id(99)
    );
    assert_eq!(drift("modeSwitched")["detail"]["grantedRole"], "AcrPull");

    let metrics = a.app.get("/metrics").await.text().await.unwrap();
    for reason in ["assignmentGone", "clusterGone", "registryMoved"] {
        assert!(
            metrics.contains(&format!("acr_attach_drift_total{{reason=\"{reason}\"}}")),
            "{metrics}"
        );
    }

    // Seen again, a drift is not new: it keeps when it was first seen.
    let before = attachment(&a, "aks-demo", "acrdemo").await;
    let again = sweep(&a).await;
    assert_eq!(
        (again["drifted"].as_i64(), again["newlyDrifted"].as_i64()),
        (Some(6), Some(0)),
        "{again:#}"
    );
    assert_eq!(
        attachment(&a, "aks-demo", "acrdemo").await["driftedAt"],
        before["driftedAt"]
    );
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drifted_pair_granted_again_by_hand_is_attached_again() {
    let a = AzureApp::spawn(demo_world()).await;
    let made = attach_ok(&a, "aks-demo", "acrdemo").await;
    delete_by_hand(&a, made["assignmentId"].as_str().unwrap()).await;
    sweep(&a).await;
    let drifted = attachment(&a, "aks-demo", "acrdemo").await;
    assert_drifted(&drifted, "assignmentGone");

    // Someone grants it again, as `az aks update --attach-acr` would: another (random) name.
    let mut rec = RoleAssignmentRecord::new(
        "0a0a0a0a-0000-4000-8000-000000000001",
        &registry("acrdemo"),
        &pull_role(ACR_PULL),
        KUBELET,
    );
    rec.principal_type = Some("ServicePrincipal".into());
    a.sim.insert_role_assignment(rec);
    let r = sweep(&a).await;
    assert_eq!(
        (r["restored"].as_i64(), r["drifted"].as_i64()),
        (Some(1), Some(0)),
        "{r:#}"
    );
    let back = attachment(&a, "aks-demo", "acrdemo").await;
    assert_attached(&back);
    assert!(back["verifiedAt"].as_str() > drifted["verifiedAt"].as_str(), "{back:#}");
    assert!(
        back["assignmentId"]
            .as_str()
            .unwrap()
            .ends_with("0a0a0a0a-0000-4000-8000-000000000001"),
        "the grant that holds it now is recorded: {back:#}"
    );
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_repair_on_drifted_pairs_are_attached_again_through_attach_jobs() {
    let mut w = demo_world();
    add_cluster(&mut w, "aks-1", 1);
    add_cluster(&mut w, "aks-gone", 2);
    add_cluster(&mut w, "aks-new-identity", 3);
    add_registry(&mut w, "acrmode");
    add_principal(&mut w, 99);
    let a = AzureApp::spawn_configured(w, |c| c.ops.drift.repair_drift = true).await;
    let deleted = attach_ok(&a, "aks-1", "acrdemo").await;
    attach_ok(&a, "aks-gone", "acrdemo").await;
    attach_ok(&a, "aks-new-identity", "acrdemo").await;
    attach_ok(&a, "aks-demo", "acrmode").await;

    delete_by_hand(&a, deleted["assignmentId"].as_str().unwrap()).await;
    a.sim.update_world(|w| {
        let rg = rg_mut(w);
        rg.managed_clusters.retain(|c| c.name != "aks-gone");
        let c = rg
            .managed_clusters
            .iter_mut()
            .find(|c| c.name == "aks-new-identity")
            .unwrap();
        c.kubelet_identity = Some(serde_json::from_value::<KubeletIdentity>(kubelet(99)).unwrap());
        rg.registries
            .iter_mut()
            .find(|r| r.name == "acrmode")
            .unwrap()
            .role_assignment_mode = "AbacRepositoryPermissions".into();
    });

    let r = sweep(&a).await;
    assert_eq!(r["drifted"], 4, "{r:#}");
    assert_eq!(r["repaired"], 3, "all but clusterGone: {r:#}");
    for repair in r["repairs"].as_array().unwrap() {
        let job = a
            .app
            .wait_finished(repair["jobId"].as_str().unwrap(), Duration::from_secs(30))
            .await;
        assert_eq!(job["state"], "succeeded", "{job:#}");
        assert_eq!(job["kind"], "attach");
    }

    // The grants are back: the deleted one, one for the new identity, the ABAC role.
    let acrdemo = registry("acrdemo");
    assert_eq!(a.assignments_at(&acrdemo, &object_id(1)).len(), 1, "re-granted");
    let new_identity = a.assignments_at(&acrdemo, &object_id(99));
    assert_eq!(new_identity.len(), 1, "the new kubelet identity is granted");
    let abac = a.assignments_at(&registry("acrmode"), KUBELET);
    assert!(
        abac.iter().any(|g| g.role_definition_id.ends_with(REPOSITORY_READER)),
        "{abac:?}"
    );
    for (c, reg) in [
        ("aks-1", "acrdemo"),
        ("aks-new-identity", "acrdemo"),
        ("aks-demo", "acrmode"),
    ] {
        assert_attached(&attachment(&a, c, reg).await);
    }
    let moved_on = attachment(&a, "aks-new-identity", "acrdemo").await;
    assert_eq!(moved_on["principalId"], object_id(99), "{moved_on:#}");
    let gone = attachment(&a, "aks-gone", "acrdemo").await;
    assert_drifted(&gone, "clusterGone");
    assert!(
        gone["repairJobId"].is_null(),
        "a gone cluster cannot be repaired: {gone:#}"
    );

    // Repairs are mutations: owned by the repairer, audited.
    let audited: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_record WHERE caller = 'service:drift-repair'")
        .fetch_one(&a.app.pool)
        .await
        .unwrap();
    assert_eq!(audited, 3);

    // The next sweep finds them attached and repairs nothing again.
    let next = sweep(&a).await;
    assert_eq!(
        (next["attached"].as_i64(), next["repaired"].as_i64()),
        (Some(3), Some(0)),
        "{next:#}"
    );
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_attachment_drifts_when_the_groups_grant_is_gone() {
    const GROUP: &str = crate::groups::GROUP;
    let a = AzureApp::spawn(demo_world()).await;
    let r = a
        .app
        .post_json(
            "/v1/attachments",
            &json!({ "cluster": cluster("aks-demo"), "registry": registry("acrdemo"), "group": GROUP }),
        )
        .await;
    let job = a.run(r).await;
    assert_eq!(job["state"], "succeeded", "{job:#}");
    let r = sweep(&a).await;
    assert_eq!(r["attached"], 1, "{r:#}");

    delete_by_hand(&a, job["result"]["assignmentId"].as_str().unwrap()).await;
    sweep(&a).await;
    let att = attachment(&a, "aks-demo", "acrdemo").await;
    assert_eq!(att["via"], format!("group:{GROUP}"));
    assert_drifted(&att, "assignmentGone");
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_that_later_holds_more_than_pull_makes_its_pairs_drift() {
    const GROUP: &str = crate::groups::GROUP;
    let a = AzureApp::spawn(demo_world()).await;
    let r = a
        .app
        .post_json(
            "/v1/attachments",
            &json!({ "cluster": cluster("aks-demo"), "registry": registry("acrdemo"), "group": GROUP }),
        )
        .await;
    assert_eq!(a.run(r).await["state"], "succeeded");
    assert_eq!(sweep(&a).await["attached"], 1);

    // Someone makes the group Contributor on the subscription: every member, the kubelet
    // identity included, now holds far more than pull.
    let mut owner = RoleAssignmentRecord::new(
        "6a0c0000-0000-4000-8000-000000000001",
        &format!("/subscriptions/{SUB1}"),
        "b24988ac-6180-42a0-ab88-20f7382dd24c",
        GROUP,
    );
    owner.principal_type = Some("Group".into());
    a.sim.insert_role_assignment(owner);
    let r = sweep(&a).await;
    assert_eq!(r["driftedByReason"]["groupGrantsMoreThanPull"], 1, "{r:#}");
    let att = attachment(&a, "aks-demo", "acrdemo").await;
    assert_drifted(&att, "groupGrantsMoreThanPull");
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_asked_for_through_the_api_finds_the_drift_now() {
    let a = AzureApp::spawn(demo_world()).await;
    let attached = attach_ok(&a, "aks-demo", "acrdemo").await;
    delete_by_hand(&a, attached["assignmentId"].as_str().unwrap()).await;
    for _ in 0..2 {
        // Twice: a sweep asked for by hand is never mistaken for one already done.
        let r = a.app.client.post(a.app.url("/v1/verifications")).send().await.unwrap();
        assert_eq!(r.status(), 202);
        let job = a.run(r).await;
        assert_eq!(job["kind"], "verify");
        assert_eq!(job["result"]["drifted"], 1, "{job:#}");
    }
    assert_drifted(&attachment(&a, "aks-demo", "acrdemo").await, "assignmentGone");
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweeps_arm_calls_grow_with_registries_not_attachments() {
    let mut w = demo_world();
    for n in 1..=6 {
        add_cluster(&mut w, &format!("aks-{n}"), n);
    }
    let a = AzureApp::spawn(w).await;
    let arm_calls = |a: &AzureApp| a.sim.calls().iter().filter(|c| c.operation != "Token").count();
    let lists = |a: &AzureApp| a.sim.call_count("RoleAssignments_ListForScope");

    // 1 registry × 1 cluster.
    attach_ok(&a, "aks-1", "acrdemo").await;
    a.sim.clear_calls();
    let one = sweep(&a).await;
    let (one_calls, one_lists) = (arm_calls(&a), lists(&a));
    assert_eq!(one_lists, 1, "{:?}", a.sim.calls());
    assert_eq!(
        one_calls,
        3,
        "Resource Graph for clusters and registries, one list: {:?}",
        a.sim.calls()
    );
    assert_eq!(
        one["armCalls"], one_calls,
        "the result counts what the simulator saw: {one:#}"
    );
    assert_eq!(one["registriesRead"], 1);

    // 1 registry × 6 clusters: the same calls.
    for n in 2..=6 {
        attach_ok(&a, &format!("aks-{n}"), "acrdemo").await;
    }
    a.sim.clear_calls();
    let six = sweep(&a).await;
    assert_eq!(six["checked"], 6, "{six:#}");
    assert_eq!(six["attached"], 6, "{six:#}");
    assert_eq!(
        (arm_calls(&a), lists(&a)),
        (one_calls, one_lists),
        "{:?}",
        a.sim.calls()
    );

    // A second registry costs one more list.
    attach_ok(&a, "aks-1", "acrabac").await;
    a.sim.clear_calls();
    let two = sweep(&a).await;
    assert_eq!(two["checked"], 7, "{two:#}");
    assert_eq!((arm_calls(&a), lists(&a)), (one_calls + 1, 2), "{:?}", a.sim.calls());
    assert_eq!(two["registriesRead"], 2);
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_that_schedule_the_same_window_run_one_sweep() {
    let a = AzureApp::spawn(demo_world()).await;
    let settings = test_config(&a.app.db).ops;
    let window = "2026-12-02T10:00:00Z";
    let first = enqueue_sweep(&a.app.store, &settings, window).await.unwrap();
    let second = enqueue_sweep(&a.app.store, &settings, window).await.unwrap();
    let first = first.expect("the first replica enqueues");
    assert!(second.is_none(), "the second replica does not");
    a.app
        .wait_finished(&first.job.id.to_string(), Duration::from_secs(30))
        .await;
    assert!(
        enqueue_sweep(&a.app.store, &settings, window).await.unwrap().is_none(),
        "a window already swept is not enqueued again"
    );

    // Had two jobs of one window been enqueued anyway (a race past the check), the later one
    // skips: it runs after the first (one target) and sees that window swept.
    let extra = settings
        .verify_job(&acr_attach::ops::VerifyArgs { window: window.into() })
        .without_dedup();
    let enq = a.app.store.enqueue_one(&extra).await.unwrap();
    let job = a
        .app
        .wait_finished(&enq.job.id.to_string(), Duration::from_secs(30))
        .await;
    assert_eq!(job["state"], "succeeded", "{job:#}");
    assert_eq!(job["result"]["skipped"], true, "{job:#}");
    assert_eq!(job["result"]["sweptBy"], first.job.id.to_string());
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interval_makes_the_service_sweep_by_itself() {
    let a = AzureApp::spawn_configured(demo_world(), |c| {
        c.ops.drift.verify_interval = SweepInterval(Some(Duration::from_secs(3600)));
    })
    .await;
    attach_ok(&a, "aks-demo", "acrdemo").await;
    // The scheduler enqueues the current window's sweep when it starts.
    let mut sweeps = Vec::new();
    for _ in 0..300 {
        let v: Value = a.app.get("/v1/jobs?kind=verify").await.json().await.unwrap();
        sweeps = v["value"].as_array().unwrap().clone();
        if !sweeps.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(sweeps.len(), 1, "one sweep for the window");
    let window = sweeps[0]["input"]["window"].as_str().unwrap();
    assert!(
        window.ends_with(":00:00Z"),
        "hourly windows start on the hour: {window}"
    );
    let job = a
        .app
        .wait_finished(sweeps[0]["id"].as_str().unwrap(), Duration::from_secs(30))
        .await;
    assert_eq!(job["state"], "succeeded", "{job:#}");
    a.stop().await;
}
