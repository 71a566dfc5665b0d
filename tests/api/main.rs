//! One integration-test binary (link time matters on 2 cores): the real service, a real
//! PostgreSQL, real HTTP; a fresh database per test.
mod helpers;
mod jobs_api;
mod queue;
mod support;
