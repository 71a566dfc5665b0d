use std::time::Duration;

use azure_simulator::RoleAssignmentRecord;
use reqwest::Method;
use serde_json::json;

use crate::common::*;

const N1: &str = "11111111-0000-4000-8000-000000000001";
const N2: &str = "11111111-0000-4000-8000-000000000002";
const N3: &str = "11111111-0000-4000-8000-000000000003";

fn ra_path(scope: &str, name: &str) -> String {
    format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{name}?api-version=2022-04-01")
}

#[tokio::test]
async fn create_then_idempotent_put_then_conflicts() {
    let env = env().await;
    let scope = registry_id("acrOne");
    let r = env
        .put_assignment(&scope, N1, ACR_PULL, KUBELET, Some("ServicePrincipal"))
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["name"], N1);
    assert_eq!(r.body["type"], "Microsoft.Authorization/roleAssignments");
    assert_eq!(
        r.body["id"],
        format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{N1}")
    );
    let p = &r.body["properties"];
    assert_eq!(p["roleDefinitionId"], role_id(ACR_PULL));
    assert_eq!(p["principalId"], KUBELET);
    assert_eq!(p["principalType"], "ServicePrincipal");
    assert_eq!(p["scope"], scope);
    assert_eq!(p["createdBy"], CALLER_OID);
    assert_eq!(p["updatedBy"], CALLER_OID);
    assert!(p["createdOn"].is_string() && p["updatedOn"].is_string());
    assert!(p["condition"].is_null() && p["conditionVersion"].is_null() && p["description"].is_null());

    let r = env
        .put_assignment(&scope, N1, ACR_PULL, KUBELET, Some("ServicePrincipal"))
        .await;
    assert_eq!(r.status, 200);

    let r = env
        .put_assignment(&scope, N2, ACR_PULL, KUBELET, Some("ServicePrincipal"))
        .await;
    assert_eq!((r.status, r.code()), (409, "RoleAssignmentExists"));
    assert_eq!(
        r.message(),
        format!(
            "The role assignment already exists. The ID of the existing role assignment is {}.",
            N1.replace('-', "")
        )
    );

    let r = env.put_assignment(&scope, N1, ACR_PULL, USER, None).await;
    assert_eq!((r.status, r.code()), (400, "RoleAssignmentUpdateNotPermitted"));
    assert_eq!(
        r.message(),
        "Tenant ID, application ID, principal ID, and scope are not allowed to be updated."
    );
    // Names are tenant-wide: the same name at another scope is an update attempt too.
    let r = env
        .put_assignment(&registry_id("acrabac"), N1, ACR_PULL, KUBELET, None)
        .await;
    assert_eq!(r.code(), "RoleAssignmentUpdateNotPermitted");

    assert_eq!(env.sim.role_assignments().len(), 1);
    assert_eq!(env.sim.call_count("RoleAssignments_Create"), 5);
}

#[tokio::test]
async fn seeded_random_name_assignment_conflicts_with_deterministic_put() {
    let env = env().await;
    let scope = registry_id("acrOne");
    env.sim
        .insert_role_assignment(RoleAssignmentRecord::new(N3, &scope, ACR_PULL, KUBELET));
    let r = env
        .put_assignment(&scope, N1, ACR_PULL, KUBELET, Some("ServicePrincipal"))
        .await;
    assert_eq!(r.status, 409);
    assert!(r.message().ends_with(&format!("{}.", N3.replace('-', ""))));
    let got = env.arm(Method::GET, &ra_path(&scope, N3), None).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body["properties"]["principalType"], "ServicePrincipal");
}

#[tokio::test]
async fn request_validation_errors() {
    let env = env().await;
    let scope = registry_id("acrOne");
    let r = env.put_assignment(&scope, "not-a-guid", ACR_PULL, KUBELET, None).await;
    assert_eq!((r.status, r.code()), (400, "InvalidRoleAssignmentId"));
    let r = env
        .put_assignment(&scope, N1, "00000000-0000-4000-8000-000000000000", KUBELET, None)
        .await;
    assert_eq!((r.status, r.code()), (400, "RoleDefinitionDoesNotExist"));
    let r = env
        .put_assignment(&scope, N1, ACR_PULL, "99999999-0000-4000-8000-000000000009", None)
        .await;
    assert_eq!((r.status, r.code()), (400, "PrincipalNotFound"));
    assert!(
        r.message()
            .contains(&format!("does not exist in the directory {TENANT}")),
        "{}",
        r.message()
    );
    assert!(
        r.message().ends_with("See https://aka.ms/docs-principaltype"),
        "{}",
        r.message()
    );
    let r = env.put_assignment(&scope, N1, ACR_PULL, KUBELET, Some("User")).await;
    assert_eq!((r.status, r.code()), (400, "UnmatchedPrincipalType"));
    let r = env
        .arm(
            Method::PUT,
            &ra_path(&scope, N1),
            Some(json!({ "properties": { "principalId": KUBELET } })),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "InvalidRequestContent"));
    let r = env
        .put_assignment(&registry_id("acrMissing"), N1, ACR_PULL, KUBELET, None)
        .await;
    assert_eq!((r.status, r.code()), (404, "ResourceNotFound"));
    assert!(env.sim.role_assignments().is_empty());
}

#[tokio::test]
async fn principal_not_found_window_without_principal_type() {
    let env = env().await;
    let scope = registry_id("acrOne");
    let r = env.put_assignment(&scope, N1, ACR_PULL, FRESH, None).await;
    assert_eq!((r.status, r.code()), (400, "PrincipalNotFound"));
    let r = env
        .put_assignment(&scope, N1, ACR_PULL, FRESH, Some("ServicePrincipal"))
        .await;
    assert_eq!(r.status, 201);
    tokio::time::sleep(Duration::from_millis(550)).await;
    let r = env
        .put_assignment(&registry_id("acrabac"), N2, ACR_PULL, FRESH, None)
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["properties"]["principalType"], "ServicePrincipal");
}

#[tokio::test]
async fn principal_not_found_window_always_mode() {
    let env = env_with(|w| w["behaviour"]["principalNotFound"] = "always".into()).await;
    let scope = registry_id("acrOne");
    let r = env
        .put_assignment(&scope, N1, ACR_PULL, FRESH, Some("ServicePrincipal"))
        .await;
    assert_eq!((r.status, r.code()), (400, "PrincipalNotFound"));
    tokio::time::sleep(Duration::from_millis(550)).await;
    let r = env
        .put_assignment(&scope, N1, ACR_PULL, FRESH, Some("ServicePrincipal"))
        .await;
    assert_eq!(r.status, 201);
}

#[tokio::test]
async fn read_after_write_lag_hides_new_and_keeps_deleted_assignments() {
    let env = env_with(|w| w["behaviour"]["readAfterWriteLagMs"] = 300.into()).await;
    let scope = registry_id("acrOne");
    assert_eq!(
        env.put_assignment(&scope, N1, ACR_PULL, KUBELET, Some("ServicePrincipal"))
            .await
            .status,
        201
    );
    let r = env.arm(Method::GET, &ra_path(&scope, N1), None).await;
    assert_eq!((r.status, r.code()), (404, "RoleAssignmentNotFound"));
    assert!(env.list_assignments(&scope, None).await.is_empty());
    assert_eq!(env.sim.role_assignments().len(), 1, "the tenant already has it");
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(env.arm(Method::GET, &ra_path(&scope, N1), None).await.status, 200);
    assert_eq!(env.list_assignments(&scope, None).await.len(), 1);

    let r = env.arm(Method::DELETE, &ra_path(&scope, N1), None).await;
    assert_eq!(r.status, 200);
    assert!(env.sim.role_assignments().is_empty());
    assert_eq!(
        env.list_assignments(&scope, None).await.len(),
        1,
        "deletes linger in lists"
    );
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert!(env.list_assignments(&scope, None).await.is_empty());
}

#[tokio::test]
async fn delete_returns_body_then_no_content() {
    let env = env().await;
    let scope = registry_id("acrOne");
    env.put_assignment(&scope, N1, ACR_PULL, KUBELET, None).await;
    let r = env.arm(Method::DELETE, &ra_path(&scope, N1), None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["name"], N1);
    assert_eq!(r.body["properties"]["roleDefinitionId"], role_id(ACR_PULL));
    let r = env.arm(Method::DELETE, &ra_path(&scope, N1), None).await;
    assert_eq!(r.status, 204);
    assert!(r.body.is_null());
    let r = env.arm(Method::GET, &ra_path(&scope, N1), None).await;
    assert_eq!(r.code(), "RoleAssignmentNotFound");
    assert_eq!(env.sim.call_count("RoleAssignments_Delete"), 2);
}

const A1: &str = "a1a1a1a1-0000-4000-8000-000000000001";
const A2: &str = "a2a2a2a2-0000-4000-8000-000000000002";
const A3: &str = "a3a3a3a3-0000-4000-8000-000000000003";
const A4: &str = "a4a4a4a4-0000-4000-8000-000000000004";
const A5: &str = "a5a5a5a5-0000-4000-8000-000000000005";
const A6: &str = "a6a6a6a6-0000-4000-8000-000000000006";

async fn seed_filter_fixture(env: &Env) {
    let sub = format!("/subscriptions/{SUB}");
    let rg = format!("{sub}/resourceGroups/{RG}");
    for (name, scope, role, principal) in [
        (A1, registry_id("acrOne"), ACR_PULL, KUBELET),
        (A2, rg.clone(), READER_ROLE, KUBELET),
        (A3, sub.clone(), READER_ROLE, USER),
        (A4, registry_id("acrOne"), ACR_PULL, GROUP_OUTER),
        (A5, registry_id("acrabac"), ACR_PULL, KUBELET),
        (A6, format!("{sub}/resourceGroups/rg-many"), READER_ROLE, GROUP_INNER),
    ] {
        let r = env.put_assignment(&scope, name, role, principal, None).await;
        assert_eq!(r.status, 201, "{name}: {:?}", r.body);
    }
}

#[tokio::test]
async fn list_filters_have_arm_semantics() {
    let env = env().await;
    seed_filter_fixture(&env).await;
    let acr = registry_id("acrOne");
    let rg = format!("/subscriptions/{SUB}/resourceGroups/{RG}");
    let sub = format!("/subscriptions/{SUB}");

    // No filter: at, above and below.
    assert_eq!(names(&env.list_assignments(&acr, None).await), [A1, A2, A3, A4]);
    assert_eq!(names(&env.list_assignments(&rg, None).await), [A1, A2, A3, A4, A5]);
    // atScope(): at or above only.
    assert_eq!(
        names(&env.list_assignments(&acr, Some("atScope()")).await),
        [A1, A2, A3, A4]
    );
    assert_eq!(names(&env.list_assignments(&rg, Some("atScope()")).await), [A2, A3]);
    // principalId eq: exact principal, at/above/below, no group expansion.
    let f = format!("principalId eq '{KUBELET}'");
    assert_eq!(names(&env.list_assignments(&rg, Some(&f)).await), [A1, A2, A5]);
    // assignedTo(): includes transitive group grants.
    let f = format!("assignedTo('{KUBELET}')");
    assert_eq!(names(&env.list_assignments(&rg, Some(&f)).await), [A1, A2, A4, A5]);
    assert_eq!(names(&env.list_assignments(&sub, Some(&f)).await), [A1, A2, A4, A5, A6]);
    let f = format!("atScope() and assignedTo('{KUBELET}')");
    assert_eq!(names(&env.list_assignments(&acr, Some(&f)).await), [A1, A2, A4]);
    // Entries carry the full role definition id and the resolved principal type.
    let all = env.list_assignments(&acr, None).await;
    let a4 = all.iter().find(|a| a["name"] == A4).unwrap();
    assert_eq!(a4["properties"]["principalType"], "Group");
    assert_eq!(a4["properties"]["roleDefinitionId"], role_id(ACR_PULL));
}

#[tokio::test]
async fn list_filter_errors_and_plus_encoding() {
    let env = env().await;
    seed_filter_fixture(&env).await;
    let acr = registry_id("acrOne");
    let base = format!("{acr}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01");
    let r = env
        .arm(
            Method::GET,
            &format!("{base}&$filter=assignedTo('{GROUP_OUTER}')"),
            None,
        )
        .await;
    assert_eq!(r.status, 400);
    let r = env
        .arm(Method::GET, &format!("{base}&$filter=roleName+eq+'x'"), None)
        .await;
    assert_eq!((r.status, r.code()), (400, "UnsupportedQuery"));
    let r = env
        .arm(Method::GET, &format!("{base}&$filter=principalId+eq+'{USER}'"), None)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(names(r.body["value"].as_array().unwrap()), [A3]);
}

#[tokio::test]
async fn lists_page_with_next_links_that_keep_the_filter() {
    let env = env_with(|w| w["behaviour"]["pageSize"] = 2.into()).await;
    seed_filter_fixture(&env).await;
    let sub = format!("/subscriptions/{SUB}");
    let f = format!("assignedTo('{KUBELET}')");
    let first = env
        .arm(
            Method::GET,
            &format!(
                "{sub}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01&$filter={}",
                f.replace('\'', "%27")
            ),
            None,
        )
        .await;
    let next = first.body["nextLink"].as_str().unwrap();
    assert!(
        next.starts_with(&format!(
            "{}{sub}/providers/Microsoft.Authorization/roleAssignments?",
            env.sim.base_url()
        )),
        "{next}"
    );
    assert!(
        next.contains("%24filter=assignedTo") && next.contains("%24skipToken=2"),
        "{next}"
    );
    assert_eq!(names(&env.list_assignments(&sub, Some(&f)).await), [A1, A2, A4, A5, A6]);
    assert_eq!(env.list_assignments(&sub, None).await.len(), 6);
}

#[tokio::test]
async fn group_changes_reach_arm_after_the_configured_delay() {
    let env = env_with(|w| w["behaviour"]["groupMembershipArmDelayMs"] = 300.into()).await;
    let acr = registry_id("acrOne");
    env.put_assignment(&acr, A4, ACR_PULL, GROUP_OUTER, None).await;
    let gt = env.graph_token().await;
    let r = env
        .send(
            Method::POST,
            &format!("/v1.0/groups/{GROUP_INNER}/members/$ref"),
            Some(&gt),
            Some(json!({ "@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{KUBELET_NEW}") })),
        )
        .await;
    assert_eq!(r.status, 204);
    let f = format!("assignedTo('{KUBELET_NEW}')");
    assert!(env.list_assignments(&acr, Some(&f)).await.is_empty());
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(names(&env.list_assignments(&acr, Some(&f)).await), [A4]);
}

#[tokio::test]
async fn role_definitions_get_and_list_by_name() {
    let env = env().await;
    let acr = registry_id("acrOne");
    let r = env.arm(Method::GET, &format!("{acr}/providers/Microsoft.Authorization/roleDefinitions?api-version=2022-04-01&$filter=roleName%20eq%20%27acrpull%27"), None).await;
    assert_eq!(r.status, 200);
    let v = r.body["value"].as_array().unwrap();
    assert_eq!(v.len(), 1);
    assert_eq!(v[0]["id"], role_id(ACR_PULL));
    assert_eq!(v[0]["properties"]["roleName"], "AcrPull");
    assert_eq!(v[0]["properties"]["type"], "BuiltInRole");
    assert_eq!(
        v[0]["properties"]["permissions"][0]["actions"][0],
        "Microsoft.ContainerRegistry/registries/pull/read"
    );
    let r = env.arm(Method::GET, "/providers/Microsoft.Authorization/roleDefinitions/b93aa761-3e63-49ed-ac28-beffa264f7ac?api-version=2022-04-01", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body["id"],
        "/providers/Microsoft.Authorization/roleDefinitions/b93aa761-3e63-49ed-ac28-beffa264f7ac"
    );
    assert_eq!(
        r.body["properties"]["permissions"][0]["dataActions"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let r = env.arm(Method::GET, &format!("/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/00000000-0000-4000-8000-000000000000?api-version=2022-04-01"), None).await;
    assert_eq!((r.status, r.code()), (404, "RoleDefinitionDoesNotExist"));
    assert_eq!(env.sim.call_count("RoleDefinitions_GetById"), 1);
}
