//! `GET /v1/audit`: the audit trail for auditors (`readAudit` in the policy), newest first,
//! filtered and paged by `nextLink`.
use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::access::Access;
use super::error::{ApiError, ApiResult, ErrorResponse, quote};
use super::extract::{QueryParams, parse_cursor, parse_hyphenated, parse_limit};
use super::jobs::one_of;
use super::policy::Action;
use crate::audit::{AuditFilter, AuditRecord};

/// The actions the trail records.
const AUDITED: [Action; 8] = [
    Action::Attach,
    Action::Detach,
    Action::Check,
    Action::Probe,
    Action::Import,
    Action::Verify,
    Action::PrepareKubeletIdentity,
    Action::Cancel,
];

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Only this caller: `entra:<object id>` (a GUID, any case), `key:<name>` or `anonymous`.
    #[param(
        pattern = "^(anonymous|entra:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|key:[A-Za-z0-9][A-Za-z0-9._-]{0,62})$"
    )]
    pub caller: Option<String>,
    /// Only this action.
    #[param(inline, value_type = Option<AuditedAction>)]
    pub action: Option<String>,
    /// Only `allowed` or `denied` requests.
    #[param(inline, value_type = Option<AuditDecision>)]
    pub decision: Option<String>,
    /// Only the records of this job.
    #[param(value_type = Option<uuid::Uuid>, format = Uuid)]
    pub job_id: Option<String>,
    /// Records at or after this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub since: Option<String>,
    /// Records before this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub until: Option<String>,
    /// Page size, 1 to 500 (default 100).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 500, default = 100)]
    pub limit: Option<String>,
    /// Continuation token from `nextLink`.
    #[param(pattern = "^[1-9][0-9]{0,17}$")]
    pub cursor: Option<String>,
}

/// An audited action.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)]
enum AuditedAction {
    Attach,
    Detach,
    Check,
    Probe,
    Import,
    Verify,
    PrepareKubeletIdentity,
    Cancel,
}

/// The policy's decision.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)]
enum AuditDecision {
    Allowed,
    Denied,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditList {
    pub value: Vec<AuditRecord>,
    /// The next page, if there is one.
    pub next_link: Option<String>,
}

fn bad(name: &str, message: String) -> ApiError {
    ApiError::bad_request("InvalidQueryParameter", message).with_target(name)
}

/// An RFC 3339 date-time as the schema's `format: date-time` has it: date and time separated by
/// `T` (or `t`); chrono would also take a space, which the format does not.
fn time(name: &str, raw: Option<&str>) -> ApiResult<Option<DateTime<Utc>>> {
    raw.map(|t| {
        let separated_by_t = matches!(t.as_bytes().get(10), Some(b'T' | b't'));
        separated_by_t
            .then(|| DateTime::parse_from_rfc3339(t).ok())
            .flatten()
            .map(|t| t.with_timezone(&Utc))
            .ok_or_else(|| {
                bad(
                    name,
                    format!("{name} {} is not an RFC 3339 time like 2026-01-31T12:00:00Z", quote(t)),
                )
            })
    })
    .transpose()
}

/// A caller as the trail names it, exactly what the `caller` parameter's pattern allows: an
/// Entra object id is a hyphenated GUID in any case (the trail writes it in lower case).
fn parse_caller(c: &str) -> ApiResult<String> {
    if c == "anonymous" {
        return Ok(c.to_string());
    }
    if let Some(oid) = c.strip_prefix("entra:").and_then(parse_hyphenated) {
        return Ok(format!("entra:{oid}"));
    }
    if c.strip_prefix("key:")
        .is_some_and(|k| super::auth::keys::validate_name(k).is_ok())
    {
        return Ok(c.to_string());
    }
    Err(bad(
        "caller",
        format!("caller {} is not entra:<object id>, key:<name> or anonymous", quote(c)),
    ))
}

/// The audit trail: every mutating request, allowed or denied, newest first.
#[utoipa::path(get, path = "/v1/audit", tag = "audit", params(AuditParams),
    responses((status = 200, body = AuditList, description = "A page of audit records"),
              (status = "4XX", body = ErrorResponse, description = "Refused: the error says why and about what"),
        (status = "5XX", body = ErrorResponse, description = "Unavailable for now (503: the database or the Entra keys), or an internal error (500)")))]
pub async fn list_audit(
    State(state): State<AppState>,
    access: Access,
    QueryParams(p): QueryParams<AuditParams>,
) -> ApiResult<Json<AuditList>> {
    access.check(&state, Action::ReadAudit)?;
    let limit = parse_limit(p.limit.as_deref(), 100, 500)?;
    let action = p
        .action
        .as_deref()
        .map(|a| one_of("action", a, &AUDITED, Action::as_str))
        .transpose()?;
    let decision = p
        .decision
        .as_deref()
        .map(|d| one_of("decision", d, &["allowed", "denied"], |s| s))
        .transpose()?;
    let caller = p.caller.as_deref().map(parse_caller).transpose()?;
    // Hyphenated only, as the schema's `format: uuid` says (and as job ids are written).
    let job_id = p
        .job_id
        .as_deref()
        .map(|j| parse_hyphenated(j).ok_or_else(|| bad("jobId", format!("jobId {} is not a UUID", quote(j)))))
        .transpose()?;
    let before_id = parse_cursor(p.cursor.as_deref())?;
    let filter = AuditFilter {
        caller,
        action: action.map(|a| a.as_str().to_string()),
        decision: decision.map(str::to_string),
        job_id,
        since: time("since", p.since.as_deref())?,
        until: time("until", p.until.as_deref())?,
        before_id,
    };
    let mut value = state.audit.list(&filter, limit + 1).await?;
    let next_link = (value.len() as i64 > limit).then(|| {
        value.truncate(limit as usize);
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("caller", p.caller.as_deref()),
            ("action", p.action.as_deref()),
            ("decision", p.decision.as_deref()),
            ("jobId", p.job_id.as_deref()),
            ("since", p.since.as_deref()),
            ("until", p.until.as_deref()),
        ] {
            if let Some(v) = v {
                q.append_pair(k, v);
            }
        }
        q.append_pair("limit", &limit.to_string());
        q.append_pair("cursor", &value.last().map(|r| r.id).unwrap_or_default().to_string());
        format!("/v1/audit?{}", q.finish())
    });
    Ok(Json(AuditList { value, next_link }))
}
