//! Send rate caps: at most N sends a minute overall and M per producer, over a sliding
//! minute on the engine's clock (so `simulate` and tests see them too). A message over a cap
//! is deferred to when the window has room, not counted as a failed attempt. The caps are per
//! process: with several replicas, each enforces its own share.
//!
//! A producer's counter is forgotten once its sends have all left the window: a sweep, at most
//! once a window, drops them, so the map holds the producers that sent in the last two minutes,
//! not every producer that ever sent. (`governor`'s keyed limiter was the candidate: it is a
//! GCRA, which spreads a cap of N a minute as one send every 60/N s, and would answer "wait
//! 30 s" where this sliding window answers "when the oldest send ages out"; the caps keep
//! their documented meaning.)

use std::collections::{HashMap, VecDeque};

const WINDOW_MS: i64 = 60_000;

/// Sliding-window counters.
#[derive(Debug, Default)]
pub struct RateCaps {
    global: Option<(u32, VecDeque<i64>)>,
    per_producer: Option<u32>,
    producers: HashMap<String, VecDeque<i64>>,
    /// When idle producers were last dropped from `producers`.
    swept_at: i64,
}

impl RateCaps {
    pub fn new(global_per_minute: Option<u32>, producer_per_minute: Option<u32>) -> Self {
        RateCaps {
            global: global_per_minute.map(|n| (n, VecDeque::new())),
            per_producer: producer_per_minute,
            producers: HashMap::new(),
            swept_at: i64::MIN,
        }
    }

    /// Count a send for `producer` at `now`, or say when there will be room.
    pub fn admit(&mut self, producer: &str, now: i64) -> Option<i64> {
        let mut wait = None;
        if let Some((cap, sends)) = &mut self.global {
            wait = room_at(sends, *cap, now);
        }
        let Some(cap) = self.per_producer else {
            if wait.is_none()
                && let Some((_, sends)) = &mut self.global
            {
                sends.push_back(now);
            }
            return wait;
        };
        self.sweep(now);
        let sends = match self.producers.get_mut(producer) {
            Some(sends) => sends,
            None => self.producers.entry(producer.to_string()).or_default(),
        };
        wait = wait.max(room_at(sends, cap, now));
        if wait.is_some() {
            return wait;
        }
        sends.push_back(now);
        if let Some((_, sends)) = &mut self.global {
            sends.push_back(now);
        }
        None
    }

    /// Drop the producers whose every send has left the window (at most once a window, so the
    /// cost is spread over the sends of a window).
    fn sweep(&mut self, now: i64) {
        if now.saturating_sub(self.swept_at) < WINDOW_MS {
            return;
        }
        self.swept_at = now;
        self.producers.retain(|_, sends| sends.back().is_some_and(|t| *t > now - WINDOW_MS));
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
    fn idle_producers_are_forgotten() {
        let mut caps = RateCaps::new(None, Some(2));
        // 10,000 producers send once each over ten minutes: only the last two minutes' stay.
        for i in 0..10_000_i64 {
            assert_eq!(caps.admit(&format!("p{i}"), i * 60), None);
            assert!(caps.producers.len() <= 2_001, "{} producers tracked at {}", caps.producers.len(), i * 60);
        }
        assert!(caps.producers.len() >= 1_000, "the last minute's producers are still counted");
        // A producer forgotten and back starts with its whole budget; one still in its window does not.
        assert_eq!(caps.admit("p0", 600_000), None);
        assert_eq!(caps.admit("p9999", 599_999), None);
        assert_eq!(caps.admit("p9999", 599_999), Some(599_940 + 60_000));
        caps.admit("late", 10_000_000);
        assert_eq!(caps.producers.len(), 1, "an hour later only the one that just sent is tracked");
    }

    #[test]
    fn global_cap_applies_across_producers() {
        let mut caps = RateCaps::new(Some(2), None);
        assert_eq!(caps.admit("a", 0), None);
        assert_eq!(caps.admit("b", 0), None);
        assert_eq!(caps.admit("c", 5), Some(60_000));
    }
}
