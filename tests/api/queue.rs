//! Queue semantics against the real PostgreSQL: dedup, per-target order across replicas,
//! leases and fencing, waits, back-off, deadlines, cancel, shutdown, retention.
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

use acr_attach::config::Mode;
use acr_attach::queue::{Handlers, JobState, NewJob};

use crate::helpers::{TestApp, TestDb, test_config};
use crate::support::{Log, Scripted, scripted};

const SETTLE: Duration = Duration::from_secs(20);

/// A replica with leases of 1 s that it never renews and no rescue of its own: it froze.
async fn frozen_replica(db: &TestDb, log: &Arc<Log>) -> TestApp {
    let mut cfg = test_config(db);
    cfg.queue.lease = Duration::from_secs(1);
    cfg.queue.heartbeat_interval = Duration::from_secs(3600);
    cfg.queue.rescue_interval = Duration::from_secs(3600);
    TestApp::spawn_with(cfg, db.clone(), handlers(log)).await
}

fn handlers(log: &Arc<Log>) -> Handlers {
    Handlers::new().with(Scripted::new(log.clone()))
}

async fn api_only_app(log: &Arc<Log>) -> TestApp {
    let db = TestDb::new().await;
    let mut cfg = test_config(&db);
    cfg.mode = Mode::Api;
    TestApp::spawn_with(cfg, db, handlers(log)).await
}

async fn enqueue(app: &TestApp, job: NewJob) -> String {
    app.store.enqueue_one(&job).await.unwrap().job.id.to_string()
}

fn job(steps: &[&str]) -> NewJob {
    NewJob::new("scripted", scripted(steps, "g", 0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_identical_enqueues_make_one_job() {
    let log = Arc::new(Log::default());
    let app = api_only_app(&log).await;
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let store = app.store.clone();
        tasks.push(tokio::spawn(async move {
            let new = NewJob::new("scripted", scripted(&["ok"], "t1", 1)).with_target("target-1");
            store.enqueue_one(&new).await.unwrap()
        }));
    }
    let mut ids = std::collections::HashSet::new();
    let mut fresh = 0;
    for t in tasks {
        let e = t.await.unwrap();
        ids.insert(e.job.id);
        fresh += usize::from(!e.deduplicated);
    }
    assert_eq!(ids.len(), 1, "every request got the same job");
    assert_eq!(fresh, 1, "exactly one request created it");
    assert_eq!(app.count_jobs().await, 1);
    // A different request for the same target is a new job, queued behind the first.
    let other = app
        .store
        .enqueue_one(&NewJob::new("scripted", scripted(&["ok"], "t1", 2)).with_target("target-1"))
        .await
        .unwrap();
    assert!(!other.deduplicated);
    // And the first request again is NOT folded into the older job: the latest job of the
    // target differs, so the request's intent (run after the second) needs a job of its own.
    let again = app
        .store
        .enqueue_one(&NewJob::new("scripted", scripted(&["ok"], "t1", 1)).with_target("target-1"))
        .await
        .unwrap();
    assert!(!again.deduplicated);
    assert_eq!(app.count_jobs().await, 3);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_sharing_a_database_run_one_job_per_target_in_order() {
    let log = Arc::new(Log::default());
    let first = TestApp::spawn(handlers(&log)).await;
    let db = first.db.clone();
    let mut replicas = vec![first];
    for _ in 0..2 {
        replicas.push(TestApp::spawn_with(test_config(&db), db.clone(), handlers(&log)).await);
    }
    // 6 targets x 6 jobs, interleaved; some jobs fail once, so retries must hold the line too.
    let mut ids = Vec::new();
    for n in 0..6 {
        for t in 0..6 {
            let steps: &[&str] = if (n + t) % 3 == 0 {
                &["transient", "sleep:15"]
            } else {
                &["sleep:15"]
            };
            let new = NewJob::new("scripted", scripted(steps, &format!("t{t}"), n)).with_target(format!("target-{t}"));
            ids.push(enqueue(&replicas[(n + t) as usize % 3], new).await);
        }
    }
    for id in &ids {
        let j = replicas[0].wait_finished(id, SETTLE).await;
        assert_eq!(j["state"], "succeeded", "{j:#}");
    }
    assert_eq!(log.max_active_per_group(), 1, "two jobs of one target ran at once");
    let entries = log.entries();
    for t in 0..6 {
        let mut runs: Vec<_> = entries.iter().filter(|e| e.group == format!("t{t}")).collect();
        runs.sort_by_key(|e| e.started);
        let order: Vec<i64> = runs.iter().map(|e| e.n).collect();
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(order, sorted, "target t{t} ran out of order: {order:?}");
        for w in runs.windows(2) {
            assert!(w[0].ended.unwrap() <= w[1].started, "overlap on t{t}");
        }
    }
    let workers: std::collections::HashSet<String> =
        sqlx::query_scalar("SELECT DISTINCT data->>'worker' FROM job_event WHERE type = 'started'")
            .fetch_all(&replicas[0].pool)
            .await
            .unwrap()
            .into_iter()
            .collect();
    assert!(
        workers.len() >= 2,
        "the work was shared by several replicas: {workers:?}"
    );
    for r in replicas.into_iter().rev() {
        r.shutdown().await;
    }
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_stops_heartbeating_loses_its_job_and_its_late_result() {
    let log = Arc::new(Log::default());
    let db = TestDb::new().await;
    // Replica A: leases of 1 s that it never renews (as if it froze or was killed).
    let a = frozen_replica(&db, &log).await;
    let id = enqueue(&a, job(&["block", "ok"])).await;
    a.wait_for_state(&id, &["running"], SETTLE).await;

    // Replica B sweeps expired leases and runs the job again.
    let b = TestApp::spawn_with(test_config(&db), db.clone(), handlers(&log)).await;
    let done = b.wait_finished(&id, SETTLE).await;
    assert_eq!(done["state"], "succeeded");
    assert_eq!(done["result"], json!({ "run": 2 }));
    assert_eq!(done["attempts"], 1, "the lost attempt counts");
    assert_eq!(done["lastError"]["code"], "WorkerLost");

    // A's attempt now finishes; its completion is fenced off.
    log.release.notify_waiters();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = b.get_job(&id).await;
    assert_eq!(
        after["result"],
        json!({ "run": 2 }),
        "a stale worker overwrote the result"
    );
    let types: Vec<String> = b
        .events(&id)
        .await
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(types, ["enqueued", "started", "rescued", "started", "succeeded"]);
    b.shutdown().await;
    a.shutdown().await;
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rescued_job_backs_off_like_its_own_kind() {
    let log = Arc::new(Log::default());
    let db = TestDb::new().await;
    let a = frozen_replica(&db, &log).await;
    let id = enqueue(&a, job(&["block", "ok"])).await;
    a.wait_for_state(&id, &["running"], SETTLE).await;

    // Replica B runs the kind with a 20 s back-off: the rescued job waits that long, not the
    // queue's default 1 s.
    let slow = acr_attach::queue::RetryPolicy {
        base: Duration::from_secs(20),
        cap: Duration::from_secs(20),
        max_retry_after: Duration::from_secs(60),
    };
    let b = TestApp::spawn_with(
        test_config(&db),
        db.clone(),
        Handlers::new().with(Scripted {
            log: log.clone(),
            policy: slow,
        }),
    )
    .await;
    let rescued = b.wait_for_state(&id, &["retrying"], SETTLE).await;
    assert_eq!(rescued["lastError"]["code"], "WorkerLost");
    let next: chrono::DateTime<chrono::Utc> = rescued["nextAttemptAt"].as_str().unwrap().parse().unwrap();
    let wait = (next - chrono::Utc::now()).num_milliseconds();
    assert!(wait > 10_000, "backed off {wait} ms, not the kind's 16-24 s");
    log.release.notify_waiters();
    b.shutdown().await;
    a.shutdown().await;
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_does_not_consume_attempts() {
    let log = Arc::new(Log::default());
    let app = TestApp::spawn(handlers(&log)).await;
    let mut new = job(&["wait", "wait", "nyc", "wait", "ok"]);
    new = new.with_max_attempts(1);
    let id = enqueue(&app, new).await;
    let done = app.wait_finished(&id, SETTLE).await;
    assert_eq!(done["state"], "succeeded", "{done:#}");
    assert_eq!(done["attempts"], 0);
    assert_eq!(done["waits"], 4);
    assert_eq!(done["runs"], 5);
    let waits: Vec<_> = app
        .events(&id)
        .await
        .into_iter()
        .filter(|e| e["type"] == "waiting")
        .collect();
    assert_eq!(waits.len(), 4);
    assert_eq!(waits[0]["data"]["condition"], "somethingPropagating");
    assert_eq!(waits[2]["data"]["condition"], "replication");
    assert_eq!(waits[2]["data"]["error"]["code"], "PrincipalNotFound");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_job_shows_what_it_waits_for_and_since_when() {
    let log = Arc::new(Log::default());
    let app = TestApp::spawn(handlers(&log)).await;
    // `nyc` repeats forever: the job keeps waiting for the same condition.
    let id = enqueue(&app, job(&["nyc"])).await;
    let first = app.wait_for_state(&id, &["waiting"], SETTLE).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let later = app.wait_for_state(&id, &["waiting"], SETTLE).await;
    assert_eq!(later["wait"]["condition"], "replication");
    assert_eq!(
        later["wait"]["since"], first["wait"]["since"],
        "since is kept across polls"
    );
    assert!(later["waits"].as_i64().unwrap() > first["waits"].as_i64().unwrap());
    assert_eq!(later["status"], "Running");
    assert!(later["nextAttemptAt"].is_string());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_back_off_exponentially_and_honour_retry_after() {
    let log = Arc::new(Log::default());
    let app = TestApp::spawn(handlers(&log)).await;
    let id = enqueue(
        &app,
        job(&["transient", "transient", "transient", "retry_after:700", "ok"]),
    )
    .await;
    let done = app.wait_finished(&id, SETTLE).await;
    assert_eq!(done["state"], "succeeded");
    assert_eq!(done["attempts"], 4);
    let retries: Vec<serde_json::Value> = app
        .events(&id)
        .await
        .into_iter()
        .filter(|e| e["type"] == "retry_scheduled")
        .collect();
    let delays: Vec<f64> = retries
        .iter()
        .map(|e| e["data"]["delayMs"].as_f64().unwrap() / 1000.0)
        .collect();
    assert_eq!(delays.len(), 4);
    // base 100 ms, doubling, cap 400 ms, jitter ±20 %; then the remote Retry-After of 700 ms.
    for (d, nominal) in delays.iter().zip([0.1, 0.2, 0.4, 0.7]) {
        let slack = if nominal == 0.7 { 0.001 } else { nominal * 0.2 + 0.001 };
        assert!((d - nominal).abs() <= slack, "delay {d} vs {nominal} in {delays:?}");
    }
    // The schedule is what the job row and the timeline say.
    for e in &retries {
        let at: chrono::DateTime<chrono::Utc> = e["at"].as_str().unwrap().parse().unwrap();
        let next: chrono::DateTime<chrono::Utc> = e["data"]["nextAttemptAt"].as_str().unwrap().parse().unwrap();
        let d = e["data"]["delayMs"].as_i64().unwrap();
        assert!(((next - at).num_milliseconds() - d).abs() <= 2, "{e}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempts_and_deadline_bound_retries() {
    let log = Arc::new(Log::default());
    let app = TestApp::spawn(handlers(&log)).await;
    let capped = enqueue(&app, job(&["transient"]).with_max_attempts(3)).await;
    let timed = enqueue(
        &app,
        NewJob::new("scripted", scripted(&["transient"], "h", 1)).with_deadline(Duration::from_millis(900)),
    )
    .await;
    let permanent = enqueue(&app, NewJob::new("scripted", scripted(&["permanent"], "p", 1))).await;

    let j = app.wait_finished(&capped, SETTLE).await;
    assert_eq!(j["state"], "failed");
    assert_eq!(j["status"], "Failed");
    assert_eq!(j["attempts"], 3);
    assert!(
        j["error"]["message"]
            .as_str()
            .unwrap()
            .contains("gave up after 3 attempts"),
        "{j:#}"
    );
    assert_eq!(
        j["errors"].as_array().unwrap().len(),
        3,
        "every failed attempt is in the history"
    );

    let j = app.wait_finished(&timed, SETTLE).await;
    assert_eq!(j["state"], "failed");
    assert!(j["error"]["message"].as_str().unwrap().contains("deadline"), "{j:#}");

    let j = app.wait_finished(&permanent, SETTLE).await;
    assert_eq!(j["state"], "failed");
    assert_eq!(j["attempts"], 1, "a permanent error is not retried");
    assert_eq!(j["error"]["code"], "Broken");
    assert_eq!(j["error"]["class"], "permanent");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_survives_the_retry() {
    let log = Arc::new(Log::default());
    let app = TestApp::spawn(handlers(&log)).await;
    let id = enqueue(&app, job(&["checkpoint", "echo_checkpoint"])).await;
    let done = app.wait_finished(&id, SETTLE).await;
    assert_eq!(done["result"], json!({ "checkpoint": { "run": 1 } }));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_a_queued_job_at_once_and_a_running_one_through_its_worker() {
    let log = Arc::new(Log::default());
    let app = TestApp::spawn(handlers(&log)).await;
    // Queued: scheduled for later, so no worker has it.
    let later = enqueue(
        &app,
        job(&["ok"]).with_run_at(chrono::Utc::now() + chrono::Duration::hours(1)),
    )
    .await;
    let r = app
        .client
        .post(app.url(&format!("/v1/jobs/{later}/cancel")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["state"], "cancelled");
    assert_eq!(body["status"], "Canceled");
    // Cancelling again changes nothing and says so.
    let r = app
        .client
        .post(app.url(&format!("/v1/jobs/{later}/cancel")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Running: blocked in its handler until told to stop.
    let running = enqueue(&app, NewJob::new("scripted", scripted(&["block"], "r", 1))).await;
    app.wait_for_state(&running, &["running"], SETTLE).await;
    let r = app
        .client
        .post(app.url(&format!("/v1/jobs/{running}/cancel")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(
        r.headers()["operation-location"],
        format!("/v1/jobs/{running}").as_str()
    );
    let done = app.wait_finished(&running, Duration::from_secs(5)).await;
    assert_eq!(done["state"], "cancelled");
    let types: Vec<String> = app
        .events(&running)
        .await
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(types, ["enqueued", "started", "cancel_requested", "cancelled"]);

    // Finished jobs cannot be cancelled.
    let ok = enqueue(&app, NewJob::new("scripted", scripted(&["ok"], "o", 1))).await;
    app.wait_finished(&ok, SETTLE).await;
    let r = app
        .client
        .post(app.url(&format!("/v1/jobs/{ok}/cancel")))
        .send()
        .await
        .unwrap();
    crate::helpers::assert_error(r, reqwest::StatusCode::CONFLICT, "JobAlreadyFinished").await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_hands_running_jobs_back_without_consuming_an_attempt() {
    let log = Arc::new(Log::default());
    let db = TestDb::new().await;
    let mut cfg = test_config(&db);
    cfg.queue.shutdown_grace = Duration::from_millis(300);
    let app = TestApp::spawn_with(cfg, db.clone(), handlers(&log)).await;
    let id = enqueue(&app, job(&["block", "ok"])).await;
    app.wait_for_state(&id, &["running"], SETTLE).await;
    let db = app.shutdown().await;

    let pool = db.pool().await;
    let (state, attempts, locked_by): (JobState, i32, Option<String>) =
        sqlx::query_as("SELECT state, attempts, locked_by FROM job WHERE id = $1::uuid")
            .bind(&id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(state, JobState::Queued);
    assert_eq!(attempts, 0);
    assert_eq!(locked_by, None);

    // A new replica picks it up at once, without waiting for a lease to expire.
    let next = TestApp::spawn_with(test_config(&db), db.clone(), handlers(&log)).await;
    let done = next.wait_finished(&id, Duration::from_secs(3)).await;
    assert_eq!(done["state"], "succeeded");
    assert_eq!(done["attempts"], 0);
    let types: Vec<String> = next
        .events(&id)
        .await
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(types, ["enqueued", "started", "handed_back", "started", "succeeded"]);
    pool.close().await;
    next.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_prunes_old_finished_jobs_in_batches() {
    let log = Arc::new(Log::default());
    let app = TestApp::spawn(handlers(&log)).await;
    let mut ids = Vec::new();
    for (n, steps) in [["ok"], ["ok"], ["ok"], ["permanent"], ["permanent"], ["ok"]]
        .iter()
        .enumerate()
    {
        ids.push(enqueue(&app, NewJob::new("scripted", scripted(steps, "r", n as i64))).await);
    }
    for id in &ids {
        app.wait_finished(id, SETTLE).await;
    }
    let pending = enqueue(
        &app,
        job(&["ok"]).with_run_at(chrono::Utc::now() + chrono::Duration::hours(1)),
    )
    .await;
    // Age them: three succeeded 8 days ago (past 7 d), one failed 8 days ago (within 30 d),
    // one failed 31 days ago (past 30 d), one succeeded just now.
    let age = |id: &str, days: i64| {
        sqlx::query("UPDATE job SET finalized_at = now() - make_interval(days => $2) WHERE id = $1::uuid")
            .bind(id.to_string())
            .bind(days as i32)
            .execute(&app.pool)
    };
    for (id, days) in ids.iter().zip([8, 8, 8, 8, 31, 0]) {
        age(id, days).await.unwrap();
    }
    let deleted = app
        .store
        .prune(Duration::from_secs(7 * 86400), Duration::from_secs(30 * 86400), 2)
        .await
        .unwrap();
    assert_eq!(deleted, 4);
    let left: Vec<String> = sqlx::query_scalar("SELECT id::text FROM job ORDER BY seq")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(left, vec![ids[3].clone(), ids[5].clone(), pending.clone()]);
    let orphans: i64 = sqlx::query_scalar("SELECT count(*) FROM job_event WHERE job_id NOT IN (SELECT id FROM job)")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(orphans, 0, "events go with their job");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_replicas_job_restarts_at_once_not_after_its_lease() {
    // Replica A: the real binary, on a simulated Azure whose every call takes 30 s, so its
    // attach is still running when A is killed (-9: no shutdown, no hand-back).
    let db = TestDb::new().await;
    let mut world = crate::azure_app::demo_world();
    world.behaviour.latency_ms = 30_000;
    let world_file = std::env::temp_dir().join(format!("acr-attach-slow-world-{}.json", db.name));
    std::fs::write(&world_file, serde_json::to_vec(&world).unwrap()).unwrap();
    let mut a = crate::logs::Served::serve(&db, &["--simulator", world_file.to_str().unwrap(), "--lease", "60s"]);
    let address = a.wait_for("HTTP API listening")["address"]
        .as_str()
        .unwrap()
        .to_string();
    let job: serde_json::Value = reqwest::Client::new()
        .post(format!("http://{address}/v1/attachments"))
        .json(&json!({ "cluster": crate::azure_app::cluster("aks-demo"), "registry": "acrdemo" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = job["id"].as_str().unwrap().to_string();
    let pool = db.pool().await;
    loop {
        let state: String = sqlx::query_scalar("SELECT state::text FROM job WHERE id = $1::uuid")
            .bind(&id)
            .fetch_one(&pool)
            .await
            .unwrap();
        if state == "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    a.child.kill().unwrap();
    a.child.wait().unwrap();

    // Replica B takes the job over as soon as it sweeps, though A's lease (60 s) is far from
    // expired, and finishes it on a fast Azure.
    let sim = azure_simulator::start(crate::azure_app::demo_world(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let mut cfg = test_config(&db);
    acr_attach::simulated::point_at(&sim, &crate::azure_app::demo_world(), &mut cfg).unwrap();
    let b_app = TestApp::spawn_service(cfg, db.clone()).await;
    let done = b_app.wait_finished(&id, Duration::from_secs(20)).await;
    assert_eq!(done["state"], "succeeded", "{done:#}");
    let rescued: Vec<serde_json::Value> = b_app
        .events(&id)
        .await
        .into_iter()
        .filter(|e| e["type"] == "rescued")
        .collect();
    assert_eq!(rescued.len(), 1, "{rescued:#?}");
    let why = rescued[0]["data"]["error"]["message"].as_str().unwrap();
    assert!(
        why.contains("lost its database session"),
        "rescued for its session, not its lease: {why}"
    );
    pool.close().await;
    b_app.shutdown().await;
    sim.shutdown().await;
    db.drop_db().await;
}
