//! A group can only ever carry pull: a group (or a parent group) that holds anything more than
//! the pull roles at registry scopes is refused before any membership or grant is written.
use serde_json::{Value, json};

use azure_simulator::{Principal, PrincipalKind, RoleAssignmentRecord, World, roles};

use crate::azure_app::*;
use crate::groups::GROUP;

const PARENT: &str = "9a0b0000-0000-4000-8000-0000000000aa";

fn grant(world: &mut World, name: &str, scope: &str, role: &str, principal: &str) {
    world
        .role_assignments
        .push(RoleAssignmentRecord::new(name, scope, role, principal));
}

fn group(object_id: &str, name: &str, members: &[&str]) -> Principal {
    let mut g = demo_world()
        .directory
        .into_iter()
        .find(|p| p.object_id == GROUP)
        .expect("the demo world's group");
    g.object_id = object_id.into();
    g.display_name = name.into();
    g.members = members.iter().map(|m| m.to_string()).collect();
    assert_eq!(g.kind, PrincipalKind::Group);
    g
}

async fn attach_via_group(a: &AzureApp) -> Value {
    a.run(
        a.app
            .post_json(
                "/v1/attachments",
                &json!({ "cluster": cluster("aks-demo"), "registry": registry("acrdemo"), "group": GROUP }),
            )
            .await,
    )
    .await
}

/// Nothing was written: no membership, no role assignment created.
fn assert_nothing_written(a: &AzureApp) {
    assert!(
        !a.sim.group_members(GROUP).iter().any(|m| m == KUBELET),
        "the kubelet identity was made a member"
    );
    let writes: Vec<_> = a
        .sim
        .calls()
        .into_iter()
        .filter(|c| c.operation == "RoleAssignments_Create" || c.operation == "Graph_Groups_AddMember")
        .collect();
    assert!(writes.is_empty(), "writes were made: {writes:?}");
    // And ARM, asked as any client would, shows no Owner reaching the kubelet identity.
    assert!(
        a.sim
            .role_assignments()
            .iter()
            .all(|r| !r.principal_id.eq_ignore_ascii_case(KUBELET) || r.role_definition_id.contains(ACR_PULL)),
    );
}

fn refusal(job: &Value) -> String {
    assert_eq!(job["state"], "failed", "{job:#}");
    assert_eq!(job["error"]["code"], "GroupGrantsMoreThanPull", "{job:#}");
    job["error"]["message"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_holding_owner_on_a_subscription_is_refused_before_anything_is_written() {
    let mut world = demo_world();
    grant(
        &mut world,
        "0d0e0000-0000-4000-8000-000000000001",
        &format!("/subscriptions/{SUB1}"),
        roles::OWNER,
        GROUP,
    );
    let a = AzureApp::spawn(world).await;
    let job = attach_via_group(&a).await;
    let msg = refusal(&job);
    assert!(
        msg.contains(roles::OWNER) && msg.contains(&format!("/subscriptions/{SUB1}")),
        "{msg}"
    );
    assert_nothing_written(&a);
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_inheriting_owner_from_a_parent_group_in_another_subscription_is_refused() {
    let mut world = demo_world();
    world.directory.push(group(PARENT, "platform-admins", &[GROUP]));
    grant(
        &mut world,
        "0d0e0000-0000-4000-8000-000000000002",
        &format!("/subscriptions/{SUB2}"),
        roles::OWNER,
        PARENT,
    );
    let a = AzureApp::spawn(world).await;
    let msg = refusal(&attach_via_group(&a).await);
    assert!(msg.contains(PARENT) && msg.contains(roles::OWNER), "{msg}");
    assert_nothing_written(&a);
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_role_above_the_registry_is_more_than_pull() {
    // AcrPull on a resource group reaches every registry in it, including future ones.
    let mut world = demo_world();
    grant(
        &mut world,
        "0d0e0000-0000-4000-8000-000000000003",
        &format!("/subscriptions/{SUB1}/resourceGroups/rg-aks-demo"),
        roles::ACR_PULL,
        GROUP,
    );
    let a = AzureApp::spawn(world).await;
    let msg = refusal(&attach_via_group(&a).await);
    assert!(msg.contains("/resourceGroups/rg-aks-demo'"), "{msg}");
    assert_nothing_written(&a);
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_assignable_group_with_a_directory_role_is_refused() {
    let mut world = demo_world();
    let g = world.directory.iter_mut().find(|p| p.object_id == GROUP).unwrap();
    g.is_assignable_to_role = true;
    g.directory_roles = vec!["Global Administrator".into()];
    let a = AzureApp::spawn(world).await;
    let msg = refusal(&attach_via_group(&a).await);
    assert!(
        msg.contains("role-assignable") && msg.contains("Global Administrator"),
        "{msg}"
    );
    assert_nothing_written(&a);
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kubelet_identity_is_not_added_to_a_group_that_grants_more_than_pull() {
    let mut world = demo_world();
    grant(
        &mut world,
        "0d0e0000-0000-4000-8000-000000000004",
        &format!("/subscriptions/{SUB1}/resourceGroups/rg-aks-demo"),
        roles::CONTRIBUTOR,
        GROUP,
    );
    let a = AzureApp::spawn(world).await;
    let identity = format!(
        "/subscriptions/{SUB1}/resourceGroups/rg-aks-demo/providers/Microsoft.ManagedIdentity/userAssignedIdentities/aks-new"
    );
    let job = a
        .run(
            a.app
                .post_json(
                    "/v1/kubelet-identities",
                    &json!({ "identity": identity, "location": "westeurope", "groups": [GROUP] }),
                )
                .await,
        )
        .await;
    let msg = refusal(&job);
    assert!(msg.contains(roles::CONTRIBUTOR), "{msg}");
    assert!(a.sim.group_members(GROUP).is_empty(), "no member added");
    assert_eq!(a.sim.call_count("Graph_Groups_AddMember"), 0);
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_holding_only_pull_on_registries_is_used() {
    let mut world = demo_world();
    grant(
        &mut world,
        "0d0e0000-0000-4000-8000-000000000005",
        &registry("acrshared"),
        roles::ACR_PULL,
        GROUP,
    );
    let a = AzureApp::spawn(world).await;
    let job = attach_via_group(&a).await;
    assert_eq!(job["state"], "succeeded", "{job:#}");
    assert!(a.sim.group_members(GROUP).iter().any(|m| m == KUBELET));
    a.stop().await;
}
