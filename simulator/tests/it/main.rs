//! Integration tests: every test starts its own simulator on a free port and talks to it over
//! HTTPS with reqwest, trusting only the simulator's generated CA in addition to the defaults.

mod az_compat;
mod clients;
mod common;
mod entra;
mod faults;
mod graph;
mod pulls;
mod resources;
mod role_assignments;
mod token_and_auth;
