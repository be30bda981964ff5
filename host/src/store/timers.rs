//! Durable timers: rows in the database, never in memory only. A timer that comes due is
//! deleted and becomes a `timer` event of its lead in the same transaction, so it enters the
//! same path as every other event and fires exactly once, even across replicas and restarts.

use sqlx::Row;

use super::ingest::{LeadEvent, insert_event};
use super::{Backend, Store, StoreError};

/// A timer that fired.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FiredTimer {
    pub id: String,
    pub lead_id: String,
    pub due_at: i64,
}

impl Store {
    /// Turn up to `limit` timers due at `now` into events. Returns them (with their lateness
    /// computable from `due_at`).
    pub async fn fire_due_timers(&self, now: i64, limit: i64) -> Result<Vec<FiredTimer>, StoreError> {
        let skip_locked = if self.backend == Backend::Postgres { "FOR UPDATE SKIP LOCKED" } else { "" };
        let sql = format!(
            "DELETE FROM timers WHERE id IN (SELECT id FROM timers WHERE due_at <= $1 ORDER BY due_at LIMIT $2 {skip_locked})
             RETURNING id, lead_id, producer_id, tag, due_at"
        );
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now).bind(limit).fetch_all(&mut *tx).await?;
        let mut fired = Vec::with_capacity(rows.len());
        let mut rows: Vec<_> = rows
            .iter()
            .map(|r| -> Result<_, StoreError> {
                Ok((
                    r.try_get::<String, _>("id")?,
                    r.try_get::<String, _>("lead_id")?,
                    r.try_get::<String, _>("producer_id")?,
                    r.try_get::<String, _>("tag")?,
                    r.try_get::<i64, _>("due_at")?,
                ))
            })
            .collect::<Result<_, _>>()?;
        // RETURNING order is unspecified: keep each lead's timers in due order.
        rows.sort_by(|a, b| (a.4, &a.0).cmp(&(b.4, &b.0)));
        for (id, lead_id, producer_id, tag, due_at) in rows {
            let event = LeadEvent::Timer { timer_id: id.clone(), tag, due_at };
            let active = super::dispatch::run_is_active(&mut tx, &lead_id).await?;
            let status = if active { "pending" } else { "skipped" };
            insert_event(&mut tx, &format!("timer:{id}"), &producer_id, Some(&lead_id), Some(&event), status, now)
                .await?;
            fired.push(FiredTimer { id, lead_id, due_at });
        }
        tx.commit().await?;
        Ok(fired)
    }

    /// How many timers are pending.
    pub async fn pending_timers(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM timers").fetch_one(&self.pool).await?)
    }
}
