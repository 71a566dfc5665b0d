//! Every setting of the service, in one typed struct, from flags and environment variables.
//! `acr-attach serve --help` lists them all; the README has the table.
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::api::ApiConfig;
use crate::api::auth::{AuthConfig, KeysCommand};
use crate::azure::AzureConfig;
use crate::duration::{fmt_duration, parse_duration};
use crate::ops::OpsSettings;
use crate::queue::WorkerConfig;

#[derive(Debug, Parser)]
#[command(
    name = "acr-attach",
    version,
    about = "Attach-as-a-service for Azure Container Registry and AKS"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API and the worker pool (or one of them, with --mode).
    Serve(Box<Config>),
    /// Apply the database migrations and exit.
    Migrate {
        #[command(flatten)]
        database: DatabaseConfig,
    },
    /// Run the Azure simulator alone (a local HTTPS stand-in for ARM, Graph and Entra).
    #[cfg(feature = "simulator")]
    Simulator {
        #[arg(long, default_value = "demo/world.json")]
        world: PathBuf,
        #[arg(long, default_value = "127.0.0.1:8443")]
        listen: SocketAddr,
        /// Write the simulator's CA certificate (PEM) here, for `--ca-bundle`,
        /// `REQUESTS_CA_BUNDLE` (Azure CLI, Python SDKs) or `SSL_CERT_FILE`.
        #[arg(long)]
        ca_out: Option<PathBuf>,
        /// A name clients reach the simulator by (a container's service name, a host name, an
        /// IP), added to its certificate; the first one is the host of its URLs. Repeatable.
        #[arg(long = "hostname")]
        hostnames: Vec<String>,
        /// Keep the CA and the token signing key in this directory across restarts, so clients
        /// keep trusting the simulator and their cached tokens stay valid.
        #[arg(long)]
        state_dir: Option<PathBuf>,
        /// Do not print one line per request.
        #[arg(long)]
        quiet: bool,
    },
    /// Print the OpenAPI document.
    Openapi,
    /// Manage API keys (for callers that cannot use Entra ID).
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
        #[command(flatten)]
        database: DatabaseConfig,
    },
}

/// What `acr-attach serve` runs.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address of the HTTP API.
    #[arg(long, env = "ACR_ATTACH_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Run the API, the workers, or both (replicas can be split).
    #[arg(long, env = "ACR_ATTACH_MODE", value_enum, default_value_t = Mode::All)]
    pub mode: Mode,
    /// Log format.
    #[arg(long, env = "ACR_ATTACH_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Start the built-in Azure simulator with this world file and use it instead of Azure
    /// (demo and tests only; without a value: demo/world.json).
    #[arg(long, num_args = 0..=1, default_missing_value = "demo/world.json", value_name = "WORLD")]
    pub simulator: Option<PathBuf>,
    #[command(flatten)]
    pub database: DatabaseConfig,
    #[command(flatten)]
    pub queue: WorkerConfig,
    #[command(flatten)]
    pub api: ApiConfig,
    #[command(flatten)]
    pub auth: AuthConfig,
    #[command(flatten)]
    pub ops: OpsSettings,
    #[command(flatten)]
    pub azure: AzureConfig,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    All,
    Api,
    Worker,
}

impl Mode {
    pub fn api(self) -> bool {
        matches!(self, Mode::All | Mode::Api)
    }
    pub fn workers(self) -> bool {
        matches!(self, Mode::All | Mode::Worker)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct DatabaseConfig {
    /// PostgreSQL URL; the database is created if it does not exist.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/acr_attach"
    )]
    pub database_url: String,
    /// Connections of this replica's pool (LISTEN uses one more of its own).
    #[arg(long, env = "ACR_ATTACH_DB_MAX_CONNECTIONS", default_value_t = 10)]
    pub db_max_connections: u32,
    /// How long a request or worker waits for a free connection before failing.
    #[arg(long, env = "ACR_ATTACH_DB_ACQUIRE_TIMEOUT", value_parser = parse_duration, default_value = "5s")]
    pub db_acquire_timeout: Duration,
}

/// The URL without its password, for logs and error messages.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => "<unparseable URL>".into(),
    }
}

impl Config {
    /// One line per setting, secrets redacted: printed at start-up.
    pub fn summary(&self) -> Vec<(&'static str, String)> {
        let q = &self.queue;
        vec![
            ("listen", self.listen.to_string()),
            ("mode", format!("{:?}", self.mode).to_lowercase()),
            ("database_url", redact_url(&self.database.database_url)),
            ("db_max_connections", self.database.db_max_connections.to_string()),
            ("workers", q.concurrency.to_string()),
            ("lease", fmt_duration(q.lease)),
            ("heartbeat", fmt_duration(q.heartbeat_interval)),
            ("poll_interval", fmt_duration(q.poll_interval)),
            ("shutdown_grace", fmt_duration(q.shutdown_grace)),
            ("keep_succeeded", fmt_duration(q.keep_succeeded)),
            ("keep_failed", fmt_duration(q.keep_failed)),
            ("max_body_bytes", self.api.max_body_bytes.to_string()),
            (
                "auth",
                self.auth
                    .effective_methods(self.simulator.is_some())
                    .iter()
                    .map(|m| format!("{m:?}").to_lowercase())
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            (
                "entra",
                format!(
                    "authority={} audience=[{}]",
                    self.auth.entra_authority.as_deref().unwrap_or("(unset)"),
                    self.auth.entra_audience.join(",")
                ),
            ),
            (
                "policy",
                self.auth
                    .policy
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "(none)".into()),
            ),
            ("principal_budget", fmt_duration(self.ops.principal_budget)),
            ("authorization_budget", fmt_duration(self.ops.authorization_budget)),
            (
                "identity_replication_budget",
                fmt_duration(self.ops.identity_replication_budget),
            ),
            (
                "membership_visibility_budget",
                fmt_duration(self.ops.membership_visibility_budget),
            ),
            (
                "group_propagation_budget",
                fmt_duration(self.ops.group_propagation_budget),
            ),
            ("job_deadline", fmt_duration(self.ops.job_deadline)),
            ("verify_interval", self.ops.drift.verify_interval.to_string()),
            ("repair_drift", self.ops.drift.repair_drift.to_string()),
            ("azure", self.azure.to_string()),
            (
                "simulator",
                self.simulator
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "off".into()),
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_the_logs() {
        let r = redact_url("postgres://app:hunter2@db:5432/acr");
        assert!(!r.contains("hunter2"), "{r}");
        assert!(r.contains("***"));
    }
}
