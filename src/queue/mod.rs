//! The durable job queue: the project's own, small and generic over job kinds (it knows no
//! kind, and nothing of the service). Design and state machine: `docs/queue.md` and [`state`].
//!
//! Why not a crate: none of the Rust queue crates gives per-target ordering with fenced leases
//! and persisted snoozes without holding a transaction open while a job makes remote calls.
pub mod backoff;
mod completer;
pub mod config;
mod dispatch;
pub mod handler;
mod listener;
mod maintenance;
pub mod model;
pub mod persist;
mod runner;
mod shared;
pub mod state;
pub mod store;
pub mod worker;

pub use backoff::RetryPolicy;
pub use config::WorkerConfig;
pub use handler::{BackgroundJob, Handlers, JobContext, JobError, JobHandler, Outcome, StopReason, Wait};
pub use model::{Enqueued, ErrorClass, ErrorRecord, Job, JobEvent, JobFilter, NewJob, WaitRecord};
pub use state::JobState;
pub use store::{CancelOutcome, JobStore};
pub use worker::WorkerPool;
