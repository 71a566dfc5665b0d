//! Turning a classified Azure error into the job's next move, with the per-class budgets:
//! transient errors retry until the deadline; `AuthorizationFailed` is retried briefly and
//! then fails naming the exact permission and scope; validation errors fail at once.
use serde::Serialize;
use serde_json::json;

use super::OpsSettings;
use super::waits::{Verdict, Waits, condition, human, not_yet};
use crate::azure::{AzureError, AzureErrorClass, ErrorKind};
use crate::queue::JobError;

/// ARM's own words, for the job's error details (support needs the request ids).
pub fn details(e: &AzureError) -> serde_json::Value {
    json!({
        "operation": e.operation,
        "status": e.status,
        "armCode": e.code,
        "armMessage": e.message,
        "requestId": e.request_id,
        "correlationId": e.correlation_id,
    })
}

fn arm_words(e: &AzureError) -> String {
    match &e.code {
        Some(code) => format!("{code}: {}", e.message),
        None => e.message.clone(),
    }
}

/// The generic mapping; callers handle NotFound, PrincipalNotFound and RoleAssignmentExists
/// where those mean something specific.
pub fn generic<C: Serialize>(
    e: AzureError,
    what: &str,
    waits: &mut Waits,
    settings: &OpsSettings,
    checkpoint: impl Fn(&Waits) -> C,
) -> JobError {
    match e.class() {
        // Quota is shared: the bucket already knows (see `azure::quota`); the job waits for
        // its slot without using an attempt. The job deadline still bounds it.
        AzureErrorClass::Throttled => {
            let delay = e.retry_after.unwrap_or(settings.retry_base);
            let message = format!("{what} waits for ARM's request quota: {}", arm_words(&e));
            match e.kind {
                ErrorKind::Quota => JobError::planned_wait(condition::ARM_QUOTA, "ArmQuotaWait", message),
                _ => JobError::not_yet_consistent(
                    condition::ARM_QUOTA,
                    e.code.clone().unwrap_or_else(|| "TooManyRequests".into()),
                    message,
                )
                .with_details(details(&e)),
            }
            .with_retry_after(Some(delay))
            .with_checkpoint(checkpoint(waits))
        }
        AzureErrorClass::Transient => JobError::transient(
            e.code.clone().unwrap_or_else(|| "AzureUnavailable".into()),
            format!("{what} failed transiently ({}); retrying", arm_words(&e)),
        )
        .with_retry_after(e.retry_after)
        .with_details(details(&e))
        .with_checkpoint(checkpoint(waits)),
        AzureErrorClass::AuthorizationFailed => {
            let denied = e.authorization().unwrap_or_default();
            let action = denied.action.unwrap_or_else(|| "(not stated)".into());
            let scope = denied.scope.unwrap_or_else(|| "(not stated)".into());
            match waits.poll(condition::CALLER_PERMISSION, settings.authorization_budget) {
                Verdict::Wait(delay) => not_yet(
                    condition::CALLER_PERMISSION,
                    "AuthorizationFailed",
                    format!(
                        "acr-attach may not perform '{action}' on '{scope}' yet; a grant made recently can take minutes to propagate"
                    ),
                    delay,
                    &checkpoint(waits),
                )
                .with_details(details(&e)),
                Verdict::Exhausted(waited) => JobError::permanent(
                    "AuthorizationFailed",
                    format!(
                        "acr-attach's identity lacks the permission '{action}' on scope '{scope}' (still denied after {}). {}",
                        human(waited),
                        grant_hint(&action)
                    ),
                )
                .with_details(details(&e)),
            }
        }
        AzureErrorClass::NotFound => JobError::permanent(
            e.code.clone().unwrap_or_else(|| "NotFound".into()),
            format!("{what}: {}", arm_words(&e)),
        )
        .with_details(details(&e)),
        _ => JobError::permanent(
            e.code.clone().unwrap_or_else(|| "AzureRequestFailed".into()),
            format!("{what} failed: {}", arm_words(&e)),
        )
        .with_details(details(&e)),
    }
}

/// Which built-in roles (or Graph permission) carry what is missing (the smallest first): not
/// "are you an Owner".
fn grant_hint(action: &str) -> String {
    let a = action.to_ascii_lowercase();
    if !a.contains('/') && a.contains('.') {
        // A Microsoft Graph permission (e.g. GroupMember.ReadWrite.All), not an ARM action.
        return format!(
            "Grant acr-attach's application the Microsoft Graph application permission '{action}' (with admin \
             consent), or make it an owner of the group."
        );
    }
    if a.starts_with("microsoft.authorization/roleassignments/") {
        "Grant it 'Role Based Access Control Administrator' (which can be constrained to assigning only the pull roles) \
         or 'User Access Administrator' on the registry, its resource group or subscription."
            .into()
    } else if a.ends_with("/read") {
        "Grant it 'Reader' on the resource, its resource group or subscription.".into()
    } else {
        "Grant it a role that includes this action at that scope.".into()
    }
}
