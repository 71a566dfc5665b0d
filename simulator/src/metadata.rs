//! ARM's cloud metadata, `GET /metadata/endpoints`: what `az cloud register
//! --endpoint-resource-manager` and the SDKs' cloud helpers read to learn the login endpoint, the
//! ARM audiences and the Graph endpoint of a cloud. Unauthenticated, as on ARM.
//!
//! `api-version=2022-09-01` answers one object (the cloud this endpoint belongs to);
//! the older `2019-05-01` and `2018-01-01` answer an array of clouds, here of one.

use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use crate::reply;
use crate::state::Shared;

/// The name the simulated cloud reports, and `az cloud register -n` suggests.
pub const CLOUD_NAME: &str = "AzureSimulator";

const VERSIONS: &[&str] = &["2022-09-01", "2019-05-01", "2018-01-01"];

/// `Some` when the path is `/metadata/endpoints` (any case, any repeated slashes).
pub(crate) fn handle(shared: &Shared, method: &Method, segs: &[&str], api_version: Option<&str>) -> Option<Response> {
    let [m, e] = segs else { return None };
    if !(m.eq_ignore_ascii_case("metadata") && e.eq_ignore_ascii_case("endpoints")) {
        return None;
    }
    let error = |status, code: &str, message: String| {
        reply::json(status, &json!({ "error": { "code": code, "message": message } }))
    };
    if method != Method::GET && method != Method::HEAD {
        return Some(error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            format!("The requested resource does not support http method '{method}'."),
        ));
    }
    let Some(v) = api_version.filter(|v| !v.is_empty()) else {
        return Some(error(
            StatusCode::BAD_REQUEST,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.".into(),
        ));
    };
    let Some(v) = VERSIONS.iter().find(|s| s.eq_ignore_ascii_case(v)) else {
        return Some(error(
            StatusCode::BAD_REQUEST,
            "InvalidApiVersionParameter",
            format!(
                "The api-version '{v}' is invalid. The supported versions are '{}'.",
                VERSIONS.join(",")
            ),
        ));
    };
    let cloud = cloud(shared);
    let body = if *v == "2022-09-01" { cloud } else { json!([cloud]) };
    Some(reply::json(StatusCode::OK, &body))
}

/// The simulated cloud in ARM's metadata shape. Everything a client will call (login, ARM,
/// Graph) is this simulator; the audiences stay Azure's real ones, which the token endpoint
/// issues and ARM and Graph accept. `microsoftGraphResourceId` is this host, because the Azure
/// CLI uses it both as the Graph audience and as Graph's base URL.
fn cloud(shared: &Shared) -> Value {
    let base = &shared.base_url;
    let graph_audience = shared.lock().world.graph_audience.clone();
    json!({
        "name": CLOUD_NAME,
        "portal": base,
        "authentication": {
            "loginEndpoint": base,
            "audiences": ["https://management.core.windows.net/", "https://management.azure.com/"],
            "tenant": "common",
            "identityProvider": "AAD",
        },
        "resourceManager": format!("{base}/"),
        "microsoftGraphResourceId": format!("{base}/"),
        "graph": format!("{}/", graph_audience.trim_end_matches('/')),
        "graphAudience": format!("{}/", graph_audience.trim_end_matches('/')),
        "suffixes": {
            "acrLoginServer": "azurecr.io",
            "storage": "core.windows.net",
            "keyVaultDns": "vault.azure.net",
            "sqlServerHostname": "database.windows.net",
            "mhsmDns": "managedhsm.azure.net",
        },
    })
}
