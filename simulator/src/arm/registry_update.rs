//! `Registries_Update` (`PATCH .../registries/{name}`): the properties `az acr update`
//! changes (public network access, the IP firewall, anonymous pull, data endpoints, the role
//! assignment mode, the SKU) and tags. Answered synchronously with 200 and the registry.
//! Properties not listed are ignored, as ARM ignores read-only and unknown ones.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value};

use super::Ctx;
use super::errors::ArmError;
use super::puts::parse_tags;
use super::resources::{ResType, find_resource, locate, to_json};
use crate::registry::{
    DEFAULT_ACTIONS, IpRule, NetworkRuleSet, PUBLIC_NETWORK_ACCESS, ROLE_ASSIGNMENT_MODES, valid_ip_rule,
};
use crate::reply;
use crate::state::State;
use crate::world::Registry;

const WRITE_ACTION: &str = "Microsoft.ContainerRegistry/registries/write";
const SKUS: &[&str] = &["Basic", "Standard", "Premium"];

/// What a PATCH body asks to change (`None`: leave as is).
#[derive(Default)]
struct Update {
    tags: Option<BTreeMap<String, String>>,
    sku: Option<String>,
    public_network_access: Option<String>,
    network_rule_set: Option<NetworkRuleSet>,
    anonymous_pull_enabled: Option<bool>,
    data_endpoint_enabled: Option<bool>,
    role_assignment_mode: Option<String>,
}

fn invalid_content(msg: &str) -> ArmError {
    ArmError::bad_request(
        "InvalidRequestContent",
        format!("The request content was invalid and could not be deserialized: '{msg}'."),
    )
}

/// An enum value, matched case-insensitively and returned in ACR's casing.
fn enum_value(v: &Value, allowed: &[&str], type_name: &str, path: &str) -> Result<String, ArmError> {
    let s = v.as_str().ok_or_else(|| {
        invalid_content(&format!(
            "Error converting value {v} to type '{type_name}'. Path '{path}'"
        ))
    })?;
    allowed
        .iter()
        .find(|a| a.eq_ignore_ascii_case(s))
        .map(|a| a.to_string())
        .ok_or_else(|| {
            invalid_content(&format!(
                "Error converting value \"{s}\" to type '{type_name}'. Path '{path}'"
            ))
        })
}

fn boolean(v: &Value, path: &str) -> Result<bool, ArmError> {
    v.as_bool()
        .ok_or_else(|| invalid_content(&format!("Error converting value {v} to type 'Boolean'. Path '{path}'")))
}

fn network_rule_set(v: &Value) -> Result<NetworkRuleSet, ArmError> {
    let obj = v
        .as_object()
        .ok_or_else(|| invalid_content("Property 'networkRuleSet' must be an object"))?;
    let default_action = match obj.get("defaultAction") {
        None | Some(Value::Null) => {
            return Err(invalid_content(
                "Required property 'defaultAction' not found in JSON. Path 'properties.networkRuleSet'",
            ));
        }
        Some(a) => enum_value(
            a,
            DEFAULT_ACTIONS,
            "DefaultAction",
            "properties.networkRuleSet.defaultAction",
        )?,
    };
    let mut ip_rules = Vec::new();
    for rule in obj.get("ipRules").and_then(Value::as_array).into_iter().flatten() {
        let action = match rule.get("action") {
            None | Some(Value::Null) => "Allow".to_string(),
            Some(a) => enum_value(a, &["Allow"], "Action", "properties.networkRuleSet.ipRules.action")?,
        };
        let value = rule.get("value").and_then(Value::as_str).ok_or_else(|| {
            invalid_content("Required property 'value' not found in JSON. Path 'properties.networkRuleSet.ipRules'")
        })?;
        if !valid_ip_rule(value) {
            return Err(ArmError::bad_request(
                "InvalidParameters",
                format!("The IP rule value '{value}' is not a valid IPv4 address or CIDR range."),
            ));
        }
        ip_rules.push(IpRule {
            action,
            value: value.to_string(),
        });
    }
    Ok(NetworkRuleSet {
        default_action,
        ip_rules,
    })
}

fn parse(raw: &[u8]) -> Result<Update, ArmError> {
    let body: Value = serde_json::from_slice(raw).map_err(|e| invalid_content(&e.to_string()))?;
    let obj = body
        .as_object()
        .ok_or_else(|| invalid_content("The request body must be a RegistryUpdateParameters object"))?;
    let mut u = Update::default();
    if obj.get("tags").is_some_and(|t| !t.is_null()) {
        u.tags = Some(parse_tags(&body)?);
    }
    if let Some(name) = obj.get("sku").and_then(|s| s.get("name")) {
        u.sku = Some(enum_value(name, SKUS, "SkuName", "sku.name")?);
    }
    let empty = Map::new();
    let props = match obj.get("properties") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(p)) => p,
        Some(_) => return Err(invalid_content("Property 'properties' must be an object")),
    };
    let field = |k: &str| props.get(k).filter(|v| !v.is_null());
    if let Some(v) = field("publicNetworkAccess") {
        u.public_network_access = Some(enum_value(
            v,
            PUBLIC_NETWORK_ACCESS,
            "PublicNetworkAccess",
            "properties.publicNetworkAccess",
        )?);
    }
    if let Some(v) = field("networkRuleSet") {
        u.network_rule_set = Some(network_rule_set(v)?);
    }
    if let Some(v) = field("anonymousPullEnabled") {
        u.anonymous_pull_enabled = Some(boolean(v, "properties.anonymousPullEnabled")?);
    }
    if let Some(v) = field("dataEndpointEnabled") {
        u.data_endpoint_enabled = Some(boolean(v, "properties.dataEndpointEnabled")?);
    }
    if let Some(v) = field("roleAssignmentMode") {
        u.role_assignment_mode = Some(enum_value(
            v,
            ROLE_ASSIGNMENT_MODES,
            "RoleAssignmentMode",
            "properties.roleAssignmentMode",
        )?);
    }
    Ok(u)
}

fn apply(reg: &mut Registry, u: Update) {
    if let Some(t) = u.tags {
        reg.tags = t;
    }
    if let Some(s) = u.sku {
        reg.sku = s;
    }
    if let Some(p) = u.public_network_access {
        reg.public_network_access = p;
    }
    if let Some(n) = u.network_rule_set {
        reg.network_rule_set = n;
    }
    if let Some(a) = u.anonymous_pull_enabled {
        reg.anonymous_pull_enabled = a;
    }
    if let Some(d) = u.data_endpoint_enabled {
        reg.data_endpoint_enabled = d;
    }
    if let Some(m) = u.role_assignment_mode {
        reg.role_assignment_mode = m;
    }
}

/// `PATCH .../providers/Microsoft.ContainerRegistry/registries/{name}`.
pub(crate) fn patch(ctx: &Ctx<'_>, st: &mut State, sub: &str, rg: &str, name: &str) -> Result<Response, ArmError> {
    locate(ctx, &st.world, (sub, rg, name), ResType::Registry, WRITE_ACTION)?;
    let update = parse(ctx.body)?;
    if let Some(reg) = st
        .world
        .resource_group_mut(sub, rg)
        .and_then(|g| g.registries.iter_mut().find(|r| r.name.eq_ignore_ascii_case(name)))
    {
        apply(reg, update);
    }
    let r = find_resource(&st.world, sub, rg, ResType::Registry, name).expect("located above");
    Ok(reply::json(StatusCode::OK, &to_json(ctx, &st.world, &r)))
}
