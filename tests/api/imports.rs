//! `POST /v1/imports`: `az acr import` as a job against the simulated ACR, the seed's flow
//! (import → attach → check with probe), restarts mid-import, and credentials that never
//! show anywhere.
use std::time::Duration;

use serde_json::{Value, json};

use azure_simulator::{ExternalRegistry, World};

use crate::azure_app::*;
use crate::helpers::{TestApp, TestDb};

const PRIVATE: &str = "private.example.com";
const PASSWORD: &str = "p@ss-w0rd-that-must-never-leak";

fn world(edit: impl FnOnce(&mut World)) -> World {
    let mut w = demo_world();
    w.behaviour.import_seconds = 0.3;
    w.behaviour.run_command_seconds = 0.3;
    w.external_registries.push(ExternalRegistry {
        login_server: PRIVATE.into(),
        repositories: [(
            "team/app".to_string(),
            [("v3".to_string(), format!("sha256:{}", "ab".repeat(32)))].into(),
        )]
        .into(),
        username: Some("puller".into()),
        password: Some(PASSWORD.into()),
    });
    edit(&mut w);
    w
}

async fn import(a: &AzureApp, body: Value) -> Value {
    let r = a.app.post_json("/v1/imports", &body).await;
    a.run(r).await
}

fn from_mcr() -> Value {
    json!({ "registry": "acrdemo", "source": { "registry": "mcr.microsoft.com", "image": "hello-world:latest" } })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_attach_and_probe_is_the_seed_s_flow_as_api_calls() {
    let a = AzureApp::spawn(world(|_| {})).await;
    let job = import(&a, from_mcr()).await;
    assert_eq!(job["state"], "succeeded", "{job:#}");
    assert_eq!(job["kind"], "import");
    assert_eq!(job["result"]["imported"], json!(["hello-world:latest"]));
    assert_eq!(
        job["result"]["images"],
        json!(["acrdemo.azurecr.io/hello-world:latest"])
    );
    assert_eq!(a.sim.imports().len(), 1);
    assert!(
        a.sim.call_count("Registries_ImportImageStatus") >= 1,
        "the operation was followed"
    );

    let attached = a.run(a.attach(&cluster("aks-demo"), "acrdemo").await).await;
    assert_eq!(attached["state"], "succeeded");
    // No image named: the probe pulls what the import put there.
    let r = a
        .app
        .post_json(
            "/v1/checks",
            &json!({ "cluster": cluster("aks-demo"), "registry": "acrdemo", "probe": true }),
        )
        .await;
    let check = a.run(r).await;
    let result = &check["result"];
    assert_eq!(result["verdict"], "canPull", "{result:#}");
    let pulled = result["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "ProbePulled")
        .unwrap();
    assert_eq!(pulled["evidence"]["image"], "acrdemo.azurecr.io/hello-world:latest");
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_that_exist_need_force_and_sources_by_id_work() {
    let a = AzureApp::spawn(world(|_| {})).await;
    assert_eq!(import(&a, from_mcr()).await["state"], "succeeded");
    let again = import(&a, from_mcr()).await;
    assert_eq!(again["state"], "failed", "{again:#}");
    let e = &again["error"];
    assert_eq!(e["class"], "permanent");
    assert!(e["message"].as_str().unwrap().contains("Force"), "{e:#}");
    let mut forced = from_mcr();
    forced["mode"] = json!("Force");
    assert_eq!(import(&a, forced).await["state"], "succeeded");

    let by_id = import(
        &a,
        json!({ "registry": registry("acrdemo"), "source": { "registry": registry("acrshared"), "image": "platform/base:v1" }, "targetTags": ["base:stable"] }),
    )
    .await;
    assert_eq!(by_id["state"], "succeeded", "{by_id:#}");
    assert_eq!(by_id["result"]["imported"], json!(["base:stable"]));
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_used_once_and_never_shown_or_kept() {
    let a = AzureApp::spawn(world(|_| {})).await;
    let body = json!({ "registry": "acrdemo", "source": { "registry": PRIVATE, "image": "team/app:v3",
        "credentials": { "username": "puller", "password": PASSWORD } } });
    let job = import(&a, body).await;
    assert_eq!(job["state"], "succeeded", "{job:#}");
    assert_eq!(job["input"]["credentials"], true);
    let id = job["id"].as_str().unwrap();
    let events = a.app.events(id).await;
    let audit: Value = a.app.get("/v1/audit").await.json().await.unwrap();
    for (what, text) in [
        ("job", job.to_string()),
        ("events", serde_json::to_string(&events).unwrap()),
        ("audit", audit.to_string()),
    ] {
        assert!(!text.contains(PASSWORD), "the password shows in the {what}");
    }
    let pool = a.app.pool.clone();
    let (rows,): (i64,) = sqlx::query_as("SELECT count(*) FROM job_secret")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 0, "the sealed credentials are forgotten once used");

    // Wrong credentials: ACR's refusal, with a fix, and nothing kept.
    let wrong = json!({ "registry": "acrdemo", "source": { "registry": PRIVATE, "image": "team/app:v3",
        "credentials": { "username": "puller", "password": "nope" } } });
    let failed = import(&a, wrong).await;
    assert_eq!(failed["state"], "failed", "{failed:#}");
    assert!(
        failed["error"]["message"].as_str().unwrap().contains("credentials"),
        "{failed:#}"
    );
    let (rows,): (i64,) = sqlx::query_as("SELECT count(*) FROM job_secret")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 0);
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_secrets_key_credentials_are_refused() {
    let a = AzureApp::spawn_configured(world(|_| {}), |c| c.ops.secrets_key = None).await;
    let r = a
        .app
        .post_json(
            "/v1/imports",
            &json!({ "registry": "acrdemo", "source": { "registry": PRIVATE, "image": "team/app:v3",
                "credentials": { "username": "puller", "password": PASSWORD } } }),
        )
        .await;
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "CredentialsNotAccepted");
    assert_eq!(a.app.count_jobs().await, 0);
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_while_acr_imports_follows_the_same_operation() {
    let w = world(|w| w.behaviour.import_seconds = 3.0);
    let (sim, config, app) = simulator_and_replica(w).await;
    let r = app.post_json("/v1/imports", &from_mcr()).await;
    let id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    let waiting = app.wait_for_state(&id, &["waiting"], Duration::from_secs(10)).await;
    assert_eq!(waiting["wait"]["condition"], "importOperation", "{waiting:#}");

    let db = app.shutdown().await;
    let app = TestApp::spawn_service(config, db).await;
    let job = app.wait_finished(&id, Duration::from_secs(30)).await;
    assert_eq!(job["state"], "succeeded", "{job:#}");
    assert_eq!(sim.imports().len(), 1, "one import, followed across the restart");
    // ACR said Retry-After: 3 (whole seconds left); polling honoured it instead of polling every
    // few hundred milliseconds.
    assert!(
        sim.call_count("Registries_ImportImageStatus") <= 3,
        "{} polls",
        sim.call_count("Registries_ImportImageStatus")
    );
    app.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_password_never_reaches_the_logs_of_the_real_binary() {
    let db = TestDb::new().await;
    let path = std::env::temp_dir().join(format!("acr-attach-import-world-{}.json", std::process::id()));
    std::fs::write(&path, serde_json::to_string(&world(|_| {})).unwrap()).unwrap();
    let mut served = crate::logs::Served::serve(&db, &["--simulator", path.to_str().unwrap(), "--auth", "none"]);
    let address = served.wait_for("HTTP API listening")["address"]
        .as_str()
        .unwrap()
        .to_string();
    let http = reqwest::Client::new();
    let job: Value = http
        .post(format!("http://{address}/v1/imports"))
        .json(
            &json!({ "registry": "acrdemo", "source": { "registry": PRIVATE, "image": "team/app:v3",
            "credentials": { "username": "puller", "password": PASSWORD } } }),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = job["id"].as_str().unwrap();
    let mut state = Value::Null;
    for _ in 0..200 {
        let j: Value = http
            .get(format!("http://{address}/v1/jobs/{id}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        state = j["state"].clone();
        if state == "succeeded" || state == "failed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(state, "succeeded");
    served.child.kill().unwrap();
    let _ = served.child.wait();
    let lines = served.lines.lock().unwrap().clone();
    assert!(lines.len() > 10, "the binary logged ({} lines)", lines.len());
    assert!(
        !lines.iter().any(|l| l.contains(PASSWORD)),
        "the password reached the logs"
    );
    let _ = std::fs::remove_file(path);
}
