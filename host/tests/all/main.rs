//! One test binary for the host, a module per topic (wasmtime's `tests/all` layout): linking
//! the host once keeps `cargo test` fast.

mod db;
mod harness;
mod sim_support;
mod smtp_server;
mod support;

mod api;
mod cli;
mod delivery;
mod engine;
mod example_python;
mod plugin_flow;
mod plugin_four_emails;
mod plugin_new;
mod replicas;

mod runtime_capabilities;
mod runtime_limits;
mod runtime_upload;
