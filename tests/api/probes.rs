//! `POST /v1/checks` with `"probe": true`: a pod in the (simulated) cluster pulls the image
//! through AKS run-command; each outcome becomes a finding, and a restart while the command
//! runs follows the same command instead of starting a second pod.
use std::time::Duration;

use chrono::Utc;
use serde_json::{Value, json};

use azure_simulator::{RoleAssignmentRecord, World};

use crate::azure_app::*;
use crate::helpers::TestApp;

const IMAGE: &str = "platform/base:v1";

/// The demo world with a quick run-command, and `acrshared` granted to the kubelet identity
/// long ago unless `granted` is false.
fn world(granted: bool, edit: impl FnOnce(&mut World)) -> World {
    let mut w = demo_world();
    w.behaviour.run_command_seconds = 0.3;
    if granted {
        let mut rec = RoleAssignmentRecord::new(
            "9b0be000-0000-4000-8000-000000000001",
            &registry("acrshared"),
            ACR_PULL,
            KUBELET,
        );
        rec.principal_type = Some("ServicePrincipal".into());
        rec.created_on = Some(Utc::now() - chrono::Duration::days(2));
        w.role_assignments.push(rec);
    }
    edit(&mut w);
    w
}

fn registry_mut<'w>(w: &'w mut World, name: &str) -> &'w mut azure_simulator::Registry {
    w.subscriptions
        .iter_mut()
        .flat_map(|s| s.resource_groups.iter_mut())
        .flat_map(|g| g.registries.iter_mut())
        .find(|r| r.name == name)
        .unwrap()
}

async fn probe(a: &AzureApp, image: &str) -> Value {
    let r = a
        .app
        .post_json(
            "/v1/checks",
            &json!({ "cluster": cluster("aks-demo"), "registry": registry("acrshared"), "probe": true, "image": image }),
        )
        .await;
    let job = a.run(r).await;
    assert_eq!(job["state"], "succeeded", "{job:#}");
    job["result"].clone()
}

fn finding<'a>(r: &'a Value, code: &str) -> &'a Value {
    r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == code)
        .unwrap_or_else(|| panic!("no {code} in {r:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_granted_cluster_pulls_the_image_and_the_pod_is_acr_attach_s_own() {
    let a = AzureApp::spawn(world(true, |_| {})).await;
    let r = probe(&a, IMAGE).await;
    assert_eq!(r["verdict"], "canPull", "{r:#}");
    let f = finding(&r, "ProbePulled");
    assert_eq!(f["evidence"]["image"], "acrshared.azurecr.io/platform/base:v1");
    let commands = a.sim.run_commands();
    assert_eq!(commands.len(), 1);
    assert!(
        commands[0].command.starts_with("kubectl run acr-attach-probe-"),
        "{}",
        commands[0].command
    );
    assert!(
        commands[0]
            .command
            .contains("--image=acrshared.azurecr.io/platform/base:v1 ")
    );
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_way_a_pull_fails_is_its_own_finding() {
    // No grant: the registry refuses the kubelet's token.
    let a = AzureApp::spawn(world(false, |_| {})).await;
    let r = probe(&a, IMAGE).await;
    assert_eq!(r["verdict"], "cannotPull");
    assert_eq!(finding(&r, "ProbeUnauthorized")["severity"], "error");
    assert_eq!(finding(&r, "NoPullGrant")["severity"], "error");
    a.stop().await;

    // The image is not there: the probe cannot tell, and says what to do.
    let a = AzureApp::spawn(world(true, |_| {})).await;
    let r = probe(&a, "platform/base:v2").await;
    assert_eq!(
        r["verdict"], "canPull",
        "the probe cannot tell, ARM's verdict stands: {r:#}"
    );
    assert_eq!(finding(&r, "ProbeImageNotFound")["severity"], "warning");
    assert!(
        finding(&r, "ProbeImageNotFound")["fix"]
            .as_str()
            .unwrap()
            .contains("/v1/imports")
    );
    a.stop().await;

    // Public access off and no private endpoint: ARM says so, and the pull is refused.
    let a = AzureApp::spawn(world(true, |w| {
        registry_mut(w, "acrshared").public_network_access = "Disabled".into()
    }))
    .await;
    let r = probe(&a, IMAGE).await;
    assert_eq!(r["verdict"], "cannotPull");
    assert_eq!(finding(&r, "PublicNetworkAccessDisabled")["severity"], "error");
    assert_eq!(finding(&r, "ProbeForbidden")["severity"], "error");
    a.stop().await;

    // The nodes' egress is blocked: a timeout.
    let a = AzureApp::spawn(world(true, |w| {
        w.subscriptions[0].resource_groups[0].managed_clusters[0].egress_blocked = true
    }))
    .await;
    let r = probe(&a, IMAGE).await;
    assert_eq!(finding(&r, "ProbeNetworkTimeout")["severity"], "error");
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_acr_attach_may_not_run_is_reported_not_failed() {
    // Run-command disabled on the cluster.
    let a = AzureApp::spawn(world(true, |w| {
        w.subscriptions[0].resource_groups[0].managed_clusters[0].disable_run_command = true
    }))
    .await;
    let r = probe(&a, IMAGE).await;
    assert_eq!(r["verdict"], "canPull", "ARM's verdict stands: {r:#}");
    assert_eq!(finding(&r, "RunCommandDisabled")["severity"], "warning");
    assert!(a.sim.run_commands().is_empty());
    a.stop().await;

    // acr-attach's identity lacks the run-command permission.
    let a = AzureApp::spawn(world(true, |w| {
        for p in &mut w.callers[0].permissions {
            p.actions.retain(|a| !a.contains("runcommand"));
        }
    }))
    .await;
    let r = probe(&a, IMAGE).await;
    let f = finding(&r, "ProbeNotPermitted");
    assert!(f["fix"].as_str().unwrap().contains("runcommand/action"), "{f:#}");
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_while_the_probe_runs_follows_the_same_command() {
    let w = world(true, |w| w.behaviour.run_command_seconds = 3.0);
    let (sim, config, app) = simulator_and_replica(w).await;
    let r = app
        .post_json(
            "/v1/checks",
            &json!({ "cluster": cluster("aks-demo"), "registry": registry("acrshared"), "probe": true, "image": IMAGE }),
        )
        .await;
    let id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    let waiting = app.wait_for_state(&id, &["waiting"], Duration::from_secs(10)).await;
    assert_eq!(waiting["wait"]["condition"], "probeCommand", "{waiting:#}");
    assert_eq!(sim.run_commands().len(), 1);

    let db = app.shutdown().await;
    let app = TestApp::spawn_service(config, db).await;
    let job = app.wait_finished(&id, Duration::from_secs(30)).await;
    assert_eq!(job["state"], "succeeded", "{job:#}");
    assert_eq!(job["result"]["verdict"], "canPull", "{job:#}");
    assert_eq!(sim.run_commands().len(), 1, "no second command, no second pod");
    assert!(sim.call_count("ManagedClusters_GetCommandResult") >= 1);
    app.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_arm_cannot_tell_the_probe_can() {
    // A firewall that allows a few ranges: ARM cannot say whether the nodes' egress is one of
    // them, so the check alone is `unknown`; the probe's pull decides.
    let allowing = |allow: &str| {
        let allow = allow.to_string();
        world(true, move |w| {
            let r = registry_mut(w, "acrshared");
            r.network_rule_set.default_action = "Deny".into();
            r.network_rule_set.ip_rules = vec![azure_simulator::IpRule {
                action: "Allow".into(),
                value: allow,
            }];
        })
    };
    let a = AzureApp::spawn(allowing("20.50.0.0/24")).await;
    let arm_only = a
        .run(
            a.app
                .post_json(
                    "/v1/checks",
                    &json!({ "cluster": cluster("aks-demo"), "registry": registry("acrshared") }),
                )
                .await,
        )
        .await;
    assert_eq!(arm_only["result"]["verdict"], "unknown", "{arm_only:#}");
    assert_eq!(finding(&arm_only["result"], "NetworkRuleDenies")["severity"], "warning");
    let r = probe(&a, IMAGE).await;
    assert_eq!(
        r["verdict"], "canPull",
        "the cluster's egress (20.50.0.1) is allowed: {r:#}"
    );
    a.stop().await;

    let a = AzureApp::spawn(allowing("198.51.100.0/24")).await;
    let r = probe(&a, IMAGE).await;
    assert_eq!(r["verdict"], "cannotPull", "{r:#}");
    assert_eq!(finding(&r, "ProbeForbidden")["severity"], "error");
    a.stop().await;
}
