//! # funnel-host
//!
//! The `funnel` server and command line: it receives a checkout platform's lead events, runs
//! each producer's recovery strategy as a sandboxed WebAssembly component, and delivers what
//! the strategy decides to send.
//!
//! ## Layout
//! - [`runtime`]: wasmtime: compiles, caches and runs plugins under limits; capabilities
//!   record effects and never touch the database or network.
//! - [`cli`]: the `funnel` command line, one module per subcommand.
//! - [`guests`]: the components built from this workspace during the build (the built-in
//!   plugins and the test guests).

pub mod cli;
pub mod guests;
pub mod runtime;
