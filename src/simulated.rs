//! Demo and tests only: the built-in Azure simulator, and the service's configuration pointed
//! at it (one HTTPS endpoint playing ARM, Entra and Graph, reached with a client secret and
//! trusted through its CA). Compiled with the `simulator` feature (the default); production
//! images are built without it (`cargo build --no-default-features`), so they carry no fake
//! Entra. Nothing else in the service knows the simulator: it is reached through the same
//! client, credentials and token validation as Azure.
use std::path::Path;

use azure_simulator::{Simulator, World};

use crate::azure::{AzureConfig, CloudName, CredentialKind};
use crate::config::Config;

/// Starts the simulator with `world` on a random local port and points `config` at it.
pub async fn start(world: World, config: &mut Config) -> anyhow::Result<Simulator> {
    let sim = azure_simulator::start(world.clone(), "127.0.0.1:0".parse()?).await?;
    point_at(&sim, &world, config)?;
    Ok(sim)
}

/// `serve --simulator WORLD`: the world file, started and pointed at, said loudly.
pub async fn start_file(world_path: &Path, config: &mut Config) -> anyhow::Result<Simulator> {
    let world = World::from_file(world_path)?;
    let sim = start(world, config).await?;
    tracing::warn!(url = %sim.base_url(), world = %world_path.display(),
        "using the built-in Azure SIMULATOR instead of Azure (demo mode)");
    Ok(sim)
}

/// Points `config` at a running simulator: Azure as the world's first caller (acr-attach's own
/// identity), trusting the simulator's CA; and, for `--auth entra`, its Entra as the authority
/// with the world's first API application as the audience (unless set already).
pub fn point_at(sim: &Simulator, world: &World, config: &mut Config) -> anyhow::Result<()> {
    let caller = world
        .callers
        .first()
        .ok_or_else(|| anyhow::anyhow!("the world defines no caller for acr-attach's own identity"))?;
    let ca = std::env::temp_dir().join(format!("acr-attach-simulator-{}.pem", sim.local_addr().port()));
    std::fs::write(&ca, sim.ca_pem())?;
    let a: &mut AzureConfig = &mut config.azure;
    a.cloud = CloudName::Custom;
    a.arm_endpoint = Some(sim.base_url());
    a.authority_host = Some(sim.base_url());
    a.graph_endpoint = Some(sim.base_url());
    a.arm_audience = Some("https://management.azure.com".into());
    a.graph_audience = Some("https://graph.microsoft.com".into());
    a.credential = CredentialKind::ClientSecret;
    a.tenant_id = Some(world.tenant_id.clone());
    a.client_id = Some(caller.client_id.clone());
    a.client_secret = Some(caller.client_secret.clone().into());
    a.ca_bundle = Some(ca);
    a.subscriptions = world.subscriptions.iter().map(|s| s.subscription_id.clone()).collect();
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
    Ok(())
}
