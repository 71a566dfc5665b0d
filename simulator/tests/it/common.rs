//! Shared fixtures: a small test tenant, a started simulator and an HTTPS client trusting it.

use azure_simulator::{Simulator, World};
use reqwest::{Certificate, Method};
use serde_json::{Value, json};

pub const TENANT: &str = "72f988bf-0000-4000-8000-000000000000";
pub const SUB: &str = "11111111-1111-4111-8111-111111111111";
pub const SUB2: &str = "22222222-2222-4222-8222-222222222222";
pub const CLIENT: &str = "a0000000-0000-4000-8000-00000000000a";
pub const SECRET: &str = "s3cret";
pub const CALLER_OID: &str = "a0000000-0000-4000-8000-0000000000a1";
pub const READER_CLIENT: &str = "b0000000-0000-4000-8000-00000000000b";
pub const READER_OID: &str = "b0000000-0000-4000-8000-0000000000b1";
pub const KUBELET: &str = "c0000000-0000-4000-8000-0000000000c1";
pub const KUBELET_NEW: &str = "c0000000-0000-4000-8000-0000000000c2";
pub const SP_APP: &str = "d0000000-0000-4000-8000-00000000000d";
pub const SP_OBJ: &str = "d0000000-0000-4000-8000-0000000000d1";
pub const USER: &str = "e0000000-0000-4000-8000-0000000000e1";
pub const GROUP_OUTER: &str = "f0000000-0000-4000-8000-0000000000f1";
pub const GROUP_INNER: &str = "f0000000-0000-4000-8000-0000000000f2";
pub const FRESH: &str = "f1000000-0000-4000-8000-000000000001";
pub const ACR_PULL: &str = "7f951dda-4ed3-4680-a7ca-43fe172d538d";
pub const READER_ROLE: &str = "acdd72a7-3385-48ef-bd42-f606fba81ae7";
pub const RG: &str = "rg-aks";

pub fn registry_id(name: &str) -> String {
    format!("/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.ContainerRegistry/registries/{name}")
}

pub fn role_id(guid: &str) -> String {
    format!("/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{guid}")
}

/// The base test tenant.
pub fn world() -> Value {
    let many: Vec<Value> = (1..=5).map(|i| json!({ "name": format!("acrmany{i}") })).collect();
    json!({
        "tenantId": TENANT,
        "callers": [
            { "clientId": CLIENT, "clientSecret": SECRET, "objectId": CALLER_OID, "displayName": "acr-attach",
              "permissions": [ { "scope": format!("/subscriptions/{SUB}"), "actions": ["*"] },
                               { "scope": format!("/subscriptions/{SUB2}"), "actions": ["*"] } ],
              "graphPermissions": ["Application.Read.All", "GroupMember.ReadWrite.All"] },
            { "clientId": READER_CLIENT, "clientSecret": SECRET, "objectId": READER_OID, "displayName": "reader",
              "permissions": [ { "scope": format!("/subscriptions/{SUB}"), "actions": ["*/read"],
                                 "notActions": ["Microsoft.ContainerService/*"] } ] }
        ],
        "directory": [
            { "objectId": SP_OBJ, "type": "ServicePrincipal", "appId": SP_APP, "displayName": "aks-legacy-sp", "servicePrincipalType": "Application" },
            { "objectId": USER, "type": "User", "displayName": "Dana Developer" },
            { "objectId": GROUP_OUTER, "type": "Group", "displayName": "acr-pullers", "members": [GROUP_INNER] },
            { "objectId": GROUP_INNER, "type": "Group", "displayName": "aks-kubelets", "members": [KUBELET] },
            { "objectId": FRESH, "type": "ServicePrincipal", "appId": "f1000000-0000-4000-8000-0000000000aa", "displayName": "fresh-mi",
              "servicePrincipalType": "ManagedIdentity", "replicationDelaySeconds": 0.5 }
        ],
        "subscriptions": [
            { "subscriptionId": SUB, "displayName": "platform-prod", "resourceGroups": [
                { "name": RG, "location": "westeurope",
                  "managedClusters": [
                      { "name": "aks-msi", "kubeletIdentity": { "objectId": KUBELET, "clientId": "c0000000-0000-4000-8000-0000000000cc" } },
                      { "name": "aks-sp", "servicePrincipalClientId": SP_APP },
                      { "name": "aks-new", "readyAfterSeconds": 0.4, "kubeletIdentity": { "objectId": KUBELET_NEW, "clientId": "c0000000-0000-4000-8000-0000000000c3" } }
                  ],
                  "registries": [
                      { "name": "acrOne" },
                      { "name": "acrabac", "roleAssignmentMode": "AbacRepositoryPermissions", "sku": "Premium" }
                  ] },
                { "name": "rg-many", "registries": many }
            ] },
            { "subscriptionId": SUB2, "displayName": "shared-services", "resourceGroups": [
                { "name": "rg-shared", "location": "northeurope", "registries": [ { "name": "acrshared" } ] }
            ] }
        ],
        "behaviour": {}
    })
}

/// A response, decoded.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Resp {
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or_default()
    }
    pub fn message(&self) -> &str {
        self.body["error"]["message"].as_str().unwrap_or_default()
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).map(|v| v.to_str().unwrap().to_string())
    }
}

pub struct Env {
    pub sim: Simulator,
    pub http: reqwest::Client,
}

pub async fn env() -> Env {
    env_with(|_| {}).await
}

pub async fn env_with(edit: impl FnOnce(&mut Value)) -> Env {
    let mut w = world();
    edit(&mut w);
    let world = World::from_json(&w.to_string()).expect("test world parses");
    let sim = azure_simulator::start(world, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("simulator starts");
    let ca = Certificate::from_pem(sim.ca_pem().as_bytes()).expect("CA PEM parses");
    let http = reqwest::Client::builder()
        .tls_certs_merge([ca])
        .build()
        .expect("client builds");
    Env { sim, http }
}

impl Env {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.sim.base_url(), path)
    }

    /// Raw token request.
    pub async fn token_request(&self, tenant: &str, form: &[(&str, &str)]) -> Resp {
        let r = self
            .http
            .post(self.url(&format!("/{tenant}/oauth2/v2.0/token")))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_body(form))
            .send()
            .await
            .expect("token request sent");
        decode(r).await
    }

    pub async fn token_for(&self, client: &str, scope: &str) -> String {
        let r = self
            .token_request(
                TENANT,
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", client),
                    ("client_secret", SECRET),
                    ("scope", scope),
                ],
            )
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        r.body["access_token"].as_str().unwrap().to_string()
    }

    pub async fn arm_token(&self) -> String {
        self.token_for(CLIENT, "https://management.azure.com/.default").await
    }

    pub async fn graph_token(&self) -> String {
        self.token_for(CLIENT, "https://graph.microsoft.com/.default").await
    }

    /// Sends a request with an optional bearer token and JSON body.
    pub async fn send(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Resp {
        let url = if path.starts_with("https://") {
            path.to_string()
        } else {
            self.url(path)
        };
        let mut req = self.http.request(method, url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        decode(req.send().await.expect("request sent")).await
    }

    /// ARM call as the fully privileged caller.
    pub async fn arm(&self, method: Method, path: &str, body: Option<Value>) -> Resp {
        let t = self.arm_token().await;
        self.send(method, path, Some(&t), body).await
    }

    pub async fn put_assignment(
        &self,
        scope: &str,
        name: &str,
        role: &str,
        principal: &str,
        principal_type: Option<&str>,
    ) -> Resp {
        let mut props = json!({ "roleDefinitionId": role_id(role), "principalId": principal });
        if let Some(t) = principal_type {
            props["principalType"] = json!(t);
        }
        self.arm(
            Method::PUT,
            &format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{name}?api-version=2022-04-01"),
            Some(json!({ "properties": props })),
        )
        .await
    }

    /// Lists assignments at `scope` with an optional raw (unencoded) filter, following nextLinks.
    pub async fn list_assignments(&self, scope: &str, filter: Option<&str>) -> Vec<Value> {
        let mut url = format!("{scope}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01");
        if let Some(f) = filter {
            url.push_str("&$filter=");
            url.push_str(&f.replace(' ', "%20").replace('\'', "%27"));
        }
        let token = self.arm_token().await;
        let mut out = Vec::new();
        let mut next = Some(url);
        while let Some(u) = next {
            let r = self.send(Method::GET, &u, Some(&token), None).await;
            assert_eq!(r.status, 200, "{:?}", r.body);
            out.extend(r.body["value"].as_array().unwrap().iter().cloned());
            next = r.body["nextLink"].as_str().map(str::to_string);
        }
        out
    }
}

pub async fn decode(r: reqwest::Response) -> Resp {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.expect("body read");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    Resp { status, headers, body }
}

pub fn names(values: &[Value]) -> Vec<String> {
    let mut v: Vec<String> = values.iter().map(|a| a["name"].as_str().unwrap().to_string()).collect();
    v.sort();
    v
}

/// `application/x-www-form-urlencoded` body, as Entra clients send.
pub fn form_body(pairs: &[(&str, &str)]) -> String {
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        ser.append_pair(k, v);
    }
    ser.finish()
}
