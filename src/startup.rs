//! Composition: database, HTTP API and worker pool in one process, each switchable (`--mode`),
//! stopped together on SIGTERM/SIGINT.
use std::net::SocketAddr;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::api::{self, AppState, HttpSettings};
use crate::attachments::AttachmentStore;
use crate::config::Config;
use crate::queue::{Handlers, JobStore, WorkerPool};
use crate::{db, telemetry};

pub struct Application {
    listener: Option<TcpListener>,
    addr: SocketAddr,
    router: axum::Router,
    store: JobStore,
    listen_pool: sqlx::PgPool,
    handlers: Handlers,
    config: Config,
}

impl Application {
    /// Connect (creating the database if needed), migrate, bind the listener. `handlers` builds
    /// the job kinds this replica runs from the database pool.
    pub async fn build(
        config: Config,
        handlers: impl FnOnce(&sqlx::PgPool) -> Handlers,
    ) -> anyhow::Result<Application> {
        let pool = db::connect(&config.database).await?;
        db::migrate(&pool).await?;
        let listen_pool = db::listen_pool(&config.database)?;
        let store = JobStore::new(pool.clone());
        let handlers = handlers(&pool);
        let state = AppState {
            store: store.clone(),
            attachments: AttachmentStore::new(pool.clone()),
            ops: config.ops.settings(),
            pool,
            metrics: telemetry::metrics_handle(),
        };
        let settings = HttpSettings {
            max_body_bytes: config.api.max_body_bytes,
            request_timeout: config.api.request_timeout,
            api_keys: config.api.api_keys.clone(),
        };
        if config.api.api_keys.is_empty() && config.mode.api() {
            tracing::warn!(
                "no API keys configured (ACR_ATTACH_API_KEYS): anyone who can reach the API can attach and detach"
            );
        }
        let router = api::router(state, &settings);
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
            let cfg = self.config.queue.worker_config();
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
        self.store.pool().close().await;
        Ok(())
    }
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
