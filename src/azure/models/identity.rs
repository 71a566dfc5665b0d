//! User-assigned managed identities.
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A user-assigned managed identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserAssignedIdentity {
    /// ARM id as returned.
    pub id: String,
    /// Name.
    pub name: String,
    /// Region.
    pub location: String,
    /// Object id of the backing service principal (the grantee in role assignments).
    pub principal_id: String,
    /// Client (application) id.
    pub client_id: String,
    /// Tenant.
    pub tenant_id: String,
    /// Tags.
    pub tags: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct WireUamiProps {
    #[serde(default)]
    principal_id: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    tenant_id: String,
}

#[derive(Deserialize)]
pub(crate) struct WireIdentity {
    id: String,
    name: String,
    #[serde(default)]
    location: String,
    #[serde(default)]
    tags: Option<BTreeMap<String, String>>,
    #[serde(default)]
    properties: WireUamiProps,
}

impl From<WireIdentity> for UserAssignedIdentity {
    fn from(w: WireIdentity) -> Self {
        UserAssignedIdentity {
            id: w.id,
            name: w.name,
            location: w.location,
            principal_id: w.properties.principal_id,
            client_id: w.properties.client_id,
            tenant_id: w.properties.tenant_id,
            tags: w.tags.unwrap_or_default(),
        }
    }
}
