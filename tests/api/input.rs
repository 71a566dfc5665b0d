//! Every bad-input class gets a precise 4xx in the one error shape, and writes nothing.
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::azure_app::*;
use crate::helpers::assert_error;

async fn nothing_written(a: &AzureApp) {
    assert_eq!(a.app.count_jobs().await, 0, "no job was written");
    let keys: i64 = sqlx::query_scalar("SELECT count(*) FROM idempotency_key")
        .fetch_one(&a.app.pool)
        .await
        .unwrap();
    assert_eq!(keys, 0, "no idempotency record was written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_are_refused_precisely() {
    let a = AzureApp::spawn(demo_world()).await;
    let url = a.app.url("/v1/attachments");
    let c = &a.app.client;
    let post = |body: &'static str, ct: Option<&'static str>| {
        let mut r = c.post(&url).body(body);
        if let Some(ct) = ct {
            r = r.header("content-type", ct);
        }
        r.send()
    };
    let e = assert_error(
        post("{\"cluster\": ", Some("application/json")).await.unwrap(),
        StatusCode::BAD_REQUEST,
        "InvalidRequestContent",
    )
    .await;
    assert!(
        e["error"]["message"].as_str().unwrap().contains("not valid JSON"),
        "{e}"
    );
    let e = assert_error(
        post("{}", Some("text/plain")).await.unwrap(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "UnsupportedMediaType",
    )
    .await;
    assert_eq!(e["error"]["target"], "Content-Type");
    assert_error(
        post("{}", None).await.unwrap(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "UnsupportedMediaType",
    )
    .await;
    assert_error(
        post("", Some("application/json")).await.unwrap(),
        StatusCode::BAD_REQUEST,
        "InvalidRequestContent",
    )
    .await;
    let e = assert_error(
        c.post(&url)
            .json(&json!({ "cluster": cluster("aks-demo"), "registry": "acrdemo", "role": "Owner" }))
            .send()
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
        "InvalidRequestContent",
    )
    .await;
    assert!(
        e["error"]["message"].as_str().unwrap().contains("unknown field `role`"),
        "{e}"
    );
    let e = assert_error(
        c.post(&url)
            .json(&json!({ "cluster": cluster("aks-demo") }))
            .send()
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
        "InvalidRequestContent",
    )
    .await;
    assert!(e["error"]["message"].as_str().unwrap().contains("registry"), "{e}");
    let e = assert_error(
        c.post(&url)
            .json(&json!({ "cluster": 42, "registry": "acrdemo" }))
            .send()
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
        "InvalidRequestContent",
    )
    .await;
    assert_eq!(e["error"]["target"], "cluster");
    let huge = json!({ "cluster": cluster("aks-demo"), "registry": "x".repeat(64 * 1024) });
    assert_error(
        c.post(&url).json(&huge).send().await.unwrap(),
        StatusCode::PAYLOAD_TOO_LARGE,
        "RequestBodyTooLarge",
    )
    .await;
    nothing_written(&a).await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_resource_ids_are_refused_with_what_was_expected() {
    let a = AzureApp::spawn(demo_world()).await;
    for (body, code, target) in [
        (
            json!({ "cluster": "aks-demo", "registry": "acrdemo" }),
            "InvalidClusterId",
            "cluster",
        ),
        (
            json!({ "cluster": registry("acrdemo"), "registry": "acrdemo" }),
            "InvalidClusterId",
            "cluster",
        ),
        (
            json!({ "cluster": "/subscriptions/not-a-guid/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/x", "registry": "acrdemo" }),
            "InvalidClusterId",
            "cluster",
        ),
        (
            json!({ "cluster": cluster("aks-demo"), "registry": "acr-demo!" }),
            "InvalidRegistry",
            "registry",
        ),
        (
            json!({ "cluster": cluster("aks-demo"), "registry": cluster("aks-demo") }),
            "InvalidRegistry",
            "registry",
        ),
    ] {
        let r = a.app.post_json("/v1/attachments", &body).await;
        let e = assert_error(r, StatusCode::BAD_REQUEST, code).await;
        assert_eq!(e["error"]["target"], target, "{e}");
        let r = a.app.post_json("/v1/detachments", &body).await;
        assert_error(r, StatusCode::BAD_REQUEST, code).await;
    }
    assert_error(
        a.app.get("/v1/attachments?cluster=nope").await,
        StatusCode::BAD_REQUEST,
        "InvalidClusterId",
    )
    .await;
    nothing_written(&a).await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_key_replays_the_first_answer_and_refuses_reuse() {
    let a = AzureApp::spawn(demo_world()).await;
    let body = json!({ "cluster": cluster("aks-demo"), "registry": "acrdemo" });
    let send = |key: &'static str, body: Value| {
        a.app
            .client
            .post(a.app.url("/v1/attachments"))
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
    };
    let first = send("k-1", body.clone()).await.unwrap();
    assert_eq!(first.status(), 202);
    let first: Value = first.json().await.unwrap();
    a.app
        .wait_finished(first["id"].as_str().unwrap(), std::time::Duration::from_secs(30))
        .await;
    // After the job finished, the same request without a key would make a new job; with the
    // key it is the same request, answered as the first time.
    let again = send("k-1", body.clone()).await.unwrap();
    assert_eq!(again.status(), 202);
    assert_eq!(again.json::<Value>().await.unwrap()["id"], first["id"]);
    // The same JSON with its keys in another order and other whitespace is the same request.
    let reordered = a
        .app
        .client
        .post(a.app.url("/v1/attachments"))
        .header("Idempotency-Key", "k-1")
        .header("content-type", "application/json")
        .body(format!(
            "{{ \"registry\" : \"acrdemo\",\n  \"cluster\": \"{}\" }}",
            cluster("aks-demo")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(reordered.status(), 202);
    assert_eq!(reordered.json::<Value>().await.unwrap()["id"], first["id"]);
    let other = json!({ "cluster": cluster("aks-demo"), "registry": "acrshared" });
    let e = assert_error(
        send("k-1", other).await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "IdempotencyKeyReused",
    )
    .await;
    assert_eq!(e["error"]["target"], "Idempotency-Key");
    assert_eq!(a.app.count_jobs().await, 1);
    a.stop().await;
}
