//! The service wired to the Azure simulator exactly as `serve --simulator` does: real HTTPS,
//! real azure_identity client-secret credential, the production job kinds.
use std::path::PathBuf;

use azure_simulator::{Simulator, World};
use serde_json::{Value, json};

use acr_attach::config::Config;

use crate::helpers::{TestApp, TestDb, test_config};

pub const SUB1: &str = "11111111-1111-4111-8111-111111111111";
pub const SUB2: &str = "22222222-2222-4222-8222-222222222222";
pub const KUBELET: &str = "c0be1e70-0000-4000-8000-000000000001";
pub const LEGACY_SP_OBJECT: &str = "5e6ac5b0-0000-4000-8000-000000000001";
/// The pull roles as the simulated Azure names them (the same GUIDs as the service's: see
/// `the_simulator_and_the_service_agree_on_the_pull_roles`).
pub use azure_simulator::roles::{ACR_PULL, REPOSITORY_READER};

#[test]
fn the_simulator_and_the_service_agree_on_the_pull_roles() {
    use acr_attach::azure::roles;
    assert_eq!(ACR_PULL, roles::ACR_PULL.to_string());
    assert_eq!(
        REPOSITORY_READER,
        roles::CONTAINER_REGISTRY_REPOSITORY_READER.to_string()
    );
    assert_eq!(roles::pull_role_name(roles::ACR_PULL), "AcrPull");
}

pub fn cluster(name: &str) -> String {
    format!(
        "/subscriptions/{SUB1}/resourceGroups/rg-aks-demo/providers/Microsoft.ContainerService/managedClusters/{name}"
    )
}

pub fn registry(name: &str) -> String {
    match name {
        "acrshared" => format!(
            "/subscriptions/{SUB2}/resourceGroups/rg-shared-acr/providers/Microsoft.ContainerRegistry/registries/{name}"
        ),
        _ => format!(
            "/subscriptions/{SUB1}/resourceGroups/rg-aks-demo/providers/Microsoft.ContainerRegistry/registries/{name}"
        ),
    }
}

/// The README's demo world, to be adjusted by each test.
pub fn demo_world() -> World {
    World::from_file(&PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/demo/world.json"))).expect("demo world")
}

/// A simulator and one replica of the service on a fresh database, with the configuration to
/// start another replica on the same database and simulator (restart tests).
pub async fn simulator_and_replica(world: World) -> (Simulator, Config, TestApp) {
    let sim = azure_simulator::start(world.clone(), "127.0.0.1:0".parse().unwrap())
        .await
        .expect("simulator");
    let db = TestDb::new().await;
    let mut config = test_config(&db);
    acr_attach::simulated::point_at(&sim, &world, &mut config).expect("pointed at the simulator");
    let app = TestApp::spawn_service(config.clone(), db).await;
    (sim, config, app)
}

pub struct AzureApp {
    pub app: TestApp,
    pub sim: Simulator,
}

impl AzureApp {
    pub async fn spawn(world: World) -> AzureApp {
        Self::spawn_configured(world, |_| {}).await
    }

    pub async fn spawn_configured(world: World, adjust: impl FnOnce(&mut Config)) -> AzureApp {
        Self::spawn_configured_with_sim(world, |c, _| adjust(c)).await
    }

    /// Like [`Self::spawn_configured`], for settings that name the simulator (its Entra).
    pub async fn spawn_configured_with_sim(world: World, adjust: impl FnOnce(&mut Config, &Simulator)) -> AzureApp {
        let db = TestDb::new().await;
        let mut config = test_config(&db);
        let sim = acr_attach::simulated::start(world, &mut config)
            .await
            .expect("simulator");
        adjust(&mut config, &sim);
        let app = TestApp::spawn_service(config, db).await;
        AzureApp { app, sim }
    }

    pub async fn attach(&self, cluster: &str, registry: &str) -> reqwest::Response {
        self.app
            .post_json("/v1/attachments", &json!({ "cluster": cluster, "registry": registry }))
            .await
    }

    pub async fn detach(&self, cluster: &str, registry: &str) -> reqwest::Response {
        self.app
            .post_json("/v1/detachments", &json!({ "cluster": cluster, "registry": registry }))
            .await
    }

    /// Submit and wait for the job to finish; returns the finished job.
    pub async fn run(&self, r: reqwest::Response) -> Value {
        let status = r.status();
        let job: Value = r.json().await.unwrap();
        assert!(status == 202 || status == 200, "{status}: {job:#}");
        self.app
            .wait_finished(job["id"].as_str().unwrap(), std::time::Duration::from_secs(30))
            .await
    }

    /// Role assignments in the simulated tenant for a principal at a scope (exact, case-insensitive).
    pub fn assignments_at(&self, scope: &str, principal: &str) -> Vec<azure_simulator::RoleAssignmentRecord> {
        self.sim
            .role_assignments()
            .into_iter()
            .filter(|r| r.scope.eq_ignore_ascii_case(scope) && r.principal_id.eq_ignore_ascii_case(principal))
            .collect()
    }

    pub async fn stop(self) {
        self.app.stop().await;
        self.sim.shutdown().await;
    }
}
