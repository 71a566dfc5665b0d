//! Tracked resources the simulator models (clusters, registries, identities): lookup, JSON
//! shapes as in the official examples, and the GET/list operations over them.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};
use uuid::Uuid;

use super::errors::{ArmError, resource_group_not_found, resource_not_found};
use super::paging;
use super::permissions::{allowed_somewhere_below, authorization_failed, guard, is_allowed};
use super::scope;
use super::{Ctx, RES_NS_UUID};
use crate::registry::PrivateEndpointConnection;
use crate::reply;
use crate::world::{ManagedCluster, Registry, ResourceGroup, Subscription, UserAssignedIdentity, World};

/// The resource types the simulator knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResType {
    Cluster,
    Registry,
    Identity,
}

impl ResType {
    pub fn namespace(self) -> &'static str {
        match self {
            ResType::Cluster => "Microsoft.ContainerService",
            ResType::Registry => "Microsoft.ContainerRegistry",
            ResType::Identity => "Microsoft.ManagedIdentity",
        }
    }

    pub fn type_name(self) -> &'static str {
        match self {
            ResType::Cluster => "managedClusters",
            ResType::Registry => "registries",
            ResType::Identity => "userAssignedIdentities",
        }
    }

    /// `Microsoft.X/type` as ARM spells it.
    pub fn full(self) -> String {
        format!("{}/{}", self.namespace(), self.type_name())
    }

    pub fn from_namespace_type(ns: &str, ty: &str) -> Option<ResType> {
        [ResType::Cluster, ResType::Registry, ResType::Identity]
            .into_iter()
            .find(|t| t.namespace().eq_ignore_ascii_case(ns) && t.type_name().eq_ignore_ascii_case(ty))
    }

    /// The `.../read` action guarding GETs of this type.
    pub fn read_action(self) -> String {
        format!("{}/read", self.full())
    }
}

/// A borrowed view of one modeled resource.
#[derive(Clone, Copy)]
pub(crate) struct ResourceRef<'w> {
    pub sub: &'w Subscription,
    pub rg: &'w ResourceGroup,
    pub kind: Kind<'w>,
}

#[derive(Clone, Copy)]
pub(crate) enum Kind<'w> {
    Cluster(&'w ManagedCluster),
    Registry(&'w Registry),
    Identity(&'w UserAssignedIdentity),
}

impl<'w> ResourceRef<'w> {
    pub fn res_type(&self) -> ResType {
        match self.kind {
            Kind::Cluster(_) => ResType::Cluster,
            Kind::Registry(_) => ResType::Registry,
            Kind::Identity(_) => ResType::Identity,
        }
    }

    pub fn name(&self) -> &'w str {
        match self.kind {
            Kind::Cluster(c) => &c.name,
            Kind::Registry(r) => &r.name,
            Kind::Identity(i) => &i.name,
        }
    }

    pub fn location(&self) -> &'w str {
        let own = match self.kind {
            Kind::Cluster(c) => c.location.as_deref(),
            Kind::Registry(r) => r.location.as_deref(),
            Kind::Identity(i) => i.location.as_deref(),
        };
        own.unwrap_or(&self.rg.location)
    }

    /// Canonical id; managed identities use `resourcegroups` like the MSI RP returns.
    pub fn id(&self) -> String {
        let rg_seg = if self.res_type() == ResType::Identity {
            "resourcegroups"
        } else {
            "resourceGroups"
        };
        format!(
            "/subscriptions/{}/{rg_seg}/{}/providers/{}/{}",
            self.sub.subscription_id,
            self.rg.name,
            self.res_type().full(),
            self.name()
        )
    }

    /// The resource's tags.
    pub fn tags(&self) -> &'w std::collections::BTreeMap<String, String> {
        match self.kind {
            Kind::Cluster(c) => &c.tags,
            Kind::Registry(r) => &r.tags,
            Kind::Identity(i) => &i.tags,
        }
    }

    pub fn etag(&self) -> String {
        Uuid::new_v5(&RES_NS_UUID, self.id().to_ascii_lowercase().as_bytes())
            .simple()
            .to_string()[..8]
            .to_string()
    }
}

/// Every modeled resource, in world order (stable paging).
pub(crate) fn all_resources(world: &World) -> Vec<ResourceRef<'_>> {
    let mut out = Vec::new();
    for sub in &world.subscriptions {
        for rg in &sub.resource_groups {
            out.extend(rg.managed_clusters.iter().map(|c| ResourceRef {
                sub,
                rg,
                kind: Kind::Cluster(c),
            }));
            out.extend(rg.registries.iter().map(|r| ResourceRef {
                sub,
                rg,
                kind: Kind::Registry(r),
            }));
            out.extend(rg.user_assigned_identities.iter().map(|i| ResourceRef {
                sub,
                rg,
                kind: Kind::Identity(i),
            }));
        }
    }
    out
}

/// Finds one resource by (subscription, group, type, name), case-insensitively.
pub(crate) fn find_resource<'w>(
    world: &'w World,
    sub: &str,
    rg: &str,
    rt: ResType,
    name: &str,
) -> Option<ResourceRef<'w>> {
    all_resources(world).into_iter().find(|r| {
        r.res_type() == rt
            && r.sub.subscription_id.eq_ignore_ascii_case(sub)
            && r.rg.name.eq_ignore_ascii_case(rg)
            && r.name().eq_ignore_ascii_case(name)
    })
}

/// Full ARM representation of a resource (as in the official examples).
pub(crate) fn to_json(ctx: &Ctx<'_>, world: &World, r: &ResourceRef<'_>) -> Value {
    match r.kind {
        Kind::Cluster(c) => cluster_json(ctx, world, r, c),
        Kind::Registry(reg) => registry_json(ctx, r, reg),
        Kind::Identity(i) => identity_json(world, r, i),
    }
}

fn cluster_json(ctx: &Ctx<'_>, world: &World, r: &ResourceRef<'_>, c: &ManagedCluster) -> Value {
    let location = r.location();
    let now = ctx.shared.elapsed_secs();
    let ready = c.ready_after_seconds.is_none_or(|s| now >= s);
    let state = if !ready {
        "Creating".into()
    } else if c.updating_until.is_some_and(|t| now < t) {
        "Updating".into()
    } else {
        c.provisioning_state.clone().unwrap_or_else(|| "Succeeded".into())
    };
    let node_rg = c
        .node_resource_group
        .clone()
        .unwrap_or_else(|| format!("MC_{}_{}_{}", r.rg.name, c.name, location));
    let version = c.kubernetes_version.clone().unwrap_or_else(|| "1.33.2".into());
    let dns_prefix = format!("{}-dns", c.name);
    let hash = &r.etag()[..8];
    let mut props = json!({
        "provisioningState": state,
        "powerState": { "code": "Running" },
        "kubernetesVersion": version,
        "currentKubernetesVersion": version,
        "dnsPrefix": dns_prefix,
        "fqdn": format!("{dns_prefix}-{hash}.hcp.{location}.azmk8s.io"),
        "azurePortalFQDN": format!("{dns_prefix}-{hash}.portal.hcp.{location}.azmk8s.io"),
        "agentPoolProfiles": [{
            "name": "nodepool1",
            "count": 3,
            "vmSize": "Standard_D4ds_v5",
            "maxPods": 110,
            "osType": "Linux",
            "mode": "System",
            "orchestratorVersion": version,
            "currentOrchestratorVersion": version,
            "provisioningState": state,
        }],
        "servicePrincipalProfile": {
            "clientId": if c.kubelet_identity.is_some() { "msi".to_string() } else { c.service_principal_client_id.clone().unwrap_or_default() },
        },
        "nodeResourceGroup": node_rg,
        "enableRBAC": true,
        "networkProfile": {
            "networkPlugin": "azure",
            "loadBalancerSku": "standard",
            "outboundType": "loadBalancer",
            "serviceCidr": "10.0.0.0/16",
            "dnsServiceIP": "10.0.0.10",
        },
        "maxAgentPools": 100,
    });
    if c.disable_run_command {
        props["apiServerAccessProfile"] = json!({ "disableRunCommand": true });
    }
    if let (Some(k), Some(resource_id), true) = (&c.kubelet_identity, kubelet_resource_id(r, c), ready) {
        props["identityProfile"] = json!({
            "kubeletidentity": { "resourceId": resource_id, "clientId": k.client_id, "objectId": k.object_id }
        });
    }
    let mut body = json!({
        "id": r.id(),
        "name": c.name,
        "type": ResType::Cluster.full(),
        "location": location,
        "eTag": r.etag(),
        "tags": c.tags,
        "sku": { "name": "Base", "tier": "Free" },
        "properties": props,
    });
    if c.kubelet_identity.is_some() {
        let pid = Uuid::new_v5(
            &RES_NS_UUID,
            format!("{}|identity", r.id().to_ascii_lowercase()).as_bytes(),
        );
        body["identity"] =
            json!({ "type": "SystemAssigned", "principalId": pid.to_string(), "tenantId": world.tenant_id });
    }
    body
}

/// The ARM id of a managed-identity cluster's kubelet identity (default: `<cluster>-agentpool`
/// in the node resource group).
pub(crate) fn kubelet_resource_id(r: &ResourceRef<'_>, c: &ManagedCluster) -> Option<String> {
    let k = c.kubelet_identity.as_ref()?;
    Some(k.resource_id.clone().unwrap_or_else(|| {
        let node_rg = c
            .node_resource_group
            .clone()
            .unwrap_or_else(|| format!("MC_{}_{}_{}", r.rg.name, c.name, r.location()));
        format!(
            "/subscriptions/{}/resourcegroups/{node_rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{}-agentpool",
            r.sub.subscription_id, c.name
        )
    }))
}

fn registry_json(ctx: &Ctx<'_>, r: &ResourceRef<'_>, reg: &Registry) -> Value {
    let created = ctx
        .shared
        .started_utc
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let region = r.location().replace(' ', "").to_ascii_lowercase();
    let data_hosts: Vec<String> = if reg.data_endpoint_enabled {
        vec![format!("{}.{region}.data.azurecr.io", reg.name.to_ascii_lowercase())]
    } else {
        Vec::new()
    };
    let connections: Vec<Value> = reg
        .private_endpoint_connections
        .iter()
        .map(|pe| private_endpoint_connection_json(r, pe))
        .collect();
    let mut props = json!({
        "loginServer": reg.login(),
        "creationDate": created,
        "provisioningState": "Succeeded",
        "adminUserEnabled": false,
        "networkRuleSet": {
            "defaultAction": reg.network_rule_set.default_action,
            "ipRules": reg.network_rule_set.ip_rules.iter()
                .map(|i| json!({ "action": i.action, "value": i.value }))
                .collect::<Vec<_>>(),
        },
        "policies": {
            "quarantinePolicy": { "status": "disabled" },
            "trustPolicy": { "type": "Notary", "status": "disabled" },
            "retentionPolicy": { "days": 7, "lastUpdatedTime": created, "status": "disabled" },
            "exportPolicy": { "status": "enabled" },
            "azureADAuthenticationAsArmPolicy": { "status": "enabled" }
        },
        "encryption": { "status": "disabled" },
        "status": null,
        "dataEndpointEnabled": reg.data_endpoint_enabled,
        "dataEndpointHostNames": data_hosts,
        "privateEndpointConnections": connections,
        "publicNetworkAccess": reg.public_network_access,
        "networkRuleBypassOptions": "AzureServices",
        "networkRuleBypassAllowedForTasks": false,
        "zoneRedundancy": "Disabled",
        "anonymousPullEnabled": reg.anonymous_pull_enabled,
    });
    // Older api-versions predate roleAssignmentMode and simply omit it.
    if ctx.api_version != "2023-07-01" {
        props["roleAssignmentMode"] = Value::String(reg.role_assignment_mode.clone());
    }
    json!({
        "id": r.id(),
        "name": reg.name,
        "type": ResType::Registry.full(),
        "location": r.location(),
        "tags": reg.tags,
        "sku": { "name": reg.sku, "tier": reg.sku },
        "properties": props,
    })
}

/// A private endpoint connection as ACR lists it in `properties.privateEndpointConnections`.
fn private_endpoint_connection_json(r: &ResourceRef<'_>, pe: &PrivateEndpointConnection) -> Value {
    json!({
        "id": format!("{}/privateEndpointConnections/{}", r.id(), pe.name),
        "name": pe.name,
        "type": "Microsoft.ContainerRegistry/registries/privateEndpointConnections",
        "properties": {
            "privateEndpoint": {
                "id": format!(
                    "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Network/privateEndpoints/{}",
                    r.sub.subscription_id, r.rg.name, pe.name
                ),
            },
            "privateLinkServiceConnectionState": {
                "status": pe.status,
                "description": if pe.status == "Approved" { "Auto-Approved" } else { "" },
                "actionsRequired": "None",
            },
            "provisioningState": "Succeeded",
        },
    })
}

pub(crate) fn identity_json(world: &World, r: &ResourceRef<'_>, i: &UserAssignedIdentity) -> Value {
    json!({
        "id": r.id(),
        "location": r.location(),
        "name": i.name,
        "properties": { "clientId": i.client_id, "principalId": i.principal_id, "tenantId": world.tenant_id },
        "tags": i.tags,
        "type": ResType::Identity.full(),
    })
}

/// Short representation used by the generic `/resources` list.
fn generic_json(r: &ResourceRef<'_>) -> Value {
    let mut v = json!({ "id": r.id(), "name": r.name(), "type": r.res_type().full(), "location": r.location(), "tags": r.tags() });
    if let Kind::Registry(reg) = r.kind {
        v["sku"] = json!({ "name": reg.sku, "tier": reg.sku });
    }
    v
}

/// `GET .../providers/{ns}/{type}/{name}` for any modeled type.
pub(crate) fn get(
    ctx: &Ctx<'_>,
    world: &World,
    sub: &str,
    rg: &str,
    rt: ResType,
    name: &str,
) -> Result<Response, ArmError> {
    let target = format!(
        "/subscriptions/{sub}/resourceGroups/{rg}/providers/{}/{name}",
        rt.full()
    );
    guard(world, &ctx.caller_oid, &rt.read_action(), &target)?;
    let r = find_resource(world, sub, rg, rt, name).ok_or_else(|| resource_not_found(&rt.full(), name, rg))?;
    Ok(reply::json(StatusCode::OK, &to_json(ctx, world, &r)))
}

/// ARM's order for an action on one resource: unknown subscription (404), missing `action` on
/// the resource (403), missing group (404), missing resource (404). Returns the resource.
pub(crate) fn locate<'w>(
    ctx: &Ctx<'_>,
    world: &'w World,
    (sub, rg, name): (&str, &str, &str),
    rt: ResType,
    action: &str,
) -> Result<ResourceRef<'w>, ArmError> {
    let target = format!(
        "/subscriptions/{sub}/resourceGroups/{rg}/providers/{}/{name}",
        rt.full()
    );
    scope::check_subscription(world, &target)?;
    super::permissions::authorize(world, &ctx.caller_oid, action, &target)?;
    if world.resource_group(sub, rg).is_none() {
        return Err(resource_group_not_found(rg));
    }
    find_resource(world, sub, rg, rt, name).ok_or_else(|| resource_not_found(&rt.full(), name, rg))
}

/// Lists of one type (by subscription or resource group), filtered to what the caller can read.
pub(crate) fn list_typed(
    ctx: &Ctx<'_>,
    world: &World,
    sub: &str,
    rg: Option<&str>,
    rt: ResType,
) -> Result<Response, ArmError> {
    let items = list_scope(
        ctx,
        world,
        sub,
        rg,
        &rt.read_action(),
        |r| r.res_type() == rt,
        |r| r.res_type().read_action(),
    )?;
    let values: Vec<Value> = items.iter().map(|r| to_json(ctx, world, r)).collect();
    paging::respond(ctx, values, &[])
}

/// `GET /subscriptions/{s}[/resourceGroups/{rg}]/resources?$filter=resourceType eq '...'`.
pub(crate) fn list_generic(ctx: &Ctx<'_>, world: &World, sub: &str, rg: Option<&str>) -> Result<Response, ArmError> {
    let filter = ctx.param("$filter").map(str::to_string);
    let wanted = match filter.as_deref().map(str::trim).filter(|f| !f.is_empty()) {
        None => None,
        Some(f) => Some(parse_resource_filter(f)?),
    };
    let action = "Microsoft.Resources/subscriptions/resources/read";
    let items = list_scope(
        ctx,
        world,
        sub,
        rg,
        action,
        |r| match &wanted {
            None => true,
            Some((ty, name)) => {
                ty.as_deref()
                    .is_none_or(|t| r.res_type().full().eq_ignore_ascii_case(t))
                    && name.as_deref().is_none_or(|n| r.name().eq_ignore_ascii_case(n))
            }
        },
        |_| action.to_string(),
    )?;
    let values: Vec<Value> = items.iter().map(generic_json).collect();
    let extra: Vec<(&str, &str)> = filter.as_deref().map(|f| vec![("$filter", f)]).unwrap_or_default();
    paging::respond(ctx, values, &extra)
}

/// Parses `resourceType eq 'X' [and name eq 'Y']`; returns (type, name).
fn parse_resource_filter(f: &str) -> Result<(Option<String>, Option<String>), ArmError> {
    let mut ty = None;
    let mut name = None;
    for clause in split_and(f) {
        let (field, value) = parse_eq(clause).ok_or_else(|| invalid_filter(f))?;
        match field.to_ascii_lowercase().as_str() {
            "resourcetype" => ty = Some(value),
            "name" => name = Some(value),
            _ => return Err(invalid_filter(f)),
        }
    }
    Ok((ty, name))
}

fn invalid_filter(f: &str) -> ArmError {
    ArmError::bad_request(
        "InvalidFilterInQueryString",
        format!("Invalid $filter '{f}' specified in the query string."),
    )
}

/// Splits on the keyword `and` (case-insensitive) outside quotes.
pub(crate) fn split_and(s: &str) -> Vec<&str> {
    let lower = s.to_ascii_lowercase();
    let bytes = lower.as_bytes();
    let mut parts = Vec::new();
    let (mut start, mut in_quote, mut i) = (0, false, 0);
    while i < bytes.len() {
        if bytes[i] == b'\'' {
            in_quote = !in_quote;
        } else if !in_quote && lower[i..].starts_with(" and ") {
            parts.push(s[start..i].trim());
            start = i + 5;
            i += 5;
            continue;
        }
        i += 1;
    }
    parts.push(s[start..].trim());
    parts
}

/// Parses `field eq 'value'`.
pub(crate) fn parse_eq(clause: &str) -> Option<(String, String)> {
    let mut it = clause.splitn(3, ' ');
    let field = it.next()?.trim();
    let op = it.next()?.trim();
    let value = it.next()?.trim();
    if !op.eq_ignore_ascii_case("eq") || value.len() < 2 || !value.starts_with('\'') || !value.ends_with('\'') {
        return None;
    }
    Some((field.to_string(), value[1..value.len() - 1].to_string()))
}

/// Resolves a list's scope and applies ARM's partial-authorization rule: everything when the
/// caller holds the action at the list scope, else only items it can read, else 403.
fn list_scope<'w>(
    ctx: &Ctx<'_>,
    world: &'w World,
    sub: &str,
    rg: Option<&str>,
    action: &str,
    keep: impl Fn(&ResourceRef<'w>) -> bool,
    item_action: impl Fn(&ResourceRef<'w>) -> String,
) -> Result<Vec<ResourceRef<'w>>, ArmError> {
    let target = match rg {
        Some(rg) => format!("/subscriptions/{sub}/resourceGroups/{rg}"),
        None => format!("/subscriptions/{sub}"),
    };
    scope::check_subscription(world, &target)?;
    let full = is_allowed(world, &ctx.caller_oid, action, &target);
    if !full && !allowed_somewhere_below(world, &ctx.caller_oid, action, &target) {
        return Err(authorization_failed(&ctx.caller_oid, action, &target));
    }
    if let Some(rg) = rg
        && world.resource_group(sub, rg).is_none()
    {
        return Err(resource_group_not_found(rg));
    }
    Ok(all_resources(world)
        .into_iter()
        .filter(|r| r.sub.subscription_id.eq_ignore_ascii_case(sub))
        .filter(|r| rg.is_none_or(|g| r.rg.name.eq_ignore_ascii_case(g)))
        .filter(|r| keep(r))
        .filter(|r| full || is_allowed(world, &ctx.caller_oid, &item_action(r), &r.id()))
        .collect())
}
