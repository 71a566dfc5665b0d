//! `acr-attach`: serve | migrate | simulator | openapi. See `--help` and the README.
use clap::Parser;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use acr_attach::attachments::AttachmentStore;
use acr_attach::azure::{AzureClient, SingleEndpoint};
use acr_attach::config::{Cli, Command, Config, KeysCommand, LogFormat};
use acr_attach::ops::{self, Ops};
use acr_attach::startup::{Application, shutdown_on_signals};
use acr_attach::{api, db, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(config) => serve(*config).await,
        Command::Migrate { database } => {
            telemetry::init_logging(LogFormat::Text);
            migrate(&database).await
        }
        Command::Simulator { world, listen, ca_out } => {
            telemetry::init_logging(LogFormat::Text);
            azure_simulator::run_standalone(&world, listen, ca_out.as_deref()).await
        }
        Command::Keys { command, database } => {
            telemetry::init_logging(LogFormat::Text);
            keys(command, &database).await
        }
        Command::Openapi => {
            println!(
                "{}",
                api::openapi()
                    .to_pretty_json()
                    .expect("the OpenAPI document serialises")
            );
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(mut config: Config) -> anyhow::Result<()> {
    telemetry::init_logging(config.log_format);
    // Demo and tests only: a local HTTPS stand-in for Azure, reached through the same client.
    let _simulator = match config.simulator.clone() {
        Some(world) => Some(start_simulator(&world, &mut config).await?),
        None => None,
    };
    for (name, value) in config.summary() {
        tracing::info!(setting = name, %value, "configuration");
    }
    let azure = AzureClient::new(&config.azure.resolve()?)?;
    let settings = config.ops.settings();
    let app = Application::build(config, move |pool| {
        ops::handlers(Arc::new(Ops {
            azure,
            attachments: AttachmentStore::new(pool.clone()),
            settings,
        }))
    })
    .await?;
    app.run_until_stopped(shutdown_on_signals()).await
}

async fn start_simulator(world_path: &Path, config: &mut Config) -> anyhow::Result<azure_simulator::Simulator> {
    let world = azure_simulator::World::from_file(world_path)?;
    let caller = world
        .callers
        .first()
        .ok_or_else(|| anyhow::anyhow!("the world file {} defines no caller", world_path.display()))?
        .clone();
    let sim = azure_simulator::start(world.clone(), "127.0.0.1:0".parse()?).await?;
    let ca = std::env::temp_dir().join(format!("acr-attach-simulator-{}.pem", sim.local_addr().port()));
    std::fs::write(&ca, sim.ca_pem())?;
    config.azure = config.azure.clone().pointed_at(&SingleEndpoint {
        base_url: sim.base_url(),
        tenant_id: world.tenant_id.clone(),
        client_id: caller.client_id,
        client_secret: caller.client_secret,
        ca_bundle: ca,
        subscriptions: world.subscriptions.iter().map(|s| s.subscription_id.clone()).collect(),
    });
    // `--auth entra` against the simulator: its Entra issues the tokens, for the world's first
    // API application (the demo's `api://acr-attach`).
    if config.auth.entra_authority.is_none() {
        config.auth.entra_authority = Some(sim.issuer());
    }
    if let Some(app) = world.applications.first()
        && config.auth.entra_audience.is_empty()
    {
        config.auth.entra_audience = std::iter::once(app.app_id.clone())
            .chain(app.identifier_uris.iter().cloned())
            .collect();
    }
    tracing::warn!(url = %sim.base_url(), world = %world_path.display(),
        "using the built-in Azure SIMULATOR instead of Azure (demo mode)");
    Ok(sim)
}

async fn migrate(database: &acr_attach::config::DatabaseConfig) -> anyhow::Result<()> {
    let pool = db::connect(database).await?;
    db::migrate(&pool).await?;
    tracing::info!("migrations applied");
    Ok(())
}

async fn keys(command: KeysCommand, database: &acr_attach::config::DatabaseConfig) -> anyhow::Result<()> {
    let pool = db::connect(database).await?;
    db::migrate(&pool).await?;
    let store = api::auth::ApiKeyStore::new(pool);
    match command {
        KeysCommand::Create { name, expires_in } => {
            let expires_at = expires_in
                .map(|d| chrono::Duration::from_std(d).map(|d| chrono::Utc::now() + d))
                .transpose()?;
            let key = store.create(&name, expires_at).await?;
            eprintln!("API key '{name}' created; it is shown only now, store it safely:");
            println!("{key}");
        }
        KeysCommand::List => {
            for k in store.list().await? {
                let state = match (k.revoked_at, k.expires_at) {
                    (Some(r), _) => format!("revoked {r}"),
                    (None, Some(e)) if e <= chrono::Utc::now() => format!("expired {e}"),
                    (None, Some(e)) => format!("expires {e}"),
                    (None, None) => "no expiry".into(),
                };
                let used = k.last_used_at.map(|u| u.to_string()).unwrap_or_else(|| "never".into());
                println!("{}\tcreated {}\t{state}\tlast used {used}", k.name, k.created_at);
            }
        }
        KeysCommand::Revoke { name } => {
            if !store.revoke(&name).await? {
                anyhow::bail!("no live API key is named '{name}'");
            }
            eprintln!("API key '{name}' revoked");
        }
    }
    Ok(())
}
