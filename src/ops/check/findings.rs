//! What a check found, and the verdict it adds up to. Everything here is a pure function of
//! what ARM and Graph returned (and the clock), so each finding is tested on its own.
//!
//! Severity decides the verdict: an `error` means the cluster cannot pull (`cannotPull`); a
//! `warning` means it may not (`unknown`: something ARM cannot show decides, or a grant may not
//! be effective yet); `info` is context. The codes are stable: portals may key on them.
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::azure::{ManagedCluster, Registry, RoleAssignmentMode};

/// How much a finding weighs on the verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

/// One thing the check established, with what shows it and what to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// Stable code, e.g. `NoPullGrant`.
    pub code: String,
    pub severity: Severity,
    /// What was found, in a sentence.
    pub message: String,
    /// What shows it: assignment ids, scopes, timestamps, settings as ARM returned them.
    #[schema(value_type = Object)]
    pub evidence: Value,
    /// What to do about it (absent for plain information).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Finding {
    pub fn new(code: &str, severity: Severity, message: impl Into<String>, evidence: Value) -> Finding {
        Finding {
            code: code.into(),
            severity,
            message: message.into(),
            evidence,
            fix: None,
        }
    }

    pub fn fix(mut self, fix: impl Into<String>) -> Finding {
        self.fix = Some(fix.into());
        self
    }
}

/// Can the cluster pull from the registry?
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum Verdict {
    CanPull,
    CannotPull,
    Unknown,
}

/// The verdict the findings add up to (see the module comment).
pub fn verdict(findings: &[Finding]) -> Verdict {
    match findings.iter().map(|f| f.severity).max() {
        Some(Severity::Error) => Verdict::CannotPull,
        Some(Severity::Warning) => Verdict::Unknown,
        _ => Verdict::CanPull,
    }
}

/// How long Azure documents a new grant may take to reach the registry's data plane: direct
/// role assignments up to ~10 minutes (ARM caching); through a group, managed identities keep
/// tokens with their group claims for ~24 hours.
pub const DIRECT_PROPAGATION: Duration = Duration::minutes(10);
pub const GROUP_PROPAGATION: Duration = Duration::hours(24);

/// The cluster itself: failed, stopped or still provisioning clusters do not pull.
pub fn cluster(mc: &ManagedCluster) -> Vec<Finding> {
    let mut out = Vec::new();
    let state = mc.provisioning_state.clone().unwrap_or_default();
    let evidence =
        json!({ "cluster": mc.id, "provisioningState": mc.provisioning_state, "powerState": mc.power_state });
    if state.eq_ignore_ascii_case("Failed") {
        out.push(
            Finding::new(
                "ClusterFailed",
                Severity::Error,
                "the cluster's last operation failed (provisioningState Failed)",
                evidence.clone(),
            )
            .fix("reconcile the cluster (az aks update -g RG -n NAME) and look at its activity log"),
        );
    } else if !state.is_empty() && !state.eq_ignore_ascii_case("Succeeded") {
        out.push(Finding::new(
            "ClusterNotReady",
            Severity::Warning,
            format!("the cluster is {state}; nodes may not be able to pull until it is Succeeded"),
            evidence.clone(),
        ));
    }
    if mc
        .power_state
        .as_deref()
        .is_some_and(|p| p.eq_ignore_ascii_case("Stopped"))
    {
        out.push(
            Finding::new(
                "ClusterStopped",
                Severity::Error,
                "the cluster is stopped: it has no nodes to pull with",
                evidence,
            )
            .fix("start it (az aks start -g RG -n NAME)"),
        );
    }
    out
}

/// The registry's own state and network settings, as far as ARM shows them.
pub fn registry(reg: &Registry) -> Vec<Finding> {
    let mut out = Vec::new();
    let id = &reg.id;
    if let Some(state) = reg
        .provisioning_state
        .as_deref()
        .filter(|s| !s.eq_ignore_ascii_case("Succeeded"))
    {
        out.push(Finding::new(
            "RegistryNotReady",
            Severity::Warning,
            format!("the registry is {state}"),
            json!({ "registry": id, "provisioningState": state }),
        ));
    }
    let approved = reg
        .private_endpoint_states
        .iter()
        .filter(|s| s.eq_ignore_ascii_case("Approved"))
        .count();
    let public_disabled = reg
        .public_network_access
        .as_deref()
        .is_some_and(|p| p.eq_ignore_ascii_case("Disabled"));
    let evidence = json!({
        "registry": id,
        "publicNetworkAccess": reg.public_network_access,
        "privateEndpointConnections": reg.private_endpoint_states,
        "networkRuleSet": { "defaultAction": reg.network_default_action, "ipRules": reg.ip_rules },
    });
    if public_disabled && approved == 0 {
        out.push(
            Finding::new(
                "PublicNetworkAccessDisabled",
                Severity::Error,
                "the registry refuses public network access and has no approved private endpoint: nodes cannot reach it",
                evidence.clone(),
            )
            .fix("add a private endpoint in (or peered with) the cluster's virtual network with the privatelink.azurecr.io DNS zone linked, or enable public network access"),
        );
    } else if public_disabled {
        out.push(
            Finding::new(
                "PrivateEndpointOnly",
                Severity::Warning,
                format!(
                    "the registry is reachable only through {approved} private endpoint(s): nodes must resolve it through the privatelink.azurecr.io DNS zone from their virtual network, which ARM cannot confirm"
                ),
                evidence.clone(),
            )
            .fix("run the check with \"probe\": true, or confirm the cluster's virtual network is linked to the privatelink.azurecr.io zone"),
        );
    } else if reg
        .network_default_action
        .as_deref()
        .is_some_and(|a| a.eq_ignore_ascii_case("Deny"))
    {
        let (severity, message) = if reg.ip_rules.is_empty() {
            (
                Severity::Error,
                "the registry's firewall denies every public address (defaultAction Deny, no IP rules)".to_string(),
            )
        } else {
            (
                Severity::Warning,
                format!(
                    "the registry's firewall allows only {} address range(s); ARM cannot tell whether the cluster's outbound IPs are among them",
                    reg.ip_rules.len()
                ),
            )
        };
        out.push(
            Finding::new("NetworkRuleDenies", severity, message, evidence)
                .fix("add the cluster's outbound IP addresses (its load balancer or NAT gateway) to the registry's IP rules, or use a private endpoint"),
        );
    }
    if reg.data_endpoint_enabled == Some(true) {
        out.push(Finding::new(
            "DataEndpointsEnabled",
            Severity::Info,
            "the registry serves layers from dedicated data endpoints: a firewall in front of the nodes must allow them as well as the login server",
            json!({ "registry": id, "loginServer": reg.login_server, "dataEndpointHostNames": reg.data_endpoint_host_names }),
        ));
    }
    if reg
        .aad_auth_as_arm_policy
        .as_deref()
        .is_some_and(|s| s.eq_ignore_ascii_case("disabled"))
    {
        out.push(
            Finding::new(
                "ArmAudienceTokensDisabled",
                Severity::Warning,
                "the registry refuses Entra tokens issued for Azure Resource Manager (azureADAuthenticationAsArmPolicy disabled); kubelets that sign in with them are refused",
                json!({ "registry": id, "azureADAuthenticationAsArmPolicy": reg.aad_auth_as_arm_policy }),
            )
            .fix("enable the policy (az acr config authentication-as-arm update -r NAME --status enabled) unless every node uses ACR-audience tokens"),
        );
    }
    out
}

/// ARM lists no grant, but an attach made `assignment_id` at `at`, within the read-after-write
/// lag: the verdict stays open rather than saying "cannot pull" about a grant that exists.
pub fn not_listed_yet(assignment_id: &str, at: DateTime<Utc>) -> Finding {
    Finding::new(
        "GrantNotListedYet",
        Severity::Warning,
        format!(
            "ARM does not list the role assignment {assignment_id} yet; acr-attach created it at {} (ARM's reads lag its writes)",
            at.to_rfc3339()
        ),
        json!({ "assignmentId": assignment_id, "createdAt": at }),
    )
    .fix("run the check again in a minute")
}

/// One role assignment that reaches the pulling identity (`assignedTo` at the registry), with
/// what its role allows.
#[derive(Debug, Clone)]
pub struct Reaching {
    pub assignment_id: String,
    pub scope: String,
    pub role_id: String,
    pub role_name: String,
    /// The pulling identity itself, or a group it belongs to.
    pub principal_id: String,
    pub principal_type: Option<String>,
    pub created_on: Option<DateTime<Utc>>,
    pub condition: Option<String>,
    /// The role carries `Microsoft.ContainerRegistry/registries/pull/read` (honoured in legacy mode).
    pub pull_action: bool,
    /// The role carries the repository content read data action (honoured in ABAC mode).
    pub repository_read: bool,
}

/// The grants that reach the identity, judged against the registry's permission mode and
/// the propagation times.
pub fn grants(reg: &Registry, grantee: &str, reaching: &[Reaching], now: DateTime<Utc>) -> Vec<Finding> {
    let abac = reg.role_assignment_mode == RoleAssignmentMode::AbacRepositoryPermissions;
    let mut out = Vec::new();
    let mut effective = 0;
    let mut maybe_not_yet = 0;
    for r in reaching {
        let direct = r.principal_id.eq_ignore_ascii_case(grantee);
        let at_registry = r.scope.trim_end_matches('/').eq_ignore_ascii_case(&reg.id);
        let path = match (direct, at_registry) {
            (true, true) => "directly at the registry".to_string(),
            (true, false) => format!("inherited from {}", r.scope),
            (false, true) => format!("through the group {} at the registry", r.principal_id),
            (false, false) => format!("through the group {}, inherited from {}", r.principal_id, r.scope),
        };
        let evidence = json!({
            "assignmentId": r.assignment_id,
            "scope": r.scope,
            "role": { "id": r.role_id, "name": r.role_name },
            "principalId": r.principal_id,
            "principalType": r.principal_type,
            "createdOn": r.created_on,
            "condition": r.condition,
            "roleAssignmentMode": reg.role_assignment_mode.as_str(),
        });
        let honoured = if abac { r.repository_read } else { r.pull_action };
        if !honoured {
            if abac && r.pull_action {
                out.push(
                    Finding::new(
                        "WrongRoleForMode",
                        Severity::Info,
                        format!(
                            "{} grants {} {path}, which an ABAC-mode registry does not honour for pulls",
                            r.role_name, r.principal_id
                        ),
                        evidence,
                    )
                    .fix("grant Container Registry Repository Reader instead (acr-attach's attach does)"),
                );
            }
            continue;
        }
        let window = if direct { DIRECT_PROPAGATION } else { GROUP_PROPAGATION };
        let recent = r.created_on.is_some_and(|t| now - t < window);
        if recent {
            maybe_not_yet += 1;
        } else {
            effective += 1;
        }
        let mut finding = Finding::new(
            if recent {
                "GrantMayNotBeEffectiveYet"
            } else {
                "PullGranted"
            },
            if recent { Severity::Warning } else { Severity::Info },
            if recent {
                format!(
                    "{} is granted {path} only since {}: Azure documents up to {} before pulls honour it",
                    r.role_name,
                    r.created_on.map(|t| t.to_rfc3339()).unwrap_or_default(),
                    if direct {
                        "10 minutes"
                    } else {
                        "24 hours for managed identities in groups"
                    }
                )
            } else {
                format!("{} is granted {path}", r.role_name)
            },
            evidence,
        );
        if recent {
            finding = finding.fix("wait, or run the check again later (\"probe\": true shows what the nodes see now)");
        }
        if r.condition.is_some() {
            finding =
                finding.fix("the grant carries an ABAC condition: it covers only the repositories the condition names");
        }
        out.push(finding);
    }
    if effective > 0 {
        // A settled grant decides; a newer one on top is only context.
        for f in out.iter_mut().filter(|f| f.code == "GrantMayNotBeEffectiveYet") {
            f.severity = Severity::Info;
        }
    }
    if effective + maybe_not_yet == 0 {
        let role = if abac {
            "Container Registry Repository Reader"
        } else {
            "AcrPull"
        };
        if reg.anonymous_pull_enabled == Some(true) {
            out.push(Finding::new(
                "AnonymousPull",
                Severity::Info,
                format!("no grant reaches {grantee}, but the registry allows anonymous pulls"),
                json!({ "registry": reg.id, "anonymousPullEnabled": true }),
            ));
        } else {
            out.push(
                Finding::new(
                    "NoPullGrant",
                    Severity::Error,
                    format!(
                        "no role assignment lets {grantee} pull from the registry ({} mode needs {role})",
                        reg.role_assignment_mode.as_str()
                    ),
                    json!({ "registry": reg.id, "principalId": grantee, "assignmentsReaching": reaching.len() }),
                )
                .fix("attach the pair (POST /v1/attachments)"),
            );
        }
    } else if reg.anonymous_pull_enabled == Some(true) {
        out.push(Finding::new(
            "AnonymousPull",
            Severity::Info,
            "the registry also allows anonymous pulls",
            json!({ "registry": reg.id, "anonymousPullEnabled": true }),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRANTEE: &str = "c0be1e70-0000-4000-8000-000000000001";
    const REG: &str = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/acr";

    fn reg(mode: RoleAssignmentMode) -> Registry {
        Registry {
            id: REG.into(),
            role_assignment_mode: mode,
            ..Default::default()
        }
    }

    fn reaching(principal: &str, scope: &str, pull: bool, repo: bool, age: Duration) -> Reaching {
        Reaching {
            assignment_id: format!("{scope}/providers/Microsoft.Authorization/roleAssignments/x"),
            scope: scope.into(),
            role_id: "r".into(),
            role_name: if repo {
                "Container Registry Repository Reader"
            } else {
                "AcrPull"
            }
            .into(),
            principal_id: principal.into(),
            principal_type: None,
            created_on: Some(Utc::now() - age),
            condition: None,
            pull_action: pull,
            repository_read: repo,
        }
    }

    fn codes(f: &[Finding]) -> Vec<(&str, Severity)> {
        f.iter().map(|f| (f.code.as_str(), f.severity)).collect()
    }

    #[test]
    fn a_settled_direct_grant_can_pull_and_a_recent_one_is_unknown() {
        let r = reg(RoleAssignmentMode::LegacyRegistryPermissions);
        let old = [reaching(GRANTEE, REG, true, false, Duration::hours(1))];
        let f = grants(&r, GRANTEE, &old, Utc::now());
        assert_eq!(codes(&f), [("PullGranted", Severity::Info)]);
        assert_eq!(verdict(&f), Verdict::CanPull);
        let new = [reaching(GRANTEE, REG, true, false, Duration::minutes(2))];
        let f = grants(&r, GRANTEE, &new, Utc::now());
        assert_eq!(codes(&f), [("GrantMayNotBeEffectiveYet", Severity::Warning)]);
        assert_eq!(verdict(&f), Verdict::Unknown);
        // A group grant of 2 hours is still inside the 24 h window; a direct one is not.
        let group = [reaching("g", "/subscriptions/s", true, false, Duration::hours(2))];
        let f = grants(&r, GRANTEE, &group, Utc::now());
        assert_eq!(f[0].code, "GrantMayNotBeEffectiveYet");
        assert!(
            f[0].message
                .contains("through the group g, inherited from /subscriptions/s")
        );
    }

    #[test]
    fn acr_pull_on_an_abac_registry_is_not_a_grant() {
        let r = reg(RoleAssignmentMode::AbacRepositoryPermissions);
        let f = grants(
            &r,
            GRANTEE,
            &[reaching(GRANTEE, REG, true, false, Duration::hours(1))],
            Utc::now(),
        );
        assert_eq!(
            codes(&f),
            [("WrongRoleForMode", Severity::Info), ("NoPullGrant", Severity::Error)]
        );
        assert_eq!(verdict(&f), Verdict::CannotPull);
        let ok = grants(
            &r,
            GRANTEE,
            &[reaching(GRANTEE, REG, false, true, Duration::hours(1))],
            Utc::now(),
        );
        assert_eq!(verdict(&ok), Verdict::CanPull);
    }

    #[test]
    fn no_grant_fails_unless_anonymous_pull() {
        let mut r = reg(RoleAssignmentMode::LegacyRegistryPermissions);
        assert_eq!(verdict(&grants(&r, GRANTEE, &[], Utc::now())), Verdict::CannotPull);
        r.anonymous_pull_enabled = Some(true);
        let f = grants(&r, GRANTEE, &[], Utc::now());
        assert_eq!(codes(&f), [("AnonymousPull", Severity::Info)]);
    }

    #[test]
    fn network_settings_that_block_or_may_block() {
        let mut r = reg(RoleAssignmentMode::LegacyRegistryPermissions);
        assert!(registry(&r).is_empty());
        r.public_network_access = Some("Disabled".into());
        assert_eq!(codes(&registry(&r)), [("PublicNetworkAccessDisabled", Severity::Error)]);
        r.private_endpoint_states = vec!["Pending".into(), "Approved".into()];
        assert_eq!(codes(&registry(&r)), [("PrivateEndpointOnly", Severity::Warning)]);
        r.public_network_access = Some("Enabled".into());
        r.network_default_action = Some("Deny".into());
        assert_eq!(codes(&registry(&r)), [("NetworkRuleDenies", Severity::Error)]);
        r.ip_rules = vec!["20.50.0.0/24".into()];
        assert_eq!(codes(&registry(&r)), [("NetworkRuleDenies", Severity::Warning)]);
    }

    #[test]
    fn stopped_and_failed_clusters() {
        let mut mc = ManagedCluster {
            id: "c".into(),
            name: "c".into(),
            location: "westeurope".into(),
            provisioning_state: Some("Succeeded".into()),
            kubelet_identity: None,
            service_principal_client_id: None,
            node_resource_group: None,
            power_state: Some("Running".into()),
            run_command_disabled: false,
        };
        assert!(cluster(&mc).is_empty());
        mc.power_state = Some("Stopped".into());
        assert_eq!(codes(&cluster(&mc)), [("ClusterStopped", Severity::Error)]);
        mc.power_state = None;
        mc.provisioning_state = Some("Failed".into());
        assert_eq!(codes(&cluster(&mc)), [("ClusterFailed", Severity::Error)]);
        mc.provisioning_state = Some("Updating".into());
        assert_eq!(verdict(&cluster(&mc)), Verdict::Unknown);
    }
}
