//! `TestApp`: the real service on a random port with a fresh database per test, plus typed
//! request helpers and a way to wait for a job to settle (zero2prod / svix style).
use reqwest::{Response, StatusCode};
use serde_json::Value;
use sqlx::{Connection, PgPool};
use std::sync::Once;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use acr_attach::api::ApiConfig;
use acr_attach::api::auth::{AuthConfig, AuthMethod};
use acr_attach::azure::AzureConfig;
use acr_attach::config::{Config, DatabaseConfig, LogFormat, Mode};
use acr_attach::ops::OpsSettings;
use acr_attach::ops::drift::{DriftSettings, SweepInterval};
use acr_attach::queue::{Handlers, JobStore};
use acr_attach::queue::{WorkerConfig, config::default_worker_id};
use acr_attach::startup::Application;

pub fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .or_else(|_| std::env::var("DATABASE_URL"))
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn init_logs() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var("TEST_LOG").is_ok() {
            acr_attach::telemetry::init_logging(LogFormat::Text);
        }
    });
}

/// A fresh, uniquely named database (created by the service itself at start-up).
#[derive(Clone)]
pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    pub async fn new() -> TestDb {
        sweep_old_databases().await;
        let secs = chrono::Utc::now().timestamp();
        let name = format!("acr_attach_it_{secs}_{}", &Uuid::new_v4().simple().to_string()[..12]);
        let mut url = url::Url::parse(&admin_url()).expect("TEST_DATABASE_URL parses");
        url.set_path(&name);
        TestDb {
            name,
            url: url.to_string(),
        }
    }

    pub async fn pool(&self) -> PgPool {
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(3)
            .connect(&self.url)
            .await
            .expect("test pool")
    }

    pub async fn drop_db(&self) {
        let mut c = sqlx::PgConnection::connect(&admin_url())
            .await
            .expect("admin connection");
        let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut c).await;
    }
}

/// Databases of test runs that crashed more than an hour ago.
async fn sweep_old_databases() {
    static SWEPT: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    SWEPT
        .get_or_init(|| async {
            let Ok(mut c) = sqlx::PgConnection::connect(&admin_url()).await else {
                return;
            };
            let names: Vec<(String,)> =
                sqlx::query_as("SELECT datname FROM pg_database WHERE datname LIKE 'acr_attach_it_%'")
                    .fetch_all(&mut c)
                    .await
                    .unwrap_or_default();
            let cutoff = chrono::Utc::now().timestamp() - 3600;
            for (n,) in names {
                let ts: i64 = n.split('_').nth(3).and_then(|s| s.parse().ok()).unwrap_or(i64::MAX);
                if ts < cutoff {
                    let sql = format!("DROP DATABASE IF EXISTS \"{n}\" WITH (FORCE)");
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut c).await;
                }
            }
        })
        .await;
}

/// Fast settings for tests: short leases and intervals, small pools.
pub fn test_config(db: &TestDb) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        mode: Mode::All,
        log_format: LogFormat::Text,
        simulator: None,
        database: DatabaseConfig {
            database_url: db.url.clone(),
            db_max_connections: 4,
            db_acquire_timeout: Duration::from_secs(10),
        },
        queue: WorkerConfig {
            worker_id: default_worker_id(),
            concurrency: 4,
            lease: Duration::from_secs(5),
            heartbeat_interval: Duration::from_millis(500),
            poll_interval: Duration::from_millis(500),
            rescue_interval: Duration::from_millis(250),
            shutdown_grace: Duration::from_secs(2),
            keep_succeeded: Duration::from_secs(7 * 86400),
            keep_failed: Duration::from_secs(30 * 86400),
            prune_interval: Duration::from_secs(3600),
        },
        api: ApiConfig {
            max_body_bytes: 16 * 1024,
            request_timeout: Duration::from_secs(30),
            rate_limit: 1000.0,
            rate_burst: 1000,
        },
        // Open, as the demo is; tests of authentication and policy switch it on.
        auth: AuthConfig {
            methods: vec![AuthMethod::None],
            entra_authority: None,
            entra_audience: Vec::new(),
            entra_keys_refresh: Duration::from_millis(1),
            policy: None,
            policy_reload: Duration::from_millis(100),
        },
        // Short budgets, so tests see budgets run out in seconds.
        ops: OpsSettings {
            principal_budget: Duration::from_secs(3),
            authorization_budget: Duration::from_secs(1),
            readable_budget: Duration::from_secs(3),
            provisioning_budget: Duration::from_secs(6),
            identity_replication_budget: Duration::from_secs(4),
            membership_visibility_budget: Duration::from_secs(4),
            group_propagation_budget: Duration::from_secs(4),
            probe_budget: Duration::from_secs(20),
            import_budget: Duration::from_secs(20),
            secrets_key: Some(acr_attach::secrets::SecretKey::generate()),
            job_deadline: Duration::from_secs(60),
            max_attempts: 30,
            retry_base: Duration::from_millis(100),
            retry_cap: Duration::from_secs(1),
            // No drift sweeps unless a test asks (tests/api/drift.rs).
            drift: DriftSettings {
                verify_interval: SweepInterval::OFF,
                repair_drift: false,
            },
            quota: Default::default(),
        },
        azure: AzureConfig::defaults(),
    }
}

pub struct TestApp {
    pub address: String,
    pub db: TestDb,
    pub pool: PgPool,
    pub store: JobStore,
    pub client: reqwest::Client,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl TestApp {
    pub async fn spawn(handlers: Handlers) -> TestApp {
        let db = TestDb::new().await;
        Self::spawn_with(test_config(&db), db, handlers).await
    }

    /// Another replica (or a restarted one) on the same database.
    pub async fn spawn_with(config: Config, db: TestDb, handlers: Handlers) -> TestApp {
        Self::spawn_built(config, db, move |_| handlers).await
    }

    /// The production service (Azure client, job kinds) as `acr-attach serve` builds it.
    pub async fn spawn_service(config: Config, db: TestDb) -> TestApp {
        init_logs();
        let app = Application::build_service(config).await.expect("the service starts");
        Self::started(app, db).await
    }

    /// `handlers` builds the job kinds from the app's database pool.
    pub async fn spawn_built(config: Config, db: TestDb, handlers: impl FnOnce(&PgPool) -> Handlers) -> TestApp {
        init_logs();
        let app = Application::build(config, handlers).await.expect("the service starts");
        Self::started(app, db).await
    }

    async fn started(app: Application, db: TestDb) -> TestApp {
        let address = format!("http://{}", app.address());
        let store = app.store().clone();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(app.run_until_stopped(shutdown.clone()));
        let pool = db.pool().await;
        TestApp {
            address,
            db,
            pool,
            store,
            client: reqwest::Client::new(),
            shutdown,
            task,
        }
    }

    /// Graceful shutdown (as on SIGTERM); waits until the replica has stopped.
    pub async fn shutdown(self) -> TestDb {
        self.shutdown.cancel();
        self.task.await.expect("app task").expect("app ran cleanly");
        self.pool.close().await;
        self.db
    }

    /// Stop and drop the test database.
    pub async fn stop(self) {
        let db = self.shutdown().await;
        db.drop_db().await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.expect("request")
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn get_job(&self, id: &str) -> Value {
        let r = self.get(&format!("/v1/jobs/{id}")).await;
        assert_eq!(r.status(), StatusCode::OK);
        r.json().await.unwrap()
    }

    /// Poll until the job is in one of `states` (or panic after `within`).
    pub async fn wait_for_state(&self, id: &str, states: &[&str], within: Duration) -> Value {
        let start = Instant::now();
        loop {
            let job = self.get_job(id).await;
            if states.contains(&job["state"].as_str().unwrap_or("")) {
                return job;
            }
            if start.elapsed() > within {
                panic!("job {id} not in {states:?} after {within:?}: {job:#}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn wait_finished(&self, id: &str, within: Duration) -> Value {
        self.wait_for_state(id, &["succeeded", "failed", "cancelled"], within)
            .await
    }

    pub async fn events(&self, id: &str) -> Vec<Value> {
        let r = self.get(&format!("/v1/jobs/{id}/events")).await;
        assert_eq!(r.status(), StatusCode::OK);
        let v: Value = r.json().await.unwrap();
        v["value"].as_array().unwrap().clone()
    }

    pub async fn count_jobs(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM job")
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }
}

/// Assert the one error shape and return the code.
pub async fn assert_error(r: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(r.status(), status, "unexpected status");
    let body: Value = r.json().await.expect("error bodies are JSON");
    assert_eq!(body["error"]["code"], code, "{body:#}");
    assert!(
        body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body:#}"
    );
    body
}

/// The body of an official Azure REST example (tests/fixtures/azure-examples) for `status`.
pub fn azure_example(path: &str, status: &str) -> Value {
    let file = format!("{}/tests/fixtures/azure-examples/{path}", env!("CARGO_MANIFEST_DIR"));
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&file).expect("example file")).unwrap();
    doc["responses"][status]["body"].clone()
}

/// A client-credentials token from an Entra token endpoint (the simulator's), as any client asks.
pub async fn client_credentials(
    client: &reqwest::Client,
    authority: &str,
    tenant: &str,
    caller: &azure_simulator::Caller,
    scope: &str,
) -> Value {
    client
        .post(format!("{authority}/{tenant}/oauth2/v2.0/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", caller.client_id.as_str()),
            ("client_secret", caller.client_secret.as_str()),
            ("scope", scope),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}
