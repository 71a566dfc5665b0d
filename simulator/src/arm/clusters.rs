//! `PUT` of a managed cluster and AKS's operation status: what `az aks update --attach-acr`
//! does after granting AcrPull (it writes the whole cluster back). As AKS: a long-running
//! operation answered 200 with `provisioningState: Updating`, an `Azure-AsyncOperation` URL
//! and `Retry-After`; the cluster reads `Updating` until the operation ends; a second write
//! meanwhile gets 409 `OperationNotAllowed`.
//!
//! What the body may change is modelled narrowly: the tags. Everything else (identity, agent
//! pools, versions) stays as the world file says, so a client cannot reshape the world through
//! this path. Creating clusters is not modelled.

use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use super::errors::ArmError;
use super::puts::{PutBody, authorize_put, parse_body, refuse_move};
use super::resources::{ResType, find_resource, to_json};
use super::{Ctx, scope};
use crate::reply;
use crate::state::State;

/// One managed-cluster write and when it ends (seconds since simulator start).
#[derive(Debug, Clone)]
pub(crate) struct ClusterOperation {
    pub id: String,
    pub subscription: String,
    pub cluster_id: String,
    pub started: DateTime<Utc>,
    pub duration_secs: f64,
    pub ends_at_secs: f64,
}

/// AKS's operation-status URLs carry this api-version.
const OPERATION_API_VERSION: &str = "2016-03-30";

fn running<'s>(st: &'s State, cluster_id: &str, now: f64) -> Option<&'s ClusterOperation> {
    st.cluster_operations
        .iter()
        .find(|o| o.cluster_id.eq_ignore_ascii_case(cluster_id) && now < o.ends_at_secs)
}

/// `PUT .../providers/Microsoft.ContainerService/managedClusters/{name}`.
pub(crate) fn put(ctx: &Ctx<'_>, st: &mut State, sub: &str, rg: &str, name: &str) -> Result<Response, ArmError> {
    authorize_put(ctx, &st.world, sub, rg, ResType::Cluster, name)?;
    let PutBody { location, tags } = parse_body(ctx)?;
    let (id, existing_location) = match find_resource(&st.world, sub, rg, ResType::Cluster, name) {
        Some(r) => (r.id(), r.location().to_string()),
        None => {
            return Err(ArmError::bad_request(
                "OperationNotSupported",
                format!(
                    "Creating managed cluster '{name}' is not supported by the Azure simulator: clusters come from its world file."
                ),
            ));
        }
    };
    refuse_move(name, rg, &existing_location, &location)?;
    let now = ctx.shared.elapsed_secs();
    if let Some(op) = running(st, &id, now) {
        return Err(ArmError::new(
            StatusCode::CONFLICT,
            "OperationNotAllowed",
            format!(
                "Operation is not allowed because there's an in progress update managed cluster operation with operation id {} started at {}. Please wait for the operation to complete before retrying.",
                op.id,
                op.started.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
        ));
    }
    let duration = st.world.behaviour.managed_cluster_update_seconds;
    if let Some(c) = st.world.resource_group_mut(sub, rg).and_then(|g| {
        g.managed_clusters
            .iter_mut()
            .find(|c| c.name.eq_ignore_ascii_case(name))
    }) {
        c.tags = tags;
        c.updating_until = Some(now + duration);
    }
    let op = ClusterOperation {
        id: Uuid::new_v4().to_string(),
        subscription: sub.to_string(),
        cluster_id: id,
        started: Utc::now(),
        duration_secs: duration,
        ends_at_secs: now + duration,
    };
    let status_url = format!(
        "{}/subscriptions/{sub}/providers/Microsoft.ContainerService/locations/{}/operations/{}?api-version={OPERATION_API_VERSION}",
        ctx.shared.base_url,
        existing_location.replace(' ', "").to_ascii_lowercase(),
        op.id
    );
    st.cluster_operations.push(op);
    let r = find_resource(&st.world, sub, rg, ResType::Cluster, name).expect("found above");
    let mut resp = reply::json(StatusCode::OK, &to_json(ctx, &st.world, &r));
    let h = resp.headers_mut();
    h.insert("azure-asyncoperation", status_url.parse().expect("ASCII URL"));
    h.insert("retry-after", "1".parse().expect("static"));
    Ok(resp)
}

/// `GET /subscriptions/{s}/providers/Microsoft.ContainerService/locations/{l}/operations/{id}`.
pub(crate) fn operation_status(ctx: &Ctx<'_>, st: &State, sub: &str, id: &str) -> Result<Response, ArmError> {
    scope::check_subscription(&st.world, &format!("/subscriptions/{sub}"))?;
    let op = st
        .cluster_operations
        .iter()
        .find(|o| o.id.eq_ignore_ascii_case(id) && o.subscription.eq_ignore_ascii_case(sub))
        .ok_or_else(|| ArmError::not_found("NotFound", format!("Operation {id} not found in subscription {sub}.")))?;
    let now = ctx.shared.elapsed_secs();
    let mut body = json!({
        "name": op.id,
        "status": "InProgress",
        "startTime": op.started.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
    });
    if now >= op.ends_at_secs {
        let took = chrono::Duration::milliseconds((op.duration_secs * 1000.0) as i64);
        body["status"] = json!("Succeeded");
        body["endTime"] = json!((op.started + took).to_rfc3339_opts(chrono::SecondsFormat::Micros, true));
        return Ok(reply::json(StatusCode::OK, &body));
    }
    let mut resp = reply::json(StatusCode::OK, &body);
    resp.headers_mut().insert("retry-after", "1".parse().expect("static"));
    Ok(resp)
}
