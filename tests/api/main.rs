//! One integration-test binary (link time matters on 2 cores): the real service, a real
//! PostgreSQL, real HTTP; a fresh database per test.
mod attach;
mod azure_app;
mod contract;
mod detach;
mod groups;
mod helpers;
mod input;
mod jobs_api;
mod kubelet_identities;
mod packaging;
mod queue;
mod support;
