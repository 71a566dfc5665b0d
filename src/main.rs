//! `acr-attach`: serve | migrate | keys | simulator | openapi. See `--help` and the README.
//! Parses the command line and hands over to the library (`startup` is the composition root).
use clap::Parser;
use std::process::ExitCode;

use acr_attach::config::{Cli, Command, LogFormat};
use acr_attach::{api, startup, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(config) => {
            telemetry::init_logging(config.log_format);
            startup::run(*config).await
        }
        Command::Migrate { database } => {
            telemetry::init_logging(LogFormat::Text);
            startup::migrate(&database).await.map(|_| ())
        }
        Command::Keys { command, database } => {
            telemetry::init_logging(LogFormat::Text);
            match startup::migrate(&database).await {
                Ok(pool) => api::auth::keys::run_command(command, pool).await,
                Err(e) => Err(e),
            }
        }
        #[cfg(feature = "simulator")]
        Command::Simulator {
            world,
            listen,
            ca_out,
            hostnames,
            state_dir,
            quiet,
        } => {
            telemetry::init_logging(LogFormat::Text);
            let options = azure_simulator::Options {
                listen,
                hostnames,
                request_log: !quiet,
                state_dir,
            };
            azure_simulator::run_standalone(&world, options, ca_out.as_deref()).await
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
