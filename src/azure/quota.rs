//! ARM's request quota, as acr-attach budgets it before each call.
//!
//! ARM throttles with token buckets per (subscription, or the tenant for calls outside one;
//! calling principal; reads, writes or deletes): 250 reads at 25/s, 200 writes or deletes at
//! 10/s by default (`../shared/reference`, "Throttling"). Backing off after a 429, one job at a
//! time, wastes the quota and lets a fleet of jobs pile into it again; so every ARM call first
//! takes a token from acr-attach's own copy of its bucket ([`QuotaGate`], kept in Postgres so all
//! replicas share it: `crate::quota`). ARM's answers correct the copy: a 429's `Retry-After` and
//! low `x-ms-ratelimit-remaining-*` headers slow every job of the bucket. A 429 stays possible
//! (another client using the same principal, a lower limit than configured) and is still handled.
use futures::future::BoxFuture;
use std::time::Duration;

use super::config::CredentialSettings;

/// One bucket's size and refill.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limit {
    pub burst: f64,
    pub per_second: f64,
}

impl std::str::FromStr for Limit {
    type Err = String;
    /// `BURST/RATE`, e.g. `250/25` (250 tokens, 25 per second).
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("'{s}' is not BURST/PER_SECOND (e.g. 250/25)");
        let (b, r) = s.split_once('/').ok_or_else(bad)?;
        let burst: f64 = b.trim().parse().map_err(|_| bad())?;
        let per_second: f64 = r.trim().parse().map_err(|_| bad())?;
        if !(burst >= 1.0 && burst.is_finite() && per_second > 0.0 && per_second.is_finite()) {
            return Err(format!("'{s}': the burst must be at least 1 and the rate above 0"));
        }
        Ok(Limit { burst, per_second })
    }
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.burst, self.per_second)
    }
}

/// ARM's documented limits per subscription and principal (`../shared/reference`, 7.4).
pub const ARM_READS: Limit = Limit {
    burst: 250.0,
    per_second: 25.0,
};
pub const ARM_WRITES: Limit = Limit {
    burst: 200.0,
    per_second: 10.0,
};

/// The ARM quota acr-attach budgets (flags and environment variables of `acr-attach serve`).
#[derive(Debug, Clone, clap::Args)]
pub struct QuotaSettings {
    /// Budget ARM calls against shared token buckets before sending them. Off: only ARM's 429s
    /// slow jobs down.
    #[arg(long = "arm-quota", env = "ACR_ATTACH_ARM_QUOTA", default_value_t = true, action = clap::ArgAction::Set)]
    pub enabled: bool,
    /// Reads per subscription and principal: BURST/PER_SECOND.
    #[arg(
        long = "arm-quota-reads",
        env = "ACR_ATTACH_ARM_QUOTA_READS",
        default_value = "250/25"
    )]
    pub reads: Limit,
    /// Writes (PUT, PATCH, POST) per subscription and principal.
    #[arg(
        long = "arm-quota-writes",
        env = "ACR_ATTACH_ARM_QUOTA_WRITES",
        default_value = "200/10"
    )]
    pub writes: Limit,
    /// Deletes per subscription and principal.
    #[arg(
        long = "arm-quota-deletes",
        env = "ACR_ATTACH_ARM_QUOTA_DELETES",
        default_value = "200/10"
    )]
    pub deletes: Limit,
    /// A token due within this is waited for in place; a later one frees the worker and the
    /// job waits (`armQuota`) for its reserved slot.
    #[arg(long = "arm-quota-inline-wait", env = "ACR_ATTACH_ARM_QUOTA_INLINE_WAIT",
        value_parser = crate::duration::parse_duration, default_value = "200ms")]
    pub inline_wait: Duration,
}

impl Default for QuotaSettings {
    fn default() -> Self {
        QuotaSettings {
            enabled: true,
            reads: ARM_READS,
            writes: ARM_WRITES,
            deletes: ARM_WRITES,
            inline_wait: Duration::from_millis(200),
        }
    }
}

/// The operation kinds ARM budgets separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Reads,
    Writes,
    Deletes,
}

impl Kind {
    pub fn of(method: &reqwest::Method) -> Kind {
        match *method {
            reqwest::Method::GET | reqwest::Method::HEAD => Kind::Reads,
            reqwest::Method::DELETE => Kind::Deletes,
            _ => Kind::Writes,
        }
    }
    /// The word ARM's headers use (`x-ms-ratelimit-remaining-subscription-<word>`).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Reads => "reads",
            Kind::Writes => "writes",
            Kind::Deletes => "deletes",
        }
    }
}

/// One of ARM's buckets: `<subscription id|tenant>:<principal>:<kind>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    pub key: String,
    pub kind: Kind,
    /// Whether ARM counts it against a subscription (else the tenant).
    pub subscription: bool,
}

impl Bucket {
    /// The bucket an ARM request to `path` with `method` draws from, for `principal`.
    pub fn for_request(path: &str, method: &reqwest::Method, principal: &str) -> Bucket {
        let mut segs = path.split('/').filter(|s| !s.is_empty());
        let subscription = match (segs.next(), segs.next()) {
            (Some(first), Some(sub)) if first.eq_ignore_ascii_case("subscriptions") => Some(sub.to_ascii_lowercase()),
            _ => None,
        };
        let kind = Kind::of(method);
        Bucket {
            key: format!(
                "{}:{principal}:{}",
                subscription.as_deref().unwrap_or("tenant"),
                kind.as_str()
            ),
            kind,
            subscription: subscription.is_some(),
        }
    }

    /// The remaining-quota header ARM sends for this bucket.
    pub fn remaining_header(&self) -> String {
        let scope = if self.subscription { "subscription" } else { "tenant" };
        format!("x-ms-ratelimit-remaining-{scope}-{}", self.kind.as_str())
    }

    pub fn limit(&self, s: &QuotaSettings) -> Limit {
        match self.kind {
            Kind::Reads => s.reads,
            Kind::Writes => s.writes,
            Kind::Deletes => s.deletes,
        }
    }
}

/// Who calls ARM, for the bucket keys: the configured client id (every replica has the same),
/// or the credential's kind when it has none.
pub fn principal_label(credential: &CredentialSettings) -> String {
    match credential {
        CredentialSettings::ClientSecret { client_id, .. } | CredentialSettings::WorkloadIdentity { client_id, .. } => {
            client_id.to_ascii_lowercase()
        }
        CredentialSettings::ManagedIdentity { client_id: Some(id) } => id.to_ascii_lowercase(),
        CredentialSettings::ManagedIdentity { client_id: None } => "managed-identity".into(),
        CredentialSettings::AzureCli { .. } => "azure-cli".into(),
    }
}

/// What ARM told us about a bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Observed {
    /// 429 with this `Retry-After`.
    Throttled(Duration),
    /// A success whose remaining-quota header said this many tokens are left.
    Remaining(f64),
}

/// The shared bucket copies. `take` answers how long to wait before calling (zero: now); a wait
/// longer than the settings' inline wait is a reservation the job (`holder`) redeems when it
/// comes back, so it is not asked to wait again. Errors are the store's: the call goes ahead
/// unbudgeted (ARM's own 429 remains).
pub trait QuotaGate: Send + Sync {
    fn take<'a>(&'a self, bucket: &'a Bucket, holder: uuid::Uuid) -> BoxFuture<'a, Result<Duration, String>>;
    fn observe<'a>(&'a self, bucket: &'a Bucket, seen: Observed) -> BoxFuture<'a, Result<(), String>>;
    fn settings(&self) -> &QuotaSettings;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_follow_arm() {
        let b = Bucket::for_request(
            "/subscriptions/ABC/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/r",
            &reqwest::Method::GET,
            "app",
        );
        assert_eq!(b.key, "abc:app:reads");
        assert_eq!(b.remaining_header(), "x-ms-ratelimit-remaining-subscription-reads");
        let t = Bucket::for_request(
            "/providers/Microsoft.ResourceGraph/resources",
            &reqwest::Method::POST,
            "app",
        );
        assert_eq!(t.key, "tenant:app:writes");
        assert_eq!(t.remaining_header(), "x-ms-ratelimit-remaining-tenant-writes");
        assert_eq!(
            Bucket::for_request("/subscriptions/s/x", &reqwest::Method::DELETE, "a").kind,
            Kind::Deletes
        );
    }

    #[test]
    fn limits_parse() {
        assert_eq!(
            "250/25".parse::<Limit>().unwrap(),
            Limit {
                burst: 250.0,
                per_second: 25.0
            }
        );
        assert!("250".parse::<Limit>().is_err());
        assert!("0/1".parse::<Limit>().is_err());
        assert!("10/0".parse::<Limit>().is_err());
        assert!("a/b".parse::<Limit>().is_err());
    }
}
