//! `POST /v1/kubelet-identities` end to end: create (or adopt) a user-assigned identity, add it to
//! groups, grant it pull, wait until Graph and ARM show it all.
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

use crate::azure_app::*;
use crate::groups::GROUP;
use crate::helpers::assert_error;

fn identity_id(name: &str) -> String {
    format!(
        "/subscriptions/{SUB1}/resourceGroups/rg-aks-demo/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}"
    )
}

async fn prepare(a: &AzureApp, body: Value) -> reqwest::Response {
    a.app.post_json("/v1/kubelet-identities", &body).await
}

fn polls_of(events: &[Value], condition: &str) -> Vec<Value> {
    events
        .iter()
        .filter(|e| e["type"] == "poll" && e["data"]["condition"] == condition)
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kubelet_identity_is_created_added_to_groups_granted_and_waited_for() {
    let mut world = demo_world();
    world.behaviour.group_membership_graph_delay_ms = 800;
    let a = AzureApp::spawn(world).await;
    let body = json!({
        "identity": identity_id("aks-next-kubelet"),
        "location": "westeurope",
        "groups": [GROUP],
        "registries": ["acrdemo", registry("acrshared")],
        "tags": { "team": "platform" },
    });
    let r = prepare(&a, body.clone()).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert!(r.headers().get("operation-location").is_some());
    let job = a.run(r).await;
    assert_eq!(job["state"], "succeeded", "{job:#}");
    assert_eq!(job["kind"], "kubelet-identity");
    let r = &job["result"];
    assert_eq!(r["identity"]["outcome"], "created");
    assert_eq!(r["identity"]["tags"], json!({ "team": "platform" }));
    let principal = r["identity"]["principalId"].as_str().unwrap().to_string();
    let client = r["identity"]["clientId"].as_str().unwrap().to_string();
    assert!(uuid::Uuid::parse_str(&principal).is_ok() && uuid::Uuid::parse_str(&client).is_ok());
    assert_eq!(r["kubeletIdentity"]["objectId"], principal.as_str());
    assert_eq!(r["kubeletIdentity"]["clientId"], client.as_str());
    let rid = r["identity"]["resourceId"].as_str().unwrap();
    assert!(rid.ends_with("/userAssignedIdentities/aks-next-kubelet"), "{rid}");
    assert_eq!(r["groups"][0]["membership"], "added");
    assert_eq!(r["registries"].as_array().unwrap().len(), 2);
    assert_eq!(
        r["managedIdentityOperator"]["roleDefinitionId"],
        "f1a07417-d97a-45cb-824c-7a7467783830"
    );
    let notes = r["notes"].to_string();
    assert!(notes.contains(&format!("--assign-kubelet-identity {rid}")), "{notes}");
    assert!(notes.contains("Managed Identity Operator"), "{notes}");

    // Azure: the identity exists with its tags, is a member, and holds AcrPull on both registries.
    let world = a.sim.world();
    let uami = world.subscriptions[0].resource_groups[0]
        .user_assigned_identities
        .iter()
        .find(|i| i.name == "aks-next-kubelet")
        .expect("created");
    assert_eq!(uami.principal_id, principal);
    assert_eq!(uami.tags.get("team").map(String::as_str), Some("platform"));
    assert!(a.sim.group_members(GROUP).contains(&principal));
    for reg in ["acrdemo", "acrshared"] {
        let grants = a.assignments_at(&registry(reg), &principal);
        assert_eq!(grants.len(), 1, "{reg}");
        assert_eq!(grants[0].principal_type.as_deref(), Some("ServicePrincipal"));
    }
    // Graph showed the membership only after its delay: the job waited for it, visibly.
    let events = a.app.events(job["id"].as_str().unwrap()).await;
    let polls = polls_of(&events, "groupMembershipVisible");
    assert!(polls.len() >= 2, "{polls:#?}");
    assert_eq!(polls.first().unwrap()["data"]["satisfied"], false);
    assert_eq!(polls.last().unwrap()["data"]["satisfied"], true);
    assert_eq!(
        polls_of(&events, "roleAssignmentReadable").len(),
        2,
        "one assignedTo check per registry"
    );

    // Again: the identity is adopted, nothing is written twice.
    let again = a.run(prepare(&a, body).await).await;
    assert_eq!(again["state"], "succeeded", "{again:#}");
    assert_eq!(again["result"]["identity"]["outcome"], "adopted");
    assert_eq!(again["result"]["identity"]["principalId"], principal.as_str());
    assert_eq!(again["result"]["groups"][0]["membership"], "alreadyMember");
    assert_eq!(a.sim.call_count("UserAssignedIdentities_CreateOrUpdate"), 1);
    assert_eq!(a.sim.call_count("Graph_Groups_AddMember"), 1);
    let created = a
        .sim
        .calls()
        .iter()
        .filter(|c| c.operation == "RoleAssignments_Create" && c.status == 201)
        .count();
    assert_eq!(created, 2);
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_identity_not_yet_known_to_graph_is_waited_for() {
    let mut world = demo_world();
    world.behaviour.new_identity_replication_seconds = 1.5;
    let a = AzureApp::spawn(world).await;
    let r = prepare(
        &a,
        json!({ "identity": identity_id("aks-fresh"), "location": "westeurope", "groups": [GROUP] }),
    )
    .await;
    let id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    let waiting = a.app.wait_for_state(&id, &["waiting"], Duration::from_secs(10)).await;
    assert_eq!(waiting["wait"]["condition"], "identityReplication", "{waiting:#}");
    assert!(waiting["wait"]["message"].as_str().unwrap().contains("aks-fresh"));
    let job = a.app.wait_finished(&id, Duration::from_secs(15)).await;
    assert_eq!(job["state"], "succeeded", "{job:#}");
    assert_eq!(job["attempts"], 0);
    let errors = job["errors"].as_array().unwrap();
    assert!(
        !errors.is_empty()
            && errors
                .iter()
                .all(|e| e["code"] == "Request_ResourceNotFound" && e["class"] == "notYetConsistent"),
        "{job:#}"
    );
    let principal = job["result"]["identity"]["principalId"].as_str().unwrap().to_string();
    assert!(a.sim.group_members(GROUP).contains(&principal));
    assert_eq!(
        a.sim.call_count("UserAssignedIdentities_CreateOrUpdate"),
        1,
        "created once"
    );
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identity_that_never_replicates_fails_naming_the_condition() {
    let mut world = demo_world();
    world.behaviour.new_identity_replication_seconds = 600.0;
    let a = AzureApp::spawn(world).await;
    let job = a
        .run(
            prepare(
                &a,
                json!({ "identity": identity_id("aks-stuck"), "location": "westeurope", "groups": [GROUP] }),
            )
            .await,
        )
        .await;
    assert_eq!(job["state"], "failed", "{job:#}");
    assert_eq!(job["error"]["code"], "MemberNotFound");
    let msg = job["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("identityReplication") && msg.contains("after 4 s"),
        "{msg}"
    );
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubelet_identity_requests_are_validated_and_deduplicated() {
    let a = AzureApp::spawn(demo_world()).await;
    let bad = [
        (
            json!({ "identity": registry("acrdemo") }),
            "InvalidIdentityId",
            "identity",
        ),
        (
            json!({ "identity": identity_id("x1x"), "groups": ["acr-pullers"] }),
            "InvalidGroupId",
            "groups[0]",
        ),
        (
            json!({ "identity": identity_id("x1x"), "registries": ["no/such"] }),
            "InvalidRegistry",
            "registries[0]",
        ),
        (
            json!({ "identity": identity_id("x1x"), "location": "west/europe" }),
            "InvalidLocation",
            "location",
        ),
        (
            json!({ "identity": identity_id("x1x"), "tags": { "a/b": "c" } }),
            "InvalidTags",
            "tags.a/b",
        ),
    ];
    for (body, code, target) in bad {
        let body = assert_error(prepare(&a, body).await, StatusCode::BAD_REQUEST, code).await;
        assert_eq!(body["error"]["target"], target, "{body:#}");
    }
    let r = prepare(&a, json!({ "identity": identity_id("x1x"), "color": "blue" })).await;
    assert_error(r, StatusCode::BAD_REQUEST, "InvalidRequestContent").await;
    assert_eq!(a.app.count_jobs().await, 0);

    // An identity that does not exist, without a location: a clear failure, nothing created.
    let job = a
        .run(prepare(&a, json!({ "identity": identity_id("nowhere") })).await)
        .await;
    assert_eq!(job["state"], "failed", "{job:#}");
    assert_eq!(job["error"]["code"], "LocationRequired");
    assert_eq!(a.sim.call_count("UserAssignedIdentities_CreateOrUpdate"), 0);

    // Identical requests share the unfinished job; an Idempotency-Key replays the first answer.
    let body = json!({ "identity": identity_id("aks-dedup"), "location": "westeurope", "groups": [GROUP, GROUP] });
    let send = |key: &'static str| {
        a.app
            .client
            .post(a.app.url("/v1/kubelet-identities"))
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
    };
    let first = send("k-1").await.unwrap();
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["input"]["groups"], json!([GROUP]), "duplicates dropped");
    let replay = send("k-1").await.unwrap();
    assert_eq!(replay.status(), StatusCode::ACCEPTED, "the first answer, replayed");
    assert_eq!(replay.json::<Value>().await.unwrap()["id"], first["id"]);
    let same = prepare(&a, body.clone()).await;
    if same.status() == StatusCode::OK {
        assert_eq!(same.json::<Value>().await.unwrap()["id"], first["id"]);
    }
    let done = a
        .app
        .wait_finished(first["id"].as_str().unwrap(), Duration::from_secs(15))
        .await;
    assert_eq!(done["state"], "succeeded", "{done:#}");
    a.stop().await;
}
