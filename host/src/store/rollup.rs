//! The stats roll-up: per producer, per UTC day and per message tag, how many leads were
//! captured, recovered, and how many messages were sent and clicked, kept in `stats_daily`.
//!
//! A periodic job ([`crate::scheduler::periodic`], schedule in `funnel serve`'s config)
//! recomputes the days that can still change (yesterday and today, or more after downtime), so
//! `GET /v1/stats?from=&to=` answers for any range from a few rows instead of scanning every
//! lead and message of the producer. The totals of a plain `GET /v1/stats` stay live.

use serde::Serialize;
use sqlx::Row;

use super::{Database, StoreError};

const DAY_MS: i64 = 86_400_000;

/// One row of the roll-up. `tag` is empty for the lead-level row of the day (`leads`,
/// `recovered`); a message tag's row counts its `sent`, `clicked` and the recoveries
/// attributed to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DailyRow {
    /// Days since 1970-01-01 (UTC).
    pub day: i64,
    pub tag: String,
    pub leads: i64,
    pub recovered: i64,
    pub sent: i64,
    pub clicked: i64,
}

/// The UTC day number of a Unix-millisecond time.
pub(crate) fn day_of(ms: i64) -> i64 {
    ms.div_euclid(DAY_MS)
}

impl Database {
    /// Recompute the roll-up for every day from `from_day` (a day number) on, in one
    /// transaction: readers see the old rows or the new ones, never a mix.
    pub async fn roll_up_stats(&self, from_day: i64) -> Result<(), StoreError> {
        let since = from_day.saturating_mul(DAY_MS);
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM stats_daily WHERE day >= $1").bind(from_day).execute(&mut *tx).await?;
        // Each fact is one row of ones and zeros, summed per (producer, day, tag). Integer
        // division gives the UTC day on both SQLite and PostgreSQL.
        sqlx::query(
            "INSERT INTO stats_daily (producer_id, day, tag, leads, recovered, sent, clicked)
             SELECT producer_id, day, tag, SUM(leads), SUM(recovered), SUM(sent), SUM(clicked) FROM (
               SELECT producer_id, captured_at / 86400000 AS day, '' AS tag,
                      1 AS leads, 0 AS recovered, 0 AS sent, 0 AS clicked
                 FROM leads WHERE captured_at >= $1
               UNION ALL
               SELECT producer_id, purchased_at / 86400000, '', 0, 1, 0, 0
                 FROM leads WHERE purchased_at >= $1 AND recovered_by IS NOT NULL
               UNION ALL
               SELECT l.producer_id, l.purchased_at / 86400000, o.tag, 0, 1, 0, 0
                 FROM leads l JOIN outbox o ON o.id = l.recovered_by WHERE l.purchased_at >= $1
               UNION ALL
               SELECT producer_id, sent_at / 86400000, tag, 0, 0, 1, 0
                 FROM outbox WHERE sent_at >= $1 AND status = 'sent'
               UNION ALL
               SELECT producer_id, clicked_at / 86400000, tag, 0, 0, 0, 1
                 FROM outbox WHERE clicked_at >= $1
             ) AS facts GROUP BY producer_id, day, tag",
        )
        .bind(since)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The producer's roll-up rows for days `from_day..=to_day`, by day then tag.
    pub async fn daily_stats(
        &self,
        producer_id: &str,
        from_day: i64,
        to_day: i64,
    ) -> Result<Vec<DailyRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT day, tag, leads, recovered, sent, clicked FROM stats_daily
             WHERE producer_id = $1 AND day >= $2 AND day <= $3 ORDER BY day, tag",
        )
        .bind(producer_id)
        .bind(from_day)
        .bind(to_day)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DailyRow {
                    day: r.try_get("day")?,
                    tag: r.try_get("tag")?,
                    leads: r.try_get("leads")?,
                    recovered: r.try_get("recovered")?,
                    sent: r.try_get("sent")?,
                    clicked: r.try_get("clicked")?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::day_of;

    #[test]
    fn days_are_utc_and_start_at_midnight() {
        let t0 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
        assert_eq!(day_of(t0), 20_454);
        assert_eq!(day_of(t0 - 1), 20_453);
        assert_eq!(day_of(t0 + 86_399_999), 20_454);
    }
}
