use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::common::*;

fn member_ref(id: &str) -> serde_json::Value {
    json!({ "@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{id}") })
}

#[tokio::test]
async fn service_principals_by_object_id_and_app_id() {
    let env = env().await;
    let t = env.graph_token().await;
    let r = env
        .send(
            Method::GET,
            &format!("/v1.0/servicePrincipals/{KUBELET}"),
            Some(&t),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["id"], KUBELET);
    assert_eq!(r.body["servicePrincipalType"], "ManagedIdentity");
    let r = env
        .send(
            Method::GET,
            &format!("/v1.0/servicePrincipals(appId='{SP_APP}')"),
            Some(&t),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["id"], SP_OBJ);
    assert_eq!(r.body["appId"], SP_APP);
    let r = env
        .send(
            Method::GET,
            "/v1.0/servicePrincipals(appId='00000000-0000-4000-8000-000000000000')",
            Some(&t),
            None,
        )
        .await;
    assert_eq!((r.status, r.code()), (404, "Request_ResourceNotFound"));
    assert!(r.body["error"]["innerError"]["request-id"].is_string());
    assert!(r.body["error"]["innerError"]["date"].is_string());
    // Still replicating: not there yet.
    let r = env
        .send(Method::GET, &format!("/v1.0/servicePrincipals/{FRESH}"), Some(&t), None)
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(env.sim.call_count("Graph_ServicePrincipals_Get"), 2);
    assert_eq!(env.sim.call_count("Graph_ServicePrincipals_GetByAppId"), 2);
}

#[tokio::test]
async fn graph_auth_and_permissions() {
    let env = env().await;
    let path = format!("/v1.0/servicePrincipals/{KUBELET}");
    let r = env.send(Method::GET, &path, None, None).await;
    assert_eq!((r.status, r.code()), (401, "InvalidAuthenticationToken"));
    let arm = env.arm_token().await;
    let r = env.send(Method::GET, &path, Some(&arm), None).await;
    assert_eq!((r.status, r.code()), (401, "InvalidAuthenticationToken"));
    let reader = env
        .token_for(READER_CLIENT, "https://graph.microsoft.com/.default")
        .await;
    let r = env.send(Method::GET, &path, Some(&reader), None).await;
    assert_eq!((r.status, r.code()), (403, "Authorization_RequestDenied"));
    let r = env
        .send(
            Method::POST,
            &format!("/v1.0/groups/{GROUP_INNER}/members/$ref"),
            Some(&reader),
            Some(member_ref(USER)),
        )
        .await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn add_and_remove_group_members() {
    let env = env().await;
    let t = env.graph_token().await;
    let add = format!("/v1.0/groups/{GROUP_INNER}/members/$ref");
    let r = env.send(Method::POST, &add, Some(&t), Some(member_ref(USER))).await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    assert!(env.sim.group_members(GROUP_INNER).contains(&USER.to_string()));
    let r = env.send(Method::POST, &add, Some(&t), Some(member_ref(USER))).await;
    assert_eq!((r.status, r.code()), (400, "Request_BadRequest"));
    assert_eq!(
        r.message(),
        "One or more added object references already exist for the following modified properties: 'members'."
    );
    let r = env
        .send(
            Method::POST,
            &add,
            Some(&t),
            Some(member_ref("99999999-0000-4000-8000-000000000009")),
        )
        .await;
    assert_eq!(r.status, 404);
    let r = env.send(Method::POST, &add, Some(&t), Some(member_ref(FRESH))).await;
    assert_eq!(r.status, 404, "a not yet replicated member is not found");

    let check = json!({ "groupIds": [GROUP_OUTER, "12345678-0000-4000-8000-000000000000"] });
    let r = env
        .send(
            Method::POST,
            &format!("/v1.0/directoryObjects/{USER}/checkMemberGroups"),
            Some(&t),
            Some(check),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["value"], json!([GROUP_OUTER]), "membership is transitive");

    let remove = format!("/v1.0/groups/{GROUP_INNER}/members/{USER}/$ref");
    assert_eq!(env.send(Method::DELETE, &remove, Some(&t), None).await.status, 204);
    assert!(!env.sim.group_members(GROUP_INNER).contains(&USER.to_string()));
    let r = env.send(Method::DELETE, &remove, Some(&t), None).await;
    assert_eq!((r.status, r.code()), (404, "Request_ResourceNotFound"));
    assert_eq!(env.sim.call_count("Graph_Groups_AddMember"), 4);
    assert_eq!(env.sim.call_count("Graph_Groups_RemoveMember"), 2);
}

#[tokio::test]
async fn check_member_groups_and_transitive_member_of() {
    let env = env_with(|w| w["behaviour"]["pageSize"] = 1.into()).await;
    let t = env.graph_token().await;
    let body = json!({ "groupIds": [GROUP_OUTER, GROUP_INNER] });
    let r = env
        .send(
            Method::POST,
            &format!("/v1.0/servicePrincipals/{KUBELET}/checkMemberGroups"),
            Some(&t),
            Some(body),
        )
        .await;
    assert_eq!(r.status, 200);
    let mut v: Vec<String> = r.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect();
    v.sort();
    assert_eq!(v, [GROUP_OUTER, GROUP_INNER]);

    let mut next = Some(format!("/v1.0/servicePrincipals/{KUBELET}/transitiveMemberOf"));
    let mut groups = Vec::new();
    while let Some(u) = next {
        let r = env.send(Method::GET, &u, Some(&t), None).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        for g in r.body["value"].as_array().unwrap() {
            assert_eq!(g["@odata.type"], "#microsoft.graph.group");
            groups.push(g["displayName"].as_str().unwrap().to_string());
        }
        next = r.body["@odata.nextLink"].as_str().map(str::to_string);
    }
    groups.sort();
    assert_eq!(groups, ["acr-pullers", "aks-kubelets"]);
}

#[tokio::test]
async fn membership_changes_reach_graph_reads_after_the_delay() {
    let env = env_with(|w| w["behaviour"]["groupMembershipGraphDelayMs"] = 300.into()).await;
    let t = env.graph_token().await;
    let r = env
        .send(
            Method::POST,
            &format!("/v1.0/groups/{GROUP_OUTER}/members/$ref"),
            Some(&t),
            Some(member_ref(SP_OBJ)),
        )
        .await;
    assert_eq!(r.status, 204);
    let check = || json!({ "groupIds": [GROUP_OUTER] });
    let path = format!("/v1.0/servicePrincipals/{SP_OBJ}/checkMemberGroups");
    let r = env.send(Method::POST, &path, Some(&t), Some(check())).await;
    assert_eq!(r.body["value"], json!([]));
    tokio::time::sleep(Duration::from_millis(350)).await;
    let r = env.send(Method::POST, &path, Some(&t), Some(check())).await;
    assert_eq!(r.body["value"], json!([GROUP_OUTER]));
}

#[tokio::test]
async fn groups_are_read_by_id_and_replicate_like_other_objects() {
    let env = env().await;
    let t = env.graph_token().await;
    let r = env
        .send(Method::GET, &format!("/v1.0/groups/{GROUP_OUTER}"), Some(&t), None)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["id"], GROUP_OUTER);
    assert_eq!(r.body["displayName"], "acr-pullers");
    assert_eq!(r.body["securityEnabled"], true);
    // A service principal's id is not a group.
    let r = env
        .send(Method::GET, &format!("/v1.0/groups/{KUBELET}"), Some(&t), None)
        .await;
    assert_eq!((r.status, r.code()), (404, "Request_ResourceNotFound"));
    let reader = env
        .token_for(READER_CLIENT, "https://graph.microsoft.com/.default")
        .await;
    let r = env
        .send(Method::GET, &format!("/v1.0/groups/{GROUP_OUTER}"), Some(&reader), None)
        .await;
    assert_eq!((r.status, r.code()), (403, "Authorization_RequestDenied"));
    assert_eq!(env.sim.call_count("Graph_Groups_Get"), 3);
}

#[tokio::test]
async fn a_new_identity_is_unknown_to_graph_until_replicated() {
    let env = env_with(|w| w["behaviour"]["newIdentityReplicationSeconds"] = 0.4.into()).await;
    let t = env.graph_token().await;
    let path = format!(
        "/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/uami-new?api-version=2023-01-31"
    );
    let r = env
        .arm(Method::PUT, &path, Some(json!({ "location": "westeurope" })))
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let pid = r.body["properties"]["principalId"].as_str().unwrap().to_string();
    let add = format!("/v1.0/groups/{GROUP_OUTER}/members/$ref");
    let r = env.send(Method::POST, &add, Some(&t), Some(member_ref(&pid))).await;
    assert_eq!((r.status, r.code()), (404, "Request_ResourceNotFound"));
    let check = format!("/v1.0/servicePrincipals/{pid}/checkMemberGroups");
    let r = env
        .send(
            Method::POST,
            &check,
            Some(&t),
            Some(json!({ "groupIds": [GROUP_OUTER] })),
        )
        .await;
    assert_eq!(r.status, 404);
    tokio::time::sleep(Duration::from_millis(450)).await;
    let r = env.send(Method::POST, &add, Some(&t), Some(member_ref(&pid))).await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let r = env
        .send(
            Method::POST,
            &check,
            Some(&t),
            Some(json!({ "groupIds": [GROUP_OUTER] })),
        )
        .await;
    assert_eq!(r.body["value"], json!([GROUP_OUTER]));
}
