//! Typed ARM operations: managed clusters, registries (incl. Resource Graph lookup by name),
//! role assignments/definitions, caller permissions, user-assigned identities.
//!
//! Every URL is built from parsed ids; status handling follows the REST reference
//! (e.g. DELETE of a role assignment: 200, 204 and 404 all mean "gone").

use super::client::{AzureClient, Req, Service};
use super::context::CallContext;
use super::error::{AzureError, ErrorKind};
use super::ids::{
    ClusterId, RegistryId, RegistryName, ResourceId, RoleAssignmentId, SubscriptionId, UserAssignedIdentityId,
};
use super::models::{
    ClusterSelectionRow, ClusterSummary, Deleted, ManagedCluster, Permission, Registry, RegistrySummary,
    RoleAssignment, RoleAssignmentCreate, RoleAssignmentFilter, RoleDefinition, UserAssignedIdentity, WireCluster,
    WireIdentity, WireRegistry, WireRoleAssignment, WireRoleDefinition,
};
use reqwest::Method;
use std::collections::BTreeMap;
use uuid::Uuid;

/// The exact KQL used to find registries by name (the simulator implements this subset).
/// `name` must be a validated [`RegistryName`] (letters and digits only), so nothing can be injected.
pub fn registry_by_name_query(name: &RegistryName) -> String {
    format!(
        "resources | where type =~ 'microsoft.containerregistry/registries' and name =~ '{}' | project id, name, type, subscriptionId, resourceGroup, location, loginServer = tostring(properties.loginServer), roleAssignmentMode = tostring(properties.roleAssignmentMode)",
        name.as_str()
    )
}

/// Clusters and the identity that pulls for them (the simulator implements this subset).
pub const CLUSTER_IDENTITIES_QUERY: &str = "resources | where type =~ 'microsoft.containerservice/managedclusters' | project id, kubeletObjectId = tostring(properties.identityProfile.kubeletidentity.objectId)";

/// Clusters for a batch's selection (resource group and tags are filtered by the service, not
/// in KQL: nothing a caller sends ever becomes part of a query; the subscriptions are the
/// request's `subscriptions`, validated GUIDs).
pub const CLUSTER_SELECTION_QUERY: &str = "resources | where type =~ 'microsoft.containerservice/managedclusters' | project id, subscriptionId, resourceGroup, tags, provisioningState = tostring(properties.provisioningState), kubeletObjectId = tostring(properties.identityProfile.kubeletidentity.objectId), kubeletClientId = tostring(properties.identityProfile.kubeletidentity.clientId), kubeletResourceId = tostring(properties.identityProfile.kubeletidentity.resourceId)";

/// Registries with the columns of [`RegistrySummary`] (the permission mode picks the pull role).
pub const REGISTRIES_QUERY: &str = "resources | where type =~ 'microsoft.containerregistry/registries' | project id, name, type, subscriptionId, resourceGroup, location, loginServer = tostring(properties.loginServer), roleAssignmentMode = tostring(properties.roleAssignmentMode)";

/// A write the guard in [`super::roles`] refused: never sent, never retried.
fn refused(operation: &str, why: String) -> AzureError {
    AzureError::new(
        operation,
        ErrorKind::Refused,
        format!("acr-attach only writes pull-role assignments at registry scopes: {why}"),
    )
}

fn with(mut segments: Vec<String>, more: &[&str]) -> Vec<String> {
    segments.extend(more.iter().map(|s| s.to_string()));
    segments
}

impl AzureClient {
    pub(super) async fn arm(
        &self,
        ctx: &CallContext,
        operation: &'static str,
        method: Method,
        url: url::Url,
        body: Option<&serde_json::Value>,
    ) -> Result<super::client::Resp, AzureError> {
        self.send(
            ctx,
            Req {
                operation,
                service: Service::Arm,
                method,
                url,
                body,
                permission: None,
            },
        )
        .await
    }

    /// `GET` a managed cluster (404 ⇒ `NotFound` error).
    pub async fn get_managed_cluster(&self, ctx: &CallContext, id: &ClusterId) -> Result<ManagedCluster, AzureError> {
        let url = self.arm_url(&id.as_resource_id().segments(), &self.inner.api.managed_clusters, None);
        let resp = self.arm(ctx, "get_managed_cluster", Method::GET, url, None).await?;
        match resp.status {
            200 => Ok(resp.json::<WireCluster>()?.into()),
            _ => Err(resp.into_error()),
        }
    }

    /// `GET` a registry (404 ⇒ `NotFound` error). The returned `id` has ARM's canonical casing.
    pub async fn get_registry(&self, ctx: &CallContext, id: &RegistryId) -> Result<Registry, AzureError> {
        let url = self.arm_url(&id.as_resource_id().segments(), &self.inner.api.registries, None);
        let resp = self.arm(ctx, "get_registry", Method::GET, url, None).await?;
        match resp.status {
            200 => Ok(resp.json::<WireRegistry>()?.into()),
            _ => Err(resp.into_error()),
        }
    }

    /// Every registry in a subscription (follows `nextLink`).
    pub async fn list_registries(
        &self,
        ctx: &CallContext,
        subscription: &SubscriptionId,
    ) -> Result<Vec<Registry>, AzureError> {
        let segments = with(
            ResourceId::subscription_scope(*subscription).segments(),
            &["providers", "Microsoft.ContainerRegistry", "registries"],
        );
        let url = self.arm_url(&segments, &self.inner.api.registries, None);
        self.get_all_pages::<WireRegistry, Registry>(ctx, Service::Arm, "list_registries", None, url)
            .await
    }

    /// Finds registries named `name` (case-insensitive) through Azure Resource Graph, in
    /// `subscriptions` (empty ⇒ every subscription the caller can read). Pages with
    /// `options.$skipToken`. ARG is eventually consistent: use it to discover, then `GET`.
    pub async fn find_registries_by_name(
        &self,
        ctx: &CallContext,
        name: &RegistryName,
        subscriptions: &[SubscriptionId],
    ) -> Result<Vec<RegistrySummary>, AzureError> {
        let rows: Vec<RegistrySummary> = self
            .resource_graph(
                ctx,
                "find_registries_by_name",
                &registry_by_name_query(name),
                subscriptions,
            )
            .await?;
        let mut out: Vec<RegistrySummary> = Vec::new();
        for row in rows {
            if !out.iter().any(|r| r.id.eq_ignore_ascii_case(&row.id)) {
                out.push(row);
            }
        }
        Ok(out)
    }

    /// Every managed cluster in `subscriptions` with its kubelet identity, through Resource
    /// Graph ([`CLUSTER_IDENTITIES_QUERY`]): the drift sweep reads clusters in bulk, not one
    /// `GET` each.
    pub async fn cluster_identities(
        &self,
        ctx: &CallContext,
        subscriptions: &[SubscriptionId],
    ) -> Result<Vec<ClusterSummary>, AzureError> {
        self.resource_graph(ctx, "cluster_identities", CLUSTER_IDENTITIES_QUERY, subscriptions)
            .await
    }

    /// Every managed cluster in `subscriptions` with its place, tags and kubelet identity,
    /// through Resource Graph ([`CLUSTER_SELECTION_QUERY`]): a batch's selection.
    pub async fn clusters_for_selection(
        &self,
        ctx: &CallContext,
        subscriptions: &[SubscriptionId],
    ) -> Result<Vec<ClusterSelectionRow>, AzureError> {
        self.resource_graph(ctx, "select_clusters", CLUSTER_SELECTION_QUERY, subscriptions)
            .await
    }

    /// Every registry in `subscriptions` with its permission mode, through Resource Graph
    /// ([`REGISTRIES_QUERY`]).
    pub async fn registries_in(
        &self,
        ctx: &CallContext,
        subscriptions: &[SubscriptionId],
    ) -> Result<Vec<RegistrySummary>, AzureError> {
        self.resource_graph(ctx, "registries_in", REGISTRIES_QUERY, subscriptions)
            .await
    }

    /// `PUT {scope}/providers/Microsoft.Authorization/roleAssignments/{name}`.
    /// Returns the assignment and whether it was created now (201) rather than already
    /// present under this name (200).
    pub async fn put_role_assignment(
        &self,
        ctx: &CallContext,
        scope: &ResourceId,
        name: Uuid,
        assignment: &RoleAssignmentCreate,
    ) -> Result<(RoleAssignment, bool), AzureError> {
        super::roles::check_assignment_write(scope, &assignment.role_definition_id)
            .map_err(|why| refused("put_role_assignment", why))?;
        let id = RoleAssignmentId::new(scope.clone(), name);
        let url = self.arm_url(&id.segments(), &self.inner.api.role_assignments, None);
        let body = assignment.to_body();
        let resp = self
            .arm(ctx, "put_role_assignment", Method::PUT, url, Some(&body))
            .await?;
        match resp.status {
            200 | 201 => {
                let created = resp.status == 201;
                Ok((resp.json::<WireRoleAssignment>()?.into(), created))
            }
            _ => Err(resp.into_error()),
        }
    }

    /// `GET` a role assignment; `None` if it does not exist (404).
    pub async fn get_role_assignment(
        &self,
        ctx: &CallContext,
        id: &RoleAssignmentId,
    ) -> Result<Option<RoleAssignment>, AzureError> {
        let url = self.arm_url(&id.segments(), &self.inner.api.role_assignments, None);
        let resp = self.arm(ctx, "get_role_assignment", Method::GET, url, None).await?;
        match resp.status {
            200 => Ok(Some(resp.json::<WireRoleAssignment>()?.into())),
            404 => Ok(None),
            _ => Err(resp.into_error()),
        }
    }

    /// `DELETE` a role assignment: 200 ⇒ `Deleted`, 204/404 ⇒ `AlreadyAbsent`.
    pub async fn delete_role_assignment(
        &self,
        ctx: &CallContext,
        id: &RoleAssignmentId,
    ) -> Result<Deleted, AzureError> {
        super::roles::check_assignment_delete(id.scope()).map_err(|why| refused("delete_role_assignment", why))?;
        let url = self.arm_url(&id.segments(), &self.inner.api.role_assignments, None);
        let resp = self
            .arm(ctx, "delete_role_assignment", Method::DELETE, url, None)
            .await?;
        match resp.status {
            200 | 202 => {
                let body = if resp.body.iter().all(u8::is_ascii_whitespace) {
                    None
                } else {
                    Some(Box::new(resp.json::<WireRoleAssignment>()?.into()))
                };
                Ok(Deleted::Deleted(body))
            }
            204 | 404 => Ok(Deleted::AlreadyAbsent),
            _ => Err(resp.into_error()),
        }
    }

    /// Lists role assignments at `scope` with a `$filter` (follows `nextLink`, which must stay
    /// on the configured ARM endpoint).
    pub async fn list_role_assignments(
        &self,
        ctx: &CallContext,
        scope: &ResourceId,
        filter: RoleAssignmentFilter,
    ) -> Result<Vec<RoleAssignment>, AzureError> {
        let segments = with(
            scope.segments(),
            &["providers", "Microsoft.Authorization", "roleAssignments"],
        );
        let expr = filter.expression();
        let url = self.arm_url(&segments, &self.inner.api.role_assignments, expr.as_deref());
        self.get_all_pages::<WireRoleAssignment, RoleAssignment>(ctx, Service::Arm, "list_role_assignments", None, url)
            .await
    }

    /// Every subscription the caller can see (`GET /subscriptions`, follows `nextLink`).
    pub async fn list_subscriptions(&self, ctx: &CallContext) -> Result<Vec<SubscriptionId>, AzureError> {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct WireSubscription {
            subscription_id: String,
        }
        let url = self.arm_url(&["subscriptions".to_string()], &self.inner.api.subscriptions, None);
        let listed = self
            .get_all_pages::<WireSubscription, WireSubscription>(ctx, Service::Arm, "list_subscriptions", None, url)
            .await?;
        listed
            .iter()
            .map(|s| {
                s.subscription_id.parse().map_err(|_| {
                    AzureError::new(
                        "list_subscriptions",
                        ErrorKind::Decode,
                        format!("ARM listed a subscription with an invalid id '{}'", s.subscription_id),
                    )
                })
            })
            .collect()
    }

    /// `GET {scope}/providers/Microsoft.Authorization/roleDefinitions/{role}`.
    pub async fn get_role_definition(
        &self,
        ctx: &CallContext,
        scope: &ResourceId,
        role: Uuid,
    ) -> Result<RoleDefinition, AzureError> {
        let segments = with(
            scope.segments(),
            &[
                "providers",
                "Microsoft.Authorization",
                "roleDefinitions",
                &role.to_string(),
            ],
        );
        let url = self.arm_url(&segments, &self.inner.api.role_assignments, None);
        let resp = self.arm(ctx, "get_role_definition", Method::GET, url, None).await?;
        match resp.status {
            200 => Ok(resp.json::<WireRoleDefinition>()?.into()),
            _ => Err(resp.into_error()),
        }
    }

    /// The **caller's** effective permissions on `resource`
    /// (`GET {resource}/providers/Microsoft.Authorization/permissions`). Check them with
    /// [`super::roles::permits`].
    pub async fn caller_permissions(
        &self,
        ctx: &CallContext,
        resource: &ResourceId,
    ) -> Result<Vec<Permission>, AzureError> {
        let segments = with(
            resource.segments(),
            &["providers", "Microsoft.Authorization", "permissions"],
        );
        let url = self.arm_url(&segments, &self.inner.api.role_assignments, None);
        self.get_all_pages::<Permission, Permission>(ctx, Service::Arm, "caller_permissions", None, url)
            .await
    }

    /// Creates or updates a user-assigned identity (synchronous; 200 or 201).
    pub async fn put_user_assigned_identity(
        &self,
        ctx: &CallContext,
        id: &UserAssignedIdentityId,
        location: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<UserAssignedIdentity, AzureError> {
        let url = self.arm_url(
            &id.as_resource_id().segments(),
            &self.inner.api.managed_identities,
            None,
        );
        let body = serde_json::json!({ "location": location, "tags": tags });
        let resp = self
            .arm(ctx, "put_user_assigned_identity", Method::PUT, url, Some(&body))
            .await?;
        match resp.status {
            200 | 201 => Ok(resp.json::<WireIdentity>()?.into()),
            _ => Err(resp.into_error()),
        }
    }

    /// `GET` a user-assigned identity (404 ⇒ `NotFound` error).
    pub async fn get_user_assigned_identity(
        &self,
        ctx: &CallContext,
        id: &UserAssignedIdentityId,
    ) -> Result<UserAssignedIdentity, AzureError> {
        let url = self.arm_url(
            &id.as_resource_id().segments(),
            &self.inner.api.managed_identities,
            None,
        );
        let resp = self
            .arm(ctx, "get_user_assigned_identity", Method::GET, url, None)
            .await?;
        match resp.status {
            200 => Ok(resp.json::<WireIdentity>()?.into()),
            _ => Err(resp.into_error()),
        }
    }
}
