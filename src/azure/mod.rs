//! Typed ARM and Microsoft Graph client.
//!
//! - [`ids`]: parsed ARM resource ids ([`RegistryId`], [`ClusterId`], ...); every URL is built from them.
//! - [`cloud`] / [`config`]: clouds, every setting as flag + env var, validated into [`AzureSettings`].
//! - [`credential`]: the Entra credential, sharing our HTTPS client (extra CA bundle, timeouts).
//! - [`error`]: [`AzureError`] and its [`AzureErrorClass`] (what retry makes sense).
//! - [`AzureClient`]: typed operations; no retries inside (the job queue retries and records
//!   every attempt); each call is recorded in the per-job [`CallContext`].
//! - [`roles`]: role GUIDs, deterministic assignment names, ARM permission wildcards.
//!
//! ```no_run
//! # async fn demo(cfg: acr_attach::azure::AzureConfig) -> anyhow::Result<()> {
//! use acr_attach::azure::*;
//! let client = AzureClient::new(&cfg.resolve()?)?;
//! let ctx = CallContext::new(uuid::Uuid::new_v4());
//! let registry_id: RegistryId = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/myregistry".parse()?;
//! let registry = client.get_registry(&ctx, &registry_id).await?;
//! let role = pull_role_for(&registry);
//! # Ok(()) }
//! ```

mod arm;
mod client;
pub mod cloud;
pub mod config;
mod context;
pub mod credential;
pub mod error;
mod graph;
mod import;
pub mod models;
pub mod quota;
mod resource_graph;
pub mod roles;
mod run_command;

/// The ids the client takes and returns (defined in the domain layer).
pub use crate::domain::ids::{
    self, ClusterId, IdError, RegistryId, RegistryName, ResourceId, RoleAssignmentId, SubscriptionId,
    UserAssignedIdentityId,
};
pub use arm::registry_by_name_query;
pub use client::{AzureClient, build_http_client};
pub use cloud::{Cloud, CloudName};
pub use config::{
    ApiVersions, AzureConfig, AzureSettings, CaBundle, ConfigError, CredentialKind, CredentialSettings, SecretString,
};
pub use context::{CallContext, CallRecord};
pub use credential::build_credential;
pub use error::{AuthorizationDenied, AzureError, AzureErrorClass, AzureErrorInfo, ErrorDetail, ErrorKind};
pub use import::{ImportRequest, ImportSource, ImportState, SourceCredentials};
pub use models::{
    ClusterSelectionRow, Deleted, DirectoryObject, Group, GroupAdd, GroupRemove, KubeletIdentity, ManagedCluster,
    Permission, PrincipalType, Registry, RegistrySummary, RoleAssignment, RoleAssignmentCreate, RoleAssignmentFilter,
    RoleAssignmentMode, RoleDefinition, ServicePrincipal, UserAssignedIdentity,
};
pub use roles::{
    ACR_PULL, ASSIGNMENT_NAMESPACE, CONTAINER_REGISTRY_REPOSITORY_READER, assignment_name, permits, pull_role_for,
    role_definition_id,
};
pub use run_command::{CommandResult, CommandState};
