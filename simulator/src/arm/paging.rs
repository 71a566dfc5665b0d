//! `{value, nextLink}` paging with an absolute `nextLink` back to the simulator.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::Ctx;
use super::errors::ArmError;
use crate::reply;

/// The offset encoded in `$skipToken` (0 when absent).
pub(crate) fn offset(ctx: &Ctx<'_>) -> Result<usize, ArmError> {
    match ctx.param("$skipToken") {
        None => Ok(0),
        Some(t) => t
            .parse()
            .map_err(|_| ArmError::bad_request("InvalidSkipToken", format!("The skip token '{t}' is not valid."))),
    }
}

/// Slices one page out of `values` and links the next one, preserving `extra` query parameters.
pub(crate) fn respond(ctx: &Ctx<'_>, values: Vec<Value>, extra: &[(&str, &str)]) -> Result<Response, ArmError> {
    let start = offset(ctx)?;
    let end = (start + ctx.page_size).min(values.len());
    let page: Vec<Value> = values.get(start..end).map(<[Value]>::to_vec).unwrap_or_default();
    let mut body = json!({ "value": page });
    if end < values.len() {
        let token = end.to_string();
        let mut pairs: Vec<(&str, &str)> = vec![("api-version", ctx.api_version.as_str())];
        pairs.extend_from_slice(extra);
        pairs.push(("$skipToken", token.as_str()));
        body["nextLink"] = Value::String(format!(
            "{}{}?{}",
            ctx.shared.base_url,
            ctx.raw_path,
            reply::encode_query(&pairs)
        ));
    }
    Ok(reply::json(StatusCode::OK, &body))
}
