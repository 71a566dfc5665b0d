//! ARM resource ids, parsed once into types.
//!
//! Every URL the client builds comes from one of these types, never from a raw string, so a
//! malformed or hostile id is rejected at the edge (with a message precise enough to return
//! to an API user in a 400) instead of turning into a strange request to ARM.
//!
//! ARM compares ids case-insensitively and returns them in varying casing (`resourcegroups`
//! vs `resourceGroups`, upper-case names), so equality and hashing here are case-insensitive,
//! `Display` prints one canonical form, and [`ResourceId::lower_key`] gives a stable key for
//! storage and deduplication.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;
use uuid::Uuid;

/// A resource id or resource name that failed validation. The message says what was wrong
/// and what was expected; it is meant to be shown to API users as-is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} '{input}': {reason}")]
pub struct IdError {
    /// What was being parsed ("registry id", "subscription id", ...).
    pub what: &'static str,
    /// The offending input (truncated to 200 characters).
    pub input: String,
    /// What was wrong and what was expected.
    pub reason: String,
}

impl IdError {
    fn new(what: &'static str, input: &str, reason: impl Into<String>) -> Self {
        let mut shown: String = input.chars().take(200).collect();
        if input.chars().count() > 200 {
            shown.push('…');
        }
        IdError {
            what,
            input: shown,
            reason: reason.into(),
        }
    }
}

/// An Azure subscription id (a GUID), printed lower-case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubscriptionId(Uuid);

impl SubscriptionId {
    /// Wraps a GUID.
    pub fn new(id: Uuid) -> Self {
        SubscriptionId(id)
    }
    /// The GUID.
    pub fn uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Display for SubscriptionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl FromStr for SubscriptionId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        parse_guid(s).map(SubscriptionId).ok_or_else(|| {
            IdError::new(
                "subscription id",
                s,
                "expected a GUID like 00000000-0000-0000-0000-000000000000",
            )
        })
    }
}

/// Parses a hyphenated GUID (the only form ARM uses in ids), case-insensitively.
pub(crate) fn parse_guid(s: &str) -> Option<Uuid> {
    if s.len() != 36 {
        return None;
    }
    Uuid::parse_str(s).ok()
}

/// One `{type}/{name}` pair below a provider namespace.
#[derive(Debug, Clone)]
struct TypeName {
    ty: String,
    name: String,
}

/// A parsed ARM resource id or scope:
/// `/subscriptions/{sub}[/resourceGroups/{rg}][/providers/{ns}/{type}/{name}[/{type}/{name}]...]`,
/// or a tenant-level provider id such as `/providers/Microsoft.Management/managementGroups/{id}`.
///
/// Extension resources (a second `/providers/` segment) are not a `ResourceId`; the one
/// extension this service uses, role assignments, has its own [`RoleAssignmentId`].
#[derive(Debug, Clone)]
pub struct ResourceId {
    subscription: Option<SubscriptionId>,
    resource_group: Option<String>,
    namespace: Option<String>,
    types: Vec<TypeName>,
}

const RESOURCE_ID_FORM: &str = "expected /subscriptions/{subscriptionId}[/resourceGroups/{resourceGroup}][/providers/{Namespace}/{type}/{name}...]";

impl ResourceId {
    /// The subscription-level scope `/subscriptions/{sub}`.
    pub fn subscription_scope(subscription: SubscriptionId) -> Self {
        ResourceId {
            subscription: Some(subscription),
            resource_group: None,
            namespace: None,
            types: Vec::new(),
        }
    }

    /// The subscription, if the id has one (tenant-level ids do not).
    pub fn subscription(&self) -> Option<SubscriptionId> {
        self.subscription
    }

    /// The resource group name as given.
    pub fn resource_group(&self) -> Option<&str> {
        self.resource_group.as_deref()
    }

    /// The provider namespace, e.g. `Microsoft.ContainerRegistry`.
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    /// The full resource type, e.g. `Microsoft.ContainerRegistry/registries`, or
    /// `Microsoft.Resources/subscriptions` / `Microsoft.Resources/resourceGroups` for those scopes.
    pub fn resource_type(&self) -> String {
        match &self.namespace {
            Some(ns) => {
                let mut s = ns.clone();
                for t in &self.types {
                    s.push('/');
                    s.push_str(&t.ty);
                }
                s
            }
            None if self.resource_group.is_some() => "Microsoft.Resources/resourceGroups".into(),
            None => "Microsoft.Resources/subscriptions".into(),
        }
    }

    /// The last name in the id (resource name, resource group name or subscription id).
    pub fn name(&self) -> String {
        if let Some(t) = self.types.last() {
            t.name.clone()
        } else if let Some(rg) = &self.resource_group {
            rg.clone()
        } else {
            self.subscription.map(|s| s.to_string()).unwrap_or_default()
        }
    }

    /// True if this is exactly a resource (not a subscription or resource-group scope).
    pub fn is_resource(&self) -> bool {
        !self.types.is_empty()
    }

    /// The canonical id lower-cased: a stable key for storage, locks and deduplication.
    pub fn lower_key(&self) -> String {
        self.to_string().to_ascii_lowercase()
    }

    /// The canonical path segments (without the leading slash), for URL building.
    pub(crate) fn segments(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(sub) = self.subscription {
            out.push("subscriptions".to_string());
            out.push(sub.to_string());
        }
        if let Some(rg) = &self.resource_group {
            out.push("resourceGroups".to_string());
            out.push(rg.clone());
        }
        if let Some(ns) = &self.namespace {
            out.push("providers".to_string());
            out.push(ns.clone());
            for t in &self.types {
                out.push(t.ty.clone());
                out.push(t.name.clone());
            }
        }
        out
    }

    fn parse_as(what: &'static str, s: &str) -> Result<Self, IdError> {
        let err = |reason: String| IdError::new(what, s, reason);
        if s.is_empty() {
            return Err(err(format!("the id is empty; {RESOURCE_ID_FORM}")));
        }
        if let Some(c) = s
            .chars()
            .find(|c| c.is_control() || c.is_whitespace() || matches!(c, '?' | '#' | '%' | '\\'))
        {
            return Err(err(format!(
                "the character {c:?} is not allowed in a resource id (no whitespace, query, fragment or percent-encoding)"
            )));
        }
        let Some(rest) = s.strip_prefix('/') else {
            return Err(err(format!("a resource id starts with '/'; {RESOURCE_ID_FORM}")));
        };
        let segs: Vec<&str> = rest.split('/').collect();
        if segs.iter().any(|p| p.is_empty()) {
            return Err(err("the id contains an empty segment ('//' or a trailing '/')".into()));
        }
        // A URL built from the id would drop or resolve them, naming another resource.
        if segs.iter().any(|p| *p == "." || *p == "..") {
            return Err(err("the id contains a '.' or '..' segment".into()));
        }
        let mut id = ResourceId {
            subscription: None,
            resource_group: None,
            namespace: None,
            types: Vec::new(),
        };
        let mut i = 0;
        if segs[0].eq_ignore_ascii_case("subscriptions") {
            let Some(sub) = segs.get(1) else {
                return Err(err("'/subscriptions' must be followed by a subscription id".into()));
            };
            id.subscription = Some(
                parse_guid(sub)
                    .map(SubscriptionId)
                    .ok_or_else(|| err(format!("subscription id '{sub}' is not a GUID")))?,
            );
            i = 2;
            if let Some(kw) = segs.get(i)
                && kw.eq_ignore_ascii_case("resourceGroups")
            {
                let Some(rg) = segs.get(i + 1) else {
                    return Err(err("'/resourceGroups' must be followed by a resource group name".into()));
                };
                validate_resource_group(rg).map_err(&err)?;
                id.resource_group = Some((*rg).to_string());
                i += 2;
            }
        }
        if i < segs.len() {
            if !segs[i].eq_ignore_ascii_case("providers") {
                return Err(err(format!("unexpected segment '{}'; {RESOURCE_ID_FORM}", segs[i])));
            }
            let Some(ns) = segs.get(i + 1) else {
                return Err(err(
                    "'/providers' must be followed by a provider namespace such as Microsoft.ContainerRegistry".into(),
                ));
            };
            validate_namespace(ns).map_err(&err)?;
            id.namespace = Some((*ns).to_string());
            let pairs = &segs[i + 2..];
            if pairs.is_empty() {
                return Err(err(format!(
                    "provider '{ns}' must be followed by a resource type and name"
                )));
            }
            if !pairs.len().is_multiple_of(2) {
                return Err(err(format!(
                    "resource type '{}' has no name after it",
                    pairs[pairs.len() - 1]
                )));
            }
            for pair in pairs.chunks(2) {
                let (ty, name) = (pair[0], pair[1]);
                if ty.eq_ignore_ascii_case("providers") {
                    return Err(err(
                        "extension resources (a second '/providers/' segment) are not supported here".into(),
                    ));
                }
                if !ty.chars().all(|c| c.is_ascii_alphanumeric()) {
                    return Err(err(format!(
                        "resource type '{ty}' must contain only letters and digits"
                    )));
                }
                id.types.push(TypeName {
                    ty: ty.to_string(),
                    name: name.to_string(),
                });
            }
        }
        if id.subscription.is_none() && id.namespace.is_none() {
            return Err(err(format!("the id names no scope; {RESOURCE_ID_FORM}")));
        }
        Ok(id)
    }
}

fn validate_resource_group(rg: &str) -> Result<(), String> {
    // ARM: 1-90 characters, ^[-\w\._\(\)]+$, must not end in a period.
    let len = rg.chars().count();
    if !(1..=90).contains(&len) {
        return Err(format!("resource group name '{rg}' must be 1-90 characters long"));
    }
    if !rg
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '(' | ')'))
    {
        return Err(format!(
            "resource group name '{rg}' may contain only letters, digits, '-', '_', '.', '(' and ')'"
        ));
    }
    if rg.ends_with('.') {
        return Err(format!("resource group name '{rg}' must not end with '.'"));
    }
    Ok(())
}

fn validate_namespace(ns: &str) -> Result<(), String> {
    let ok = ns.contains('.')
        && ns
            .split('.')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric()));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "provider namespace '{ns}' must look like Microsoft.ContainerRegistry (dot-separated letters and digits)"
        ))
    }
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for seg in self.segments() {
            write!(f, "/{seg}")?;
        }
        Ok(())
    }
}

impl FromStr for ResourceId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        ResourceId::parse_as("resource id", s)
    }
}

impl PartialEq for ResourceId {
    fn eq(&self, other: &Self) -> bool {
        self.lower_key() == other.lower_key()
    }
}
impl Eq for ResourceId {}
impl Hash for ResourceId {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.lower_key().hash(state)
    }
}

/// Implements Display/FromStr-based serde (ids travel as strings).
macro_rules! string_serde {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
string_serde!(SubscriptionId);
string_serde!(ResourceId);
string_serde!(ClusterId);
string_serde!(RegistryId);
string_serde!(RegistryName);
string_serde!(UserAssignedIdentityId);
string_serde!(RoleAssignmentId);

/// Defines a newtype over [`ResourceId`] restricted to one resource type, placed directly in a
/// resource group, with a name validated by `$validate`.
macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident, $what:literal, $ns:literal, $ty:literal, $validate:path) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub struct $name(ResourceId);

        impl $name {
            /// The full resource type this id must have.
            pub const RESOURCE_TYPE: &'static str = concat!($ns, "/", $ty);

            /// Builds the id from its parts (validated like a parsed id).
            pub fn new(
                subscription: SubscriptionId,
                resource_group: &str,
                name: &str,
            ) -> Result<Self, IdError> {
                format!(
                    "/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/{}/{}/{name}",
                    $ns, $ty
                )
                .parse()
            }
            /// The subscription.
            pub fn subscription(&self) -> SubscriptionId {
                self.0.subscription.expect("validated at parse time")
            }
            /// The resource group name.
            pub fn resource_group(&self) -> &str {
                self.0.resource_group.as_deref().expect("validated at parse time")
            }
            /// The resource name as given.
            pub fn name(&self) -> &str {
                &self.0.types[0].name
            }
            /// The generic id.
            pub fn as_resource_id(&self) -> &ResourceId {
                &self.0
            }
            /// Lower-cased canonical id, see [`ResourceId::lower_key`].
            pub fn lower_key(&self) -> String {
                self.0.lower_key()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                // Canonical: the provider namespace and type in their documented casing.
                write!(
                    f,
                    "/subscriptions/{}/resourceGroups/{}/providers/{}/{}/{}",
                    self.subscription(),
                    self.resource_group(),
                    $ns,
                    $ty,
                    self.name()
                )
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                let mut id = ResourceId::parse_as($what, s)?;
                let expected = concat!(
                    "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroup}/providers/",
                    $ns, "/", $ty, "/{name}"
                );
                if id.subscription.is_none() || id.resource_group.is_none() {
                    return Err(IdError::new(
                        $what,
                        s,
                        format!("a subscription and a resource group are required; expected {expected}"),
                    ));
                }
                let actual = id.resource_type();
                if id.types.len() != 1 || !actual.eq_ignore_ascii_case(Self::RESOURCE_TYPE) {
                    let actual = if id.namespace.is_none() {
                        "no resource type".to_string()
                    } else {
                        format!("resource type '{actual}'")
                    };
                    return Err(IdError::new(
                        $what,
                        s,
                        format!("expected resource type '{}', got {actual}; expected {expected}", Self::RESOURCE_TYPE),
                    ));
                }
                $validate(&id.types[0].name).map_err(|reason| IdError::new($what, s, reason))?;
                id.namespace = Some($ns.to_string());
                id.types[0].ty = $ty.to_string();
                Ok($name(id))
            }
        }

        impl From<$name> for ResourceId {
            fn from(id: $name) -> ResourceId {
                id.0
            }
        }

        impl AsRef<ResourceId> for $name {
            fn as_ref(&self) -> &ResourceId {
                &self.0
            }
        }
    };
}

fn validate_cluster_name(n: &str) -> Result<(), String> {
    // ^[a-zA-Z0-9]$|^[a-zA-Z0-9][-_a-zA-Z0-9]{0,61}[a-zA-Z0-9]$
    let ok_chars = n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    let first_last = n.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && n.chars().last().is_some_and(|c| c.is_ascii_alphanumeric());
    if (1..=63).contains(&n.len()) && ok_chars && first_last {
        Ok(())
    } else {
        Err(format!(
            "cluster name '{n}' must be 1-63 letters, digits, '-' or '_', starting and ending with a letter or digit"
        ))
    }
}

fn validate_registry_name(n: &str) -> Result<(), String> {
    if (5..=50).contains(&n.len()) && n.chars().all(|c| c.is_ascii_alphanumeric()) {
        Ok(())
    } else {
        Err(format!(
            "registry name '{n}' must be 5-50 letters and digits (no hyphens, dots or other characters)"
        ))
    }
}

fn validate_identity_name(n: &str) -> Result<(), String> {
    let ok = (3..=128).contains(&n.len())
        && n.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "identity name '{n}' must be 3-128 letters, digits, '-' or '_', starting with a letter or digit"
        ))
    }
}

typed_id!(
    /// An AKS managed cluster id (`Microsoft.ContainerService/managedClusters`).
    ClusterId,
    "cluster id",
    "Microsoft.ContainerService",
    "managedClusters",
    validate_cluster_name
);
typed_id!(
    /// A container registry id (`Microsoft.ContainerRegistry/registries`, name 5-50 alphanumerics).
    RegistryId,
    "registry id",
    "Microsoft.ContainerRegistry",
    "registries",
    validate_registry_name
);
typed_id!(
    /// A user-assigned managed identity id (`Microsoft.ManagedIdentity/userAssignedIdentities`).
    UserAssignedIdentityId,
    "user-assigned identity id",
    "Microsoft.ManagedIdentity",
    "userAssignedIdentities",
    validate_identity_name
);

impl RegistryId {
    /// The registry name as a validated [`RegistryName`].
    pub fn registry_name(&self) -> RegistryName {
        RegistryName(self.name().to_string())
    }
}

/// A bare registry name (5-50 ASCII letters and digits): safe to embed in a Resource Graph query.
#[derive(Debug, Clone)]
pub struct RegistryName(String);

impl RegistryName {
    /// The name as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RegistryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for RegistryName {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        validate_registry_name(s).map_err(|r| IdError::new("registry name", s, r))?;
        Ok(RegistryName(s.to_string()))
    }
}

impl PartialEq for RegistryName {
    fn eq(&self, other: &Self) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }
}
impl Eq for RegistryName {}
impl Hash for RegistryName {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.to_ascii_lowercase().hash(state)
    }
}

/// A role assignment id: `{scope}/providers/Microsoft.Authorization/roleAssignments/{guid}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RoleAssignmentId {
    scope: ResourceId,
    name: Uuid,
}

const ROLE_ASSIGNMENT_INFIX: &str = "/providers/microsoft.authorization/roleassignments/";

impl RoleAssignmentId {
    /// The assignment `name` under `scope`.
    pub fn new(scope: ResourceId, name: Uuid) -> Self {
        RoleAssignmentId { scope, name }
    }
    /// The scope the assignment is made at.
    pub fn scope(&self) -> &ResourceId {
        &self.scope
    }
    /// The assignment's GUID name.
    pub fn name(&self) -> Uuid {
        self.name
    }
    /// Lower-cased canonical id.
    pub fn lower_key(&self) -> String {
        self.to_string().to_ascii_lowercase()
    }
    pub(crate) fn segments(&self) -> Vec<String> {
        let mut s = self.scope.segments();
        s.extend([
            "providers".to_string(),
            "Microsoft.Authorization".to_string(),
            "roleAssignments".to_string(),
            self.name.to_string(),
        ]);
        s
    }
}

impl fmt::Display for RoleAssignmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/providers/Microsoft.Authorization/roleAssignments/{}",
            self.scope, self.name
        )
    }
}

impl FromStr for RoleAssignmentId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        const WHAT: &str = "role assignment id";
        let lower = s.to_ascii_lowercase();
        let Some(pos) = lower.rfind(ROLE_ASSIGNMENT_INFIX) else {
            return Err(IdError::new(
                WHAT,
                s,
                "expected {scope}/providers/Microsoft.Authorization/roleAssignments/{guid}",
            ));
        };
        let name_str = &s[pos + ROLE_ASSIGNMENT_INFIX.len()..];
        let name = parse_guid(name_str)
            .ok_or_else(|| IdError::new(WHAT, s, format!("the role assignment name '{name_str}' is not a GUID")))?;
        let scope = ResourceId::parse_as(WHAT, &s[..pos])?;
        Ok(RoleAssignmentId { scope, name })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUB: &str = "00000000-0000-0000-0000-000000000000";

    #[test]
    fn registry_id_parses_and_prints_canonically() {
        let raw = format!(
            "/SUBSCRIPTIONS/{SUB}/resourcegroups/My-RG/providers/microsoft.containerregistry/Registries/MyRegistry"
        );
        let id: RegistryId = raw.parse().unwrap();
        assert_eq!(id.name(), "MyRegistry");
        assert_eq!(id.resource_group(), "My-RG");
        assert_eq!(id.subscription().to_string(), SUB);
        assert_eq!(
            id.to_string(),
            format!(
                "/subscriptions/{SUB}/resourceGroups/My-RG/providers/Microsoft.ContainerRegistry/registries/MyRegistry"
            )
        );
        assert_eq!(
            id.lower_key(),
            format!(
                "/subscriptions/{SUB}/resourcegroups/my-rg/providers/microsoft.containerregistry/registries/myregistry"
            )
        );
        let other: RegistryId = id
            .to_string()
            .to_uppercase()
            .replace("SUBSCRIPTIONS", "subscriptions")
            .parse()
            .unwrap();
        assert_eq!(id, other, "comparison is case-insensitive");
        let json = serde_json::to_string(&id).unwrap();
        let back: RegistryId = serde_json::from_str(&json).unwrap();
        assert_eq!(back, id);
        assert_eq!(id.to_string(), id.as_resource_id().to_string());
    }

    #[test]
    fn cluster_and_identity_ids() {
        let c: ClusterId = format!(
            "/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.ContainerService/managedClusters/clustername1"
        )
        .parse()
        .unwrap();
        assert_eq!(c.name(), "clustername1");
        let u: UserAssignedIdentityId = format!("/subscriptions/{SUB}/resourcegroups/rgName/providers/Microsoft.ManagedIdentity/userAssignedIdentities/identityName").parse().unwrap();
        assert_eq!(u.resource_group(), "rgName");
        let built = UserAssignedIdentityId::new(u.subscription(), "rgName", "identityName").unwrap();
        assert_eq!(built, u);
    }

    #[test]
    fn dot_segments_are_refused() {
        for id in [
            "/subscriptions/08800157-1111-4111-8111-111111111111/providers/M.1/o/.",
            "/subscriptions/11111111-1111-4111-8111-111111111111/resourceGroups/rg/providers/Microsoft.Web/sites/..",
            "/subscriptions/11111111-1111-4111-8111-111111111111/resourceGroups/../providers/Microsoft.Web/sites/x",
        ] {
            let e = id.parse::<ResourceId>().unwrap_err().to_string();
            assert!(e.contains("'.' or '..'"), "{id}: {e}");
        }
        // A name that merely contains dots is fine.
        assert!(
            "/subscriptions/11111111-1111-4111-8111-111111111111/resourceGroups/rg..1"
                .parse::<ResourceId>()
                .is_ok()
        );
    }

    #[test]
    fn precise_errors() {
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            ("subscriptions/x", "starts with '/'"),
            (
                &format!(
                    "/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/c1"
                ),
                "expected resource type 'Microsoft.ContainerRegistry/registries', got resource type 'Microsoft.ContainerService/managedClusters'",
            ),
            (
                "/subscriptions/not-a-guid/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/abcde",
                "subscription id 'not-a-guid' is not a GUID",
            ),
            (
                &format!(
                    "/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/my-reg"
                ),
                "must be 5-50 letters and digits",
            ),
            (
                &format!("/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/abc"),
                "must be 5-50",
            ),
            (
                &format!("/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/"),
                "empty segment",
            ),
            (
                &format!("/subscriptions/{SUB}/resourceGroups/rg"),
                "got no resource type",
            ),
            (
                &format!("/subscriptions/{SUB}/providers/Microsoft.ContainerRegistry/registries/abcde"),
                "a subscription and a resource group are required",
            ),
            (
                &format!("/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries"),
                "has no name after it",
            ),
            (
                &format!(
                    "/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/abcde?x=1"
                ),
                "'?' is not allowed",
            ),
            (
                &format!(
                    "/subscriptions/{SUB}/resourceGroups/r g/providers/Microsoft.ContainerRegistry/registries/abcde"
                ),
                "' ' is not allowed",
            ),
            (
                &format!(
                    "/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/abcde/providers/Microsoft.Authorization/roleAssignments/x"
                ),
                "extension resources",
            ),
            (
                &format!("/subscriptions/{SUB}/resourceGroups/rg/foo/bar"),
                "unexpected segment 'foo'",
            ),
        ];
        for (input, expected) in cases {
            let err = input.parse::<RegistryId>().unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains(expected), "{input:?}: {msg}");
            assert!(msg.starts_with("invalid registry id"), "{msg}");
        }
        let err = "abc".parse::<RegistryName>().unwrap_err().to_string();
        assert!(err.contains("5-50"), "{err}");
        let err = "x".parse::<SubscriptionId>().unwrap_err().to_string();
        assert!(err.contains("expected a GUID"), "{err}");
    }

    #[test]
    fn generic_scopes() {
        let s: ResourceId = format!("/subscriptions/{SUB}").parse().unwrap();
        assert_eq!(s.resource_type(), "Microsoft.Resources/subscriptions");
        let rg: ResourceId = format!("/subscriptions/{SUB}/resourcegroups/testrg").parse().unwrap();
        assert_eq!(rg.to_string(), format!("/subscriptions/{SUB}/resourceGroups/testrg"));
        let mg: ResourceId = "/providers/Microsoft.Management/managementGroups/mg1".parse().unwrap();
        assert_eq!(mg.subscription(), None);
        assert_eq!(mg.name(), "mg1");
        let nested: ResourceId = format!("/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Automation/automationAccounts/TestAA/runbooks/RBTest").parse().unwrap();
        assert_eq!(
            nested.resource_type(),
            "Microsoft.Automation/automationAccounts/runbooks"
        );
        assert_eq!(nested.name(), "RBTest");
    }

    #[test]
    fn role_assignment_ids() {
        let raw = "/subscriptions/a925f2f7-5c63-4b7b-8799-25a5f97bc3b2/resourceGroups/testrg/providers/Microsoft.DocumentDb/databaseAccounts/test-db-account/providers/Microsoft.Authorization/roleAssignments/05c5a614-a7d6-4502-b150-c2fb455033ff";
        let id: RoleAssignmentId = raw.parse().unwrap();
        assert_eq!(id.name().to_string(), "05c5a614-a7d6-4502-b150-c2fb455033ff");
        assert_eq!(id.scope().name(), "test-db-account");
        assert_eq!(id.to_string(), raw);
        let upper: RoleAssignmentId = raw
            .to_uppercase()
            .replace("SUBSCRIPTIONS", "subscriptions")
            .parse()
            .unwrap();
        assert_eq!(upper, id);
        let err = format!("/subscriptions/{SUB}/providers/Microsoft.Authorization/roleAssignments/nope")
            .parse::<RoleAssignmentId>()
            .unwrap_err()
            .to_string();
        assert!(err.contains("'nope' is not a GUID"), "{err}");
    }
}
