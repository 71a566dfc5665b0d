//! The OpenAPI shapes of the `verify` job (the drift sweep, `crate::ops::drift`): its input and
//! its result. Documentation only: the job kind writes both as JSON.
#![allow(dead_code)]
use serde_json::Value;
use utoipa::ToSchema;

/// The arguments of a `verify` job (the drift sweep).
#[derive(ToSchema)]
pub struct VerifyJobInput {
    /// The interval window the sweep belongs to (its start, RFC 3339), or a label for a sweep
    /// enqueued by hand; a window is swept once.
    window: String,
}

/// The result of a `verify` job: what one drift sweep found and did.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct VerifyResult {
    window: String,
    /// True when the window had been swept already (nothing else is reported then).
    skipped: Option<bool>,
    /// Pairs verified (attached or drifted ones).
    checked: Option<i64>,
    /// Pairs Azure shows (including `restored`).
    attached: Option<i64>,
    /// Drifted pairs that Azure shows again (re-granted by hand, or repaired).
    restored: Option<i64>,
    /// Pairs drifted now.
    drifted: Option<i64>,
    /// `{reason: count}` (`assignmentGone`, `kubeletIdentityChanged`, `clusterGone`,
    /// `registryGone`, `registryMoved`, `modeSwitched`).
    #[schema(value_type = Option<Object>)]
    drifted_by_reason: Option<Value>,
    /// Pairs that drifted since the previous sweep (or for another reason).
    newly_drifted: Option<i64>,
    /// Attach jobs enqueued to repair drifted pairs (`ACR_ATTACH_REPAIR_DRIFT`).
    repaired: Option<i64>,
    repair_enabled: Option<bool>,
    /// Pairs not verified this time (Azure could not be read for them).
    unverified: Option<i64>,
    /// Pairs an attach or detach changed while the sweep ran (verified next time).
    changed_meanwhile: Option<i64>,
    /// Registries whose role assignments were listed (one list each).
    registries_read: Option<i64>,
    /// ARM calls the sweep made, in all and by operation.
    arm_calls: Option<i64>,
    #[schema(value_type = Option<Object>)]
    arm_calls_by_operation: Option<Value>,
    /// Up to 100 drifted pairs: `{cluster, registry, via, reason, new, detail}`.
    #[schema(value_type = Option<Vec<Object>>)]
    drifts: Option<Vec<Value>>,
    /// Up to 100 repairs: `{cluster, registry, reason, jobId}`.
    #[schema(value_type = Option<Vec<Object>>)]
    repairs: Option<Vec<Value>>,
    /// Up to 100 unverified pairs: `{cluster, registry, why}`.
    #[schema(value_type = Option<Vec<Object>>)]
    unverified_pairs: Option<Vec<Value>>,
}
