//! Connecting to PostgreSQL: create the database if missing, apply the embedded migrations,
//! and fail with one line that says where we tried and how to fix it.
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};
use std::str::FromStr;

use crate::config::{DatabaseConfig, redact_url};

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(
        "cannot reach PostgreSQL at {host}:{port} (database '{db}', user '{user}'): {cause}. \
         Start PostgreSQL (for example `pg_ctlcluster 15 main start`) or point DATABASE_URL at a running server."
    )]
    Unreachable {
        host: String,
        port: u16,
        db: String,
        user: String,
        cause: String,
    },
    #[error("DATABASE_URL '{url}' is not a valid PostgreSQL URL: {cause}")]
    BadUrl { url: String, cause: String },
    #[error("applying database migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
}

pub fn connect_options(url: &str) -> Result<PgConnectOptions, DbError> {
    PgConnectOptions::from_str(url)
        .map(|o| o.log_statements(tracing::log::LevelFilter::Trace))
        .map_err(|e| DbError::BadUrl {
            url: redact_url(url),
            cause: e.to_string(),
        })
}

/// Pool for the service; creates the database first when it does not exist.
pub async fn connect(cfg: &DatabaseConfig) -> Result<PgPool, DbError> {
    let opts = connect_options(&cfg.database_url)?;
    ensure_database(&opts).await?;
    let pool = PgPoolOptions::new()
        .max_connections(cfg.db_max_connections)
        .acquire_timeout(cfg.db_acquire_timeout)
        // A connection that died while the database was away is found and replaced before a
        // request gets it, so the first requests after an outage are not the ones that fail.
        .test_before_acquire(true)
        .connect_with(opts.clone())
        .await
        .map_err(|e| unreachable(&opts, e))?;
    Ok(pool)
}

/// A one-connection pool for LISTEN, so waiting for notifications never uses the main pool.
pub fn listen_pool(cfg: &DatabaseConfig) -> Result<PgPool, DbError> {
    let opts = connect_options(&cfg.database_url)?;
    Ok(PgPoolOptions::new()
        .max_connections(1)
        .max_lifetime(None)
        .idle_timeout(None)
        .connect_lazy_with(opts))
}

pub async fn migrate(pool: &PgPool) -> Result<(), DbError> {
    MIGRATOR.run(pool).await?;
    Ok(())
}

async fn ensure_database(opts: &PgConnectOptions) -> Result<(), DbError> {
    match sqlx::PgConnection::connect_with(opts).await {
        Ok(c) => {
            let _ = c.close().await;
            Ok(())
        }
        // 3D000 invalid_catalog_name: the server is there, the database is not.
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("3D000") => {
            let db = opts.get_database().unwrap_or("acr_attach").to_string();
            let mut admin = sqlx::PgConnection::connect_with(&opts.clone().database("postgres"))
                .await
                .map_err(|e| unreachable(opts, e))?;
            let create = format!("CREATE DATABASE \"{}\"", db.replace('"', "\"\""));
            match sqlx::raw_sql(sqlx::AssertSqlSafe(create)).execute(&mut admin).await {
                Ok(_) => tracing::info!(database = %db, "created the database"),
                // 42P04 duplicate_database: another replica was faster.
                Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => {}
                Err(e) => return Err(e.into()),
            }
            Ok(())
        }
        Err(e) => Err(unreachable(opts, e)),
    }
}

fn unreachable(opts: &PgConnectOptions, e: sqlx::Error) -> DbError {
    DbError::Unreachable {
        host: opts.get_host().to_string(),
        port: opts.get_port(),
        db: opts.get_database().unwrap_or("").to_string(),
        user: opts.get_username().to_string(),
        cause: e.to_string(),
    }
}

/// For `/readyz`: the database answers and every embedded migration is applied.
pub async fn ready(pool: &PgPool) -> Result<(), String> {
    let applied: Vec<(i64,)> = sqlx::query_as("SELECT version FROM _sqlx_migrations WHERE success")
        .fetch_all(pool)
        .await
        .map_err(|e| format!("database unreachable or not migrated: {e}"))?;
    let missing: Vec<i64> = MIGRATOR
        .iter()
        .map(|m| m.version)
        .filter(|v| !applied.iter().any(|a| a.0 == *v))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("migrations not applied: {missing:?}"))
    }
}

/// Until `stop`, every `every`: one clean-up statement (idempotent, so every replica runs it).
pub async fn sweep_every(
    pool: PgPool,
    every: std::time::Duration,
    stop: tokio_util::sync::CancellationToken,
    what: &'static str,
    sql: &'static str,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => return,
        }
        if let Err(e) = sqlx::query(sql).execute(&pool).await {
            tracing::warn!(error = %e, what, "clean-up failed");
        }
    }
}
