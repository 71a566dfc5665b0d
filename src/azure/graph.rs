//! Microsoft Graph v1.0 operations: resolving service principals (for service-principal AKS
//! clusters) and Entra group membership (for group-based grants).
//!
//! Parameters are GUIDs, so nothing user-supplied is spliced into a Graph URL or OData key.
//! The member is always a service principal here (kubelet identity or cluster SP), so the
//! `servicePrincipals/{id}/...` forms are used.

use super::client::{AzureClient, Req, Resp, Service};
use super::context::CallContext;
use super::error::AzureError;
use super::models::{AppRoleAssignment, DirectoryObject, Group, GroupAdd, GroupRemove, ServicePrincipal};
use reqwest::Method;
use uuid::Uuid;

/// Graph's limit of group ids per `checkMemberGroups` call.
const CHECK_MEMBER_GROUPS_MAX: usize = 20;

fn v1(parts: &[&str]) -> Vec<String> {
    std::iter::once("v1.0")
        .chain(parts.iter().copied())
        .map(str::to_string)
        .collect()
}

impl AzureClient {
    async fn graph(
        &self,
        ctx: &CallContext,
        operation: &'static str,
        permission: &'static str,
        method: Method,
        segments: Vec<String>,
        body: Option<&serde_json::Value>,
    ) -> Result<Resp, AzureError> {
        let url = self.url(Service::Graph, &segments, None);
        self.send(
            ctx,
            Req {
                operation,
                service: Service::Graph,
                method,
                url,
                body,
                permission: Some(permission),
            },
        )
        .await
    }

    /// `GET /v1.0/servicePrincipals(appId='{appId}')`; `None` if there is none (404).
    pub async fn get_service_principal_by_app_id(
        &self,
        ctx: &CallContext,
        app_id: Uuid,
    ) -> Result<Option<ServicePrincipal>, AzureError> {
        let key = format!("servicePrincipals(appId='{app_id}')");
        let resp = self
            .graph(
                ctx,
                "get_service_principal_by_app_id",
                "Application.Read.All",
                Method::GET,
                v1(&[&key]),
                None,
            )
            .await?;
        match resp.status {
            200 => Ok(Some(resp.json()?)),
            404 => Ok(None),
            _ => Err(resp.into_error()),
        }
    }

    /// `GET /v1.0/servicePrincipals/{id}`; `None` if there is none (404).
    pub async fn get_service_principal(
        &self,
        ctx: &CallContext,
        object_id: Uuid,
    ) -> Result<Option<ServicePrincipal>, AzureError> {
        let resp = self
            .graph(
                ctx,
                "get_service_principal",
                "Application.Read.All",
                Method::GET,
                v1(&["servicePrincipals", &object_id.to_string()]),
                None,
            )
            .await?;
        match resp.status {
            200 => Ok(Some(resp.json()?)),
            404 => Ok(None),
            _ => Err(resp.into_error()),
        }
    }

    /// `GET /v1.0/groups/{id}`; `None` if there is none (404: missing, not replicated yet, or
    /// not a group).
    pub async fn get_group(&self, ctx: &CallContext, group: Uuid) -> Result<Option<Group>, AzureError> {
        let resp = self
            .graph(
                ctx,
                "get_group",
                "GroupMember.Read.All",
                Method::GET,
                v1(&["groups", &group.to_string()]),
                None,
            )
            .await?;
        match resp.status {
            200 => Ok(Some(resp.json()?)),
            404 => Ok(None),
            _ => Err(resp.into_error()),
        }
    }

    /// `POST /v1.0/groups/{group}/members/$ref`. 400 `Request_BadRequest` "... already exist ..."
    /// ⇒ `AlreadyMember`. A 404 (member or group not found / not yet replicated) is an error.
    pub async fn add_group_member(&self, ctx: &CallContext, group: Uuid, member: Uuid) -> Result<GroupAdd, AzureError> {
        let member_ref = self.url(Service::Graph, &v1(&["directoryObjects", &member.to_string()]), None);
        let body = serde_json::json!({ "@odata.id": member_ref.as_str() });
        let resp = self
            .graph(
                ctx,
                "add_group_member",
                "GroupMember.ReadWrite.All",
                Method::POST,
                v1(&["groups", &group.to_string(), "members", "$ref"]),
                Some(&body),
            )
            .await?;
        match resp.status {
            200 | 201 | 204 => Ok(GroupAdd::Added),
            _ => {
                let err = resp.into_error();
                let already = err.status == Some(400)
                    && err
                        .code
                        .as_deref()
                        .is_some_and(|c| c.eq_ignore_ascii_case("Request_BadRequest"))
                    && err.message.to_ascii_lowercase().contains("already exist");
                if already { Ok(GroupAdd::AlreadyMember) } else { Err(err) }
            }
        }
    }

    /// `DELETE /v1.0/groups/{group}/members/{member}/$ref` (never without `/$ref`, which would
    /// delete the object itself). 404 ⇒ `NotMember` (Graph answers 404 for a missing group too).
    pub async fn remove_group_member(
        &self,
        ctx: &CallContext,
        group: Uuid,
        member: Uuid,
    ) -> Result<GroupRemove, AzureError> {
        let resp = self
            .graph(
                ctx,
                "remove_group_member",
                "GroupMember.ReadWrite.All",
                Method::DELETE,
                v1(&["groups", &group.to_string(), "members", &member.to_string(), "$ref"]),
                None,
            )
            .await?;
        match resp.status {
            200 | 204 => Ok(GroupRemove::Removed),
            404 => Ok(GroupRemove::NotMember),
            _ => Err(resp.into_error()),
        }
    }

    /// `POST /v1.0/servicePrincipals/{member}/checkMemberGroups` (transitive): which of
    /// `groups` the member belongs to. Batches of 20 ids per call.
    pub async fn check_member_groups(
        &self,
        ctx: &CallContext,
        member: Uuid,
        groups: &[Uuid],
    ) -> Result<Vec<Uuid>, AzureError> {
        #[derive(serde::Deserialize)]
        struct Ids {
            value: Vec<String>,
        }
        let mut out = Vec::new();
        for chunk in groups.chunks(CHECK_MEMBER_GROUPS_MAX) {
            let body = serde_json::json!({
                "groupIds": chunk.iter().map(Uuid::to_string).collect::<Vec<_>>()
            });
            let resp = self
                .graph(
                    ctx,
                    "check_member_groups",
                    "Application.Read.All",
                    Method::POST,
                    v1(&["servicePrincipals", &member.to_string(), "checkMemberGroups"]),
                    Some(&body),
                )
                .await?;
            if resp.status != 200 {
                return Err(resp.into_error());
            }
            let ids: Ids = resp.json()?;
            out.extend(ids.value.iter().filter_map(|s| Uuid::parse_str(s).ok()));
        }
        Ok(out)
    }

    /// `GET /v1.0/servicePrincipals/{member}/transitiveMemberOf`, following `@odata.nextLink`
    /// (which must stay on the configured Graph endpoint).
    pub async fn transitive_member_of(
        &self,
        ctx: &CallContext,
        member: Uuid,
    ) -> Result<Vec<DirectoryObject>, AzureError> {
        self.list_transitive_member_of(ctx, "servicePrincipals", member).await
    }

    /// `GET /v1.0/groups/{group}/transitiveMemberOf`: the groups a group belongs to (nested),
    /// and the directory roles it holds.
    pub async fn group_transitive_member_of(
        &self,
        ctx: &CallContext,
        group: Uuid,
    ) -> Result<Vec<DirectoryObject>, AzureError> {
        self.list_transitive_member_of(ctx, "groups", group).await
    }

    /// `GET /v1.0/groups/{group}/appRoleAssignments`: the app roles granted to a group.
    pub async fn group_app_role_assignments(
        &self,
        ctx: &CallContext,
        group: Uuid,
    ) -> Result<Vec<AppRoleAssignment>, AzureError> {
        let url = self.url(
            Service::Graph,
            &v1(&["groups", &group.to_string(), "appRoleAssignments"]),
            None,
        );
        self.get_all_pages::<AppRoleAssignment, AppRoleAssignment>(
            ctx,
            Service::Graph,
            "group_app_role_assignments",
            Some("Directory.Read.All"),
            url,
        )
        .await
    }

    async fn list_transitive_member_of(
        &self,
        ctx: &CallContext,
        collection: &str,
        member: Uuid,
    ) -> Result<Vec<DirectoryObject>, AzureError> {
        let url = self.url(
            Service::Graph,
            &v1(&[collection, &member.to_string(), "transitiveMemberOf"]),
            None,
        );
        self.get_all_pages::<DirectoryObject, DirectoryObject>(
            ctx,
            Service::Graph,
            "transitive_member_of",
            Some("Application.Read.All"),
            url,
        )
        .await
    }
}
