//! No secret or token ever reaches a log line: the real binary, debug logs on, used with an
//! Entra token, an API key, a forged token and the service's own client secret in play; its
//! whole output is then searched for each of them.
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::azure_app::{cluster, demo_world, registry};
use crate::helpers::TestDb;

/// The real binary, `acr-attach serve ...`, its JSON log lines collected.
pub struct Served {
    pub child: Child,
    pub lines: Arc<Mutex<Vec<String>>>,
}

impl Served {
    fn start(db: &TestDb) -> Served {
        let policy = concat!(env!("CARGO_MANIFEST_DIR"), "/demo/policy.json");
        let world = concat!(env!("CARGO_MANIFEST_DIR"), "/demo/world.json");
        Self::serve(
            db,
            &["--simulator", world, "--auth", "entra,api-keys", "--policy", policy],
        )
    }

    /// `acr-attach serve ARGS` on a random port, debug logs on.
    pub fn serve(db: &TestDb, args: &[&str]) -> Served {
        Self::serve_with(db, args, &[])
    }

    /// Like [`Served::serve`], with environment variables.
    pub fn serve_with(db: &TestDb, args: &[&str], envs: &[(&str, String)]) -> Served {
        let mut child = Command::new(env!("CARGO_BIN_EXE_acr-attach"))
            .arg("serve")
            .args(args)
            .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
            .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
            .env("DATABASE_URL", &db.url)
            .env("RUST_LOG", "debug")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("acr-attach serve starts");
        let lines = Arc::new(Mutex::new(Vec::new()));
        for out in [
            Box::new(child.stderr.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stdout.take().unwrap()),
        ] {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    lines.lock().unwrap().push(line);
                }
            });
        }
        Served { child, lines }
    }

    /// The first JSON log line whose `message` contains `text`.
    pub fn wait_for(&self, text: &str) -> Value {
        let start = Instant::now();
        loop {
            if let Some(v) = self
                .lines
                .lock()
                .unwrap()
                .iter()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .find(|v| v["message"].as_str().is_some_and(|m| m.contains(text)))
            {
                return v;
            }
            assert!(start.elapsed() < Duration::from_secs(30), "no log line '{text}'");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_or_token_reaches_the_logs() {
    let db = TestDb::new().await;
    let mut served = Served::start(&db);
    let sim = served.wait_for("SIMULATOR")["url"].as_str().unwrap().to_string();
    let address = served.wait_for("HTTP API listening")["address"]
        .as_str()
        .unwrap()
        .to_string();
    let api = format!("http://{address}");
    let port = sim.rsplit(':').next().unwrap();
    let ca = std::fs::read(std::env::temp_dir().join(format!("acr-attach-simulator-{port}.pem"))).unwrap();
    let https = reqwest::Client::builder()
        .tls_certs_merge(reqwest::Certificate::from_pem_bundle(&ca).unwrap())
        .build()
        .unwrap();

    // An Entra token for the portal, from the simulator's token endpoint (as a portal would).
    let world = demo_world();
    let portal = world
        .callers
        .iter()
        .find(|c| c.display_name == "platform-portal")
        .unwrap();
    let token =
        crate::helpers::client_credentials(&https, &sim, &world.tenant_id, portal, "api://acr-attach/.default").await;
    let token = token["access_token"].as_str().unwrap().to_string();

    // An API key named `demo` (the policy's), made with the command.
    let out = Command::new(env!("CARGO_BIN_EXE_acr-attach"))
        .args(["keys", "create", "--name", "demo"])
        .env("DATABASE_URL", &db.url)
        .env("RUST_LOG", "debug")
        .output()
        .unwrap();
    let key = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let key_output = String::from_utf8_lossy(&out.stderr).to_string();

    let http = reqwest::Client::new();
    let body = serde_json::json!({ "cluster": cluster("aks-demo"), "registry": registry("acrdemo") });
    for credential in [token.as_str(), key.as_str()] {
        let r = http
            .post(format!("{api}/v1/attachments"))
            .bearer_auth(credential)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    }
    let forged = format!("{}x", &token[..token.len() - 1]);
    let wrong_key = format!("{key}x");
    for bad in [forged.as_str(), wrong_key.as_str()] {
        let r = http
            .get(format!("{api}/v1/jobs"))
            .bearer_auth(bad)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    // Let the jobs run (the service's own token requests happen here).
    tokio::time::sleep(Duration::from_secs(2)).await;
    served.child.kill().unwrap();
    served.child.wait().unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let logs = served.lines.lock().unwrap().join("\n") + &key_output;
    assert!(logs.contains("attach"), "the logs were captured");
    let signature = token.rsplit('.').next().unwrap();
    let mut secrets: Vec<(&str, String)> = vec![
        ("the Entra token", token.clone()),
        ("a token's signature", signature.to_string()),
        ("the API key", key.clone()),
        ("the API key's secret part", key.trim_start_matches("acr_").to_string()),
        ("a forged token", forged.clone()),
        ("a wrong key", wrong_key.clone()),
    ];
    for c in &world.callers {
        secrets.push(("a client secret", c.client_secret.clone()));
    }
    for (what, secret) in secrets {
        assert!(!logs.contains(&secret), "{what} is in the logs");
    }
    db.drop_db().await;
}
