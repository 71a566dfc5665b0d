//! The worker pool of one replica: a dispatcher that claims due jobs into free slots, one task
//! per running job, a heartbeat that renews leases, and the maintenance loops.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use super::completer;
use super::config::WorkerConfig;
use super::handler::{Handlers, StopReason};
use super::shared::Shared;
use super::store::JobStore;
use super::{dispatch, listener, maintenance};

/// A started worker pool; `wait` returns after a graceful shutdown.
pub struct WorkerPool {
    done: tokio::task::JoinHandle<()>,
}

impl WorkerPool {
    /// Start the pool. `listen_pool` is a separate one-connection pool for LISTEN, so waiting
    /// for notifications never takes a connection from the workers. Stops when `shutdown` fires.
    pub fn start(
        store: JobStore,
        listen_pool: sqlx::PgPool,
        handlers: Handlers,
        cfg: WorkerConfig,
        shutdown: CancellationToken,
    ) -> WorkerPool {
        let shared = Arc::new(Shared {
            kinds: handlers.kinds(),
            store,
            cfg,
            handlers,
            running: Mutex::new(HashMap::new()),
            wake: Arc::new(Notify::new()),
            healthy: true.into(),
            alive: Arc::new(false.into()),
        });
        let done = tokio::spawn(run(shared, listen_pool, shutdown));
        WorkerPool { done }
    }

    pub async fn wait(self) {
        if let Err(e) = self.done.await {
            tracing::error!(error = %e, "worker pool task failed");
        }
    }
}

async fn run(shared: Arc<Shared>, listen_pool: sqlx::PgPool, shutdown: CancellationToken) {
    let background = CancellationToken::new();
    let (success_tx, success_rx) = mpsc::unbounded_channel();
    let completer = tokio::spawn(completer::run(
        shared.store.clone(),
        success_rx,
        shared.wake.clone(),
        shared.cfg.lease,
    ));
    let listener = tokio::spawn(listener::run(
        listen_pool,
        shared.cfg.worker_id.clone(),
        shared.alive.clone(),
        shared.wake.clone(),
        {
            let s = shared.clone();
            move |id| s.stop_job(id, StopReason::Cancelled)
        },
        background.clone(),
    ));
    let heartbeat = tokio::spawn(heartbeat(shared.clone(), background.clone()));
    let maintenance = tokio::spawn(maintenance::run(
        shared.store.clone(),
        shared.cfg.clone(),
        shared.handlers.policies(),
        background.clone(),
    ));
    let tasks = TaskTracker::new();

    tracing::info!(worker = %shared.cfg.worker_id, concurrency = shared.cfg.concurrency,
        kinds = ?shared.kinds, "worker pool started");
    dispatch::run(&shared, &tasks, &success_tx, &shutdown).await;

    // Graceful shutdown: no more claims; running jobs get the grace period, then are handed back.
    tracing::info!(running = shared.running_count(), "worker pool stopping");
    tasks.close();
    if tokio::time::timeout(shared.cfg.shutdown_grace, tasks.wait())
        .await
        .is_err()
    {
        let ids: Vec<Uuid> = shared.running.lock().unwrap().keys().copied().collect();
        tracing::warn!(
            jobs = ids.len(),
            "grace period over; handing running jobs back to the queue"
        );
        for id in ids {
            shared.stop_job(id, StopReason::Shutdown);
        }
        tasks.wait().await;
    }
    drop(success_tx);
    let _ = completer.await;
    background.cancel();
    let _ = tokio::join!(listener, heartbeat, maintenance);
    tracing::info!("worker pool stopped");
}

/// Renew this replica's leases; stop jobs whose lease is gone or whose cancel was requested.
async fn heartbeat(shared: Arc<Shared>, stop: CancellationToken) {
    let cfg = &shared.cfg;
    let mut failures = 0u32;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(cfg.heartbeat_interval) => {}
            _ = stop.cancelled() => return,
        }
        let leases: Vec<(Uuid, i32)> = shared
            .running
            .lock()
            .unwrap()
            .iter()
            .map(|(id, r)| (*id, r.epoch))
            .collect();
        match shared.store.heartbeat(&leases, cfg.lease).await {
            Ok(held) => {
                failures = 0;
                shared.healthy.store(true, std::sync::atomic::Ordering::Relaxed);
                let held: HashMap<Uuid, bool> = held.into_iter().collect();
                for (id, _) in &leases {
                    match held.get(id) {
                        None => shared.stop_job(*id, StopReason::LeaseLost),
                        Some(true) => shared.stop_job(*id, StopReason::Cancelled),
                        Some(false) => {}
                    }
                }
            }
            Err(e) => {
                failures += 1;
                tracing::warn!(error = %e, failures, "heartbeat failed");
                // Once the leases may have expired, another replica may own these jobs.
                if cfg.heartbeat_interval * failures >= cfg.lease {
                    shared.healthy.store(false, std::sync::atomic::Ordering::Relaxed);
                    for (id, _) in &leases {
                        shared.stop_job(*id, StopReason::LeaseLost);
                    }
                }
            }
        }
    }
}
