//! Durable timers: rows in the database, never in memory only. A timer that comes due is
//! deleted and becomes a `timer` event of its lead in the same transaction, so it enters the
//! same path as every other event and fires exactly once, even across replicas and restarts.

use sqlx::Row;

use super::{Backend, Database, StoreError};
use crate::domain::LeadEvent;

/// A timer that fired.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FiredTimer {
    pub id: String,
    pub lead_id: String,
    pub due_at: i64,
}

impl Database {
    /// Turn up to `limit` timers due at `now` into events. Returns them (with their lateness
    /// computable from `due_at`).
    pub async fn fire_due_timers(&self, now: i64, limit: i64) -> Result<Vec<FiredTimer>, StoreError> {
        // PostgreSQL: replicas skip timers another is firing, and `= ANY(ARRAY(…))` keeps the plan
        // an index walk; `IN (…)` let a generic plan cached while the table was empty hash-join
        // a scan of every pending timer into each batch.
        let sql = match self.backend {
            Backend::Postgres => {
                "DELETE FROM timers WHERE id = ANY(ARRAY(SELECT id FROM timers WHERE due_at <= $1
                                                   ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED))
                 RETURNING id, lead_id, producer_id, tag, due_at"
            }
            Backend::Sqlite => {
                "DELETE FROM timers WHERE id IN (SELECT id FROM timers WHERE due_at <= $1 ORDER BY due_at LIMIT $2)
                 RETURNING id, lead_id, producer_id, tag, due_at"
            }
        };
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(sql).bind(now).bind(limit).fetch_all(&mut *tx).await?;
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
        if rows.is_empty() {
            tx.commit().await?;
            return Ok(fired);
        }
        // Two statements for the whole batch, not three per timer: the events (pending when the
        // lead's run is active), then their leads into the dispatch queue. The run of each lead
        // is read by key (a subquery per row), never by joining the table.
        let mut values = Vec::with_capacity(rows.len());
        for (id, lead_id, producer_id, tag, due_at) in rows {
            let payload = serde_json::to_string(&LeadEvent::Timer { timer_id: id.clone(), tag, due_at })
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            values.push((format!("timer:{id}"), producer_id, lead_id.clone(), payload));
            fired.push(FiredTimer { id, lead_id, due_at });
        }
        let mut p = Placeholders::new(self.backend);
        let tuples: Vec<String> = (0..values.len())
            .map(|i| format!("({}, {}, {}, {}, {i})", p.next(), p.next(), p.next(), p.next()))
            .collect();
        let sql = format!(
            "WITH fired (id, producer_id, lead_id, payload, ord) AS (VALUES {})
             INSERT INTO events (id, producer_id, lead_id, kind, payload, status, attempts, next_attempt_at, created_at)
             SELECT f.id, f.producer_id, f.lead_id, 'timer', f.payload,
                    CASE WHEN (SELECT status FROM runs r WHERE r.lead_id = f.lead_id) = 'active'
                         THEN 'pending' ELSE 'skipped' END, 0, {}, {}
             FROM fired f ORDER BY f.ord",
            tuples.join(", "),
            p.next(),
            p.next()
        );
        let mut insert = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (id, producer_id, lead_id, payload) in &values {
            insert = insert.bind(id).bind(producer_id).bind(lead_id).bind(payload);
        }
        insert.bind(now).bind(now).execute(&mut *tx).await?;
        // The upsert of `queue::enqueue` (it locks a row that exists), in lead order so two
        // schedulers firing timers of the same leads take their rows in the same order.
        let mut p = Placeholders::new(self.backend);
        let leads: Vec<String> = (0..values.len()).map(|_| format!("({})", p.next())).collect();
        let sql = format!(
            "WITH fired (lead_id) AS (VALUES {})
             INSERT INTO lead_queue (lead_id, due_at, locked_by, producer_id)
             SELECT DISTINCT f.lead_id, {}, NULL, (SELECT producer_id FROM leads l WHERE l.id = f.lead_id) FROM fired f
             WHERE (SELECT status FROM runs r WHERE r.lead_id = f.lead_id) = 'active' ORDER BY f.lead_id
             ON CONFLICT (lead_id) DO UPDATE SET due_at = lead_queue.due_at WHERE 1 = 0",
            leads.join(", "),
            p.next()
        );
        let mut enqueue = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (_, _, lead_id, _) in &values {
            enqueue = enqueue.bind(lead_id);
        }
        enqueue.bind(now).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(fired)
    }

    /// How many timers are pending.
    pub async fn pending_timers(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM timers").fetch_one(&self.pool).await?)
    }
}

/// Bind parameters of a statement with many, in the order they are bound: `$1`, `$2`, … on
/// PostgreSQL; `?` on SQLite, where sqlx looks every numbered name up in a list (quadratic in
/// their number: 9% of the scheduler's time with 2,000 of them) and anonymous ones are free.
struct Placeholders {
    backend: Backend,
    count: usize,
}

impl Placeholders {
    fn new(backend: Backend) -> Self {
        Placeholders { backend, count: 0 }
    }

    fn next(&mut self) -> String {
        self.count += 1;
        match self.backend {
            Backend::Postgres => format!("${}", self.count),
            Backend::Sqlite => "?".to_string(),
        }
    }
}
