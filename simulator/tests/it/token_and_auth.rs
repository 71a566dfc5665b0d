use base64::Engine;
use reqwest::Method;
use serde_json::Value;

use crate::common::*;

fn claims(token: &str) -> Value {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "JWT has three parts");
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(parts[1])
        .unwrap();
    serde_json::from_slice(&payload).unwrap()
}

#[tokio::test]
async fn token_is_issued_with_entra_shape_and_claims() {
    let env = env().await;
    let r = env
        .token_request(
            TENANT,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", CLIENT),
                ("client_secret", SECRET),
                ("scope", "https://management.azure.com/.default"),
            ],
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["token_type"], "Bearer");
    assert_eq!(r.body["expires_in"], 3600);
    assert_eq!(r.body["ext_expires_in"], 3600);
    let c = claims(r.body["access_token"].as_str().unwrap());
    assert_eq!(c["aud"], "https://management.azure.com");
    assert_eq!(c["tid"], TENANT);
    assert_eq!(c["oid"], CALLER_OID);
    assert_eq!(c["appid"], CLIENT);
    assert_eq!(c["iss"], format!("https://sts.windows.net/{TENANT}/"));
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 3600);
    assert!(c["nbf"].is_i64());
    assert_eq!(env.sim.call_count("Token"), 1);
    assert_eq!(env.sim.calls()[0].client_id.as_deref(), Some(CLIENT));
}

#[tokio::test]
async fn token_errors_follow_entra() {
    let env = env().await;
    let form = |secret: &'static str, scope: &'static str| {
        vec![
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT),
            ("client_secret", secret),
            ("scope", scope),
        ]
    };
    let r = env
        .token_request(TENANT, &form("wrong", "https://management.azure.com/.default"))
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["error"], "invalid_client");
    assert_eq!(r.body["error_codes"][0], 7000215);
    assert!(
        r.body["error_description"]
            .as_str()
            .unwrap()
            .starts_with("AADSTS7000215: Invalid client secret provided.")
    );
    assert!(r.body["trace_id"].is_string() && r.body["correlation_id"].is_string());

    let r = env
        .token_request(
            "99999999-0000-4000-8000-000000000000",
            &form(SECRET, "https://management.azure.com/.default"),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"], "invalid_request");
    assert!(
        r.body["error_description"]
            .as_str()
            .unwrap()
            .starts_with("AADSTS90002:")
    );

    // A resource the tenant does not know: AADSTS500011, as Entra answers.
    let r = env
        .token_request(TENANT, &form(SECRET, "https://vault.azure.net/.default"))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"], "invalid_resource");
    assert_eq!(r.body["error_codes"][0], 500011);
    assert!(
        r.body["error_description"].as_str().unwrap().starts_with(
            "AADSTS500011: The resource principal named https://vault.azure.net was not found in the tenant"
        ),
        "{}",
        r.body["error_description"]
    );
    // Client credentials need `<resource>/.default`; several resources at once are refused.
    let r = env
        .token_request(TENANT, &form(SECRET, "https://management.azure.com/user_impersonation"))
        .await;
    assert_eq!((r.status, r.body["error"].as_str()), (400, Some("invalid_scope")));
    assert_eq!(r.body["error_codes"][0], 1002012);
    let r = env
        .token_request(
            TENANT,
            &form(
                SECRET,
                "https://management.azure.com/.default https://graph.microsoft.com/.default",
            ),
        )
        .await;
    assert_eq!((r.status, r.body["error"].as_str()), (400, Some("invalid_scope")));
    assert_eq!(r.body["error_codes"][0], 70011);

    let r = env
        .token_request(
            TENANT,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "nobody"),
                ("client_secret", "x"),
                ("scope", "https://management.azure.com/.default"),
            ],
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"], "unauthorized_client");
    assert_eq!(r.body["error_codes"][0], 700016);
}

#[tokio::test]
async fn arm_rejects_missing_bad_foreign_and_wrong_audience_tokens() {
    let env = env().await;
    let path = format!(
        "/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.ContainerService/managedClusters/aks-msi?api-version=2026-07-01"
    );

    let r = env.send(Method::GET, &path, None, None).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.code(), "AuthenticationFailed");
    assert_eq!(
        r.message(),
        "Authentication failed. The 'Authorization' header is missing."
    );
    let challenge = r.header("www-authenticate").unwrap();
    assert!(challenge.starts_with("Bearer authorization_uri="), "{challenge}");
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");

    let r = env.send(Method::GET, &path, Some("not.a.jwt"), None).await;
    assert_eq!((r.status, r.code()), (401, "InvalidAuthenticationToken"));

    // A token minted by another simulator run has a different signing key.
    let other = crate::common::env().await;
    let foreign = other.arm_token().await;
    let r = env.send(Method::GET, &path, Some(&foreign), None).await;
    assert_eq!((r.status, r.code()), (401, "InvalidAuthenticationToken"));

    let graph = env.graph_token().await;
    let r = env.send(Method::GET, &path, Some(&graph), None).await;
    assert_eq!((r.status, r.code()), (401, "InvalidAuthenticationTokenAudience"));
    assert!(r.message().contains("https://graph.microsoft.com"), "{}", r.message());

    let ok = env.arm(Method::GET, &path, None).await;
    assert_eq!(ok.status, 200);
}

#[tokio::test]
async fn expired_tokens_get_expired_authentication_token() {
    let env = env_with(|w| w["behaviour"]["tokenLifetimeSeconds"] = 0.into()).await;
    let t = env.arm_token().await;
    let r = env
        .send(
            Method::GET,
            &format!("/subscriptions/{SUB}/providers/Microsoft.ContainerRegistry/registries?api-version=2025-11-01"),
            Some(&t),
            None,
        )
        .await;
    assert_eq!((r.status, r.code()), (401, "ExpiredAuthenticationToken"));
    assert!(
        r.message().starts_with("The access token expiry UTC time"),
        "{}",
        r.message()
    );
}

#[tokio::test]
async fn api_version_is_required_and_checked() {
    let env = env().await;
    let base =
        format!("/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.ContainerRegistry/registries/acrOne");
    let r = env.arm(Method::GET, &base, None).await;
    assert_eq!((r.status, r.code()), (400, "MissingApiVersionParameter"));
    assert_eq!(
        r.message(),
        "The api-version query parameter (?api-version=) is required for all requests."
    );
    let r = env
        .arm(Method::GET, &format!("{base}?api-version=2019-05-01"), None)
        .await;
    assert_eq!((r.status, r.code()), (400, "InvalidApiVersionParameter"));
    assert!(
        r.message().contains("'2019-05-01'") && r.message().contains("2025-11-01"),
        "{}",
        r.message()
    );
    let scope = registry_id("acrOne");
    let r = env
        .arm(
            Method::GET,
            &format!("{scope}/providers/Microsoft.Authorization/roleAssignments?api-version=2025-11-01"),
            None,
        )
        .await;
    assert_eq!(r.code(), "InvalidApiVersionParameter");
    let r = env
        .arm(
            Method::GET,
            &format!("{scope}/providers/Microsoft.Authorization/roleAssignments?api-version=2020-04-01-preview"),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn arm_headers_are_present_and_echoed() {
    let env = env().await;
    let t = env.arm_token().await;
    let r = env
        .http
        .get(env.url(&format!(
            "/subscriptions/{SUB}/providers/Microsoft.ContainerRegistry/registries?api-version=2025-11-01"
        )))
        .bearer_auth(&t)
        .header("x-ms-client-request-id", "client-1")
        .header("x-ms-correlation-request-id", "corr-1")
        .send()
        .await
        .unwrap();
    let h = r.headers();
    assert!(h.contains_key("x-ms-request-id"));
    assert!(h.contains_key("x-ms-routing-request-id"));
    assert_eq!(h["x-ms-correlation-request-id"], "corr-1");
    assert_eq!(h["x-ms-client-request-id"], "client-1");
    assert!(h.contains_key("x-ms-ratelimit-remaining-subscription-reads"));
}

#[tokio::test]
async fn unknown_routes_get_arm_404s() {
    let env = env().await;
    let r = env
        .arm(
            Method::GET,
            &format!("/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Foo/bars/x?api-version=2021-04-01"),
            None,
        )
        .await;
    assert_eq!((r.status, r.code()), (404, "NoRegisteredProviderFound"));
    let r = env.arm(Method::GET, &format!("/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.ContainerRegistry/widgets/x?api-version=2025-11-01"), None).await;
    assert_eq!((r.status, r.code()), (404, "InvalidResourceType"));
}

#[tokio::test]
async fn missing_action_is_403_with_arm_message_even_for_missing_targets() {
    let env = env().await;
    let t = env
        .token_for(READER_CLIENT, "https://management.azure.com/.default")
        .await;
    let cluster = format!(
        "/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.ContainerService/managedClusters/aks-msi"
    );
    let r = env
        .send(
            Method::GET,
            &format!("{cluster}?api-version=2026-07-01"),
            Some(&t),
            None,
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.code(), "AuthorizationFailed");
    assert_eq!(
        r.message(),
        format!(
            "The client '{READER_OID}' with object id '{READER_OID}' does not have authorization or an ABAC condition not fulfilled to perform action 'Microsoft.ContainerService/managedClusters/read' over scope '{cluster}' or the scope is invalid. If access was recently granted, please refresh your credentials."
        )
    );
    // 403 before 404: the caller lacks the action, so the missing cluster is not revealed.
    let r = env
        .send(
            Method::GET,
            &format!("{cluster}-nope?api-version=2026-07-01"),
            Some(&t),
            None,
        )
        .await;
    assert_eq!(r.status, 403);
    // Reads it does have work; writes it lacks do not.
    let acr = registry_id("acrOne");
    let r = env
        .send(Method::GET, &format!("{acr}?api-version=2025-11-01"), Some(&t), None)
        .await;
    assert_eq!(r.status, 200);
    let body = serde_json::json!({ "properties": { "roleDefinitionId": role_id(ACR_PULL), "principalId": KUBELET } });
    let r = env
        .send(Method::PUT, &format!("{acr}/providers/Microsoft.Authorization/roleAssignments/0b0b0b0b-0000-4000-8000-000000000001?api-version=2022-04-01"), Some(&t), Some(body))
        .await;
    assert_eq!(r.status, 403);
    assert!(r.message().contains("'Microsoft.Authorization/roleAssignments/write'"));
    // Outside its subscription it has nothing.
    let r = env
        .send(
            Method::GET,
            &format!("/subscriptions/{SUB2}/providers/Microsoft.ContainerRegistry/registries?api-version=2025-11-01"),
            Some(&t),
            None,
        )
        .await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn permissions_endpoint_returns_the_callers_grants_at_the_scope() {
    let env = env().await;
    let acr = registry_id("acrOne");
    let r = env
        .arm(
            Method::GET,
            &format!("{acr}/providers/Microsoft.Authorization/permissions?api-version=2022-04-01"),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["value"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["value"][0]["actions"][0], "*");
    assert_eq!(r.body["value"][0]["dataActions"], serde_json::json!([]));
    let r = env.arm(Method::GET, &format!("/subscriptions/{SUB}/resourcegroups/{RG}/providers/Microsoft.Authorization/permissions?api-version=2022-04-01"), None).await;
    assert_eq!(r.status, 200);
    let t = env
        .token_for(READER_CLIENT, "https://management.azure.com/.default")
        .await;
    let r = env
        .send(
            Method::GET,
            &format!("{acr}/providers/Microsoft.Authorization/permissions?api-version=2022-04-01"),
            Some(&t),
            None,
        )
        .await;
    assert_eq!(r.body["value"][0]["actions"][0], "*/read");
    assert_eq!(r.body["value"][0]["notActions"][0], "Microsoft.ContainerService/*");
    assert_eq!(env.sim.call_count("Permissions_ListForResource"), 2);
    assert_eq!(env.sim.call_count("Permissions_ListForResourceGroup"), 1);
}
