//! Azure Resource Manager: routing, the common pipeline (api-version, authentication,
//! throttling, injected 500s, response headers) and the per-provider handlers.

mod api_version;
mod authn;
mod clusters;
mod errors;
mod identities;
mod image_ref;
mod import;
mod import_body;
mod kubelet;
mod lro;
mod paging;
mod permissions;
mod pulls;
mod puts;
mod registry_update;
mod resource_graph;
mod resources;
mod role_assignments;
mod role_definitions;
mod routing;
mod run_command;
mod scope;
mod subscriptions;
mod throttling;

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use chrono::Utc;
use uuid::Uuid;

pub(crate) use clusters::ClusterOperation;
use errors::ArmError;
pub use import::{ImageImport, ImportStatus};
use routing::{Action, route};
pub use run_command::RunCommand;

use crate::reply::{decode_path_segment, parse_query, query_param};
use crate::state::{SharedRef, State};

/// Namespace for deterministic (UUIDv5) ids derived from resource ids.
pub(crate) const RES_NS_UUID: Uuid = Uuid::from_u128(0x5a1d_0c3e_7b7e_4d7f_9a51_6c9b_2f3e_a001);

/// Per-request context handed to handlers.
pub(crate) struct Ctx<'a> {
    pub shared: &'a SharedRef,
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

/// Result of serving one ARM request, for the call log.
pub(crate) struct Outcome {
    pub operation: String,
    pub client_id: Option<String>,
    pub response: Response,
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
        Action::SubscriptionsList => subscriptions::list(ctx, &st.world),
        Action::GenericList(sub, rg) => resources::list_generic(ctx, &st.world, &sub, rg.as_deref()),
        Action::TypedList(sub, rg, rt) => resources::list_typed(ctx, &st.world, &sub, rg.as_deref(), rt),
        Action::TypedGet(sub, rg, rt, name) => resources::get(ctx, &st.world, &sub, &rg, rt, &name),
        Action::IdentityPut(sub, rg, name) => identities::put(ctx, st, &sub, &rg, &name),
        Action::ClusterPut(sub, rg, name) => clusters::put(ctx, st, &sub, &rg, &name),
        Action::ClusterOperation(sub, id) => clusters::operation_status(ctx, st, &sub, &id),
        Action::RunCommand(sub, rg, name) => run_command::submit(ctx, st, &sub, &rg, &name),
        Action::CommandResult(sub, rg, name, id) => run_command::result(ctx, st, (&sub, &rg, &name), &id),
        Action::ImportImage(sub, rg, name) => import::submit(ctx, st, &sub, &rg, &name),
        Action::ImportStatus(sub, rg, id) => import::status(ctx, st, &sub, &rg, &id),
        Action::RegistryPatch(sub, rg, name) => registry_update::patch(ctx, st, &sub, &rg, &name),
    }
}

/// Serves one ARM request end to end.
pub(crate) fn handle(shared: &SharedRef, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Outcome {
    let raw_path = uri.path();
    let segs: Vec<String> = raw_path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(decode_path_segment)
        .collect();
    let query = parse_query(uri.query());
    let sub_key =
        (segs.len() >= 2 && segs[0].eq_ignore_ascii_case("subscriptions")).then(|| segs[1].to_ascii_lowercase());
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
        let claims = authn::authenticate(shared, headers, &arm_audience, &tenant)?;
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
            return Err(internal_error(sub_key.as_deref().unwrap_or_default(), headers));
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
    let routing = format!("WESTEUROPE:{}:{}", Utc::now().format("%Y%m%dT%H%M%SZ"), Uuid::new_v4());
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
    set("strict-transport-security", "max-age=31536000; includeSubDomains");
    if let Some(v) = req.get("x-ms-client-request-id").and_then(|v| v.to_str().ok()) {
        set("x-ms-client-request-id", v);
    }
    if let Some((name, remaining)) = rate {
        set(&name, &remaining.to_string());
    }
}
