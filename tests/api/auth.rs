//! Caller identity: Entra access tokens through the real validation path (discovery, JWKS,
//! RS256, issuer, audience, lifetime), key rotation, API keys made with `acr-attach keys`, and
//! per-caller rate limits.
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::process::Command;
use std::time::Duration;

use crate::azure_app::*;
use crate::secure::*;

fn claims(a: &AzureApp, adjust: impl FnOnce(&mut Value)) -> Value {
    let now = chrono::Utc::now().timestamp();
    let mut c = json!({
        "aud": API_APP,
        "iss": a.sim.issuer(),
        "iat": now - 10,
        "nbf": now - 10,
        "exp": now + 3600,
        "oid": PORTAL_OID,
        "sub": PORTAL_OID,
        "tid": a.sim.tenant_id(),
        "azp": PORTAL,
        "roles": ["Attachments.ReadWrite"],
        "ver": "2.0",
    });
    adjust(&mut c);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entra_tokens_are_validated_like_entra_does() {
    let a = secure_app(&test_policy(), |_| {}).await;

    // No credential: 401 with a Bearer challenge; probes and docs stay open.
    let challenge = assert_unauthorized(a.app.get("/v1/jobs").await).await;
    assert!(!challenge.contains("error="), "{challenge}");
    for open in ["/healthz", "/readyz", "/metrics", "/openapi.json"] {
        assert_eq!(a.app.get(open).await.status(), 200, "{open}");
    }

    // A token from the (simulated) Entra token endpoint: accepted.
    let token = a.token_for(PORTAL);
    assert_eq!(a.get_as(&token, "/v1/jobs").await.status(), 200);
    // A hand-made token with the same claims, signed by the published key: accepted too.
    let minted = a.sim.mint_token(claims(&a, |_| {}));
    assert_eq!(a.get_as(&minted, "/v1/jobs").await.status(), 200);

    let now = chrono::Utc::now().timestamp();
    let refused: Vec<(&str, String)> = vec![
        ("expired", a.sim.mint_token(claims(&a, |c| c["exp"] = json!(now - 600)))),
        (
            "not yet valid",
            a.sim.mint_token(claims(&a, |c| c["nbf"] = json!(now + 600))),
        ),
        (
            "another audience",
            a.sim
                .mint_token(claims(&a, |c| c["aud"] = json!("https://management.azure.com/"))),
        ),
        (
            "another issuer",
            a.sim.mint_token(claims(&a, |c| {
                c["iss"] = json!("https://login.microsoftonline.com/other/v2.0")
            })),
        ),
        ("unknown key", a.sim.mint_token_with_unpublished_key(claims(&a, |_| {}))),
        ("bad signature", {
            let t = a.sim.mint_token(claims(&a, |_| {}));
            let (rest, sig) = t.rsplit_once('.').unwrap();
            let mut raw = URL_SAFE_NO_PAD.decode(sig).unwrap();
            raw[10] ^= 0x55;
            format!("{rest}.{}", URL_SAFE_NO_PAD.encode(raw))
        }),
        ("alg none", {
            let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
            let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(&a, |_| {})).unwrap());
            format!("{header}.{payload}.")
        }),
        ("payload swapped", {
            // The signature of one token over the claims of another (more privileged) one.
            let t = a.sim.mint_token(claims(&a, |_| {}));
            let parts: Vec<&str> = t.split('.').collect();
            let payload = URL_SAFE_NO_PAD
                .encode(serde_json::to_vec(&claims(&a, |c| c["roles"] = json!(["Audit.Read"]))).unwrap());
            format!("{}.{payload}.{}", parts[0], parts[2])
        }),
        ("garbage", "not-a-token".into()),
    ];
    for (what, token) in refused {
        let r = a.get_as(&token, "/v1/jobs").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{what}");
        let challenge = assert_unauthorized(r).await;
        assert!(challenge.contains("error=\"invalid_token\""), "{what}: {challenge}");
    }
    // A token for ARM (not for acr-attach) is refused: wrong audience.
    let arm = a
        .sim
        .access_token(PORTAL, "https://management.azure.com/.default")
        .unwrap();
    assert_unauthorized(a.get_as(&arm, "/v1/jobs").await).await;

    // Key rotation: tokens signed with the new key are accepted (the service fetches the keys
    // again when it meets an unknown kid); after the old key is retired, its tokens are not.
    let before = a.sim.signing_key_id();
    a.sim.rotate_signing_key();
    assert_ne!(a.sim.signing_key_id(), before);
    let rotated = a.token_for(PORTAL);
    assert_eq!(
        a.get_as(&rotated, "/v1/jobs").await.status(),
        200,
        "the new key is picked up"
    );
    // During the overlap Entra publishes both keys: tokens issued before the rotation still work.
    assert_eq!(a.get_as(&token, "/v1/jobs").await.status(), 200);
    let metrics = a.app.get("/metrics").await.text().await.unwrap();
    for reason in ["missing", "invalid"] {
        assert!(
            metrics.contains(&format!(
                "acr_attach_authentication_failures_total{{reason=\"{reason}\"}}"
            )),
            "{reason}"
        );
    }
    a.stop().await;
}

fn keys_command(db_url: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_acr-attach"))
        .arg("keys")
        .args(args)
        .env("DATABASE_URL", db_url)
        .env_remove("RUST_LOG")
        .output()
        .expect("acr-attach keys runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_are_created_shown_once_listed_revoked_and_expire() {
    let a = secure_app(&test_policy(), |_| {}).await;
    let url = a.app.db.url.clone();

    let out = keys_command(&url, &["create", "--name", "ci"]);
    assert!(out.status.success(), "{out:?}");
    let key = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(key.starts_with("acr_") && key.len() > 40, "{key}");
    // Stored only as a digest.
    let stored: Vec<(String, Vec<u8>)> = sqlx::query_as("SELECT name, digest FROM api_key")
        .fetch_all(&a.app.pool)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert!(
        !stored[0]
            .1
            .windows(8)
            .any(|w| key.as_bytes().windows(8).any(|k| k == w))
    );

    // A second key with a live name is refused.
    let dup = keys_command(&url, &["create", "--name", "ci"]);
    assert!(!dup.status.success());
    assert!(String::from_utf8_lossy(&dup.stderr).contains("exists already"));

    // It works, and the caller is the key's name (the policy's `ci` rule).
    assert_eq!(a.get_as(&key, "/v1/jobs").await.status(), 200);
    let job = a.attach_as(&key, &cluster("aks-demo"), &registry("acrdemo")).await;
    assert_eq!(job.status(), StatusCode::ACCEPTED);
    assert_unauthorized(a.get_as("acr_not-a-real-key", "/v1/jobs").await).await;

    let list = keys_command(&url, &["list"]);
    let listed = String::from_utf8(list.stdout).unwrap();
    assert!(listed.contains("ci") && listed.contains("last used 20"), "{listed}");
    assert!(!listed.contains(&key), "list never shows a key");

    let revoked = keys_command(&url, &["revoke", "ci"]);
    assert!(revoked.status.success(), "{revoked:?}");
    let challenge = assert_unauthorized(a.get_as(&key, "/v1/jobs").await).await;
    assert!(challenge.contains("invalid_token"), "{challenge}");
    assert!(
        !keys_command(&url, &["revoke", "ci"]).status.success(),
        "nothing left to revoke"
    );

    // An expiring key stops working when it expires.
    let out = keys_command(&url, &["create", "--name", "ci", "--expires-in", "1s"]);
    let short = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(a.get_as(&short, "/v1/jobs").await.status(), 200);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_unauthorized(a.get_as(&short, "/v1/jobs").await).await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_caller_is_rate_limited_on_its_own() {
    let a = secure_app(&test_policy(), |c| {
        c.api.rate_limit = 0.5;
        c.api.rate_burst = 3;
    })
    .await;
    let portal = a.token_for(PORTAL);
    for _ in 0..3 {
        assert_eq!(a.get_as(&portal, "/v1/jobs").await.status(), 200);
    }
    let r = a.get_as(&portal, "/v1/jobs").await;
    let retry_after: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    crate::helpers::assert_error(r, StatusCode::TOO_MANY_REQUESTS, "TooManyRequests").await;
    // Another caller is not slowed down by the first.
    assert_eq!(a.get_as(&a.token_for(DASHBOARD), "/v1/jobs").await.status(), 200);
    // Probes are never limited.
    for _ in 0..10 {
        assert_eq!(a.app.get("/healthz").await.status(), 200);
    }
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_refuses_to_start_without_a_way_to_authenticate() {
    let db = crate::helpers::TestDb::new().await;
    let mut config = crate::helpers::test_config(&db);
    config.auth.methods = vec![];
    let err = acr_attach::startup::Application::build(config.clone(), |_| acr_attach::queue::Handlers::new())
        .await
        .err()
        .expect("no start without authentication");
    assert!(err.to_string().contains("ACR_ATTACH_POLICY"), "{err}");
    config.auth.policy = Some(write_policy(&test_policy()));
    let err = acr_attach::startup::Application::build(config.clone(), |_| acr_attach::queue::Handlers::new())
        .await
        .err()
        .expect("no start without an Entra authority");
    assert!(
        err.to_string().contains("ACR_ATTACH_ENTRA_AUTHORITY") && err.to_string().contains("--auth none"),
        "{err}"
    );
    // A broken policy names the place.
    config.auth.policy = Some(write_policy(
        &json!({ "rules": [{ "name": "x", "callers": {}, "actions": ["read"] }] }),
    ));
    config.auth.methods = vec![acr_attach::api::auth::AuthMethod::ApiKeys];
    let err = acr_attach::startup::Application::build(config, |_| acr_attach::queue::Handlers::new())
        .await
        .err()
        .expect("no start with an invalid policy");
    assert!(err.to_string().contains("rules[0].callers"), "{err}");
    db.drop_db().await;
}
