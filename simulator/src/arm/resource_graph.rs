//! Azure Resource Graph `POST /providers/Microsoft.ResourceGraph/resources` with the small KQL
//! subset the service uses: `resources | where a =~ 'x' and b == 'y' | project ... | limit n`.

use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use super::Ctx;
use super::errors::ArmError;
use super::permissions::is_allowed;
use super::resources::{all_resources, to_json};
use crate::reply;
use crate::world::World;

#[derive(Debug, Clone, PartialEq)]
enum Expr {
    Field(String),
    ToString(String),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    EqCi,
    Eq,
    NeCi,
    Ne,
}

#[derive(Debug, PartialEq)]
enum Stage {
    Where(Vec<(Expr, Op, String)>),
    Project(Vec<(String, Expr)>),
    Limit(usize),
}

fn invalid(ctx: &Ctx<'_>, why: &str) -> ArmError {
    let _ = ctx;
    ArmError::bad_request(
        "BadRequest",
        "Please provide below info when asking for support: timestamp and correlationId of this request.",
    )
    .with_details(vec![
        json!({ "code": "InvalidQuery", "message": "Query is invalid. Please refer to the documentation for the Azure Resource Graph service and fix the error before retrying." }),
        json!({ "code": "ParserFailure", "message": why }),
    ])
}

/// Splits on `sep` outside single or double quotes.
fn split_outside_quotes(s: &str, sep: char) -> Vec<String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    for c in s.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == sep => {
                parts.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    parts.push(cur);
    parts
}

fn is_path(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|p| {
            !p.is_empty()
                && p.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

fn parse_expr(s: &str) -> Option<Expr> {
    let s = s.trim();
    if let Some(inner) = s.strip_prefix("tostring(").and_then(|r| r.strip_suffix(')')) {
        let inner = inner.trim();
        return is_path(inner).then(|| Expr::ToString(inner.to_string()));
    }
    is_path(s).then(|| Expr::Field(s.to_string()))
}

fn parse_literal(s: &str) -> Option<String> {
    let s = s.trim();
    let q = s.chars().next()?;
    ((q == '\'' || q == '"') && s.len() >= 2 && s.ends_with(q)).then(|| s[1..s.len() - 1].to_string())
}

fn parse_condition(c: &str) -> Option<(Expr, Op, String)> {
    for (tok, op) in [("=~", Op::EqCi), ("!~", Op::NeCi), ("==", Op::Eq), ("!=", Op::Ne)] {
        if let Some((l, r)) = c.split_once(tok) {
            return Some((parse_expr(l)?, op, parse_literal(r)?));
        }
    }
    None
}

fn parse(query: &str) -> Result<Vec<Stage>, String> {
    let mut pieces = split_outside_quotes(query, '|').into_iter();
    let table = pieces.next().unwrap_or_default();
    if !table.trim().eq_ignore_ascii_case("resources") {
        return Err(format!(
            "Table '{}' is not supported by this simulator; use 'resources'.",
            table.trim()
        ));
    }
    let mut stages = Vec::new();
    for piece in pieces {
        let piece = piece.trim();
        let (kw, rest) = piece.split_once(char::is_whitespace).unwrap_or((piece, ""));
        match kw.to_ascii_lowercase().as_str() {
            "where" => {
                let mut conds = Vec::new();
                for clause in super::resources::split_and(rest) {
                    conds.push(parse_condition(clause).ok_or_else(|| format!("Unsupported condition '{clause}'."))?);
                }
                stages.push(Stage::Where(conds));
            }
            "project" => {
                let mut cols = Vec::new();
                for item in split_outside_quotes(rest, ',') {
                    let item = item.trim();
                    let (name, expr) = match item.split_once('=') {
                        Some((n, e)) if is_path(n.trim()) && !n.contains('.') => (n.trim().to_string(), e),
                        _ => (item.rsplit('.').next().unwrap_or(item).to_string(), item),
                    };
                    cols.push((
                        name,
                        parse_expr(expr).ok_or_else(|| format!("Unsupported projection '{item}'."))?,
                    ));
                }
                stages.push(Stage::Project(cols));
            }
            "limit" | "take" => {
                stages.push(Stage::Limit(
                    rest.trim().parse().map_err(|_| format!("Invalid limit '{rest}'."))?,
                ));
            }
            other => {
                return Err(format!("Operator '{other}' is not supported by this simulator."));
            }
        }
    }
    Ok(stages)
}

fn eval(row: &Value, e: &Expr) -> Value {
    let path = match e {
        Expr::Field(p) | Expr::ToString(p) => p,
    };
    let mut cur = row;
    for part in path.split('.') {
        // KQL column names are case-sensitive; property bags are looked up exactly as well.
        cur = match cur.get(part) {
            Some(v) => v,
            None => {
                return if matches!(e, Expr::ToString(_)) {
                    Value::String(String::new())
                } else {
                    Value::Null
                };
            }
        };
    }
    match (e, cur) {
        (Expr::ToString(_), Value::String(_)) => cur.clone(),
        (Expr::ToString(_), Value::Null) => Value::String(String::new()),
        (Expr::ToString(_), other) => Value::String(other.to_string()),
        _ => cur.clone(),
    }
}

fn matches(row: &Value, (e, op, lit): &(Expr, Op, String)) -> bool {
    let v = eval(row, e);
    let s = match &v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    match op {
        Op::EqCi => s.eq_ignore_ascii_case(lit),
        Op::Eq => s == *lit,
        Op::NeCi => !s.eq_ignore_ascii_case(lit),
        Op::Ne => s != *lit,
    }
}

fn rows(ctx: &Ctx<'_>, world: &World, subs: Option<&Vec<String>>) -> Vec<Value> {
    all_resources(world)
        .into_iter()
        .filter(|r| subs.is_none_or(|s| s.iter().any(|x| x.eq_ignore_ascii_case(&r.sub.subscription_id))))
        .filter(|r| is_allowed(world, &ctx.caller_oid, &r.res_type().read_action(), &r.id()))
        .map(|r| {
            let full = to_json(ctx, world, &r);
            json!({
                "id": r.id(),
                "name": r.name(),
                "type": r.res_type().full().to_ascii_lowercase(),
                "tenantId": world.tenant_id,
                "kind": "",
                "location": r.location(),
                "resourceGroup": r.rg.name.to_ascii_lowercase(),
                "subscriptionId": r.sub.subscription_id,
                "managedBy": "",
                "sku": full.get("sku").cloned().unwrap_or(Value::Null),
                "plan": null,
                "properties": full.get("properties").cloned().unwrap_or(Value::Null),
                "tags": r.tags(),
                "identity": full.get("identity").cloned().unwrap_or(Value::Null),
                "zones": null,
                "extendedLocation": null,
            })
        })
        .collect()
}

/// `POST /providers/Microsoft.ResourceGraph/resources`.
pub(crate) fn query(ctx: &Ctx<'_>, world: &World) -> Result<Response, ArmError> {
    let body: Value =
        serde_json::from_slice(ctx.body).map_err(|e| invalid(ctx, &format!("Request body is not valid JSON: {e}")))?;
    let q = body
        .get("query")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(ctx, "The 'query' property is required."))?;
    let stages = parse(q).map_err(|why| invalid(ctx, &why))?;
    let subs: Option<Vec<String>> = body
        .get("subscriptions")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect());
    let mut data = rows(ctx, world, subs.as_ref());
    for stage in &stages {
        match stage {
            Stage::Where(conds) => data.retain(|r| conds.iter().all(|c| matches(r, c))),
            Stage::Project(cols) => {
                data = data
                    .iter()
                    .map(|r| {
                        let mut m = Map::new();
                        for (name, e) in cols {
                            m.insert(name.clone(), eval(r, e));
                        }
                        Value::Object(m)
                    })
                    .collect();
            }
            Stage::Limit(n) => data.truncate(*n),
        }
    }
    let options = body.get("options").cloned().unwrap_or(Value::Null);
    let top = options
        .get("$top")
        .and_then(Value::as_u64)
        .map(|t| t as usize)
        .unwrap_or(ctx.page_size)
        .clamp(1, 1000);
    let mut skip = options.get("$skip").and_then(Value::as_u64).unwrap_or(0) as usize;
    if let Some(tok) = options.get("$skipToken").and_then(Value::as_str) {
        skip = STANDARD
            .decode(tok)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| invalid(ctx, "Invalid $skipToken."))?;
    }
    let total = data.len();
    let page: Vec<Value> = data.into_iter().skip(skip).take(top).collect();
    let count = page.len();
    let table = options
        .get("resultFormat")
        .and_then(Value::as_str)
        .is_some_and(|f| f.eq_ignore_ascii_case("table"));
    let data = if table { to_table(&page) } else { Value::Array(page) };
    let mut resp = json!({
        "totalRecords": total,
        "count": count,
        "resultTruncated": "false",
        "facets": [],
        "data": data,
    });
    if skip + count < total {
        resp["$skipToken"] = Value::String(STANDARD.encode((skip + count).to_string()));
    }
    Ok(reply::json(StatusCode::OK, &resp))
}

fn to_table(rows: &[Value]) -> Value {
    let names: Vec<String> = rows
        .first()
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    let kind = |v: &Value| match v {
        Value::Object(_) | Value::Array(_) => "object",
        Value::Number(_) => "integer",
        Value::Bool(_) => "boolean",
        _ => "string",
    };
    let columns: Vec<Value> = names
        .iter()
        .map(|n| json!({ "name": n, "type": rows.first().and_then(|r| r.get(n)).map(kind).unwrap_or("string") }))
        .collect();
    let rows: Vec<Value> = rows
        .iter()
        .map(|r| Value::Array(names.iter().map(|n| r.get(n).cloned().unwrap_or(Value::Null)).collect()))
        .collect();
    json!({ "columns": columns, "rows": rows })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_service_query() {
        let q = "resources | where type =~ 'microsoft.containerregistry/registries' and name =~ 'acr' | project id, name, type, subscriptionId, resourceGroup, location, loginServer = tostring(properties.loginServer), roleAssignmentMode = tostring(properties.roleAssignmentMode)";
        let stages = parse(q).unwrap();
        assert_eq!(stages.len(), 2);
        let Stage::Project(cols) = &stages[1] else { panic!() };
        assert_eq!(
            cols[6],
            (
                "loginServer".to_string(),
                Expr::ToString("properties.loginServer".into())
            )
        );
        assert!(parse("resources | summarize count()").is_err());
        assert!(parse("securityresources").is_err());
        assert!(parse("Resources | where name == 'x' | limit 3").is_ok());
    }
}
