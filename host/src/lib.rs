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
//! - [`api`]: the HTTP API (axum), one file per resource.
//! - [`console`]: the producers' web pages under `/console/`, beside the API in `serve`.
//! - [`store`]: every write, on SQLite or PostgreSQL ([`store::Database`]).
//! - [`dispatch`]: one lead at a time, one transaction per event.
//! - [`scheduler`]: durable timers coming due.
//! - [`delivery`]: send-time rules, templates, transports.
//! - [`webhooks`]: outgoing webhooks to producers' endpoints (SSRF guard, signed deliveries).
//! - [`domain`]: the types every module speaks (events, checkouts, prices), parsed once.
//! - [`clock`]: real or virtual time; [`pipeline`] wires the above to one clock.
//! - [`sim`]: `funnel simulate`, the same engine on a virtual clock.
//! - [`metrics`]: counters for `GET /metrics`.
//! - [`guests`]: the components built from this workspace during the build (the built-in
//!   plugins and the test guests).

pub mod api;
pub mod cli;
pub mod clock;
pub mod console;
pub mod delivery;
pub(crate) mod dispatch;
pub mod domain;
pub mod guests;
pub(crate) mod metrics;
pub mod pipeline;
pub mod runtime;
pub mod scheduler;
pub mod sim;
pub mod store;
pub mod webhooks;
