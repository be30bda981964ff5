//! Typed errors of the runtime: what went wrong, naming the plugin and, for a limit, which one.

use std::time::Duration;

/// A per-invocation limit a plugin ran into.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Limit {
    /// Out of fuel (instructions).
    Fuel(u64),
    /// Tried to grow linear memory past the limit (bytes).
    Memory(usize),
    /// Ran past the wall-clock deadline.
    WallClock(Duration),
    /// Recorded more effects than allowed.
    Effects(usize),
    /// Overflowed the wasm stack (unbounded recursion).
    Stack,
    /// Returned a state larger than allowed (bytes).
    State(usize),
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Limit::Fuel(n) => write!(f, "fuel limit ({n} instructions)"),
            Limit::Memory(n) => write!(f, "memory limit ({} MiB)", n / (1024 * 1024)),
            Limit::WallClock(d) => write!(f, "wall-clock limit ({} ms)", d.as_millis()),
            Limit::Effects(n) => write!(f, "effect limit ({n} effects per invocation)"),
            Limit::Stack => write!(f, "stack limit"),
            Limit::State(n) => write!(f, "state limit ({n} bytes)"),
        }
    }
}

/// How an invocation failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// A sandbox limit stopped it.
    LimitExceeded(Limit),
    /// The guest trapped (a panic, an unreachable, a bad host call).
    Trap(String),
    /// The component could not be instantiated.
    Instantiate(String),
    /// `handle` returned `err` on purpose.
    Rejected(String),
}

/// An invocation that did not complete; everything it recorded is discarded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("plugin {plugin}: {}", describe(.failure))]
pub struct InvokeError {
    /// `name@version` of the plugin.
    pub plugin: String,
    /// What happened.
    pub failure: Failure,
}

fn describe(failure: &Failure) -> String {
    match failure {
        Failure::LimitExceeded(limit) => format!("exceeded its {limit}"),
        Failure::Trap(message) => format!("trapped: {message}"),
        Failure::Instantiate(message) => format!("could not be instantiated: {message}"),
        Failure::Rejected(message) => format!("rejected the event: {message}"),
    }
}

impl InvokeError {
    /// The limit hit, if a limit is what stopped the invocation.
    pub fn limit(&self) -> Option<&Limit> {
        match &self.failure {
            Failure::LimitExceeded(limit) => Some(limit),
            _ => None,
        }
    }
}

/// A component that could not be made ready to run.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// The engine or linker could not be set up (a host problem, not the plugin's).
    #[error("the WebAssembly engine could not be set up: {0}")]
    Engine(String),
    /// Compilation failed.
    #[error("the component does not compile: {0}")]
    Compile(String),
    /// The component does not fit the `funnel` world.
    #[error(
        "the component does not implement the funnel world (funnel:plugin@0.2.0 or 0.1.0): {0}; build it against wit/funnel.wit \
         with `funnel plugin build`"
    )]
    WrongWorld(String),
    /// The component fits the world's imports but lacks its exports: most often a Rust
    /// plugin without `export_plugin!`.
    #[error(
        "the component does not export the funnel world's functions (describe, validate-config, handle): {0}. \
         A Rust plugin needs `funnel_sdk::export_plugin!(YourPlugin);` in its lib.rs; a Python one a class \
         `WitWorld` in the module it builds; a JavaScript one `export function describe()`, `validateConfig` \
         and `handle` in its entry module. Build it with `funnel plugin build`"
    )]
    MissingExports(String),
    /// `describe()` failed.
    #[error("describe() failed: {0}")]
    Describe(InvokeError),
    /// `describe()` answered something unusable.
    #[error("describe() returned {0}")]
    BadInfo(String),
}
