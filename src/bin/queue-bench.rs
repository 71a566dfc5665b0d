//! Queue benchmark against the local PostgreSQL, with no-op jobs. Prints figures (one JSON
//! line at the end); it asserts nothing. Usage:
//!   cargo run --release --bin queue-bench -- [--jobs 50000] [--workers 10] [--samples 1000]
//!     [--rescue-lease 60s] [--rescue-interval 2s] [--skip-rescue]
//!   cargo build --release --bins && cargo run --release --bin queue-bench -- --mode api
//!     [--connections 32] [--duration 10s] [--rate <requests/s>]
//!   cargo build --release --bins && cargo run --release --bin queue-bench -- --mode memory [--queued 100000]
//! `--mode api` and `--mode memory` run the real `acr-attach serve` (the binary next to this one)
//! and `wrk` (`apt-get install wrk`). Method: BENCHMARKS.md.
use async_trait::async_trait;
use serde_json::json;
use sqlx::PgPool;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

mod common;

use acr_attach::config::DatabaseConfig;
use acr_attach::db;
use acr_attach::duration::parse_duration;
use acr_attach::queue::{
    Handlers, JobContext, JobError, JobHandler, JobStore, NewJob, Outcome, WorkerConfig, WorkerPool,
};

/// Queue benchmark against the local PostgreSQL, with no-op jobs (prints figures; asserts nothing).
#[derive(Debug, clap::Parser)]
#[command(name = "queue-bench")]
struct Args {
    #[command(flatten)]
    admin: common::AdminDatabase,
    /// Jobs in the burn-down.
    #[arg(long, default_value_t = 50_000)]
    jobs: usize,
    /// Concurrent workers.
    #[arg(long, default_value_t = 10)]
    workers: usize,
    /// Insert-to-start latency samples.
    #[arg(long, default_value_t = 1000)]
    samples: usize,
    /// Lease of the dead worker in the rescue measurement.
    #[arg(long, value_parser = parse_duration, default_value = "60s")]
    rescue_lease: Duration,
    /// Rescue sweep interval in the rescue measurement.
    #[arg(long, value_parser = parse_duration, default_value = "2s")]
    rescue_interval: Duration,
    /// Skip the (slow) rescue measurement.
    #[arg(long)]
    skip_rescue: bool,
    /// What to measure: the queue (burn-down, insert→start, rescue), the enqueue API under load
    /// (`acr-attach serve` and wrk), or the memory of `acr-attach serve`.
    #[arg(long, value_enum, default_value_t = BenchMode::Queue)]
    mode: BenchMode,
    /// `--mode api`: wrk connections of the throughput run (the paced run uses as many).
    #[arg(long, default_value_t = 32)]
    connections: u32,
    /// `--mode api`: wrk threads (each is a core's worth of load generator at most).
    #[arg(long, default_value_t = 1)]
    wrk_threads: u32,
    /// `--mode api`: length of each measured wrk run.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    duration: Duration,
    /// `--mode api`: requests/s of the paced run (default: half the raw single-row insert rate
    /// measured at the start of the run).
    #[arg(long)]
    rate: Option<f64>,
    /// `--mode memory`: jobs queued (not run) for the second reading.
    #[arg(long, default_value_t = 100_000)]
    queued: usize,
    /// `--mode api|memory`: the `acr-attach` binary (default: next to this one; build it with
    /// `cargo build --release --bins`).
    #[arg(long)]
    acr_attach: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum BenchMode {
    Queue,
    Api,
    Memory,
}

fn args() -> Args {
    <Args as clap::Parser>::parse()
}

/// Does nothing; tells the benchmark when it started.
struct Noop {
    started: Option<mpsc::UnboundedSender<Instant>>,
    count: Arc<AtomicUsize>,
}

#[async_trait]
impl JobHandler for Noop {
    fn kind(&self) -> &'static str {
        "noop"
    }
    async fn run(&self, _ctx: &JobContext) -> Result<Outcome, JobError> {
        if let Some(tx) = &self.started {
            let _ = tx.send(Instant::now());
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        Ok(Outcome::Succeeded(json!(null)))
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = args();
    match a.mode {
        BenchMode::Queue => queue_bench(a).await,
        BenchMode::Api => api_bench(a).await,
        BenchMode::Memory => memory_bench(a).await,
    }
}

/// A database of its own next to the admin connection's, dropped and created again, migrated.
async fn fresh_database(admin_url: &str, name: &str) -> anyhow::Result<(DatabaseConfig, PgPool)> {
    let url = common::fresh_database(admin_url, name).await?;
    let dbcfg = DatabaseConfig {
        database_url: url.to_string(),
        db_max_connections: 20,
        db_acquire_timeout: Duration::from_secs(30),
    };
    let pool = db::connect(&dbcfg).await?;
    db::migrate(&pool).await?;
    Ok((dbcfg, pool))
}

async fn queue_bench(a: Args) -> anyhow::Result<()> {
    let (dbcfg, pool) = fresh_database(&a.admin.url, "acr_attach_bench").await?;
    let store = JobStore::new(pool.clone());

    let raw = raw_insert_rate(&pool, 8, Duration::from_secs(3)).await?;
    eprintln!("postgres single-row inserts, 8 clients: {raw:.0}/s");

    let metrics = acr_attach::telemetry::metrics_handle();
    let burn = burn_down(&store, &dbcfg, a.jobs, a.workers).await?;
    for line in metrics
        .render()
        .lines()
        .filter(|l| l.contains("_sum") || l.contains("_count"))
    {
        eprintln!("  {line}");
    }
    eprintln!("burn-down: {} jobs, {} workers: {burn:.0} jobs/s", a.jobs, a.workers);

    let (p50, p95, p99, max) = latency(&store, &dbcfg, a.samples).await?;
    eprintln!(
        "insert-to-start over {} sequential jobs: p50 {p50:.2} ms, p95 {p95:.2} ms, p99 {p99:.2} ms, max {max:.2} ms",
        a.samples
    );

    let rescue = if a.skip_rescue {
        None
    } else {
        let s = rescue_time(&store, &dbcfg, a.rescue_lease, a.rescue_interval).await?;
        eprintln!(
            "dead worker's job started again after {s:.1} s (lease {:?}, rescue every {:?})",
            a.rescue_lease, a.rescue_interval
        );
        Some(s)
    };
    let dead: i64 = sqlx::query_scalar("SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'job'")
        .fetch_one(&pool)
        .await?;
    pool.close().await;

    println!(
        "{}",
        json!({
            "jobs": a.jobs,
            "workers": a.workers,
            "burn_down_jobs_per_s": burn.round(),
            "insert_to_start_ms": { "p50": round2(p50), "p95": round2(p95), "p99": round2(p99), "max": round2(max), "samples": a.samples },
            "rescue_s": rescue.map(|s| (s * 10.0).round() / 10.0),
            "rescue_lease_s": a.rescue_lease.as_secs_f64(),
            "rescue_interval_s": a.rescue_interval.as_secs_f64(),
            "postgres_single_row_inserts_per_s_8_clients": raw.round(),
            "burn_down_vs_raw_inserts": round2(burn / raw),
            "job_table_dead_tuples": dead,
        })
    );
    Ok(())
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// What the database allows: autocommitted single-row inserts from `clients` connections.
async fn raw_insert_rate(pool: &PgPool, clients: usize, for_: Duration) -> anyhow::Result<f64> {
    sqlx::raw_sql("CREATE TABLE IF NOT EXISTS bench_raw (id bigserial PRIMARY KEY, payload jsonb)")
        .execute(pool)
        .await?;
    let done = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let pool = pool.clone();
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            while start.elapsed() < for_ {
                sqlx::query("INSERT INTO bench_raw (payload) VALUES ($1)")
                    .bind(json!({"n": 1}))
                    .execute(&pool)
                    .await
                    .unwrap();
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64())
}

fn worker_config(workers: usize) -> WorkerConfig {
    WorkerConfig {
        concurrency: workers,
        ..WorkerConfig::default()
    }
}

/// Pre-insert `jobs` no-op jobs (each with its own target, so the per-target FIFO check runs),
/// then time a pool of `workers` slots until all have succeeded.
async fn burn_down(store: &JobStore, dbcfg: &DatabaseConfig, jobs: usize, workers: usize) -> anyhow::Result<f64> {
    let batch: Vec<NewJob> = (0..jobs)
        .map(|n| NewJob::new("noop", json!({ "n": n })).with_target(format!("bench-target-{n}")))
        .collect();
    for chunk in batch.chunks(2000) {
        store.enqueue_many(chunk).await?;
    }
    sqlx::raw_sql("VACUUM ANALYZE job").execute(store.pool()).await?;
    let count = Arc::new(AtomicUsize::new(0));
    let stop = CancellationToken::new();
    let start = Instant::now();
    let pool = WorkerPool::start(
        store.clone(),
        db::listen_pool(dbcfg)?,
        Handlers::new().with(Noop {
            started: None,
            count: count.clone(),
        }),
        worker_config(workers),
        stop.clone(),
    );
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if count.load(Ordering::Relaxed) >= jobs {
            let left: i64 = sqlx::query_scalar("SELECT count(*) FROM job WHERE state <> 'succeeded'")
                .fetch_one(store.pool())
                .await?;
            if left == 0 {
                break;
            }
        }
    }
    let rate = jobs as f64 / start.elapsed().as_secs_f64();
    stop.cancel();
    pool.wait().await;
    sqlx::raw_sql("TRUNCATE job CASCADE").execute(store.pool()).await?;
    Ok(rate)
}

/// graphile-worker's latencyTest method: insert one job (commit included), wait until a
/// worker starts it, repeat; idle workers.
async fn latency(store: &JobStore, dbcfg: &DatabaseConfig, samples: usize) -> anyhow::Result<(f64, f64, f64, f64)> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let stop = CancellationToken::new();
    let pool = WorkerPool::start(
        store.clone(),
        db::listen_pool(dbcfg)?,
        Handlers::new().with(Noop {
            started: Some(tx),
            count: Arc::new(AtomicUsize::new(0)),
        }),
        worker_config(10),
        stop.clone(),
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut ms = Vec::with_capacity(samples);
    for n in 0..samples + 20 {
        let t0 = Instant::now();
        store
            .enqueue_one(&NewJob::new("noop", json!({ "latency": n })).with_target(format!("lat-{n}")))
            .await?;
        let started = rx.recv().await.expect("the job starts");
        if n >= 20 {
            ms.push((started - t0).as_secs_f64() * 1000.0);
        }
        // Let the completion land so every sample starts from idle workers.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    stop.cancel();
    pool.wait().await;
    ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let q = |p: f64| ms[((ms.len() as f64 - 1.0) * p).round() as usize];
    Ok((q(0.5), q(0.95), q(0.99), *ms.last().unwrap()))
}

/// A worker claims a job and dies (never heartbeats): how long until another replica runs it?
async fn rescue_time(
    store: &JobStore,
    dbcfg: &DatabaseConfig,
    lease: Duration,
    interval: Duration,
) -> anyhow::Result<f64> {
    sqlx::raw_sql("TRUNCATE job CASCADE").execute(store.pool()).await?;
    store
        .enqueue_one(&NewJob::new("noop", json!({ "rescue": true })))
        .await?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let stop = CancellationToken::new();
    // Claimed by a worker that then died: its session (and liveness lock) is gone at once.
    let claimed = store.claim("dead-worker", 1, lease, &["noop".to_string()]).await?;
    assert_eq!(claimed.len(), 1);
    let died = Instant::now();
    let pool = WorkerPool::start(
        store.clone(),
        db::listen_pool(dbcfg)?,
        Handlers::new().with(Noop {
            started: Some(tx),
            count: Arc::new(AtomicUsize::new(0)),
        }),
        WorkerConfig {
            concurrency: 2,
            rescue_interval: interval,
            lease,
            ..WorkerConfig::default()
        },
        stop.clone(),
    );
    rx.recv().await.expect("the rescued job runs");
    let s = died.elapsed().as_secs_f64();
    stop.cancel();
    pool.wait().await;
    Ok(s)
}

// ---------------------------------------------------------------------------------------------
// `--mode api` and `--mode memory`: the real `acr-attach serve`, in a process of its own.

/// The clusters of the demo policy's `platform-portal` rule (the benchmark's API key, `demo`).
const BENCH_CLUSTERS: &str = "/subscriptions/11111111-1111-4111-8111-111111111111/resourceGroups/rg-aks-demo/providers/Microsoft.ContainerService/managedClusters";

/// A running `acr-attach serve`.
struct Serve {
    child: tokio::process::Child,
    pid: u32,
    base: String,
    log: std::path::PathBuf,
}

fn acr_attach_binary(a: &Args) -> anyhow::Result<std::path::PathBuf> {
    let bin = match &a.acr_attach {
        Some(p) => p.clone(),
        None => std::env::current_exe()?.with_file_name("acr-attach"),
    };
    anyhow::ensure!(
        bin.exists(),
        "{} not found: build it first (cargo build --release --bins) or pass --acr-attach",
        bin.display()
    );
    Ok(bin)
}

/// `acr-attach serve` as a production replica would run it, authenticated (API keys, the demo
/// policy), without the simulator: `--mode api` or `all`. Per-caller rate limits are lifted
/// through their flags (the benchmark is one caller). Waits until `/readyz` answers 200.
async fn start_serve(bin: &std::path::Path, dbcfg: &DatabaseConfig, mode: &str) -> anyhow::Result<Serve> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let log = std::env::temp_dir().join(format!("queue-bench-serve-{port}.log"));
    let out = std::fs::File::create(&log)?;
    let policy = concat!(env!("CARGO_MANIFEST_DIR"), "/demo/policy.json");
    let child = tokio::process::Command::new(bin)
        .args(["serve", "--mode", mode, "--listen", &format!("127.0.0.1:{port}")])
        .args(["--auth", "api-keys", "--policy", policy])
        .args(["--rate-limit", "1000000000", "--rate-burst", "1000000000"])
        // No Azure calls are made (nothing runs, or the jobs are scheduled later); the
        // credential is only built.
        .args(["--azure-tenant-id", "00000000-0000-4000-8000-000000000001"])
        .args(["--subscriptions", "11111111-1111-4111-8111-111111111111"])
        .env("DATABASE_URL", &dbcfg.database_url)
        .stdout(out.try_clone()?)
        .stderr(out)
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().expect("a running child has a pid");
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let t0 = Instant::now();
    loop {
        if let Ok(r) = http.get(format!("{base}/readyz")).send().await
            && r.status().is_success()
        {
            break;
        }
        if t0.elapsed() > Duration::from_secs(60) {
            anyhow::bail!("acr-attach serve not ready after 60 s; its log: {}", log.display());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(Serve { child, pid, base, log })
}

impl Serve {
    /// SIGTERM, as an orchestrator would; waits for the exit.
    async fn stop(mut self) -> anyhow::Result<()> {
        std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()?;
        if tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .is_err()
        {
            self.child.kill().await?;
        }
        Ok(())
    }
}

/// `acr-attach keys create --name demo`: the key the demo policy allows to attach in rg-aks-demo.
async fn create_key(bin: &std::path::Path, dbcfg: &DatabaseConfig) -> anyhow::Result<String> {
    let out = tokio::process::Command::new(bin)
        .args(["keys", "create", "--name", "demo"])
        .env("DATABASE_URL", &dbcfg.database_url)
        .output()
        .await?;
    anyhow::ensure!(
        out.status.success(),
        "acr-attach keys create failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?.trim().to_string())
}

/// VmRSS and VmHWM of `pid` (MB, from /proc/<pid>/status).
fn rss_mb(pid: u32) -> anyhow::Result<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> anyhow::Result<f64> {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .ok_or_else(|| anyhow::anyhow!("{name} not in /proc/{pid}/status"))?;
        let kb: f64 = line[name.len()..].trim().trim_end_matches("kB").trim().parse()?;
        Ok((kb / 1024.0 * 10.0).round() / 10.0)
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

/// What one wrk run reported.
#[derive(Debug, Default)]
struct Wrk {
    requests: u64,
    requests_per_s: f64,
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    non_2xx: u64,
    socket_errors: String,
}

fn wrk_ms(v: &str) -> anyhow::Result<f64> {
    let (n, unit) = v
        .find(|c: char| c.is_ascii_alphabetic())
        .map(|i| v.split_at(i))
        .ok_or_else(|| anyhow::anyhow!("no unit in wrk's {v}"))?;
    let n: f64 = n.parse()?;
    Ok(match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        other => anyhow::bail!("unknown wrk unit {other}"),
    })
}

/// wrk with `scripts/enqueue-bench.lua`: POST /v1/attachments, a distinct cluster per request;
/// `rate` > 0 paces the requests (all threads together).
async fn run_wrk(
    base: &str,
    key: &str,
    threads: u32,
    connections: u32,
    duration: Duration,
    prefix: &str,
    rate: f64,
) -> anyhow::Result<Wrk> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/enqueue-bench.lua");
    let out = tokio::process::Command::new("wrk")
        .arg(format!("-t{threads}"))
        .arg(format!("-c{connections}"))
        .arg(format!("-d{}s", duration.as_secs().max(1)))
        .args(["--latency", "--timeout", "10s", "-s", script, base, "--", prefix])
        .arg(format!("{rate}"))
        .arg(threads.to_string())
        .env("ACR_ATTACH_KEY", key)
        .output()
        .await
        .map_err(|e| anyhow::anyhow!("running wrk ({e}): apt-get install -y wrk"))?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    anyhow::ensure!(
        out.status.success(),
        "wrk failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut w = Wrk::default();
    for line in text.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["50%", v] => w.p50_ms = wrk_ms(v)?,
            ["90%", v] => w.p90_ms = wrk_ms(v)?,
            ["99%", v] => w.p99_ms = wrk_ms(v)?,
            ["Requests/sec:", v] => w.requests_per_s = v.parse()?,
            ["Non-2xx", "or", "3xx", "responses:", n] => w.non_2xx = n.parse()?,
            [n, "requests", "in", ..] => w.requests = n.parse()?,
            ["Socket", "errors:", ..] => w.socket_errors = line.to_string(),
            _ => {}
        }
    }
    Ok(w)
}

fn wrk_json(w: &Wrk) -> serde_json::Value {
    json!({
        "requests": w.requests,
        "requests_per_s": w.requests_per_s.round(),
        "latency_ms": { "p50": round2(w.p50_ms), "p90": round2(w.p90_ms), "p99": round2(w.p99_ms) },
        "non_2xx": w.non_2xx,
        "socket_errors": if w.socket_errors.is_empty() { None } else { Some(&w.socket_errors) },
    })
}

/// Enqueue API throughput and latency: `acr-attach serve --mode api` (no workers: enqueue only)
/// under wrk, next to the same database's raw single-row insert rate.
async fn api_bench(a: Args) -> anyhow::Result<()> {
    let bin = acr_attach_binary(&a)?;
    let (dbcfg, pool) = fresh_database(&a.admin.url, "acr_attach_api_bench").await?;
    let raw = raw_insert_rate(&pool, 8, Duration::from_secs(3)).await?;
    eprintln!("postgres single-row inserts, 8 clients: {raw:.0}/s");
    let key = create_key(&bin, &dbcfg).await?;
    let serve = start_serve(&bin, &dbcfg, "api").await?;
    let (rss_start, _) = rss_mb(serve.pid)?;
    let (t, c) = (a.wrk_threads, a.connections);
    // Warm-up: connections, prepared statements, the allocator.
    run_wrk(&serve.base, &key, t, c, Duration::from_secs(3), "warm", 0.0).await?;
    let max = run_wrk(&serve.base, &key, t, c, a.duration, "max", 0.0).await?;
    eprintln!(
        "enqueue API, {c} connections: {:.0} requests/s, p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms ({} non-2xx)",
        max.requests_per_s, max.p50_ms, max.p90_ms, max.p99_ms, max.non_2xx
    );
    let rate = a.rate.unwrap_or(raw / 2.0);
    let paced = run_wrk(&serve.base, &key, t, c, a.duration, "paced", rate).await?;
    eprintln!(
        "enqueue API paced at {rate:.0} requests/s ({c} connections): {:.0} requests/s done, p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms ({} non-2xx)",
        paced.requests_per_s, paced.p50_ms, paced.p90_ms, paced.p99_ms, paced.non_2xx
    );
    let (rss, hwm) = rss_mb(serve.pid)?;
    serve.stop().await?;
    // Every accepted request is a job and an audit record (requests still in flight when wrk
    // stopped counting are committed too: the database may hold a few more than wrk counted).
    let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM job").fetch_one(&pool).await?;
    let audited: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_record WHERE decision = 'allowed'")
        .fetch_one(&pool)
        .await?;
    pool.close().await;
    println!(
        "{}",
        json!({
            "mode": "api",
            "serve": "acr-attach serve --mode api (no workers), --auth api-keys, demo policy, rate limits lifted",
            "postgres_single_row_inserts_per_s_8_clients": raw.round(),
            "connections": c,
            "wrk_threads": t,
            "duration_s": a.duration.as_secs_f64(),
            "max": wrk_json(&max),
            "max_vs_raw_inserts": round2(max.requests_per_s / raw),
            "paced_rate_per_s": rate.round(),
            "paced": wrk_json(&paced),
            "jobs_in_database": jobs,
            "allowed_audit_records": audited,
            "serve_rss_mb": { "start": rss_start, "after": rss, "peak": hwm },
        })
    );
    Ok(())
}

/// RSS of `acr-attach serve`: a full replica (API and 16 workers) idle, then with `--queued`
/// jobs scheduled a day ahead (queued, not run); an API-only replica idle, then after accepting
/// `--queued` attaches through POST /v1/attachments (workers off: they stay queued).
async fn memory_bench(a: Args) -> anyhow::Result<()> {
    let bin = acr_attach_binary(&a)?;
    const SETTLE: Duration = Duration::from_secs(5);

    // A full replica; the jobs are put in the queue by this process, due tomorrow.
    let (dbcfg, pool) = fresh_database(&a.admin.url, "acr_attach_memory_bench").await?;
    let key = create_key(&bin, &dbcfg).await?;
    let serve = start_serve(&bin, &dbcfg, "all").await?;
    tokio::time::sleep(SETTLE).await;
    let (all_idle, _) = rss_mb(serve.pid)?;
    eprintln!("serve --mode all, idle: VmRSS {all_idle} MB");
    let store = JobStore::new(pool.clone());
    let later = chrono::Utc::now() + chrono::Duration::days(1);
    let jobs: Vec<NewJob> = (0..a.queued)
        .map(|n| {
            let cluster = format!("{BENCH_CLUSTERS}/aks-memory-{n}");
            NewJob::new("attach", json!({ "cluster": cluster, "registry": "acrdemo" }))
                .with_target(format!("{}|acr:acrdemo", cluster.to_ascii_lowercase()))
                .with_run_at(later)
        })
        .collect();
    for chunk in jobs.chunks(2000) {
        store.enqueue_many(chunk).await?;
    }
    drop(jobs);
    // Let the workers poll and sweep the full queue, and read some of it through the API.
    let http = reqwest::Client::new();
    let mut url = format!("{}/v1/jobs?limit=200", serve.base);
    for _ in 0..20 {
        let page: serde_json::Value = http
            .get(&url)
            .bearer_auth(&key)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        match page["nextLink"].as_str() {
            Some(next) if next.starts_with("http") => url = next.to_string(),
            Some(next) => url = format!("{}{next}", serve.base),
            None => break,
        }
    }
    tokio::time::sleep(SETTLE).await;
    let (all_queued, all_hwm) = rss_mb(serve.pid)?;
    eprintln!(
        "serve --mode all, {} jobs queued (due tomorrow): VmRSS {all_queued} MB (peak {all_hwm})",
        a.queued
    );
    serve.stop().await?;
    pool.close().await;

    // An API-only replica that accepts the jobs itself.
    let (dbcfg, pool) = fresh_database(&a.admin.url, "acr_attach_memory_bench").await?;
    let key = create_key(&bin, &dbcfg).await?;
    let serve = start_serve(&bin, &dbcfg, "api").await?;
    tokio::time::sleep(SETTLE).await;
    let (api_idle, _) = rss_mb(serve.pid)?;
    eprintln!("serve --mode api, idle: VmRSS {api_idle} MB");
    let mut round = 0;
    let t0 = Instant::now();
    let accepted = loop {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM job").fetch_one(&pool).await?;
        if n as usize >= a.queued {
            break n;
        }
        round += 1;
        run_wrk(
            &serve.base,
            &key,
            a.wrk_threads,
            a.connections,
            Duration::from_secs(5),
            &format!("mem{round}"),
            0.0,
        )
        .await?;
    };
    let secs = t0.elapsed().as_secs_f64();
    tokio::time::sleep(SETTLE).await;
    let (api_queued, api_hwm) = rss_mb(serve.pid)?;
    eprintln!(
        "serve --mode api, after accepting {accepted} attaches ({secs:.0} s): VmRSS {api_queued} MB (peak {api_hwm})"
    );
    let log = serve.log.clone();
    serve.stop().await?;
    pool.close().await;
    let _ = std::fs::remove_file(log);
    println!(
        "{}",
        json!({
            "mode": "memory",
            "queued": a.queued,
            "all_workers": WorkerConfig::default().concurrency,
            "rss_mb": {
                "all_idle": all_idle,
                "all_queued": all_queued,
                "all_peak": all_hwm,
                "api_idle": api_idle,
                "api_after_accepting": api_queued,
                "api_peak": api_hwm,
            },
            "api_accepted_jobs": accepted,
        })
    );
    Ok(())
}
