//! The jobs API, operations endpoints and the OpenAPI contract, through HTTP.
use reqwest::StatusCode;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

use acr_attach::queue::{Handlers, NewJob};

use crate::helpers::{TestApp, assert_error};
use crate::support::{Log, Scripted, scripted};

async fn app() -> TestApp {
    TestApp::spawn(Handlers::new().with(Scripted::new(Arc::new(Log::default())))).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_reads_back_with_its_timeline() {
    let app = app().await;
    let id = app
        .store
        .enqueue_one(&NewJob::new("scripted", scripted(&["transient", "ok"], "g", 1)))
        .await
        .unwrap()
        .job
        .id;
    let job = app.wait_finished(&id.to_string(), Duration::from_secs(20)).await;
    assert_eq!(job["id"], id.to_string());
    assert_eq!(job["kind"], "scripted");
    assert_eq!(job["status"], "Succeeded");
    assert_eq!(job["input"]["steps"][0], "transient");
    assert_eq!(job["runs"], 2);
    assert_eq!(job["errors"][0]["code"], "Flaky");
    assert_eq!(job["errors"][0]["attempt"], 1);
    assert!(job["finishedAt"].is_string());
    assert!(job["nextAttemptAt"].is_null());
    let events = app.events(&id.to_string()).await;
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        ["enqueued", "started", "retry_scheduled", "started", "succeeded"]
    );
    assert_eq!(events[2]["data"]["error"]["class"], "transient");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_filters_and_pages_with_next_link() {
    let app = app().await;
    let later = chrono::Utc::now() + chrono::Duration::hours(1);
    // Of a real kind (the `kind` filter knows only those), never claimed: this app runs only
    // `scripted`, and not before an hour from now.
    for n in 0..5 {
        let new = NewJob::new("attach", scripted(&["ok"], "g", n))
            .with_target(format!("t-{}", n % 2))
            .with_run_at(later);
        app.store.enqueue_one(&new).await.unwrap();
    }
    let page: Value = app.get("/v1/jobs?limit=2").await.json().await.unwrap();
    assert_eq!(page["value"].as_array().unwrap().len(), 2);
    assert_eq!(page["value"][0]["input"]["n"], 4, "newest first");
    let mut seen = 2;
    let mut next = page["nextLink"].as_str().map(str::to_string);
    while let Some(link) = next {
        let p: Value = app.get(&link).await.json().await.unwrap();
        seen += p["value"].as_array().unwrap().len();
        next = p["nextLink"].as_str().map(str::to_string);
    }
    assert_eq!(seen, 5);
    let t0: Value = app
        .get("/v1/jobs?target=t-0&state=queued&kind=attach")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(t0["value"].as_array().unwrap().len(), 3);
    let detach: Value = app.get("/v1/jobs?kind=detach").await.json().await.unwrap();
    assert!(detach["value"].as_array().unwrap().is_empty());
    let none: Value = app.get("/v1/jobs?state=failed").await.json().await.unwrap();
    assert!(none["value"].as_array().unwrap().is_empty());
    assert!(none["nextLink"].is_null());

    assert_error(
        app.get("/v1/jobs?state=sleeping").await,
        StatusCode::BAD_REQUEST,
        "InvalidQueryParameter",
    )
    .await;
    assert_error(
        app.get("/v1/jobs?limit=0").await,
        StatusCode::BAD_REQUEST,
        "InvalidQueryParameter",
    )
    .await;
    assert_error(
        app.get("/v1/jobs?limit=abc").await,
        StatusCode::BAD_REQUEST,
        "InvalidQueryParameter",
    )
    .await;
    assert_error(
        app.get("/v1/jobs?cursor=xyz").await,
        StatusCode::BAD_REQUEST,
        "InvalidQueryParameter",
    )
    .await;
    assert_error(
        app.get("/v1/jobs?colour=red").await,
        StatusCode::BAD_REQUEST,
        "InvalidQueryParameter",
    )
    .await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_ids_and_unknown_routes_get_the_error_shape_and_change_nothing() {
    let app = app().await;
    assert_error(
        app.get("/v1/jobs/not-a-uuid").await,
        StatusCode::BAD_REQUEST,
        "InvalidJobId",
    )
    .await;
    assert_error(
        app.get("/v1/jobs/not-a-uuid/events").await,
        StatusCode::BAD_REQUEST,
        "InvalidJobId",
    )
    .await;
    let missing = uuid::Uuid::new_v4();
    assert_error(
        app.get(&format!("/v1/jobs/{missing}")).await,
        StatusCode::NOT_FOUND,
        "JobNotFound",
    )
    .await;
    assert_error(
        app.get(&format!("/v1/jobs/{missing}/events")).await,
        StatusCode::NOT_FOUND,
        "JobNotFound",
    )
    .await;
    let r = app
        .client
        .post(app.url(&format!("/v1/jobs/{missing}/cancel")))
        .send()
        .await
        .unwrap();
    assert_error(r, StatusCode::NOT_FOUND, "JobNotFound").await;
    let r = app.client.post(app.url("/v1/jobs/123/cancel")).send().await.unwrap();
    assert_error(r, StatusCode::BAD_REQUEST, "InvalidJobId").await;
    assert_error(app.get("/v2/anything").await, StatusCode::NOT_FOUND, "NotFound").await;
    let r = app.client.delete(app.url("/v1/jobs")).send().await.unwrap();
    assert_error(r, StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed").await;
    let r = app
        .client
        .post(app.url(&format!("/v1/jobs/{missing}/cancel")))
        .header("Idempotency-Key", "")
        .send()
        .await
        .unwrap();
    assert_error(r, StatusCode::BAD_REQUEST, "InvalidIdempotencyKey").await;
    assert_eq!(app.count_jobs().await, 0);
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM job_event")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(events, 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_metrics_and_request_ids() {
    let app = app().await;
    let r = app.get("/healthz").await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers().get("x-request-id").is_some(),
        "every response carries a request id"
    );
    let r = app
        .client
        .get(app.url("/readyz"))
        .header("x-request-id", "my-trace-1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["x-request-id"],
        "my-trace-1",
        "a caller's request id is kept"
    );
    let id = app
        .store
        .enqueue_one(&NewJob::new("scripted", scripted(&["ok"], "g", 1)))
        .await
        .unwrap()
        .job
        .id;
    app.wait_finished(&id.to_string(), Duration::from_secs(20)).await;
    let text = app.get("/metrics").await.text().await.unwrap();
    for needle in [
        "acr_attach_queue_depth{state=\"succeeded\"} 1",
        "acr_attach_jobs_started_total{kind=\"scripted\"}",
        "acr_attach_jobs_finished_total{kind=\"scripted\",outcome=\"succeeded\"}",
        "acr_attach_job_insert_to_start_seconds_bucket",
        "acr_attach_job_run_seconds_bucket",
        "acr_attach_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"200\"}",
    ] {
        assert!(text.contains(needle), "metrics lack {needle}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_fails_when_the_database_is_gone() {
    let app = app().await;
    let db = app.db.clone();
    db.drop_db().await;
    let started = std::time::Instant::now();
    let r = app.get("/readyz").await;
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "probes get an answer within a second"
    );
    assert_eq!(r.headers()["retry-after"], "5", "a 503 says when to come back");
    let e = assert_error(r, StatusCode::SERVICE_UNAVAILABLE, "NotReady").await;
    assert_eq!(
        e["error"]["message"], "database unreachable",
        "the driver's error (hosts, database names) stays in the log"
    );
    assert_eq!(
        app.get("/healthz").await.status(),
        200,
        "liveness does not depend on the database"
    );
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swagger_ui_is_served_offline_and_the_committed_openapi_matches_the_code() {
    let app = app().await;
    let served: Value = app.get("/openapi.json").await.json().await.unwrap();
    let committed: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json"))
            .expect("openapi/openapi.json exists (regenerate: cargo run -- openapi > openapi/openapi.json)"),
    )
    .unwrap();
    assert!(
        served == committed,
        "openapi/openapi.json is stale: regenerate with `cargo run -q -- openapi > openapi/openapi.json` (paths served: {:?})",
        served["paths"].as_object().map(|p| p.keys().collect::<Vec<_>>())
    );
    assert!(served["paths"]["/v1/jobs/{id}"]["get"].is_object());
    let html = app.get("/docs/").await.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    let init = app.get("/docs/swagger-initializer.js").await.text().await.unwrap();
    assert!(init.contains("/openapi.json"), "{init}");
    let bundle = app.get("/docs/swagger-ui-bundle.js").await;
    assert_eq!(bundle.status(), 200);
    assert!(
        bundle.bytes().await.unwrap().len() > 100_000,
        "the Swagger UI bundle is served by the service itself"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_attachment_is_reachable_through_next_links() {
    let app = app().await;
    // 550 pairs, as the jobs would have recorded them.
    sqlx::query(
        "INSERT INTO attachment (cluster_key, registry_key, cluster_id, registry_id, state, verified_at, last_job_id) \
         SELECT 'c' || lpad(n::text, 4, '0'), 'r' || (n % 7), 'C' || n, 'R' || n, 'attached', now(), gen_random_uuid() \
         FROM generate_series(1, 550) AS n",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let mut seen = std::collections::HashSet::new();
    let mut next = Some("/v1/attachments?limit=200".to_string());
    let mut pages = 0;
    while let Some(link) = next {
        let page: Value = app.get(&link).await.json().await.unwrap();
        for a in page["value"].as_array().unwrap() {
            assert!(
                seen.insert(a["clusterId"].as_str().unwrap().to_string()),
                "no duplicates across pages"
            );
        }
        next = page["nextLink"].as_str().map(str::to_string);
        pages += 1;
    }
    assert_eq!((seen.len(), pages), (550, 3));
    // The largest page is 500, and then there is more.
    let page: Value = app.get("/v1/attachments?limit=500").await.json().await.unwrap();
    assert_eq!(page["value"].as_array().unwrap().len(), 500);
    assert!(page["nextLink"].is_string());
    assert_error(
        app.get("/v1/attachments?cursor=bm90LWEtY3Vyc29y").await,
        StatusCode::BAD_REQUEST,
        "InvalidQueryParameter",
    )
    .await;
    app.stop().await;
}
