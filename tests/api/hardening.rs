//! What an attacker's review found, each through the public HTTP surface: control characters,
//! unknown filter values, look-alike content types, huge inputs echoed in errors, unbounded
//! metric labels, driver errors in bodies, nil GUIDs, unsafe Swagger examples, and an OpenAPI
//! document that hides constraints.
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

use acr_attach::queue::Handlers;

use crate::azure_app::{AzureApp, cluster, demo_world, registry};
use crate::helpers::{TestApp, assert_error};
use crate::support::{Log, Scripted};

const NIL: &str = "00000000-0000-0000-0000-000000000000";
const GROUP: &str = "9a0b0000-0000-4000-8000-000000000001";

async fn app() -> TestApp {
    TestApp::spawn(Handlers::new().with(Scripted::new(Arc::new(Log::default())))).await
}

fn identity(name: &str) -> String {
    format!(
        "/subscriptions/11111111-1111-4111-8111-111111111111/resourceGroups/rg-aks-demo/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}"
    )
}

async fn nothing_written(app: &TestApp) {
    assert_eq!(app.count_jobs().await, 0, "no job was written");
    let keys: i64 = sqlx::query_scalar("SELECT count(*) FROM idempotency_key")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(keys, 0, "no idempotency record was written");
}

fn message(e: &Value) -> &str {
    e["error"]["message"].as_str().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_characters_are_refused_wherever_input_enters() {
    let app = app().await;
    // Query parameters (PostgreSQL refuses NUL: this was a 500).
    for (query, target) in [
        ("/v1/jobs?target=%00", "target"),
        ("/v1/jobs?kind=%00", "kind"),
        ("/v1/jobs?state=queued%01", "state"),
        ("/v1/jobs?target=a%7Fb", "target"),
        ("/v1/jobs?target=a%C2%85b", "target"),
        ("/v1/jobs?cursor=1%00", "cursor"),
        ("/v1/attachments?cluster=%00", "cluster"),
        ("/v1/attachments?registry=acr%0Ademo", "registry"),
    ] {
        let e = assert_error(app.get(query).await, StatusCode::BAD_REQUEST, "InvalidQueryParameter").await;
        assert_eq!(e["error"]["target"], target, "{query}: {e}");
        assert!(message(&e).contains("control character"), "{query}: {e}");
    }
    // JSON strings, values and keys, at any depth.
    let post = |path: &'static str, body: Value| {
        let app = &app;
        async move { app.post_json(path, &body).await }
    };
    for (path, body, target) in [
        (
            "/v1/kubelet-identities",
            json!({ "identity": identity("aks-next"), "tags": { "team": "a\u{0}b" } }),
            "tags.team",
        ),
        (
            "/v1/kubelet-identities",
            json!({ "identity": identity("aks-next"), "tags": { "te\u{1}am": "x" } }),
            "tags",
        ),
        (
            "/v1/kubelet-identities",
            json!({ "identity": identity("aks-next"), "groups": [GROUP, "\u{7f}"] }),
            "groups[1]",
        ),
        (
            "/v1/kubelet-identities",
            json!({ "identity": identity("aks-next"), "location": "west\teurope" }),
            "location",
        ),
        (
            "/v1/attachments",
            json!({ "cluster": format!("{}\u{0}", cluster("aks-demo")), "registry": "acrdemo" }),
            "cluster",
        ),
        (
            "/v1/detachments",
            json!({ "cluster": cluster("aks-demo"), "registry": "acrdemo", "group": "\u{0}" }),
            "group",
        ),
    ] {
        let e = assert_error(post(path, body).await, StatusCode::BAD_REQUEST, "InvalidRequestContent").await;
        assert_eq!(e["error"]["target"], target, "{e}");
        assert!(message(&e).contains("control character U+00"), "{e}");
    }
    // The path: a NUL, and bytes that are not UTF-8 once decoded, get the error shape too.
    for path in ["/v1/jobs/%00", "/v1/jobs/%FF%FE", "/v1/jobs/%00/events"] {
        let e = assert_error(app.get(path).await, StatusCode::BAD_REQUEST, "InvalidJobId").await;
        assert_eq!(e["error"]["target"], "id", "{path}");
    }
    let r = app.client.post(app.url("/v1/jobs/%00/cancel")).send().await.unwrap();
    assert_error(r, StatusCode::BAD_REQUEST, "InvalidJobId").await;
    // The header the service reads.
    for key in ["a\tb", "\t"] {
        let r = app
            .client
            .post(app.url("/v1/attachments"))
            .header("Idempotency-Key", key)
            .json(&json!({ "cluster": cluster("aks-demo"), "registry": "acrdemo" }))
            .send()
            .await
            .unwrap();
        let e = assert_error(r, StatusCode::BAD_REQUEST, "InvalidIdempotencyKey").await;
        assert_eq!(e["error"]["target"], "Idempotency-Key");
    }
    nothing_written(&app).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_filters_take_only_known_kinds_and_states() {
    let app = app().await;
    let e = assert_error(
        app.get("/v1/jobs?kind=bogus").await,
        StatusCode::BAD_REQUEST,
        "InvalidQueryParameter",
    )
    .await;
    assert_eq!(e["error"]["target"], "kind");
    for allowed in ["attach", "detach", "check", "import", "verify", "kubelet-identity"] {
        assert!(message(&e).contains(allowed), "{e}");
    }
    for query in ["/v1/jobs?kind=", "/v1/jobs?kind=ATTACH", "/v1/jobs?kind=scripted"] {
        let e = assert_error(app.get(query).await, StatusCode::BAD_REQUEST, "InvalidQueryParameter").await;
        assert_eq!(e["error"]["target"], "kind", "{query}");
    }
    let e = assert_error(
        app.get("/v1/jobs?state=paused").await,
        StatusCode::BAD_REQUEST,
        "InvalidQueryParameter",
    )
    .await;
    assert_eq!(e["error"]["target"], "state");
    for allowed in [
        "queued",
        "running",
        "waiting",
        "retrying",
        "succeeded",
        "failed",
        "cancelled",
    ] {
        assert!(message(&e).contains(allowed), "{e}");
    }
    for query in [
        "/v1/jobs?limit=201",
        "/v1/jobs?limit=-1",
        "/v1/jobs?limit=%2B5",
        "/v1/jobs?cursor=%2B5",
    ] {
        assert_error(app.get(query).await, StatusCode::BAD_REQUEST, "InvalidQueryParameter").await;
    }
    for query in [
        "/v1/jobs?kind=attach",
        "/v1/jobs?kind=kubelet-identity&state=waiting",
        "/v1/jobs?limit=200&cursor=5",
    ] {
        assert_eq!(app.get(query).await.status(), 200, "{query}");
    }
    assert_error(
        app.get("/v1/attachments?limit=501").await,
        StatusCode::BAD_REQUEST,
        "InvalidQueryParameter",
    )
    .await;
    assert_eq!(app.get("/v1/attachments?limit=500").await.status(), 200);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_application_json_is_json() {
    let app = app().await;
    let body = json!({ "cluster": cluster("aks-demo"), "registry": "acrdemo" }).to_string();
    let send = |ct: &'static str| {
        app.client
            .post(app.url("/v1/attachments"))
            .header("content-type", ct)
            .body(body.clone())
            .send()
    };
    for ct in [
        "application/merge-patch+json",
        "application/vnd.api+json",
        "application/problem+json",
        "application/jsonx",
        "text/json",
        "application/json; charset=iso-8859-1",
    ] {
        let e = assert_error(
            send(ct).await.unwrap(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
        )
        .await;
        assert_eq!(e["error"]["target"], "Content-Type", "{ct}");
    }
    nothing_written(&app).await;
    let r = send("application/json; charset=utf-8").await.unwrap();
    assert_eq!(r.status(), 202);
    let r = send("Application/JSON").await.unwrap();
    assert_eq!(r.status(), 200, "the same request again: the queued job");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_quote_a_bounded_prefix_of_any_input() {
    let app = app().await;
    let huge = "x".repeat(10_000);
    let huge_id = format!("/subscriptions/{}", "1".repeat(10_000));
    let long_rg = cluster("aks-demo").replace("rg-aks-demo", &"r".repeat(150));
    let post = |path: &'static str, body: Value| {
        let app = &app;
        async move { app.post_json(path, &body).await }
    };
    let with_field = |mut body: Value, name: &str| {
        body.as_object_mut().unwrap().insert(name.to_string(), json!(1));
        body
    };
    let mut errors = vec![
        post("/v1/attachments", json!({ "cluster": huge_id, "registry": "acrdemo" })).await,
        post("/v1/attachments", json!({ "cluster": long_rg, "registry": "acrdemo" })).await,
        post(
            "/v1/attachments",
            json!({ "cluster": cluster("aks-demo"), "registry": huge }),
        )
        .await,
        post(
            "/v1/attachments",
            json!({ "cluster": cluster("aks-demo"), "registry": "acrdemo", "group": huge }),
        )
        .await,
        post(
            "/v1/attachments",
            with_field(json!({ "cluster": cluster("aks-demo") }), &huge),
        )
        .await,
        post("/v1/attachments", json!({ "cluster": [huge], "registry": "acrdemo" })).await,
        post(
            "/v1/kubelet-identities",
            json!({ "identity": identity("aks-next"), "location": huge }),
        )
        .await,
        post(
            "/v1/kubelet-identities",
            json!({ "identity": identity("aks-next"), "tags": { format!("{huge}/"): "v" } }),
        )
        .await,
        app.get(&format!("/v1/jobs/{huge}")).await,
        app.get(&format!("/v1/jobs?state={huge}")).await,
        app.get(&format!("/v1/jobs?kind={huge}")).await,
        app.get(&format!("/v1/jobs?limit={huge}")).await,
        app.get(&format!("/v1/jobs?{huge}=1")).await,
        app.get(&format!("/v1/attachments?cluster={huge}")).await,
        app.get(&format!("/v2/{huge}")).await,
        app.client
            .post(app.url("/v1/attachments"))
            .header("content-type", &huge)
            .body("{}")
            .send()
            .await
            .unwrap(),
    ];
    errors.push(post("/v1/attachments", with_field(json!({}), &huge)).await);
    for r in errors {
        let status = r.status();
        assert!(status.is_client_error(), "{status}");
        let e: Value = r.json().await.unwrap();
        let text = e.to_string();
        assert!(
            text.len() < 1200,
            "the error quotes too much ({} bytes): {}",
            text.len(),
            &text[..600]
        );
        assert!(!text.contains(&"x".repeat(201)), "{text}");
        assert!(!text.contains(&"1".repeat(201)), "{text}");
    }
    nothing_written(&app).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_metrics_labels_stay_bounded() {
    let app = app().await;
    let made_up = format!("BREW{}", uuid::Uuid::new_v4().simple()).to_uppercase();
    let stray = format!("/nothing-here-{}", uuid::Uuid::new_v4());
    for (method, path) in [
        (made_up.as_str(), "/healthz"),
        (made_up.as_str(), stray.as_str()),
        ("GET", stray.as_str()),
        ("GET", "/v1/jobs/4f1e1c9a-0000-4000-8000-000000000000"),
    ] {
        let r = app
            .client
            .request(Method::from_bytes(method.as_bytes()).unwrap(), app.url(path))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_client_error(), "{method} {path}: {}", r.status());
    }
    let text = app.get("/metrics").await.text().await.unwrap();
    assert!(!text.contains(&made_up), "a made-up method is not a label value");
    assert!(!text.contains(&stray), "an unknown path is not a label value");
    assert!(!text.contains("4f1e1c9a"), "ids in paths are not label values");
    for needle in [
        "acr_attach_http_requests_total{route=\"/healthz\",method=\"other\",status=\"405\"}",
        "acr_attach_http_requests_total{route=\"unmatched\",method=\"other\",status=\"404\"}",
        "acr_attach_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"}",
        "acr_attach_http_requests_total{route=\"/v1/jobs/{id}\",method=\"GET\",status=\"404\"}",
    ] {
        assert!(text.contains(needle), "metrics lack {needle}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nil_guids_are_refused() {
    let app = app().await;
    let nil_sub_cluster = cluster("aks-demo").replace("11111111-1111-4111-8111-111111111111", NIL);
    let nil_sub_registry = registry("acrdemo").replace("11111111-1111-4111-8111-111111111111", NIL);
    let nil_sub_identity = identity("aks-next").replace("11111111-1111-4111-8111-111111111111", NIL);
    for (path, body, code, target) in [
        (
            "/v1/attachments",
            json!({ "cluster": cluster("aks-demo"), "registry": "acrdemo", "group": NIL }),
            "InvalidGroupId",
            "group",
        ),
        (
            "/v1/detachments",
            json!({ "cluster": cluster("aks-demo"), "registry": "acrdemo", "group": NIL }),
            "InvalidGroupId",
            "group",
        ),
        (
            "/v1/kubelet-identities",
            json!({ "identity": identity("aks-next"), "groups": [GROUP, NIL] }),
            "InvalidGroupId",
            "groups[1]",
        ),
        (
            "/v1/attachments",
            json!({ "cluster": nil_sub_cluster, "registry": "acrdemo" }),
            "InvalidClusterId",
            "cluster",
        ),
        (
            "/v1/attachments",
            json!({ "cluster": cluster("aks-demo"), "registry": nil_sub_registry }),
            "InvalidRegistry",
            "registry",
        ),
        (
            "/v1/kubelet-identities",
            json!({ "identity": nil_sub_identity }),
            "InvalidIdentityId",
            "identity",
        ),
        (
            "/v1/kubelet-identities",
            json!({ "identity": identity("aks-next"), "registries": ["acrdemo", nil_sub_registry] }),
            "InvalidRegistry",
            "registries[1]",
        ),
    ] {
        let e = assert_error(app.post_json(path, &body).await, StatusCode::BAD_REQUEST, code).await;
        assert_eq!(e["error"]["target"], target, "{e}");
    }
    nothing_written(&app).await;
    app.stop().await;
}

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => &doc["components"]["schemas"][r.rsplit('/').next().unwrap()],
        None => schema,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swagger_examples_are_safe_to_run_as_they_are() {
    let a = AzureApp::spawn(demo_world()).await;
    let doc: Value = a.app.get("/openapi.json").await.json().await.unwrap();
    for path in ["/v1/attachments", "/v1/detachments", "/v1/kubelet-identities"] {
        let body = resolve(
            &doc,
            &doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"],
        );
        let example = body["example"].clone();
        assert!(example.is_object(), "{path} has a request example: {body:#}");
        if path != "/v1/kubelet-identities" {
            assert!(example.get("group").is_none(), "{path}: no group in the example");
            assert_eq!(example["cluster"], cluster("aks-demo"));
            assert_eq!(example["registry"], "acrdemo");
        }
        // Swagger UI's "Try it out", as it is: accepted, and the job succeeds in the demo world.
        let r = a.app.post_json(path, &example).await;
        assert_eq!(r.status(), 202, "{path}");
        let job: Value = r.json().await.unwrap();
        let done = a
            .app
            .wait_finished(job["id"].as_str().unwrap(), Duration::from_secs(60))
            .await;
        assert_eq!(done["status"], "Succeeded", "{path}: {done:#}");
        if path == "/v1/attachments" {
            assert_eq!(done["result"]["path"], "direct", "a direct attach, not through a group");
        }
    }
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_states_what_the_server_enforces() {
    let app = app().await;
    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();
    let schemas = &doc["components"]["schemas"];
    let param = |path: &str, name: &str| -> Value {
        let params = doc["paths"][path]["get"]["parameters"].as_array().unwrap();
        let p = params
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{path} {name}"));
        resolve(&doc, &p["schema"]).clone()
    };
    let limit = param("/v1/jobs", "limit");
    assert_eq!(
        (limit["minimum"].as_i64(), limit["maximum"].as_i64()),
        (Some(1), Some(200))
    );
    let limit = param("/v1/attachments", "limit");
    assert_eq!(
        (limit["minimum"].as_i64(), limit["maximum"].as_i64()),
        (Some(1), Some(500))
    );
    assert_eq!(
        param("/v1/jobs", "kind")["enum"],
        json!([
            "attach",
            "detach",
            "check",
            "import",
            "verify",
            "kubelet-identity",
            "batch-expand"
        ])
    );
    assert_eq!(
        param("/v1/jobs", "state")["enum"],
        json!([
            "queued",
            "running",
            "waiting",
            "retrying",
            "succeeded",
            "failed",
            "cancelled"
        ])
    );
    assert!(param("/v1/jobs", "target")["pattern"].is_string());
    assert!(param("/v1/jobs", "cursor")["pattern"].is_string());
    assert!(param("/v1/attachments", "cluster")["pattern"].is_string());
    let id = &doc["paths"]["/v1/jobs/{id}"]["get"]["parameters"][0]["schema"];
    assert_eq!(id["format"], "uuid");

    for name in ["ClusterId", "RegistryRef", "UserAssignedIdentityId", "GroupId"] {
        let s = &schemas[name];
        assert!(s["pattern"].is_string() && s["maxLength"].is_u64(), "{name}: {s:#}");
    }
    assert_eq!(schemas["GroupId"]["format"], "uuid");
    assert_eq!(schemas["PairRequest"]["additionalProperties"], false);
    assert_eq!(schemas["KubeletIdentityRequest"]["additionalProperties"], false);
    assert_eq!(schemas["BatchBody"]["additionalProperties"], false);
    assert_eq!(schemas["SelectBody"]["additionalProperties"], false);
    assert_eq!(schemas["BatchBody"]["properties"]["clusters"]["maxItems"], 5000);
    assert_eq!(schemas["DetachRequest"]["allOf"][0]["additionalProperties"], false);
    let ki = &schemas["KubeletIdentityRequest"]["properties"];
    assert_eq!(ki["groups"]["maxItems"], 20);
    assert_eq!(ki["registries"]["maxItems"], 20);
    assert_eq!(ki["tags"]["maxProperties"], 50);
    assert_eq!(ki["tags"]["propertyNames"]["maxLength"], 512);
    assert_eq!(ki["tags"]["additionalProperties"]["maxLength"], 256);
    assert_eq!(ki["location"]["maxLength"], 64);

    // A job's input and result have schemas.
    let job = &schemas["JobView"]["properties"];
    let input = resolve(&doc, &job["input"]);
    assert_eq!(input["anyOf"].as_array().map(Vec::len), Some(6), "{input:#}");
    assert!(schemas["PairJobInput"]["properties"]["cluster"].is_object());
    assert!(schemas["CheckJobInput"]["properties"]["probe"].is_object());
    assert!(schemas["ImportJobInput"]["properties"]["source"].is_object());
    assert!(schemas["KubeletIdentityJobInput"]["properties"]["identity"].is_object());
    assert!(schemas["JobResult"]["anyOf"].is_array());
    for name in [
        "AttachResult",
        "DetachResult",
        "CheckResult",
        "ImportResult",
        "KubeletIdentityResult",
    ] {
        assert!(schemas[name]["properties"].is_object(), "{name}");
    }
    // Every reference resolves.
    let text = doc.to_string();
    for r in text.split("\"#/components/schemas/").skip(1) {
        let name = &r[..r.find('"').unwrap()];
        assert!(schemas[name].is_object(), "dangling reference to {name}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_schema_patterns_refuse_the_server_refuses() {
    let app = app().await;
    for (path, body, code, target) in [
        (
            "/v1/attachments",
            json!({ "cluster": format!(" {}", cluster("aks-demo")), "registry": "acrdemo" }),
            "InvalidClusterId",
            "cluster",
        ),
        (
            "/v1/attachments",
            json!({ "cluster": cluster("aks-demo"), "registry": "acrdemo " }),
            "InvalidRegistry",
            "registry",
        ),
        (
            "/v1/detachments",
            json!({ "cluster": cluster("aks-demo"), "registry": "acrdemo", "group": format!(" {GROUP}") }),
            "InvalidGroupId",
            "group",
        ),
        (
            "/v1/detachments",
            json!({ "cluster": cluster("aks-demo"), "registry": "acrdemo", "removeGroupGrant": true }),
            "GroupRequired",
            "removeGroupGrant",
        ),
        (
            "/v1/kubelet-identities",
            json!({ "identity": identity("aks-next"), "location": "\u{3000}westeurope" }),
            "InvalidLocation",
            "location",
        ),
        (
            "/v1/kubelet-identities",
            json!({ "identity": identity("aks-next"), "groups": ["9a0b00000000400080000000000000001"] }),
            "InvalidGroupId",
            "groups[0]",
        ),
    ] {
        let e = assert_error(app.post_json(path, &body).await, StatusCode::BAD_REQUEST, code).await;
        assert_eq!(e["error"]["target"], target, "{e}");
    }
    let e = assert_error(
        app.get("/v1/jobs/9a0b00000000400080000000000000001").await,
        StatusCode::BAD_REQUEST,
        "InvalidJobId",
    )
    .await;
    assert_eq!(e["error"]["target"], "id");
    nothing_written(&app).await;
    // Any case of the keywords, and spaces inside a region name, are what the patterns allow.
    let shouting = cluster("aks-demo").replace("subscriptions", "SUBSCRIPTIONS").replace(
        "Microsoft.ContainerService/managedClusters",
        "microsoft.containerservice/MANAGEDCLUSTERS",
    );
    let r = app
        .post_json(
            "/v1/attachments",
            &json!({ "cluster": shouting, "registry": "ACRDEMO" }),
        )
        .await;
    assert_eq!(r.status(), 202);
    let r = app
        .post_json(
            "/v1/kubelet-identities",
            &json!({ "identity": identity("aks-next"), "location": " West Europe " }),
        )
        .await;
    assert_eq!(r.status(), 202);
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Found by schemathesis (scripts/schemathesis.sh): requests the OpenAPI document allows that the
// server refused, or refuses that the server took, and links a stateful client can follow.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_filters_take_exactly_what_their_schema_allows() {
    let app = app().await;
    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();
    let params = doc["paths"]["/v1/audit"]["get"]["parameters"].as_array().unwrap();
    let caller = params.iter().find(|p| p["name"] == "caller").unwrap();
    let pattern = caller["schema"]["pattern"].as_str().unwrap();
    // The pattern said `entra:[0-9a-f-]{36}` (any 36 hex digits and hyphens) while the server
    // wanted a GUID: schema-valid callers were refused with 400. Now both say GUID, any case.
    assert!(
        pattern.contains("entra:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"),
        "{pattern}"
    );
    let oid = "0f8fad5b-d9cb-469f-a165-70867728950e";
    sqlx::query(
        "INSERT INTO audit_record (caller, caller_info, action, method, path, resources, decision, reason, status) \
         VALUES ($1, '{}', 'attach', 'POST', '/v1/attachments', '{}', 'denied', 'test', 403)",
    )
    .bind(format!("entra:{oid}"))
    .execute(&app.pool)
    .await
    .unwrap();
    for caller in [oid.to_string(), oid.to_uppercase()] {
        let r = app.get(&format!("/v1/audit?caller=entra:{caller}")).await;
        assert_eq!(r.status(), 200, "{caller}");
        let page: Value = r.json().await.unwrap();
        assert_eq!(page["value"].as_array().unwrap().len(), 1, "{caller}: {page:#}");
        assert_eq!(page["value"][0]["caller"], format!("entra:{oid}"));
    }
    for query in [
        "/v1/audit?caller=anonymous",
        "/v1/audit?caller=key:ci.deploy-1",
        "/v1/audit?jobId=0F8FAD5B-D9CB-469F-A165-70867728950E",
        "/v1/audit?since=2026-01-31t12:00:00z&until=2026-01-31T12:00:00.5%2B01:00",
        "/v1/audit?cursor=999999999999999999",
        "/v1/jobs?cursor=999999999999999999",
    ] {
        assert_eq!(app.get(query).await.status(), 200, "{query}");
    }
    // What the schema refuses (pattern, format: uuid, format: date-time), the server refuses.
    for (query, target) in [
        ("/v1/audit?caller=entra:0f8fad5bd9cb-469f-a165-70867728950e-", "caller"),
        (
            "/v1/audit?caller=entra:{0f8fad5b-d9cb-469f-a165-70867728950e}",
            "caller",
        ),
        ("/v1/audit?caller=entra:0f8fad5bd9cb469fa16570867728950e", "caller"),
        ("/v1/audit?jobId=0f8fad5bd9cb469fa16570867728950e", "jobId"),
        ("/v1/audit?jobId=urn:uuid:0f8fad5b-d9cb-469f-a165-70867728950e", "jobId"),
        ("/v1/audit?since=2026-01-31%2012:00:00Z", "since"),
        ("/v1/audit?until=2026-01-31", "until"),
        ("/v1/audit?cursor=05", "cursor"),
        ("/v1/audit?cursor=1000000000000000000", "cursor"),
        ("/v1/jobs?cursor=05", "cursor"),
        ("/v1/jobs?cursor=1000000000000000000", "cursor"),
        ("/v1/jobs?cursor=0", "cursor"),
    ] {
        let e = assert_error(app.get(query).await, StatusCode::BAD_REQUEST, "InvalidQueryParameter").await;
        assert_eq!(e["error"]["target"], target, "{query}: {e}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_with_a_job_link_to_reading_and_cancelling_it() {
    let app = app().await;
    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();
    let operation_ids: Vec<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .filter_map(|op| op["operationId"].as_str())
        .collect();
    for (path, expected) in [
        ("/v1/attachments", vec!["cancelJob", "getJob", "getJobEvents"]),
        ("/v1/detachments", vec!["cancelJob", "getJob", "getJobEvents"]),
        ("/v1/kubelet-identities", vec!["cancelJob", "getJob", "getJobEvents"]),
        ("/v1/jobs/{id}/cancel", vec!["getJob", "getJobEvents"]),
    ] {
        for status in ["200", "202"] {
            let links = doc["paths"][path]["post"]["responses"][status]["links"]
                .as_object()
                .unwrap_or_else(|| panic!("{path} {status} has links"));
            assert_eq!(
                links.keys().map(String::as_str).collect::<Vec<_>>(),
                expected,
                "{path} {status}"
            );
            for link in links.values() {
                assert_eq!(link["parameters"], json!({ "id": "$response.body#/id" }), "{link}");
                let target = link["operationId"].as_str().unwrap();
                assert!(operation_ids.contains(&target), "{path}: no operation {target}");
            }
        }
    }
    // Followed as a client would: the id in the body names the job the links lead to.
    let r = app
        .post_json(
            "/v1/attachments",
            &json!({ "cluster": cluster("aks-demo"), "registry": "acrdemo" }),
        )
        .await;
    assert_eq!(r.status(), 202);
    let job: Value = r.json().await.unwrap();
    let id = job["id"].as_str().unwrap();
    assert_eq!(app.get(&format!("/v1/jobs/{id}")).await.status(), 200);
    assert_eq!(app.get(&format!("/v1/jobs/{id}/events")).await.status(), 200);
    let r = app
        .client
        .post(app.url(&format!("/v1/jobs/{id}/cancel")))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    app.stop().await;
}
