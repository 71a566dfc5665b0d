//! The Azure client's real HTTP path, end to end: a tiny HTTPS server (the simulator's throwaway
//! PKI) plays the Entra token endpoint, ARM and Graph for a handful of requests, so
//! `ClientSecretCredential` over https trusting the extra CA, bearer and correlation headers,
//! error parsing with `Retry-After`, paging, and token timeouts are tested through the public
//! API. It is not the simulator: each test answers with a small responder function.
//! No database needed.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use acr_attach::azure::*;
use azure_simulator::{Pki, generate_pki};
use uuid::Uuid;

/// A request as the server saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    /// Raw path as sent (percent-encoding preserved).
    path: String,
    /// Raw query as sent.
    query: Option<String>,
    headers: axum::http::HeaderMap,
    body: String,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A canned reply.
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
}

impl Reply {
    fn json(status: u16, body: serde_json::Value) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: body.to_string(),
        }
    }
    fn empty(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: String::new(),
        }
    }
    fn header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }
}

type Responder = Arc<dyn Fn(&Seen) -> Reply + Send + Sync>;

/// A running test server.
struct TestServer {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    fn base(&self) -> String {
        format!("https://{}", self.addr)
    }
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    async fn start(pki: &Pki, responder: Responder) -> TestServer {
        #[derive(Clone)]
        struct St {
            seen: Arc<Mutex<Vec<Seen>>>,
            responder: Responder,
        }
        async fn handle(State(st): State<St>, req: Request) -> Response {
            let (parts, body) = req.into_parts();
            let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
            let seen = Seen {
                method: parts.method.to_string(),
                path: parts.uri.path().to_string(),
                query: parts.uri.query().map(str::to_string),
                headers: parts.headers,
                body: String::from_utf8_lossy(&bytes).into_owned(),
            };
            let reply = (st.responder)(&seen);
            st.seen.lock().unwrap().push(seen);
            let mut b = Response::builder().status(reply.status);
            if !reply.body.is_empty() {
                b = b.header("content-type", "application/json");
            }
            for (k, v) in reply.headers {
                b = b.header(k, v);
            }
            b.body(Body::from(reply.body)).unwrap()
        }

        let seen = Arc::new(Mutex::new(Vec::new()));
        let app = axum::Router::new().fallback(handle).with_state(St {
            seen: seen.clone(),
            responder,
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(pki.server_config.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                let app = app.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let svc = hyper_util::service::TowerToHyperService::new(app);
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), svc)
                        .await;
                });
            }
        });
        TestServer { addr, seen, task }
    }
}

/// Writes the CA certificate to a temporary PEM file (for `--ca-bundle`).
fn write_ca_bundle(pki: &Pki) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("acr-attach-test-ca-{}.pem", Uuid::new_v4()));
    std::fs::write(&path, &pki.ca_pem).unwrap();
    path
}

/// Parses flags only, as `acr-attach serve` would (flags not given fall back to defaults or
/// env as clap does).
fn parse(args: &[&str]) -> AzureConfig {
    #[derive(clap::Parser)]
    struct Only {
        #[command(flatten)]
        azure: AzureConfig,
    }
    <Only as clap::Parser>::try_parse_from(std::iter::once("acr-attach").chain(args.iter().copied()))
        .expect("the flags parse")
        .azure
}

const TENANT: &str = "7e7a0000-0000-4000-8000-000000000001";
const SUB: &str = "00000000-0000-0000-0000-000000000000";
const ARM_AUD: &str = "https://management.test.example";
const GRAPH_AUD: &str = "https://graph.test.example";

/// Custom cloud: ARM, Graph and the authority all on the test server.
fn settings(base: &str, authority: &str, ca: Option<&std::path::Path>, token_timeout: &str) -> AzureSettings {
    let mut args = vec![
        "--azure-cloud",
        "custom",
        "--arm-endpoint",
        base,
        "--arm-audience",
        ARM_AUD,
        "--authority-host",
        authority,
        "--graph-endpoint",
        base,
        "--graph-audience",
        GRAPH_AUD,
        "--azure-credential",
        "client-secret",
        "--azure-tenant-id",
        TENANT,
        "--azure-client-id",
        "11111111-1111-1111-1111-111111111111",
        "--azure-client-secret",
        "s3cret",
        "--token-timeout",
        token_timeout,
        "--arm-request-timeout",
        "10s",
    ];
    let ca_s;
    if let Some(ca) = ca {
        ca_s = ca.to_str().unwrap().to_string();
        args.extend(["--ca-bundle", ca_s.as_str()]);
    }
    parse(&args).resolve().unwrap()
}

/// Answers the token endpoint: ARM-scoped and Graph-scoped tokens differ.
fn token_reply(s: &Seen) -> Option<Reply> {
    if s.method == "POST" && s.path == format!("/{TENANT}/oauth2/v2.0/token") {
        let form: std::collections::HashMap<String, String> =
            url::form_urlencoded::parse(s.body.as_bytes()).into_owned().collect();
        if form.get("client_secret").map(String::as_str) != Some("s3cret")
            || form.get("grant_type").map(String::as_str) != Some("client_credentials")
        {
            return Some(Reply::json(
                401,
                serde_json::json!({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided.", "error_codes": [7000215]}),
            ));
        }
        let token = match form.get("scope").map(String::as_str) {
            Some(s) if s == format!("{ARM_AUD}/.default") => "arm-token-1",
            Some(s) if s == format!("{GRAPH_AUD}/.default") => "graph-token-1",
            other => panic!("unexpected scope {other:?}"),
        };
        return Some(Reply::json(
            200,
            serde_json::json!({"token_type": "Bearer", "expires_in": 3600, "ext_expires_in": 3600, "access_token": token}),
        ));
    }
    None
}

fn registry_path(name: &str) -> String {
    format!("/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/{name}")
}

#[tokio::test]
async fn client_secret_over_https_with_extra_ca_headers_records_and_errors() {
    let pki = generate_pki(&[]).expect("test PKI");
    let responder: Responder = Arc::new(|s: &Seen| {
        if let Some(r) = token_reply(s) {
            return r;
        }
        if s.path == registry_path("myRegistry") {
            assert_eq!(s.header("authorization"), Some("Bearer arm-token-1"));
            return Reply::json(
                200,
                crate::helpers::azure_example("containerregistry/2025-11-01/RegistryGet.json", "200"),
            )
            .header("x-ms-request-id", "req-1")
            .header("x-ms-ratelimit-remaining-subscription-reads", "249");
        }
        if s.path == registry_path("throttled") {
            return Reply::json(
                429,
                serde_json::json!({"error": {"code": "TooManyRequests", "message": "slow down"}}),
            )
            .header("retry-after", "7")
            .header("x-ms-request-id", "req-2");
        }
        if s.path == "/v1.0/servicePrincipals(appId='22222222-2222-2222-2222-222222222222')" {
            assert_eq!(s.header("authorization"), Some("Bearer graph-token-1"));
            return Reply::json(
                200,
                serde_json::json!({"id": "33333333-3333-3333-3333-333333333333", "appId": "22222222-2222-2222-2222-222222222222", "displayName": "aks-sp", "servicePrincipalType": "Application"}),
            );
        }
        Reply::json(
            404,
            serde_json::json!({"error": {"code": "NotImplementedInTest", "message": s.path.clone()}}),
        )
    });
    let server = TestServer::start(&pki, responder).await;
    let ca = write_ca_bundle(&pki);
    let s = settings(&server.base(), &server.base(), Some(&ca), "10s");
    let client = AzureClient::new(&s).unwrap();
    let correlation = Uuid::new_v4();
    let ctx = CallContext::new(correlation);

    let id: RegistryId = registry_path("myRegistry").parse().unwrap();
    let reg = client.get_registry(&ctx, &id).await.unwrap();
    assert_eq!(reg.name, "myRegistry");
    assert_eq!(reg.role_assignment_mode, RoleAssignmentMode::LegacyRegistryPermissions);

    let err = client
        .get_registry(&ctx, &registry_path("throttled").parse().unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.class(), AzureErrorClass::Throttled);
    assert_eq!(err.status, Some(429));
    assert_eq!(err.code.as_deref(), Some("TooManyRequests"));
    assert_eq!(err.retry_after, Some(Duration::from_secs(7)));
    assert_eq!(err.request_id.as_deref(), Some("req-2"));
    assert_eq!(err.correlation_id, Some(correlation));
    assert_eq!(err.operation, "get_registry");

    let sp = client
        .get_service_principal_by_app_id(&ctx, "22222222-2222-2222-2222-222222222222".parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sp.id, "33333333-3333-3333-3333-333333333333");

    // What the server saw: one token per scope (cached), headers on every call.
    let seen = server.seen();
    let tokens: Vec<&Seen> = seen.iter().filter(|s| s.path.ends_with("/oauth2/v2.0/token")).collect();
    assert_eq!(tokens.len(), 2, "one ARM token and one Graph token, then cached");
    let calls: Vec<&Seen> = seen
        .iter()
        .filter(|s| !s.path.ends_with("/oauth2/v2.0/token"))
        .collect();
    assert_eq!(calls.len(), 3);
    let mut client_ids = std::collections::HashSet::new();
    for c in &calls {
        assert_eq!(
            c.header("x-ms-correlation-request-id"),
            Some(correlation.to_string().as_str())
        );
        let cid = c.header("x-ms-client-request-id").unwrap();
        assert!(Uuid::parse_str(cid).is_ok());
        assert!(client_ids.insert(cid.to_string()), "fresh client request id per call");
    }
    assert_eq!(calls[0].query.as_deref(), Some("api-version=2025-11-01"));

    let records = ctx.records();
    assert_eq!(records.len(), 3);
    assert_eq!(records[0].operation, "get_registry");
    assert_eq!(records[0].method, "GET");
    assert_eq!(records[0].path, registry_path("myRegistry"));
    assert_eq!(records[0].status, Some(200));
    assert_eq!(records[0].request_id.as_deref(), Some("req-1"));
    assert_eq!(
        records[0].ratelimit_remaining,
        vec![(
            "x-ms-ratelimit-remaining-subscription-reads".to_string(),
            "249".to_string()
        )]
    );
    assert_eq!(records[1].status, Some(429));
    assert_eq!(records[1].error_code.as_deref(), Some("TooManyRequests"));
    assert_eq!(
        records[2].path,
        "/v1.0/servicePrincipals(appId='22222222-2222-2222-2222-222222222222')"
    );
    std::fs::remove_file(ca).ok();
}

#[tokio::test]
async fn without_the_ca_bundle_the_test_ca_is_not_trusted() {
    let pki = generate_pki(&[]).expect("test PKI");
    let responder: Responder = Arc::new(|s: &Seen| token_reply(s).unwrap_or(Reply::empty(500)));
    let server = TestServer::start(&pki, responder).await;
    let client = AzureClient::new(&settings(&server.base(), &server.base(), None, "5s")).unwrap();
    let ctx = CallContext::new(Uuid::new_v4());
    let err = client
        .get_registry(&ctx, &registry_path("myRegistry").parse().unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Token, "{err}");
    assert!(err.message.contains("UnknownIssuer"), "{err}");
    assert_eq!(err.code.as_deref(), Some(acr_attach::azure::error::TLS_CERTIFICATE));
    assert_eq!(err.class(), AzureErrorClass::Permanent, "retrying won't fix trust");
    assert!(server.seen().is_empty(), "no request got through TLS");
}

#[tokio::test]
async fn wrong_secret_is_a_permanent_token_error() {
    let pki = generate_pki(&[]).expect("test PKI");
    let responder: Responder = Arc::new(|s: &Seen| token_reply(s).unwrap_or(Reply::empty(500)));
    let server = TestServer::start(&pki, responder).await;
    let ca = write_ca_bundle(&pki);
    let mut s = settings(&server.base(), &server.base(), Some(&ca), "5s");
    s.credential = CredentialSettings::ClientSecret {
        tenant_id: TENANT.into(),
        client_id: "c".into(),
        secret: SecretString::from("wrong".to_string()),
    };
    let client = AzureClient::new(&s).unwrap();
    let err = client
        .get_registry(
            &CallContext::new(Uuid::new_v4()),
            &registry_path("myRegistry").parse().unwrap(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Token);
    assert_eq!(err.status, Some(401));
    assert_eq!(err.code.as_deref(), Some("invalid_client"));
    assert_eq!(err.class(), AzureErrorClass::Permanent);
    assert!(!err.to_string().contains("wrong"), "secret must not leak: {err}");
    std::fs::remove_file(ca).ok();
}

#[tokio::test]
async fn dead_authority_fails_within_the_token_timeout() {
    // An authority that accepts TCP connections and never answers.
    let blackhole = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hole = format!("https://{}", blackhole.local_addr().unwrap());
    let keep = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((c, _)) = blackhole.accept().await {
            held.push(c);
        }
    });
    let s = settings("https://127.0.0.1:9", &hole, None, "1500ms");
    let client = AzureClient::new(&s).unwrap();
    let started = Instant::now();
    let err = client
        .get_registry(
            &CallContext::new(Uuid::new_v4()),
            &registry_path("myRegistry").parse().unwrap(),
        )
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert_eq!(err.kind, ErrorKind::Timeout, "{err}");
    assert_eq!(err.class(), AzureErrorClass::Transient);
    assert!(err.message.contains("--token-timeout"), "{err}");
    assert!(elapsed < Duration::from_secs(4), "took {elapsed:?}");
    keep.abort();

    // A refused port fails fast too, as a transient token error.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let refused = format!("https://{}", closed.local_addr().unwrap());
    drop(closed);
    let client = AzureClient::new(&settings("https://127.0.0.1:9", &refused, None, "3s")).unwrap();
    let started = Instant::now();
    let err = client
        .get_registry(
            &CallContext::new(Uuid::new_v4()),
            &registry_path("myRegistry").parse().unwrap(),
        )
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(err.class(), AzureErrorClass::Transient, "{err}");
}

#[tokio::test]
async fn typed_operations_send_the_documented_requests() {
    let pki = generate_pki(&[]).expect("test PKI");
    let principal: Uuid = "25cc773c-7f05-40fc-a104-32d2300754ad".parse().unwrap();
    let group: Uuid = "44444444-4444-4444-4444-444444444444".parse().unwrap();
    let reg = registry_path("myRegistry");
    let ra_name = "05c5a614-a7d6-4502-b150-c2fb455033ff";
    let base_cell: Arc<Mutex<String>> = Arc::new(Mutex::new(String::new()));
    let base_for = base_cell.clone();
    let responder: Responder = Arc::new(move |s: &Seen| {
        if let Some(r) = token_reply(s) {
            return r;
        }
        let base = base_for.lock().unwrap().clone();
        let ra_path = format!(
            "{}/providers/Microsoft.Authorization/roleAssignments/{ra_name}",
            registry_path("myRegistry")
        );
        let ra_body =
            crate::helpers::azure_example("authorization/2022-04-01/RoleAssignments_CreateForResource.json", "201");
        let q = s.query.clone().unwrap_or_default();
        match (s.method.as_str(), s.path.as_str()) {
            ("PUT", p) if p == ra_path => {
                let body: serde_json::Value = serde_json::from_str(&s.body).unwrap();
                assert_eq!(body["properties"]["principalType"], "ServicePrincipal");
                assert_eq!(body["properties"]["description"], "managed by acr-attach");
                if body["properties"]["principalId"] == "ce2ce14e-85d7-4629-bdbc-454d0519d987" {
                    Reply::json(201, ra_body)
                } else {
                    Reply::json(
                        409,
                        serde_json::json!({"error": {"code": "RoleAssignmentExists", "message": "The role assignment already exists. The ID of the existing role assignment is 88bd9d9f6e3c4d6d9bd5ea1b8c5ba98f."}}),
                    )
                }
            }
            ("GET", p) if p == ra_path => Reply::json(
                404,
                serde_json::json!({"error": {"code": "RoleAssignmentNotFound", "message": "not found"}}),
            ),
            ("DELETE", p) if p == ra_path => Reply::empty(204),
            ("GET", p)
                if p == format!(
                    "{}/providers/Microsoft.Authorization/roleAssignments",
                    registry_path("myRegistry")
                ) =>
            {
                if q.contains("skipToken=page2") {
                    Reply::json(200, serde_json::json!({"value": [ra_body]}))
                } else if q.contains("atScope()") {
                    Reply::json(
                        200,
                        serde_json::json!({"value": [], "nextLink": "https://evil.example/x?$skipToken=1"}),
                    )
                } else {
                    assert_eq!(
                        q,
                        format!("api-version=2022-04-01&$filter=principalId%20eq%20%27{principal}%27")
                    );
                    Reply::json(
                        200,
                        serde_json::json!({"value": [ra_body], "nextLink": format!("{base}{p}?api-version=2022-04-01&$skipToken=page2")}),
                    )
                }
            }
            ("GET", p)
                if p == format!(
                    "{}/providers/Microsoft.Authorization/permissions",
                    registry_path("myRegistry")
                ) =>
            {
                Reply::json(
                    200,
                    serde_json::json!({"value": [{"actions": ["*"], "notActions": ["Microsoft.Authorization/*/Write"]}, {"actions": ["Microsoft.Authorization/roleAssignments/*"], "notActions": []}]}),
                )
            }
            ("GET", p)
                if p == format!(
                    "/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/7f951dda-4ed3-4680-a7ca-43fe172d538d"
                ) =>
            {
                Reply::json(
                    200,
                    serde_json::json!({"id": p, "name": "7f951dda-4ed3-4680-a7ca-43fe172d538d", "properties": {"roleName": "AcrPull", "type": "BuiltInRole", "permissions": [{"actions": ["Microsoft.ContainerRegistry/registries/pull/read"]}], "assignableScopes": ["/"]}}),
                )
            }
            ("POST", "/providers/Microsoft.ResourceGraph/resources") => {
                assert_eq!(q, "api-version=2024-04-01");
                let body: serde_json::Value = serde_json::from_str(&s.body).unwrap();
                assert_eq!(
                    body["query"],
                    "resources | where type =~ 'microsoft.containerregistry/registries' and name =~ 'myRegistry' | project id, name, type, subscriptionId, resourceGroup, location, loginServer = tostring(properties.loginServer), roleAssignmentMode = tostring(properties.roleAssignmentMode)"
                );
                assert_eq!(body["subscriptions"], serde_json::json!([SUB]));
                let row = |rg: &str| serde_json::json!({"id": format!("/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.ContainerRegistry/registries/myRegistry"), "name": "myRegistry", "type": "microsoft.containerregistry/registries", "subscriptionId": SUB, "resourceGroup": rg, "location": "westus", "loginServer": "myregistry.azurecr.io", "roleAssignmentMode": ""});
                if body["options"]["$skipToken"] == "t2" {
                    Reply::json(
                        200,
                        serde_json::json!({"totalRecords": 2, "count": 1, "data": [row("rg2")], "facets": [], "resultTruncated": "false"}),
                    )
                } else {
                    Reply::json(
                        200,
                        serde_json::json!({"totalRecords": 2, "count": 1, "data": [row("rg")], "facets": [], "resultTruncated": "false", "$skipToken": "t2"}),
                    )
                }
            }
            ("GET", p) if p == format!("/subscriptions/{SUB}/providers/Microsoft.ContainerRegistry/registries") => {
                Reply::json(
                    200,
                    crate::helpers::azure_example("containerregistry/2025-11-01/RegistryList.json", "200"),
                )
            }
            ("GET", p)
                if p == format!(
                    "/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.ContainerService/managedClusters/clustername1"
                ) =>
            {
                assert_eq!(q, "api-version=2026-07-01");
                Reply::json(
                    200,
                    crate::helpers::azure_example("containerservice/2026-07-01/ManagedClustersGet.json", "200"),
                )
            }
            ("PUT", p)
                if p == format!(
                    "/subscriptions/{SUB}/resourceGroups/rgName/providers/Microsoft.ManagedIdentity/userAssignedIdentities/identityName"
                ) =>
            {
                assert_eq!(q, "api-version=2023-01-31");
                let body: serde_json::Value = serde_json::from_str(&s.body).unwrap();
                assert_eq!(
                    body,
                    serde_json::json!({"location": "eastus", "tags": {"key1": "value1", "key2": "value2"}})
                );
                Reply::json(
                    201,
                    crate::helpers::azure_example("msi/2023-01-31/IdentityCreate.json", "201"),
                )
            }
            ("GET", p)
                if p == format!(
                    "/subscriptions/{SUB}/resourceGroups/rgName/providers/Microsoft.ManagedIdentity/userAssignedIdentities/identityName"
                ) =>
            {
                Reply::json(
                    404,
                    serde_json::json!({"error": {"code": "ResourceNotFound", "message": "gone"}}),
                )
            }
            ("POST", p) if p == format!("/v1.0/groups/{group}/members/$ref") => {
                let body: serde_json::Value = serde_json::from_str(&s.body).unwrap();
                assert_eq!(body["@odata.id"], format!("{base}/v1.0/directoryObjects/{principal}"));
                Reply::json(
                    400,
                    serde_json::json!({"error": {"code": "Request_BadRequest", "message": "One or more added object references already exist for the following modified properties: 'members'."}}),
                )
            }
            ("DELETE", p) if p == format!("/v1.0/groups/{group}/members/{principal}/$ref") => Reply::json(
                404,
                serde_json::json!({"error": {"code": "Request_ResourceNotFound", "message": "nope"}}),
            ),
            ("POST", p) if p == format!("/v1.0/servicePrincipals/{principal}/checkMemberGroups") => {
                let body: serde_json::Value = serde_json::from_str(&s.body).unwrap();
                assert_eq!(body["groupIds"], serde_json::json!([group.to_string()]));
                Reply::json(200, serde_json::json!({"value": [group.to_string()]}))
            }
            ("GET", p) if p == format!("/v1.0/servicePrincipals/{principal}/transitiveMemberOf") => {
                if q.contains("skiptoken") {
                    Reply::json(
                        200,
                        serde_json::json!({"value": [{"@odata.type": "#microsoft.graph.group", "id": "g2"}]}),
                    )
                } else {
                    Reply::json(
                        200,
                        serde_json::json!({"value": [{"@odata.type": "#microsoft.graph.group", "id": "g1", "displayName": "pullers"}], "@odata.nextLink": format!("{base}{p}?$skiptoken=x")}),
                    )
                }
            }
            _ => Reply::json(
                418,
                serde_json::json!({"error": {"code": "UnexpectedInTest", "message": format!("{} {} ?{}", s.method, s.path, q)}}),
            ),
        }
    });
    let server = TestServer::start(&pki, responder).await;
    *base_cell.lock().unwrap() = server.base();
    let ca = write_ca_bundle(&pki);
    let mut s = settings(&server.base(), &server.base(), Some(&ca), "10s");
    s.subscriptions = vec![SUB.parse().unwrap()];
    let client = AzureClient::new(&s).unwrap();
    let ctx = CallContext::new(Uuid::new_v4());
    let reg_id: RegistryId = reg.parse().unwrap();
    let scope = reg_id.as_resource_id();
    let sub: SubscriptionId = SUB.parse().unwrap();

    // role assignments
    let create = |p: &str| RoleAssignmentCreate {
        role_definition_id: role_definition_id(&sub, ACR_PULL),
        principal_id: p.parse().unwrap(),
        principal_type: PrincipalType::ServicePrincipal,
        description: Some("managed by acr-attach".into()),
    };
    let (ra, created) = client
        .put_role_assignment(
            &ctx,
            scope,
            ra_name.parse().unwrap(),
            &create("ce2ce14e-85d7-4629-bdbc-454d0519d987"),
        )
        .await
        .unwrap();
    assert!(created);
    assert_eq!(ra.name, ra_name);
    let err = client
        .put_role_assignment(&ctx, scope, ra_name.parse().unwrap(), &create(&principal.to_string()))
        .await
        .unwrap_err();
    assert_eq!(err.class(), AzureErrorClass::RoleAssignmentExists);
    assert_eq!(
        err.existing_role_assignment().unwrap().to_string(),
        "88bd9d9f-6e3c-4d6d-9bd5-ea1b8c5ba98f"
    );
    let ra_id = RoleAssignmentId::new(scope.clone(), ra_name.parse().unwrap());
    assert_eq!(client.get_role_assignment(&ctx, &ra_id).await.unwrap(), None);
    assert_eq!(
        client.delete_role_assignment(&ctx, &ra_id).await.unwrap(),
        Deleted::AlreadyAbsent
    );
    let list = client
        .list_role_assignments(&ctx, scope, RoleAssignmentFilter::PrincipalId(principal))
        .await
        .unwrap();
    assert_eq!(list.len(), 2, "two pages followed");
    let err = client
        .list_role_assignments(&ctx, scope, RoleAssignmentFilter::AtScope)
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Refused);
    assert!(err.message.contains("https://evil.example"), "{err}");
    assert!(!server.seen().iter().any(|s| s.path == "/x"), "never followed");

    // definitions and permissions
    let def = client
        .get_role_definition(&ctx, &ResourceId::subscription_scope(sub), ACR_PULL)
        .await
        .unwrap();
    assert_eq!(def.role_name, "AcrPull");
    let perms = client.caller_permissions(&ctx, scope).await.unwrap();
    assert!(permits(&perms, "Microsoft.Authorization/roleAssignments/write"));

    // registries and clusters
    let found = client
        .find_registries_by_name(&ctx, &"myRegistry".parse().unwrap(), client.default_subscriptions())
        .await
        .unwrap();
    assert_eq!(found.len(), 2);
    assert_eq!(found[1].resource_group, "rg2");
    assert_eq!(
        found[0].role_assignment_mode,
        RoleAssignmentMode::LegacyRegistryPermissions
    );
    assert_eq!(client.list_registries(&ctx, &sub).await.unwrap().len(), 1);
    let cluster = client
        .get_managed_cluster(&ctx, &format!("/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.ContainerService/managedClusters/clustername1").parse().unwrap())
        .await
        .unwrap();
    assert_eq!(cluster.service_principal_app_id(), Some("clientid"));

    // identities
    let uami: UserAssignedIdentityId = format!("/subscriptions/{SUB}/resourceGroups/rgName/providers/Microsoft.ManagedIdentity/userAssignedIdentities/identityName").parse().unwrap();
    let tags = [
        ("key1".to_string(), "value1".to_string()),
        ("key2".to_string(), "value2".to_string()),
    ]
    .into_iter()
    .collect();
    let ident = client
        .put_user_assigned_identity(&ctx, &uami, "eastus", &tags)
        .await
        .unwrap();
    assert_eq!(ident.principal_id, "25cc773c-7f05-40fc-a104-32d2300754ad");
    let err = client.get_user_assigned_identity(&ctx, &uami).await.unwrap_err();
    assert_eq!(err.class(), AzureErrorClass::NotFound);

    // Graph
    assert_eq!(
        client.add_group_member(&ctx, group, principal).await.unwrap(),
        GroupAdd::AlreadyMember
    );
    assert_eq!(
        client.remove_group_member(&ctx, group, principal).await.unwrap(),
        GroupRemove::NotMember
    );
    assert_eq!(
        client.check_member_groups(&ctx, principal, &[group]).await.unwrap(),
        vec![group]
    );
    let groups = client.transitive_member_of(&ctx, principal).await.unwrap();
    assert_eq!(groups.iter().map(|g| g.id.as_str()).collect::<Vec<_>>(), ["g1", "g2"]);

    assert!(ctx.records().iter().all(|r| r.status.is_some()));
    assert!(
        !ctx.records().iter().any(|r| r.status == Some(418)),
        "every request matched a documented shape: {:?}",
        ctx.records()
    );
    std::fs::remove_file(ca).ok();
}
