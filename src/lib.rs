//! acr-attach: attach-as-a-service for Azure Container Registry and AKS.
//!
//! Module map (see README "Architecture"):
//! - [`startup`]: the composition root (`serve`, tests and benchmarks build the service there).
//! - [`domain`]: ARM ids that parse, and the job kinds' arguments (every layer's vocabulary).
//! - [`api`]: HTTP layer: handlers, authentication, policy, rate limits, error body, OpenAPI.
//! - [`queue`]: the durable Postgres job queue and worker pool; knows no job kind.
//! - [`ops`]: the job kinds (attach, detach, check, import, kubelet identities, drift) as idempotent steps.
//! - [`azure`]: typed ARM / Microsoft Graph client, credentials, clouds, the write guard.
//! - [`attachments`], [`audit`]: the attachment records and the append-only audit trail.
//! - [`imports`], [`secrets`]: images imported into registries; sealed import credentials.
//! - [`config`], [`duration`]: every setting in one typed struct; durations as people write them.
//! - `simulated` (feature `simulator`): the built-in Azure simulator for the demo and tests.
pub mod api;
pub mod attachments;
pub mod audit;
pub mod azure;
pub mod batches;
pub mod config;
pub mod db;
pub mod domain;
pub mod duration;
pub mod imports;
pub mod ops;
pub mod queue;
pub mod quota;
pub mod secrets;
#[cfg(feature = "simulator")]
pub mod simulated;
pub mod startup;
pub mod telemetry;
