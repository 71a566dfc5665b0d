//! A faithful local stand-in for the Azure endpoints acr-attach talks to: the Entra token
//! endpoint, Azure Resource Manager and Microsoft Graph, all served over HTTPS on one port.
//!
//! Nothing here can reach Azure, so the service, its tests and its benchmarks run against this
//! simulator instead. Responses follow the real wire contracts (paths, api-versions, JSON
//! shapes, error codes and messages, headers), so the official SDKs and the service's own
//! `azure_identity`-based code can be pointed at it unchanged apart from the endpoint URLs and
//! an extra trusted CA. See `simulator/README.md` for the world file and the endpoints.

mod arm;
mod auth;
mod faults;
mod graph;
mod reply;
mod server;
mod state;
mod tls;
mod world;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use chrono::Utc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use state::CallRecord;
pub use world::{
    Behaviour, Bucket, Caller, KubeletIdentity, ManagedCluster, PermissionEntry, Principal, PrincipalKind,
    PrincipalNotFoundMode, Registry, ResourceGroup, RoleAssignmentRecord, RoleDefinition, RolePermission, Subscription,
    Throttling, UserAssignedIdentity, World,
};

use state::{Shared, SharedRef, StoredAssignment};

/// Well-known built-in role definition GUIDs, so tests and the service don't repeat literals.
pub mod roles {
    /// AcrPull: pull from a legacy-mode registry.
    pub const ACR_PULL: &str = "7f951dda-4ed3-4680-a7ca-43fe172d538d";
    /// AcrPush.
    pub const ACR_PUSH: &str = "8311e382-0749-4cb8-b61a-304f252e45ec";
    /// Container Registry Repository Reader: pull from an ABAC-mode registry.
    pub const REPOSITORY_READER: &str = "b93aa761-3e63-49ed-ac28-beffa264f7ac";
    /// Container Registry Repository Writer.
    pub const REPOSITORY_WRITER: &str = "2a1e307c-b015-4ebd-883e-5b7698a07328";
    /// Container Registry Repository Contributor.
    pub const REPOSITORY_CONTRIBUTOR: &str = "2efddaa5-3f1f-4df3-97df-af3f13818f4c";
    /// Owner.
    pub const OWNER: &str = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635";
    /// Contributor.
    pub const CONTRIBUTOR: &str = "b24988ac-6180-42a0-ab88-20f7382dd24c";
    /// Reader.
    pub const READER: &str = "acdd72a7-3385-48ef-bd42-f606fba81ae7";
    /// User Access Administrator.
    pub const USER_ACCESS_ADMINISTRATOR: &str = "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9";
    /// Managed Identity Operator.
    pub const MANAGED_IDENTITY_OPERATOR: &str = "f1a07417-d97a-45cb-824c-7a7467783830";
}

struct Inner {
    shared: SharedRef,
    shutdown: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
    addr: SocketAddr,
}

/// Handle on a running simulator: endpoints for clients, plus state inspection and
/// manipulation for tests. Cheap to clone; all clones control the same instance.
#[derive(Clone)]
pub struct Simulator {
    inner: Arc<Inner>,
}

fn base_url_for(addr: SocketAddr) -> String {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() || ip.is_loopback() => {
            format!("https://127.0.0.1:{}", addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() || ip.is_loopback() => {
            format!("https://[::1]:{}", addr.port())
        }
        IpAddr::V4(ip) => format!("https://{ip}:{}", addr.port()),
        IpAddr::V6(ip) => format!("https://[{ip}]:{}", addr.port()),
    }
}

/// Starts a simulator for `world` on `listen` (port 0 picks a free port), so tests can run
/// many isolated tenants side by side.
pub async fn start(world: World, listen: SocketAddr) -> anyhow::Result<Simulator> {
    let pki = tls::generate()?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let addr = listener.local_addr()?;
    let base_url = base_url_for(addr);
    let key = uuid::Uuid::new_v4().as_bytes().to_vec();
    let shared: SharedRef = Arc::new(Shared::new(world, base_url, pki.ca_pem, key));
    let (tx, rx) = watch::channel(false);
    let app = server::router(shared.clone());
    let task = tokio::spawn(server::serve(listener, pki.server_config, app, rx));
    Ok(Simulator {
        inner: Arc::new(Inner {
            shared,
            shutdown: tx,
            task: Mutex::new(Some(task)),
            addr,
        }),
    })
}

impl Simulator {
    /// `https://127.0.0.1:PORT`: the authority host, ARM endpoint and Graph endpoint at once.
    pub fn base_url(&self) -> String {
        self.inner.shared.base_url.clone()
    }

    /// The socket address actually bound (useful when listening on port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// PEM of the CA that signed the server certificate: clients must trust it.
    pub fn ca_pem(&self) -> String {
        self.inner.shared.ca_pem.clone()
    }

    /// The simulated tenant id.
    pub fn tenant_id(&self) -> String {
        self.inner.shared.lock().world.tenant_id.clone()
    }

    /// A snapshot of the current world (including identities created at run time).
    pub fn world(&self) -> World {
        self.inner.shared.lock().world.clone()
    }

    /// Every role assignment in the tenant, including ones not yet readable through the API.
    pub fn role_assignments(&self) -> Vec<RoleAssignmentRecord> {
        self.inner
            .shared
            .lock()
            .assignments
            .iter()
            .filter(|a| a.deleted_at.is_none())
            .map(|a| a.rec.clone())
            .collect()
    }

    /// Seeds an assignment, immediately readable (e.g. "made earlier by az CLI with a random
    /// name"). Replaces any assignment with the same name.
    pub fn insert_role_assignment(&self, mut rec: RoleAssignmentRecord) {
        let now = Utc::now();
        rec.created_on.get_or_insert(now);
        rec.updated_on.get_or_insert(now);
        let mut st = self.inner.shared.lock();
        st.assignments.retain(|a| !a.rec.name.eq_ignore_ascii_case(&rec.name));
        st.assignments.push(StoredAssignment {
            rec,
            written_at: None,
            deleted_at: None,
        });
    }

    /// Every request served so far, in order.
    pub fn calls(&self) -> Vec<CallRecord> {
        self.inner.shared.lock().calls.clone()
    }

    /// How many requests had this operation id (e.g. `RoleAssignments_Create`).
    pub fn call_count(&self, operation: &str) -> usize {
        self.inner
            .shared
            .lock()
            .calls
            .iter()
            .filter(|c| c.operation == operation)
            .count()
    }

    /// Forgets recorded calls, so a test can count only what happens next.
    pub fn clear_calls(&self) {
        self.inner.shared.lock().calls.clear();
    }

    /// Changes knobs or resources at run time. Role assignments are not taken from
    /// `world.roleAssignments` after start: use [`Simulator::insert_role_assignment`].
    pub fn update_world(&self, f: impl FnOnce(&mut World)) {
        let mut st = self.inner.shared.lock();
        // Taken as given (no implicit directory entries are re-added): removing a principal
        // from the directory models its deletion while clusters still name it.
        f(&mut st.world);
        let seed = st.world.behaviour.fault_seed;
        if seed != st.rng_seed {
            st.rng = faults::Rng::new(seed);
            st.rng_seed = seed;
        }
    }

    /// Current (immediately consistent) direct members of a group.
    pub fn group_members(&self, group_object_id: &str) -> Vec<String> {
        self.inner
            .shared
            .lock()
            .world
            .principal(group_object_id)
            .map(|g| g.members.clone())
            .unwrap_or_default()
    }

    /// Stops accepting connections and closes open ones.
    pub async fn shutdown(self) {
        let _ = self.inner.shutdown.send(true);
        let task = self.inner.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

/// The standalone runner used by `acr-attach simulator --world FILE --listen ADDR [--ca-out FILE]`:
/// starts, prints one line with the base URL and where the CA PEM was written, runs until
/// Ctrl-C/SIGTERM.
pub async fn run_standalone(world_path: &Path, listen: SocketAddr, ca_out: Option<&Path>) -> anyhow::Result<()> {
    let world = World::from_file(world_path)?;
    let sim = start(world, listen).await?;
    let ca_path: PathBuf = match ca_out {
        Some(p) => p.to_path_buf(),
        None => std::env::temp_dir().join(format!("azure-simulator-ca-{}.pem", sim.local_addr().port())),
    };
    std::fs::write(&ca_path, sim.ca_pem())
        .with_context(|| format!("writing CA certificate to {}", ca_path.display()))?;
    println!(
        "azure-simulator listening on {} (tenant {}, CA certificate written to {})",
        sim.base_url(),
        sim.tenant_id(),
        ca_path.display()
    );
    wait_for_signal().await?;
    sim.shutdown().await;
    Ok(())
}

async fn wait_for_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await?;
    Ok(())
}
