//! ARM's token-bucket throttling: per subscription (or tenant), per calling principal, per
//! operation kind, with the `x-ms-ratelimit-remaining-*` headers and 429 + `Retry-After`.

use std::time::Instant;

use axum::http::StatusCode;

use super::errors::ArmError;
use crate::state::{BucketLevel, State};
use crate::world::Bucket;

/// Which bucket a request draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Reads,
    Writes,
    Deletes,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Reads => "reads",
            Kind::Writes => "writes",
            Kind::Deletes => "deletes",
        }
    }
    fn singular(self) -> &'static str {
        match self {
            Kind::Reads => "read",
            Kind::Writes => "write",
            Kind::Deletes => "delete",
        }
    }
}

/// A header name and the remaining count to put in it.
pub(crate) type Remaining = (String, u64);

/// Takes one token. `Ok` carries the remaining-quota header; `Err` the header and the 429.
pub(crate) fn take(
    st: &mut State,
    subscription: Option<&str>,
    caller_oid: &str,
    kind: Kind,
) -> Result<Remaining, (Remaining, ArmError)> {
    let cfg: Bucket = match kind {
        Kind::Reads => st.world.behaviour.throttling.reads,
        Kind::Writes => st.world.behaviour.throttling.writes,
        Kind::Deletes => st.world.behaviour.throttling.deletes,
    };
    let (scope_word, key) = match subscription {
        Some(s) => ("subscription", s.to_ascii_lowercase()),
        None => ("tenant", "tenant".to_string()),
    };
    let header = format!("x-ms-ratelimit-remaining-{scope_word}-{}", kind.as_str());
    let now = Instant::now();
    let level = st
        .buckets
        .entry((key.clone(), caller_oid.to_ascii_lowercase(), kind.as_str()))
        .or_insert(BucketLevel {
            tokens: cfg.bucket,
            last: now,
        });
    let refill = now.duration_since(level.last).as_secs_f64() * cfg.refill_per_second;
    level.tokens = (level.tokens + refill).min(cfg.bucket);
    level.last = now;
    if level.tokens >= 1.0 {
        level.tokens -= 1.0;
        return Ok((header, level.tokens.floor() as u64));
    }
    let wait = if cfg.refill_per_second > 0.0 {
        ((1.0 - level.tokens) / cfg.refill_per_second).ceil().max(1.0) as u64
    } else {
        3600
    };
    let (code, what) = match subscription {
        Some(s) => ("SubscriptionRequestsThrottled", format!("subscription '{s}'")),
        None => ("TenantRequestsThrottled", "tenant".to_string()),
    };
    let err = ArmError::new(
        StatusCode::TOO_MANY_REQUESTS,
        code,
        format!(
            "Number of '{}' requests for {what} actor '{caller_oid}' exceeded. Please try again after '{wait}' seconds after additional tokens are available. Refer to https://aka.ms/arm-throttling",
            kind.singular()
        ),
    )
    .with_header("retry-after", wait.to_string());
    Err(((header, 0), err))
}
