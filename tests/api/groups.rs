//! Attach and detach through an Entra group, end to end: the group's grant, the membership, the
//! persisted wait for ARM to show the grant, budgets running out, and a restart mid-wait.
use serde_json::{Value, json};
use std::time::{Duration, Instant};

use azure_simulator::{Simulator, World};

use acr_attach::config::Config;

use crate::azure_app::*;
use crate::helpers::{TestApp, TestDb, test_config};

/// `acr-pullers` in the demo world.
pub const GROUP: &str = "9a0b0000-0000-4000-8000-000000000001";

fn with_delays(graph_ms: u64, arm_ms: u64) -> World {
    let mut w = demo_world();
    w.behaviour.group_membership_graph_delay_ms = graph_ms;
    w.behaviour.group_membership_arm_delay_ms = arm_ms;
    w
}

async fn attach_via(a: &AzureApp, registry: &str, group: &str) -> reqwest::Response {
    a.app
        .post_json(
            "/v1/attachments",
            &json!({ "cluster": cluster("aks-demo"), "registry": registry, "group": group }),
        )
        .await
}

async fn detach_via(a: &AzureApp, registry: &str, body: Value) -> reqwest::Response {
    let mut b = json!({ "cluster": cluster("aks-demo"), "registry": registry });
    b.as_object_mut().unwrap().extend(body.as_object().unwrap().clone());
    a.app.post_json("/v1/detachments", &b).await
}

fn of_type(events: &[Value], t: &str) -> Vec<Value> {
    events.iter().filter(|e| e["type"] == t).cloned().collect()
}

/// Successful calls of a simulator operation (what actually changed Azure).
fn succeeded(sim: &Simulator, operation: &str) -> usize {
    sim.calls()
        .iter()
        .filter(|c| c.operation == operation && (200..300).contains(&c.status) && !c.dropped)
        .count()
}

async fn job_id(r: reqwest::Response) -> String {
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert!(status == 202 || status == 200, "{status}: {v:#}");
    v["id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_attach_within_the_budget_succeeds_and_records_the_wait() {
    let a = AzureApp::spawn(with_delays(300, 1500)).await;
    let id = job_id(attach_via(&a, &registry("acrdemo"), GROUP).await).await;

    // While ARM does not show the grant yet, the job waits (no worker slot) and says for what.
    let waiting = a.app.wait_for_state(&id, &["waiting"], Duration::from_secs(10)).await;
    assert_eq!(waiting["wait"]["condition"], "groupGrantEffective", "{waiting:#}");
    assert!(waiting["wait"]["since"].is_string() && waiting["wait"]["nextCheckAt"].is_string());
    assert!(waiting["wait"]["message"].as_str().unwrap().contains(GROUP));
    // The gauge is read from the database at scrape time; the recorder is process-wide and
    // other tests' services scrape their own databases concurrently, so only its presence, with
    // this condition as its label, is this test's to check.
    let metrics = a.app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("acr_attach_jobs_waiting{condition=\"groupGrantEffective\"}"),
        "{metrics}"
    );

    let job = a.app.wait_finished(&id, Duration::from_secs(15)).await;
    assert_eq!(job["state"], "succeeded", "{job:#}");
    assert_eq!(job["attempts"], 0, "waiting consumed no attempt");
    let r = &job["result"];
    assert_eq!(r["path"], "group");
    assert_eq!(r["group"]["id"], GROUP);
    assert_eq!(r["group"]["displayName"], "acr-pullers");
    assert_eq!(r["membershipAdded"], true);
    assert_eq!(r["groupAssignment"]["outcome"], "created");
    assert!(r["propagation"]["waitedSeconds"].as_f64().unwrap() >= 1.0, "{r:#}");
    assert!(r["uncertain"].as_str().unwrap().contains("24 hours"), "{r:#}");

    // Azure: the group holds AcrPull; the kubelet identity is a member and has no direct grant.
    let grants = a.assignments_at(&registry("acrdemo"), GROUP);
    assert_eq!(grants.len(), 1);
    assert_eq!(grants[0].principal_type.as_deref(), Some("Group"));
    assert!(grants[0].role_definition_id.to_lowercase().ends_with(ACR_PULL));
    assert_eq!(r["groupAssignment"]["name"], grants[0].name.as_str());
    assert!(a.assignments_at(&registry("acrdemo"), KUBELET).is_empty());
    assert!(a.sim.group_members(GROUP).contains(&KUBELET.to_string()));

    // Every poll is in the timeline: not yet, ..., then satisfied.
    let events = a.app.events(&id).await;
    let polls: Vec<Value> = of_type(&events, "poll")
        .into_iter()
        .filter(|p| p["data"]["condition"] == "groupGrantEffective")
        .collect();
    assert!(polls.len() >= 2, "{polls:#?}");
    assert!(polls[..polls.len() - 1].iter().all(|p| p["data"]["satisfied"] == false));
    assert_eq!(polls.last().unwrap()["data"]["satisfied"], true);
    assert!(
        of_type(&events, "waiting")
            .iter()
            .any(|w| w["data"]["condition"] == "groupGrantEffective")
    );

    let view: Value = a
        .app
        .get("/v1/attachments?registry=acrdemo")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(view["value"][0]["via"], format!("group:{GROUP}"));
    assert_eq!(view["value"][0]["membershipAdded"], true);
    assert_eq!(view["value"][0]["state"], "attached");
    let metrics = a.app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("acr_attach_propagation_seconds_count{condition=\"groupGrantEffective\"}"),
        "time to propagation is measured"
    );
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_attach_fails_clearly_when_propagation_outlasts_the_budget() {
    // ARM shows the membership after a minute; the test budget is 4 s.
    let a = AzureApp::spawn(with_delays(0, 60_000)).await;
    let started = Instant::now();
    let job = a.run(attach_via(&a, "acrdemo", GROUP).await).await;
    assert_eq!(job["state"], "failed", "{job:#}");
    assert_eq!(job["error"]["code"], "GroupGrantNotEffective");
    let msg = job["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("groupGrantEffective") && msg.contains("after 4 s"),
        "{msg}"
    );
    assert!(msg.contains(KUBELET) && msg.contains(GROUP), "{msg}");
    assert!(started.elapsed() < Duration::from_secs(15), "{:?}", started.elapsed());
    // What was done stays done (and is known to acr-attach, so a detach can undo it).
    assert_eq!(a.assignments_at(&registry("acrdemo"), GROUP).len(), 1);
    assert!(a.sim.group_members(GROUP).contains(&KUBELET.to_string()));
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_attach_twice_makes_one_grant_and_one_membership() {
    let a = AzureApp::spawn(with_delays(200, 400)).await;
    let first = a.run(attach_via(&a, &registry("acrdemo"), GROUP).await).await;
    assert_eq!(first["state"], "succeeded", "{first:#}");
    let second = a.run(attach_via(&a, "acrdemo", GROUP).await).await;
    assert_eq!(second["state"], "succeeded", "{second:#}");
    assert_eq!(second["result"]["groupAssignment"]["outcome"], "alreadyPresent");
    assert_eq!(second["result"]["membership"], "alreadyMember");
    assert_eq!(second["result"]["membershipAdded"], false);
    assert!(
        second["result"]["uncertain"]
            .as_str()
            .unwrap()
            .contains("already a member"),
        "{second:#}"
    );
    assert_eq!(a.assignments_at(&registry("acrdemo"), GROUP).len(), 1);
    assert_eq!(
        succeeded(&a.sim, "RoleAssignments_Create"),
        2,
        "one create, one idempotent PUT"
    );
    assert_eq!(
        a.sim
            .calls()
            .iter()
            .filter(|c| c.operation == "RoleAssignments_Create" && c.status == 201)
            .count(),
        1
    );
    assert_eq!(succeeded(&a.sim, "Graph_Groups_AddMember"), 1, "one membership add");
    assert_eq!(a.sim.group_members(GROUP).iter().filter(|m| *m == KUBELET).count(), 1);
    // The direct and the group request are different jobs of the same pair.
    assert_eq!(first["target"], second["target"]);
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_detach_removes_only_the_membership_acr_attach_added() {
    let a = AzureApp::spawn(demo_world()).await;
    let attached = a.run(attach_via(&a, "acrdemo", GROUP).await).await;
    assert_eq!(attached["result"]["membershipAdded"], true, "{attached:#}");

    let job = a.run(detach_via(&a, "acrdemo", json!({ "group": GROUP })).await).await;
    assert_eq!(job["state"], "succeeded", "{job:#}");
    let r = &job["result"];
    assert_eq!(r["membership"]["outcome"], "removed", "{r:#}");
    assert!(!a.sim.group_members(GROUP).contains(&KUBELET.to_string()));
    // The group's grant serves other members: kept, and said so.
    assert_eq!(a.assignments_at(&registry("acrdemo"), GROUP).len(), 1);
    assert!(
        r["kept"][0]["reason"].as_str().unwrap().contains("removeGroupGrant"),
        "{r:#}"
    );
    assert!(r["effective"].as_str().unwrap().contains("24 hours"));
    let view: Value = a
        .app
        .get("/v1/attachments?registry=acrdemo")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(view["value"][0]["state"], "detached");

    // Explicitly asked: the group's grant goes too.
    let job = a
        .run(detach_via(&a, "acrdemo", json!({ "group": GROUP, "removeGroupGrant": true })).await)
        .await;
    assert_eq!(job["state"], "succeeded", "{job:#}");
    assert_eq!(job["result"]["deleted"].as_array().unwrap().len(), 1);
    assert!(a.assignments_at(&registry("acrdemo"), GROUP).is_empty());
    assert_eq!(
        job["result"]["membership"]["outcome"], "kept",
        "already removed, no longer acr-attach's"
    );
    assert_eq!(a.sim.call_count("Graph_Groups_RemoveMember"), 1);
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_membership_that_existed_before_or_is_still_needed_is_kept() {
    let mut world = demo_world();
    let other = "9a0b0000-0000-4000-8000-000000000002";
    world.directory.push(
        serde_json::from_value(json!({
            "objectId": other, "type": "Group", "displayName": "platform-readers", "members": [KUBELET]
        }))
        .unwrap(),
    );
    let a = AzureApp::spawn(world).await;

    // A member before: attach adds nothing, detach removes nothing.
    let attached = a.run(attach_via(&a, "acrdemo", other).await).await;
    assert_eq!(attached["result"]["membership"], "alreadyMember", "{attached:#}");
    let job = a.run(detach_via(&a, "acrdemo", json!({ "group": other })).await).await;
    assert_eq!(job["result"]["membership"]["outcome"], "kept", "{job:#}");
    assert!(
        job["result"]["membership"]["reason"]
            .as_str()
            .unwrap()
            .contains("did not add"),
        "{job:#}"
    );
    assert!(a.sim.group_members(other).contains(&KUBELET.to_string()));

    // One membership serving two registries: detaching one keeps it for the other.
    for reg in ["acrdemo", "acrabac"] {
        let j = a.run(attach_via(&a, reg, GROUP).await).await;
        assert_eq!(j["state"], "succeeded", "{j:#}");
    }
    let job = a.run(detach_via(&a, "acrdemo", json!({ "group": GROUP })).await).await;
    assert_eq!(job["result"]["membership"]["outcome"], "kept", "{job:#}");
    assert!(
        job["result"]["membership"]["reason"]
            .as_str()
            .unwrap()
            .contains(&registry("acrabac")),
        "{job:#}"
    );
    assert!(a.sim.group_members(GROUP).contains(&KUBELET.to_string()));
    let job = a.run(detach_via(&a, "acrabac", json!({ "group": GROUP })).await).await;
    assert_eq!(job["result"]["membership"]["outcome"], "removed", "{job:#}");
    assert!(!a.sim.group_members(GROUP).contains(&KUBELET.to_string()));
    assert_eq!(a.sim.call_count("Graph_Groups_RemoveMember"), 1);
    a.stop().await;
}

/// The service configuration `AzureApp` uses, kept so a second replica can be started on the
/// same database and simulator.
fn config_for(sim: &Simulator, world: &World, db: &TestDb, adjust: impl FnOnce(&mut Config)) -> Config {
    let mut config = test_config(db);
    acr_attach::simulated::point_at(sim, world, &mut config).expect("pointed at the simulator");
    adjust(&mut config);
    config
}

async fn replica(config: Config, db: TestDb) -> TestApp {
    TestApp::spawn_service(config, db).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_during_the_wait_resumes_it_without_repeating_writes() {
    let world = with_delays(0, 4000);
    let sim = azure_simulator::start(world.clone(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let db = TestDb::new().await;
    let config = config_for(&sim, &world, &db, |c| {
        c.ops.group_propagation_budget = Duration::from_secs(20)
    });
    let app = replica(config.clone(), db).await;
    let a = AzureApp { app, sim };
    let id = job_id(attach_via(&a, "acrdemo", GROUP).await).await;
    let before = a.app.wait_for_state(&id, &["waiting"], Duration::from_secs(10)).await;
    assert_eq!(before["wait"]["condition"], "groupGrantEffective", "{before:#}");
    let writes = |sim: &Simulator| {
        (
            sim.call_count("RoleAssignments_Create"),
            sim.call_count("Graph_Groups_AddMember"),
        )
    };
    assert_eq!(writes(&a.sim), (1, 1));
    let resolving = [
        "ManagedClusters_Get",
        "Registries_Get",
        "Graph_Groups_Get",
        "Graph_CheckMemberGroups",
    ];
    let reads_before: Vec<usize> = resolving.iter().map(|op| a.sim.call_count(op)).collect();

    // Stop the replica while the job waits; start another on the same database.
    let AzureApp { app, sim } = a;
    let db = app.shutdown().await;
    let a = AzureApp {
        app: replica(config, db).await,
        sim,
    };
    let job = a.app.wait_finished(&id, Duration::from_secs(20)).await;
    assert_eq!(job["state"], "succeeded", "{job:#}");
    assert!(job["runs"].as_i64().unwrap() >= 2, "it ran on both replicas: {job:#}");

    // Resumed, not restarted: nothing was resolved, granted or added again...
    assert_eq!(writes(&a.sim), (1, 1), "no duplicate ARM or Graph writes");
    for (op, before) in resolving.iter().zip(reads_before) {
        assert_eq!(a.sim.call_count(op), before, "{op} again after the restart");
    }
    assert_eq!(a.sim.call_count("ManagedClusters_Get"), 1);
    // ...and the wait's clock kept running across the restart.
    let polls = of_type(&a.app.events(&id).await, "poll");
    let since: Vec<&Value> = polls
        .iter()
        .map(|p| &p["data"]["waitingSince"])
        .filter(|s| !s.is_null())
        .collect();
    assert!(since.len() >= 2 && since.iter().all(|s| *s == since[0]), "{polls:#?}");
    assert!(
        job["result"]["propagation"]["waitedSeconds"].as_f64().unwrap() >= 3.0,
        "{job:#}"
    );
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_requests_are_validated() {
    let a = AzureApp::spawn(demo_world()).await;
    let r = attach_via(&a, "acrdemo", "acr-pullers").await;
    let body = crate::helpers::assert_error(r, reqwest::StatusCode::BAD_REQUEST, "InvalidGroupId").await;
    assert_eq!(body["error"]["target"], "group");
    let r = detach_via(&a, "acrdemo", json!({ "removeGroupGrant": true })).await;
    crate::helpers::assert_error(r, reqwest::StatusCode::BAD_REQUEST, "GroupRequired").await;
    let r = a
        .app
        .post_json(
            "/v1/attachments",
            &json!({ "cluster": cluster("aks-demo"), "registry": "acrdemo", "removeGroupGrant": true }),
        )
        .await;
    crate::helpers::assert_error(r, reqwest::StatusCode::BAD_REQUEST, "InvalidRequestContent").await;
    // A GUID that is no group: waited for within the principal budget (it may be brand new),
    // then a clear failure, and nothing granted.
    let job = a.run(attach_via(&a, "acrdemo", KUBELET).await).await;
    assert_eq!(job["state"], "failed", "{job:#}");
    assert_eq!(job["error"]["code"], "GroupNotFound");
    assert!(a.sim.role_assignments().is_empty());
    assert_eq!(a.app.count_jobs().await, 1, "invalid requests make no job");
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_membership_response_still_counts_as_added_by_acr_attach() {
    let mut world = demo_world();
    world.behaviour.drop_connection_rate = 0.35;
    world.behaviour.fault_seed = FAULT_SEED;
    let a = AzureApp::spawn(world).await;
    let job = a.run(attach_via(&a, "acrdemo", GROUP).await).await;
    assert_eq!(job["state"], "succeeded", "{job:#}");
    let adds: Vec<_> = a
        .sim
        .calls()
        .into_iter()
        .filter(|c| c.operation == "Graph_Groups_AddMember")
        .collect();
    assert!(
        adds.first().is_some_and(|c| c.dropped && c.status == 204),
        "the seed drops the response of the add that worked: {adds:#?}"
    );
    // The retry was told "already a member", and knew that was its own add.
    assert_eq!(job["result"]["membershipAdded"], true, "{job:#}");
    assert_eq!(a.assignments_at(&registry("acrdemo"), GROUP).len(), 1);
    a.sim.update_world(|w| w.behaviour.drop_connection_rate = 0.0);
    let job = a.run(detach_via(&a, "acrdemo", json!({ "group": GROUP })).await).await;
    assert_eq!(job["result"]["membership"]["outcome"], "removed", "{job:#}");
    a.stop().await;
}

/// A seed whose fault sequence drops the first membership add's response (checked by the test).
const FAULT_SEED: u64 = 1;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_graph_permission_fails_naming_it() {
    let mut world = demo_world();
    world.callers[0].graph_permissions = vec!["Application.Read.All".into(), "Directory.Read.All".into()];
    let a = AzureApp::spawn(world).await;
    let job = a.run(attach_via(&a, "acrdemo", GROUP).await).await;
    assert_eq!(job["state"], "failed", "{job:#}");
    assert_eq!(job["error"]["code"], "AuthorizationFailed");
    let msg = job["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("GroupMember.ReadWrite.All") && msg.contains("Microsoft Graph application permission"),
        "{msg}"
    );
    assert!(!a.sim.group_members(GROUP).contains(&KUBELET.to_string()));
    a.stop().await;
}
