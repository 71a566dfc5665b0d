//! What the worker pool's parts (dispatcher, job tasks, heartbeat, listener) share.
use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;
use uuid::Uuid;

use super::config::WorkerConfig;
use super::handler::{Handlers, StopReason, StopSignal};
use super::store::JobStore;

/// A job this replica runs now: its lease epoch, and how to stop it.
pub(super) struct Running {
    pub epoch: i32,
    pub stop: Arc<StopSignal>,
}

/// What the dispatcher, the job tasks, the heartbeat and the listener share.
pub(super) struct Shared {
    pub store: JobStore,
    pub cfg: WorkerConfig,
    pub handlers: Handlers,
    pub kinds: Vec<String>,
    pub running: Mutex<HashMap<Uuid, Running>>,
    /// Something may be due: a notification, a finished job, a listener reconnect.
    pub wake: Arc<Notify>,
    /// False while heartbeats fail: a replica that cannot reach the database stops claiming.
    pub healthy: AtomicBool,
    /// True while the listener's session holds this worker's liveness lock: without it, other
    /// replicas would take our jobs at once, so the dispatcher does not claim.
    pub alive: Arc<AtomicBool>,
}

impl Shared {
    pub fn running_count(&self) -> usize {
        self.running.lock().unwrap().len()
    }
    pub fn stop_job(&self, id: Uuid, why: StopReason) {
        if let Some(r) = self.running.lock().unwrap().get(&id) {
            r.stop.stop(why);
        }
    }
}
