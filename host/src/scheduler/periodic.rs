//! The host's periodic jobs, on cron schedules from the configuration (the `cron` crate: six
//! fields with seconds, e.g. `0 30 3 * * *` for 03:30:00 UTC daily): the retention purge of
//! handled events older than the configured number of days, and the stats roll-up
//! (`store::rollup`). A failed job is logged and runs again at its next occurrence.

use std::str::FromStr;

use chrono::{DateTime, Utc};

use crate::store::{Database, StoreError};

/// A cron schedule and when it next fires.
#[derive(Debug, Clone)]
pub struct Periodic {
    schedule: cron::Schedule,
    next_at: Option<i64>,
}

impl Periodic {
    /// Parse a schedule; the error says what a valid one looks like.
    pub fn parse(expression: &str) -> Result<Self, String> {
        let schedule = cron::Schedule::from_str(expression).map_err(|e| {
            format!(
                "invalid cron schedule {expression:?}: {e}; use six fields with seconds first, e.g. \"0 30 3 * * *\""
            )
        })?;
        Ok(Periodic { schedule, next_at: None })
    }

    /// Whether the job is due at `now` (advancing to the next occurrence when it is). The
    /// first call only arms the schedule.
    pub fn due(&mut self, now: i64) -> bool {
        let after = |ms: i64| {
            DateTime::<Utc>::from_timestamp_millis(ms)
                .and_then(|t| self.schedule.after(&t).next())
                .map(|t| t.timestamp_millis())
        };
        match self.next_at {
            None => {
                self.next_at = after(now);
                false
            }
            Some(at) if now >= at => {
                self.next_at = after(now);
                true
            }
            Some(_) => false,
        }
    }
}

/// The periodic jobs of `funnel serve` and their schedules.
#[derive(Debug, Clone)]
pub struct PeriodicJobs {
    /// When the retention purge runs.
    pub retention: Periodic,
    /// Handled events older than this many days are purged.
    pub retention_days: u32,
    /// When the stats roll-up recomputes yesterday and today.
    pub stats_rollup: Periodic,
}

impl PeriodicJobs {
    /// Run each job whose schedule has come by `now`.
    pub async fn run_due(&mut self, store: &Database, now: i64) {
        if self.retention.due(now) {
            let before = now - i64::from(self.retention_days) * 86_400_000;
            match store.purge_events(before).await {
                Ok(n) => tracing::info!(purged = n, days = self.retention_days, "retention purge"),
                Err(e) => tracing::error!(error = %e, "retention purge failed"),
            }
            match store.purge_webhook_deliveries(before).await {
                Ok(n) => tracing::info!(purged = n, days = self.retention_days, "webhook deliveries purged"),
                Err(e) => tracing::error!(error = %e, "webhook retention purge failed"),
            }
        }
        if self.stats_rollup.due(now) {
            // Yesterday too: facts are dated by when they happened, and one can land just
            // after midnight in the previous day's run window.
            let from_day = crate::store::rollup::day_of(now) - 1;
            if let Err(e) = store.roll_up_stats(from_day).await {
                tracing::error!(error = %e, "stats roll-up failed");
            }
        }
    }
}

impl Database {
    /// Delete handled (done or skipped) events created before `before`; returns how many.
    pub async fn purge_events(&self, before: i64) -> Result<u64, StoreError> {
        Ok(sqlx::query("DELETE FROM events WHERE status IN ('done', 'skipped') AND created_at < $1")
            .bind(before)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_once_per_occurrence() {
        let mut daily = Periodic::parse("0 30 3 * * *").expect("valid");
        let day = 86_400_000;
        let t0 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
        assert!(!daily.due(t0), "arming does not fire");
        assert!(!daily.due(t0 + 3 * 3_600_000), "03:00 is before 03:30");
        assert!(daily.due(t0 + 3 * 3_600_000 + 30 * 60_000), "03:30 fires");
        assert!(!daily.due(t0 + 4 * 3_600_000), "not twice the same day");
        assert!(daily.due(t0 + day + 4 * 3_600_000), "the next day, late, fires once");
    }

    #[test]
    fn a_five_field_expression_is_refused_with_help() {
        let err = Periodic::parse("*/5 * * * *").unwrap_err();
        assert!(err.contains("six fields"), "{err}");
    }
}
