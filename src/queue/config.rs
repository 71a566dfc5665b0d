//! Settings of one replica's worker pool (filled from the service configuration).
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Identifies this replica in `locked_by` and in job events.
    pub worker_id: String,
    /// Jobs run at once by this replica; a claim asks for at most the free slots.
    pub concurrency: usize,
    /// A running job's lease; a worker that stops heartbeating loses the job after this.
    pub lease: Duration,
    pub heartbeat_interval: Duration,
    /// Fallback poll when no notification arrives (lost NOTIFY, listener reconnecting).
    pub poll_interval: Duration,
    pub rescue_interval: Duration,
    /// On shutdown, running jobs get this long to finish before they are handed back.
    pub shutdown_grace: Duration,
    pub prune_interval: Duration,
    pub keep_succeeded: Duration,
    pub keep_failed: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            worker_id: default_worker_id(),
            concurrency: 16,
            lease: Duration::from_secs(60),
            heartbeat_interval: Duration::from_secs(15),
            poll_interval: Duration::from_secs(1),
            rescue_interval: Duration::from_secs(15),
            shutdown_grace: Duration::from_secs(20),
            prune_interval: Duration::from_secs(60),
            keep_succeeded: Duration::from_secs(7 * 24 * 3600),
            keep_failed: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// `hostname-pid-xxxx`: unique per process, readable in job events.
pub fn default_worker_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .unwrap_or_else(|| "replica".into());
    let suffix: u16 = rand::random();
    format!("{host}-{}-{suffix:04x}", std::process::id())
}
