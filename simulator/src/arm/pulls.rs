//! "Can this cluster pull this image now?": the checks a kubelet's pull goes through, in the
//! order a real pull meets them: DNS, the cluster's egress, the registry's firewall, the
//! registry's authorization of the pulling identity, and finally the image itself.
//!
//! What kubelet prints about the outcome lives in `kubelet.rs`.

use std::collections::BTreeMap;

use super::image_ref::{ImageRef, same_host};
use super::permissions::action_matches;
use super::resources::{Kind, all_resources};
use super::role_assignments::effective_for;
use super::role_definitions;
use crate::registry::{ExternalRegistry, ip_rule_matches, lookup};
use crate::state::State;
use crate::world::{ManagedCluster, PrincipalKind, Registry, RoleDefinition, World};

/// The legacy-mode data action a pull needs.
pub(crate) const PULL_ACTION: &str = "Microsoft.ContainerRegistry/registries/pull/read";
/// The ABAC-mode data action a pull needs.
const REPOSITORY_READ: &str = "Microsoft.ContainerRegistry/registries/repositories/content/read";

/// How a pull ends.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Pull {
    /// The image came down.
    Pulled { digest: String },
    /// The host resolves nowhere.
    NoSuchHost,
    /// Packets to the registry (at `ip`) are dropped.
    Timeout { ip: String },
    /// The registry's firewall refused the cluster's address.
    Forbidden,
    /// The registry refused the token exchange: no pull permission.
    Unauthorized,
    /// No such repository, tag or digest.
    NotFound,
}

/// Where an image host points in the world.
enum Target<'w> {
    Acr { id: String, reg: &'w Registry },
    External(&'w ExternalRegistry),
}

fn find_target<'w>(world: &'w World, host: &str) -> Option<Target<'w>> {
    for r in all_resources(world) {
        if let Kind::Registry(reg) = r.kind
            && same_host(&reg.login(), host)
        {
            return Some(Target::Acr { id: r.id(), reg });
        }
    }
    world
        .external_registries
        .iter()
        .find(|x| same_host(&x.login_server, host))
        .map(Target::External)
}

/// The object id kubelet pulls as: the kubelet identity, or for an old cluster the service
/// principal whose app id is its `servicePrincipalClientId`.
pub(crate) fn pulling_principal(world: &World, c: &ManagedCluster) -> Option<String> {
    if let Some(k) = &c.kubelet_identity {
        return Some(k.object_id.clone());
    }
    let app = c.service_principal_client_id.as_deref()?;
    world
        .directory
        .iter()
        .find(|p| {
            p.kind == PrincipalKind::ServicePrincipal
                && p.app_id.as_deref().is_some_and(|a| a.eq_ignore_ascii_case(app))
        })
        .map(|p| p.object_id.clone())
}

/// Decides a pull of `image` by `cluster` against the world as it is now.
pub(crate) fn decide(st: &State, cluster: &ManagedCluster, image: &ImageRef) -> Pull {
    let Some(target) = find_target(&st.world, &image.host) else {
        return Pull::NoSuchHost;
    };
    let private = matches!(&target, Target::Acr { reg, .. } if has_private_link(reg));
    if cluster.egress_blocked {
        return Pull::Timeout {
            ip: registry_ip(&image.host, private),
        };
    }
    let (login, repos) = match &target {
        Target::Acr { id, reg } => {
            if !private && !firewall_allows(reg, cluster.egress_ip()) {
                return Pull::Forbidden;
            }
            if !reg.anonymous_pull_enabled && !kubelet_may_pull(st, cluster, id, reg, &image.repo) {
                return Pull::Unauthorized;
            }
            (reg.login(), &reg.repositories)
        }
        Target::External(x) => {
            // Kubelet holds no credentials for registries outside the tenant.
            if x.username.is_some() {
                return Pull::Unauthorized;
            }
            (x.login_server.clone(), &x.repositories)
        }
    };
    match lookup(&login, repos, &image.repo, &image.reference) {
        Some(digest) => Pull::Pulled { digest },
        None => Pull::NotFound,
    }
}

/// An approved private endpoint: nodes reach the registry through private link (the
/// cluster's virtual network is assumed linked to the registry's private DNS zone).
fn has_private_link(reg: &Registry) -> bool {
    reg.private_endpoint_connections.iter().any(|p| p.status == "Approved")
}

/// ACR's public-endpoint firewall: public access on, and either no default deny or an
/// `Allow` rule covering the cluster's egress address.
fn firewall_allows(reg: &Registry, egress_ip: &str) -> bool {
    if reg.public_network_access != "Enabled" {
        return false;
    }
    reg.network_rule_set.default_action != "Deny"
        || reg
            .network_rule_set
            .ip_rules
            .iter()
            .any(|r| r.action == "Allow" && ip_rule_matches(&r.value, egress_ip))
}

/// Whether the cluster's pulling identity holds, at the registry or above, directly or
/// through groups, a role that lets it pull `repo`, old enough to have propagated.
fn kubelet_may_pull(st: &State, cluster: &ManagedCluster, registry_id: &str, reg: &Registry, repo: &str) -> bool {
    let Some(principal) = pulling_principal(&st.world, cluster) else {
        return false;
    };
    let abac = reg.role_assignment_mode == "AbacRepositoryPermissions";
    let propagation = st.world.behaviour.pull_permission_propagation_seconds;
    effective_for(st, &principal, registry_id)
        .into_iter()
        .filter(|a| a.written_at.is_none_or(|w| w.elapsed().as_secs_f64() >= propagation))
        .any(|a| {
            role_definitions::find(&st.world, &a.rec.role_definition_guid()).is_some_and(|role| {
                role_lets_pull(&role, abac) && (!abac || condition_allows(a.rec.condition.as_deref(), repo))
            })
        })
}

/// Legacy registries honour `pull/read` in actions or data actions; ABAC registries only the
/// repository data action (so AcrPull, Owner and the like do not count there).
fn role_lets_pull(role: &RoleDefinition, abac: bool) -> bool {
    let allows = |yes: &[String], no: &[String], action: &str| {
        yes.iter().any(|p| action_matches(p, action)) && !no.iter().any(|p| action_matches(p, action))
    };
    role.permissions.iter().any(|p| {
        if abac {
            allows(&p.data_actions, &p.not_data_actions, REPOSITORY_READ)
        } else {
            allows(&p.actions, &p.not_actions, PULL_ACTION) || allows(&p.data_actions, &p.not_data_actions, PULL_ACTION)
        }
    })
}

/// A repository condition in the documented ABAC form: the repository must equal (or start
/// with) one of the quoted names. No repository clause: registry-wide.
fn condition_allows(condition: Option<&str>, repo: &str) -> bool {
    let Some(c) = condition.filter(|c| !c.trim().is_empty()) else {
        return true;
    };
    let mut clauses: BTreeMap<String, bool> = BTreeMap::new();
    for (op, prefix) in [("StringEqualsIgnoreCase", false), ("StringStartsWithIgnoreCase", true)] {
        for (i, _) in c.match_indices(op) {
            let rest = &c[i + op.len()..];
            if let Some(v) = rest.trim_start().strip_prefix('\'').and_then(|r| r.split('\'').next()) {
                clauses.insert(v.to_ascii_lowercase(), prefix);
            }
        }
    }
    let repo = repo.to_ascii_lowercase();
    clauses.is_empty()
        || clauses.iter().any(|(v, prefix)| {
            if *prefix {
                repo.starts_with(v.as_str())
            } else {
                repo == *v
            }
        })
}

/// A stable address for a registry host: public (`20.x.x.x`) or, through private link, a
/// private one.
fn registry_ip(host: &str, private: bool) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, host.to_ascii_lowercase().as_bytes());
    let b = d.as_ref();
    if private {
        format!("10.224.{}.{}", b[0], b[1].max(4))
    } else {
        format!("20.{}.{}.{}", b[0], b[1], b[2].max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abac_conditions_scope_repositories() {
        let eq = "((!(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/content/read'})) OR (@Request[Microsoft.ContainerRegistry/registries/repositories:name] StringEqualsIgnoreCase 'team/app'))";
        assert!(condition_allows(Some(eq), "Team/App"));
        assert!(!condition_allows(Some(eq), "team/other"));
        let prefix =
            "(@Request[Microsoft.ContainerRegistry/registries/repositories:name] StringStartsWithIgnoreCase 'team/')";
        assert!(condition_allows(Some(prefix), "team/x"));
        assert!(!condition_allows(Some(prefix), "other/x"));
        assert!(condition_allows(None, "anything"));
    }
}
