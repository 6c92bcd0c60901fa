//! The orchestrator's tests, one binary: its outbox against a real gateway and job store,
//! and the report store's suite, run once per backend.

mod dispatch_outbox;
mod report_store;
