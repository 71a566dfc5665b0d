//! Placeholder until the simulator lands (branch `sim`).
pub async fn run_standalone(
    _world: &std::path::Path,
    _listen: std::net::SocketAddr,
    _ca_out: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    anyhow::bail!("the simulator is not built yet")
}
