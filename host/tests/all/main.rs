//! One test binary for the host, a module per topic (wasmtime's `tests/all` layout): linking
//! the host once keeps `cargo test` fast.
//!
//! ## Layout
//! - Shared helpers: `db` (a fresh database per test, both backends, `on_both!`), `harness`
//!   (an engine on a virtual clock), `api_server` (the HTTP API on loopback over it),
//!   `process` (a real `funnel serve`), `smtp_server` (a real SMTP server), `support` (the
//!   runtime with test limits), `sim_support` (`funnel simulate` in-process).
//! - Topics: the other modules.

mod api_server;
mod browser;
mod chaos;
mod db;
mod harness;
mod process;
mod sim_support;
mod smtp_server;
mod support;

mod api;
mod api_auth;
mod api_edges;
mod batch;
mod cli;
mod console;
mod contract_versions;
mod coupons;
mod delivery;
mod engine;
mod example_js;
mod example_python;
mod fuzz;
mod input_hardening;
mod isolation;
mod migrations;
mod neighbour;
mod plugin_flow;
mod plugin_four_emails;
mod plugin_new;
mod replicas;

mod runtime_capabilities;
mod runtime_limits;
mod runtime_upload;
mod schemas;
mod send_windows;
mod stored_values;
mod uploads;
mod webhooks;
