//! Settings of one replica's worker pool: the flags and environment variables of `acr-attach
//! serve` for the queue (the service configuration uses this type as it is).
use std::time::Duration;

use clap::builder::TypedValueParser;

use crate::duration::parse_duration;

#[derive(Debug, Clone, clap::Args)]
pub struct WorkerConfig {
    /// Identifies this replica in `locked_by` and in job events.
    #[arg(skip = default_worker_id())]
    pub worker_id: String,
    /// Jobs this replica runs at once; a claim asks for at most the free slots.
    #[arg(long = "workers", env = "ACR_ATTACH_WORKERS", default_value_t = 16,
        value_parser = clap::value_parser!(u16).range(1..).map(usize::from))]
    pub concurrency: usize,
    /// A running job's lease; a dead worker's job runs again after lease + rescue interval.
    #[arg(long, env = "ACR_ATTACH_LEASE", value_parser = parse_duration, default_value = "60s")]
    pub lease: Duration,
    /// How often a running job's lease is renewed.
    #[arg(long = "heartbeat", env = "ACR_ATTACH_HEARTBEAT", value_parser = parse_duration, default_value = "15s")]
    pub heartbeat_interval: Duration,
    /// Fallback poll when no notification arrives (lost NOTIFY, listener reconnecting).
    #[arg(long, env = "ACR_ATTACH_POLL_INTERVAL", value_parser = parse_duration, default_value = "1s")]
    pub poll_interval: Duration,
    /// How often orphaned jobs are swept, on every replica: those of a dead worker (its database
    /// session ended) at once, those of a hung one once its lease expired.
    #[arg(long, env = "ACR_ATTACH_RESCUE_INTERVAL", value_parser = parse_duration, default_value = "2s")]
    pub rescue_interval: Duration,
    /// On SIGTERM, running jobs get this long to finish before they are handed back.
    #[arg(long, env = "ACR_ATTACH_SHUTDOWN_GRACE", value_parser = parse_duration, default_value = "20s")]
    pub shutdown_grace: Duration,
    /// How often finished jobs past their retention are pruned.
    #[arg(long, env = "ACR_ATTACH_PRUNE_INTERVAL", value_parser = parse_duration, default_value = "60s")]
    pub prune_interval: Duration,
    /// Succeeded and cancelled jobs are deleted after this.
    #[arg(long, env = "ACR_ATTACH_KEEP_SUCCEEDED", value_parser = parse_duration, default_value = "7d")]
    pub keep_succeeded: Duration,
    /// Failed jobs are deleted after this.
    #[arg(long, env = "ACR_ATTACH_KEEP_FAILED", value_parser = parse_duration, default_value = "30d")]
    pub keep_failed: Duration,
}

impl Default for WorkerConfig {
    /// The flags' defaults (and whatever the environment sets).
    fn default() -> Self {
        #[derive(clap::Parser)]
        struct Only {
            #[command(flatten)]
            queue: WorkerConfig,
        }
        <Only as clap::Parser>::try_parse_from(["worker"])
            .expect("the defaults parse")
            .queue
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
