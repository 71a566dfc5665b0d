//! Mutable simulator state shared by all request handlers and the test handle.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::arm::{ClusterOperation, ImageImport, RunCommand};
use crate::faults::Rng;
use crate::keys::KeyRing;
use crate::world::{RoleAssignmentRecord, World};

/// One served request, so tests can assert on what the client actually did.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CallRecord {
    /// HTTP method.
    pub method: String,
    /// Request path without the query string.
    pub path: String,
    /// The `api-version` query parameter, when sent.
    pub api_version: Option<String>,
    /// Operation id, e.g. `RoleAssignments_Create`, `Token`, `Graph_ServicePrincipals_Get`.
    pub operation: String,
    /// HTTP status the simulator produced (also for dropped connections).
    pub status: u16,
    /// Client (application) id of the caller, when known.
    pub client_id: Option<String>,
    /// True when the connection was closed instead of sending the response.
    pub dropped: bool,
    /// When the request was answered.
    pub at: DateTime<Utc>,
}

/// A role assignment plus the timing that drives read-after-write lag.
#[derive(Debug, Clone)]
pub(crate) struct StoredAssignment {
    pub rec: RoleAssignmentRecord,
    /// When the PUT happened; `None` for seeded assignments, which are readable at once.
    pub written_at: Option<Instant>,
    pub deleted_at: Option<Instant>,
}

/// A group membership change, replayed backwards to build delayed views.
#[derive(Debug, Clone)]
pub(crate) struct MembershipChange {
    pub group: String,
    pub member: String,
    pub added: bool,
    pub at: Instant,
}

/// A token bucket's live level.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BucketLevel {
    pub tokens: f64,
    pub last: Instant,
}

/// Everything behind the lock.
pub(crate) struct State {
    pub world: World,
    pub assignments: Vec<StoredAssignment>,
    pub calls: Vec<CallRecord>,
    pub buckets: HashMap<(String, String, &'static str), BucketLevel>,
    pub rng: Rng,
    pub rng_seed: u64,
    /// When each principal's replication window starts (absent: simulator start).
    pub principal_epochs: HashMap<String, Instant>,
    pub membership_log: Vec<MembershipChange>,
    /// Managed-cluster writes, for AKS's operation-status endpoint.
    pub cluster_operations: Vec<ClusterOperation>,
    /// AKS run-commands, submitted and finished.
    pub run_commands: Vec<RunCommand>,
    /// ACR image imports.
    pub imports: Vec<ImageImport>,
}

/// Shared, immutable-after-start facts plus the locked state.
pub(crate) struct Shared {
    pub started: Instant,
    pub started_utc: DateTime<Utc>,
    pub base_url: String,
    pub ca_pem: String,
    /// The token signing keys (current, still-published previous ones, and an unpublished one).
    pub signing_key: KeyRing,
    /// Standalone mode: one line per request on stdout, so users see what a client did.
    pub request_log: bool,
    state: Mutex<State>,
}

pub(crate) type SharedRef = Arc<Shared>;

impl Shared {
    pub fn new(mut world: World, base_url: String, ca_pem: String, signing_key: KeyRing, request_log: bool) -> Self {
        world.normalize();
        let now = Instant::now();
        let now_utc = Utc::now();
        let assignments = world
            .role_assignments
            .iter()
            .cloned()
            .map(|mut rec| {
                rec.created_on.get_or_insert(now_utc);
                rec.updated_on.get_or_insert(now_utc);
                StoredAssignment {
                    rec,
                    written_at: None,
                    deleted_at: None,
                }
            })
            .collect();
        let seed = world.behaviour.fault_seed;
        Shared {
            started: now,
            started_utc: now_utc,
            base_url,
            ca_pem,
            signing_key,
            request_log,
            state: Mutex::new(State {
                world,
                assignments,
                calls: Vec::new(),
                buckets: HashMap::new(),
                rng: Rng::new(seed),
                rng_seed: seed,
                principal_epochs: HashMap::new(),
                membership_log: Vec::new(),
                cluster_operations: Vec::new(),
                run_commands: Vec::new(),
                imports: Vec::new(),
            }),
        }
    }

    /// Locks the state; a poisoned lock is recovered because state stays consistent per call.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Seconds since start, as f64, for the replication/readiness windows.
    pub fn elapsed_secs(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }
}

impl StoredAssignment {
    /// Whether reads already see it, given the read-after-write lag.
    pub fn readable(&self, lag: Duration) -> bool {
        self.written_at.is_none_or(|w| w.elapsed() >= lag)
    }
}

impl State {
    /// Whether a principal is still inside its replication window.
    pub fn is_replicating(&self, started: Instant, object_id: &str) -> bool {
        let Some(p) = self.world.principal(object_id) else {
            return false;
        };
        let epoch = self
            .principal_epochs
            .get(&object_id.to_ascii_lowercase())
            .copied()
            .unwrap_or(started);
        epoch.elapsed().as_secs_f64() < p.replication_delay_seconds
    }

    /// Direct members of a group as seen by a reader whose view lags by `delay`.
    pub fn members_view(&self, group: &str, delay: Duration) -> Vec<String> {
        let Some(g) = self.world.principal(group) else {
            return Vec::new();
        };
        let mut members: Vec<String> = g.members.clone();
        for change in self.membership_log.iter().rev() {
            if change.at.elapsed() >= delay {
                break;
            }
            if !change.group.eq_ignore_ascii_case(group) {
                continue;
            }
            if change.added {
                members.retain(|m| !m.eq_ignore_ascii_case(&change.member));
            } else if !members.iter().any(|m| m.eq_ignore_ascii_case(&change.member)) {
                members.push(change.member.clone());
            }
        }
        members
    }

    /// Every group `object_id` belongs to, transitively, in a view lagging by `delay`.
    pub fn transitive_groups(&self, object_id: &str, delay: Duration) -> Vec<String> {
        let groups: Vec<String> = self
            .world
            .directory
            .iter()
            .filter(|p| p.kind == crate::world::PrincipalKind::Group)
            .map(|p| p.object_id.clone())
            .collect();
        let mut found: Vec<String> = Vec::new();
        let mut frontier = vec![object_id.to_ascii_lowercase()];
        while let Some(current) = frontier.pop() {
            for g in &groups {
                let glc = g.to_ascii_lowercase();
                if found.iter().any(|f| f.eq_ignore_ascii_case(g)) || g.eq_ignore_ascii_case(object_id) {
                    continue;
                }
                if self
                    .members_view(g, delay)
                    .iter()
                    .any(|m| m.eq_ignore_ascii_case(&current))
                {
                    found.push(g.clone());
                    frontier.push(glc);
                }
            }
        }
        found
    }
}
