//! The authorisation policy: deny by default; a JSON file of rules says which callers may do
//! which actions on which clusters, registries and identities, through which groups. It is
//! checked before anything is enqueued, and the decision (with the rule that allowed it, or
//! why nothing did) goes to the audit trail. The file is validated at load with precise
//! errors, and reloaded when it changes; a broken edit keeps the previous policy in force.
//!
//! ```json
//! { "rules": [ {
//!     "name": "platform-portal",
//!     "callers": { "roles": ["Attachments.ReadWrite"], "apiKeys": ["portal"] },
//!     "actions": ["attach", "detach", "read", "cancel"],
//!     "clusters": ["/subscriptions/1111…/resourceGroups/rg-aks-prod"],
//!     "registries": ["/subscriptions/1111…"],
//!     "groups": ["9a0b0000-0000-4000-8000-000000000001"]
//! } ] }
//! ```
//! A scope pattern is `*` or an ARM scope (subscription, resource group, resource) that
//! matches itself and everything below it, case-insensitively. See docs/security.md.
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::auth::{Caller, CallerKind};
use crate::domain::{RegistryRef, ResourceId};

/// What a caller may be allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Action {
    Attach,
    Detach,
    /// Check whether a cluster can pull from a registry (reads Azure).
    Check,
    /// Check with a probe: run a pod in the cluster, through AKS run-command, that pulls an image.
    Probe,
    /// Import an image into a registry (from a registry of the tenant, read with acr-attach's
    /// identity, or from any registry by login server).
    Import,
    /// Run a drift sweep now (`POST /v1/verifications`).
    Verify,
    PrepareKubeletIdentity,
    /// Read the caller's own jobs, and the attachments view.
    Read,
    /// Read every caller's jobs.
    ReadAllJobs,
    /// Cancel the caller's own jobs.
    Cancel,
    /// Cancel anyone's job.
    CancelAllJobs,
    /// Read the audit trail.
    ReadAudit,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Attach => "attach",
            Action::Detach => "detach",
            Action::Check => "check",
            Action::Probe => "probe",
            Action::Import => "import",
            Action::Verify => "verify",
            Action::PrepareKubeletIdentity => "prepareKubeletIdentity",
            Action::Read => "read",
            Action::ReadAllJobs => "readAllJobs",
            Action::Cancel => "cancel",
            Action::CancelAllJobs => "cancelAllJobs",
            Action::ReadAudit => "readAudit",
        }
    }
}

/// One request, as the policy sees it.
#[derive(Debug, Clone)]
pub enum Ask<'a> {
    Pair {
        action: Action,
        cluster: &'a str,
        registry: &'a RegistryRef,
        group: Option<Uuid>,
    },
    KubeletIdentity {
        identity: &'a str,
        groups: &'a [Uuid],
        registries: &'a [RegistryRef],
    },
    /// An import into `registry`; a `source` registry of the tenant must be covered too (acr-attach
    /// reads it with its own identity, so the caller must be allowed to use it).
    Import {
        registry: &'a RegistryRef,
        source: Option<&'a RegistryRef>,
    },
    /// A batch's selection (attach or detach): may the caller act on clusters somewhere under
    /// `scope` (a subscription or resource group) with `registry`? Allowed when a rule allows
    /// the action and the registry, and one of its cluster scopes covers `scope` or lies under
    /// it. Each selected cluster is then decided as a [`Ask::Pair`] of its own.
    Selection {
        action: Action,
        scope: &'a str,
        registry: &'a RegistryRef,
    },
    /// Actions without resources (read, cancel, audit).
    Plain(Action),
}

impl Ask<'_> {
    pub fn action(&self) -> Action {
        match self {
            Ask::Pair { action, .. } | Ask::Selection { action, .. } | Ask::Plain(action) => *action,
            Ask::KubeletIdentity { .. } => Action::PrepareKubeletIdentity,
            Ask::Import { .. } => Action::Import,
        }
    }
}

/// The policy's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    pub allowed: bool,
    /// The rule that allowed it.
    pub rule: Option<String>,
    /// Why: the rule, or what no rule allows.
    pub reason: String,
}

impl Decision {
    fn allow(rule: &str) -> Self {
        Decision {
            allowed: true,
            rule: Some(rule.to_string()),
            reason: format!("allowed by rule '{rule}'"),
        }
    }
    fn deny(reason: String) -> Self {
        Decision {
            allowed: false,
            rule: None,
            reason,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PolicyFile {
    rules: Vec<RuleFile>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RuleFile {
    name: String,
    callers: CallersFile,
    actions: Vec<Action>,
    #[serde(default)]
    clusters: Vec<String>,
    #[serde(default)]
    registries: Vec<String>,
    #[serde(default)]
    identities: Vec<String>,
    #[serde(default)]
    groups: Vec<Uuid>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CallersFile {
    /// Entra object ids (users, service principals, managed identities).
    #[serde(default)]
    object_ids: Vec<Uuid>,
    /// Entra client application ids (`azp` / `appid`).
    #[serde(default)]
    app_ids: Vec<Uuid>,
    /// Entra app roles of acr-attach's API application (`roles` claim).
    #[serde(default)]
    roles: Vec<String>,
    /// API key names.
    #[serde(default)]
    api_keys: Vec<String>,
    /// Everyone, when the service runs with `--auth none`.
    #[serde(default)]
    anonymous: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Scope {
    Any,
    /// Lower-cased ARM scope.
    Under(String),
}

impl Scope {
    fn parse(s: &str) -> Result<Scope, String> {
        if s == "*" {
            return Ok(Scope::Any);
        }
        let id: ResourceId = s.parse().map_err(|e| format!("{e}"))?;
        if id.subscription().is_none() {
            return Err("a scope pattern starts with /subscriptions/{id} (or is *)".into());
        }
        Ok(Scope::Under(id.to_string().to_ascii_lowercase()))
    }

    /// Whether this scope and `scope` share anything: one covers the other.
    fn overlaps(&self, scope: &str) -> bool {
        match self {
            Scope::Any => true,
            Scope::Under(prefix) => {
                let s = scope.to_ascii_lowercase();
                self.covers(scope) || prefix.starts_with(&format!("{s}/"))
            }
        }
    }

    fn covers(&self, resource: &str) -> bool {
        match self {
            Scope::Any => true,
            Scope::Under(prefix) => {
                let r = resource.to_ascii_lowercase();
                r == *prefix || r.starts_with(&format!("{prefix}/"))
            }
        }
    }
}

#[derive(Debug)]
struct Rule {
    name: String,
    callers: CallersFile,
    actions: Vec<Action>,
    clusters: Vec<Scope>,
    registries: Vec<Scope>,
    identities: Vec<Scope>,
    groups: Vec<Uuid>,
}

impl Rule {
    fn matches_caller(&self, c: &Caller) -> bool {
        let cs = &self.callers;
        match c.kind {
            CallerKind::Anonymous => cs.anonymous,
            CallerKind::ApiKey => cs.api_keys.contains(&c.id),
            CallerKind::Entra => {
                let uuid_in = |list: &[Uuid], v: Option<&str>| {
                    v.and_then(|v| Uuid::parse_str(v).ok())
                        .is_some_and(|v| list.contains(&v))
                };
                uuid_in(&cs.object_ids, Some(&c.id))
                    || uuid_in(&cs.app_ids, c.app_id.as_deref())
                    || c.roles.iter().any(|r| cs.roles.contains(r))
            }
        }
    }

    /// Why this rule does not allow `ask` (None: it does).
    fn refuses(&self, ask: &Ask<'_>) -> Option<String> {
        if !self.actions.contains(&ask.action()) {
            return Some(format!("action {}", ask.action().as_str()));
        }
        let registry_ok = |r: &RegistryRef| match r {
            RegistryRef::Id(id) => self.registries.iter().any(|s| s.covers(&id.to_string())),
            // A bare name is resolved later, so only a rule open to every registry allows it.
            RegistryRef::Name(_) => self.registries.contains(&Scope::Any),
        };
        let group_ok = |g: &Uuid| self.groups.contains(g);
        match ask {
            Ask::Plain(_) => None,
            Ask::Pair {
                cluster,
                registry,
                group,
                ..
            } => {
                if !self.clusters.iter().any(|s| s.covers(cluster)) {
                    Some(format!("cluster {cluster}"))
                } else if !registry_ok(registry) {
                    Some(match registry {
                        RegistryRef::Name(n) => format!(
                            "the bare registry name '{n}' (this rule covers only some registry scopes: give the registry's resource id)"
                        ),
                        RegistryRef::Id(id) => format!("registry {id}"),
                    })
                } else {
                    group.filter(|g| !group_ok(g)).map(|g| format!("group {g}"))
                }
            }
            Ask::Selection { scope, registry, .. } => {
                if !self.clusters.iter().any(|s| s.overlaps(scope)) {
                    Some(format!("any cluster under {scope}"))
                } else if !registry_ok(registry) {
                    Some(format!("registry {registry}"))
                } else {
                    None
                }
            }
            Ask::Import { registry, source } => {
                if !registry_ok(registry) {
                    Some(format!("registry {registry}"))
                } else {
                    source
                        .filter(|s| !registry_ok(s))
                        .map(|s| format!("the source registry {s}"))
                }
            }
            Ask::KubeletIdentity {
                identity,
                groups,
                registries,
            } => {
                if !self.identities.iter().any(|s| s.covers(identity)) {
                    Some(format!("identity {identity}"))
                } else if let Some(r) = registries.iter().find(|r| !registry_ok(r)) {
                    Some(format!("registry {r}"))
                } else {
                    groups.iter().find(|g| !group_ok(g)).map(|g| format!("group {g}"))
                }
            }
        }
    }
}

/// A validated policy.
#[derive(Debug)]
pub struct Policy {
    rules: Vec<Rule>,
}

impl Policy {
    /// Parses and validates; errors name the place (`rules[1].clusters[0]: ...`).
    pub fn parse(text: &str) -> Result<Policy, String> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let file: PolicyFile = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if path == "." {
                inner.to_string()
            } else {
                format!("{path}: {inner}")
            }
        })?;
        let mut rules = Vec::new();
        let mut names = std::collections::HashSet::new();
        for (i, r) in file.rules.into_iter().enumerate() {
            let at = |field: &str| format!("rules[{i}].{field}");
            if r.name.trim().is_empty() || r.name.chars().any(char::is_control) || r.name.len() > 100 {
                return Err(format!(
                    "{}: a rule needs a name (1-100 printable characters)",
                    at("name")
                ));
            }
            if !names.insert(r.name.clone()) {
                return Err(format!("{}: the rule name '{}' is used twice", at("name"), r.name));
            }
            let c = &r.callers;
            if c.object_ids.is_empty()
                && c.app_ids.is_empty()
                && c.roles.is_empty()
                && c.api_keys.is_empty()
                && !c.anonymous
            {
                return Err(format!(
                    "{}: name at least one caller (objectIds, appIds, roles, apiKeys or anonymous)",
                    at("callers")
                ));
            }
            if let Some((j, k)) = c
                .api_keys
                .iter()
                .enumerate()
                .find(|(_, k)| super::auth::keys::validate_name(k).is_err())
            {
                return Err(format!(
                    "{}[{j}]: '{k}' is not a valid API key name",
                    at("callers.apiKeys")
                ));
            }
            if r.actions.is_empty() {
                return Err(format!("{}: list at least one action", at("actions")));
            }
            let scopes = |field: &str, list: &[String]| -> Result<Vec<Scope>, String> {
                list.iter()
                    .enumerate()
                    .map(|(j, s)| Scope::parse(s).map_err(|e| format!("{}[{j}]: {e}", at(field))))
                    .collect()
            };
            let rule = Rule {
                clusters: scopes("clusters", &r.clusters)?,
                registries: scopes("registries", &r.registries)?,
                identities: scopes("identities", &r.identities)?,
                name: r.name,
                callers: r.callers,
                actions: r.actions,
                groups: r.groups,
            };
            let pair = rule
                .actions
                .iter()
                .any(|a| matches!(a, Action::Attach | Action::Detach | Action::Check | Action::Probe));
            if pair && (rule.clusters.is_empty() || rule.registries.is_empty()) {
                return Err(format!(
                    "rules[{i}]: attach/detach/check/probe need 'clusters' and 'registries' (scope patterns, or \"*\")"
                ));
            }
            if rule.actions.contains(&Action::Import) && rule.registries.is_empty() {
                return Err(format!(
                    "rules[{i}]: import needs 'registries' (scope patterns, or \"*\")"
                ));
            }
            if rule.actions.contains(&Action::PrepareKubeletIdentity) && rule.identities.is_empty() {
                return Err(format!(
                    "rules[{i}]: prepareKubeletIdentity needs 'identities' (scope patterns, or \"*\")"
                ));
            }
            if rule.groups.iter().any(Uuid::is_nil) {
                return Err(format!("{}: the nil GUID is not a group", at("groups")));
            }
            rules.push(rule);
        }
        Ok(Policy { rules })
    }

    pub fn load(path: &Path) -> Result<Policy, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Policy::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The first rule that matches the caller and allows the request; deny otherwise.
    pub fn decide(&self, caller: &Caller, ask: &Ask<'_>) -> Decision {
        let mut refused = Vec::new();
        for rule in self.rules.iter().filter(|r| r.matches_caller(caller)) {
            match rule.refuses(ask) {
                None => return Decision::allow(&rule.name),
                Some(why) => refused.push(format!("'{}' does not cover {why}", rule.name)),
            }
        }
        Decision::deny(if refused.is_empty() {
            format!("no rule of the policy names the caller {}", caller.principal())
        } else {
            format!("not allowed: {}", refused.join("; "))
        })
    }

    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }
}

/// The policy in force, shared by every request; `None` means "allow everything" (only with
/// `--auth none` and no policy file).
#[derive(Clone)]
pub struct PolicyHandle {
    current: Arc<RwLock<Option<Arc<Policy>>>>,
}

impl PolicyHandle {
    pub fn open() -> Self {
        PolicyHandle {
            current: Arc::new(RwLock::new(None)),
        }
    }

    /// A policy without rules: everything is denied.
    pub fn deny_all() -> Self {
        Self::fixed(Policy { rules: Vec::new() })
    }

    pub fn fixed(policy: Policy) -> Self {
        PolicyHandle {
            current: Arc::new(RwLock::new(Some(Arc::new(policy)))),
        }
    }

    pub fn decide(&self, caller: &Caller, ask: &Ask<'_>) -> Decision {
        let policy = self.current.read().expect("policy lock").clone();
        match policy {
            Some(p) => p.decide(caller, ask),
            None => Decision::allow("open (--auth none without a policy)"),
        }
    }

    /// Loads `path` (an error stops start-up) and reloads it when its modification time or
    /// size changes, until `stop`. A reload that fails validation is logged and ignored.
    pub fn watch(path: PathBuf, every: Duration, stop: CancellationToken) -> Result<Self, String> {
        let policy = Policy::load(&path)?;
        tracing::info!(path = %path.display(), rules = policy.rule_count(), "authorisation policy loaded");
        let handle = PolicyHandle::fixed(policy);
        let h = handle.clone();
        let stamp = |p: &Path| std::fs::metadata(p).ok().map(|m| (m.modified().ok(), m.len()));
        let mut last: Option<(Option<SystemTime>, u64)> = stamp(&path);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(every) => {}
                }
                let now = stamp(&path);
                if now == last {
                    continue;
                }
                last = now;
                match Policy::load(&path) {
                    Ok(p) => {
                        tracing::info!(path = %path.display(), rules = p.rule_count(), "authorisation policy reloaded");
                        *h.current.write().expect("policy lock") = Some(Arc::new(p));
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "the changed policy is invalid; the previous one stays in force")
                    }
                }
            }
        });
        Ok(handle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUB1: &str = "11111111-1111-4111-8111-111111111111";
    const SUB2: &str = "22222222-2222-4222-8222-222222222222";
    const GROUP: &str = "9a0b0000-0000-4000-8000-000000000001";

    fn cluster(sub: &str, rg: &str) -> String {
        format!("/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ContainerService/managedClusters/aks")
    }
    fn registry(sub: &str) -> RegistryRef {
        format!("/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/acrone1")
            .parse()
            .unwrap()
    }

    fn policy() -> Policy {
        Policy::parse(&format!(
            r#"{{ "rules": [
              {{ "name": "portal", "callers": {{ "roles": ["Attachments.ReadWrite"], "apiKeys": ["portal"] }},
                 "actions": ["attach", "detach", "read"],
                 "clusters": ["/subscriptions/{SUB1}/resourceGroups/rg-prod"],
                 "registries": ["/subscriptions/{SUB1}"], "groups": ["{GROUP}"] }},
              {{ "name": "auditors", "callers": {{ "roles": ["Audit.Read"] }}, "actions": ["readAudit", "readAllJobs"] }}
            ] }}"#
        ))
        .unwrap()
    }

    fn portal() -> Caller {
        Caller::entra(
            "90a7a1a0-0000-4000-8000-0000000000a1".into(),
            None,
            None,
            vec!["Attachments.ReadWrite".into()],
        )
    }

    #[test]
    fn scopes_allow_below_and_deny_beside() {
        let p = policy();
        let reg = registry(SUB1);
        let ask = |c: &str, g: Option<Uuid>| Ask::Pair {
            action: Action::Attach,
            cluster: Box::leak(c.to_string().into_boxed_str()),
            registry: Box::leak(Box::new(reg.clone())),
            group: g,
        };
        let d = p.decide(&portal(), &ask(&cluster(SUB1, "rg-prod"), None));
        assert_eq!(d.rule.as_deref(), Some("portal"), "{d:?}");
        // Case-insensitive, and a resource group prefix is not a name prefix.
        assert!(p.decide(&portal(), &ask(&cluster(SUB1, "RG-PROD"), None)).allowed);
        assert!(!p.decide(&portal(), &ask(&cluster(SUB1, "rg-prod-2"), None)).allowed);
        // Another subscription.
        let d = p.decide(&portal(), &ask(&cluster(SUB2, "rg-prod"), None));
        assert!(!d.allowed && d.reason.contains("does not cover cluster"), "{d:?}");
        // Groups: only the listed ones.
        assert!(
            p.decide(&portal(), &ask(&cluster(SUB1, "rg-prod"), Some(GROUP.parse().unwrap())))
                .allowed
        );
        assert!(
            !p.decide(&portal(), &ask(&cluster(SUB1, "rg-prod"), Some(Uuid::new_v4())))
                .allowed
        );
    }

    #[test]
    fn registries_in_another_subscription_and_bare_names_are_refused() {
        let p = policy();
        let c = cluster(SUB1, "rg-prod");
        let other = registry(SUB2);
        let d = p.decide(
            &portal(),
            &Ask::Pair {
                action: Action::Attach,
                cluster: &c,
                registry: &other,
                group: None,
            },
        );
        assert!(!d.allowed && d.reason.contains("registry"), "{d:?}");
        let name: RegistryRef = "acrdemo".parse().unwrap();
        let d = p.decide(
            &portal(),
            &Ask::Pair {
                action: Action::Attach,
                cluster: &c,
                registry: &name,
                group: None,
            },
        );
        assert!(!d.allowed && d.reason.contains("resource id"), "{d:?}");
    }

    #[test]
    fn an_import_needs_the_target_and_a_source_by_id_covered() {
        let p = Policy::parse(&format!(
            r#"{{ "rules": [ {{ "name": "importer", "callers": {{ "apiKeys": ["ci"] }}, "actions": ["import"],
                 "registries": ["/subscriptions/{SUB1}"] }} ] }}"#
        ))
        .unwrap();
        let ci = Caller::api_key("ci".into());
        let (ours, theirs) = (registry(SUB1), registry(SUB2));
        let ask = |source| Ask::Import {
            registry: &ours,
            source,
        };
        assert!(p.decide(&ci, &ask(None)).allowed);
        assert!(p.decide(&ci, &ask(Some(&ours))).allowed);
        // Another team's registry as the source: acr-attach would read it for the caller.
        let d = p.decide(&ci, &ask(Some(&theirs)));
        assert!(!d.allowed && d.reason.contains("source registry"), "{d:?}");
        let d = p.decide(
            &ci,
            &Ask::Import {
                registry: &theirs,
                source: None,
            },
        );
        assert!(!d.allowed, "{d:?}");
        assert!(
            Policy::parse(
                r#"{ "rules": [ { "name": "x", "callers": { "apiKeys": ["ci"] }, "actions": ["import"] } ] }"#
            )
            .is_err()
        );
    }

    #[test]
    fn unknown_callers_and_actions_are_denied() {
        let p = policy();
        let stranger = Caller::entra(Uuid::new_v4().to_string(), None, None, vec![]);
        let d = p.decide(&stranger, &Ask::Plain(Action::Read));
        assert!(!d.allowed && d.reason.contains("no rule"), "{d:?}");
        assert!(!p.decide(&portal(), &Ask::Plain(Action::ReadAudit)).allowed);
        assert!(
            p.decide(&Caller::api_key("portal".into()), &Ask::Plain(Action::Read))
                .allowed
        );
        assert!(
            !p.decide(&Caller::api_key("other".into()), &Ask::Plain(Action::Read))
                .allowed
        );
        assert!(!p.decide(&Caller::anonymous(), &Ask::Plain(Action::Read)).allowed);
    }

    #[test]
    fn invalid_policies_say_where() {
        let cases = [
            (
                r#"{"rules": [{"name": "a", "callers": {}, "actions": ["read"]}]}"#,
                "rules[0].callers",
            ),
            (
                r#"{"rules": [{"name": "a", "callers": {"roles": ["x"]}, "actions": ["fly"]}]}"#,
                "rules[0].actions[0]",
            ),
            (
                r#"{"rules": [{"name": "a", "callers": {"roles": ["x"]}, "actions": ["attach"], "clusters": ["/subs/x"], "registries": ["*"]}]}"#,
                "rules[0].clusters[0]",
            ),
            (
                r#"{"rules": [{"name": "a", "callers": {"roles": ["x"]}, "actions": ["attach"]}]}"#,
                "need 'clusters' and 'registries'",
            ),
            (
                r#"{"rules": [{"name": "a", "callers": {"roles": ["x"]}, "actions": ["read"], "color": 1}]}"#,
                "color",
            ),
            (
                r#"{"rules": [{"name": "a", "callers": {"roles": ["x"]}, "actions": ["read"]}, {"name": "a", "callers": {"roles": ["x"]}, "actions": ["read"]}]}"#,
                "used twice",
            ),
        ];
        for (text, expected) in cases {
            let e = Policy::parse(text).unwrap_err();
            assert!(e.contains(expected), "{text}: {e}");
        }
    }
}
