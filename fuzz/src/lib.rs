//! The properties the `arm_ids` fuzz target checks, as plain functions: libFuzzer calls
//! [`check`] (nightly flags, `cargo fuzz run arm_ids`), and the stable `replay` binary and
//! `cargo test` call it over the seeds and any crash files.
//!
//! One input is the fuzzer's bytes read as UTF-8 (lossily: invalid bytes become U+FFFD, so
//! every byte string is tried and a valid UTF-8 string is tried as itself). It is parsed as
//! every id type acr-attach has, and each success must satisfy:
//!
//! 1. **Round trip.** `parsed.to_string()` parses again to an equal value, and prints the same
//!    string again (`Display` is canonical: a fixpoint). The id in ASCII upper or lower case
//!    parses to an equal value with an equal hash (ARM ids compare case-insensitively).
//! 2. **Clean canonical form.** It starts with `/`, and holds no control character,
//!    whitespace, `?`, `#`, `%`, `\`, empty segment, nor a `.` or `..` segment; the ARM URL
//!    built from its segments (the way `AzureClient::url` does, with the `url` crate) has
//!    exactly those segments. (`..` *inside* a segment is legal: `rg..1` is a valid resource
//!    group name.)
//! 3. **Typed ids are resource ids.** What parses as a `ClusterId`, `RegistryId` or
//!    `UserAssignedIdentityId` parses as a `ResourceId` equal to it, of exactly that resource
//!    type, with the same subscription, resource group and name, and `T::new` of those parts
//!    gives it back; no input is two of these types.
//! 4. **The write guard.** `roles::check_assignment_write(scope, role)` is `Ok` only if the
//!    scope parses as a `RegistryId` (the one it returns) and the role is a pull role of that
//!    registry's subscription; and it is `Ok` for every registry with its canonical pull roles.
//!    `check_assignment_delete` is `Ok` exactly for registry scopes. Scopes tried: every id the
//!    input parses to (role assignment scopes included); roles tried: the pull roles of the
//!    scope's subscription and of another one, Owner, the tenant-level AcrPull, and, when the
//!    input has a line break, the text after the first one (the scope is the text before).
//! 5. **`RegistryRef`** (registry in API requests) is an id exactly when the trimmed input
//!    starts with `/`, equals what `RegistryId`/`RegistryName` parse, and round-trips.
//! 6. **The API agrees with its OpenAPI schema.** `api::extract::parse_cluster`,
//!    `parse_registry` and `parse_identity` accept every string their published pattern
//!    matches, and refuse every string it does not, except ids whose resource group has
//!    non-ASCII letters (documented at `RESOURCE_GROUP_RE`). Their 400 messages have no control
//!    characters and a length that does not grow with the input.
//! 7. **Errors.** Every failure is an `IdError` whose quoted input is at most 200 characters
//!    (then `…`). Nothing panics.

use acr_attach::api::extract;
use acr_attach::azure::roles::{self, PULL_ROLES};
use acr_attach::azure::{
    ACR_PULL, CONTAINER_REGISTRY_REPOSITORY_READER, ClusterId, IdError, RegistryId, RegistryName, ResourceId,
    RoleAssignmentId, SubscriptionId, UserAssignedIdentityId,
};
use acr_attach::ops::RegistryRef;
use std::collections::hash_map::DefaultHasher;
use std::fmt::{Debug, Display};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::OnceLock;
use uuid::Uuid;

/// Checks every property for one fuzzer input. Panics (with the input and what broke) if one fails.
pub fn check(data: &[u8]) {
    let s = String::from_utf8_lossy(data);
    check_str(&s);
    if let Some((scope, role)) = s.split_once('\n')
        && let Ok(scope) = scope.parse::<ResourceId>()
    {
        check_guard(&scope, role);
    }
}

/// [`check`] for a string.
pub fn check_str(s: &str) {
    let generic = s.parse::<ResourceId>();
    match &generic {
        Ok(id) => check_resource_id(s, id),
        Err(e) => check_error(s, e),
    }

    let cluster = check_typed::<ClusterId>(s, &generic);
    let registry = check_typed::<RegistryId>(s, &generic);
    let identity = check_typed::<UserAssignedIdentityId>(s, &generic);
    let typed = [cluster, registry, identity].iter().filter(|ok| **ok).count();
    assert!(
        typed <= 1,
        "{s:?} parses as {typed} of ClusterId, RegistryId, UserAssignedIdentityId"
    );

    check_registry_name(s);
    check_registry_ref(s);
    check_subscription_id(s);
    check_role_assignment_id(s);
    check_api(s, &generic);
}

/// `v` printed, parsed again: equal, and printed the same (`Display` is a fixpoint). The
/// input in ASCII upper and lower case parses to an equal value with an equal hash.
fn round_trip<T>(what: &str, input: &str, v: &T)
where
    T: FromStr<Err = IdError> + Display + PartialEq + Debug + Hash,
{
    let shown = v.to_string();
    let again: T = shown
        .parse()
        .unwrap_or_else(|e| panic!("{what}: {input:?} parses, but its canonical form {shown:?} does not: {e}"));
    assert!(
        again == *v,
        "{what}: {input:?} and its canonical form {shown:?} parse to different values: {v:?} vs {again:?}"
    );
    let twice = again.to_string();
    assert_eq!(twice, shown, "{what}: Display is not canonical for {input:?}");
    for variant in [input.to_ascii_uppercase(), input.to_ascii_lowercase()] {
        let other: T = variant
            .parse()
            .unwrap_or_else(|e| panic!("{what}: {input:?} parses, but not in another ASCII case {variant:?}: {e}"));
        assert!(
            other == *v,
            "{what}: {input:?} and {variant:?} differ only in case but are not equal"
        );
        assert_eq!(
            hash_of(&other),
            hash_of(v),
            "{what}: {input:?} and {variant:?} are equal but hash differently"
        );
    }
}

fn hash_of<T: Hash>(v: &T) -> u64 {
    let mut h = DefaultHasher::new();
    v.hash(&mut h);
    h.finish()
}

fn has_dot_segment(shown: &str) -> bool {
    shown.split('/').any(|seg| seg == "." || seg == "..")
}

/// The canonical form of an ARM id: `/`-led, non-empty segments, nothing URL-significant.
fn check_canonical_id(what: &str, input: &str, shown: &str) {
    assert!(
        shown.starts_with('/'),
        "{what}: canonical form {shown:?} of {input:?} does not start with '/'"
    );
    if let Some(c) = shown
        .chars()
        .find(|c| c.is_control() || c.is_whitespace() || matches!(c, '?' | '#' | '%' | '\\'))
    {
        panic!("{what}: canonical form {shown:?} of {input:?} contains {c:?}");
    }
    let segments: Vec<&str> = shown[1..].split('/').collect();
    assert!(
        segments.iter().all(|seg| !seg.is_empty()),
        "{what}: canonical form {shown:?} of {input:?} has an empty segment"
    );
    assert!(
        !has_dot_segment(shown),
        "{what}: canonical form {shown:?} of {input:?} has a '.' or '..' segment (a URL built from it drops or climbs it)"
    );
    // The URL the client builds (AzureClient::url: path_segments_mut().pop_if_empty().extend(segments))
    // must name exactly these segments.
    let mut url = url::Url::parse("https://management.azure.com/").expect("a valid base URL");
    url.path_segments_mut()
        .expect("https has a path")
        .pop_if_empty()
        .extend(&segments);
    let back: Vec<String> = url
        .path_segments()
        .expect("https has a path")
        .map(|p| percent_encoding::percent_decode_str(p).decode_utf8_lossy().into_owned())
        .collect();
    assert!(
        back == segments,
        "{what}: the ARM URL built from {shown:?} (input {input:?}) is {url}, whose path is not the id"
    );
}

fn check_error(input: &str, e: &IdError) {
    let shown = e.input.chars().count();
    assert!(
        shown <= 201 && (shown <= 200 || e.input.ends_with('…')),
        "IdError for {input:?} quotes {shown} characters of it (at most 200 and '…')"
    );
    let _ = e.to_string();
}

fn check_resource_id(input: &str, id: &ResourceId) {
    let shown = id.to_string();
    check_canonical_id("ResourceId", input, &shown);
    round_trip("ResourceId", input, id);
    assert_eq!(
        id.lower_key(),
        shown.to_ascii_lowercase(),
        "ResourceId::lower_key of {input:?}"
    );
    assert!(
        id.subscription().is_some() || id.namespace().is_some(),
        "ResourceId {input:?} names no scope"
    );
    if id.resource_group().is_some() {
        assert!(
            id.subscription().is_some(),
            "ResourceId {input:?}: a resource group without a subscription"
        );
    }
    assert_eq!(
        id.is_resource(),
        id.namespace().is_some(),
        "ResourceId {input:?}: is_resource vs namespace"
    );
    let name = id.name();
    assert!(
        shown.ends_with(&format!("/{name}")),
        "ResourceId {input:?}: name() {name:?} is not its last segment"
    );
    check_guard_all_roles(id);
}

/// The three typed ids, through one trait so one function checks them.
trait Typed: FromStr<Err = IdError> + Display + PartialEq + Debug + Hash + Clone {
    const NAME: &'static str;
    const TYPE: &'static str;
    fn rid(&self) -> &ResourceId;
    fn parts(&self) -> (SubscriptionId, &str, &str);
    fn build(sub: SubscriptionId, rg: &str, name: &str) -> Result<Self, IdError>;
}

macro_rules! typed {
    ($t:ty) => {
        impl Typed for $t {
            const NAME: &'static str = stringify!($t);
            const TYPE: &'static str = <$t>::RESOURCE_TYPE;
            fn rid(&self) -> &ResourceId {
                self.as_resource_id()
            }
            fn parts(&self) -> (SubscriptionId, &str, &str) {
                (self.subscription(), self.resource_group(), self.name())
            }
            fn build(sub: SubscriptionId, rg: &str, name: &str) -> Result<Self, IdError> {
                <$t>::new(sub, rg, name)
            }
        }
    };
}
typed!(ClusterId);
typed!(RegistryId);
typed!(UserAssignedIdentityId);

/// Checks one typed id type; returns whether `s` parses as it.
fn check_typed<T: Typed>(s: &str, generic: &Result<ResourceId, IdError>) -> bool {
    let what = T::NAME;
    let v = match s.parse::<T>() {
        Ok(v) => v,
        Err(e) => {
            check_error(s, &e);
            return false;
        }
    };
    let generic = generic
        .as_ref()
        .unwrap_or_else(|e| panic!("{what}: {s:?} parses as {what} but not as ResourceId: {e}"));
    assert!(
        generic == v.rid(),
        "{what}: {s:?} parses to {v:?} but as ResourceId to {generic:?}"
    );
    let shown = v.to_string();
    assert_eq!(
        shown,
        v.rid().to_string(),
        "{what}: Display differs from its ResourceId's for {s:?}"
    );
    check_canonical_id(what, s, &shown);
    round_trip(what, s, &v);
    assert_eq!(v.rid().resource_type(), T::TYPE, "{what}: resource type of {s:?}");
    let (sub, rg, name) = v.parts();
    assert_eq!(v.rid().subscription(), Some(sub), "{what}: subscription of {s:?}");
    assert_eq!(v.rid().resource_group(), Some(rg), "{what}: resource group of {s:?}");
    assert_eq!(v.rid().name(), name, "{what}: name of {s:?}");
    let built = T::build(sub, rg, name).unwrap_or_else(|e| panic!("{what}::new of the parts of {s:?}: {e}"));
    assert_eq!(built.to_string(), shown, "{what}::new of the parts of {s:?}");
    true
}

fn check_registry_name(s: &str) {
    match s.parse::<RegistryName>() {
        Ok(n) => {
            assert_eq!(n.as_str(), s, "RegistryName keeps the name as given");
            assert!(
                (5..=50).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric()),
                "RegistryName accepted {s:?}"
            );
            round_trip("RegistryName", s, &n);
        }
        Err(e) => check_error(s, &e),
    }
}

fn check_registry_ref(s: &str) {
    let trimmed = s.trim();
    let as_id = trimmed.parse::<RegistryId>();
    let as_name = trimmed.parse::<RegistryName>();
    match s.parse::<RegistryRef>() {
        Ok(r) => {
            match &r {
                RegistryRef::Id(id) => {
                    assert!(
                        trimmed.starts_with('/'),
                        "RegistryRef: {s:?} is an id without a leading '/'"
                    );
                    assert!(
                        as_id.as_ref() == Ok(id),
                        "RegistryRef: {s:?} is {id:?}, RegistryId says {as_id:?}"
                    );
                    assert_eq!(r.name(), id.name(), "RegistryRef::name of {s:?}");
                }
                RegistryRef::Name(n) => {
                    assert!(
                        !trimmed.starts_with('/'),
                        "RegistryRef: {s:?} starts with '/' but is a name"
                    );
                    assert!(
                        as_name.as_ref() == Ok(n),
                        "RegistryRef: {s:?} is {n:?}, RegistryName says {as_name:?}"
                    );
                    assert_eq!(r.name(), n.as_str(), "RegistryRef::name of {s:?}");
                }
            }
            let shown = r.to_string();
            let again: RegistryRef = shown.parse().unwrap_or_else(|e| {
                panic!("RegistryRef: {s:?} parses, but its canonical form {shown:?} does not: {e}")
            });
            assert!(again == r, "RegistryRef: {s:?} and {shown:?} parse to different values");
            assert_eq!(
                again.to_string(),
                shown,
                "RegistryRef: Display is not canonical for {s:?}"
            );
        }
        Err(e) => {
            check_error(s, &e);
            assert!(
                as_id.is_err() && as_name.is_err(),
                "RegistryRef refuses {s:?} ({e}) but RegistryId/RegistryName accept it trimmed"
            );
        }
    }
}

fn check_subscription_id(s: &str) {
    match s.parse::<SubscriptionId>() {
        Ok(sub) => {
            let shown = sub.to_string();
            assert!(
                shown.len() == 36
                    && shown.eq_ignore_ascii_case(s)
                    && shown
                        .bytes()
                        .all(|b| b == b'-' || b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
                "SubscriptionId {s:?} prints as {shown:?}"
            );
            round_trip("SubscriptionId", s, &sub);
            let scope: ResourceId = format!("/subscriptions/{s}")
                .parse()
                .unwrap_or_else(|e| panic!("SubscriptionId {s:?} parses, its scope does not: {e}"));
            assert_eq!(scope.subscription(), Some(sub), "subscription scope of {s:?}");
        }
        Err(e) => check_error(s, &e),
    }
}

fn check_role_assignment_id(s: &str) {
    let ra = match s.parse::<RoleAssignmentId>() {
        Ok(ra) => ra,
        Err(e) => {
            check_error(s, &e);
            return;
        }
    };
    let shown = ra.to_string();
    let scope = ra.scope().to_string();
    check_canonical_id("RoleAssignmentId", s, &shown);
    round_trip("RoleAssignmentId", s, &ra);
    assert_eq!(
        shown,
        format!(
            "{scope}/providers/Microsoft.Authorization/roleAssignments/{}",
            ra.name()
        ),
        "RoleAssignmentId {s:?}"
    );
    assert_eq!(
        ra.lower_key(),
        shown.to_ascii_lowercase(),
        "RoleAssignmentId::lower_key of {s:?}"
    );
    let again: ResourceId = scope
        .parse()
        .unwrap_or_else(|e| panic!("RoleAssignmentId {s:?}: its scope {scope:?} does not parse: {e}"));
    assert!(
        &again == ra.scope(),
        "RoleAssignmentId {s:?}: scope does not round-trip"
    );
    check_guard_all_roles(ra.scope());
}

const OTHER_SUBSCRIPTION: &str = "22222222-2222-4222-8222-222222222222";
/// Owner, the role an attacker would like most.
const OWNER: Uuid = Uuid::from_u128(0x8e3af657_a8ff_443c_a75c_2fe8c4bcb635);

/// The write guard over the roles an attacker or a bug would try at `scope`.
fn check_guard_all_roles(scope: &ResourceId) {
    let other: SubscriptionId = OTHER_SUBSCRIPTION.parse().expect("a GUID");
    let sub = scope.subscription().unwrap_or(other);
    let mut candidates = vec![
        format!("/providers/Microsoft.Authorization/roleDefinitions/{ACR_PULL}"),
        roles::role_definition_id(&sub, OWNER),
        roles::role_definition_id(&other, ACR_PULL),
        String::new(),
    ];
    for role in [ACR_PULL, CONTAINER_REGISTRY_REPOSITORY_READER] {
        let id = roles::role_definition_id(&sub, role);
        candidates.push(id.to_ascii_uppercase());
        candidates.push(id);
    }
    for role in &candidates {
        check_guard(scope, role);
    }
}

/// `check_assignment_write` allows exactly pull roles at registry scopes (and no less);
/// `check_assignment_delete` allows exactly registry scopes.
pub fn check_guard(scope: &ResourceId, role: &str) {
    let shown = scope.to_string();
    let as_registry = shown.parse::<RegistryId>();
    let pull_role_of = |reg: &RegistryId| {
        PULL_ROLES
            .iter()
            .any(|r| roles::role_definition_id(&reg.subscription(), *r).eq_ignore_ascii_case(role))
    };
    match roles::check_assignment_write(scope, role) {
        Ok(reg) => {
            let parsed = as_registry.as_ref().unwrap_or_else(|e| {
                panic!("write guard: allowed role {role:?} at {shown:?}, which is not a registry: {e}")
            });
            assert!(&reg == parsed, "write guard: returned {reg:?} for scope {shown:?}");
            assert!(
                reg.as_resource_id() == scope,
                "write guard: returned {reg:?} for scope {shown:?}"
            );
            assert_eq!(
                reg.lower_key(),
                scope.lower_key(),
                "write guard: returned {reg:?} for scope {shown:?}"
            );
            assert!(
                pull_role_of(&reg),
                "write guard: allowed {role:?}, not a pull role of {shown:?}'s subscription"
            );
        }
        Err(why) => {
            if let Ok(reg) = &as_registry {
                assert!(
                    !pull_role_of(reg),
                    "write guard: refused pull role {role:?} at registry {shown:?}: {why}"
                );
            }
        }
    }
    match roles::check_assignment_delete(scope) {
        Ok(reg) => assert!(
            as_registry.as_ref() == Ok(&reg),
            "delete guard: allowed {shown:?}, which is not that registry"
        ),
        Err(why) => assert!(as_registry.is_err(), "delete guard: refused registry {shown:?}: {why}"),
    }
}

/// The OpenAPI patterns, compiled once (anchored, as JSON Schema patterns are matched here).
fn api_patterns() -> &'static [fancy_regex::Regex; 3] {
    static PATTERNS: OnceLock<[fancy_regex::Regex; 3]> = OnceLock::new();
    PATTERNS.get_or_init(|| {
        [
            extract::cluster_id_pattern(),
            extract::registry_pattern(),
            extract::identity_id_pattern(),
        ]
        .map(|p| fancy_regex::Regex::new(&p).unwrap_or_else(|e| panic!("OpenAPI pattern {p:?}: {e}")))
    })
}

/// A bound on an id's 400 message that does not grow with the input: the input is refused
/// above ~350 characters (quoted clipped to 200), and a parse error quotes it (clipped) and
/// pieces of it, control characters escaped as `\u{..}` (up to 6 characters each). The response
/// itself is cut at 2,000 characters (`api::error`), so this only catches a message that quotes
/// an unbounded input.
const API_MESSAGE_MAX: usize = 4000;

fn check_api(s: &str, generic: &Result<ResourceId, IdError>) {
    let [cluster_re, registry_re, identity_re] = api_patterns();
    let non_ascii_rg = generic
        .as_ref()
        .ok()
        .and_then(|id| id.resource_group())
        .is_some_and(|rg| !rg.is_ascii());
    let results = [
        ("cluster", cluster_re, extract::parse_cluster(s, "cluster").map(drop)),
        (
            "registry",
            registry_re,
            extract::parse_registry(s, "registry").map(drop),
        ),
        (
            "identity",
            identity_re,
            extract::parse_identity(s, "identity").map(drop),
        ),
    ];
    for (what, re, result) in results {
        let matched = re
            .is_match(s)
            .unwrap_or_else(|e| panic!("OpenAPI {what} pattern on {s:?}: {e}"));
        match result {
            Ok(()) => assert!(
                matched || non_ascii_rg,
                "API: parse_{what} accepts {s:?}, which the OpenAPI pattern refuses"
            ),
            Err(e) => {
                let msg = &e.body.message;
                assert!(
                    !matched,
                    "API: the OpenAPI pattern accepts {s:?}, parse_{what} refuses it: {msg}"
                );
                if let Some(c) = msg.chars().find(|c| c.is_control()) {
                    panic!("API: parse_{what}'s message for {s:?} contains {c:?}: {msg:?}");
                }
                let n = msg.chars().count();
                assert!(
                    n <= API_MESSAGE_MAX,
                    "API: parse_{what}'s message for {s:?} is {n} characters long"
                );
            }
        }
    }
}

/// The inputs `replay` and `cargo test` use by default: the committed seeds, and libFuzzer's
/// crash files and corpus if a fuzzing run left any.
pub fn default_inputs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    ["seeds", "artifacts/arm_ids", "corpus/arm_ids"]
        .iter()
        .map(|d| root.join(d))
        .filter(|p| p.exists())
        .collect()
}

/// One input that broke a property.
#[derive(Debug)]
pub struct Failure {
    pub path: PathBuf,
    pub input: String,
    pub message: String,
}

/// What [`replay`] found.
#[derive(Debug, Default)]
pub struct Report {
    pub inputs: usize,
    pub failures: Vec<Failure>,
}

/// Runs [`check`] over files and the files of directories (not recursively), catching panics
/// so every failing input is reported.
pub fn replay(paths: &[PathBuf]) -> std::io::Result<Report> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut inner: Vec<PathBuf> = std::fs::read_dir(p)?
                .map(|e| e.map(|e| e.path()))
                .collect::<Result<_, _>>()?;
            inner.retain(|f| f.is_file());
            inner.sort();
            files.extend(inner);
        } else {
            files.push(p.clone());
        }
    }
    let mut report = Report::default();
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    for path in files {
        let data = std::fs::read(&path)?;
        report.inputs += 1;
        if let Err(panic) = std::panic::catch_unwind(|| check(&data)) {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panicked".into());
            report.failures.push(Failure {
                path,
                input: String::from_utf8_lossy(&data).into_owned(),
                message,
            });
        }
    }
    std::panic::set_hook(quiet);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `cargo test`: the seeds, and any crash file or corpus a fuzzing run left, pass on stable.
    #[test]
    fn seeds_and_fuzzing_outputs_pass() {
        let report = replay(&default_inputs()).expect("readable inputs");
        assert!(report.inputs >= 10, "the committed seeds are missing: {report:?}");
        assert!(
            report.failures.is_empty(),
            "{} of {} inputs break a property:\n{:#?}",
            report.failures.len(),
            report.inputs,
            report.failures
        );
    }

    /// Edge cases worth keeping next to the seeds (each must pass every property).
    #[test]
    fn edge_cases_pass() {
        let sub = "11111111-1111-4111-8111-111111111111";
        let reg =
            format!("/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/acrone1");
        for s in [
            String::new(),
            "/".into(),
            "//".into(),
            format!("/subscriptions/{sub}/"),
            format!("/SUBSCRIPTIONS/{}", sub.to_uppercase()),
            format!("/subscriptions/{sub}/resourceGroups/rg..1"),
            format!("/subscriptions/{sub}/resourceGroups/rg./providers/A.B/c/d"),
            format!("/subscriptions/{sub}/resourceGroups/Ärger(1)"),
            format!("/subscriptions/{sub}/resourceGroups/Ärger/providers/Microsoft.ContainerRegistry/registries/acrone1"),
            format!("{reg}/replications/westeurope"),
            format!("{reg}/providers/Microsoft.Authorization/roleAssignments/05c5a614-a7d6-4502-b150-c2fb455033ff"),
            format!("{reg}\n/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/7f951dda-4ed3-4680-a7ca-43fe172d538d"),
            format!("{reg}\n/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/8e3af657-a8ff-443c-a75c-2fe8c4bcb635"),
            format!(" {reg} "),
            format!("{reg}\0"),
            format!("{reg}%2F"),
            "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/acrone1".into(),
            "/providers/Microsoft.Management/managementGroups/mg1/providers/Microsoft.Authorization/roleAssignments/05c5a614-a7d6-4502-b150-c2fb455033ff".into(),
            "  acrone1\t".into(),
            format!("/subscriptions/{sub}/resourceGroups/{}", "r".repeat(5000)),
            format!("/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/{}", "c'".repeat(3000)),
        ] {
            check(s.as_bytes());
        }
        check(b"\xff\xfe/subscriptions/\xc3");
    }

    /// The fuzzer's finding stays fixed: '.' and '..' names are refused.
    #[test]
    fn dot_segments_are_refused() {
        for s in [
            "/subScriptions/08800157-1111-4111-8111-111111111111/providers/M.1/o/.",
            "/subscriptions/11111111-1111-4111-8111-111111111111/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/..",
        ] {
            assert!(s.parse::<ResourceId>().is_err(), "{s}");
            check(s.as_bytes());
        }
    }
}
