//! `acr-attach`: serve | migrate | simulator | openapi. See `--help` and the README.
use clap::Parser;
use std::process::ExitCode;

use acr_attach::config::{Cli, Command, Config, LogFormat};
use acr_attach::queue::Handlers;
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
        Command::Openapi => {
            println!("{}", api::openapi().to_pretty_json().expect("the OpenAPI document serialises"));
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

async fn serve(config: Config) -> anyhow::Result<()> {
    telemetry::init_logging(config.log_format);
    for (name, value) in config.summary() {
        tracing::info!(setting = name, %value, "configuration");
    }
    let app = Application::build(config, Handlers::new()).await?;
    app.run_until_stopped(shutdown_on_signals()).await
}

async fn migrate(database: &acr_attach::config::DatabaseConfig) -> anyhow::Result<()> {
    let pool = db::connect(database).await?;
    db::migrate(&pool).await?;
    tracing::info!("migrations applied");
    Ok(())
}
