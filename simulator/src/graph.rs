//! Microsoft Graph v1.0: service principal lookups and group membership, with Graph's own
//! error shape and eventual consistency.

use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use chrono::Utc;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::auth::{self, TokenError};
use crate::reply::{self, decode_path_segment, parse_query, query_param};
use crate::state::{MembershipChange, Shared, State};
use crate::world::{Principal, PrincipalKind};

const READ_PERMS: &[&str] = &[
    "Application.Read.All",
    "Application.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
const MEMBER_READ_PERMS: &[&str] = &[
    "Application.Read.All",
    "Application.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
    "GroupMember.Read.All",
    "GroupMember.ReadWrite.All",
    "Group.Read.All",
    "Group.ReadWrite.All",
];
const WRITE_PERMS: &[&str] = &[
    "GroupMember.ReadWrite.All",
    "Group.ReadWrite.All",
    "Directory.ReadWrite.All",
];

/// A Graph error waiting to be rendered.
struct GraphError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

fn err(status: StatusCode, code: &'static str, message: impl Into<String>) -> GraphError {
    GraphError {
        status,
        code,
        message: message.into(),
    }
}

fn not_found(id: &str) -> GraphError {
    err(
        StatusCode::NOT_FOUND,
        "Request_ResourceNotFound",
        format!("Resource '{id}' does not exist or one of its queried reference-property objects are not present."),
    )
}

/// Result of serving one Graph request, for the call log.
pub(crate) struct Outcome {
    pub operation: String,
    pub client_id: Option<String>,
    pub response: Response,
}

struct Req<'a> {
    shared: &'a Shared,
    method: &'a Method,
    raw_path: &'a str,
    query: Vec<(String, String)>,
    body: &'a [u8],
}

enum Route {
    SpGet(String),
    SpGetByAppId(String),
    GroupGet(String),
    AddMember(String),
    RemoveMember(String, String),
    CheckMemberGroups(String, bool),
    /// (object id, the kind it must be, only groups (the `microsoft.graph.group` cast))
    TransitiveMemberOf(String, PrincipalKind, bool),
    /// App roles granted to a group or service principal (object id, the kind it must be).
    AppRoleAssignments(String, PrincipalKind),
    /// `POST /directoryObjects/getByIds`: what `az role assignment list` resolves names with.
    GetByIds,
    /// `GET /servicePrincipals?$filter=...`: how the Azure CLI finds a service principal by app id.
    SpList,
}

fn route(method: &Method, segs: &[String]) -> Result<(&'static str, Route), GraphError> {
    let l: Vec<String> = segs.iter().map(|s| s.to_ascii_lowercase()).collect();
    let ls: Vec<&str> = l.iter().map(String::as_str).collect();
    let m = method.clone();
    let by_app = |s: &str| {
        let lower = s.to_ascii_lowercase();
        lower
            .strip_prefix("serviceprincipals(appid=")
            .and_then(|r| r.strip_suffix(')'))
            .map(|_| {
                let inner = &s["servicePrincipals(appId=".len()..s.len() - 1];
                inner.trim_matches('\'').to_string()
            })
    };
    let found = match ls.as_slice() {
        ["serviceprincipals"] if m == Method::GET => Some(("Graph_ServicePrincipals_List", Route::SpList)),
        ["serviceprincipals", _] if m == Method::GET => {
            Some(("Graph_ServicePrincipals_Get", Route::SpGet(segs[1].clone())))
        }
        [one] if m == Method::GET && by_app(one).is_some() => Some((
            "Graph_ServicePrincipals_GetByAppId",
            Route::SpGetByAppId(by_app(&segs[0]).unwrap_or_default()),
        )),
        ["groups", _] if m == Method::GET => Some(("Graph_Groups_Get", Route::GroupGet(segs[1].clone()))),
        ["directoryobjects", "getbyids"] if m == Method::POST => {
            Some(("Graph_DirectoryObjects_GetByIds", Route::GetByIds))
        }
        ["groups", _, "members", "$ref"] if m == Method::POST => {
            Some(("Graph_Groups_AddMember", Route::AddMember(segs[1].clone())))
        }
        ["groups", _, "members", _, "$ref"] if m == Method::DELETE => Some((
            "Graph_Groups_RemoveMember",
            Route::RemoveMember(segs[1].clone(), segs[3].clone()),
        )),
        ["serviceprincipals", _, "checkmembergroups"] if m == Method::POST => Some((
            "Graph_CheckMemberGroups",
            Route::CheckMemberGroups(segs[1].clone(), true),
        )),
        ["directoryobjects", _, "checkmembergroups"] if m == Method::POST => Some((
            "Graph_CheckMemberGroups",
            Route::CheckMemberGroups(segs[1].clone(), false),
        )),
        ["serviceprincipals", _, "transitivememberof"] if m == Method::GET => Some((
            "Graph_ServicePrincipals_ListTransitiveMemberOf",
            Route::TransitiveMemberOf(segs[1].clone(), PrincipalKind::ServicePrincipal, false),
        )),
        ["serviceprincipals", _, "transitivememberof", "microsoft.graph.group"] if m == Method::GET => Some((
            "Graph_ServicePrincipals_ListTransitiveMemberOf",
            Route::TransitiveMemberOf(segs[1].clone(), PrincipalKind::ServicePrincipal, true),
        )),
        ["groups", _, "transitivememberof"] if m == Method::GET => Some((
            "Graph_Groups_ListTransitiveMemberOf",
            Route::TransitiveMemberOf(segs[1].clone(), PrincipalKind::Group, false),
        )),
        ["groups", _, "transitivememberof", "microsoft.graph.group"] if m == Method::GET => Some((
            "Graph_Groups_ListTransitiveMemberOf",
            Route::TransitiveMemberOf(segs[1].clone(), PrincipalKind::Group, true),
        )),
        ["groups", _, "approleassignments"] if m == Method::GET => Some((
            "Graph_Groups_ListAppRoleAssignments",
            Route::AppRoleAssignments(segs[1].clone(), PrincipalKind::Group),
        )),
        ["serviceprincipals", _, "approleassignments"] if m == Method::GET => Some((
            "Graph_ServicePrincipals_ListAppRoleAssignments",
            Route::AppRoleAssignments(segs[1].clone(), PrincipalKind::ServicePrincipal),
        )),
        _ => None,
    };
    found.ok_or_else(|| {
        let seg = segs.last().cloned().unwrap_or_default();
        err(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!("Resource not found for the segment '{seg}'."),
        )
    })
}

fn authenticate(shared: &Shared, headers: &HeaderMap, audience: &str) -> Result<auth::Claims, GraphError> {
    let unauth = |m: &str| err(StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken", m);
    let value = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let Some(token) = value.strip_prefix("Bearer ").map(str::trim).filter(|t| !t.is_empty()) else {
        return Err(unauth("Access token is empty."));
    };
    let claims = match auth::verify(&shared.signing_key, token) {
        Ok(c) => c,
        Err(TokenError::Expired { .. }) => {
            return Err(unauth("Lifetime validation failed, the token is expired."));
        }
        Err(TokenError::Malformed) => return Err(unauth("Access token validation failure.")),
    };
    if !auth::same_audience(&claims.aud, audience) && !auth::same_audience(&claims.aud, &shared.base_url) {
        return Err(unauth("Access token validation failure. Invalid audience."));
    }
    Ok(claims)
}

fn require(st: &State, oid: &str, any_of: &[&str]) -> Result<(), GraphError> {
    let ok = st
        .world
        .callers
        .iter()
        .filter(|c| c.object_id.eq_ignore_ascii_case(oid))
        .flat_map(|c| c.graph_permissions.iter())
        .any(|p| any_of.iter().any(|a| a.eq_ignore_ascii_case(p)));
    if ok {
        Ok(())
    } else {
        Err(err(
            StatusCode::FORBIDDEN,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        ))
    }
}

/// A principal as Graph sees it right now (absent while still replicating).
fn visible(shared: &Shared, st: &State, id: &str) -> Option<Principal> {
    st.world
        .principal(id)
        .filter(|p| !st.is_replicating(shared.started, &p.object_id))
        .cloned()
}

fn sp_json(base: &str, tenant: &str, p: &Principal) -> Value {
    let app_id = p.app_id.clone().unwrap_or_default();
    json!({
        "@odata.context": format!("{base}/v1.0/$metadata#servicePrincipals/$entity"),
        "id": p.object_id,
        "deletedDateTime": null,
        "accountEnabled": true,
        "appDisplayName": p.display_name,
        "appId": app_id,
        "appOwnerOrganizationId": tenant,
        "displayName": p.display_name,
        "servicePrincipalNames": [app_id],
        "servicePrincipalType": p.service_principal_type.clone().unwrap_or_else(|| "Application".into()),
        "alternativeNames": [],
        "tags": [],
    })
}

/// The `$filter` forms the Azure CLI sends when it looks a service principal up.
enum SpFilter {
    /// `servicePrincipalNames/any(c:c eq 'X')` (a service principal's names include its app id).
    Name(String),
    /// `appId eq 'X'`.
    AppId(String),
    /// `displayName eq 'X'`.
    DisplayName(String),
    /// `startswith(displayName,'X')`.
    DisplayNameStarts(String),
}

impl SpFilter {
    fn matches(&self, p: &Principal) -> bool {
        let app = p.app_id.as_deref().unwrap_or_default();
        match self {
            SpFilter::Name(v) | SpFilter::AppId(v) => app.eq_ignore_ascii_case(v),
            SpFilter::DisplayName(v) => p.display_name.eq_ignore_ascii_case(v),
            SpFilter::DisplayNameStarts(v) => p.display_name.to_lowercase().starts_with(&v.to_lowercase()),
        }
    }
}

fn sp_filter(f: &str) -> Result<SpFilter, GraphError> {
    let quoted = |s: &str| {
        let s = s.trim();
        (s.len() >= 2 && s.starts_with('\'') && s.ends_with('\'')).then(|| s[1..s.len() - 1].replace("''", "'"))
    };
    let t = f.trim();
    let lower = t.to_ascii_lowercase();
    let parsed = if let Some(rest) = lower.strip_prefix("serviceprincipalnames/any(c:c eq ") {
        rest.strip_suffix(')')
            .and_then(|_| quoted(&t["servicePrincipalNames/any(c:c eq ".len()..t.len() - 1]))
            .map(SpFilter::Name)
    } else if lower.starts_with("appid eq ") {
        quoted(&t["appId eq ".len()..]).map(SpFilter::AppId)
    } else if lower.starts_with("displayname eq ") {
        quoted(&t["displayName eq ".len()..]).map(SpFilter::DisplayName)
    } else if lower.starts_with("startswith(displayname,") && lower.ends_with(')') {
        quoted(&t["startswith(displayName,".len()..t.len() - 1]).map(SpFilter::DisplayNameStarts)
    } else {
        None
    };
    parsed.ok_or_else(|| {
        err(
            StatusCode::BAD_REQUEST,
            "Request_UnsupportedQuery",
            format!("Unsupported or invalid query filter clause specified for property of resource 'ServicePrincipal': '{f}'."),
        )
    })
}

fn group_json(g: &Principal) -> Value {
    json!({
        "id": g.object_id,
        "deletedDateTime": null,
        "displayName": g.display_name,
        "description": null,
        "groupTypes": [],
        "mailEnabled": false,
        "mailNickname": g.display_name,
        "securityEnabled": true,
        "isAssignableToRole": g.is_assignable_to_role,
        "membershipRule": null,
        "visibility": null,
    })
}

/// `POST /v1.0/directoryObjects/getByIds` `{ids, types?}`: the objects found, each with its
/// `@odata.type`; unknown (or still replicating) ids are left out, as Graph does. At most
/// 1,000 ids; `Directory.Read.All` (or `Directory.ReadWrite.All`) as Graph documents.
fn get_by_ids(req: &Req<'_>, st: &State, oid: &str, base: &str, tenant: &str) -> Result<Response, GraphError> {
    require(st, oid, &["Directory.Read.All", "Directory.ReadWrite.All"])?;
    let bad = |m: &str| err(StatusCode::BAD_REQUEST, "Request_BadRequest", m);
    let body: Value = serde_json::from_slice(req.body).map_err(|_| bad("Unable to read JSON request payload."))?;
    let ids: Vec<&str> = body
        .get("ids")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("Invalid request: the ids property is required."))?
        .iter()
        .map(|v| v.as_str().ok_or_else(|| bad("Invalid request: ids must be strings.")))
        .collect::<Result<_, _>>()?;
    if ids.len() > 1000 {
        return Err(bad("Invalid request: at most 1000 ids can be given."));
    }
    let types: Option<Vec<String>> = body.get("types").and_then(Value::as_array).map(|t| {
        t.iter()
            .filter_map(Value::as_str)
            .map(|s| s.to_ascii_lowercase())
            .collect()
    });
    let value: Vec<Value> = ids
        .iter()
        .filter_map(|id| visible(req.shared, st, id))
        .filter_map(|p| {
            let (ty, mut v) = match p.kind {
                PrincipalKind::ServicePrincipal => ("servicePrincipal", sp_json(base, tenant, &p)),
                PrincipalKind::Group => ("group", group_json(&p)),
                PrincipalKind::User => (
                    "user",
                    json!({ "id": p.object_id, "displayName": p.display_name, "userPrincipalName": null }),
                ),
            };
            if types
                .as_ref()
                .is_some_and(|t| !t.iter().any(|x| x == &ty.to_ascii_lowercase()))
            {
                return None;
            }
            if let Some(o) = v.as_object_mut() {
                o.remove("@odata.context");
                o.insert("@odata.type".into(), json!(format!("#microsoft.graph.{ty}")));
            }
            Some(v)
        })
        .collect();
    Ok(reply::json(
        StatusCode::OK,
        &json!({ "@odata.context": format!("{base}/v1.0/$metadata#directoryObjects"), "value": value }),
    ))
}

fn graph_delay(st: &State) -> Duration {
    Duration::from_millis(st.world.behaviour.group_membership_graph_delay_ms)
}

fn group_of(shared: &Shared, st: &State, gid: &str) -> Result<Principal, GraphError> {
    visible(shared, st, gid)
        .filter(|p| p.kind == PrincipalKind::Group)
        .ok_or_else(|| not_found(gid))
}

fn serve(req: &Req<'_>, st: &mut State, oid: &str, r: Route) -> Result<Response, GraphError> {
    let shared = req.shared;
    let base = st.world.graph_audience.trim_end_matches('/').to_string();
    let tenant = st.world.tenant_id.clone();
    match r {
        Route::SpGet(id) => {
            require(st, oid, READ_PERMS)?;
            let p = visible(shared, st, &id)
                .filter(|p| p.kind == PrincipalKind::ServicePrincipal)
                .ok_or_else(|| not_found(&id))?;
            Ok(reply::json(StatusCode::OK, &sp_json(&base, &tenant, &p)))
        }
        Route::SpGetByAppId(app_id) => {
            require(st, oid, READ_PERMS)?;
            let p = st
                .world
                .directory
                .iter()
                .find(|p| {
                    p.kind == PrincipalKind::ServicePrincipal
                        && p.app_id.as_deref().is_some_and(|a| a.eq_ignore_ascii_case(&app_id))
                })
                .filter(|p| !st.is_replicating(shared.started, &p.object_id))
                .cloned()
                .ok_or_else(|| not_found(&format!("servicePrincipals(appId='{app_id}')")))?;
            Ok(reply::json(StatusCode::OK, &sp_json(&base, &tenant, &p)))
        }
        Route::GroupGet(gid) => {
            require(st, oid, MEMBER_READ_PERMS)?;
            let g = group_of(shared, st, &gid)?;
            let mut body = group_json(&g);
            body["@odata.context"] = json!(format!("{base}/v1.0/$metadata#groups/$entity"));
            Ok(reply::json(StatusCode::OK, &body))
        }
        Route::GetByIds => get_by_ids(req, st, oid, &base, &tenant),
        Route::SpList => {
            require(st, oid, READ_PERMS)?;
            let filter = query_param(&req.query, "$filter").map(sp_filter).transpose()?;
            let all: Vec<Value> = st
                .world
                .directory
                .iter()
                .filter(|p| {
                    p.kind == PrincipalKind::ServicePrincipal && !st.is_replicating(shared.started, &p.object_id)
                })
                .filter(|p| filter.as_ref().is_none_or(|f| f.matches(p)))
                .map(|p| {
                    let mut v = sp_json(&base, &tenant, p);
                    v.as_object_mut().map(|o| o.remove("@odata.context"));
                    v
                })
                .collect();
            page(req, st, format!("{base}/v1.0/$metadata#servicePrincipals"), all)
        }
        Route::AddMember(gid) => {
            require(st, oid, WRITE_PERMS)?;
            let group = group_of(shared, st, &gid)?;
            if group.is_assignable_to_role {
                // Graph: members of role-assignable groups are managed with the directory-role permission too.
                require(st, oid, &["RoleManagement.ReadWrite.Directory"])?;
            }
            let body: Value = serde_json::from_slice(req.body).map_err(|_| {
                err(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    "Unable to read JSON request payload.",
                )
            })?;
            let reference = body.get("@odata.id").and_then(Value::as_str).unwrap_or_default();
            let member_id = reference
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_string();
            if Uuid::parse_str(&member_id).is_err() {
                return Err(err(
                    StatusCode::BAD_REQUEST,
                    "Request_BadRequest",
                    format!("Invalid object identifier '{reference}'."),
                ));
            }
            let member = visible(shared, st, &member_id).ok_or_else(|| not_found(&member_id))?;
            if group.members.iter().any(|m| m.eq_ignore_ascii_case(&member.object_id)) {
                return Err(err(
                    StatusCode::BAD_REQUEST,
                    "Request_BadRequest",
                    "One or more added object references already exist for the following modified properties: 'members'.",
                ));
            }
            set_membership(st, &group.object_id, &member.object_id, true);
            Ok(reply::empty(StatusCode::NO_CONTENT))
        }
        Route::RemoveMember(gid, mid) => {
            require(st, oid, WRITE_PERMS)?;
            let group = group_of(shared, st, &gid)?;
            let Some(member) = group.members.iter().find(|m| m.eq_ignore_ascii_case(&mid)).cloned() else {
                return Err(not_found(&mid));
            };
            set_membership(st, &group.object_id, &member, false);
            Ok(reply::empty(StatusCode::NO_CONTENT))
        }
        Route::CheckMemberGroups(id, sp_only) => {
            require(st, oid, MEMBER_READ_PERMS)?;
            visible(shared, st, &id)
                .filter(|p| !sp_only || p.kind == PrincipalKind::ServicePrincipal)
                .ok_or_else(|| not_found(&id))?;
            let body: Value = serde_json::from_slice(req.body).map_err(|_| {
                err(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    "Unable to read JSON request payload.",
                )
            })?;
            let ids: Vec<String> = body
                .get("groupIds")
                .and_then(Value::as_array)
                .ok_or_else(|| {
                    err(
                        StatusCode::BAD_REQUEST,
                        "Request_BadRequest",
                        "The groupIds parameter is required.",
                    )
                })?
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect();
            if ids.len() > 20 {
                return Err(err(
                    StatusCode::BAD_REQUEST,
                    "Request_BadRequest",
                    "A maximum of 20 groupIds may be specified.",
                ));
            }
            let groups = st.transitive_groups(&id, graph_delay(st));
            let value: Vec<String> = ids
                .into_iter()
                .filter(|g| groups.iter().any(|x| x.eq_ignore_ascii_case(g)))
                .collect();
            let ctx = format!("{base}/v1.0/$metadata#Collection(Edm.String)");
            Ok(reply::json(
                StatusCode::OK,
                &json!({ "@odata.context": ctx, "value": value }),
            ))
        }
        Route::AppRoleAssignments(id, kind) => app_role_assignments(req, st, oid, &id, kind),
        Route::TransitiveMemberOf(id, kind, groups_only) => {
            require(st, oid, MEMBER_READ_PERMS)?;
            let me = visible(shared, st, &id)
                .filter(|p| p.kind == kind)
                .ok_or_else(|| not_found(&id))?;
            let groups: Vec<Principal> = st
                .transitive_groups(&id, graph_delay(st))
                .iter()
                .filter_map(|g| st.world.principal(g).cloned())
                .collect();
            let mut all: Vec<Value> = groups
                .iter()
                .map(|g| {
                    json!({
                        "@odata.type": "#microsoft.graph.group",
                        "id": g.object_id,
                        "displayName": g.display_name,
                        "securityEnabled": true,
                        "mailEnabled": false,
                        "groupTypes": [],
                        "isAssignableToRole": g.is_assignable_to_role,
                    })
                })
                .collect();
            if !groups_only {
                // Directory roles held by the object itself or by a group it belongs to.
                let mut roles: Vec<&String> = me.directory_roles.iter().collect();
                roles.extend(groups.iter().flat_map(|g| g.directory_roles.iter()));
                roles.sort();
                roles.dedup();
                all.extend(roles.into_iter().map(|name| {
                    json!({
                        "@odata.type": "#microsoft.graph.directoryRole",
                        "id": Uuid::new_v5(&Uuid::NAMESPACE_OID, name.as_bytes()),
                        "displayName": name,
                        "roleTemplateId": Uuid::new_v5(&Uuid::NAMESPACE_URL, name.as_bytes()),
                    })
                }));
            }
            page(req, st, format!("{base}/v1.0/$metadata#directoryObjects"), all)
        }
    }
}

fn set_membership(st: &mut State, group: &str, member: &str, added: bool) {
    if let Some(g) = st
        .world
        .directory
        .iter_mut()
        .find(|p| p.object_id.eq_ignore_ascii_case(group))
    {
        if added {
            g.members.push(member.to_string());
        } else {
            g.members.retain(|m| !m.eq_ignore_ascii_case(member));
        }
    }
    st.membership_log.push(MembershipChange {
        group: group.to_string(),
        member: member.to_string(),
        added,
        at: Instant::now(),
    });
}

/// Serves one Graph request (path starting with `/v1.0/`).
pub(crate) fn handle(shared: &Shared, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Outcome {
    let raw_path = uri.path();
    let segs: Vec<String> = raw_path
        .split('/')
        .filter(|s| !s.is_empty())
        .skip(1)
        .map(decode_path_segment)
        .collect();
    let req = Req {
        shared,
        method,
        raw_path,
        query: parse_query(uri.query()),
        body,
    };
    let mut operation = "Graph_Unknown".to_string();
    let mut client_id = None;
    let result = (|| {
        let (op, r) = route(req.method, &segs)?;
        operation = op.to_string();
        let audience = shared.lock().world.graph_audience.clone();
        let claims = authenticate(shared, headers, &audience)?;
        client_id = Some(claims.appid.clone());
        let mut st = shared.lock();
        serve(&req, &mut st, &claims.oid, r)
    })();
    let client_request_id = headers
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| Uuid::new_v4().to_string());
    let request_id = Uuid::new_v4().to_string();
    let mut response = match result {
        Ok(r) => r,
        Err(e) => {
            let body = json!({ "error": {
                "code": e.code,
                "message": e.message,
                "innerError": {
                    "date": Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string(),
                    "request-id": request_id,
                    "client-request-id": client_request_id,
                }
            }});
            reply::json(e.status, &body)
        }
    };
    for (name, value) in [("request-id", &request_id), ("client-request-id", &client_request_id)] {
        if let Ok(v) = HeaderValue::from_str(value) {
            response.headers_mut().insert(name, v);
        }
    }
    Outcome {
        operation,
        client_id,
        response,
    }
}

/// Application permissions `GET /groups/{id}/appRoleAssignments` accepts (Graph's documented list).
const GROUP_APP_ROLE_READ_PERMS: &[&str] = &[
    "Directory.Read.All",
    "AppRoleAssignment.ReadWrite.All",
    "Directory.ReadWrite.All",
];
/// Application permissions `GET /servicePrincipals/{id}/appRoleAssignments` accepts.
const SP_APP_ROLE_READ_PERMS: &[&str] = &[
    "Application.Read.All",
    "Application.ReadWrite.All",
    "Application.ReadWrite.OwnedBy",
    "AppRoleAssignment.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];

/// `GET /{groups|servicePrincipals}/{id}/appRoleAssignments`: the app roles of the world's
/// `applications` granted directly to this principal, paged by `$top` / `$skiptoken`.
fn app_role_assignments(
    req: &Req<'_>,
    st: &State,
    oid: &str,
    id: &str,
    kind: PrincipalKind,
) -> Result<Response, GraphError> {
    let (perms, set) = match kind {
        PrincipalKind::Group => (GROUP_APP_ROLE_READ_PERMS, "groups"),
        _ => (SP_APP_ROLE_READ_PERMS, "servicePrincipals"),
    };
    require(st, oid, perms)?;
    let me = visible(req.shared, st, id)
        .filter(|p| p.kind == kind)
        .ok_or_else(|| not_found(id))?;
    let created = req
        .shared
        .started_utc
        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    let all: Vec<Value> = st
        .world
        .applications
        .iter()
        .flat_map(|app| app.app_role_assignments.iter().map(move |a| (app, a)))
        .filter(|(_, a)| a.principal_id.eq_ignore_ascii_case(&me.object_id))
        .filter_map(|(app, a)| app.role_of(a).map(|role| (app, role)))
        .map(|(app, role)| {
            json!({
                "id": app_role_assignment_id(&me.object_id, &app.service_principal_object_id, &role.id),
                "deletedDateTime": null,
                "appRoleId": role.id,
                "createdDateTime": created,
                "principalDisplayName": me.display_name,
                "principalId": me.object_id,
                "principalType": me.kind.as_str(),
                "resourceDisplayName": app.display_name,
                "resourceId": app.service_principal_object_id,
            })
        })
        .collect();
    let base = st.world.graph_audience.trim_end_matches('/');
    page(
        req,
        st,
        format!("{base}/v1.0/$metadata#{set}('{}')/appRoleAssignments", me.object_id),
        all,
    )
}

/// One page of a Graph collection (`$top`, `$skiptoken`), with `@odata.nextLink` to the next.
fn page(req: &Req<'_>, st: &State, context: String, all: Vec<Value>) -> Result<Response, GraphError> {
    let page_size = query_param(&req.query, "$top")
        .and_then(|t| t.parse().ok())
        .unwrap_or(st.world.behaviour.page_size)
        .max(1);
    let start: usize = match query_param(&req.query, "$skiptoken") {
        None => 0,
        Some(t) => t
            .parse()
            .map_err(|_| err(StatusCode::BAD_REQUEST, "Request_BadRequest", "Invalid $skiptoken."))?,
    };
    let end = (start + page_size).min(all.len());
    let mut out = json!({
        "@odata.context": context,
        "value": all.get(start..end).map(<[Value]>::to_vec).unwrap_or_default(),
    });
    if end < all.len() {
        let (top, skip) = (page_size.to_string(), end.to_string());
        let mut pairs = vec![("$top", top.as_str()), ("$skiptoken", skip.as_str())];
        if let Some(f) = query_param(&req.query, "$filter") {
            pairs.push(("$filter", f));
        }
        let q = reply::encode_query(&pairs);
        out["@odata.nextLink"] = Value::String(format!("{}{}?{q}", req.shared.base_url, req.raw_path));
    }
    Ok(reply::json(StatusCode::OK, &out))
}

/// Graph's appRoleAssignment ids: base64url of the principal id's bytes (in .NET GUID order),
/// then 16 bytes telling the assignments of one principal apart.
fn app_role_assignment_id(principal: &str, resource: &str, role: &str) -> String {
    use base64::Engine;
    let mut bytes = Uuid::parse_str(principal)
        .map(|u| u.to_bytes_le().to_vec())
        .unwrap_or_else(|_| principal.as_bytes().to_vec());
    let tail = Uuid::new_v5(
        &Uuid::NAMESPACE_OID,
        format!("{resource}/{role}").to_ascii_lowercase().as_bytes(),
    );
    bytes.extend_from_slice(tail.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
