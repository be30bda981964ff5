//! Send rate caps: at most N sends a minute overall and M per producer, over a sliding
//! minute on the engine's clock (so `simulate` and tests see them too). A message over a cap
//! is deferred to when the window has room, not counted as a failed attempt. The caps are per
//! process: with several replicas, each enforces its own share.

use std::collections::{HashMap, VecDeque};

const WINDOW_MS: i64 = 60_000;

/// Sliding-window counters.
#[derive(Debug, Default)]
pub struct RateCaps {
    global: Option<(u32, VecDeque<i64>)>,
    per_producer: Option<u32>,
    producers: HashMap<String, VecDeque<i64>>,
}

impl RateCaps {
    pub fn new(global_per_minute: Option<u32>, producer_per_minute: Option<u32>) -> Self {
        RateCaps {
            global: global_per_minute.map(|n| (n, VecDeque::new())),
            per_producer: producer_per_minute,
            producers: HashMap::new(),
        }
    }

    /// Count a send for `producer` at `now`, or say when there will be room.
    pub fn admit(&mut self, producer: &str, now: i64) -> Option<i64> {
        let mut wait = None;
        if let Some((cap, sends)) = &mut self.global {
            wait = room_at(sends, *cap, now);
        }
        if let Some(cap) = self.per_producer {
            let sends = self.producers.entry(producer.to_string()).or_default();
            wait = wait.max(room_at(sends, cap, now));
        }
        if wait.is_some() {
            return wait;
        }
        if let Some((_, sends)) = &mut self.global {
            sends.push_back(now);
        }
        if self.per_producer.is_some() {
            self.producers.entry(producer.to_string()).or_default().push_back(now);
        }
        None
    }
}

/// Forget sends older than the window; when full, the time the oldest leaves it.
fn room_at(sends: &mut VecDeque<i64>, cap: u32, now: i64) -> Option<i64> {
    while sends.front().is_some_and(|t| *t <= now - WINDOW_MS) {
        sends.pop_front();
    }
    if sends.len() < cap as usize { None } else { sends.front().map(|t| t + WINDOW_MS) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_producer_cap_defers_to_when_the_window_has_room() {
        let mut caps = RateCaps::new(None, Some(2));
        assert_eq!(caps.admit("a", 0), None);
        assert_eq!(caps.admit("a", 10), None);
        assert_eq!(caps.admit("a", 20), Some(60_000), "third in a minute waits for the first to age out");
        assert_eq!(caps.admit("b", 20), None, "another producer has its own budget");
        assert_eq!(caps.admit("a", 60_000), None);
    }

    #[test]
    fn global_cap_applies_across_producers() {
        let mut caps = RateCaps::new(Some(2), None);
        assert_eq!(caps.admit("a", 0), None);
        assert_eq!(caps.admit("b", 0), None);
        assert_eq!(caps.admit("c", 5), Some(60_000));
    }
}
