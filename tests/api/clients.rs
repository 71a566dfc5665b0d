//! The real Microsoft clients against the simulator, unmodified: the Azure CLI (`az cloud
//! register`, `az login --service-principal`, `az aks show`, `az aks update --attach-acr /
//! --detach-acr` by name and by id, `az role assignment list`) and the Azure SDK for Python
//! (`tests/clients/sdk.py`). Each step is checked against the simulator's state, and against
//! acr-attach itself: what az grants acr-attach sees and can detach, and the other way round.
//!
//! The clients come from PyPI into cached virtualenvs (`tests/clients/venv.sh`). Without PyPI
//! this test fails rather than pass silently.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use azure_simulator::{Simulator, World};
use serde_json::Value;

use crate::azure_app::{ACR_PULL, AzureApp};

const TENANT: &str = "c11e0000-0000-4000-8000-000000000001";
const SUB: &str = "c11e5b00-0000-4000-8000-000000000001";
const OPERATOR: &str = "c11e0a2e-0000-4000-8000-000000000001";
const OPERATOR_SECRET: &str = "clients-test-operator-secret";
const KUBELET: &str = "c11ec1e0-0000-4000-8000-000000000001";
/// The service principal of `aks-legacy`, an old cluster without managed identity.
const LEGACY_SP: &str = "c11e5e00-0000-4000-8000-000000000001";

fn cluster() -> String {
    cluster_named("aks-clients")
}

fn cluster_named(name: &str) -> String {
    format!(
        "/subscriptions/{SUB}/resourceGroups/rg-clients/providers/Microsoft.ContainerService/managedClusters/{name}"
    )
}

fn registry(name: &str) -> String {
    let rg = if name == "acrshared" {
        "rg-registries"
    } else {
        "rg-clients"
    };
    format!("/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.ContainerRegistry/registries/{name}")
}

fn here() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

/// The virtualenvs (`az`, `sdk`), made once per run.
fn venvs() -> &'static (PathBuf, PathBuf) {
    static VENVS: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    VENVS.get_or_init(|| {
        let out = Command::new(here().join("venv.sh"))
            .output()
            .expect("running tests/clients/venv.sh");
        assert!(
            out.status.success(),
            "could not install the Azure CLI and SDKs from PyPI:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let dir = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{name}=")))
                .map(PathBuf::from)
                .unwrap_or_else(|| panic!("venv.sh printed no {name}= line: {text}"))
        };
        (dir("az"), dir("sdk"))
    })
}

/// One Azure CLI profile (its own config directory) aimed at the simulator, as the README says.
struct Az {
    bin: PathBuf,
    config_dir: PathBuf,
    ca: PathBuf,
}

impl Az {
    fn new(sim: &Simulator, ca: &Path) -> Az {
        let config_dir = std::env::temp_dir().join(format!("acr-attach-az-{}", sim.local_addr().port()));
        let _ = std::fs::remove_dir_all(&config_dir);
        Az {
            bin: venvs().0.join("bin/az"),
            config_dir,
            ca: ca.to_path_buf(),
        }
    }

    /// `az aks update -g rg-clients -n CLUSTER --attach-acr|--detach-acr REGISTRY`.
    async fn aks_update(&self, cluster: &str, flag: &str, registry: &str) {
        self.run(&["aks", "update", "-g", "rg-clients", "-n", cluster, flag, registry])
            .await;
    }

    /// Runs `az ARGS -o json` and returns its output; panics with stderr when it fails.
    async fn run(&self, args: &[&str]) -> Value {
        let mut cmd = tokio::process::Command::new(&self.bin);
        cmd.args(args)
            .args(["--output", "json", "--only-show-errors"])
            .env("AZURE_CONFIG_DIR", &self.config_dir)
            .env("REQUESTS_CA_BUNDLE", &self.ca)
            .env("AZURE_CORE_INSTANCE_DISCOVERY", "false")
            .env("AZURE_CORE_COLLECT_TELEMETRY", "false")
            .env("AZURE_CORE_NO_COLOR", "true");
        let out = cmd.output().await.expect("running az");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "az {} failed ({}):\n{}\n{stdout}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        if stdout.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("az {}: {e}: {stdout}", args.join(" ")))
        }
    }
}

/// Runs an acr-attach job to its end and checks it succeeded.
async fn succeeds(app: &AzureApp, submitted: reqwest::Response) {
    let job = app.run(submitted).await;
    assert_eq!(job["state"], "succeeded", "{job:#}");
}

fn pull_grants(sim: &Simulator, scope: &str) -> Vec<azure_simulator::RoleAssignmentRecord> {
    pull_grants_to(sim, scope, KUBELET)
}

fn pull_grants_to(sim: &Simulator, scope: &str, principal: &str) -> Vec<azure_simulator::RoleAssignmentRecord> {
    sim.role_assignments()
        .into_iter()
        .filter(|r| {
            r.scope.eq_ignore_ascii_case(scope)
                && r.principal_id.eq_ignore_ascii_case(principal)
                && r.role_definition_id.to_ascii_lowercase().ends_with(ACR_PULL)
        })
        .collect()
}

async fn attachment(app: &AzureApp, registry: &str) -> Value {
    let page: Value = app.app.get("/v1/attachments").await.json().await.unwrap();
    page["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["registryId"].as_str().unwrap().eq_ignore_ascii_case(registry))
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn the_azure_cli_and_sdks_run_unmodified_against_the_simulator_and_agree_with_acr_attach() {
    let world = World::from_file(&here().join("world.json")).expect("clients world");
    let app = AzureApp::spawn(world).await;
    let sim = app.sim.clone();
    let ca = std::env::temp_dir().join(format!("acr-attach-clients-ca-{}.pem", sim.local_addr().port()));
    std::fs::write(&ca, sim.ca_pem()).unwrap();
    let base = sim.base_url();
    let az = tokio::task::spawn_blocking({
        let (sim, ca) = (sim.clone(), ca.clone());
        move || Az::new(&sim, &ca)
    })
    .await
    .unwrap();
    let (own, shared) = (registry("acrclients"), registry("acrshared"));

    // Cloud registration reads /metadata/endpoints (with a double slash: the endpoint ends in '/').
    az.run(&[
        "cloud",
        "register",
        "-n",
        "AzureSimulator",
        "--endpoint-resource-manager",
        &format!("{base}/"),
    ])
    .await;
    az.run(&["cloud", "set", "-n", "AzureSimulator"]).await;
    let cloud = az.run(&["cloud", "show"]).await;
    assert_eq!(cloud["endpoints"]["activeDirectory"], base.as_str(), "{cloud:#}");
    let subs = az
        .run(&[
            "login",
            "--service-principal",
            "-u",
            OPERATOR,
            "-p",
            OPERATOR_SECRET,
            "--tenant",
            TENANT,
        ])
        .await;
    assert_eq!(subs[0]["id"], SUB, "{subs:#}");
    assert_eq!(subs[0]["tenantId"], TENANT);

    let shown = az.run(&["aks", "show", "-g", "rg-clients", "-n", "aks-clients"]).await;
    assert_eq!(shown["identityProfile"]["kubeletidentity"]["objectId"], KUBELET);
    assert_eq!(shown["provisioningState"], "Succeeded");

    // az attaches by name: one AcrPull grant, and the cluster written back as AKS expects.
    az.aks_update("aks-clients", "--attach-acr", "acrclients").await;
    let grants = pull_grants(&sim, &own);
    assert_eq!(grants.len(), 1, "one AcrPull after az attach: {grants:?}");
    assert!(sim.call_count("ManagedClusters_CreateOrUpdate") >= 1);
    assert!(sim.call_count("ManagedClusters_OperationStatus") >= 1);
    let listed = az.run(&["role", "assignment", "list", "--scope", &own]).await;
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 1, "{listed:#?}");
    assert_eq!(listed[0]["roleDefinitionName"], "AcrPull");
    assert_eq!(listed[0]["principalId"], KUBELET);

    // acr-attach sees az's grant as the attachment (no second grant) and its detach removes it.
    succeeds(&app, app.attach(&cluster(), &own).await).await;
    assert_eq!(pull_grants(&sim, &own).len(), 1, "acr-attach adopted az's grant");
    let a = attachment(&app, &own).await;
    assert_eq!(a["state"], "attached", "{a:#}");
    let az_grant = format!(
        "{}/providers/Microsoft.Authorization/roleAssignments/{}",
        grants[0].scope, grants[0].name
    );
    assert_eq!(
        a["assignmentId"].as_str().unwrap().to_ascii_lowercase(),
        az_grant.to_ascii_lowercase()
    );
    succeeds(&app, app.detach(&cluster(), &own).await).await;
    assert!(
        pull_grants(&sim, &own).is_empty(),
        "acr-attach's detach removed az's grant"
    );

    // acr-attach attaches; az detaches by id; acr-attach then finds nothing left to delete.
    succeeds(&app, app.attach(&cluster(), &shared).await).await;
    assert_eq!(pull_grants(&sim, &shared).len(), 1);
    az.aks_update("aks-clients", "--detach-acr", &shared).await;
    assert!(
        pull_grants(&sim, &shared).is_empty(),
        "az's detach removed acr-attach's grant"
    );
    succeeds(&app, app.detach(&cluster(), &shared).await).await;
    assert_eq!(attachment(&app, &shared).await["state"], "detached");

    // az by id, then detach by name.
    az.aks_update("aks-clients", "--attach-acr", &shared).await;
    assert_eq!(pull_grants(&sim, &shared).len(), 1);
    az.aks_update("aks-clients", "--detach-acr", "acrshared").await;
    assert!(pull_grants(&sim, &shared).is_empty());

    // An old service-principal cluster: az finds the principal through Graph by its app id.
    az.aks_update("aks-legacy", "--attach-acr", "acrclients").await;
    assert_eq!(pull_grants_to(&sim, &own, LEGACY_SP).len(), 1);
    assert!(sim.call_count("Graph_ServicePrincipals_List") >= 1);
    succeeds(&app, app.detach(&cluster_named("aks-legacy"), &own).await).await;
    assert!(
        pull_grants_to(&sim, &own, LEGACY_SP).is_empty(),
        "acr-attach's detach removed it"
    );

    // The Python SDKs at their own default api-versions.
    let sdk = tokio::process::Command::new(venvs().1.join("bin/python"))
        .arg(here().join("sdk.py"))
        .env("SIM_URL", &base)
        .env("TENANT_ID", TENANT)
        .env("CLIENT_ID", OPERATOR)
        .env("CLIENT_SECRET", OPERATOR_SECRET)
        .env("SUBSCRIPTION_ID", SUB)
        .env("RESOURCE_GROUP", "rg-clients")
        .env("CLUSTER", "aks-clients")
        .env("REGISTRY_ID", &shared)
        .env("REQUESTS_CA_BUNDLE", &ca)
        .env("SSL_CERT_FILE", &ca)
        .output()
        .await
        .expect("running sdk.py");
    let stdout = String::from_utf8_lossy(&sdk.stdout);
    assert!(
        sdk.status.success(),
        "sdk.py failed:\n{}\n{stdout}",
        String::from_utf8_lossy(&sdk.stderr)
    );
    let seen: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(seen["kubeletObjectId"], KUBELET);
    assert_eq!(seen["role"], "AcrPull");
    assert!(
        pull_grants(&sim, &shared).is_empty(),
        "the SDK script deleted its grant"
    );

    // Both clients spoke their own default api-versions, which the simulator accepted.
    let versions = |op: &str| {
        let mut v: Vec<String> = sim
            .calls()
            .into_iter()
            .filter(|c| c.operation == op && c.status < 400)
            .filter_map(|c| c.api_version)
            .collect();
        v.sort();
        v.dedup();
        v
    };
    // (acr-attach's own calls are in the log too, at its configured versions.)
    let has = |op: &str, v: &str| versions(op).iter().any(|x| x == v);
    assert!(
        has("ManagedClusters_Get", "2026-06-01"),
        "az: {:?}",
        versions("ManagedClusters_Get")
    );
    assert!(
        has("ManagedClusters_Get", "2026-08-01"),
        "SDK: {:?}",
        versions("ManagedClusters_Get")
    );
    assert!(has("ManagedClusters_CreateOrUpdate", "2026-06-01"));
    assert!(has("Registries_Get", "2026-09-01-preview") && has("Registries_Get", "2025-11-01"));
    assert!(has("RoleDefinitions_List", "2022-05-01-preview") && has("RoleDefinitions_List", "2022-04-01"));
    assert!(has("Resources_List", "2024-11-01"));
    let refused: Vec<_> = sim
        .calls()
        .into_iter()
        .filter(|c| c.status == 400 || c.status == 401)
        .collect();
    assert!(refused.is_empty(), "no call was refused: {refused:#?}");

    let _ = std::fs::remove_dir_all(&az.config_dir);
    app.stop().await;
}
