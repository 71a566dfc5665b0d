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
pub mod fleet;
mod graph;
mod keys;
mod metadata;
mod registry;
mod reply;
mod server;
mod state;
mod state_dir;
mod tls;
mod world;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use chrono::Utc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use arm::{ImageImport, ImportStatus, RunCommand};
pub use registry::{ExternalRegistry, IpRule, NetworkRuleSet, PrivateEndpointConnection, Repositories, derived_digest};
pub use state::CallRecord;
/// The simulator's throwaway PKI, for other local HTTPS test servers that clients must trust
/// the same way (a CA PEM plus a rustls server config for the loopback names).
pub use tls::{Pki, generate as generate_pki};
pub use world::{
    AppRole, AppRoleAssignment, Application, Behaviour, Bucket, Caller, KubeletIdentity, ManagedCluster,
    PermissionEntry, Principal, PrincipalKind, PrincipalNotFoundMode, Registry, ResourceGroup, RoleAssignmentRecord,
    RoleDefinition, RolePermission, Subscription, Throttling, UserAssignedIdentity, World,
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

/// The base URL clients use: `https://{host}:{port}`, the first configured host name, else
/// the loopback address for a wildcard or loopback listener, else the listen address.
fn base_url_for(addr: SocketAddr, host: Option<&str>) -> String {
    if let Some(h) = host {
        return match h.parse::<IpAddr>() {
            Ok(IpAddr::V6(ip)) => format!("https://[{ip}]:{}", addr.port()),
            _ => format!("https://{h}:{}", addr.port()),
        };
    }
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

/// Where and how a simulator serves.
#[derive(Debug, Clone)]
pub struct Options {
    /// Listen address; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Names clients reach the simulator by (a container's service name, a host name, an IP),
    /// added to the server certificate. The first one is the host of the base URL.
    pub hostnames: Vec<String>,
    /// One line per request on stdout (method, path, api-version, status, operation, caller).
    pub request_log: bool,
    /// Keep the CA and the token signing key here across restarts (made on first use).
    pub state_dir: Option<PathBuf>,
}

impl Options {
    /// Loopback names only, no request log: what tests want.
    pub fn listen(listen: SocketAddr) -> Self {
        Options {
            listen,
            hostnames: Vec::new(),
            request_log: false,
            state_dir: None,
        }
    }
}

/// Starts a simulator for `world` on `listen` (port 0 picks a free port), so tests can run
/// many isolated tenants side by side.
pub async fn start(world: World, listen: SocketAddr) -> anyhow::Result<Simulator> {
    start_with(world, Options::listen(listen)).await
}

/// Starts a simulator with explicit [`Options`].
pub async fn start_with(world: World, options: Options) -> anyhow::Result<Simulator> {
    let mut names = options.hostnames.clone();
    if !options.listen.ip().is_unspecified() {
        names.push(options.listen.ip().to_string());
    }
    let (ca, key) = match &options.state_dir {
        Some(dir) => {
            let (ca, key) = state_dir::load_or_create(dir)?;
            (ca, tokio::task::spawn(async { Ok(key) }))
        }
        // The RSA key takes the longest (~0.2 s unoptimised): make it while the rest is set up.
        None => (
            tls::Ca::generate()?,
            tokio::task::spawn_blocking(keys::SigningKey::generate),
        ),
    };
    let pki = ca.serve(&names)?;
    let listen = options.listen;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let addr = listener.local_addr()?;
    let base_url = base_url_for(addr, options.hostnames.first().map(String::as_str));
    let key = key.await.context("generating the token signing key")??;
    let shared: SharedRef = Arc::new(Shared::new(
        world,
        base_url,
        pki.ca_pem,
        keys::KeyRing::new(key),
        options.request_log,
    ));
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

    /// The v2.0 issuer, `{base_url}/{tenant}/v2.0`: the `iss` of v2.0 tokens for the world's
    /// `applications`, and the `issuer` of the discovery document at
    /// [`Simulator::openid_configuration_url`].
    pub fn issuer(&self) -> String {
        auth::issuer_v2(&self.inner.shared.base_url, &self.tenant_id())
    }

    /// The v1.0 issuer, `{base_url}/{tenant}/` (real Entra: `https://sts.windows.net/{tenant}/`):
    /// the `iss` of v1.0 tokens for applications with `requestedAccessTokenVersion: 1`.
    pub fn issuer_v1(&self) -> String {
        auth::issuer_v1(&self.inner.shared.base_url, &self.tenant_id())
    }

    /// `{base_url}/{tenant}/v2.0/.well-known/openid-configuration`.
    pub fn openid_configuration_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.issuer())
    }

    /// `{base_url}/{tenant}/discovery/v2.0/keys`: the JWKS.
    pub fn jwks_uri(&self) -> String {
        format!(
            "{}/{}/discovery/v2.0/keys",
            self.inner.shared.base_url,
            self.tenant_id()
        )
    }

    /// The `kid` of the key tokens are signed with now.
    pub fn signing_key_id(&self) -> String {
        self.inner.shared.signing_key.current().kid.clone()
    }

    /// Starts signing with a new RSA key pair. The JWKS then lists the new key and every
    /// previous one not yet retired, as Entra publishes overlapping keys, so tokens issued
    /// before still validate until [`Simulator::retire_previous_keys`].
    pub fn rotate_signing_key(&self) {
        let next = keys::SigningKey::generate().expect("generating an RSA signing key");
        self.inner.shared.signing_key.rotate(next);
    }

    /// Drops every key but the current one from the JWKS: tokens signed with them are refused
    /// from now on (by ARM and Graph too).
    pub fn retire_previous_keys(&self) {
        self.inner.shared.signing_key.retire_previous();
    }

    /// Signs arbitrary claims with the current key (`alg` RS256, its `kid` and `x5t`), so tests
    /// can craft expired, not-yet-valid, wrong-audience or wrong-issuer tokens that a validator
    /// must refuse for their claims alone.
    pub fn mint_token(&self, claims: serde_json::Value) -> String {
        auth::mint(&self.inner.shared.signing_key, &claims)
    }

    /// Signs arbitrary claims with a valid RSA key whose `kid` is not in the JWKS (the same
    /// key on every call of this simulator): a forged token that looks genuine.
    pub fn mint_token_with_unpublished_key(&self, claims: serde_json::Value) -> String {
        let key = self
            .inner
            .shared
            .signing_key
            .unpublished()
            .expect("generating an RSA signing key");
        auth::sign_with(&key, &claims)
    }

    /// The access token the token endpoint would issue to the world caller `client_id` for
    /// `scope` (e.g. `api://acr-attach/.default`), without HTTP, a secret, or a `calls()`
    /// record. Entra's refusals (unknown client or resource, AADSTS501051...) are errors
    /// carrying the `AADSTS` message.
    pub fn access_token(&self, client_id: &str, scope: &str) -> anyhow::Result<String> {
        let shared = &self.inner.shared;
        let st = shared.lock();
        let caller = st
            .world
            .callers
            .iter()
            .find(|c| c.client_id.eq_ignore_ascii_case(client_id))
            .with_context(|| format!("no caller with client id {client_id} in the world"))?;
        auth::issue(shared, &st.world, caller, scope)
            .map(|issued| issued.token)
            .map_err(|e| anyhow::anyhow!("{} (AADSTS{}: {})", e.error, e.code, e.text))
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

    /// Every AKS run-command submitted so far, in order, with its result once finished (the
    /// simulator finishes commands on time even when nobody polls).
    pub fn run_commands(&self) -> Vec<RunCommand> {
        self.inner.shared.lock().run_commands.clone()
    }

    /// Every ACR `importImage` submitted so far, in order, with its status.
    pub fn imports(&self) -> Vec<ImageImport> {
        self.inner.shared.lock().imports.clone()
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

/// The standalone runner used by `acr-attach simulator --world FILE --listen ADDR [--hostname H]
/// [--ca-out FILE]`: starts with the request log on, prints one line with the base URL and where
/// the CA PEM was written, runs until Ctrl-C/SIGTERM.
pub async fn run_standalone(world_path: &Path, options: Options, ca_out: Option<&Path>) -> anyhow::Result<()> {
    let world = World::from_file(world_path)?;
    let sim = start_with(world, options).await?;
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
