//! Queue benchmark against the local PostgreSQL, with no-op jobs. Prints figures (one JSON
//! line at the end); it asserts nothing. Usage:
//!   cargo run --release --bin queue-bench -- [--jobs 50000] [--workers 10] [--samples 1000]
//!     [--rescue-lease 60s] [--rescue-interval 2s] [--skip-rescue]
//! Method: BENCHMARKS.md.
use async_trait::async_trait;
use serde_json::json;
use sqlx::{Connection, PgPool};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

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
    /// Admin connection (a fresh database is created next to it).
    #[arg(
        long = "database-url",
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    admin_url: String,
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
    let mut url = url::Url::parse(&a.admin_url)?;
    url.set_path("acr_attach_bench");
    let db_url = url.to_string();
    {
        let mut admin = sqlx::PgConnection::connect(&a.admin_url).await?;
        sqlx::raw_sql("DROP DATABASE IF EXISTS acr_attach_bench WITH (FORCE)")
            .execute(&mut admin)
            .await?;
    }
    let dbcfg = DatabaseConfig {
        database_url: db_url.clone(),
        db_max_connections: 20,
        db_acquire_timeout: Duration::from_secs(30),
    };
    let pool = db::connect(&dbcfg).await?;
    db::migrate(&pool).await?;
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
