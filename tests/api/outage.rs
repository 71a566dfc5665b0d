//! A database outage in the middle of Azure work: the service reaches PostgreSQL through a TCP
//! proxy the test cuts (every connection dropped, new ones refused) and restores. What finished
//! is kept, no ARM call is repeated, and the API answers at once meanwhile.
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

use crate::azure_app::*;
use crate::helpers::{TestApp, TestDb, test_config};

/// Forwards 127.0.0.1:<port> to the local PostgreSQL until cut.
struct PgProxy {
    port: u16,
    down: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<AbortHandle>>>,
}

impl PgProxy {
    async fn start() -> PgProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let down = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let (d, c) = (down.clone(), conns.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if d.load(Ordering::SeqCst) {
                    continue; // refused: dropped at once
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut upstream) = TcpStream::connect("127.0.0.1:5432").await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut upstream).await;
                    }
                });
                c.lock().unwrap().push(task.abort_handle());
            }
        });
        PgProxy { port, down, conns }
    }

    fn cut(&self) {
        self.down.store(true, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    fn restore(&self) {
        self.down.store(false, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_mid_attach_repeats_no_azure_work() {
    let proxy = PgProxy::start().await;
    let db = TestDb::new().await;
    let mut config = test_config(&db);
    let mut url = url::Url::parse(&db.url).unwrap();
    url.set_port(Some(proxy.port)).unwrap();
    config.database.database_url = url.to_string();
    config.database.db_acquire_timeout = Duration::from_millis(500);
    // The production lease: what finished is kept through an outage that ends within it.
    config.queue.lease = Duration::from_secs(60);
    // Each ARM call takes 1 s, so the attach (4 calls) is mid-way when the database goes.
    let mut world = demo_world();
    world.behaviour.latency_ms = 1000;
    let sim = acr_attach::simulated::start(world, &mut config).await.unwrap();
    let app = TestApp::spawn_service(config, db).await;

    let r = app
        .post_json(
            "/v1/attachments",
            &json!({ "cluster": cluster("aks-demo"), "registry": registry("acrdemo") }),
        )
        .await;
    assert_eq!(r.status(), 202);
    let id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    app.wait_for_state(&id, &["running"], Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(700)).await;

    // The chaos suite's full size (`CHAOS=full`, see tests/api/chaos.rs) stops it for 10 s.
    let outage = if std::env::var("CHAOS").is_ok_and(|v| v == "full") {
        10
    } else {
        4
    };
    proxy.cut();
    let cut_at = std::time::Instant::now();
    // Meanwhile the API answers at once, and says when to come back.
    let asked = std::time::Instant::now();
    let r = app.get("/readyz").await;
    let readyz_ms = asked.elapsed().as_millis();
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let r = app.get(&format!("/v1/jobs/{id}")).await;
    assert_eq!(r.status(), 503, "{}", r.text().await.unwrap());
    tokio::time::sleep(Duration::from_secs(outage).saturating_sub(cut_at.elapsed())).await;
    proxy.restore();

    let job = app.wait_finished(&id, Duration::from_secs(30)).await;
    assert_eq!(job["state"], "succeeded", "{job:#}");
    assert_eq!(job["attempts"], 0, "the outage cost no attempt: {job:#}");
    assert_eq!(job["runs"], 1, "the attempt was not run again: {job:#}");
    for op in ["ManagedClusters_Get", "Registries_Get", "RoleAssignments_Create"] {
        assert_eq!(sim.call_count(op), 1, "{op} repeated after the outage");
    }
    let grants: Vec<_> = sim
        .role_assignments()
        .into_iter()
        .filter(|r| r.principal_id.eq_ignore_ascii_case(KUBELET))
        .collect();
    assert_eq!(grants.len(), 1, "{grants:?}");
    println!(
        "{}",
        json!({ "scenario": "database-outage", "outageSeconds": outage, "state": job["state"],
                "attempts": job["attempts"], "runs": job["runs"], "readyzMs": readyz_ms,
                "armWrites": sim.call_count("RoleAssignments_Create"), "duplicateAssignments": grants.len() - 1 })
    );
    app.stop().await;
    sim.shutdown().await;
}
