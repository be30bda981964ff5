//! Per-invocation limits: each configurable, each with a default that leaves room for Rust,
//! Python and JavaScript guests (a small call costs ~3k, ~150k and ~1.3M instructions).

use std::time::Duration;

/// What one invocation of a plugin may use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Instructions (wasmtime fuel) per invocation.
    pub fuel: u64,
    /// Linear memory per instance, in bytes.
    pub memory_bytes: usize,
    /// Wall-clock time per invocation (enforced by an epoch deadline).
    pub wall_clock: Duration,
    /// Bytes of log (plugin `log` calls, stdout, stderr) kept per invocation; the rest is dropped.
    pub log_bytes: usize,
    /// Effects (messages, timers, list changes) one invocation may record.
    pub effects: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel: 100_000_000,
            memory_bytes: 128 * 1024 * 1024,
            wall_clock: Duration::from_secs(2),
            log_bytes: 64 * 1024,
            effects: 100,
        }
    }
}
