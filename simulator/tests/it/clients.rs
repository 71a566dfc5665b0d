//! Real client stacks against the simulator: azure_identity's credential (as the service uses
//! it) and HTTP/2 negotiation.

use std::sync::Arc;

use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::{Secret, TokenCredential};
use azure_core::http::{ClientOptions, RetryOptions, Transport};
use azure_identity::{ClientSecretCredential, ClientSecretCredentialOptions};
use reqwest::Method;

use crate::common::*;

fn credential(env: &Env, secret: &str) -> Arc<ClientSecretCredential> {
    let mut cloud = CustomConfiguration::default();
    cloud.authority_host = env.sim.base_url();
    let options = ClientSecretCredentialOptions {
        client_options: ClientOptions {
            cloud: Some(Arc::new(CloudConfiguration::from(cloud))),
            transport: Some(Transport::new(Arc::new(env.http.clone()))),
            retry: RetryOptions::none(),
            ..Default::default()
        },
    };
    ClientSecretCredential::new(
        TENANT,
        CLIENT.to_string(),
        Secret::new(secret.to_string()),
        Some(options),
    )
    .unwrap()
}

#[tokio::test]
async fn azure_identity_client_secret_credential_gets_a_usable_token() {
    let env = env().await;
    let cred = credential(&env, SECRET);
    let token = cred
        .get_token(&["https://management.azure.com/.default"], None)
        .await
        .expect("token");
    assert!(token.expires_on > azure_core::time::OffsetDateTime::now_utc());
    let r = env
        .send(
            Method::GET,
            &format!("{}?api-version=2025-11-01", registry_id("acrOne")),
            Some(token.token.secret()),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    // The credential caches: a second call makes no request.
    cred.get_token(&["https://management.azure.com/.default"], None)
        .await
        .unwrap();
    assert_eq!(env.sim.call_count("Token"), 1);

    let bad = credential(&env, "wrong");
    let err = bad
        .get_token(&["https://management.azure.com/.default"], None)
        .await
        .expect_err("bad secret fails");
    assert!(format!("{err}").contains("AADSTS7000215"), "{err}");
}

#[tokio::test]
async fn http2_is_negotiated_and_http1_still_works() {
    let env = env().await;
    let r = env.http.get(env.url("/nothing")).send().await.unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    let ca = reqwest::Certificate::from_pem(env.sim.ca_pem().as_bytes()).unwrap();
    let h1 = reqwest::Client::builder()
        .tls_certs_merge([ca])
        .http1_only()
        .build()
        .unwrap();
    let r = h1.get(env.url("/nothing")).send().await.unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_11);
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn dropped_connections_fail_over_http1_too() {
    let env = env_with(|w| w["behaviour"]["dropConnectionRate"] = 1.0.into()).await;
    let ca = reqwest::Certificate::from_pem(env.sim.ca_pem().as_bytes()).unwrap();
    let h1 = reqwest::Client::builder()
        .tls_certs_merge([ca])
        .http1_only()
        .build()
        .unwrap();
    let err = h1.get(env.url("/nothing")).send().await.expect_err("no response");
    assert!(!err.is_status(), "{err:?}");
    assert!(env.sim.calls()[0].dropped);
}

#[tokio::test]
async fn standalone_runner_writes_the_ca_and_serves_the_demo_world() {
    let world = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../demo/world.json");
    let dir = std::env::temp_dir().join(format!("azsim-standalone-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_out = dir.join("ca.pem");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let (w, c) = (world.clone(), ca_out.clone());
    let runner = tokio::spawn(async move {
        azure_simulator::run_standalone(&w, azure_simulator::Options::listen(listen), Some(&c)).await
    });
    let mut pem = String::new();
    for _ in 0..100 {
        if let Ok(p) = std::fs::read_to_string(&ca_out)
            && p.contains("END CERTIFICATE")
        {
            pem = p;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "CA written");
    let http = reqwest::Client::builder()
        .tls_certs_merge([reqwest::Certificate::from_pem(pem.as_bytes()).unwrap()])
        .build()
        .unwrap();
    let body = form_body(&[
        ("grant_type", "client_credentials"),
        ("client_id", "a77ac000-0000-4000-8000-000000000001"),
        ("client_secret", "demo-secret-do-not-use-in-production"),
        ("scope", "https://management.azure.com/.default"),
    ]);
    let r = http
        .post(format!(
            "https://localhost:{port}/7e7a0000-0000-4000-8000-000000000001/oauth2/v2.0/token"
        ))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the certificate is valid for localhost too");
    let token: serde_json::Value = r.json().await.unwrap();
    let cluster = format!(
        "https://127.0.0.1:{port}/subscriptions/11111111-1111-4111-8111-111111111111/resourceGroups/rg-aks-demo/providers/Microsoft.ContainerService/managedClusters/aks-demo?api-version=2026-07-01"
    );
    let r = http
        .get(cluster)
        .bearer_auth(token["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    runner.abort();
    let _ = std::fs::remove_dir_all(&dir);
}
