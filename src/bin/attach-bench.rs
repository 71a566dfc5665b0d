//! Single attach and single detach, end to end, against the in-process Azure simulator (the
//! demo world) at 0 ms and 50 ms per ARM call. Prints tables and one JSON line at the end; it
//! asserts nothing. Usage:
//!   cargo run --release --bin attach-bench -- [--iterations 20] [--latencies 0,50] [--poll-ms 2]
//! Method: BENCHMARKS.md ("Single attach and detach").
use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

mod common;

use acr_attach::startup::Application;
use azure_simulator::{Bucket, Simulator, Throttling, World};

/// The database of the benchmark (dropped at the start of every run).
const DB: &str = "acr_attach_attach_bench";
const CLUSTER: &str = "/subscriptions/11111111-1111-4111-8111-111111111111/resourceGroups/rg-aks-demo/providers/Microsoft.ContainerService/managedClusters/aks-demo";
const REGISTRY_ID: &str = "/subscriptions/11111111-1111-4111-8111-111111111111/resourceGroups/rg-aks-demo/providers/Microsoft.ContainerRegistry/registries/acrdemo";
const REGISTRY_NAME: &str = "acrdemo";
/// The baseline: `az aks update --attach-acr` against the simulator at 50 ms per ARM
/// call (README, "Compared with the Azure CLI").
const BASELINE_AZ_MS: f64 = 1620.0;
const BASELINE_AZ_CALLS: usize = 11;
/// The target: POST to Succeeded at 50 ms per ARM call.
const TARGET_MS: f64 = 160.0;
const TARGET_LATENCY_MS: u64 = 50;

/// Single attach and detach against the in-process simulator (prints figures; asserts nothing).
#[derive(Debug, clap::Parser)]
#[command(name = "attach-bench")]
struct Args {
    #[command(flatten)]
    admin: common::AdminDatabase,
    /// Measured jobs per row (operation, registry form, latency).
    #[arg(long, default_value_t = 20)]
    iterations: usize,
    /// Simulated latency of every request to the simulator (ARM, token, Graph), in ms; one set
    /// of rows per value.
    #[arg(long, value_delimiter = ',', default_value = "0,50")]
    latencies: Vec<u64>,
    /// Untimed attach/detach rounds before each latency's measurements (at least 1: the
    /// credential's token must not be in the figures).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    warmup: u32,
    /// Pause between two GET /v1/jobs/{id} while waiting for Succeeded, in ms.
    #[arg(long, default_value_t = 2)]
    poll_ms: u64,
    /// The simulator's world.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/demo/world.json"))]
    world: PathBuf,
    /// Keep the world's ARM throttling buckets (by default they are lifted: jobs back to back at
    /// 0 ms exceed ARM's 25 reads/s, and the retries would be measured instead of a single job).
    #[arg(long)]
    arm_throttling: bool,
}

#[derive(Clone, Copy)]
enum Op {
    Attach,
    Detach,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Attach => "attach",
            Op::Detach => "detach",
        }
    }
    fn path(self) -> &'static str {
        match self {
            Op::Attach => "/v1/attachments",
            Op::Detach => "/v1/detachments",
        }
    }
}

/// One measured job.
struct Sample {
    /// POST sent → GET observed Succeeded.
    wall_ms: f64,
    /// POST sent → its 202 received.
    post_ms: f64,
    /// The job's own createdAt → finishedAt.
    server_ms: f64,
    /// The job's createdAt → startedAt (enqueue to a worker picking it up).
    start_ms: f64,
    /// startedAt → the first ARM request arrived at the simulator (its answer minus the latency).
    pre_arm_ms: f64,
    /// The first ARM request arrived → the last one answered.
    arm_ms: f64,
    /// The last ARM answer → finishedAt (recording the calls, the result, the completion).
    post_arm_ms: f64,
    /// Requests the simulator served for the job, tokens excluded.
    arm_calls: usize,
    /// Token requests during the job (0 once the credential's cache is warm).
    token_requests: usize,
    /// `azure_call` events in the job's timeline.
    event_calls: usize,
    /// Sum of the `durationMs` of those calls (more than `server_ms` when calls overlap).
    call_ms_sum: f64,
    operations: Vec<String>,
    polls: usize,
    /// The slowest GET /v1/jobs/{id} while polling.
    slowest_get_ms: f64,
    /// A job that retried, waited or ran more than once: what happened (else None).
    irregular: Option<Value>,
}

struct Bench {
    client: reqwest::Client,
    base: String,
    sim: Simulator,
    poll: Duration,
}

impl Bench {
    /// POST the pair, poll the job until Succeeded; figures taken after the clock stopped.
    async fn run(&self, op: Op, registry: &str, latency_ms: u64) -> anyhow::Result<Sample> {
        self.sim.clear_calls();
        let body = json!({ "cluster": CLUSTER, "registry": registry });
        let t0 = Instant::now();
        let r = self
            .client
            .post(format!("{}{}", self.base, op.path()))
            .json(&body)
            .send()
            .await?;
        let status = r.status();
        let job: Value = r.json().await?;
        let post_ms = ms(t0.elapsed());
        anyhow::ensure!(
            status == StatusCode::ACCEPTED,
            "POST {} answered {status} (a new job answers 202): {job}",
            op.path()
        );
        let id = job["id"].as_str().unwrap_or_default().to_string();
        let mut polls = 0;
        let mut slowest_get_ms: f64 = 0.0;
        let job = loop {
            let sent = Instant::now();
            let j: Value = self
                .client
                .get(format!("{}/v1/jobs/{id}", self.base))
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            polls += 1;
            slowest_get_ms = slowest_get_ms.max(ms(sent.elapsed()));
            match j["status"].as_str() {
                Some("Succeeded") => break j,
                Some("Failed" | "Canceled") => anyhow::bail!("{} job {id} did not succeed: {j:#}", op.name()),
                _ => {}
            }
            if t0.elapsed() > Duration::from_secs(60) {
                anyhow::bail!("{} job {id} not done after 60 s: {j:#}", op.name());
            }
            tokio::time::sleep(self.poll).await;
        };
        let wall_ms = ms(t0.elapsed());

        let (tokens, calls): (Vec<_>, Vec<_>) = self.sim.calls().into_iter().partition(|c| c.operation == "Token");
        let time = |v: &Value| v.as_str().and_then(|s| s.parse::<DateTime<Utc>>().ok());
        let (created, started, finished) = (
            time(&job["createdAt"]),
            time(&job["startedAt"]),
            time(&job["finishedAt"]),
        );
        let arm_start = calls
            .first()
            .map(|c| c.at - chrono::Duration::milliseconds(latency_ms as i64));
        let arm_end = calls.last().map(|c| c.at);
        let irregular = (job["attempts"].as_i64() != Some(0)
            || job["waits"].as_i64() != Some(0)
            || job["runs"].as_i64() != Some(1))
        .then(|| {
            json!({
                "operation": op.name(),
                "registry": registry,
                "wall_ms": round1(wall_ms),
                "attempts": job["attempts"],
                "waits": job["waits"],
                "runs": job["runs"],
                "errors": job["errors"].as_array().map_or_else(|| vec![job["lastError"].clone()], Clone::clone),
                "calls": calls.iter().map(|c| format!("{} {}{}", c.operation, c.status, if c.dropped { " (dropped)" } else { "" })).collect::<Vec<_>>(),
            })
        });
        let events: Value = self
            .client
            .get(format!("{}/v1/jobs/{id}/events", self.base))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let azure_calls: Vec<&Value> = events["value"]
            .as_array()
            .map(|v| v.iter().filter(|e| e["type"] == "azure_call").collect())
            .unwrap_or_default();
        Ok(Sample {
            wall_ms,
            post_ms,
            server_ms: millis_between(created, finished),
            start_ms: millis_between(created, started),
            pre_arm_ms: millis_between(started, arm_start),
            arm_ms: millis_between(arm_start, arm_end),
            post_arm_ms: millis_between(arm_end, finished),
            arm_calls: calls.len(),
            token_requests: tokens.len(),
            event_calls: azure_calls.len(),
            call_ms_sum: azure_calls
                .iter()
                .filter_map(|e| e["data"]["durationMs"].as_f64())
                .sum(),
            operations: calls.into_iter().map(|c| c.operation).collect(),
            polls,
            slowest_get_ms,
            irregular,
        })
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// NaN when a time is missing.
fn millis_between(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> f64 {
    match (from, to) {
        (Some(f), Some(t)) => (t - f).num_microseconds().map_or(f64::NAN, |us| us as f64 / 1000.0),
        _ => f64::NAN,
    }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Nearest-rank quantile of sorted values.
fn q(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn sorted(v: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut v: Vec<f64> = v.collect();
    v.sort_by(|a, b| a.total_cmp(b));
    v
}

/// One row: an operation, the registry form, a latency.
struct Row {
    op: Op,
    by: &'static str,
    latency_ms: u64,
    samples: Vec<Sample>,
}

impl Row {
    fn label(&self) -> String {
        format!("{} (registry {})", self.op.name(), self.by)
    }
    fn wall(&self) -> Vec<f64> {
        sorted(self.samples.iter().map(|s| s.wall_ms))
    }
    fn json(&self) -> Value {
        let stats = |v: Vec<f64>| json!({ "p50": round1(q(&v, 0.5)), "p95": round1(q(&v, 0.95)), "max": round1(*v.last().unwrap()) });
        let counts = |f: fn(&Sample) -> usize| {
            let mut v: Vec<usize> = self.samples.iter().map(f).collect();
            v.sort_unstable();
            json!({ "p50": v[(v.len() - 1) / 2], "min": v[0], "max": v[v.len() - 1] })
        };
        json!({
            "operation": self.op.name(),
            "registry": self.by,
            "latency_ms": self.latency_ms,
            "samples": self.samples.len(),
            "slowest_sample": self.samples.iter().enumerate().max_by(|x, y| x.1.wall_ms.total_cmp(&y.1.wall_ms)).map(|(i, _)| i),
            "wall_ms": stats(self.wall()),
            "post_ms": stats(sorted(self.samples.iter().map(|s| s.post_ms))),
            "server_ms": stats(sorted(self.samples.iter().map(|s| s.server_ms))),
            "start_ms": stats(sorted(self.samples.iter().map(|s| s.start_ms))),
            "pre_arm_ms": stats(sorted(self.samples.iter().map(|s| s.pre_arm_ms))),
            "arm_ms": stats(sorted(self.samples.iter().map(|s| s.arm_ms))),
            "post_arm_ms": stats(sorted(self.samples.iter().map(|s| s.post_arm_ms))),
            "client_ms": stats(sorted(self.samples.iter().map(|s| s.wall_ms - s.server_ms))),
            "azure_call_ms_sum": stats(sorted(self.samples.iter().map(|s| s.call_ms_sum))),
            "arm_calls": counts(|s| s.arm_calls),
            "azure_call_events": counts(|s| s.event_calls),
            "token_requests": self.samples.iter().map(|s| s.token_requests).sum::<usize>(),
            "arm_operations": self.samples[0].operations,
            "polls": counts(|s| s.polls),
            "slowest_get_ms": stats(sorted(self.samples.iter().map(|s| s.slowest_get_ms))),
            "irregular_jobs": self.samples.iter().filter_map(|s| s.irregular.clone()).collect::<Vec<_>>(),
        })
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = <Args as clap::Parser>::parse();
    anyhow::ensure!(a.iterations > 0, "--iterations must be at least 1");
    let url = common::fresh_database(&a.admin.url, DB).await?;
    let mut config = common::service_config(&url)?;

    let mut world = World::from_file(&a.world)?;
    if !a.arm_throttling {
        // One job at a time never meets ARM's limits; 160 of them back to back at 0 ms do (25
        // reads/s per principal), and the 1 s retry would then be what is measured.
        let unlimited = Bucket {
            bucket: 1e9,
            refill_per_second: 1e9,
        };
        world.behaviour.throttling = Throttling {
            reads: unlimited,
            writes: unlimited,
            deletes: unlimited,
        };
        // acr-attach's own budget of ARM's quota likewise (it still takes a token per call, so
        // its cost is in the figures).
        let limit = "1000000000/1000000000".parse().map_err(anyhow::Error::msg)?;
        (
            config.ops.quota.reads,
            config.ops.quota.writes,
            config.ops.quota.deletes,
        ) = (limit, limit, limit);
    }
    let sim = acr_attach::simulated::start(world, &mut config).await?;
    let app = Application::build_service(config).await?;
    let base = format!("http://{}", app.address());
    let stop = CancellationToken::new();
    let service = tokio::spawn(app.run_until_stopped(stop.clone()));
    let bench = Bench {
        client: reqwest::Client::new(),
        base,
        sim,
        poll: Duration::from_millis(a.poll_ms),
    };

    let forms: [(&'static str, &str); 2] = [("id", REGISTRY_ID), ("name", REGISTRY_NAME)];
    let mut rows: Vec<Row> = Vec::new();
    for &latency in &a.latencies {
        bench.sim.update_world(|w| w.behaviour.latency_ms = latency);
        // Untimed: the credential's token cache, the HTTP and database connections, the
        // statement caches.
        for _ in 0..a.warmup {
            for (_, registry) in forms {
                bench.run(Op::Attach, registry, latency).await?;
                bench.run(Op::Detach, registry, latency).await?;
            }
        }
        let first = rows.len();
        for (by, _) in forms {
            for op in [Op::Attach, Op::Detach] {
                rows.push(Row {
                    op,
                    by,
                    latency_ms: latency,
                    samples: Vec::with_capacity(a.iterations),
                });
            }
        }
        for _ in 0..a.iterations {
            for (f, (_, registry)) in forms.iter().enumerate() {
                for (o, op) in [Op::Attach, Op::Detach].into_iter().enumerate() {
                    let s = bench.run(op, registry, latency).await?;
                    rows[first + 2 * f + o].samples.push(s);
                }
            }
        }
        eprintln!("{latency} ms per request: {} jobs measured", 4 * a.iterations);
    }
    stop.cancel();
    service.await??;
    bench.sim.shutdown().await;

    eprintln!();
    eprintln!(
        "{:<26} {:>10} {:>8} {:>8} {:>8} {:>10} {:>7}",
        "POST -> Succeeded (ms)", "latency", "p50", "p95", "max", "ARM calls", "events"
    );
    for r in &rows {
        let w = r.wall();
        let range = |f: fn(&Sample) -> usize| {
            let (lo, hi) = (r.samples.iter().map(f).min(), r.samples.iter().map(f).max());
            match (lo, hi) {
                (Some(lo), Some(hi)) if lo == hi => lo.to_string(),
                (Some(lo), Some(hi)) => format!("{lo}-{hi}"),
                _ => String::new(),
            }
        };
        eprintln!(
            "{:<26} {:>7} ms {:>8.1} {:>8.1} {:>8.1} {:>10} {:>7}",
            r.label(),
            r.latency_ms,
            q(&w, 0.5),
            q(&w, 0.95),
            w[w.len() - 1],
            range(|s| s.arm_calls),
            range(|s| s.event_calls)
        );
    }
    eprintln!();
    eprintln!(
        "{:<26} {:>10} {:>8} {:>8} {:>8} {:>8} {:>9} {:>8}",
        "where the time goes (p50)", "latency", "server", "pick-up", "pre-ARM", "ARM", "post-ARM", "client"
    );
    for r in &rows {
        let p50 = |f: fn(&Sample) -> f64| q(&sorted(r.samples.iter().map(f)), 0.5);
        eprintln!(
            "{:<26} {:>7} ms {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>9.1} {:>8.1}",
            r.label(),
            r.latency_ms,
            p50(|s| s.server_ms),
            p50(|s| s.start_ms),
            p50(|s| s.pre_arm_ms),
            p50(|s| s.arm_ms),
            p50(|s| s.post_arm_ms),
            p50(|s| s.wall_ms - s.server_ms)
        );
    }
    let tokens: usize = rows.iter().flat_map(|r| &r.samples).map(|s| s.token_requests).sum();
    eprintln!("token requests during the measured jobs: {tokens}");
    for s in rows.iter().flat_map(|r| &r.samples) {
        if let Some(i) = &s.irregular {
            eprintln!("  irregular job: {i}");
        }
    }
    let mut shown = Vec::new();
    for r in &rows {
        if !shown.contains(&r.label()) {
            eprintln!("  {}: {}", r.label(), r.samples[0].operations.join(", "));
            shown.push(r.label());
        }
    }
    eprintln!();
    eprintln!(
        "baseline (issue): az aks update --attach-acr, {TARGET_LATENCY_MS} ms per ARM call: {BASELINE_AZ_MS:.0} ms, \
         {BASELINE_AZ_CALLS} ARM calls"
    );
    let at_target: Vec<&Row> = rows.iter().filter(|r| r.latency_ms == TARGET_LATENCY_MS).collect();
    let verdicts: Vec<Value> = at_target
        .iter()
        .map(|r| {
            let w = r.wall();
            let (p50, p95) = (q(&w, 0.5), q(&w, 0.95));
            eprintln!(
                "target (issue): <= {TARGET_MS:.0} ms at {TARGET_LATENCY_MS} ms/call; {}: p50 {p50:.1} ms ({}), \
                 p95 {p95:.1} ms ({}); {:.1}x faster than az at p50",
                r.label(),
                if p50 <= TARGET_MS { "met" } else { "NOT met" },
                if p95 <= TARGET_MS { "met" } else { "NOT met" },
                BASELINE_AZ_MS / p50
            );
            json!({
                "operation": r.op.name(),
                "registry": r.by,
                "p50_met": p50 <= TARGET_MS,
                "p95_met": p95 <= TARGET_MS,
                "speedup_vs_az_p50": round1(BASELINE_AZ_MS / p50),
            })
        })
        .collect();

    println!(
        "{}",
        json!({
            "iterations": a.iterations,
            "poll_ms": a.poll_ms,
            "arm_throttling": a.arm_throttling,
            "irregular_jobs": rows.iter().flat_map(|r| &r.samples).filter(|s| s.irregular.is_some()).count(),
            "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            "rows": rows.iter().map(Row::json).collect::<Vec<_>>(),
            "baseline_az_cli": { "wall_ms": BASELINE_AZ_MS, "latency_ms": TARGET_LATENCY_MS, "arm_calls": BASELINE_AZ_CALLS },
            "target": { "wall_ms": TARGET_MS, "latency_ms": TARGET_LATENCY_MS, "rows": verdicts },
        })
    );
    Ok(())
}
