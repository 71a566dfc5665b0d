//! What the world file says about registries beyond their ARM identity: network settings
//! (public access, the IP firewall, private endpoints), contents (repositories, tags and
//! digests), and public registries outside the tenant that images can be imported from.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde::{Deserialize, Deserializer, Serialize};

use crate::world::Registry;

/// `properties.publicNetworkAccess` values.
pub(crate) const PUBLIC_NETWORK_ACCESS: &[&str] = &["Enabled", "Disabled"];
/// `networkRuleSet.defaultAction` values.
pub(crate) const DEFAULT_ACTIONS: &[&str] = &["Allow", "Deny"];
/// `properties.roleAssignmentMode` values.
pub(crate) const ROLE_ASSIGNMENT_MODES: &[&str] = &["LegacyRegistryPermissions", "AbacRepositoryPermissions"];
/// `privateLinkServiceConnectionState.status` values.
const CONNECTION_STATUSES: &[&str] = &["Approved", "Pending", "Rejected", "Disconnected"];

/// Repository → tag → manifest digest. An empty digest in the world file is derived (see
/// [`derived_digest`]). A key that is itself a digest (`sha256:...`) is an untagged manifest.
pub type Repositories = BTreeMap<String, BTreeMap<String, String>>;

/// A registry's IP firewall (`properties.networkRuleSet`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkRuleSet {
    /// `Allow` (default) or `Deny`: what happens to public traffic no rule matches.
    #[serde(default = "allow")]
    pub default_action: String,
    /// Addresses let through when `defaultAction` is `Deny`.
    #[serde(default)]
    pub ip_rules: Vec<IpRule>,
}

impl Default for NetworkRuleSet {
    fn default() -> Self {
        NetworkRuleSet {
            default_action: allow(),
            ip_rules: Vec::new(),
        }
    }
}

/// One `ipRules` entry: an IPv4 address or CIDR range.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IpRule {
    /// Always `Allow` (the only action ACR has).
    #[serde(default = "allow")]
    pub action: String,
    /// `20.50.0.1` or `20.50.0.0/24`.
    pub value: String,
}

/// A private endpoint connection to the registry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PrivateEndpointConnection {
    /// Connection name.
    pub name: String,
    /// `Approved` (default), `Pending`, `Rejected` or `Disconnected`.
    #[serde(default = "approved")]
    pub status: String,
}

/// A registry outside the tenant (Docker Hub, MCR, another cloud's ACR) that `importImage`
/// can copy from by `registryUri`, and that probes can pull from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExternalRegistry {
    /// Host name, e.g. `mcr.microsoft.com`.
    pub login_server: String,
    /// Its contents.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "repositories"
    )]
    pub repositories: Repositories,
    /// When set (with `password`), the registry requires these credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The password (or token) going with `username`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

fn allow() -> String {
    "Allow".into()
}
fn approved() -> String {
    "Approved".into()
}

/// Deserializes [`Repositories`], taking a `null` digest as "derive it".
pub(crate) fn repositories<'de, D: Deserializer<'de>>(d: D) -> Result<Repositories, D::Error> {
    let raw: BTreeMap<String, BTreeMap<String, Option<String>>> = BTreeMap::deserialize(d)?;
    Ok(raw
        .into_iter()
        .map(|(repo, tags)| {
            (
                repo,
                tags.into_iter().map(|(t, d)| (t, d.unwrap_or_default())).collect(),
            )
        })
        .collect())
}

/// The digest of an image the world file lists without one: `sha256:` + hex SHA-256 of
/// `<login>/<repo>:<tag>` (login lower-cased), stable across runs.
pub fn derived_digest(login: &str, repo: &str, tag: &str) -> String {
    let text = format!("{}/{repo}:{tag}", login.to_ascii_lowercase());
    let d = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    let hex: String = d.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// Fills in missing digests, so world snapshots show what pulls resolve to.
pub(crate) fn fill_digests(login: &str, repos: &mut Repositories) {
    for (repo, tags) in repos.iter_mut() {
        for (tag, digest) in tags.iter_mut() {
            if digest.is_empty() {
                *digest = if tag.starts_with("sha256:") {
                    tag.clone()
                } else {
                    derived_digest(login, repo, tag)
                };
            }
        }
    }
}

/// The digest `repo` holds for a tag or digest reference, if any (repository names are
/// case-sensitive in the registry protocol, but ACR lower-cases them: compared ignoring case).
pub(crate) fn lookup(login: &str, repos: &Repositories, repo: &str, reference: &str) -> Option<String> {
    let tags = repos.iter().find(|(r, _)| r.eq_ignore_ascii_case(repo))?.1;
    let digest_of = |tag: &str, d: &str| {
        if !d.is_empty() {
            d.to_string()
        } else if tag.starts_with("sha256:") {
            tag.to_string()
        } else {
            derived_digest(login, repo, tag)
        }
    };
    if reference.starts_with("sha256:") {
        return tags
            .iter()
            .map(|(t, d)| digest_of(t, d))
            .find(|d| d.eq_ignore_ascii_case(reference));
    }
    tags.get(reference).map(|d| digest_of(reference, d))
}

/// Checks a world registry's enums and rules, so a typo fails at load instead of at a pull.
pub(crate) fn validate(r: &Registry) -> anyhow::Result<()> {
    let one_of = |field: &str, v: &str, allowed: &[&str]| {
        anyhow::ensure!(
            allowed.contains(&v),
            "registry {}: {field} '{v}' is not one of {}",
            r.name,
            allowed.join(", ")
        );
        Ok(())
    };
    one_of("roleAssignmentMode", &r.role_assignment_mode, ROLE_ASSIGNMENT_MODES)?;
    one_of("publicNetworkAccess", &r.public_network_access, PUBLIC_NETWORK_ACCESS)?;
    one_of(
        "networkRuleSet.defaultAction",
        &r.network_rule_set.default_action,
        DEFAULT_ACTIONS,
    )?;
    for rule in &r.network_rule_set.ip_rules {
        one_of("ipRules[].action", &rule.action, &["Allow"])?;
        anyhow::ensure!(
            valid_ip_rule(&rule.value),
            "registry {}: ipRules value '{}' is not an IPv4 address or CIDR range",
            r.name,
            rule.value
        );
    }
    for pe in &r.private_endpoint_connections {
        one_of("privateEndpointConnections[].status", &pe.status, CONNECTION_STATUSES)?;
    }
    Ok(())
}

/// Parses `a.b.c.d` or `a.b.c.d/n` into (network, prefix length).
fn parse_cidr(s: &str) -> Option<(u32, u32)> {
    let (ip, bits) = match s.trim().split_once('/') {
        Some((ip, bits)) => (ip, bits.parse::<u32>().ok().filter(|b| *b <= 32)?),
        None => (s.trim(), 32),
    };
    Some((u32::from(ip.parse::<Ipv4Addr>().ok()?), bits))
}

/// Whether an `ipRules` value is an IPv4 address or CIDR range (ACR accepts only IPv4).
pub(crate) fn valid_ip_rule(value: &str) -> bool {
    parse_cidr(value).is_some()
}

/// Whether `ip` falls inside the rule's address or range.
pub(crate) fn ip_rule_matches(rule: &str, ip: &str) -> bool {
    let (Some((net, bits)), Ok(addr)) = (parse_cidr(rule), ip.trim().parse::<Ipv4Addr>()) else {
        return false;
    };
    let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
    (u32::from(addr) & mask) == (net & mask)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_rules_match_like_acr() {
        assert!(ip_rule_matches("20.50.0.1", "20.50.0.1"));
        assert!(!ip_rule_matches("20.50.0.1", "20.50.0.2"));
        assert!(ip_rule_matches("20.50.0.0/24", "20.50.0.200"));
        assert!(!ip_rule_matches("20.50.0.0/24", "20.50.1.1"));
        assert!(ip_rule_matches("0.0.0.0/0", "1.2.3.4"));
        assert!(!valid_ip_rule("20.50.0.0/33"));
        assert!(!valid_ip_rule("::1"));
    }

    #[test]
    fn digests_are_derived_stably_and_found_by_tag_or_digest() {
        let d = derived_digest("AcrOne.azurecr.io", "hello", "v1");
        assert_eq!(d, derived_digest("acrone.azurecr.io", "hello", "v1"));
        assert_eq!(d.len(), 7 + 64);
        let mut repos: Repositories = BTreeMap::new();
        repos.insert("hello".into(), BTreeMap::from([("v1".to_string(), String::new())]));
        assert_eq!(lookup("acrone.azurecr.io", &repos, "hello", "v1"), Some(d.clone()));
        assert_eq!(lookup("acrone.azurecr.io", &repos, "hello", &d), Some(d.clone()));
        assert_eq!(lookup("acrone.azurecr.io", &repos, "hello", "v2"), None);
        fill_digests("acrone.azurecr.io", &mut repos);
        assert_eq!(repos["hello"]["v1"], d);
    }
}
