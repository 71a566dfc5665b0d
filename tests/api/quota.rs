//! ARM's quota, budgeted by acr-attach before each call (docs/queue.md, "ARM quota"): replicas
//! share one copy of each bucket in Postgres, jobs wait for reserved tokens without holding a
//! worker or using an attempt, and a 429 slows every job of its bucket.
use serde_json::{Value, json};
use std::time::Duration;

use crate::azure_app::*;
use crate::helpers::TestApp;
use azure_simulator::fleet::{fleet_cluster, fleet_kubelet, with_fleet};
use azure_simulator::{Bucket, World};

const CLUSTERS: usize = 24;
const SUBSCRIPTIONS: usize = 2;

/// The demo world with a fleet, and small write and read buckets, so a few dozen attaches of
/// one registry outrun them.
fn small_buckets_world() -> World {
    let mut w = with_fleet(&demo_world(), SUBSCRIPTIONS, CLUSTERS);
    w.behaviour.throttling.writes = Bucket {
        bucket: 4.0,
        refill_per_second: 4.0,
    };
    w.behaviour.throttling.reads = Bucket {
        bucket: 8.0,
        refill_per_second: 8.0,
    };
    w
}

async fn attach_fleet(app: &TestApp) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..CLUSTERS {
        let r = app
            .post_json(
                "/v1/attachments",
                &json!({ "cluster": fleet_cluster(i, SUBSCRIPTIONS), "registry": registry("acrdemo") }),
            )
            .await;
        assert_eq!(r.status(), 202);
        ids.push(r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string());
    }
    ids
}

fn throttled(sim: &azure_simulator::Simulator) -> usize {
    sim.calls().iter().filter(|c| c.status == 429).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_run_a_batch_sharing_the_quota_and_arm_never_throttles() {
    let (sim, mut config, one) = simulator_and_replica(small_buckets_world()).await;
    // A tenth under the simulator's buckets: its clock and ours start a few milliseconds apart.
    config.ops.quota.writes = "4/3.6".parse().unwrap();
    config.ops.quota.reads = "8/7.2".parse().unwrap();
    // The first replica was started with the defaults (ARM's real limits, far above these);
    // restart it with the small ones so both replicas budget alike.
    let db = one.shutdown().await;
    let one = TestApp::spawn_service(config.clone(), db.clone()).await;
    config.queue.worker_id = format!("{}-second", config.queue.worker_id);
    let two = TestApp::spawn_service(config, db).await;

    // One attach first, then a pause for the buckets to refill: both sides' copies of SUB1's
    // buckets then start together (ours starts at the first token taken, the simulator's at the
    // first request, which otherwise follows the service's first Entra token by a few hundred ms).
    let warm = one
        .post_json(
            "/v1/attachments",
            &json!({ "cluster": cluster("aks-demo"), "registry": registry("acrdemo") }),
        )
        .await;
    let warm = warm.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    assert_eq!(
        one.wait_finished(&warm, Duration::from_secs(30)).await["state"],
        "succeeded"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;

    // One batch (through the first replica), its items run by both.
    let clusters: Vec<String> = (0..CLUSTERS).map(|i| fleet_cluster(i, SUBSCRIPTIONS)).collect();
    let r = one
        .post_json(
            "/v1/batches",
            &json!({ "action": "attach", "registry": registry("acrdemo"), "clusters": clusters }),
        )
        .await;
    assert_eq!(r.status(), 202);
    let batch = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let b: Value = two.get(&format!("/v1/batches/{batch}")).await.json().await.unwrap();
        if b["status"] == "Succeeded" {
            break;
        }
        assert!(
            !["Failed", "Canceled"].contains(&b["status"].as_str().unwrap_or("")),
            "{b:#}"
        );
        assert!(std::time::Instant::now() < deadline, "batch not finished: {b:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let items: Value = two
        .get(&format!("/v1/batches/{batch}/items?limit=100"))
        .await
        .json()
        .await
        .unwrap();
    let ids: Vec<String> = items["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["jobId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), CLUSTERS);
    let mut waited_for_quota = 0;
    for id in &ids {
        let job = two.wait_finished(id, Duration::from_secs(60)).await;
        assert_eq!(job["state"], "succeeded", "{job:#}");
        assert_eq!(job["attempts"], 0, "waiting for quota uses no attempt: {job:#}");
        let events = two.events(id).await;
        assert!(
            !events.iter().any(|e| e["type"] == "retry_scheduled"),
            "no retries: {events:#?}"
        );
        if events
            .iter()
            .any(|e| e["type"] == "waiting" && e["data"]["condition"] == "armQuota")
        {
            waited_for_quota += 1;
        }
    }
    for i in 0..CLUSTERS {
        let grants = sim
            .role_assignments()
            .into_iter()
            .filter(|r| r.principal_id.eq_ignore_ascii_case(&fleet_kubelet(i)))
            .count();
        assert_eq!(grants, 1, "cluster {i} holds exactly one grant");
    }
    // 24 PUTs through a bucket of 4 at 4/s: most jobs waited for a reserved token, and the two
    // replicas together never spent a token ARM did not have.
    assert!(
        waited_for_quota >= CLUSTERS / 2,
        "{waited_for_quota} jobs waited for quota"
    );
    assert_eq!(throttled(&sim), 0, "ARM answered no 429");
    one.stop().await;
    two.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_slows_the_whole_bucket_and_uses_no_attempt() {
    // acr-attach budgets ARM's documented limits, but this subscription's are far lower (as
    // when another client spends the same principal's quota): ARM's 429s are the last line.
    let mut world = small_buckets_world();
    world.behaviour.throttling.writes = Bucket {
        bucket: 2.0,
        refill_per_second: 2.0,
    };
    let (sim, _, app) = simulator_and_replica(world).await;
    let ids = attach_fleet(&app).await;
    for id in &ids {
        let job = app.wait_finished(id, Duration::from_secs(60)).await;
        assert_eq!(job["state"], "succeeded", "{job:#}");
        assert_eq!(job["attempts"], 0, "a 429 uses no attempt: {job:#}");
    }
    let answered = throttled(&sim);
    assert!(answered > 0, "the simulator throttled");
    // Every 429 moved the shared bucket, so the jobs behind it waited too.
    let pool = app.db.pool().await;
    let recorded: i64 = sqlx::query_scalar("SELECT coalesce(sum(throttled_total), 0)::bigint FROM arm_quota")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(recorded as usize, answered, "every 429 reached the shared bucket");
    let waits: i64 =
        sqlx::query_scalar("SELECT count(*) FROM job_event WHERE type = 'waiting' AND data->>'condition' = 'armQuota'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(
        waits as usize >= answered,
        "each 429 became a wait: {waits} waits, {answered} 429s"
    );
    app.stop().await;
}

/// The bucket itself (`arm_quota_take`): the burst goes at once, then one token per 1/rate, each
/// missing token reserved for the job that asked, redeemed when it comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_reserved_in_order_and_redeemed_once() {
    let app = TestApp::spawn(acr_attach::queue::Handlers::new()).await;
    let pool = app.db.pool().await;
    let take = |job: uuid::Uuid| {
        let pool = pool.clone();
        async move {
            // 3 tokens, 2 per second, no waiting in place: every later token is a ticket.
            sqlx::query_scalar::<_, f64>("SELECT arm_quota_take('s:p:writes', $1, 2, 3, 0)")
                .bind(job)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    let jobs: Vec<uuid::Uuid> = (0..5).map(|_| uuid::Uuid::new_v4()).collect();
    for j in &jobs[..3] {
        assert_eq!(take(*j).await, 0.0, "the burst");
    }
    let fourth = take(jobs[3]).await;
    let fifth = take(jobs[4]).await;
    // The 4th token is due 1/rate after the first (less the time the first three took).
    assert!(fourth > 0.0 && fourth <= 0.5, "the next token: {fourth}");
    // (less the time between the two asks)
    assert!(
        (0.4..=0.51).contains(&(fifth - fourth)),
        "one per 1/rate: {fourth}, {fifth}"
    );
    // Asking again before the slot neither takes another token nor loses the reservation.
    let again = take(jobs[4]).await;
    assert!(again > 0.5 && again <= fifth, "{again}");
    let tickets: i64 = sqlx::query_scalar("SELECT count(*) FROM arm_quota_ticket")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(tickets, 2);
    // Once the slot has come, the ticket is the token.
    tokio::time::sleep(Duration::from_millis(1050)).await;
    assert_eq!(take(jobs[4]).await, 0.0);
    assert_eq!(take(jobs[3]).await, 0.0);
    let tickets: i64 = sqlx::query_scalar("SELECT count(*) FROM arm_quota_ticket")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(tickets, 0, "redeemed once");
    // A 429 with Retry-After 5 s pushes every later token past it.
    sqlx::query("SELECT arm_quota_observe('s:p:writes', 2, 3, 5, NULL)")
        .execute(&pool)
        .await
        .unwrap();
    let after = take(uuid::Uuid::new_v4()).await;
    assert!((4.9..=5.1).contains(&after), "{after}");
    app.stop().await;
}
