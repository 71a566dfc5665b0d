//! Entra as an API's authority: OpenID discovery, the JWKS, RS256 access tokens for the world's
//! `applications` with app roles, key rotation, and Graph's app role assignments. Tokens are
//! checked with `jsonwebtoken`, exactly as a third-party validator checks Entra's.

use std::sync::Arc;

use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::{Secret, TokenCredential};
use azure_core::http::{ClientOptions, RetryOptions, Transport};
use azure_identity::{ClientSecretCredential, ClientSecretCredentialOptions};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::*;

pub const APP_ID: &str = "acc0a77a-0000-4000-8000-000000000001";
pub const APP_SP: &str = "acc0a77a-0000-4000-8000-0000000000a1";
pub const APP_URI: &str = "api://acr-attach";
pub const V1_APP_ID: &str = "acc0a77a-0000-4000-8000-000000000002";
pub const V1_APP_SP: &str = "acc0a77a-0000-4000-8000-0000000000a2";
pub const V1_APP_URI: &str = "api://acr-attach-v1";
pub const ROLE_RW: &str = "acc0a77a-1000-4000-8000-000000000001";
pub const ROLE_READ: &str = "acc0a77a-1000-4000-8000-000000000002";
pub const ROLE_JOBS: &str = "acc0a77a-1000-4000-8000-000000000003";
pub const ROLE_AUDIT: &str = "acc0a77a-1000-4000-8000-000000000004";
pub const CALLERS_GROUP: &str = "f0000000-0000-4000-8000-0000000000f9";
pub const DIRECTORY_READER: &str = "d1000000-0000-4000-8000-00000000000d";
pub const DIRECTORY_READER_OID: &str = "d1000000-0000-4000-8000-0000000000d1";

fn roles() -> Value {
    json!([
        { "id": ROLE_RW, "value": "Attachments.ReadWrite", "displayName": "Attach and detach", "allowedMemberTypes": ["Application"] },
        { "id": ROLE_READ, "value": "Attachments.Read", "allowedMemberTypes": ["Application", "User"] },
        { "id": ROLE_JOBS, "value": "Jobs.ReadAll" },
        { "id": ROLE_AUDIT, "value": "Audit.Read", "allowedMemberTypes": ["User"] }
    ])
}

/// The base tenant plus two API applications (v2.0 and v1.0 tokens), a group holding a role,
/// and a caller with Graph `Directory.Read.All`.
pub fn with_apps(w: &mut Value) {
    w["applications"] = json!([
        {
            "appId": APP_ID, "displayName": "acr-attach", "servicePrincipalObjectId": APP_SP,
            "identifierUris": [APP_URI],
            "appRoles": roles(),
            "appRoleAssignments": [
                { "principalId": CALLER_OID, "appRoleId": ROLE_RW },
                { "principalId": CALLER_OID, "appRoleValue": "Jobs.ReadAll" },
                { "principalId": CALLERS_GROUP, "appRoleValue": "Audit.Read" },
                { "principalId": CALLERS_GROUP, "appRoleValue": "Attachments.Read" }
            ]
        },
        {
            "appId": V1_APP_ID, "displayName": "acr-attach-v1", "servicePrincipalObjectId": V1_APP_SP,
            "identifierUris": [V1_APP_URI], "requestedAccessTokenVersion": 1,
            "appRoles": roles(),
            "appRoleAssignments": [ { "principalId": CALLER_OID, "appRoleValue": "Attachments.Read" } ]
        }
    ]);
    w["directory"].as_array_mut().unwrap().push(json!(
        { "objectId": CALLERS_GROUP, "type": "Group", "displayName": "acr-attach-callers", "members": [CALLER_OID, READER_OID] }
    ));
    w["callers"].as_array_mut().unwrap().push(json!(
        { "clientId": DIRECTORY_READER, "clientSecret": SECRET, "objectId": DIRECTORY_READER_OID,
          "displayName": "directory-reader", "graphPermissions": ["Directory.Read.All"] }
    ));
}

async fn apps_env() -> Env {
    env_with(with_apps).await
}

fn payload(token: &str) -> Value {
    let p = token.split('.').nth(1).expect("JWT payload");
    use base64::Engine;
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap()
}

impl Env {
    async fn get_json(&self, url: &str) -> Resp {
        self.send(Method::GET, url, None, None).await
    }

    /// What a validator does at start-up: discovery, then the JWKS it names.
    async fn jwks(&self) -> JwkSet {
        let config = self.get_json(&self.sim.openid_configuration_url()).await;
        assert_eq!(config.status, 200, "{:?}", config.body);
        let keys = self.get_json(config.body["jwks_uri"].as_str().unwrap()).await;
        assert_eq!(keys.status, 200, "{:?}", keys.body);
        serde_json::from_value(keys.body).expect("the JWKS parses as jsonwebtoken's JwkSet")
    }

    /// Validates like a third-party validator: the key named by `kid` from the JWKS, RS256 only,
    /// issuer, audience, `exp` and `nbf`.
    async fn validate(&self, token: &str, issuer: &str, audience: &str) -> Result<Value, ErrorKind> {
        let _ = jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.install_default();
        let header = jsonwebtoken::decode_header(token).map_err(|e| e.into_kind())?;
        assert_eq!(header.alg, Algorithm::RS256);
        assert_eq!(header.typ.as_deref(), Some("JWT"));
        let kid = header.kid.expect("kid");
        let jwks = self.jwks().await;
        let Some(jwk) = jwks.find(&kid) else {
            return Err(ErrorKind::InvalidKeyFormat);
        };
        assert_eq!(header.x5t.as_deref(), jwk.common.x509_sha1_fingerprint.as_deref());
        let key = DecodingKey::from_jwk(jwk).expect("usable JWK");
        let mut v = Validation::new(Algorithm::RS256);
        v.set_issuer(&[issuer]);
        v.set_audience(&[audience]);
        v.validate_nbf = true;
        v.set_required_spec_claims(&["exp", "nbf", "iss", "aud"]);
        jsonwebtoken::decode::<Value>(token, &key, &v)
            .map(|d| d.claims)
            .map_err(|e| e.into_kind())
    }

    async fn token_as(&self, client: &str, scope: &str) -> Resp {
        self.token_request(
            TENANT,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", client),
                ("client_secret", SECRET),
                ("scope", scope),
            ],
        )
        .await
    }
}

#[tokio::test]
async fn discovery_documents_and_jwks_follow_entra() {
    let env = apps_env().await;
    let base = env.sim.base_url();
    assert_eq!(env.sim.issuer(), format!("{base}/{TENANT}/v2.0"));
    assert_eq!(
        env.sim.openid_configuration_url(),
        format!("{base}/{TENANT}/v2.0/.well-known/openid-configuration")
    );
    assert_eq!(env.sim.jwks_uri(), format!("{base}/{TENANT}/discovery/v2.0/keys"));

    let r = env.get_json(&env.sim.openid_configuration_url()).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("cache-control").as_deref(), Some("max-age=86400, private"));
    let c = &r.body;
    assert_eq!(c["issuer"], env.sim.issuer());
    assert_eq!(c["jwks_uri"], env.sim.jwks_uri());
    assert_eq!(c["token_endpoint"], format!("{base}/{TENANT}/oauth2/v2.0/token"));
    assert_eq!(
        c["authorization_endpoint"],
        format!("{base}/{TENANT}/oauth2/v2.0/authorize")
    );
    assert_eq!(c["id_token_signing_alg_values_supported"], json!(["RS256"]));
    assert_eq!(c["subject_types_supported"], json!(["pairwise"]));
    assert_eq!(c["cloud_instance_name"], "microsoftonline.com");
    for field in [
        "response_types_supported",
        "response_modes_supported",
        "scopes_supported",
        "token_endpoint_auth_methods_supported",
        "claims_supported",
    ] {
        assert!(c[field].as_array().is_some_and(|a| !a.is_empty()), "{field}");
    }
    assert!(c["tenant_region_scope"].is_string());

    // The v1.0 document (MSAL and older validators read it too).
    let v1 = env
        .get_json(&format!("/{TENANT}/.well-known/openid-configuration"))
        .await;
    assert_eq!(v1.status, 200);
    assert_eq!(v1.body["issuer"], format!("{base}/{TENANT}/"));
    assert_eq!(v1.body["issuer"], env.sim.issuer_v1());
    assert_eq!(v1.body["jwks_uri"], format!("{base}/{TENANT}/discovery/keys"));
    assert_eq!(v1.body["token_endpoint"], format!("{base}/{TENANT}/oauth2/token"));

    // The JWKS: one RSA signing key, named like Entra's (kid = x5t), with its certificate.
    let keys = env.get_json(&env.sim.jwks_uri()).await;
    assert_eq!(keys.status, 200);
    let k = &keys.body["keys"][0];
    assert_eq!(keys.body["keys"].as_array().unwrap().len(), 1);
    assert_eq!((k["kty"].as_str(), k["use"].as_str()), (Some("RSA"), Some("sig")));
    assert_eq!(k["e"], "AQAB");
    assert_eq!(k["kid"], env.sim.signing_key_id());
    assert_eq!(k["x5t"], k["kid"]);
    assert_eq!(k["issuer"], env.sim.issuer());
    assert!(k["n"].as_str().unwrap().len() >= 342, "a 2048-bit modulus");
    assert!(k["x5c"][0].as_str().unwrap().starts_with("MII"));
    let v1_keys = env.get_json(&format!("/{TENANT}/discovery/keys")).await;
    assert_eq!(v1_keys.body["keys"][0]["kid"], k["kid"]);
    assert!(v1_keys.body["keys"][0].get("issuer").is_none());

    // Unknown tenant: AADSTS90002.
    let other = "99999999-0000-4000-8000-000000000000";
    for path in [
        format!("/{other}/v2.0/.well-known/openid-configuration"),
        format!("/{other}/discovery/v2.0/keys"),
    ] {
        let r = env.get_json(&path).await;
        assert_eq!(r.status, 400, "{path}");
        assert_eq!(r.body["error"], "invalid_tenant");
        assert_eq!(r.body["error_codes"][0], 90002);
        assert!(
            r.body["error_description"]
                .as_str()
                .unwrap()
                .starts_with(&format!("AADSTS90002: Tenant '{other}' not found."))
        );
    }
    assert_eq!(env.sim.call_count("OpenIdConfiguration"), 3);
    assert_eq!(env.sim.call_count("Jwks"), 3);
}

#[tokio::test]
async fn v2_api_tokens_carry_direct_app_roles_and_validate_against_the_jwks() {
    let env = apps_env().await;
    let r = env.token_as(CLIENT, &format!("{APP_URI}/.default")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["token_type"], "Bearer");
    let token = r.body["access_token"].as_str().unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.kid.as_deref(), Some(env.sim.signing_key_id().as_str()));

    let c = env
        .validate(token, &env.sim.issuer(), APP_ID)
        .await
        .expect("a third-party validator accepts the token");
    assert_eq!(c["aud"], APP_ID);
    assert_eq!(c["iss"], format!("{}/{TENANT}/v2.0", env.sim.base_url()));
    assert_eq!(c["azp"], CLIENT);
    assert_eq!(c["azpacr"], "1");
    assert_eq!(c["oid"], CALLER_OID);
    assert_eq!(c["sub"], CALLER_OID);
    assert_eq!(c["tid"], TENANT);
    assert_eq!(c["ver"], "2.0");
    assert_eq!(c["idtyp"], "app");
    assert!(c["uti"].is_string());
    assert!(c.get("appid").is_none() && c.get("scp").is_none());
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 3600);
    // Direct assignments only: the group's Audit.Read and Attachments.Read are not in an
    // app-only token, as with Entra.
    assert_eq!(c["roles"], json!(["Attachments.ReadWrite", "Jobs.ReadAll"]));

    // The application id works as the resource too; the audience is the same.
    let r = env.token_as(CLIENT, &format!("{APP_ID}/.default")).await;
    let by_id = env
        .validate(r.body["access_token"].as_str().unwrap(), &env.sim.issuer(), APP_ID)
        .await
        .unwrap();
    assert_eq!(by_id["roles"], c["roles"]);

    // A caller holding no role directly gets a token without `roles` (the API must refuse it).
    let r = env.token_as(READER_CLIENT, &format!("{APP_URI}/.default")).await;
    assert_eq!(r.status, 200);
    let c = env
        .validate(r.body["access_token"].as_str().unwrap(), &env.sim.issuer(), APP_ID)
        .await
        .unwrap();
    assert_eq!(c["oid"], READER_OID);
    assert!(c.get("roles").is_none(), "{c}");

    // Wrong audience or issuer expectations fail, as they must.
    assert_eq!(
        env.validate(token, &env.sim.issuer(), APP_URI).await.unwrap_err(),
        ErrorKind::InvalidAudience
    );
    assert_eq!(
        env.validate(token, &env.sim.issuer_v1(), APP_ID).await.unwrap_err(),
        ErrorKind::InvalidIssuer
    );
    // An API token is not an ARM token.
    let arm = env
        .send(
            Method::GET,
            &format!("{}?api-version=2025-11-01", registry_id("acrOne")),
            Some(token),
            None,
        )
        .await;
    assert_eq!((arm.status, arm.code()), (401, "InvalidAuthenticationTokenAudience"));
}

#[tokio::test]
async fn v1_api_tokens_have_the_v1_shape() {
    let env = apps_env().await;
    let r = env.token_as(CLIENT, &format!("{V1_APP_URI}/.default")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let token = r.body["access_token"].as_str().unwrap();
    let c = env
        .validate(token, &env.sim.issuer_v1(), V1_APP_URI)
        .await
        .expect("valid v1.0 token");
    assert_eq!(c["aud"], V1_APP_URI);
    assert_eq!(c["iss"], format!("{}/{TENANT}/", env.sim.base_url()));
    assert_eq!(c["idp"], c["iss"]);
    assert_eq!(c["appid"], CLIENT);
    assert_eq!(c["appidacr"], "1");
    assert_eq!(c["ver"], "1.0");
    assert_eq!(c["idtyp"], "app");
    assert_eq!(c["oid"], CALLER_OID);
    assert_eq!(c["roles"], json!(["Attachments.Read"]));
    assert!(c.get("azp").is_none());
    // Requested by application id, a v1.0 token's audience is the id.
    let r = env.token_as(CLIENT, &format!("{V1_APP_ID}/.default")).await;
    assert_eq!(payload(r.body["access_token"].as_str().unwrap())["aud"], V1_APP_ID);
    // ARM and Graph tokens keep the real v1.0 issuer and are RS256 with a published kid too.
    let arm = env.arm_token().await;
    assert_eq!(payload(&arm)["iss"], format!("https://sts.windows.net/{TENANT}/"));
    let c = env
        .validate(
            &arm,
            &format!("https://sts.windows.net/{TENANT}/"),
            "https://management.azure.com",
        )
        .await
        .unwrap();
    assert_eq!(c["appid"], CLIENT);
}

#[tokio::test]
async fn unknown_resources_and_missing_assignments_get_entra_errors() {
    let env = env_with(|w| {
        with_apps(w);
        w["applications"][1]["appRoleAssignmentRequired"] = json!(true);
    })
    .await;
    let r = env.token_as(CLIENT, "api://nope/.default").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"], "invalid_resource");
    assert_eq!(r.body["error_codes"][0], 500011);
    let d = r.body["error_description"].as_str().unwrap();
    assert!(
        d.starts_with(&format!(
            "AADSTS500011: The resource principal named api://nope was not found in the tenant named {TENANT}."
        )),
        "{d}"
    );
    let r = env.token_as(CLIENT, APP_URI).await;
    assert_eq!((r.status, r.body["error_codes"][0].as_u64()), (400, Some(1002012)));

    // Assignment required and none held: AADSTS501051.
    let r = env.token_as(READER_CLIENT, &format!("{V1_APP_URI}/.default")).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"], "invalid_grant");
    assert_eq!(r.body["error_codes"][0], 501051);
    assert!(
        r.body["error_description"].as_str().unwrap().starts_with(&format!(
            "AADSTS501051: Application '{READER_CLIENT}'(reader) is not assigned to a role for the application '{V1_APP_ID}'(acr-attach-v1)."
        )),
        "{}",
        r.body["error_description"]
    );
    assert!(env.token_as(CLIENT, &format!("{V1_APP_URI}/.default")).await.status == 200);

    // The same through the Rust API.
    let t = env.sim.access_token(CLIENT, &format!("{APP_URI}/.default")).unwrap();
    assert_eq!(payload(&t)["roles"], json!(["Attachments.ReadWrite", "Jobs.ReadAll"]));
    let e = env.sim.access_token(CLIENT, "api://nope/.default").unwrap_err();
    assert!(format!("{e}").contains("AADSTS500011"), "{e}");
    assert!(env.sim.access_token("nobody", "api://nope/.default").is_err());
}

#[tokio::test]
async fn crafted_tokens_fail_validation_for_their_claims() {
    let env = apps_env().await;
    let now = chrono::Utc::now().timestamp();
    let iss = env.sim.issuer();
    let good = json!({ "aud": APP_ID, "iss": iss, "iat": now, "nbf": now, "exp": now + 600,
                       "azp": CLIENT, "oid": CALLER_OID, "sub": CALLER_OID, "tid": TENANT, "ver": "2.0",
                       "roles": ["Attachments.ReadWrite"] });
    let with = |k: &str, v: Value| {
        let mut c = good.clone();
        c[k] = v;
        c
    };
    let t = env.sim.mint_token(good.clone());
    assert_eq!(
        env.validate(&t, &iss, APP_ID).await.unwrap()["roles"][0],
        "Attachments.ReadWrite"
    );
    let cases = [
        (with("exp", json!(now - 3600)), ErrorKind::ExpiredSignature),
        (with("nbf", json!(now + 3600)), ErrorKind::ImmatureSignature),
        (with("aud", json!("api://someone-else")), ErrorKind::InvalidAudience),
        (
            with("iss", json!("https://login.microsoftonline.com/x/v2.0")),
            ErrorKind::InvalidIssuer,
        ),
    ];
    for (claims, expected) in cases {
        let t = env.sim.mint_token(claims.clone());
        assert_eq!(env.validate(&t, &iss, APP_ID).await.unwrap_err(), expected, "{claims}");
    }

    // Signed by a key that is not published: its kid is not in the JWKS, and the signature
    // does not verify with the published key either.
    let forged = env.sim.mint_token_with_unpublished_key(good.clone());
    let kid = jsonwebtoken::decode_header(&forged).unwrap().kid.unwrap();
    assert_ne!(kid, env.sim.signing_key_id());
    assert_eq!(
        env.validate(&forged, &iss, APP_ID).await.unwrap_err(),
        ErrorKind::InvalidKeyFormat,
        "kid not found"
    );
    let jwks = env.jwks().await;
    let key = DecodingKey::from_jwk(&jwks.keys[0]).unwrap();
    let mut v = Validation::new(Algorithm::RS256);
    v.set_audience(&[APP_ID]);
    let err = jsonwebtoken::decode::<Value>(&forged, &key, &v).unwrap_err();
    assert_eq!(err.into_kind(), ErrorKind::InvalidSignature);
    assert_eq!(
        jsonwebtoken::decode_header(env.sim.mint_token_with_unpublished_key(good))
            .unwrap()
            .kid
            .unwrap(),
        kid
    );
}

#[tokio::test]
async fn arm_and_graph_refuse_unpublished_keys_and_other_algorithms() {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let env = apps_env().await;
    let path = format!("{}?api-version=2025-11-01", registry_id("acrOne"));
    let arm = env.arm_token().await;
    let claims = payload(&arm);
    let forged = env.sim.mint_token_with_unpublished_key(claims.clone());
    let kid = env.sim.signing_key_id();
    let body = arm.split('.').nth(1).unwrap();
    let none = format!("{}.{body}.", b64(r#"{"typ":"JWT","alg":"none"}"#));
    let hs256 = format!(
        "{}.{body}.{}",
        b64(&format!(r#"{{"typ":"JWT","alg":"HS256","kid":"{kid}"}}"#)),
        arm.split('.').nth(2).unwrap()
    );
    for bad in [&forged, &none, &hs256] {
        let r = env.send(Method::GET, &path, Some(bad), None).await;
        assert_eq!((r.status, r.code()), (401, "InvalidAuthenticationToken"));
    }
    // The same claims signed with the published key are fine.
    let ok = env
        .send(Method::GET, &path, Some(&env.sim.mint_token(claims)), None)
        .await;
    assert_eq!(ok.status, 200, "{:?}", ok.body);
    let graph = env.graph_token().await;
    let forged = env.sim.mint_token_with_unpublished_key(payload(&graph));
    let r = env
        .send(
            Method::GET,
            &format!("/v1.0/servicePrincipals/{KUBELET}"),
            Some(&forged),
            None,
        )
        .await;
    assert_eq!((r.status, r.code()), (401, "InvalidAuthenticationToken"));
}

#[tokio::test]
async fn rotation_publishes_old_and_new_keys_until_the_old_are_retired() {
    let env = apps_env().await;
    let scope = format!("{APP_URI}/.default");
    let old_kid = env.sim.signing_key_id();
    let old_api = env.token_as(CLIENT, &scope).await.body["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let old_arm = env.arm_token().await;

    env.sim.rotate_signing_key();
    let new_kid = env.sim.signing_key_id();
    assert_ne!(new_kid, old_kid);
    let kids: Vec<String> = env
        .jwks()
        .await
        .keys
        .iter()
        .filter_map(|k| k.common.key_id.clone())
        .collect();
    assert_eq!(kids, vec![new_kid.clone(), old_kid.clone()]);
    let new_api = env.token_as(CLIENT, &scope).await.body["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        jsonwebtoken::decode_header(&new_api).unwrap().kid,
        Some(new_kid.clone())
    );
    assert_eq!(
        jsonwebtoken::decode_header(env.sim.mint_token(json!({}))).unwrap().kid,
        Some(new_kid.clone())
    );
    // Both validate while both are published; ARM still takes the old token.
    let iss = env.sim.issuer();
    assert!(env.validate(&old_api, &iss, APP_ID).await.is_ok());
    assert!(env.validate(&new_api, &iss, APP_ID).await.is_ok());
    let path = format!("{}?api-version=2025-11-01", registry_id("acrOne"));
    assert_eq!(env.send(Method::GET, &path, Some(&old_arm), None).await.status, 200);

    env.sim.retire_previous_keys();
    let kids: Vec<String> = env
        .jwks()
        .await
        .keys
        .iter()
        .filter_map(|k| k.common.key_id.clone())
        .collect();
    assert_eq!(kids, vec![new_kid]);
    assert_eq!(
        env.validate(&old_api, &iss, APP_ID).await.unwrap_err(),
        ErrorKind::InvalidKeyFormat
    );
    assert!(env.validate(&new_api, &iss, APP_ID).await.is_ok());
    let r = env.send(Method::GET, &path, Some(&old_arm), None).await;
    assert_eq!((r.status, r.code()), (401, "InvalidAuthenticationToken"));
    assert_eq!(env.arm(Method::GET, &path, None).await.status, 200);
}

#[tokio::test]
async fn azure_identity_gets_api_tokens() {
    let env = apps_env().await;
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
    let cred = ClientSecretCredential::new(
        TENANT,
        CLIENT.to_string(),
        Secret::new(SECRET.to_string()),
        Some(options),
    )
    .unwrap();
    let token = cred.get_token(&["api://acr-attach/.default"], None).await.unwrap();
    let c = env
        .validate(token.token.secret(), &env.sim.issuer(), APP_ID)
        .await
        .unwrap();
    assert_eq!(c["roles"][0], "Attachments.ReadWrite");
    let err = cred.get_token(&["api://nope/.default"], None).await.unwrap_err();
    assert!(format!("{err}").contains("AADSTS500011"), "{err}");
}

#[tokio::test]
async fn graph_lists_app_role_assignments_of_service_principals_and_groups() {
    let env = env_with(|w| {
        with_apps(w);
        w["behaviour"]["pageSize"] = json!(1);
    })
    .await;
    let t = env
        .token_for(DIRECTORY_READER, "https://graph.microsoft.com/.default")
        .await;
    let r = env
        .send(
            Method::GET,
            &format!("/v1.0/servicePrincipals/{CALLER_OID}/appRoleAssignments"),
            Some(&t),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        r.body["@odata.context"],
        format!("https://graph.microsoft.com/v1.0/$metadata#servicePrincipals('{CALLER_OID}')/appRoleAssignments")
    );
    // Page size 1: three assignments (two in the v2 app, one in the v1 app) over three pages.
    let mut all = r.body["value"].as_array().unwrap().clone();
    let mut next = r.body["@odata.nextLink"].as_str().map(str::to_string);
    while let Some(link) = next {
        assert!(link.starts_with(&env.sim.base_url()), "{link}");
        let r = env.send(Method::GET, &link, Some(&t), None).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        all.extend(r.body["value"].as_array().unwrap().iter().cloned());
        next = r.body["@odata.nextLink"].as_str().map(str::to_string);
    }
    assert_eq!(all.len(), 3);
    let a = &all[0];
    assert_eq!(a["appRoleId"], ROLE_RW);
    assert_eq!(a["principalId"], CALLER_OID);
    assert_eq!(a["principalType"], "ServicePrincipal");
    assert_eq!(a["principalDisplayName"], "acr-attach");
    assert_eq!(a["resourceId"], APP_SP);
    assert_eq!(a["resourceDisplayName"], "acr-attach");
    assert!(a["createdDateTime"].as_str().unwrap().ends_with('Z'));
    assert!(a["deletedDateTime"].is_null());
    let id = a["id"].as_str().unwrap();
    assert_eq!(id.len(), 43, "{id}");
    assert!(all.iter().skip(1).all(|x| x["id"] != a["id"]));
    assert_eq!(all[2]["resourceId"], V1_APP_SP);

    let r = env
        .send(
            Method::GET,
            &format!("/v1.0/groups/{CALLERS_GROUP}/appRoleAssignments?$top=5"),
            Some(&t),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let roles: Vec<&str> = r.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["appRoleId"].as_str().unwrap())
        .collect();
    assert_eq!(roles, vec![ROLE_AUDIT, ROLE_READ]);
    assert_eq!(r.body["value"][0]["principalType"], "Group");
    assert_eq!(r.body["value"][0]["principalDisplayName"], "acr-attach-callers");
    assert!(r.body.get("@odata.nextLink").is_none());
    // Nothing assigned: an empty list. Wrong kind or unknown id: 404.
    let r = env
        .send(
            Method::GET,
            &format!("/v1.0/servicePrincipals/{KUBELET}/appRoleAssignments"),
            Some(&t),
            None,
        )
        .await;
    assert_eq!((r.status, r.body["value"].as_array().map(Vec::len)), (200, Some(0)));
    let r = env
        .send(
            Method::GET,
            &format!("/v1.0/groups/{CALLER_OID}/appRoleAssignments"),
            Some(&t),
            None,
        )
        .await;
    assert_eq!((r.status, r.code()), (404, "Request_ResourceNotFound"));

    // Permissions as Graph documents them: groups need Directory.Read.All (or
    // AppRoleAssignment.ReadWrite.All, Directory.ReadWrite.All); service principals also take
    // Application.Read.All.
    let app_reader = env.graph_token().await; // Application.Read.All, GroupMember.ReadWrite.All
    let r = env
        .send(
            Method::GET,
            &format!("/v1.0/groups/{CALLERS_GROUP}/appRoleAssignments"),
            Some(&app_reader),
            None,
        )
        .await;
    assert_eq!((r.status, r.code()), (403, "Authorization_RequestDenied"));
    assert_eq!(r.message(), "Insufficient privileges to complete the operation.");
    let r = env
        .send(
            Method::GET,
            &format!("/v1.0/servicePrincipals/{CALLER_OID}/appRoleAssignments"),
            Some(&app_reader),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    let none = env
        .token_for(READER_CLIENT, "https://graph.microsoft.com/.default")
        .await;
    let r = env
        .send(
            Method::GET,
            &format!("/v1.0/servicePrincipals/{CALLER_OID}/appRoleAssignments"),
            Some(&none),
            None,
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(env.sim.call_count("Graph_Groups_ListAppRoleAssignments"), 3);
    assert_eq!(env.sim.call_count("Graph_ServicePrincipals_ListAppRoleAssignments"), 6);
    // The application's service principal is in the directory.
    let r = env
        .send(
            Method::GET,
            &format!("/v1.0/servicePrincipals/{APP_SP}"),
            Some(&t),
            None,
        )
        .await;
    assert_eq!((r.status, r.body["appId"].as_str()), (200, Some(APP_ID)));
}

#[test]
fn world_files_with_bad_applications_are_refused() {
    let load = |edit: &dyn Fn(&mut Value)| {
        let mut w = world();
        with_apps(&mut w);
        edit(&mut w);
        azure_simulator::World::from_json(&w.to_string())
    };
    assert!(load(&|_| {}).is_ok());
    type Edit = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Edit)> = vec![
        (
            "unknown field",
            Box::new(|w| w["applications"][0]["appRolez"] = json!([])),
        ),
        (
            "is not a caller or in the directory",
            Box::new(|w| {
                w["applications"][0]["appRoleAssignments"][0]["principalId"] =
                    json!("00000000-0000-4000-8000-000000000999")
            }),
        ),
        (
            "names no app role",
            Box::new(|w| {
                w["applications"][0]["appRoleAssignments"][0]["appRoleValue"] = json!("Nope");
                w["applications"][0]["appRoleAssignments"][0]
                    .as_object_mut()
                    .unwrap()
                    .remove("appRoleId");
            }),
        ),
        (
            "exactly one of appRoleId and appRoleValue",
            Box::new(|w| w["applications"][0]["appRoleAssignments"][0]["appRoleValue"] = json!("Jobs.ReadAll")),
        ),
        (
            "allowedMemberTypes lack \"Application\"",
            Box::new(|w| w["applications"][0]["appRoleAssignments"][0]["appRoleId"] = json!(ROLE_AUDIT)),
        ),
        (
            "allowedMemberTypes lack \"User\"",
            Box::new(|w| {
                w["applications"][0]["appRoleAssignments"][2]["appRoleValue"] = json!("Attachments.ReadWrite")
            }),
        ),
        (
            "requestedAccessTokenVersion",
            Box::new(|w| w["applications"][0]["requestedAccessTokenVersion"] = json!(3)),
        ),
        (
            "already the app id or identifier URI",
            Box::new(|w| w["applications"][1]["identifierUris"] = json!(["API://acr-attach/"])),
        ),
        (
            "already the app id or identifier URI",
            Box::new(|w| w["applications"][1]["identifierUris"] = json!(["https://graph.microsoft.com"])),
        ),
        (
            "is not a GUID",
            Box::new(|w| w["applications"][0]["appRoles"][0]["id"] = json!("role-1")),
        ),
        (
            "not unique",
            Box::new(|w| w["applications"][0]["appRoles"][1]["value"] = json!("Attachments.ReadWrite")),
        ),
    ];
    for (expected, edit) in cases {
        let err = load(&*edit).expect_err(expected);
        assert!(format!("{err:#}").contains(expected), "{expected}: {err:#}");
    }
}

#[test]
fn the_demo_world_has_the_acr_attach_api_and_its_clients() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../demo/world.json");
    let w = azure_simulator::World::from_file(&path).unwrap();
    assert_eq!(w.callers[0].display_name, "acr-attach");
    let app = &w.applications[0];
    assert_eq!(app.identifier_uris, vec!["api://acr-attach".to_string()]);
    let values: Vec<&str> = app.app_roles.iter().map(|r| r.value.as_str()).collect();
    for v in [
        "Attachments.ReadWrite",
        "Attachments.Read",
        "Jobs.ReadAll",
        "Audit.Read",
    ] {
        assert!(values.contains(&v), "{v}");
    }
    // The API clients hold a role of the API and no ARM rights; the operator (for the Azure
    // CLI walkthrough) holds ARM rights and no role of the API: neither can stand in for the other.
    for c in &w.callers[1..] {
        let roles = app.roles_of(&c.object_id);
        if c.display_name == "platform-operator" {
            assert!(
                roles.is_empty() && !c.permissions.is_empty(),
                "the operator is no API client"
            );
        } else {
            assert!(c.permissions.is_empty(), "API clients have no ARM rights");
            assert!(!roles.is_empty(), "{} holds a role", c.display_name);
        }
    }
    assert!(app.roles_of(&w.callers[0].object_id).is_empty());
}
