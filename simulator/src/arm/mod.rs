//! Azure Resource Manager: routing, the common pipeline (api-version, authentication,
//! throttling, injected 500s, response headers) and the per-provider handlers.

mod api_version;
mod errors;
mod identities;
mod paging;
mod permissions;
mod resource_graph;
mod resources;
mod role_assignments;
mod role_definitions;
mod scope;
mod throttling;

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use chrono::Utc;
use uuid::Uuid;

use errors::ArmError;
use resources::ResType;
use throttling::Kind;

use crate::auth::{self, TokenError};
use crate::reply::{decode_path_segment, parse_query, query_param};
use crate::state::{Shared, State};

/// Namespace for deterministic (UUIDv5) ids derived from resource ids.
pub(crate) const RES_NS_UUID: Uuid = Uuid::from_u128(0x5a1d_0c3e_7b7e_4d7f_9a51_6c9b_2f3e_a001);

/// Per-request context handed to handlers.
pub(crate) struct Ctx<'a> {
    pub shared: &'a Shared,
    pub raw_path: &'a str,
    pub query: Vec<(String, String)>,
    pub body: &'a [u8],
    pub caller_oid: String,
    pub api_version: String,
    pub page_size: usize,
}

impl Ctx<'_> {
    /// A query parameter (case-insensitive name), already URL-decoded.
    pub fn param(&self, name: &str) -> Option<&str> {
        query_param(&self.query, name)
    }
}

/// What a matched route does.
enum Action {
    RaList(String),
    RaCreate(String, String),
    RaGet(String, String),
    RaDelete(String, String),
    RdList(String),
    RdGet(String, String),
    Permissions(String),
    ResourceGraph,
    GenericList(String, Option<String>),
    TypedList(String, Option<String>, ResType),
    TypedGet(String, String, ResType, String),
    IdentityPut(String, String, String),
}

struct Route {
    op: &'static str,
    kind: Kind,
    versions: &'static [&'static str],
    action: Action,
}

/// Result of serving one ARM request, for the call log.
pub(crate) struct Outcome {
    pub operation: String,
    pub client_id: Option<String>,
    pub response: Response,
}

fn kind_of(method: &Method) -> Kind {
    match *method {
        Method::GET | Method::HEAD => Kind::Reads,
        Method::DELETE => Kind::Deletes,
        _ => Kind::Writes,
    }
}

fn method_not_allowed(method: &Method) -> ArmError {
    ArmError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        format!("The requested resource does not support http method '{method}'."),
    )
}

fn route(method: &Method, o: &[String]) -> Result<Route, ArmError> {
    let l: Vec<String> = o.iter().map(|s| s.to_ascii_lowercase()).collect();
    let m = method.clone();
    let mk = |op, versions, action| Route {
        op,
        kind: kind_of(method),
        versions,
        action,
    };
    // Microsoft.Authorization extension resources can hang off any scope.
    if let Some(i) = (0..l.len().saturating_sub(2))
        .rev()
        .find(|&i| l[i] == "providers" && l[i + 1] == "microsoft.authorization")
    {
        let scope = scope::from_segments(&o[..i]);
        let rest = &o[i + 3..];
        let (tail, gt) = (rest.len(), m == Method::GET);
        let by_scope = i == 0;
        return match (l[i + 2].as_str(), tail) {
            ("roleassignments", 0) if gt => Ok(mk(
                "RoleAssignments_ListForScope",
                api_version::ROLE_ASSIGNMENTS,
                Action::RaList(scope),
            )),
            ("roleassignments", 1) => {
                let name = rest[0].clone();
                match m {
                    Method::PUT => Ok(mk(
                        "RoleAssignments_Create",
                        api_version::ROLE_ASSIGNMENTS,
                        Action::RaCreate(scope, name),
                    )),
                    Method::GET => Ok(mk(
                        "RoleAssignments_Get",
                        api_version::ROLE_ASSIGNMENTS,
                        Action::RaGet(scope, name),
                    )),
                    Method::DELETE => Ok(mk(
                        "RoleAssignments_Delete",
                        api_version::ROLE_ASSIGNMENTS,
                        Action::RaDelete(scope, name),
                    )),
                    _ => Err(method_not_allowed(method)),
                }
            }
            ("roledefinitions", 0) if gt => Ok(mk(
                "RoleDefinitions_List",
                api_version::AUTHORIZATION,
                Action::RdList(scope),
            )),
            ("roledefinitions", 1) if gt => {
                let op = if by_scope {
                    "RoleDefinitions_GetById"
                } else {
                    "RoleDefinitions_Get"
                };
                Ok(mk(
                    op,
                    api_version::AUTHORIZATION,
                    Action::RdGet(scope, rest[0].clone()),
                ))
            }
            ("permissions", 0) if gt => {
                let op = if l.len() > 7 {
                    "Permissions_ListForResource"
                } else {
                    "Permissions_ListForResourceGroup"
                };
                Ok(mk(
                    op,
                    api_version::AUTHORIZATION,
                    Action::Permissions(scope),
                ))
            }
            ("roleassignments" | "roledefinitions" | "permissions", 0 | 1) => {
                Err(method_not_allowed(method))
            }
            _ => Err(unknown_route(o)),
        };
    }
    let ls: Vec<&str> = l.iter().map(String::as_str).collect();
    match ls.as_slice() {
        ["providers", "microsoft.resourcegraph", "resources"] => match m {
            Method::POST => Ok(mk(
                "ResourceGraph_Resources",
                api_version::RESOURCE_GRAPH,
                Action::ResourceGraph,
            )),
            _ => Err(method_not_allowed(method)),
        },
        ["subscriptions", _, "resources"] if m == Method::GET => Ok(mk(
            "Resources_List",
            api_version::RESOURCES,
            Action::GenericList(o[1].clone(), None),
        )),
        ["subscriptions", _, "resourcegroups", _, "resources"] if m == Method::GET => Ok(mk(
            "Resources_ListByResourceGroup",
            api_version::RESOURCES,
            Action::GenericList(o[1].clone(), Some(o[3].clone())),
        )),
        ["subscriptions", _, "providers", ns, ty] => {
            let rt = ResType::from_namespace_type(ns, ty).ok_or_else(|| unknown_route(o))?;
            if m != Method::GET {
                return Err(method_not_allowed(method));
            }
            let op = match rt {
                ResType::Cluster => "ManagedClusters_List",
                ResType::Registry => "Registries_List",
                ResType::Identity => "UserAssignedIdentities_ListBySubscription",
            };
            Ok(mk(
                op,
                versions_of(rt),
                Action::TypedList(o[1].clone(), None, rt),
            ))
        }
        ["subscriptions", _, "resourcegroups", _, "providers", ns, ty] => {
            let rt = ResType::from_namespace_type(ns, ty).ok_or_else(|| unknown_route(o))?;
            if m != Method::GET {
                return Err(method_not_allowed(method));
            }
            let op = match rt {
                ResType::Cluster => "ManagedClusters_ListByResourceGroup",
                ResType::Registry => "Registries_ListByResourceGroup",
                ResType::Identity => "UserAssignedIdentities_ListByResourceGroup",
            };
            Ok(mk(
                op,
                versions_of(rt),
                Action::TypedList(o[1].clone(), Some(o[3].clone()), rt),
            ))
        }
        [
            "subscriptions",
            _,
            "resourcegroups",
            _,
            "providers",
            ns,
            ty,
            _,
        ] => {
            let rt = ResType::from_namespace_type(ns, ty).ok_or_else(|| unknown_route(o))?;
            let (sub, rg, name) = (o[1].clone(), o[3].clone(), o[7].clone());
            match (rt, m) {
                (ResType::Cluster, Method::GET) => Ok(mk(
                    "ManagedClusters_Get",
                    api_version::CLUSTERS,
                    Action::TypedGet(sub, rg, rt, name),
                )),
                (ResType::Registry, Method::GET) => Ok(mk(
                    "Registries_Get",
                    api_version::REGISTRIES,
                    Action::TypedGet(sub, rg, rt, name),
                )),
                (ResType::Identity, Method::GET) => Ok(mk(
                    "UserAssignedIdentities_Get",
                    api_version::IDENTITIES,
                    Action::TypedGet(sub, rg, rt, name),
                )),
                (ResType::Identity, Method::PUT) => Ok(mk(
                    "UserAssignedIdentities_CreateOrUpdate",
                    api_version::IDENTITIES,
                    Action::IdentityPut(sub, rg, name),
                )),
                _ => Err(method_not_allowed(method)),
            }
        }
        _ => Err(unknown_route(o)),
    }
}

fn versions_of(rt: ResType) -> &'static [&'static str] {
    match rt {
        ResType::Cluster => api_version::CLUSTERS,
        ResType::Registry => api_version::REGISTRIES,
        ResType::Identity => api_version::IDENTITIES,
    }
}

/// ARM's answer for a path no provider serves.
fn unknown_route(o: &[String]) -> ArmError {
    let path = scope::from_segments(o);
    let ns_idx = o.iter().rposition(|s| s.eq_ignore_ascii_case("providers"));
    if let Some(i) = ns_idx
        && let (Some(ns), Some(ty)) = (o.get(i + 1), o.get(i + 2))
        && [
            "Microsoft.ContainerService",
            "Microsoft.ContainerRegistry",
            "Microsoft.ManagedIdentity",
            "Microsoft.Authorization",
            "Microsoft.ResourceGraph",
        ]
        .iter()
        .any(|k| k.eq_ignore_ascii_case(ns))
    {
        return ArmError::not_found(
            "InvalidResourceType",
            format!("The resource type '{ty}' could not be found in the namespace '{ns}'."),
        );
    }
    ArmError::not_found(
        "NoRegisteredProviderFound",
        format!("No registered resource provider found for path '{path}'."),
    )
}

/// Validates the bearer token for ARM; returns its claims.
fn authenticate(
    shared: &Shared,
    headers: &HeaderMap,
    arm_audience: &str,
    tenant: &str,
) -> Result<auth::Claims, ArmError> {
    let challenge = |desc: &str| {
        format!(
            "Bearer authorization_uri=\"{}/{tenant}\", error=\"invalid_token\", error_description=\"{desc}\"",
            shared.base_url
        )
    };
    let fail = |code: &str, message: String, desc: &str| {
        ArmError::new(StatusCode::UNAUTHORIZED, code, message)
            .with_header("www-authenticate", challenge(desc))
    };
    let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else {
        return Err(fail(
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing.".into(),
            "The authentication failed because of missing 'Authorization' header.",
        ));
    };
    let value = value.to_str().unwrap_or_default();
    let Some(token) = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
    else {
        return Err(fail(
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is provided in an invalid format."
                .into(),
            "The access token is missing or invalid.",
        ));
    };
    let claims = match auth::verify(&shared.signing_key, token.trim()) {
        Ok(c) => c,
        Err(TokenError::Malformed) => {
            return Err(fail(
                "InvalidAuthenticationToken",
                "The access token is invalid.".into(),
                "The access token is invalid.",
            ));
        }
        Err(TokenError::Expired { exp }) => {
            let fmt = |t: chrono::DateTime<Utc>| t.format("%-m/%-d/%Y %-I:%M:%S %p").to_string();
            let exp = chrono::DateTime::from_timestamp(exp, 0).unwrap_or_default();
            return Err(fail(
                "ExpiredAuthenticationToken",
                format!(
                    "The access token expiry UTC time '{}' is earlier than current UTC time '{}'.",
                    fmt(exp),
                    fmt(Utc::now())
                ),
                "The access token has expired.",
            ));
        }
    };
    if !auth::same_audience(&claims.aud, arm_audience)
        && !auth::same_audience(&claims.aud, "https://management.core.windows.net")
    {
        let a = arm_audience.trim_end_matches('/');
        return Err(fail(
            "InvalidAuthenticationTokenAudience",
            format!(
                "The access token has been obtained for wrong audience or resource '{}'. It should exactly match with one of the allowed audiences 'https://management.core.windows.net/','https://management.core.windows.net','{a}/','{a}'.",
                claims.aud
            ),
            "The access token has been obtained for wrong audience or resource.",
        ));
    }
    if !claims.tid.eq_ignore_ascii_case(tenant) {
        return Err(fail(
            "InvalidAuthenticationTokenTenant",
            format!(
                "The access token is from the wrong issuer '{}'. It must match the tenant '{tenant}' associated with this subscription.",
                claims.iss
            ),
            "The access token is from the wrong issuer.",
        ));
    }
    Ok(claims)
}

fn dispatch(ctx: &Ctx<'_>, st: &mut State, action: Action) -> Result<Response, ArmError> {
    match action {
        Action::RaList(scope) => role_assignments::list(ctx, st, &scope),
        Action::RaCreate(scope, name) => role_assignments::create(ctx, st, &scope, &name),
        Action::RaGet(scope, name) => role_assignments::get(ctx, st, &scope, &name),
        Action::RaDelete(scope, name) => role_assignments::delete(ctx, st, &scope, &name),
        Action::RdList(scope) => role_definitions::list(ctx, &st.world, &scope),
        Action::RdGet(scope, id) => role_definitions::get(ctx, &st.world, &scope, &id),
        Action::Permissions(scope) => permissions::list(&st.world, &ctx.caller_oid, &scope),
        Action::ResourceGraph => resource_graph::query(ctx, &st.world),
        Action::GenericList(sub, rg) => {
            resources::list_generic(ctx, &st.world, &sub, rg.as_deref())
        }
        Action::TypedList(sub, rg, rt) => {
            resources::list_typed(ctx, &st.world, &sub, rg.as_deref(), rt)
        }
        Action::TypedGet(sub, rg, rt, name) => resources::get(ctx, &st.world, &sub, &rg, rt, &name),
        Action::IdentityPut(sub, rg, name) => identities::put(ctx, st, &sub, &rg, &name),
    }
}

/// Serves one ARM request end to end.
pub(crate) fn handle(
    shared: &Shared,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Outcome {
    let raw_path = uri.path();
    let segs: Vec<String> = raw_path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(decode_path_segment)
        .collect();
    let query = parse_query(uri.query());
    let sub_key = (segs.len() >= 2 && segs[0].eq_ignore_ascii_case("subscriptions"))
        .then(|| segs[1].to_ascii_lowercase());
    let mut operation = "Unknown".to_string();
    let mut client_id = None;
    let mut rate: Option<(String, u64)> = None;
    let result = (|| {
        let route = route(method, &segs)?;
        operation = route.op.to_string();
        let api_version = api_version::check(query_param(&query, "api-version"), route.versions)?;
        let (arm_audience, tenant) = {
            let st = shared.lock();
            (st.world.arm_audience.clone(), st.world.tenant_id.clone())
        };
        let claims = authenticate(shared, headers, &arm_audience, &tenant)?;
        client_id = Some(claims.appid.clone());
        let mut st = shared.lock();
        let taken = throttling::take(&mut st, sub_key.as_deref(), &claims.oid, route.kind);
        match taken {
            Ok(r) => rate = Some(r),
            Err((r, e)) => {
                rate = Some(r);
                return Err(e);
            }
        }
        let rate_500 = st.world.behaviour.server_error_rate;
        if st.rng.chance(rate_500) {
            return Err(internal_error(
                sub_key.as_deref().unwrap_or_default(),
                headers,
            ));
        }
        let ctx = Ctx {
            shared,
            raw_path,
            query: query.clone(),
            body,
            caller_oid: claims.oid.clone(),
            api_version,
            page_size: st.world.behaviour.page_size,
        };
        dispatch(&ctx, &mut st, route.action)
    })();
    let mut response = result.unwrap_or_else(ArmError::into_response);
    add_common_headers(&mut response, headers, rate);
    Outcome {
        operation,
        client_id,
        response,
    }
}

fn correlation_id(headers: &HeaderMap) -> String {
    headers
        .get("x-ms-correlation-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| Uuid::new_v4().to_string())
}

fn internal_error(sub: &str, headers: &HeaderMap) -> ArmError {
    ArmError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "InternalServerError",
        format!(
            "Encountered internal server error. Diagnostic information: timestamp '{}', subscription id '{sub}', tracking id '{}', request correlation id '{}'.",
            Utc::now().format("%Y%m%dT%H%M%SZ"),
            Uuid::new_v4(),
            correlation_id(headers)
        ),
    )
}

fn add_common_headers(resp: &mut Response, req: &HeaderMap, rate: Option<(String, u64)>) {
    let request_id = Uuid::new_v4().to_string();
    let corr = correlation_id(req);
    let routing = format!(
        "WESTEUROPE:{}:{}",
        Utc::now().format("%Y%m%dT%H%M%SZ"),
        Uuid::new_v4()
    );
    let h = resp.headers_mut();
    let mut set = |name: &str, value: &str| {
        if let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::from_str(value)) {
            h.insert(n, v);
        }
    };
    set("x-ms-request-id", &request_id);
    set("x-ms-correlation-request-id", &corr);
    set("x-ms-routing-request-id", &routing);
    set("cache-control", "no-cache");
    set("x-content-type-options", "nosniff");
    set(
        "strict-transport-security",
        "max-age=31536000; includeSubDomains",
    );
    if let Some(v) = req
        .get("x-ms-client-request-id")
        .and_then(|v| v.to_str().ok())
    {
        set("x-ms-client-request-id", v);
    }
    if let Some((name, remaining)) = rate {
        set(&name, &remaining.to_string());
    }
}
