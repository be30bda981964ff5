//! One test binary for the host, a module per topic (wasmtime's `tests/all` layout): linking
//! the host once keeps `cargo test` fast.

mod db;
mod harness;
mod support;

mod engine;

mod runtime_capabilities;
mod runtime_limits;
mod runtime_upload;
