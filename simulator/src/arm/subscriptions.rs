//! `GET /subscriptions` (Subscriptions_List): the subscriptions the caller can see, meaning it
//! holds some permission at, above or below the subscription, as ARM lists them.

use axum::response::Response;
use serde_json::{Value, json};

use super::errors::ArmError;
use super::{Ctx, paging, scope};
use crate::world::World;

pub(crate) fn list(ctx: &Ctx<'_>, world: &World) -> Result<Response, ArmError> {
    let visible = |sub: &str| {
        let target = format!("/subscriptions/{sub}");
        world
            .callers
            .iter()
            .filter(|c| c.object_id.eq_ignore_ascii_case(&ctx.caller_oid))
            .flat_map(|c| c.permissions.iter())
            .any(|e| scope::covers(&e.scope, &target) || scope::covers(&target, &e.scope))
    };
    let values: Vec<Value> = world
        .subscriptions
        .iter()
        .filter(|s| visible(&s.subscription_id))
        .map(|s| {
            json!({
                "id": format!("/subscriptions/{}", s.subscription_id),
                "authorizationSource": "RoleBased",
                "managedByTenants": [],
                "subscriptionId": s.subscription_id,
                "tenantId": world.tenant_id,
                "displayName": s.display_name,
                "state": "Enabled",
                "subscriptionPolicies": {
                    "locationPlacementId": "Public_2014-09-01",
                    "quotaId": "PayAsYouGo_2014-09-01",
                    "spendingLimit": "Off",
                },
            })
        })
        .collect();
    paging::respond(ctx, values, &[])
}
