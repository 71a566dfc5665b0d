//! What the simulator benchmarks share: a fresh database of their own, and the service's
//! configuration as `serve` reads it, opened up for measuring (like the tests' `test_config`).
use sqlx::Connection;
use std::time::Duration;

use acr_attach::api::auth::AuthMethod;
use acr_attach::config::{Config, Mode};
use acr_attach::ops::drift::SweepInterval;

/// The service's flags at their defaults (and whatever the environment sets).
#[derive(clap::Parser)]
struct ServeFlags {
    #[command(flatten)]
    config: Config,
}

/// The admin connection a benchmark makes its database next to.
#[derive(Debug, clap::Args)]
pub struct AdminDatabase {
    /// Admin connection (the benchmark's database is created next to it).
    #[arg(
        long = "database-url",
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    pub url: String,
}

/// Drops `name` next to `admin_url` (the service creates it again at start); its URL.
pub async fn fresh_database(admin_url: &str, name: &str) -> anyhow::Result<url::Url> {
    let mut url = url::Url::parse(admin_url)?;
    url.set_path(name);
    let mut admin = sqlx::PgConnection::connect(admin_url).await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await?;
    Ok(url)
}

/// `serve`'s defaults, on `database`: open API, no rate limit to speak of (benchmarks poll
/// faster than a caller may), a short fallback poll, no drift sweep (it would call ARM in the
/// middle of the measurements).
#[allow(dead_code)] // queue-bench runs the real binary instead
pub fn service_config(database: &url::Url) -> anyhow::Result<Config> {
    let mut config = <ServeFlags as clap::Parser>::try_parse_from(["acr-attach"])?.config;
    config.listen = "127.0.0.1:0".parse()?;
    config.mode = Mode::All;
    config.simulator = None;
    config.database.database_url = database.to_string();
    config.queue.poll_interval = Duration::from_millis(50);
    config.api.rate_limit = 100_000.0;
    config.api.rate_burst = 100_000;
    config.auth.methods = vec![AuthMethod::None];
    config.auth.policy = None;
    config.ops.drift.verify_interval = SweepInterval::OFF;
    config.ops.drift.repair_drift = false;
    Ok(config)
}
