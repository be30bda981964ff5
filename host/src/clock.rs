//! Time, injected: the real clock for `serve`, a virtual one for `simulate` and tests, so the
//! same engine runs both.

use std::sync::atomic::{AtomicI64, Ordering};

/// A source of "now", in Unix milliseconds.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now_ms(&self) -> i64;
}

/// The machine's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        chrono::Utc::now().timestamp_millis()
    }
}

/// A clock that moves only when told to.
#[derive(Debug, Default)]
pub struct VirtualClock(AtomicI64);

impl VirtualClock {
    /// A virtual clock reading `start_ms`.
    pub fn new(start_ms: i64) -> Self {
        VirtualClock(AtomicI64::new(start_ms))
    }

    /// Move to `ms` (never backwards).
    pub fn set(&self, ms: i64) {
        self.0.fetch_max(ms, Ordering::SeqCst);
    }

    /// Move forward by `ms`.
    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for VirtualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}
