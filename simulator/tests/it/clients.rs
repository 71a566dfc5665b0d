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
    let err = h1
        .get(env.url("/nothing"))
        .send()
        .await
        .expect_err("no response");
    assert!(!err.is_status(), "{err:?}");
    assert!(env.sim.calls()[0].dropped);
}
