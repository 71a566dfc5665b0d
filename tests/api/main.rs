//! One integration-test binary (link time matters on 2 cores): the real service, a real
//! PostgreSQL, real HTTP; a fresh database per test.
mod attach;
mod auth;
mod azure_app;
mod azure_client;
mod chaos;
mod checks;
mod clients;
mod contract;
mod detach;
mod drift;
mod group_guard;
mod groups;
mod hardening;
mod helpers;
mod imports;
mod input;
mod jobs_api;
mod kubelet_identities;
pub mod logs;
mod outage;
mod packaging;
mod policy;
mod probes;
mod queue;
mod secure;
mod support;
