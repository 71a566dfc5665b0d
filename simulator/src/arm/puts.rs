//! What every `PUT` of a tracked resource checks, in ARM's order: the subscription (404), the
//! `{type}/write` action (403), the resource group (404); then the body (JSON, `location`,
//! tags); and that an existing resource is not being moved to another region.

use std::collections::BTreeMap;

use serde_json::Value;

use super::errors::{ArmError, resource_group_not_found};
use super::permissions::authorize;
use super::resources::ResType;
use super::{Ctx, scope};
use crate::world::World;

/// Checks the caller may write `name` of type `rt` in `sub`/`rg`; returns the group's location.
pub(super) fn authorize_put(
    ctx: &Ctx<'_>,
    world: &World,
    sub: &str,
    rg: &str,
    rt: ResType,
    name: &str,
) -> Result<String, ArmError> {
    let target = format!(
        "/subscriptions/{sub}/resourceGroups/{rg}/providers/{}/{name}",
        rt.full()
    );
    scope::check_subscription(world, &target)?;
    authorize(world, &ctx.caller_oid, &format!("{}/write", rt.full()), &target)?;
    world
        .resource_group(sub, rg)
        .map(|g| g.location.clone())
        .ok_or_else(|| resource_group_not_found(rg))
}

/// A `PUT` body after the checks every tracked resource shares.
pub(super) struct PutBody {
    pub location: String,
    pub tags: BTreeMap<String, String>,
}

/// Parses the body: JSON (400 `InvalidRequestContent`), a `location` (400 `LocationRequired`),
/// valid tags.
pub(super) fn parse_body(ctx: &Ctx<'_>) -> Result<PutBody, ArmError> {
    let body: Value = serde_json::from_slice(ctx.body).map_err(|e| {
        ArmError::bad_request(
            "InvalidRequestContent",
            format!("The request content was invalid and could not be deserialized: '{e}'."),
        )
    })?;
    let Some(location) = body.get("location").and_then(Value::as_str).map(str::to_string) else {
        return Err(ArmError::bad_request(
            "LocationRequired",
            "The location property is required for this definition.",
        ));
    };
    Ok(PutBody {
        location,
        tags: parse_tags(&body)?,
    })
}

/// ARM refuses to move an existing resource to another region (spaces and case aside).
pub(super) fn refuse_move(name: &str, rg: &str, existing: &str, requested: &str) -> Result<(), ArmError> {
    let region = |l: &str| l.replace(' ', "").to_ascii_lowercase();
    if region(existing) == region(requested) {
        return Ok(());
    }
    Err(ArmError::bad_request(
        "InvalidResourceLocation",
        format!(
            "The resource '{name}' already exists in location '{existing}' in resource group '{rg}'. A resource with the same name cannot be created in location '{requested}'. Please select a new resource name."
        ),
    ))
}

/// ARM's tag rules: at most 50, names up to 512 characters, values up to 256, strings only.
pub(super) fn parse_tags(body: &Value) -> Result<BTreeMap<String, String>, ArmError> {
    let Some(tags) = body.get("tags").filter(|t| !t.is_null()) else {
        return Ok(BTreeMap::new());
    };
    let obj = tags.as_object().ok_or_else(|| {
        ArmError::bad_request(
            "InvalidRequestContent",
            "The request content was invalid and could not be deserialized: 'tags must be an object'.",
        )
    })?;
    if obj.len() > 50 {
        return Err(ArmError::bad_request(
            "InvalidTag",
            "The resource has more than 50 tags; a resource can have at most 50 tags.",
        ));
    }
    obj.iter()
        .map(|(k, v)| match v.as_str() {
            Some(v) if k.len() <= 512 && v.len() <= 256 => Ok((k.clone(), v.to_string())),
            _ => Err(ArmError::bad_request(
                "InvalidTagNameCharacters",
                format!(
                    "The tag '{k}' is invalid: tag names are at most 512 characters and values strings of at most 256."
                ),
            )),
        })
        .collect()
}
