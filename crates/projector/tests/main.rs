//! The integration tests of the `projector` binary, as one test binary: each
//! module drives real processes started from the binary the build made, so
//! linking the stack once serves them all.

mod support;

mod browser;
mod cache_invalidation;
mod cluster;
mod cluster_outages;
mod configuration;
mod contracts;
mod datasvc_faults;
mod demo_and_up;
mod disclosure;
mod exhaustion;
mod hostile_clients;
mod openapi;
mod operations;
mod push;
mod resilience;
mod sessions;
mod simulate_cli;
mod storage_faults;
mod tenancy;
