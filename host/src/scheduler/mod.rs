//! The scheduler: durable timers that come due become `timer` events of their lead (through
//! the store, in one transaction), so they reach the plugin by the same path as every other
//! event. After a restart, overdue timers fire at once and the plugin sees how late they are.
//! [`periodic`] runs the host's own jobs on cron schedules.

pub mod periodic;

use std::sync::Arc;

use crate::clock::Clock;
use crate::store::{Database, StoreError};

/// Timers fired per transaction. Each step is a few set-based statements, so the cost per
/// timer falls with the step's size; 10,000 holds the writer for ~0.1 s (README's figures).
const TIMER_BATCH: i64 = 10_000;

/// What one tick fired.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tick {
    pub fired: usize,
    /// Fired more than a second after they were due.
    pub late: usize,
    pub max_late_ms: i64,
}

/// Turns due timers into events.
pub struct Scheduler {
    store: Database,
    clock: Arc<dyn Clock>,
}

impl Scheduler {
    pub fn new(store: Database, clock: Arc<dyn Clock>) -> Self {
        Scheduler { store, clock }
    }

    /// Fire every timer due now.
    pub async fn tick(&self) -> Result<Tick, StoreError> {
        let mut tick = Tick::default();
        loop {
            let now = self.clock.now_ms();
            let fired = self.store.fire_due_timers(now, TIMER_BATCH).await?;
            if fired.is_empty() {
                return Ok(tick);
            }
            for timer in &fired {
                let late = now - timer.due_at;
                tick.max_late_ms = tick.max_late_ms.max(late);
                if late > 1000 {
                    tick.late += 1;
                    crate::metrics::TIMERS_LATE.inc();
                    tracing::info!(lead = %timer.lead_id, late_ms = late, "late timer fired");
                }
            }
            tick.fired += fired.len();
            crate::metrics::TIMERS_FIRED.add(fired.len() as u64);
        }
    }
}
