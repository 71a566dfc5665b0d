//! Maps ARM paths (case-insensitive, with arbitrary scope prefixes for the
//! Microsoft.Authorization extension resources) to operations.

use axum::http::{Method, StatusCode};

use super::api_version;
use super::errors::ArmError;
use super::resources::ResType;
use super::scope;
use super::throttling::Kind;

/// What a matched route does.
pub(super) enum Action {
    RaList(String),
    RaCreate(String, String),
    RaGet(String, String),
    RaDelete(String, String),
    RdList(String),
    RdGet(String, String),
    Permissions(String),
    ResourceGraph,
    SubscriptionsList,
    GenericList(String, Option<String>),
    TypedList(String, Option<String>, ResType),
    TypedGet(String, String, ResType, String),
    IdentityPut(String, String, String),
    ClusterPut(String, String, String),
    ClusterOperation(String, String),
    RunCommand(String, String, String),
    CommandResult(String, String, String, String),
    ImportImage(String, String, String),
    ImportStatus(String, String, String),
    RegistryPatch(String, String, String),
}

pub(super) struct Route {
    pub op: &'static str,
    pub kind: Kind,
    pub versions: &'static [&'static str],
    pub action: Action,
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

pub(super) fn route(method: &Method, o: &[String]) -> Result<Route, ArmError> {
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
                Ok(mk(op, api_version::AUTHORIZATION, Action::Permissions(scope)))
            }
            ("roleassignments" | "roledefinitions" | "permissions", 0 | 1) => Err(method_not_allowed(method)),
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
        ["subscriptions"] => match m {
            Method::GET => Ok(mk(
                "Subscriptions_List",
                api_version::SUBSCRIPTIONS,
                Action::SubscriptionsList,
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
        [
            "subscriptions",
            _,
            "providers",
            "microsoft.containerservice",
            "locations",
            _,
            "operations",
            _,
        ] => match m {
            Method::GET => Ok(mk(
                "ManagedClusters_OperationStatus",
                api_version::CLUSTER_OPERATIONS,
                Action::ClusterOperation(o[1].clone(), o[7].clone()),
            )),
            _ => Err(method_not_allowed(method)),
        },
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
            Ok(mk(op, versions_of(rt), Action::TypedList(o[1].clone(), None, rt)))
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
            "microsoft.containerservice",
            "managedclusters",
            _,
            "runcommand",
        ] => match m {
            Method::POST => Ok(mk(
                "ManagedClusters_RunCommand",
                api_version::CLUSTERS,
                Action::RunCommand(o[1].clone(), o[3].clone(), o[7].clone()),
            )),
            _ => Err(method_not_allowed(method)),
        },
        [
            "subscriptions",
            _,
            "resourcegroups",
            _,
            "providers",
            "microsoft.containerservice",
            "managedclusters",
            _,
            "commandresults",
            _,
        ] => match m {
            Method::GET => Ok(mk(
                "ManagedClusters_GetCommandResult",
                api_version::CLUSTERS,
                Action::CommandResult(o[1].clone(), o[3].clone(), o[7].clone(), o[9].clone()),
            )),
            _ => Err(method_not_allowed(method)),
        },
        [
            "subscriptions",
            _,
            "resourcegroups",
            _,
            "providers",
            "microsoft.containerregistry",
            "registries",
            _,
            "importimage",
        ] => match m {
            Method::POST => Ok(mk(
                "Registries_ImportImage",
                api_version::REGISTRIES,
                Action::ImportImage(o[1].clone(), o[3].clone(), o[7].clone()),
            )),
            _ => Err(method_not_allowed(method)),
        },
        [
            "subscriptions",
            _,
            "resourcegroups",
            _,
            "providers",
            "microsoft.containerregistry",
            "locations",
            _,
            "operationresults",
            "operationstatuses",
            _,
        ] => match m {
            Method::GET => Ok(mk(
                "Registries_ImportImageStatus",
                api_version::REGISTRY_OPERATIONS,
                Action::ImportStatus(o[1].clone(), o[3].clone(), o[10].clone()),
            )),
            _ => Err(method_not_allowed(method)),
        },
        ["subscriptions", _, "resourcegroups", _, "providers", ns, ty, _] => {
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
                (ResType::Cluster, Method::PUT) => Ok(mk(
                    "ManagedClusters_CreateOrUpdate",
                    api_version::CLUSTERS,
                    Action::ClusterPut(sub, rg, name),
                )),
                (ResType::Registry, Method::PATCH) => Ok(mk(
                    "Registries_Update",
                    api_version::REGISTRIES,
                    Action::RegistryPatch(sub, rg, name),
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
