//! The one composition root: `acr-attach serve`, the tests and the benchmark all build the
//! service here from a [`Config`]: database, HTTP API (authentication, policy) and worker pool
//! (the Azure client and the job kinds), each switchable (`--mode`), stopped together on
//! SIGTERM/SIGINT.
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::api::auth::{ApiKeyStore, AuthMethod, Authenticator, EntraSettings, EntraValidator};
use crate::api::policy::PolicyHandle;
use crate::api::{self, AppState};
use crate::attachments::AttachmentStore;
use crate::azure::AzureClient;
use crate::config::Config;
use crate::ops::{self, Ops};
use crate::queue::{Handlers, JobStore, WorkerPool};
use crate::quota::PgQuota;
use crate::{db, telemetry};

pub struct Application {
    listener: Option<TcpListener>,
    addr: SocketAddr,
    router: axum::Router,
    store: JobStore,
    listen_pool: sqlx::PgPool,
    handlers: Handlers,
    config: Config,
    /// Background tasks of the API (policy reload), stopped with the application.
    background: CancellationToken,
}

/// `acr-attach serve`: the simulator if the configuration asks for it, then the service until
/// SIGTERM or Ctrl-C.
pub async fn run(config: Config) -> anyhow::Result<()> {
    #[cfg(feature = "simulator")]
    let (config, _simulator) = {
        let mut config = config;
        let sim = match config.simulator.clone() {
            Some(world) => Some(crate::simulated::start_file(&world, &mut config).await?),
            None => None,
        };
        if sim.is_some() && config.ops.secrets_key.is_none() {
            // Demo mode: import credentials are sealed with a key made now (lost at restart).
            config.ops.secrets_key = Some(crate::secrets::SecretKey::generate());
        }
        (config, sim)
    };
    #[cfg(not(feature = "simulator"))]
    if config.simulator.is_some() {
        anyhow::bail!("this build has no simulator (built without the `simulator` feature)");
    }
    for (name, value) in config.summary() {
        tracing::info!(setting = name, %value, "configuration");
    }
    Application::build_service(config)
        .await?
        .run_until_stopped(shutdown_on_signals())
        .await
}

impl Application {
    /// The production service: [`Self::build`] with the Azure client and the job kinds.
    pub async fn build_service(config: Config) -> anyhow::Result<Application> {
        let azure = AzureClient::new(&config.azure.resolve()?)?;
        let settings = config.ops.clone();
        Self::build_with_policy(config, move |pool, policy| {
            let azure = match settings.quota.enabled {
                true => azure.with_quota(Arc::new(PgQuota::new(pool.clone(), settings.quota.clone()))),
                false => azure,
            };
            let ops = Arc::new(Ops {
                azure,
                attachments: AttachmentStore::new(pool.clone()),
                imports: crate::imports::ImportStore::new(pool.clone()),
                settings,
            });
            // Batch items are authorised when expanded, by the same policy as requests.
            ops::handlers(ops, Arc::new(policy.clone()), pool)
        })
        .await
    }

    /// Connect (creating the database if needed), migrate, bind the listener. `handlers` builds
    /// the job kinds this replica runs from the database pool (tests pass scripted ones).
    pub async fn build(
        config: Config,
        handlers: impl FnOnce(&sqlx::PgPool) -> Handlers,
    ) -> anyhow::Result<Application> {
        Self::build_with_policy(config, |pool, _| handlers(pool)).await
    }

    /// [`Self::build`], with the authorisation policy handed to the job kinds too (a batch's
    /// expansion authorises its items with it).
    async fn build_with_policy(
        config: Config,
        handlers: impl FnOnce(&sqlx::PgPool, &PolicyHandle) -> Handlers,
    ) -> anyhow::Result<Application> {
        let pool = db::connect(&config.database).await?;
        db::migrate(&pool).await?;
        let listen_pool = db::listen_pool(&config.database)?;
        let store = JobStore::new(pool.clone());
        let background = CancellationToken::new();
        // Every replica schedules the drift sweep; one runs per interval (ops::drift::schedule).
        tokio::spawn(ops::drift::schedule(
            store.clone(),
            config.ops.clone(),
            background.clone(),
        ));
        let sweep = |what, sql| {
            tokio::spawn(db::sweep_every(
                pool.clone(),
                config.queue.prune_interval,
                background.clone(),
                what,
                sql,
            ))
        };
        sweep(
            "forgetting the credentials of finished imports",
            crate::imports::ImportStore::FORGET_FINISHED,
        );
        sweep("forgetting stale ARM quota tickets", crate::quota::FORGET_STALE_TICKETS);
        let (authenticator, policy) = if config.mode.api() {
            sweep("pruning idempotency keys", api::idempotency::PRUNE);
            security(&config, &pool, background.clone()).await?
        } else {
            (Authenticator::open(), worker_policy(&config, background.clone())?)
        };
        let handlers = handlers(&pool, &policy);
        // Batches past their retention (that of their jobs), on every replica.
        tokio::spawn(crate::batches::BatchStore::new(pool.clone()).prune_every(
            config.queue.prune_interval,
            config.queue.keep_succeeded,
            config.queue.keep_failed,
            background.clone(),
        ));
        let state = AppState {
            store: store.clone(),
            attachments: AttachmentStore::new(pool.clone()),
            ops: config.ops.clone(),
            pool: pool.clone(),
            metrics: telemetry::metrics_handle(),
            policy,
            audit: crate::audit::AuditStore::new(pool.clone()),
        };
        let router = api::router(state, &config.api, authenticator);
        let (listener, addr) = if config.mode.api() {
            let l = TcpListener::bind(config.listen)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
            let addr = l.local_addr()?;
            (Some(l), addr)
        } else {
            (None, config.listen)
        };
        Ok(Application {
            listener,
            addr,
            router,
            store,
            listen_pool,
            handlers,
            config,
            background,
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.addr
    }

    pub fn store(&self) -> &JobStore {
        &self.store
    }

    /// Serve until `shutdown` fires: the API stops accepting, the workers finish or hand back.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let workers = self.config.mode.workers().then(|| {
            let cfg = self.config.queue.clone();
            WorkerPool::start(
                self.store.clone(),
                self.listen_pool.clone(),
                self.handlers.clone(),
                cfg,
                shutdown.clone(),
            )
        });
        if let Some(listener) = self.listener {
            tracing::info!(address = %self.addr, docs = %format!("http://{}/docs", self.addr), "HTTP API listening");
            let stop = shutdown.clone();
            axum::serve(listener, self.router)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await?;
        } else {
            shutdown.cancelled().await;
        }
        if let Some(w) = workers {
            w.wait().await;
        }
        self.background.cancel();
        self.store.pool().close().await;
        Ok(())
    }
}

/// `acr-attach migrate` (and the start of `keys`): connect, creating the database if needed,
/// and apply the migrations.
pub async fn migrate(database: &crate::config::DatabaseConfig) -> anyhow::Result<sqlx::PgPool> {
    let pool = db::connect(database).await?;
    db::migrate(&pool).await?;
    tracing::info!("migrations applied");
    Ok(pool)
}

/// Fires on SIGTERM or Ctrl-C.
pub fn shutdown_on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("installing the SIGTERM handler");
            tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutdown signal received");
        t.cancel();
    });
    token
}

/// How callers authenticate and what they may do, from the configuration. Refuses to start
/// without a way to authenticate (unless `--auth none`, chosen explicitly or by `--simulator`),
/// and without a policy when callers authenticate.
async fn security(
    config: &Config,
    pool: &sqlx::PgPool,
    stop: CancellationToken,
) -> anyhow::Result<(Authenticator, PolicyHandle)> {
    let auth = &config.auth;
    let methods = auth.effective_methods(config.simulator.is_some());
    let policy = match &auth.policy {
        Some(path) => Some(PolicyHandle::watch(path.clone(), auth.policy_reload, stop).map_err(anyhow::Error::msg)?),
        None => None,
    };
    if methods.contains(&AuthMethod::None) {
        if methods.len() > 1 {
            anyhow::bail!("--auth none cannot be combined with other methods");
        }
        tracing::warn!(
            "authentication is OFF (--auth none): anyone who can reach the API is 'anonymous'{}",
            if policy.is_none() {
                " and may attach and detach anything acr-attach can reach"
            } else {
                ""
            }
        );
        return Ok((Authenticator::open(), policy.unwrap_or_else(PolicyHandle::open)));
    }
    let Some(policy) = policy else {
        anyhow::bail!(
            "callers authenticate ({}) but no authorisation policy is given: set ACR_ATTACH_POLICY (--policy) to a \
             policy file (docs/security.md); everything is denied without one",
            methods
                .iter()
                .map(|m| format!("{m:?}").to_lowercase())
                .collect::<Vec<_>>()
                .join(",")
        );
    };
    let entra = if methods.contains(&AuthMethod::Entra) {
        let authority = auth.entra_authority.clone().ok_or_else(|| {
            anyhow::anyhow!(
                "Entra authentication needs ACR_ATTACH_ENTRA_AUTHORITY (--entra-authority), e.g. \
                 https://login.microsoftonline.com/<tenant id>/v2.0, and ACR_ATTACH_ENTRA_AUDIENCE; or choose \
                 --auth api-keys (keys from `acr-attach keys create`), or --auth none"
            )
        })?;
        if !authority.starts_with("https://") {
            anyhow::bail!("ACR_ATTACH_ENTRA_AUTHORITY must be an https URL: {authority}");
        }
        if auth.entra_audience.is_empty() {
            anyhow::bail!(
                "Entra authentication needs ACR_ATTACH_ENTRA_AUDIENCE (--entra-audience): the application (client) id \
                 and/or identifier URI of acr-attach's API app registration"
            );
        }
        let validator = EntraValidator::new(
            EntraSettings {
                authority,
                audiences: auth.entra_audience.clone(),
                refresh_interval: auth.entra_keys_refresh,
                leeway: std::time::Duration::from_secs(60),
            },
            https_client(config.azure.ca_bundle.as_deref())?,
        );
        // Warm the key cache; an unreachable authority is retried on the first request.
        match validator.refresh().await {
            Ok(n) => tracing::info!(authority = %validator.authority(), keys = n, "Entra token validation ready"),
            Err(e) => tracing::warn!(error = ?e, "Entra signing keys not fetched yet; retrying on the first request"),
        }
        Some(validator)
    } else {
        None
    };
    let keys = methods
        .contains(&AuthMethod::ApiKeys)
        .then(|| ApiKeyStore::new(pool.clone()));
    Ok((Authenticator::new(entra, keys), policy))
}

/// The policy of a worker-only replica, which authorises batch items when it expands a batch:
/// the policy file if one is given; open only when callers do not authenticate (`--auth none`,
/// as on the API replicas); otherwise nothing is allowed (fail closed, with a warning), so a
/// worker without the policy never widens what a caller may do.
fn worker_policy(config: &Config, stop: CancellationToken) -> anyhow::Result<PolicyHandle> {
    let auth = &config.auth;
    if let Some(path) = &auth.policy {
        return PolicyHandle::watch(path.clone(), auth.policy_reload, stop).map_err(anyhow::Error::msg);
    }
    if auth
        .effective_methods(config.simulator.is_some())
        .contains(&AuthMethod::None)
    {
        return Ok(PolicyHandle::open());
    }
    tracing::warn!(
        "no authorisation policy on this worker replica (ACR_ATTACH_POLICY): the batches it expands are denied \
         item by item; give worker replicas the policy file of the API replicas"
    );
    Ok(PolicyHandle::deny_all())
}

/// The HTTPS client for the Entra authority (with the extra CA bundle, if any).
fn https_client(ca_bundle: Option<&std::path::Path>) -> anyhow::Result<reqwest::Client> {
    let mut b = reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(10))
        .user_agent(concat!("acr-attach/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = ca_bundle {
        let pem = std::fs::read(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        b = b.tls_certs_merge(reqwest::Certificate::from_pem_bundle(&pem)?);
    }
    Ok(b.build()?)
}
