//! `PUT` of a managed cluster and AKS's operation status: what `az aks update --attach-acr`
//! does after granting AcrPull (it writes the whole cluster back). As AKS: a long-running
//! operation answered 200 with `provisioningState: Updating`, an `Azure-AsyncOperation` URL
//! and `Retry-After`; the cluster reads `Updating` until the operation ends; a second write
//! meanwhile gets 409 `OperationNotAllowed`.
//!
//! What the body may change is modelled narrowly: the tags, the kubelet identity
//! (`properties.identityProfile.kubeletidentity.resourceId` naming another user-assigned
//! identity of the world, as `az aks update --assign-kubelet-identity` does) and
//! `properties.apiServerAccessProfile.disableRunCommand`. Everything else (agent pools,
//! versions, network) stays as the world file says. Creating clusters is not modelled.

use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use super::errors::ArmError;
use super::puts::{PutBody, authorize_put, parse_body, refuse_move};
use super::resources::{Kind, ResType, all_resources, find_resource, kubelet_resource_id, to_json};
use super::{Ctx, scope};
use crate::reply;
use crate::state::State;
use crate::world::{KubeletIdentity, World};

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
    let body: Value = serde_json::from_slice(ctx.body).unwrap_or_default();
    let (id, existing_location, kubelet) = match find_resource(&st.world, sub, rg, ResType::Cluster, name) {
        Some(r) => (
            r.id(),
            r.location().to_string(),
            requested_kubelet_identity(&st.world, &body, &r)?,
        ),
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
        if let Some(k) = kubelet {
            c.kubelet_identity = Some(k);
        }
        if let Some(d) = body
            .pointer("/properties/apiServerAccessProfile/disableRunCommand")
            .and_then(Value::as_bool)
        {
            c.disable_run_command = d;
        }
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

/// The kubelet identity a PUT asks for, when it names another one than the cluster has: an
/// existing user-assigned identity of the world (400 otherwise).
fn requested_kubelet_identity(
    world: &World,
    body: &Value,
    cluster: &super::resources::ResourceRef<'_>,
) -> Result<Option<KubeletIdentity>, ArmError> {
    let Some(wanted) = body
        .pointer("/properties/identityProfile/kubeletidentity/resourceId")
        .and_then(Value::as_str)
    else {
        return Ok(None);
    };
    let Kind::Cluster(c) = cluster.kind else {
        return Ok(None);
    };
    if kubelet_resource_id(cluster, c).is_some_and(|cur| scope::norm(&cur) == scope::norm(wanted)) {
        return Ok(None);
    }
    if c.kubelet_identity.is_none() {
        return Err(ArmError::bad_request(
            "InvalidParameter",
            format!(
                "Managed cluster '{}' uses a service principal: a kubelet identity can only be set on a managed-identity cluster.",
                c.name
            ),
        ));
    }
    all_resources(world)
        .into_iter()
        .find_map(|r| match r.kind {
            Kind::Identity(i) if scope::norm(&r.id()) == scope::norm(wanted) => Some(KubeletIdentity {
                object_id: i.principal_id.clone(),
                client_id: i.client_id.clone(),
                resource_id: Some(r.id()),
            }),
            _ => None,
        })
        .map(Some)
        .ok_or_else(|| {
            ArmError::bad_request(
                "InvalidParameter",
                format!(
                    "The user-assigned identity '{wanted}' in properties.identityProfile.kubeletidentity.resourceId was not found. Make sure it exists and the resource id is correct."
                ),
            )
        })
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
