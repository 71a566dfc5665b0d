//! The chaos suite: faults that production meets, each scenario checking that every job ends
//! succeeded and that no role assignment was ever duplicated (counted from the simulator's ARM
//! state), and printing one JSON line with its figures. The short versions run with the other
//! tests (and so in `.ci/run`); `CHAOS=full` runs them at full size:
//!
//! ```sh
//! CHAOS=full cargo test --test api chaos -- --nocapture --test-threads 1
//! ```
//! The database outage scenario is `tests/api/outage.rs` (a TCP proxy cut mid-attach).
use azure_simulator::{KubeletIdentity, ManagedCluster, Principal, PrincipalKind, Simulator, World};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::azure_app::*;
use crate::helpers::{TestApp, TestDb, test_config};

fn full() -> bool {
    std::env::var("CHAOS").is_ok_and(|v| v == "full")
}

/// The demo world with `n` more managed-identity clusters in rg-aks-demo.
fn world_with_clusters(n: usize) -> World {
    let mut w = demo_world();
    let template = w.directory.iter().find(|p| p.object_id == KUBELET).cloned().unwrap();
    for i in 0..n {
        let oid = format!("c4a05000-0000-4000-8000-{i:012}");
        let client = format!("c4a05000-0000-4000-9000-{i:012}");
        w.directory.push(Principal {
            object_id: oid.clone(),
            app_id: Some(client.clone()),
            display_name: format!("aks-chaos-{i}-agentpool"),
            ..template.clone()
        });
        w.subscriptions[0].resource_groups[0]
            .managed_clusters
            .push(ManagedCluster {
                name: format!("aks-chaos-{i}"),
                kubelet_identity: Some(KubeletIdentity {
                    object_id: oid,
                    client_id: client,
                    resource_id: None,
                }),
                ..Default::default()
            });
    }
    assert_eq!(template.kind, PrincipalKind::ServicePrincipal);
    w
}

/// Role assignments that exist more than once for one (scope, principal, role).
fn duplicates(sim: &Simulator) -> usize {
    let mut seen: HashMap<(String, String, String), usize> = HashMap::new();
    for r in sim.role_assignments() {
        let role = r
            .role_definition_id
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        *seen
            .entry((r.scope.to_ascii_lowercase(), r.principal_id.to_ascii_lowercase(), role))
            .or_default() += 1;
    }
    seen.values().filter(|n| **n > 1).count()
}

async fn attach_all(app_url: &str, n: usize) -> Vec<String> {
    let client = reqwest::Client::new();
    let mut ids = Vec::new();
    for i in 0..n {
        let r = client
            .post(format!("{app_url}/v1/attachments"))
            .json(&json!({ "cluster": cluster(&format!("aks-chaos-{i}")), "registry": registry("acrdemo") }))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
        ids.push(r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string());
    }
    ids
}

async fn all_succeeded(app: &TestApp, ids: &[String], within: Duration) -> usize {
    let mut ok = 0;
    for id in ids {
        let job = app.wait_finished(id, within).await;
        assert_eq!(job["state"], "succeeded", "{job:#}");
        ok += 1;
    }
    ok
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_azure_faults_and_throttling() {
    let n = if full() { 200 } else { 20 };
    let mut world = world_with_clusters(n);
    world.behaviour.server_error_rate = 0.10;
    world.behaviour.drop_connection_rate = 0.05;
    world.behaviour.latency_ms = 20;
    world.behaviour.fault_seed = 7;
    let a = AzureApp::spawn_configured(world, |c| c.ops.job_deadline = Duration::from_secs(300)).await;
    let started = Instant::now();
    let ids = attach_all(&a.app.address, n).await;
    let ok = all_succeeded(&a.app, &ids, Duration::from_secs(300)).await;
    let dups = duplicates(&a.sim);
    println!(
        "{}",
        json!({ "scenario": "azure-faults", "jobs": n, "succeeded": ok, "duplicateAssignments": dups,
                "seconds": started.elapsed().as_secs_f64(), "serverErrorRate": 0.10, "dropRate": 0.05 })
    );
    assert_eq!((ok, dups), (n, 0));
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_identical_concurrent_posts_over_two_replicas() {
    let n = if full() { 1000 } else { 100 };
    let db = TestDb::new().await;
    let mut cfg = test_config(&db);
    cfg.api.rate_limit = 100_000.0;
    cfg.api.rate_burst = 100_000;
    let mut world = demo_world();
    world.behaviour.latency_ms = 200;
    let sim = acr_attach::simulated::start(world, &mut cfg).await.unwrap();
    let one = TestApp::spawn_service(cfg.clone(), db.clone()).await;
    let two = TestApp::spawn_service(cfg, db.clone()).await;
    let body = json!({ "cluster": cluster("aks-demo"), "registry": registry("acrdemo") });
    let started = Instant::now();
    let posts = (0..n).map(|i| {
        let (client, url) = if i % 2 == 0 {
            (one.client.clone(), one.url("/v1/attachments"))
        } else {
            (two.client.clone(), two.url("/v1/attachments"))
        };
        let body = body.clone();
        tokio::spawn(async move {
            let r = client.post(url).json(&body).send().await.unwrap();
            assert!(r.status().is_success(), "{}", r.status());
            r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string()
        })
    });
    let mut ids = std::collections::HashSet::new();
    for p in posts.collect::<Vec<_>>() {
        ids.insert(p.await.unwrap());
    }
    let answered = started.elapsed().as_secs_f64();
    let ids: Vec<String> = ids.into_iter().collect();
    let ok = all_succeeded(&one, &ids, Duration::from_secs(60)).await;
    let dups = duplicates(&sim);
    println!(
        "{}",
        json!({ "scenario": "identical-posts", "posts": n, "replicas": 2, "distinctJobs": ids.len(),
                "succeeded": ok, "duplicateAssignments": dups, "answeredSeconds": answered })
    );
    // Identical requests share the unfinished job; one that arrives after it finished may make
    // another (which then finds the grant present): never a second assignment.
    assert!(ids.len() <= 3, "{} jobs for {n} identical requests", ids.len());
    assert_eq!(dups, 0);
    assert_eq!(
        sim.role_assignments()
            .iter()
            .filter(|r| r.principal_id.eq_ignore_ascii_case(KUBELET))
            .count(),
        1
    );
    two.shutdown().await;
    one.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_kill_one_of_two_replicas_mid_run() {
    let n = if full() { 300 } else { 30 };
    let db = TestDb::new().await;
    let mut world = world_with_clusters(n);
    world.behaviour.latency_ms = 150;
    let sim = azure_simulator::start(world.clone(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    // Replica A: the real binary, reaching the shared simulated Azure as it would reach Azure.
    let ca = std::env::temp_dir().join(format!("acr-attach-chaos-ca-{}.pem", db.name));
    std::fs::write(&ca, sim.ca_pem()).unwrap();
    let caller = &world.callers[0];
    let env: Vec<(&str, String)> = vec![
        ("AZURE_CLOUD", "custom".into()),
        ("AZURE_ARM_ENDPOINT", sim.base_url()),
        ("AZURE_AUTHORITY_HOST", sim.base_url()),
        ("AZURE_GRAPH_ENDPOINT", sim.base_url()),
        ("AZURE_ARM_AUDIENCE", "https://management.azure.com".into()),
        ("AZURE_GRAPH_AUDIENCE", "https://graph.microsoft.com".into()),
        ("AZURE_CREDENTIAL", "client-secret".into()),
        ("AZURE_TENANT_ID", world.tenant_id.clone()),
        ("AZURE_CLIENT_ID", caller.client_id.clone()),
        ("AZURE_CLIENT_SECRET", caller.client_secret.clone()),
        ("ACR_ATTACH_CA_BUNDLE", ca.display().to_string()),
        ("ACR_ATTACH_SUBSCRIPTIONS", format!("{SUB1},{SUB2}")),
        ("ACR_ATTACH_AUTH", "none".into()),
        ("ACR_ATTACH_WORKERS", "8".into()),
        // One caller posts every attach: no per-caller limit in the way.
        ("ACR_ATTACH_RATE_LIMIT", "100000".into()),
        ("ACR_ATTACH_RATE_BURST", "100000".into()),
    ];
    let mut a = crate::logs::Served::serve_with(&db, &[], &env);
    let address = a.wait_for("HTTP API listening")["address"]
        .as_str()
        .unwrap()
        .to_string();
    // Replica B: in this process, same database and simulated Azure.
    let mut cfg = test_config(&db);
    acr_attach::simulated::point_at(&sim, &world, &mut cfg).unwrap();
    cfg.queue.concurrency = 8;
    cfg.queue.rescue_interval = Duration::from_secs(2); // the production default
    let b_worker = cfg.queue.worker_id.clone();
    let b = TestApp::spawn_service(cfg, db.clone()).await;

    let started = Instant::now();
    let ids = attach_all(&format!("http://{address}"), n).await;
    // Kill A (SIGKILL: no shutdown, no hand-back) while jobs run.
    let running_on_a = loop {
        let running: i64 = sqlx::query_scalar("SELECT count(*) FROM job WHERE state = 'running' AND locked_by <> $1")
            .bind(&b_worker)
            .fetch_one(&b.pool)
            .await
            .unwrap();
        if running > 0 {
            break running;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    let killed = chrono::Utc::now();

    let ok = all_succeeded(&b, &ids, Duration::from_secs(120)).await;
    let dups = duplicates(&sim);
    let rescued: Vec<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT at FROM job_event WHERE type = 'rescued' AND job_id = ANY($1::uuid[])")
            .bind(&ids)
            .fetch_all(&b.pool)
            .await
            .unwrap();
    let recovery = rescued
        .iter()
        .map(|t| (*t - killed).num_milliseconds() as f64 / 1000.0)
        .fold(0.0_f64, f64::max);
    println!(
        "{}",
        json!({ "scenario": "kill-replica", "jobs": n, "succeeded": ok, "duplicateAssignments": dups,
                "runningWhenKilled": running_on_a, "rescued": rescued.len(),
                "recoverySeconds": recovery, "seconds": started.elapsed().as_secs_f64() })
    );
    assert_eq!((ok, dups), (n, 0));
    assert!(recovery <= 10.0, "a killed replica's jobs restarted after {recovery} s");
    b.stop().await;
    sim.shutdown().await;
}
