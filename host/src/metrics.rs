//! Process metrics for `GET /metrics` (Prometheus text format): counters bumped where things
//! happen, gauges read from the store when scraped.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// A monotonically increasing count.
pub(crate) struct Counter {
    name: &'static str,
    help: &'static str,
    value: AtomicU64,
}

impl Counter {
    const fn new(name: &'static str, help: &'static str) -> Self {
        Counter { name, help, value: AtomicU64::new(0) }
    }

    pub(crate) fn add(&self, n: u64) {
        self.value.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn inc(&self) {
        self.add(1);
    }
}

pub(crate) static EVENTS_ACCEPTED: Counter = Counter::new("funnel_events_accepted_total", "Platform events accepted");
pub(crate) static EVENTS_DUPLICATE: Counter =
    Counter::new("funnel_events_duplicate_total", "Platform events answered as duplicates");
pub(crate) static INVOCATIONS_OK: Counter = Counter::new("funnel_invocations_ok_total", "Plugin invocations committed");
pub(crate) static INVOCATIONS_FAILED: Counter =
    Counter::new("funnel_invocations_failed_total", "Plugin invocations that failed (retried)");
pub(crate) static INVOCATIONS_PARKED: Counter =
    Counter::new("funnel_invocations_parked_total", "Events parked as failed");
pub(crate) static TIMERS_FIRED: Counter = Counter::new("funnel_timers_fired_total", "Durable timers fired");
pub(crate) static TIMERS_LATE: Counter =
    Counter::new("funnel_timers_late_total", "Timers fired more than a second late");
pub(crate) static MESSAGES_SENT: Counter = Counter::new("funnel_messages_sent_total", "Messages handed to a transport");
pub(crate) static MESSAGES_DROPPED: Counter =
    Counter::new("funnel_messages_dropped_total", "Messages dropped by send-time rules");
pub(crate) static MESSAGES_BOUNCED: Counter =
    Counter::new("funnel_messages_bounced_total", "Messages refused permanently");
pub(crate) static MESSAGES_RETRIED: Counter = Counter::new("funnel_messages_retried_total", "Temporary send failures");
pub(crate) static WEBHOOKS_DELIVERED: Counter =
    Counter::new("funnel_webhooks_delivered_total", "Webhook deliveries answered with a 2xx");
pub(crate) static WEBHOOKS_RETRIED: Counter =
    Counter::new("funnel_webhooks_retried_total", "Webhook attempts that failed and will be retried");
pub(crate) static WEBHOOKS_FAILED: Counter =
    Counter::new("funnel_webhooks_failed_total", "Webhook deliveries given up after a day of retries");

pub(crate) static MESSAGES_HELD: Counter =
    Counter::new("funnel_messages_held_total", "Claimed messages held back by a send window or the contact cap");

const COUNTERS: [&Counter; 15] = [
    &EVENTS_ACCEPTED,
    &EVENTS_DUPLICATE,
    &INVOCATIONS_OK,
    &INVOCATIONS_FAILED,
    &INVOCATIONS_PARKED,
    &TIMERS_FIRED,
    &TIMERS_LATE,
    &MESSAGES_SENT,
    &MESSAGES_DROPPED,
    &MESSAGES_BOUNCED,
    &MESSAGES_RETRIED,
    &WEBHOOKS_DELIVERED,
    &WEBHOOKS_RETRIED,
    &WEBHOOKS_FAILED,
    &MESSAGES_HELD,
];

/// The text exposition of every counter plus the given gauges.
pub(crate) fn render(gauges: &[(&str, &str, i64)]) -> String {
    let mut out = String::new();
    for c in COUNTERS {
        let _ = writeln!(
            out,
            "# HELP {} {}\n# TYPE {} counter\n{} {}",
            c.name,
            c.help,
            c.name,
            c.name,
            c.value.load(Ordering::Relaxed)
        );
    }
    for (name, help, value) in gauges {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}");
    }
    out
}
