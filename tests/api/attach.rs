//! Attach end to end: HTTP API → queue → worker → ARM client → simulator (HTTPS) → Postgres.
use serde_json::{Value, json};
use std::time::Duration;

use azure_simulator::{PrincipalNotFoundMode, RoleAssignmentRecord};

use crate::azure_app::*;

fn events_of_type(events: &[Value], t: &str) -> Vec<Value> {
    events.iter().filter(|e| e["type"] == t).cloned().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_by_id_grants_acr_pull_to_the_kubelet_identity() {
    let a = AzureApp::spawn(demo_world()).await;
    let job = a.run(a.attach(&cluster("aks-demo"), &registry("acrdemo")).await).await;
    assert_eq!(job["state"], "succeeded", "{job:#}");
    let r = &job["result"];
    assert_eq!(r["outcome"], "created");
    assert_eq!(r["role"]["name"], "AcrPull");
    assert_eq!(r["principal"]["objectId"], KUBELET);
    assert_eq!(r["principal"]["source"], "kubeletIdentity");

    let grants = a.assignments_at(&registry("acrdemo"), KUBELET);
    assert_eq!(grants.len(), 1);
    assert!(grants[0].role_definition_id.to_lowercase().ends_with(ACR_PULL));
    assert_eq!(
        grants[0].principal_type.as_deref(),
        Some("ServicePrincipal"),
        "principalType avoids PrincipalNotFound"
    );
    assert_eq!(r["assignmentName"], grants[0].name.as_str(), "deterministic name");

    // Every ARM call is in the job's timeline, with ARM's request id.
    let calls = events_of_type(&a.app.events(job["id"].as_str().unwrap()).await, "azure_call");
    let mut ops: Vec<&str> = calls.iter().map(|c| c["data"]["operation"].as_str().unwrap()).collect();
    // The cluster and the registry are read at the same time: either may be recorded first.
    ops[..2].sort();
    assert_eq!(ops, ["get_managed_cluster", "get_registry", "put_role_assignment"]);
    assert!(calls.iter().all(|c| c["data"]["requestId"].is_string()));

    let view: Value = a
        .app
        .get(&format!("/v1/attachments?cluster={}", cluster("aks-demo")))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(view["value"][0]["state"], "attached");
    assert_eq!(view["value"][0]["registryId"], registry("acrdemo"));
    assert_eq!(view["value"][0]["principalId"], KUBELET);
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_by_name_finds_a_registry_in_another_subscription() {
    let a = AzureApp::spawn(demo_world()).await;
    let job = a.run(a.attach(&cluster("aks-demo"), "acrshared").await).await;
    assert_eq!(job["state"], "succeeded", "{job:#}");
    assert_eq!(job["result"]["registry"]["id"], registry("acrshared"));
    assert!(
        job["result"]["role"]["id"]
            .as_str()
            .unwrap()
            .starts_with(&format!("/subscriptions/{SUB2}/"))
    );
    assert_eq!(a.assignments_at(&registry("acrshared"), KUBELET).len(), 1);
    assert_eq!(a.sim.call_count("ResourceGraph_Resources"), 1);
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_ambiguous_registry_names_fail_with_what_was_found() {
    let mut world = demo_world();
    // A second "acrdemo" (real registry names are global, but two tenants' views can collide).
    world.subscriptions[1].resource_groups[0]
        .registries
        .push(serde_json::from_value(json!({ "name": "acrdemo" })).unwrap());
    let a = AzureApp::spawn(world).await;
    let job = a.run(a.attach(&cluster("aks-demo"), "acrnothere").await).await;
    assert_eq!(job["state"], "failed");
    assert_eq!(job["error"]["code"], "RegistryNotFound");
    assert!(
        job["error"]["message"].as_str().unwrap().contains(SUB2),
        "names the searched subscriptions: {job:#}"
    );
    assert_eq!(job["attempts"], 1, "not retried");

    let job = a.run(a.attach(&cluster("aks-demo"), "acrdemo").await).await;
    assert_eq!(job["state"], "failed");
    assert_eq!(job["error"]["code"], "AmbiguousRegistryName");
    let msg = job["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains(&format!("/subscriptions/{SUB1}/")) && msg.contains(&format!("/subscriptions/{SUB2}/")),
        "{msg}"
    );
    assert!(a.sim.role_assignments().is_empty(), "nothing was granted");
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attaching_twice_leaves_one_assignment() {
    let a = AzureApp::spawn(demo_world()).await;
    let first = a.run(a.attach(&cluster("aks-demo"), &registry("acrdemo")).await).await;
    let second = a.run(a.attach(&cluster("aks-demo"), "acrdemo").await).await;
    assert_eq!(first["result"]["outcome"], "created");
    assert_eq!(second["result"]["outcome"], "alreadyPresent");
    assert_eq!(first["result"]["assignmentId"], second["result"]["assignmentId"]);
    assert_eq!(a.assignments_at(&registry("acrdemo"), KUBELET).len(), 1);
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_attaches_of_one_pair_make_one_job_and_one_assignment() {
    let a = AzureApp::spawn(demo_world()).await;
    let mut reqs = Vec::new();
    for _ in 0..50 {
        let client = a.app.client.clone();
        let url = a.app.url("/v1/attachments");
        let body = json!({ "cluster": cluster("aks-demo"), "registry": registry("acrdemo") });
        reqs.push(tokio::spawn(async move {
            client.post(url).json(&body).send().await.unwrap()
        }));
    }
    let mut ids = std::collections::HashSet::new();
    let mut accepted = 0;
    for r in reqs {
        let r = r.await.unwrap();
        accepted += usize::from(r.status() == 202);
        assert!(r.status() == 202 || r.status() == 200);
        let job: Value = r.json().await.unwrap();
        ids.insert(job["id"].as_str().unwrap().to_string());
    }
    // While the first job is unfinished every identical request shares it; one that arrives
    // after it finished gets a job of its own, which converges on the same assignment.
    assert!(
        accepted >= 1 && accepted == ids.len(),
        "{accepted} new jobs, {} ids",
        ids.len()
    );
    for id in &ids {
        assert_eq!(
            a.app.wait_finished(id, Duration::from_secs(30)).await["state"],
            "succeeded"
        );
    }
    assert_eq!(a.assignments_at(&registry("acrdemo"), KUBELET).len(), 1);
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_assignment_made_earlier_under_a_random_name_is_adopted() {
    let a = AzureApp::spawn(demo_world()).await;
    // What `az aks update --attach-acr` leaves behind: AcrPull under a random uuid4 name.
    let cli_name = uuid::Uuid::new_v4().to_string();
    a.sim.insert_role_assignment(RoleAssignmentRecord::new(
        &cli_name,
        &registry("acrdemo"),
        ACR_PULL,
        KUBELET,
    ));
    let job = a.run(a.attach(&cluster("aks-demo"), &registry("acrdemo")).await).await;
    assert_eq!(job["state"], "succeeded", "{job:#}");
    assert_eq!(job["result"]["outcome"], "adopted");
    assert_eq!(job["result"]["assignmentName"], cli_name.as_str());
    let grants = a.assignments_at(&registry("acrdemo"), KUBELET);
    assert_eq!(grants.len(), 1, "no duplicate grant");
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abac_registry_gets_the_repository_reader_role() {
    let a = AzureApp::spawn(demo_world()).await;
    let job = a.run(a.attach(&cluster("aks-demo"), &registry("acrabac")).await).await;
    assert_eq!(job["state"], "succeeded", "{job:#}");
    assert_eq!(job["result"]["role"]["name"], "Container Registry Repository Reader");
    assert_eq!(
        job["result"]["registry"]["roleAssignmentMode"],
        "AbacRepositoryPermissions"
    );
    let grants = a.assignments_at(&registry("acrabac"), KUBELET);
    assert_eq!(grants.len(), 1);
    assert!(grants[0].role_definition_id.to_lowercase().ends_with(REPOSITORY_READER));
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_principal_cluster_is_resolved_through_graph() {
    let a = AzureApp::spawn(demo_world()).await;
    let job = a
        .run(a.attach(&cluster("aks-legacy-sp"), &registry("acrdemo")).await)
        .await;
    assert_eq!(job["state"], "succeeded", "{job:#}");
    assert_eq!(job["result"]["principal"]["source"], "servicePrincipal");
    assert_eq!(job["result"]["principal"]["objectId"], LEGACY_SP_OBJECT);
    assert_eq!(a.assignments_at(&registry("acrdemo"), LEGACY_SP_OBJECT).len(), 1);
    assert_eq!(a.sim.call_count("Graph_ServicePrincipals_GetByAppId"), 1);
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_still_being_created_is_waited_for() {
    let mut world = demo_world();
    world.subscriptions[0].resource_groups[0].managed_clusters[0].ready_after_seconds = Some(2.0);
    let a = AzureApp::spawn(world).await;
    let r = a.attach(&cluster("aks-demo"), &registry("acrdemo")).await;
    let id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    let waiting = a.app.wait_for_state(&id, &["waiting"], Duration::from_secs(10)).await;
    assert_eq!(waiting["wait"]["condition"], "clusterProvisioning");
    assert!(
        waiting["wait"]["message"].as_str().unwrap().contains("Creating"),
        "{waiting:#}"
    );
    let job = a.app.wait_finished(&id, Duration::from_secs(20)).await;
    assert_eq!(job["state"], "succeeded", "{job:#}");
    assert_eq!(job["attempts"], 0, "waiting consumed no attempt");
    assert!(job["waits"].as_i64().unwrap() >= 1);
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_principal_not_yet_replicated_is_waited_out() {
    let mut world = demo_world();
    world.behaviour.principal_not_found = PrincipalNotFoundMode::Always;
    world
        .directory
        .iter_mut()
        .find(|p| p.object_id == KUBELET)
        .unwrap()
        .replication_delay_seconds = 1.5;
    let a = AzureApp::spawn(world).await;
    let job = a.run(a.attach(&cluster("aks-demo"), &registry("acrdemo")).await).await;
    assert_eq!(job["state"], "succeeded", "{job:#}");
    assert_eq!(job["attempts"], 0);
    let errors = job["errors"].as_array().unwrap();
    assert!(
        !errors.is_empty()
            && errors
                .iter()
                .all(|e| e["code"] == "PrincipalNotFound" && e["class"] == "notYetConsistent"),
        "{job:#}"
    );
    let waits = events_of_type(&a.app.events(job["id"].as_str().unwrap()).await, "waiting");
    assert!(waits.iter().all(|w| w["data"]["condition"] == "principalReplication"));
    assert_eq!(a.assignments_at(&registry("acrdemo"), KUBELET).len(), 1);
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_principal_fails_within_its_budget_and_says_so() {
    // ARM skips its directory lookup when principalType is sent, so only the "always" knob
    // makes it refuse an unknown principal on the PUT.
    let mut world = demo_world();
    world.behaviour.principal_not_found = PrincipalNotFoundMode::Always;
    let a = AzureApp::spawn(world).await;
    // The kubelet identity is gone from the directory (deleted or replaced).
    a.sim.update_world(|w| w.directory.retain(|p| p.object_id != KUBELET));
    let started = std::time::Instant::now();
    let job = a.run(a.attach(&cluster("aks-demo"), &registry("acrdemo")).await).await;
    assert_eq!(job["state"], "failed", "{job:#}");
    assert_eq!(job["error"]["code"], "PrincipalNotFound");
    let msg = job["error"]["message"].as_str().unwrap();
    assert!(msg.contains(KUBELET) && msg.contains("may be wrong"), "{msg}");
    // The budget in tests is 3 s; the job does not spin until its deadline.
    assert!(started.elapsed() < Duration::from_secs(15), "{:?}", started.elapsed());
    assert!(a.sim.role_assignments().is_empty());
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_permission_fails_fast_naming_permission_and_scope() {
    let mut world = demo_world();
    for p in &mut world.callers[0].permissions {
        p.actions
            .retain(|a| a != "Microsoft.Authorization/roleAssignments/write");
    }
    let a = AzureApp::spawn(world).await;
    let job = a.run(a.attach(&cluster("aks-demo"), &registry("acrdemo")).await).await;
    assert_eq!(job["state"], "failed", "{job:#}");
    assert_eq!(job["error"]["code"], "AuthorizationFailed");
    let msg = job["error"]["message"].as_str().unwrap();
    assert!(msg.contains("Microsoft.Authorization/roleAssignments/write"), "{msg}");
    assert!(
        msg.to_lowercase().contains(&registry("acrdemo").to_lowercase()),
        "names the scope: {msg}"
    );
    assert!(!msg.contains("Owner on this subscription"), "{msg}");
    assert_eq!(job["error"]["details"]["armCode"], "AuthorizationFailed");
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_is_honoured_through_retry_after() {
    let mut world = demo_world();
    // One read token, refilled every 2 s: the registry GET after the cluster GET gets a 429.
    world.behaviour.throttling.reads.bucket = 1.0;
    world.behaviour.throttling.reads.refill_per_second = 0.5;
    let a = AzureApp::spawn(world).await;
    let job = a.run(a.attach(&cluster("aks-demo"), &registry("acrdemo")).await).await;
    assert_eq!(job["state"], "succeeded", "{job:#}");
    assert_eq!(job["attempts"], 0, "waiting out a 429 uses no attempt");
    let events = a.app.events(job["id"].as_str().unwrap()).await;
    let throttled = events_of_type(&events, "waiting")
        .into_iter()
        .find(|w| w["data"]["condition"] == "armQuota" && w["data"]["error"]["details"]["status"] == 429)
        .expect("a 429, waited out");
    let delay = throttled["data"]["delayMs"].as_f64().unwrap() / 1000.0;
    // The simulator's Retry-After is whole seconds until a token refills (0.5/s): 1 or 2 s,
    // where the back-off alone would have been 0.1 s.
    assert!((1.0..=2.0).contains(&delay), "waited {delay} s, as Retry-After said");
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_responses_and_server_errors_never_duplicate_a_grant() {
    let mut world = demo_world();
    world.behaviour.drop_connection_rate = 0.3;
    world.behaviour.server_error_rate = 0.2;
    world.behaviour.fault_seed = 7;
    let a = AzureApp::spawn(world).await;
    let mut ids = Vec::new();
    for reg in ["acrdemo", "acrabac", "acrshared"] {
        let r = a.attach(&cluster("aks-demo"), &registry(reg)).await;
        ids.push((
            reg,
            r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string(),
        ));
    }
    for (reg, id) in ids {
        let job = a.app.wait_finished(&id, Duration::from_secs(60)).await;
        assert_eq!(job["state"], "succeeded", "{job:#}");
        assert_eq!(a.assignments_at(&registry(reg), KUBELET).len(), 1, "{reg}");
    }
    assert!(
        a.sim.calls().iter().any(|c| c.dropped || c.status >= 500),
        "faults were injected"
    );
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_trusts_the_put_and_the_next_reader_bridges_arms_read_lag() {
    let mut world = demo_world();
    world.behaviour.read_after_write_lag_ms = 4000;
    let a = AzureApp::spawn(world).await;
    let job = a.run(a.attach(&cluster("aks-demo"), &registry("acrdemo")).await).await;
    assert_eq!(job["state"], "succeeded", "{job:#}");
    // Cluster GET, registry GET, the PUT: no read-back, whose only answer here would be "not yet".
    assert_eq!(a.sim.call_count("RoleAssignments_Get"), 0);
    assert_eq!(a.sim.call_count("RoleAssignments_Create"), 1);

    // A check right away: ARM lists no grant yet, the record says one was made: open verdict.
    let r = a
        .app
        .post_json(
            "/v1/checks",
            &json!({ "cluster": cluster("aks-demo"), "registry": registry("acrdemo") }),
        )
        .await;
    let check = a.run(r).await;
    assert_eq!(check["state"], "succeeded", "{check:#}");
    let codes: Vec<&str> = check["result"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert!(codes.contains(&"GrantNotListedYet"), "{codes:?}");
    assert!(!codes.contains(&"NoPullGrant"), "{codes:?}");
    assert_eq!(check["result"]["verdict"], "unknown");

    // And a detach removes it, lag or not.
    let detach = a.run(a.detach(&cluster("aks-demo"), &registry("acrdemo")).await).await;
    assert_eq!(detach["state"], "succeeded", "{detach:#}");
    assert_eq!(detach["result"]["outcome"], "deleted", "{detach:#}");
    assert!(a.assignments_at(&registry("acrdemo"), KUBELET).is_empty());
    a.stop().await;
}

/// What an operator's dashboard and alerts read (deploy/monitoring/): Azure call latency, ARM's
/// remaining quota, failures by code, and the queue's pending jobs and longest due wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_calls_quota_failures_and_the_queue() {
    let mut world = demo_world();
    world.subscriptions[0].resource_groups[0].managed_clusters[0].ready_after_seconds = Some(30.0);
    let a = AzureApp::spawn(world).await;
    let ok = a
        .run(a.attach(&cluster("aks-legacy-sp"), &registry("acrdemo")).await)
        .await;
    assert_eq!(ok["state"], "succeeded", "{ok:#}");
    let failed = a.run(a.attach(&cluster("aks-legacy-sp"), "acrnothere").await).await;
    assert_eq!(failed["error"]["code"], "RegistryNotFound");
    // A cluster still being created: its attach waits, pending.
    let r = a.attach(&cluster("aks-demo"), &registry("acrdemo")).await;
    let id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    a.app.wait_for_state(&id, &["waiting"], Duration::from_secs(10)).await;

    let metrics = a.app.get("/metrics").await.text().await.unwrap();
    for expected in [
        "acr_attach_azure_call_duration_seconds_count{operation=\"put_role_assignment\"}",
        "acr_attach_arm_ratelimit_remaining{header=\"x-ms-ratelimit-remaining-subscription-writes\"}",
        "acr_attach_jobs_failed_total{kind=\"attach\",code=\"RegistryNotFound\"}",
        "acr_attach_jobs_pending{kind=\"attach\"}",
        "acr_attach_oldest_due_job_seconds{kind=\"attach\"}",
    ] {
        assert!(metrics.contains(expected), "{expected} in:\n{metrics}");
    }
    a.stop().await;
}
