//! The service with authentication on: Entra tokens from the simulator's Entra (validated
//! through discovery and JWKS, as against Microsoft Entra ID), API keys, and a policy file.
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::path::PathBuf;

use acr_attach::api::auth::AuthMethod;

use crate::azure_app::*;

/// The demo world's API application and its callers (see demo/world.json).
pub const API_APP: &str = "acc0a77a-0000-4000-8000-000000000001";
pub const PORTAL: &str = "90a7a1a0-0000-4000-8000-000000000001";
pub const PORTAL_OID: &str = "90a7a1a0-0000-4000-8000-0000000000a1";
pub const AUDITOR: &str = "a0d17000-0000-4000-8000-000000000001";
pub const DASHBOARD: &str = "da5b0a4d-0000-4000-8000-000000000001";

/// The policy of these tests: the portal attaches in rg-aks-demo of SUB1 (registries of SUB1,
/// the demo group), the dashboard reads its own jobs, the auditor reads everything and the
/// audit trail, the `ci` API key attaches anything in SUB1.
pub fn test_policy() -> Value {
    json!({ "rules": [
        {
            "name": "portal",
            "callers": { "roles": ["Attachments.ReadWrite"] },
            "actions": ["attach", "detach", "prepareKubeletIdentity", "read", "cancel"],
            "clusters": [format!("/subscriptions/{SUB1}/resourceGroups/rg-aks-demo")],
            "registries": [format!("/subscriptions/{SUB1}")],
            "identities": [format!("/subscriptions/{SUB1}/resourceGroups/rg-aks-demo")],
            "groups": [crate::groups::GROUP]
        },
        { "name": "dashboard", "callers": { "roles": ["Attachments.Read"] }, "actions": ["read"] },
        {
            "name": "auditors",
            "callers": { "roles": ["Audit.Read"] },
            "actions": ["readAudit", "readAllJobs", "read"]
        },
        {
            "name": "ci",
            "callers": { "apiKeys": ["ci"] },
            "actions": ["attach", "detach", "read", "cancel"],
            "clusters": [format!("/subscriptions/{SUB1}")],
            "registries": ["*"]
        }
    ] })
}

pub fn write_policy(policy: &Value) -> PathBuf {
    let path = std::env::temp_dir().join(format!("acr-attach-policy-{}.json", uuid::Uuid::new_v4()));
    std::fs::write(&path, serde_json::to_vec_pretty(policy).unwrap()).unwrap();
    path
}

/// The service on the demo world, Entra and API keys on, with `policy`.
pub async fn secure_app(policy: &Value, adjust: impl FnOnce(&mut acr_attach::config::Config)) -> AzureApp {
    secure_app_in(demo_world(), policy, adjust).await
}

pub async fn secure_app_in(
    world: azure_simulator::World,
    policy: &Value,
    adjust: impl FnOnce(&mut acr_attach::config::Config),
) -> AzureApp {
    let path = write_policy(policy);
    AzureApp::spawn_configured_with_sim(world, |config, sim| {
        config.auth.methods = vec![AuthMethod::Entra, AuthMethod::ApiKeys];
        config.auth.entra_authority = Some(sim.issuer());
        config.auth.entra_audience = vec![API_APP.into(), "api://acr-attach".into()];
        config.auth.policy = Some(path);
        adjust(config);
    })
    .await
}

impl AzureApp {
    /// An access token for acr-attach's API, for a caller of the world (client credentials).
    pub fn token_for(&self, client_id: &str) -> String {
        self.sim
            .access_token(client_id, "api://acr-attach/.default")
            .expect("token")
    }

    pub async fn get_as(&self, credential: &str, path: &str) -> reqwest::Response {
        self.app
            .client
            .get(self.app.url(path))
            .bearer_auth(credential)
            .send()
            .await
            .unwrap()
    }

    pub async fn post_as(&self, credential: &str, path: &str, body: &Value) -> reqwest::Response {
        self.app
            .client
            .post(self.app.url(path))
            .bearer_auth(credential)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn attach_as(&self, credential: &str, cluster: &str, registry: &str) -> reqwest::Response {
        self.post_as(
            credential,
            "/v1/attachments",
            &json!({ "cluster": cluster, "registry": registry }),
        )
        .await
    }
}

/// 401 with a Bearer challenge; returns the challenge.
pub async fn assert_unauthorized(r: reqwest::Response) -> String {
    let challenge = r
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    crate::helpers::assert_error(r, StatusCode::UNAUTHORIZED, "Unauthorized").await;
    assert!(challenge.starts_with("Bearer realm=\"acr-attach\""), "{challenge}");
    challenge
}
