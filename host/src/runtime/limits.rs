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
    /// Log lines kept per invocation (each is a timeline row, so an empty line is not free);
    /// the rest are dropped and counted in one marker line.
    pub log_lines: usize,
    /// Bytes of state `handle` may return; more fails the invocation (the state is stored
    /// with the run and handed back on every event).
    pub state_bytes: usize,
    /// Bytes of a `handle` error kept (it is stored with the event); the rest is cut, marked.
    pub error_bytes: usize,
    /// Timers one lead may have pending; `schedule` past it answers `limit-reached`.
    pub timers_per_lead: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel: 100_000_000,
            memory_bytes: 128 * 1024 * 1024,
            wall_clock: Duration::from_secs(2),
            log_bytes: 64 * 1024,
            effects: 100,
            log_lines: 100,
            state_bytes: 64 * 1024,
            error_bytes: 2048,
            timers_per_lead: 100,
        }
    }
}
