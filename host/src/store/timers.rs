//! Durable timers: rows in the database, never in memory only. A timer that comes due is
//! deleted and becomes a `timer` event of its lead in the same transaction, so it enters the
//! same path as every other event and fires exactly once, even across replicas and restarts.

use sqlx::Row;

use super::{Backend, Database, StoreError};

/// A timer that fired.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FiredTimer {
    pub id: String,
    pub lead_id: String,
    pub due_at: i64,
}

impl Database {
    /// Turn up to `limit` timers due at `now` into events, in one transaction of a few
    /// set-based statements: the timers are deleted, their `timer` events inserted (pending when
    /// the lead's run is active, in due order so each lead's timers keep theirs) and their
    /// leads queued for dispatch. No timer crosses the wire on the way; only what fired comes
    /// back (with its lateness computable from `due_at`).
    pub async fn fire_due_timers(&self, now: i64, limit: i64) -> Result<Vec<FiredTimer>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let rows = match self.backend {
            Backend::Postgres => sqlx::query(POSTGRES_FIRE).bind(now).bind(limit).fetch_all(&mut *tx).await?,
            Backend::Sqlite => {
                // No DELETE inside a WITH here: three statements over the same due set. The
                // transaction holds the one writer, so the set cannot change between them, and
                // `ORDER BY due_at, rowid` (the index's own order, no sort) picks the same rows each time.
                sqlx::query(SQLITE_EVENTS).bind(now).bind(limit).execute(&mut *tx).await?;
                sqlx::query(SQLITE_QUEUE).bind(now).bind(limit).execute(&mut *tx).await?;
                sqlx::query(SQLITE_DELETE).bind(now).bind(limit).fetch_all(&mut *tx).await?
            }
        };
        tx.commit().await?;
        rows.iter()
            .map(|r| {
                Ok(FiredTimer { id: r.try_get("id")?, lead_id: r.try_get("lead_id")?, due_at: r.try_get("due_at")? })
            })
            .collect()
    }

    /// How many timers are pending.
    pub async fn pending_timers(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM timers").fetch_one(&self.pool).await?)
    }
}

/// The statements below compare `runs.status` with `'active'` (`RunStatus::Active`'s word, checked
/// by a test) and write the events' `'pending'`/`'skipped'` (`EventStatus::arriving`) in SQL, set-based.
///
/// PostgreSQL: one statement. Replicas skip timers another is firing, and `= ANY(ARRAY(…))`
/// keeps the plan an index walk; `IN (…)` let a generic plan cached while the table was empty
/// hash-join a scan of every pending timer into each batch. The queue insert is the upsert of
/// `queue::enqueue` (it locks a row that exists), in lead order so two schedulers firing timers
/// of the same leads take their rows in the same order.
const POSTGRES_FIRE: &str = "
    WITH fired AS (
        DELETE FROM timers WHERE id = ANY(ARRAY(SELECT id FROM timers WHERE due_at <= $1
                                                ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED))
        RETURNING id, lead_id, producer_id, tag, due_at),
    active AS (
        SELECT f.*, (SELECT status FROM runs r WHERE r.lead_id = f.lead_id) = 'active' AS active FROM fired f),
    inserted AS (
        INSERT INTO events (id, producer_id, lead_id, kind, payload, status, attempts, next_attempt_at, created_at)
        SELECT 'timer:' || a.id, a.producer_id, a.lead_id, 'timer',
               json_build_object('type', 'timer', 'timer_id', a.id, 'tag', a.tag, 'due_at', a.due_at)::text,
               CASE WHEN a.active THEN 'pending' ELSE 'skipped' END, 0, $1, $1
        FROM active a ORDER BY a.due_at, a.id),
    queued AS (
        INSERT INTO lead_queue (lead_id, due_at, locked_by, producer_id)
        SELECT DISTINCT a.lead_id, $1::BIGINT, NULL::TEXT, (SELECT producer_id FROM leads l WHERE l.id = a.lead_id)
        FROM active a WHERE a.active ORDER BY a.lead_id
        ON CONFLICT (lead_id) DO UPDATE SET due_at = lead_queue.due_at WHERE 1 = 0)
    SELECT id, lead_id, due_at FROM fired";

/// SQLite, 1 of 3: the events of the due timers (the run of each lead read by key).
const SQLITE_EVENTS: &str = "
    INSERT INTO events (id, producer_id, lead_id, kind, payload, status, attempts, next_attempt_at, created_at)
    SELECT 'timer:' || t.id, t.producer_id, t.lead_id, 'timer',
           json_object('type', 'timer', 'timer_id', t.id, 'tag', t.tag, 'due_at', t.due_at),
           CASE WHEN (SELECT status FROM runs r WHERE r.lead_id = t.lead_id) = 'active'
                THEN 'pending' ELSE 'skipped' END, 0, ?1, ?1
    FROM (SELECT id, lead_id, producer_id, tag, due_at FROM timers WHERE due_at <= ?1
          ORDER BY due_at, rowid LIMIT ?2) t
    ORDER BY t.due_at, t.id";

/// SQLite, 2 of 3: their leads with an active run into the dispatch queue.
const SQLITE_QUEUE: &str = "
    INSERT INTO lead_queue (lead_id, due_at, locked_by, producer_id)
    SELECT DISTINCT t.lead_id, ?1, NULL, (SELECT producer_id FROM leads l WHERE l.id = t.lead_id)
    FROM (SELECT lead_id FROM timers WHERE due_at <= ?1 ORDER BY due_at, rowid LIMIT ?2) t
    WHERE (SELECT status FROM runs r WHERE r.lead_id = t.lead_id) = 'active' ORDER BY t.lead_id
    ON CONFLICT (lead_id) DO UPDATE SET due_at = lead_queue.due_at WHERE 1 = 0";

/// SQLite, 3 of 3: the timers themselves, gone.
const SQLITE_DELETE: &str = "
    DELETE FROM timers WHERE id IN (SELECT id FROM timers WHERE due_at <= ?1 ORDER BY due_at, rowid LIMIT ?2)
    RETURNING id, lead_id, due_at";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{EventStatus, RunStatus};

    #[test]
    fn the_set_based_statements_speak_the_stored_words() {
        let active = format!("= '{}'", RunStatus::Active.as_str());
        let arriving =
            format!("'{}' ELSE '{}'", EventStatus::arriving(true).as_str(), EventStatus::arriving(false).as_str());
        for sql in [POSTGRES_FIRE, SQLITE_EVENTS] {
            assert!(sql.contains(&active) && sql.contains(&arriving), "{sql}");
        }
        assert!(SQLITE_QUEUE.contains(&active));
    }
}
