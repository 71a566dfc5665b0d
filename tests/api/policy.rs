//! The authorisation policy end to end: allows and denies by scope, jobs belong to their
//! requesters, idempotency keys are the caller's own, reloads, and the audit trail (including
//! the database refusing to rewrite it).
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

use crate::azure_app::*;
use crate::helpers::assert_error;
use crate::secure::*;

async fn job_of(r: reqwest::Response) -> Value {
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert!(
        status == StatusCode::ACCEPTED || status == StatusCode::OK,
        "{status}: {v:#}"
    );
    v
}

async fn forbidden(r: reqwest::Response) -> String {
    let body = assert_error(r, StatusCode::FORBIDDEN, "Forbidden").await;
    body["error"]["message"].as_str().unwrap().to_string()
}

async fn audit(a: &AzureApp, query: &str) -> Vec<Value> {
    let r = a.get_as(&a.token_for(AUDITOR), &format!("/v1/audit{query}")).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    v["value"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_policy_allows_and_denies_by_scope_and_audits_both() {
    let a = secure_app(&test_policy(), |_| {}).await;
    let portal = a.token_for(PORTAL);

    // Inside the rule: accepted.
    let job = job_of(a.attach_as(&portal, &cluster("aks-demo"), &registry("acrdemo")).await).await;

    // Reaching into another subscription, for the cluster or the registry: refused, no job.
    let foreign_cluster = cluster("aks-demo").replace(SUB1, SUB2);
    let msg = forbidden(a.attach_as(&portal, &foreign_cluster, &registry("acrdemo")).await).await;
    assert!(msg.contains("cluster"), "{msg}");
    let msg = forbidden(a.attach_as(&portal, &cluster("aks-demo"), &registry("acrshared")).await).await;
    assert!(msg.contains("registry"), "{msg}");
    // A bare name could resolve anywhere: a rule limited to some registries asks for the id.
    let msg = forbidden(a.attach_as(&portal, &cluster("aks-demo"), "acrdemo").await).await;
    assert!(msg.contains("resource id"), "{msg}");
    // Groups the rule does not list.
    let r = a
        .post_as(
            &portal,
            "/v1/attachments",
            &json!({ "cluster": cluster("aks-demo"), "registry": registry("acrdemo"), "group": "6b0c0000-0000-4000-8000-000000000009" }),
        )
        .await;
    assert!(forbidden(r).await.contains("group"));
    // Kubelet identities outside the rule's resource group.
    let identity = format!(
        "/subscriptions/{SUB1}/resourceGroups/rg-other/providers/Microsoft.ManagedIdentity/userAssignedIdentities/aks-x"
    );
    let r = a
        .post_as(
            &portal,
            "/v1/kubelet-identities",
            &json!({ "identity": identity, "location": "westeurope" }),
        )
        .await;
    assert!(forbidden(r).await.contains("identity"));
    // A caller whose rule only reads.
    let dashboard = a.token_for(DASHBOARD);
    assert!(
        forbidden(
            a.attach_as(&dashboard, &cluster("aks-demo"), &registry("acrdemo"))
                .await
        )
        .await
        .contains("does not cover action attach")
    );
    assert_eq!(a.app.count_jobs().await, 1, "refusals write no job");

    // The trail: the allowed attach with its rule and job, and each refusal with its reason.
    let records = audit(&a, "").await;
    assert_eq!(records.len(), 7, "{records:#?}");
    let allowed: Vec<&Value> = records.iter().filter(|r| r["decision"] == "allowed").collect();
    assert_eq!(allowed.len(), 1);
    assert_eq!(allowed[0]["rule"], "portal");
    assert_eq!(allowed[0]["jobId"], job["id"]);
    assert_eq!(allowed[0]["caller"], format!("entra:{PORTAL_OID}"));
    assert_eq!(allowed[0]["callerInfo"]["roles"], json!(["Attachments.ReadWrite"]));
    assert_eq!(allowed[0]["resources"]["cluster"], cluster("aks-demo"));
    assert_eq!(allowed[0]["status"], 202);
    let denied = audit(&a, "?decision=denied").await;
    assert_eq!(denied.len(), 6);
    assert!(
        denied
            .iter()
            .all(|r| r["status"] == 403 && r["rule"].is_null() && r["jobId"].is_null())
    );
    assert!(
        denied
            .iter()
            .any(|r| r["caller"] == format!("entra:{}", "da5b0a4d-0000-4000-8000-0000000000a1"))
    );
    // Invalid requests are recorded too.
    let r = a.attach_as(&portal, "not-an-id", &registry("acrdemo")).await;
    assert_eq!(r.status(), 400);
    let invalid = audit(&a, "?limit=1").await;
    assert_eq!(invalid[0]["status"], 400);
    assert!(invalid[0]["reason"].as_str().unwrap().contains("invalid request"));

    // Paging.
    let r = a.get_as(&a.token_for(AUDITOR), "/v1/audit?limit=4").await;
    let page: Value = r.json().await.unwrap();
    assert_eq!(page["value"].as_array().unwrap().len(), 4);
    let next = page["nextLink"].as_str().unwrap().to_string();
    let rest: Value = a.get_as(&a.token_for(AUDITOR), &next).await.json().await.unwrap();
    assert_eq!(rest["value"].as_array().unwrap().len(), 4);
    assert!(rest["nextLink"].is_null());
    // Only auditors read it.
    forbidden(a.get_as(&portal, "/v1/audit").await).await;

    // The database itself refuses to rewrite or erase the trail, whoever asks.
    for sql in [
        "UPDATE audit_record SET decision = 'allowed'",
        "DELETE FROM audit_record",
        "TRUNCATE audit_record",
    ] {
        let e = sqlx::query(sql).execute(&a.app.pool).await.unwrap_err();
        assert!(e.to_string().contains("append-only"), "{sql}: {e}");
    }
    assert_eq!(audit(&a, "?limit=500").await.len(), 8);
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_belong_to_their_requesters() {
    let a = secure_app(&test_policy(), |_| {}).await;
    let portal = a.token_for(PORTAL);
    let dashboard = a.token_for(DASHBOARD);
    let auditor = a.token_for(AUDITOR);
    let job = job_of(a.attach_as(&portal, &cluster("aks-demo"), &registry("acrdemo")).await).await;
    let id = job["id"].as_str().unwrap();

    assert_eq!(a.get_as(&portal, &format!("/v1/jobs/{id}")).await.status(), 200);
    assert_eq!(a.get_as(&portal, &format!("/v1/jobs/{id}/events")).await.status(), 200);
    // Another reader does not see it at all.
    assert_error(
        a.get_as(&dashboard, &format!("/v1/jobs/{id}")).await,
        StatusCode::NOT_FOUND,
        "JobNotFound",
    )
    .await;
    assert_error(
        a.get_as(&dashboard, &format!("/v1/jobs/{id}/events")).await,
        StatusCode::NOT_FOUND,
        "JobNotFound",
    )
    .await;
    let list: Value = a.get_as(&dashboard, "/v1/jobs").await.json().await.unwrap();
    assert_eq!(list["value"], json!([]));
    let list: Value = a.get_as(&portal, "/v1/jobs").await.json().await.unwrap();
    assert_eq!(list["value"].as_array().unwrap().len(), 1);
    // readAllJobs sees everything.
    assert_eq!(a.get_as(&auditor, &format!("/v1/jobs/{id}")).await.status(), 200);
    let list: Value = a.get_as(&auditor, "/v1/jobs").await.json().await.unwrap();
    assert_eq!(list["value"].as_array().unwrap().len(), 1);

    // Cancel: not without the action; not someone else's job (as if it did not exist).
    forbidden(
        a.post_as(&dashboard, &format!("/v1/jobs/{id}/cancel"), &json!({}))
            .await,
    )
    .await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_acr-attach"))
        .args(["keys", "create", "--name", "ci"])
        .env("DATABASE_URL", &a.app.db.url)
        .output()
        .unwrap();
    let ci = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_error(
        a.post_as(&ci, &format!("/v1/jobs/{id}/cancel"), &json!({})).await,
        StatusCode::NOT_FOUND,
        "JobNotFound",
    )
    .await;
    let denied = audit(&a, "?action=cancel&decision=denied").await;
    assert_eq!(denied.len(), 2, "{denied:#?}");
    assert!(denied.iter().any(|r| r["caller"] == "key:ci" && r["status"] == 404));

    // Idempotency keys are the caller's own: the same key from another caller is another request.
    let key = uuid::Uuid::new_v4().to_string();
    let with_key = |credential: &str, registry: String| {
        a.app
            .client
            .post(a.app.url("/v1/attachments"))
            .bearer_auth(credential)
            .header("Idempotency-Key", &key)
            .json(&json!({ "cluster": cluster("aks-demo"), "registry": registry }))
            .send()
    };
    let first = job_of(with_key(&portal, registry("acrabac")).await.unwrap()).await;
    let other = with_key(&ci, registry("acrshared")).await.unwrap();
    assert_eq!(
        other.status(),
        StatusCode::ACCEPTED,
        "not the portal's job, not a conflict"
    );
    let other = job_of(other).await;
    assert_ne!(first["id"], other["id"]);
    let again = job_of(with_key(&ci, registry("acrshared")).await.unwrap()).await;
    assert_eq!(again["id"], other["id"], "a repeat by the same caller replays");
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identical_request_shares_the_job_and_both_callers_own_it() {
    let mut policy = test_policy();
    // The dashboard may attach too, for this test.
    policy["rules"][1]["actions"] = json!(["attach", "read"]);
    policy["rules"][1]["clusters"] = json!(["*"]);
    policy["rules"][1]["registries"] = json!(["*"]);
    // Slow ARM calls keep the first job unfinished while the second request arrives.
    let mut world = demo_world();
    world.behaviour.latency_ms = 400;
    let a = secure_app_in(world, &policy, |_| {}).await;
    let (portal, dashboard) = (a.token_for(PORTAL), a.token_for(DASHBOARD));
    let first = a.attach_as(&portal, &cluster("aks-demo"), &registry("acrdemo")).await;
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    let first = job_of(first).await;
    let second = a
        .attach_as(&dashboard, &cluster("aks-demo"), &registry("acrdemo"))
        .await;
    assert_eq!(second.status(), StatusCode::OK, "the unfinished identical job");
    let second = job_of(second).await;
    assert_eq!(first["id"], second["id"]);
    let id = first["id"].as_str().unwrap();
    for who in [&portal, &dashboard] {
        assert_eq!(a.get_as(who, &format!("/v1/jobs/{id}")).await.status(), 200);
        let mine: Value = a.get_as(who, "/v1/jobs").await.json().await.unwrap();
        assert_eq!(mine["value"][0]["id"], first["id"]);
    }
    // Both requests are in the trail, with the one job.
    let records = audit(&a, &format!("?jobId={id}")).await;
    assert_eq!(records.len(), 2);
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_policy_applies_without_restart_and_a_broken_one_is_ignored() {
    let path = write_policy(&test_policy());
    let p = path.clone();
    let a = secure_app(&test_policy(), move |c| c.auth.policy = Some(p)).await;
    let dashboard = a.token_for(DASHBOARD);
    forbidden(
        a.attach_as(&dashboard, &cluster("aks-demo"), &registry("acrdemo"))
            .await,
    )
    .await;

    let mut widened = test_policy();
    widened["rules"][1]["actions"] = json!(["attach", "read"]);
    widened["rules"][1]["clusters"] = json!([format!("/subscriptions/{SUB1}")]);
    widened["rules"][1]["registries"] = json!([format!("/subscriptions/{SUB1}")]);
    std::fs::write(&path, serde_json::to_vec(&widened).unwrap()).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = a
            .attach_as(&dashboard, &cluster("aks-demo"), &registry("acrdemo"))
            .await;
        if r.status() == StatusCode::ACCEPTED || r.status() == StatusCode::OK {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the new policy was not picked up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A broken edit keeps the previous policy.
    std::fs::write(&path, b"{ \"rules\": [ { \"name\": \"oops\" ").unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let r = a
        .attach_as(&dashboard, &cluster("aks-demo"), &registry("acrabac"))
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED, "still the widened policy");
    a.stop().await;
}
