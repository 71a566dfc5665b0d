//! No Docker engine runs on the build machines, so the Dockerfile and docker-compose.yml are
//! checked as text: the facts the service depends on must hold in them.
use std::fs;

fn read(name: &str) -> String {
    fs::read_to_string(format!("{}/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap_or_else(|_| panic!("{name} exists"))
}

#[test]
fn the_dockerfile_builds_offline_and_runs_small_and_unprivileged() {
    let d = read("Dockerfile");
    let froms: Vec<&str> = d.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(froms.len(), 2, "multi-stage: a builder and a runtime");
    let builder = froms[0];
    let minor: u32 = builder
        .split("rust:")
        .nth(1)
        .and_then(|v| v.split(['.', '-']).nth(1))
        .and_then(|m| m.parse().ok())
        .expect("the builder is a rust:1.N image");
    let cargo = read("Cargo.toml");
    let needed: u32 = cargo
        .lines()
        .find(|l| l.starts_with("rust-version"))
        .and_then(|l| l.split('.').nth(1))
        .and_then(|m| m.trim_end_matches('"').parse().ok())
        .unwrap();
    assert!(
        minor >= needed,
        "the builder's Rust 1.{minor} must satisfy rust-version 1.{needed}"
    );
    assert!(froms[1].contains("slim"), "small runtime image");
    assert!(
        d.contains("cargo build --release --locked --bin acr-attach --no-default-features"),
        "reproducible (the lock file is honoured), and no simulator in production images"
    );
    assert!(
        d.contains("ca-certificates"),
        "the runtime trusts the OS roots for Azure"
    );
    let user = d.lines().rfind(|l| l.starts_with("USER ")).expect("a USER line");
    assert!(
        !user.contains("root") && !user.trim_end().ends_with(" 0"),
        "non-root: {user}"
    );
    for dir in ["src", "migrations", "simulator", "demo"] {
        assert!(d.contains(&format!("COPY {dir} ")), "{dir} is part of the build");
    }
    assert!(d.contains("EXPOSE 8080") && d.contains("ACR_ATTACH_LISTEN=0.0.0.0:8080"));
}

#[test]
fn the_compose_file_wires_the_service_to_its_database() {
    let c = read("docker-compose.yml");
    assert!(c.contains("image: postgres:15"));
    assert!(c.contains("DATABASE_URL: postgres://postgres:acr-attach@postgres:5432/acr_attach"));
    assert!(c.contains("POSTGRES_PASSWORD: acr-attach") && c.contains("POSTGRES_DB: acr_attach"));
    assert!(
        c.contains("condition: service_healthy"),
        "the service waits for the database"
    );
    assert!(c.contains("\"8080:8080\"") && c.contains("ACR_ATTACH_LISTEN: 0.0.0.0:8080"));
    assert!(
        c.contains("AZURE_ARM_ENDPOINT: https://simulator:8443") && c.contains("- simulator"),
        "compose runs acr-attach against the simulator container"
    );
    assert!(
        c.contains("CARGO_FEATURES: simulator"),
        "the demo image is built with the simulator"
    );
}
