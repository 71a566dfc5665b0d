//! A fleet attach under ARM's real quotas: one registry attached to `--clusters` clusters spread
//! over `--subscriptions` subscriptions, against the in-process simulator with ARM's documented
//! token buckets. Prints figures and one JSON line; asserts nothing. Usage:
//!   cargo run --release --bin fleet-bench -- [--clusters 1000] [--subscriptions 10] [--via batch|single]
//! Method: BENCHMARKS.md ("Fleet attach under ARM's quotas").
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

use acr_attach::startup::Application;
use azure_simulator::fleet::{fleet_cluster, fleet_kubelet, with_fleet};
use azure_simulator::{CallRecord, Throttling, World};

mod common;

const DB: &str = "acr_attach_fleet_bench";
/// The registry every cluster is attached to (in the demo world's first subscription).
const REGISTRY: &str = "/subscriptions/11111111-1111-4111-8111-111111111111/resourceGroups/rg-aks-demo/providers/Microsoft.ContainerRegistry/registries/acrdemo";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Via {
    /// One `POST /v1/batches` with every cluster listed.
    Batch,
    /// One `POST /v1/attachments` per cluster.
    Single,
}

/// A fleet attach under ARM's quotas (prints figures; asserts nothing).
#[derive(Debug, clap::Parser)]
#[command(name = "fleet-bench")]
struct Args {
    #[command(flatten)]
    admin: common::AdminDatabase,
    #[arg(long, default_value_t = 1000)]
    clusters: usize,
    #[arg(long, default_value_t = 10)]
    subscriptions: usize,
    #[arg(long, value_enum, default_value_t = Via::Batch)]
    via: Via,
    /// Delay of every simulated request, in ms.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Fraction of ARM requests the simulator answers 500 (the "10 % faults": 0.1).
    #[arg(long, default_value_t = 0.0)]
    fault_rate: f64,
    /// Turn acr-attach's quota budget off (only ARM's 429s pace the jobs), for comparison.
    #[arg(long)]
    no_quota: bool,
    /// Workers of the service.
    #[arg(long, default_value_t = 16)]
    workers: usize,
}

/// ARM's bucket a simulator request drew from, as the simulator keys it (per subscription or
/// tenant, and kind; one caller here).
fn bucket_of(c: &CallRecord) -> Option<(String, &'static str)> {
    if c.operation == "Token" || c.operation.starts_with("Graph") || c.operation.starts_with("Entra") {
        return None;
    }
    let mut segs = c.path.split('/').filter(|s| !s.is_empty());
    let scope = match (segs.next(), segs.next()) {
        (Some(s), Some(sub)) if s.eq_ignore_ascii_case("subscriptions") => sub.to_ascii_lowercase(),
        (Some(p), _) if p.eq_ignore_ascii_case("providers") => "tenant".into(),
        _ => return None,
    };
    let kind = match c.method.as_str() {
        "GET" | "HEAD" => "reads",
        "DELETE" => "deletes",
        _ => "writes",
    };
    Some((scope, kind))
}

/// The fastest any client could finish: per bucket, the calls beyond its burst at its refill
/// rate; the slowest bucket decides.
fn quota_lower_bound(calls: &BTreeMap<(String, &'static str), usize>, t: &Throttling) -> (f64, String) {
    calls
        .iter()
        .map(|((scope, kind), n)| {
            let b = match *kind {
                "reads" => t.reads,
                "writes" => t.writes,
                _ => t.deletes,
            };
            let secs = ((*n as f64 - b.bucket) / b.refill_per_second).max(0.0);
            (secs, format!("{scope} {kind}: {n} calls"))
        })
        .fold((0.0, String::new()), |a, b| if b.0 > a.0 { b } else { a })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = <Args as clap::Parser>::parse();
    anyhow::ensure!(
        a.clusters > 0 && a.subscriptions > 0,
        "--clusters and --subscriptions must be positive"
    );
    let url = common::fresh_database(&a.admin.url, DB).await?;
    let mut config = common::service_config(&url)?;
    config.queue.concurrency = a.workers;
    config.ops.quota.enabled = !a.no_quota;

    let demo = World::from_file(concat!(env!("CARGO_MANIFEST_DIR"), "/demo/world.json").as_ref())?;
    let mut world = with_fleet(&demo, a.subscriptions, a.clusters);
    world.behaviour.throttling = Throttling::default();
    world.behaviour.latency_ms = a.latency_ms;
    world.behaviour.server_error_rate = a.fault_rate;
    let throttling = world.behaviour.throttling;
    let sim = acr_attach::simulated::start(world, &mut config).await?;
    let app = Application::build_service(config).await?;
    let base = format!("http://{}", app.address());
    let pool = sqlx::PgPool::connect(url.as_str()).await?;
    let stop = CancellationToken::new();
    let service = tokio::spawn(app.run_until_stopped(stop.clone()));
    let client = reqwest::Client::new();

    // The credential's first token is not what is measured.
    let token_warmup = Instant::now();
    let _ = client.get(format!("{base}/readyz")).send().await?;
    sim.clear_calls();

    let clusters: Vec<String> = (0..a.clusters).map(|i| fleet_cluster(i, a.subscriptions)).collect();
    let t0 = Instant::now();
    let posted_at = chrono::Utc::now();
    let submitted = match a.via {
        Via::Batch => {
            let r = client
                .post(format!("{base}/v1/batches"))
                .json(&json!({ "action": "attach", "registry": REGISTRY, "clusters": clusters }))
                .send()
                .await?;
            let status = r.status();
            let body: Value = r.json().await?;
            anyhow::ensure!(status.is_success(), "POST /v1/batches: {status} {body}");
            1
        }
        Via::Single => {
            let posts = clusters.iter().map(|c| {
                let client = client.clone();
                let url = format!("{base}/v1/attachments");
                let body = json!({ "cluster": c, "registry": REGISTRY });
                async move { client.post(url).json(&body).send().await.map(|r| r.status()) }
            });
            let statuses: Vec<_> = futures::future::join_all(posts).await;
            for s in statuses {
                let s = s?;
                anyhow::ensure!(s.is_success(), "POST /v1/attachments: {s}");
            }
            a.clusters
        }
    };
    let submit_s = t0.elapsed().as_secs_f64();
    eprintln!(
        "submitted {} attaches in {submitted} request(s) in {submit_s:.2} s (token warm-up {:?})",
        a.clusters,
        token_warmup.elapsed()
    );

    // Done when every attach job has finished (the batch's own job, if any, finished first).
    let mut last_report = Instant::now();
    let (succeeded, failed) = loop {
        let (finished, succeeded, failed): (i64, i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE state IN ('succeeded','failed','cancelled')), \
                    count(*) FILTER (WHERE state = 'succeeded'), count(*) FILTER (WHERE state = 'failed') \
             FROM job WHERE kind = 'attach'",
        )
        .fetch_one(&pool)
        .await?;
        if finished as usize >= a.clusters {
            break (succeeded, failed);
        }
        if last_report.elapsed() > Duration::from_secs(10) {
            eprintln!(
                "{:>6.1} s: {finished} of {} finished",
                t0.elapsed().as_secs_f64(),
                a.clusters
            );
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // POST sent → the last attach job finished (the database's clock is this machine's).
    let last: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT max(finalized_at) FROM job WHERE kind = 'attach'")
            .fetch_one(&pool)
            .await?;
    let completion_s = last.map_or(f64::NAN, |l| (l - posted_at).num_milliseconds() as f64 / 1000.0);
    let wall_s = t0.elapsed().as_secs_f64();

    let calls = sim.calls();
    let mut per_bucket: BTreeMap<(String, &'static str), usize> = BTreeMap::new();
    for c in calls.iter().filter(|c| c.status != 429) {
        if let Some(b) = bucket_of(c) {
            *per_bucket.entry(b).or_default() += 1;
        }
    }
    let arm_calls = calls.iter().filter(|c| bucket_of(c).is_some()).count();
    let throttled = calls.iter().filter(|c| c.status == 429).count();
    let (lower_bound_s, binding) = quota_lower_bound(&per_bucket, &throttling);
    let assignments = sim.role_assignments();
    let (mut duplicates, mut missing) = (0, 0);
    for i in 0..a.clusters {
        let n = assignments
            .iter()
            .filter(|r| {
                r.scope.eq_ignore_ascii_case(REGISTRY) && r.principal_id.eq_ignore_ascii_case(&fleet_kubelet(i))
            })
            .count();
        duplicates += n.saturating_sub(1);
        missing += usize::from(n == 0);
    }
    let (jobs_waited_for_quota, attempts): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(DISTINCT job_id) FROM job_event WHERE type = 'waiting' AND data->>'condition' = 'armQuota'), \
                (SELECT coalesce(sum(attempts), 0) FROM job WHERE kind = 'attach')",
    )
    .fetch_one(&pool)
    .await?;

    let ratio = if lower_bound_s > 0.0 {
        completion_s / lower_bound_s
    } else {
        f64::NAN
    };
    println!(
        "fleet attach: {} clusters over {} subscriptions, via {:?}",
        a.clusters, a.subscriptions, a.via
    );
    println!(
        "  completion {completion_s:.1} s (wall {wall_s:.1} s); quota lower bound {lower_bound_s:.1} s ({binding}); ratio {ratio:.3}"
    );
    println!(
        "  ARM calls {arm_calls} ({:.2} per attach), 429s {throttled} ({:.2} %), duplicates {duplicates}, missing {missing}",
        arm_calls as f64 / a.clusters as f64,
        100.0 * throttled as f64 / arm_calls.max(1) as f64
    );
    println!(
        "  jobs succeeded {succeeded}, failed {failed}; jobs that waited for quota {jobs_waited_for_quota}; attempts used {attempts}"
    );
    for ((scope, kind), n) in &per_bucket {
        println!("    {scope:<40} {kind:<8} {n}");
    }
    println!(
        "{}",
        json!({
            "bench": "fleet",
            "clusters": a.clusters,
            "subscriptions": a.subscriptions,
            "via": format!("{:?}", a.via).to_lowercase(),
            "quota_budget": !a.no_quota,
            "latency_ms": a.latency_ms,
            "fault_rate": a.fault_rate,
            "workers": a.workers,
            "completion_s": (completion_s * 10.0).round() / 10.0,
            "quota_lower_bound_s": (lower_bound_s * 10.0).round() / 10.0,
            "binding_bucket": binding,
            "ratio": (ratio * 1000.0).round() / 1000.0,
            "arm_calls": arm_calls,
            "arm_calls_per_attach": arm_calls as f64 / a.clusters as f64,
            "throttled_429": throttled,
            "throttled_pct": 100.0 * throttled as f64 / arm_calls.max(1) as f64,
            "duplicates": duplicates,
            "missing": missing,
            "succeeded": succeeded,
            "failed": failed,
            "jobs_waited_for_quota": jobs_waited_for_quota,
            "attempts_used": attempts,
        })
    );
    stop.cancel();
    let _ = service.await;
    Ok(())
}
