use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;

use crate::common::*;

fn registries() -> String {
    format!("/subscriptions/{SUB}/providers/Microsoft.ContainerRegistry/registries?api-version=2025-11-01")
}

#[tokio::test]
async fn throttling_counts_down_then_429s_per_principal_and_kind() {
    let env = env_with(|w| {
        w["behaviour"]["throttling"] = json!({ "reads": { "bucket": 3, "refillPerSecond": 1 } });
    })
    .await;
    let t = env.arm_token().await;
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let r = env.send(Method::GET, &registries(), Some(&t), None).await;
        assert_eq!(r.status, 200);
        remaining.push(r.header("x-ms-ratelimit-remaining-subscription-reads").unwrap());
    }
    assert_eq!(remaining, ["2", "1", "0"]);
    let r = env.send(Method::GET, &registries(), Some(&t), None).await;
    assert_eq!((r.status, r.code()), (429, "SubscriptionRequestsThrottled"));
    assert_eq!(r.header("retry-after").as_deref(), Some("1"));
    assert_eq!(
        r.header("x-ms-ratelimit-remaining-subscription-reads").as_deref(),
        Some("0")
    );
    // Writes have their own bucket (default 200).
    let r = env
        .put_assignment(
            &registry_id("acrOne"),
            "0c0c0c0c-0000-4000-8000-000000000001",
            ACR_PULL,
            KUBELET,
            None,
        )
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(
        r.header("x-ms-ratelimit-remaining-subscription-writes").as_deref(),
        Some("199")
    );
    // Another principal has its own bucket.
    let other = env
        .token_for(READER_CLIENT, "https://management.azure.com/.default")
        .await;
    assert_eq!(
        env.send(Method::GET, &registries(), Some(&other), None).await.status,
        200
    );
    // The bucket refills.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(env.send(Method::GET, &registries(), Some(&t), None).await.status, 200);
}

async fn statuses(seed: u64) -> Vec<u16> {
    let env = env_with(|w| {
        w["behaviour"]["serverErrorRate"] = 0.5.into();
        w["behaviour"]["faultSeed"] = seed.into();
    })
    .await;
    let t = env.arm_token().await;
    let mut out = Vec::new();
    for _ in 0..40 {
        let r = env.send(Method::GET, &registries(), Some(&t), None).await;
        if r.status == 500 {
            assert_eq!(r.code(), "InternalServerError");
            assert!(r.message().starts_with("Encountered internal server error."));
            assert!(r.header("x-ms-request-id").is_some());
        }
        out.push(r.status);
    }
    out
}

#[tokio::test]
async fn server_errors_are_injected_deterministically() {
    let a = statuses(42).await;
    let b = statuses(42).await;
    assert_eq!(a, b, "same seed, same faults");
    let errors = a.iter().filter(|s| **s == 500).count();
    assert!((8..=32).contains(&errors), "about half fail: {errors}");
    assert!(a.iter().all(|s| *s == 200 || *s == 500));
    assert_ne!(statuses(7).await, a, "another seed, other faults");
}

#[tokio::test]
async fn dropped_connections_get_no_response_and_knobs_change_at_run_time() {
    let env = env_with(|w| w["behaviour"]["dropConnectionRate"] = 1.0.into()).await;
    let err = env
        .http
        .post(env.url(&format!("/{TENANT}/oauth2/v2.0/token")))
        .body(form_body(&[("grant_type", "client_credentials")]))
        .send()
        .await
        .expect_err("connection is dropped");
    assert!(!err.is_status(), "{err:?}");
    let calls = env.sim.calls();
    assert_eq!(calls.len(), 1);
    assert!(calls[0].dropped);
    assert_eq!(calls[0].operation, "Token");

    env.sim.update_world(|w| w.behaviour.drop_connection_rate = 0.0);
    env.sim.clear_calls();
    let t = env.arm_token().await;
    assert!(!t.is_empty());
    assert_eq!(env.sim.calls().len(), 1);
}

#[tokio::test]
async fn latency_is_added_to_every_response() {
    let env = env_with(|w| w["behaviour"]["latencyMs"] = 150.into()).await;
    let started = Instant::now();
    env.arm_token().await;
    assert!(started.elapsed() >= Duration::from_millis(150));
}

#[tokio::test]
async fn calls_record_operation_status_and_client() {
    let env = env().await;
    env.arm(
        Method::GET,
        &format!("{}?api-version=2025-11-01", registry_id("acrOne")),
        None,
    )
    .await;
    env.arm(
        Method::GET,
        &format!("{}?api-version=2025-11-01", registry_id("acrNone")),
        None,
    )
    .await;
    let calls: Vec<_> = env.sim.calls().into_iter().filter(|c| c.operation != "Token").collect();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].operation, "Registries_Get");
    assert_eq!(calls[0].method, "GET");
    assert_eq!(calls[0].path, registry_id("acrOne"));
    assert_eq!(calls[0].status, 200);
    assert_eq!(calls[1].status, 404);
    assert_eq!(calls[0].client_id.as_deref(), Some(CLIENT));
    assert_eq!(env.sim.call_count("Registries_Get"), 2);
    env.sim.clear_calls();
    assert!(env.sim.calls().is_empty());
}

#[tokio::test]
async fn runtime_world_updates_change_resources() {
    let env = env().await;
    let path = format!("{}?api-version=2025-11-01", registry_id("acrLater"));
    assert_eq!(env.arm(Method::GET, &path, None).await.status, 404);
    env.sim.update_world(|w| {
        let rg = w.resource_group_mut(SUB, RG).unwrap();
        rg.registries
            .push(serde_json::from_value(json!({ "name": "acrLater" })).unwrap());
    });
    let r = env.arm(Method::GET, &path, None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["properties"]["loginServer"], "acrlater.azurecr.io");
}
