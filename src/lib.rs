//! acr-attach: attach-as-a-service for Azure Container Registry and AKS.
//!
//! Module map (see README "Architecture"):
//! - [`api`]: HTTP layer (axum handlers, error body, OpenAPI).
//! - [`queue`]: the durable Postgres job queue and worker pool; knows nothing of Azure.
//! - [`ops`]: the job kinds (attach, detach, ...) as sequences of idempotent steps.
//! - [`azure`]: typed ARM / Microsoft Graph client, credentials, clouds.
//! - [`config`]: every setting in one typed struct.
pub mod api;
pub mod attachments;
pub mod audit;
pub mod azure;
pub mod config;
pub mod db;
pub mod duration;
pub mod ops;
pub mod queue;
pub mod startup;
pub mod telemetry;
