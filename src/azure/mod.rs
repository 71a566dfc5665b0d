//! Typed ARM and Microsoft Graph client (in progress).
#![allow(dead_code)] // crate-internal helpers are used by the client, which lands in a later commit

pub mod cloud;
pub mod config;
pub mod credential;
pub mod error;
pub mod ids;
pub mod models;
pub mod roles;

pub use cloud::{Cloud, CloudName};
pub use config::{
    ApiVersions, AzureConfig, AzureSettings, ConfigError, CredentialKind, CredentialSettings,
    SecretString,
};
pub use credential::build_credential;
pub use error::{
    AuthorizationDenied, AzureError, AzureErrorInfo, ErrorClass, ErrorDetail, ErrorKind,
};
pub use ids::{
    ClusterId, IdError, RegistryId, RegistryName, ResourceId, RoleAssignmentId, SubscriptionId,
    UserAssignedIdentityId,
};
pub use models::{
    Deleted, DirectoryObject, GroupAdd, GroupRemove, KubeletIdentity, ManagedCluster, Permission,
    PrincipalType, Registry, RegistrySummary, RoleAssignment, RoleAssignmentCreate,
    RoleAssignmentFilter, RoleAssignmentMode, RoleDefinition, ServicePrincipal,
    UserAssignedIdentity,
};
pub use roles::{
    ACR_PULL, ASSIGNMENT_NAMESPACE, CONTAINER_REGISTRY_REPOSITORY_READER, assignment_name, permits,
    pull_role_for, role_definition_id,
};
