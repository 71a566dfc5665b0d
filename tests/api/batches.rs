//! Batches end to end (`POST /v1/batches`): through the HTTP API, the simulator's role
//! assignments and call log, and the database.
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

use crate::azure_app::*;
use crate::helpers::assert_error;
use crate::secure::*;

/// The demo world plus a fleet: `fleet-0..n` in `rg-fleet` of SUB1 (even ones tagged
/// `env=prod`, odd ones `env=dev`), each with its own kubelet identity; and `slow-0..m` in
/// rg-aks-demo, still being created for `slow_secs`.
fn fleet_world(n: usize, slow: usize, slow_secs: u64) -> azure_simulator::World {
    let mut w = serde_json::to_value(demo_world()).unwrap();
    let mut clusters = Vec::new();
    let mut add = |name: String, i: usize, tags: Value, ready_after: Option<u64>| {
        let oid = format!("f1ee0000-0000-4000-8000-{i:012}");
        w["directory"].as_array_mut().unwrap().push(json!({
            "objectId": oid, "type": "ServicePrincipal", "appId": format!("f1ee0000-0000-4000-9000-{i:012}"),
            "displayName": format!("{name}-agentpool"), "servicePrincipalType": "ManagedIdentity"
        }));
        let mut c = json!({
            "name": name, "tags": tags,
            "kubeletIdentity": { "objectId": oid, "clientId": format!("f1ee0000-0000-4000-9000-{i:012}") }
        });
        if let Some(s) = ready_after {
            c["readyAfterSeconds"] = json!(s);
        }
        c
    };
    for i in 0..n {
        let env = if i % 2 == 0 { "prod" } else { "dev" };
        clusters.push(add(format!("fleet-{i}"), i, json!({ "env": env }), None));
    }
    let slow_clusters: Vec<Value> = (0..slow)
        .map(|i| add(format!("slow-{i}"), 900 + i, json!({}), Some(slow_secs)))
        .collect();
    let groups = w["subscriptions"][0]["resourceGroups"].as_array_mut().unwrap();
    groups[0]["managedClusters"]
        .as_array_mut()
        .unwrap()
        .extend(slow_clusters);
    groups.push(json!({ "name": "rg-fleet", "managedClusters": clusters }));
    serde_json::from_value(w).expect("fleet world")
}

fn fleet(i: usize) -> String {
    format!(
        "/subscriptions/{SUB1}/resourceGroups/rg-fleet/providers/Microsoft.ContainerService/managedClusters/fleet-{i}"
    )
}

fn fleet_kubelet(i: usize) -> String {
    format!("f1ee0000-0000-4000-8000-{i:012}")
}

async fn post_batch(a: &AzureApp, body: &Value) -> Value {
    let r = a.app.post_json("/v1/batches", body).await;
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert_eq!(status, StatusCode::ACCEPTED, "{v:#}");
    v
}

/// Polls the batch until its status is final.
async fn finished(a: &AzureApp, id: &str) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let b: Value = a.app.get(&format!("/v1/batches/{id}")).await.json().await.unwrap();
        if ["Succeeded", "Failed", "Canceled"].contains(&b["status"].as_str().unwrap_or("")) {
            return b;
        }
        assert!(std::time::Instant::now() < deadline, "batch not finished: {b:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn all_items(a: &AzureApp, id: &str, limit: usize) -> (Vec<Value>, usize) {
    let mut items = Vec::new();
    let mut pages = 0;
    let mut link = Some(format!("/v1/batches/{id}/items?limit={limit}"));
    while let Some(l) = link {
        let page: Value = a.app.get(&l).await.json().await.unwrap();
        items.extend(page["value"].as_array().unwrap().iter().cloned());
        link = page["nextLink"].as_str().map(str::to_string);
        pages += 1;
    }
    (items, pages)
}

fn count(a: &AzureApp, operation: &str) -> usize {
    a.sim.calls().iter().filter(|c| c.operation == operation).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_to_listed_clusters_reads_the_registry_once() {
    let n = 6;
    let a = AzureApp::spawn(fleet_world(n, 0, 0)).await;
    let clusters: Vec<String> = (0..n).map(fleet).chain([fleet(0)]).collect();
    let b = post_batch(
        &a,
        &json!({ "action": "attach", "registry": registry("acrdemo"), "clusters": clusters }),
    )
    .await;
    let id = b["id"].as_str().unwrap();
    assert_eq!(b["total"], n, "the duplicate is collapsed: {b:#}");
    let b = finished(&a, id).await;
    assert_eq!(b["status"], "Succeeded", "{b:#}");
    assert_eq!(b["counts"]["succeeded"], n);
    assert_eq!(b["progress"], 1.0);
    assert!(b["finishedAt"].is_string());

    let (items, pages) = all_items(&a, id, 4).await;
    assert_eq!((items.len(), pages), (n, 2), "nextLink pages the items");
    for (i, item) in items.iter().enumerate() {
        assert_eq!(item["cluster"], fleet(i));
        assert_eq!(item["state"], "succeeded");
        assert_eq!(item["createdJob"], true);
        let job = a.app.get_job(item["jobId"].as_str().unwrap()).await;
        assert_eq!(job["kind"], "attach");
        assert_eq!(job["input"]["cluster"], fleet(i));
        assert_eq!(
            a.assignments_at(&registry("acrdemo"), &fleet_kubelet(i)).len(),
            1,
            "fleet-{i} can pull"
        );
    }
    let rows: i64 =
        sqlx::query_scalar("SELECT count(*) FROM batch_item WHERE state = 'enqueued' AND job_id IS NOT NULL")
            .fetch_one(&a.app.pool)
            .await
            .unwrap();
    assert_eq!(rows, n as i64);
    // The registry is read once for the batch, not once per item: fewer calls than N attaches
    // (4 each: cluster GET, registry GET, PUT, read-back).
    assert_eq!(count(&a, "Registries_Get"), 1, "one registry read per batch");
    assert_eq!(count(&a, "ManagedClusters_Get"), n);
    let arm = a.sim.calls().iter().filter(|c| c.operation != "Token").count();
    assert!(arm < 4 * n, "{arm} ARM calls for {n} items");
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_to_many_registries_reads_the_cluster_once() {
    let a = AzureApp::spawn(demo_world()).await;
    let b = post_batch(
        &a,
        &json!({ "action": "attach", "cluster": cluster("aks-demo"),
                 "registries": [registry("acrdemo"), registry("acrabac"), "acrshared"] }),
    )
    .await;
    let b = finished(&a, b["id"].as_str().unwrap()).await;
    assert_eq!(b["status"], "Succeeded", "{b:#}");
    assert_eq!(b["counts"]["succeeded"], 3);
    let role = |r: &str| {
        a.assignments_at(&registry(r), KUBELET)
            .first()
            .map(|x| x.role_definition_id.clone())
            .unwrap_or_default()
    };
    assert!(role("acrdemo").ends_with(ACR_PULL));
    assert!(
        role("acrabac").ends_with(REPOSITORY_READER),
        "ABAC mode: repository reader"
    );
    assert!(role("acrshared").ends_with(ACR_PULL));
    assert_eq!(count(&a, "ManagedClusters_Get"), 1, "one cluster read per batch");

    // Detach them all the same way.
    let b = post_batch(
        &a,
        &json!({ "action": "detach", "cluster": cluster("aks-demo"),
                 "registries": [registry("acrdemo"), registry("acrabac"), "acrshared"] }),
    )
    .await;
    let b = finished(&a, b["id"].as_str().unwrap()).await;
    assert_eq!(b["status"], "Succeeded", "{b:#}");
    for r in ["acrdemo", "acrabac", "acrshared"] {
        assert!(a.assignments_at(&registry(r), KUBELET).is_empty(), "{r} detached");
    }
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_selection_chooses_clusters_by_subscription_group_and_tag() {
    let n = 6;
    let a = AzureApp::spawn(fleet_world(n, 0, 0)).await;
    let b = post_batch(
        &a,
        &json!({ "action": "attach", "registry": registry("acrdemo"),
                 "select": { "subscriptions": [SUB1], "resourceGroups": ["RG-FLEET"], "tags": { "env": "prod" } } }),
    )
    .await;
    let id = b["id"].as_str().unwrap();
    let b = finished(&a, id).await;
    assert_eq!(b["status"], "Succeeded", "{b:#}");
    assert_eq!(b["total"], n / 2, "the prod clusters of rg-fleet: {b:#}");
    assert_eq!(b["input"]["select"]["tags"]["env"], "prod");
    for i in 0..n {
        let granted = !a.assignments_at(&registry("acrdemo"), &fleet_kubelet(i)).is_empty();
        assert_eq!(granted, i % 2 == 0, "fleet-{i}");
    }
    // One Resource Graph query and one registry read for the batch; the kubelet identities come
    // from Resource Graph, so the items read no cluster at all.
    assert_eq!(count(&a, "ResourceGraph_Resources"), 1);
    assert_eq!(count(&a, "Registries_Get"), 1);
    assert_eq!(count(&a, "ManagedClusters_Get"), 0);

    // A whole subscription: every cluster in it (the demo's two and the fleet).
    let b = post_batch(
        &a,
        &json!({ "action": "attach", "registry": registry("acrdemo"), "select": { "subscriptions": [SUB1] } }),
    )
    .await;
    let b = finished(&a, b["id"].as_str().unwrap()).await;
    assert_eq!(b["total"], n + 2, "{b:#}");
    assert_eq!(b["status"], "Succeeded", "{b:#}");
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_reuse_identical_unfinished_jobs_and_cancel_leaves_those_alone() {
    // slow-0 and slow-1 are still being created: their attaches wait.
    let a = AzureApp::spawn_configured(fleet_world(0, 2, 4), |c| {
        c.ops.provisioning_budget = Duration::from_secs(30)
    })
    .await;
    let slow = |i: usize| cluster(&format!("slow-{i}"));
    let single: Value = a.attach(&slow(0), &registry("acrdemo")).await.json().await.unwrap();
    let body = json!({ "action": "attach", "registry": registry("acrdemo"), "clusters": [slow(0), slow(1)] });
    let key = uuid::Uuid::new_v4().to_string();
    let post = |key: String| {
        let body = body.clone();
        let a = &a;
        async move {
            a.app
                .client
                .post(a.app.url("/v1/batches"))
                .header("Idempotency-Key", key)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let r = post(key.clone()).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let b: Value = r.json().await.unwrap();
    let id = b["id"].as_str().unwrap().to_string();
    // The same key again: the first answer (same status, same batch), nothing new.
    let again = post(key).await;
    assert_eq!(again.status(), StatusCode::ACCEPTED);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["id"], id.as_str());
    let batches: i64 = sqlx::query_scalar("SELECT count(*) FROM batch")
        .fetch_one(&a.app.pool)
        .await
        .unwrap();
    assert_eq!(batches, 1);

    // Once expanded: slow-0's item is the single request's job, slow-1's a new one.
    let items = loop {
        let (items, _) = all_items(&a, &id, 100).await;
        if items.iter().all(|i| i["jobId"].is_string()) {
            break items;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(items[0]["jobId"], single["id"]);
    assert_eq!(items[0]["createdJob"], false);
    assert_eq!(items[1]["createdJob"], true);

    // Cancel: the batch's own job stops; the reused one runs on for its requester.
    let r = a
        .app
        .client
        .post(a.app.url(&format!("/v1/batches/{id}/cancel")))
        .send()
        .await
        .unwrap();
    assert!(
        r.status() == StatusCode::OK || r.status() == StatusCode::ACCEPTED,
        "{}",
        r.status()
    );
    let own = a
        .app
        .wait_finished(items[1]["jobId"].as_str().unwrap(), Duration::from_secs(10))
        .await;
    assert_eq!(own["state"], "cancelled");
    let reused = a
        .app
        .wait_finished(single["id"].as_str().unwrap(), Duration::from_secs(30))
        .await;
    assert_eq!(reused["state"], "succeeded");
    let b = finished(&a, &id).await;
    assert_eq!(b["status"], "Canceled", "{b:#}");
    assert_eq!(b["counts"]["cancelled"], 1);
    assert_eq!(b["counts"]["succeeded"], 1);
    // Cancelling it again is harmless.
    let r = a
        .app
        .client
        .post(a.app.url(&format!("/v1/batches/{id}/cancel")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_policy_decides_every_item_all_or_nothing_for_lists_and_item_by_item_for_selections() {
    let a = secure_app_in(fleet_world(2, 0, 0), &test_policy(), |_| {}).await;
    let portal = a.token_for(PORTAL);
    // The portal attaches in rg-aks-demo only: fleet-0 (rg-fleet) refuses the whole list.
    let r = a
        .post_as(
            &portal,
            "/v1/batches",
            &json!({ "action": "attach", "registry": registry("acrdemo"), "clusters": [cluster("aks-demo"), fleet(0)] }),
        )
        .await;
    let body = assert_error(r, StatusCode::FORBIDDEN, "Forbidden").await;
    assert_eq!(body["error"]["details"][0]["target"], "clusters[1]", "{body:#}");
    assert_eq!(body["error"]["details"].as_array().unwrap().len(), 1);
    let (batches, jobs): (i64, i64) = sqlx::query_as("SELECT (SELECT count(*) FROM batch), (SELECT count(*) FROM job)")
        .fetch_one(&a.app.pool)
        .await
        .unwrap();
    assert_eq!((batches, jobs), (0, 0), "nothing enqueued");

    // A selection outside every scope of the rule: refused at once.
    let r = a
        .post_as(
            &portal,
            "/v1/batches",
            &json!({ "action": "attach", "registry": registry("acrdemo"), "select": { "subscriptions": [SUB2] } }),
        )
        .await;
    assert_error(r, StatusCode::FORBIDDEN, "Forbidden").await;

    // The whole of SUB1: the rule reaches into it, so the batch runs; what it does not cover
    // (the fleet in rg-fleet) is denied item by item, and never granted.
    let r = a
        .post_as(
            &portal,
            "/v1/batches",
            &json!({ "action": "attach", "registry": registry("acrdemo"), "select": { "subscriptions": [SUB1] } }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let b: Value = r.json().await.unwrap();
    let id = b["id"].as_str().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let b = loop {
        let b: Value = a
            .get_as(&portal, &format!("/v1/batches/{id}"))
            .await
            .json()
            .await
            .unwrap();
        if ["Succeeded", "Failed", "Canceled"].contains(&b["status"].as_str().unwrap()) {
            break b;
        }
        assert!(std::time::Instant::now() < deadline, "{b:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(b["status"], "Failed", "denied items fail the batch: {b:#}");
    assert_eq!(b["counts"]["denied"], 2, "{b:#}");
    assert_eq!(b["counts"]["succeeded"], 2, "aks-demo and aks-legacy-sp: {b:#}");
    for i in 0..2 {
        assert!(a.assignments_at(&registry("acrdemo"), &fleet_kubelet(i)).is_empty());
    }
    let items: Value = a
        .get_as(&portal, &format!("/v1/batches/{id}/items"))
        .await
        .json()
        .await
        .unwrap();
    let denied: Vec<&Value> = items["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["state"] == "denied")
        .collect();
    assert_eq!(denied.len(), 2);
    assert!(
        denied
            .iter()
            .all(|i| i["errorCode"] == "Forbidden" && i["jobId"].is_null())
    );
    // Audited, as single requests are: each denied item, with the batch's caller.
    let audit: Value = a
        .get_as(&a.token_for(AUDITOR), "/v1/audit?decision=denied&action=attach")
        .await
        .json()
        .await
        .unwrap();
    let for_items = audit["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["method"] == "JOB" && r["resources"]["batch"] == id)
        .count();
    assert_eq!(for_items, 2, "{audit:#}");
    // Another caller does not see the batch.
    let r = a.get_as(&a.token_for(DASHBOARD), &format!("/v1/batches/{id}")).await;
    assert_error(r, StatusCode::NOT_FOUND, "BatchNotFound").await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_batches_are_refused_and_change_nothing() {
    let a = AzureApp::spawn(demo_world()).await;
    let too_many: Vec<String> = (0..5001).map(|i| format!("{}-{i}", cluster("aks"))).collect();
    let cases = [
        (
            json!({ "action": "attach", "registry": "acrdemo" }),
            "InvalidBatch",
            None,
        ),
        (
            json!({ "action": "attach", "registry": "acrdemo", "clusters": [] }),
            "InvalidBatch",
            Some("clusters"),
        ),
        (
            json!({ "action": "attach", "registry": "acrdemo", "clusters": [cluster("aks-demo"), "nope"] }),
            "InvalidClusterId",
            Some("clusters[1]"),
        ),
        (
            json!({ "action": "attach", "cluster": cluster("aks-demo"), "registries": ["acr-bad!"] }),
            "InvalidRegistry",
            Some("registries[0]"),
        ),
        (
            json!({ "action": "attach", "registry": "acrdemo", "clusters": [cluster("aks-demo")], "cluster": cluster("aks-demo") }),
            "InvalidBatch",
            None,
        ),
        (
            json!({ "action": "attach", "registry": "acrdemo", "clusters": too_many }),
            "InvalidBatch",
            Some("clusters"),
        ),
        (
            json!({ "action": "attach", "registry": "acrdemo", "select": { "subscriptions": ["not-a-guid"] } }),
            "InvalidBatch",
            Some("select.subscriptions[0]"),
        ),
        (
            json!({ "action": "attach", "registry": "acrdemo", "select": { "subscriptions": [SUB1],
                    "resourceGroups": [format!("/subscriptions/{SUB2}/resourceGroups/rg")] } }),
            "InvalidBatch",
            Some("select.resourceGroups[0]"),
        ),
        (
            json!({ "action": "attach", "registry": "acrdemo", "select": { "subscriptions": [SUB1], "resourceGroups": ["bad/rg"] } }),
            "InvalidBatch",
            Some("select.resourceGroups[0]"),
        ),
        (
            json!({ "action": "merge", "registry": "acrdemo", "clusters": [cluster("aks-demo")] }),
            "InvalidRequestContent",
            Some("action"),
        ),
        (
            json!({ "action": "attach", "registry": "acrdemo", "clusters": [cluster("aks-demo")], "group": "x" }),
            "InvalidRequestContent",
            None,
        ),
    ];
    for (body, code, target) in cases {
        let r = a.app.post_json("/v1/batches", &body).await;
        let err = assert_error(r, StatusCode::BAD_REQUEST, code).await;
        if let Some(t) = target {
            assert_eq!(err["error"]["target"], t, "{err:#}");
        }
    }
    let r = a.app.get("/v1/batches/not-a-uuid").await;
    assert_error(r, StatusCode::BAD_REQUEST, "InvalidBatchId").await;
    let r = a.app.get(&format!("/v1/batches/{}", uuid::Uuid::new_v4())).await;
    assert_error(r, StatusCode::NOT_FOUND, "BatchNotFound").await;
    let (batches, jobs): (i64, i64) = sqlx::query_as("SELECT (SELECT count(*) FROM batch), (SELECT count(*) FROM job)")
        .fetch_one(&a.app.pool)
        .await
        .unwrap();
    assert_eq!((batches, jobs), (0, 0));
    a.stop().await;
}

/// Every batch `credential` may see, following `nextLink` from `/v1/batches?limit={limit}`; and
/// how many pages that took.
async fn listed_batches(a: &AzureApp, credential: &str, limit: usize) -> (Vec<Value>, usize) {
    let mut batches = Vec::new();
    let mut pages = 0;
    let mut link = Some(format!("/v1/batches?limit={limit}"));
    while let Some(l) = link {
        let r = a.get_as(credential, &l).await;
        assert_eq!(r.status(), StatusCode::OK, "{l}");
        let page: Value = r.json().await.unwrap();
        let value = page["value"].as_array().unwrap();
        assert!(value.len() <= limit, "{page:#}");
        batches.extend(value.iter().cloned());
        link = page["nextLink"].as_str().map(str::to_string);
        pages += 1;
    }
    (batches, pages)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_list_their_own_batches_newest_first_paged_by_next_link() {
    let mut policy = test_policy();
    // The dashboard may attach too, for this test.
    policy["rules"][1]["actions"] = json!(["attach", "read"]);
    policy["rules"][1]["clusters"] = json!(["*"]);
    policy["rules"][1]["registries"] = json!(["*"]);
    let a = secure_app(&policy, |_| {}).await;
    let (portal, dashboard, auditor) = (a.token_for(PORTAL), a.token_for(DASHBOARD), a.token_for(AUDITOR));
    let post = |credential: String, registries: Vec<String>| {
        let a = &a;
        async move {
            let body = json!({ "action": "attach", "cluster": cluster("aks-demo"), "registries": registries });
            let r = a.post_as(&credential, "/v1/batches", &body).await;
            assert_eq!(r.status(), StatusCode::ACCEPTED);
            let b: Value = r.json().await.unwrap();
            b["id"].as_str().unwrap().to_string()
        }
    };
    let p1 = post(portal.clone(), vec![registry("acrdemo")]).await;
    let d1 = post(dashboard.clone(), vec!["acrshared".into()]).await;
    let p2 = post(portal.clone(), vec![registry("acrabac"), registry("acrdemo")]).await;
    // Finished, so that the list and the single GET show the same thing.
    let single = |credential: String, id: String| {
        let a = &a;
        async move {
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            loop {
                let b: Value = a
                    .get_as(&credential, &format!("/v1/batches/{id}"))
                    .await
                    .json()
                    .await
                    .unwrap();
                if ["Succeeded", "Failed", "Canceled"].contains(&b["status"].as_str().unwrap_or("")) {
                    return b;
                }
                assert!(std::time::Instant::now() < deadline, "{b:#}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let mut shown = std::collections::HashMap::new();
    for (credential, id) in [(&portal, &p1), (&dashboard, &d1), (&portal, &p2)] {
        let b = single(credential.clone(), id.clone()).await;
        assert_eq!(b["status"], "Succeeded", "{b:#}");
        shown.insert(id.clone(), b);
    }
    let ids =
        |batches: &[Value]| -> Vec<String> { batches.iter().map(|b| b["id"].as_str().unwrap().to_string()).collect() };

    // Each caller sees its own, newest first; limit=1 pages through them by nextLink.
    let (mine, pages) = listed_batches(&a, &portal, 1).await;
    assert_eq!(ids(&mine), [p2.clone(), p1.clone()]);
    assert_eq!(pages, 2, "one per page, and no empty last page");
    for b in &mine {
        assert_eq!(
            b,
            &shown[b["id"].as_str().unwrap()],
            "as GET /v1/batches/{{id}} shows it"
        );
    }
    assert_eq!(mine[0]["total"], 2);
    let (theirs, pages) = listed_batches(&a, &dashboard, 1).await;
    assert_eq!((ids(&theirs), pages), (vec![d1.clone()], 1));
    assert_eq!(theirs[0], shown[&d1]);
    // readAllJobs sees every caller's.
    let (all, pages) = listed_batches(&a, &auditor, 2).await;
    assert_eq!((ids(&all), pages), (vec![p2.clone(), d1.clone(), p1.clone()], 2));
    let (all, pages) = listed_batches(&a, &auditor, 50).await;
    assert_eq!((all.len(), pages), (3, 1));

    // Bad paging gets the standard 400.
    for (query, target) in [
        ("limit=0", Some("limit")),
        ("limit=201", Some("limit")),
        ("limit=abc", Some("limit")),
        ("cursor=05", Some("cursor")),
        ("cursor=xyz", Some("cursor")),
        ("colour=red", None),
    ] {
        let r = a.get_as(&portal, &format!("/v1/batches?{query}")).await;
        let e = assert_error(r, StatusCode::BAD_REQUEST, "InvalidQueryParameter").await;
        if let Some(t) = target {
            assert_eq!(e["error"]["target"], t, "{query}: {e}");
        }
    }
    a.stop().await;
}
