//! The lead queue: a row per lead with pending events, leased to one worker at a time (a dead
//! worker's leads are picked up by another when the lease runs out), so events of one lead are
//! handled in order and never concurrently.

use std::collections::HashSet;

use sqlx::Executor;

use super::{Backend, Database, StoreError};

/// Where a lead stands after a worker settled one of its events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeadAfter {
    /// More events are queued and the worker still holds the lead.
    Busy,
    /// Nothing is pending any more: the lead left the queue.
    Idle,
    /// Given back until its oldest pending event's retry is due.
    Waiting,
    /// The worker no longer holds the lead (its lease ran out and another took it): nothing
    /// was written.
    Lost,
}

/// Put a lead with a new pending event in the queue, due at `now`, or leave its row as it is
/// (held by a worker, or waiting for a retry that keeps the lead's order). Called in the
/// transaction that inserts the event.
pub(crate) async fn enqueue(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    lead_id: &str,
    now: i64,
) -> Result<(), StoreError> {
    // `DO UPDATE … WHERE 1 = 0` changes nothing but locks an existing row until commit: a
    // worker about to drop the row as idle (see `leave_if_idle`) waits for this transaction,
    // then sees its event. `DO NOTHING` takes no lock, and the event could be left unqueued.
    sqlx::query(
        "INSERT INTO lead_queue (lead_id, due_at, locked_by, producer_id)
         VALUES ($1, $2, NULL, (SELECT producer_id FROM leads WHERE id = $1))
         ON CONFLICT (lead_id) DO UPDATE SET due_at = lead_queue.due_at WHERE 1 = 0",
    )
    .bind(lead_id)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Database {
    /// Lease up to `limit` due leads until `now + lease_ms`, shared fairly between producers
    /// (see [`Database::claim_leads_fair`], from the first producer, none throttled).
    pub async fn claim_leads(
        &self,
        lease: &str,
        now: i64,
        lease_ms: i64,
        limit: i64,
    ) -> Result<Vec<String>, StoreError> {
        let none = HashSet::new();
        let (leads, _) = self.claim_leads_fair(lease, now, lease_ms, limit, "", &none, &none).await?;
        Ok(leads.into_iter().map(|(lead, _)| lead).collect())
    }

    /// Lease up to `limit` due leads until `now + lease_ms`; `lease` names the lease (the
    /// holder). Leads held by a live worker or waiting for a retry are not due; a dead
    /// worker's leads become due again when its lease runs out.
    ///
    /// Shared between producers, so one producer's backlog cannot hold another's first event
    /// behind it: up to `limit` producers with due leads are taken in turn, starting after
    /// `after` (the last one served, wrapping around), each gets an equal share of the claim
    /// (its oldest due leads), a producer in `throttled` (its plugin keeps hitting its limits)
    /// one lead only however many slots are free, a producer in `skip` none (a throttled one
    /// already busy in this process), and slots left over go to unthrottled producers with
    /// more. The leads are returned with their producer (`""` for a row queued before
    /// producers were recorded), interleaved by producer; with the last producer served, for
    /// the next claim's `after`. Costs one index probe per producer found plus one statement
    /// per producer claimed from (two statements for a single producer).
    #[allow(clippy::too_many_arguments)] // each says who gets how much; a struct would only rename them
    pub async fn claim_leads_fair(
        &self,
        lease: &str,
        now: i64,
        lease_ms: i64,
        limit: i64,
        after: &str,
        throttled: &HashSet<String>,
        skip: &HashSet<String>,
    ) -> Result<(Vec<(String, String)>, String), StoreError> {
        let limit = limit.max(0) as usize;
        let mut any_producer = false;
        let mut found = |producers: Vec<String>| {
            any_producer |= !producers.is_empty();
            producers.into_iter().filter(|p| !skip.contains(p)).collect::<Vec<_>>()
        };
        let mut producers = found(self.due_producers(now, after, limit + skip.len()).await?);
        producers.truncate(limit);
        if producers.len() < limit && !after.is_empty() {
            for p in found(self.due_producers(now, "", limit + skip.len()).await?) {
                if p.as_str() > after || producers.len() == limit || producers.contains(&p) {
                    break;
                }
                producers.push(p);
            }
        }
        let mut claimed: Vec<(String, Vec<String>)> = Vec::with_capacity(producers.len());
        let mut remaining = limit;
        if producers.is_empty() && any_producer {
            // Every producer with due leads is skipped.
            return Ok((Vec::new(), after.to_string()));
        }
        if producers.is_empty() {
            // Rows without a producer (queued before it was recorded): oldest first.
            let leads = self.claim_due(lease, now, lease_ms, limit, None).await?;
            return Ok((leads.into_iter().map(|lead| (lead, String::new())).collect(), after.to_string()));
        }
        let share = limit.div_ceil(producers.len()).max(1);
        let mut hungry = Vec::new();
        for p in &producers {
            if remaining == 0 {
                break;
            }
            let is_throttled = throttled.contains(p);
            let want = if is_throttled { 1 } else { share }.min(remaining);
            let leads = self.claim_due(lease, now, lease_ms, want, Some(p)).await?;
            remaining -= leads.len();
            if leads.len() == want && !is_throttled {
                hungry.push(p.clone());
            }
            claimed.push((p.clone(), leads));
        }
        let last = claimed.iter().rev().find(|(_, leads)| !leads.is_empty()).map(|(p, _)| p.clone());
        // Left-over slots: to unthrottled producers that may have more.
        let mut group = hungry;
        while remaining > 0 && !group.is_empty() {
            let per = remaining.div_ceil(group.len());
            let mut still = Vec::new();
            for p in group {
                if remaining == 0 {
                    break;
                }
                let want = per.min(remaining);
                let leads = self.claim_due(lease, now, lease_ms, want, Some(&p)).await?;
                remaining -= leads.len();
                if leads.len() == want {
                    still.push(p.clone());
                }
                if let Some((_, mine)) = claimed.iter_mut().find(|(q, _)| *q == p) {
                    mine.extend(leads);
                }
            }
            group = still;
        }
        // Interleaved: the first lead of each producer, then the second of each, …
        let mut leads = Vec::with_capacity(limit - remaining);
        let mut round = 0;
        loop {
            let before = leads.len();
            leads.extend(
                claimed
                    .iter()
                    .filter_map(|(producer, mine)| mine.get(round).map(|lead| (lead.clone(), producer.clone()))),
            );
            if leads.len() == before {
                break;
            }
            round += 1;
        }
        Ok((leads, last.unwrap_or_else(|| after.to_string())))
    }

    /// Producers with due leads, in producer order after `after`, at most `limit`: a skip
    /// scan of `(producer_id, due_at)`, one index probe per producer, however long their
    /// queues.
    async fn due_producers(&self, now: i64, after: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let producers: Vec<String> = sqlx::query_scalar(
            "WITH RECURSIVE producers (pid) AS (
               SELECT (SELECT producer_id FROM lead_queue WHERE producer_id > $1 AND due_at <= $2
                       ORDER BY producer_id LIMIT 1)
               UNION ALL
               SELECT (SELECT producer_id FROM lead_queue WHERE producer_id > producers.pid AND due_at <= $2
                       ORDER BY producer_id LIMIT 1)
               FROM producers WHERE producers.pid IS NOT NULL)
             SELECT pid FROM producers WHERE pid IS NOT NULL LIMIT $3",
        )
        .bind(after)
        .bind(now)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        Ok(producers)
    }

    /// Lease up to `limit` due leads of `producer` (of any, when `None`), oldest due first.
    async fn claim_due(
        &self,
        lease: &str,
        now: i64,
        lease_ms: i64,
        limit: usize,
        producer: Option<&str>,
    ) -> Result<Vec<String>, StoreError> {
        // PostgreSQL: replicas skip rows another is claiming instead of queueing behind it, and
        // `= ANY(ARRAY(…))` keeps the plan an index walk whatever the statistics say.
        // SQLite has one writer: the statement alone is atomic.
        let of_producer = if producer.is_some() { "AND producer_id = $5" } else { "" };
        let sql = match self.backend {
            Backend::Postgres => format!(
                "UPDATE lead_queue SET locked_by = $1, due_at = $2
                 WHERE lead_id = ANY(ARRAY(SELECT lead_id FROM lead_queue WHERE due_at <= $3 {of_producer}
                                          ORDER BY due_at LIMIT $4 FOR UPDATE SKIP LOCKED))
                 RETURNING lead_id"
            ),
            Backend::Sqlite => format!(
                "UPDATE lead_queue SET locked_by = $1, due_at = $2
                 WHERE lead_id IN (SELECT lead_id FROM lead_queue WHERE due_at <= $3 {of_producer}
                                   ORDER BY due_at LIMIT $4)
                 RETURNING lead_id"
            ),
        };
        let mut query =
            sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(lease).bind(now + lease_ms).bind(now).bind(limit as i64);
        if let Some(producer) = producer {
            query = query.bind(producer);
        }
        Ok(query.fetch_all(&self.pool).await?)
    }

    /// Reclaim the dead rows and index entries of the queue (PostgreSQL). Every event inserts,
    /// claims and deletes a queue row, and claims walk the queue's index from the oldest due
    /// entry: without a vacuum they wade through every entry ever finished (200,000 after a
    /// 100,000-event run: 3 ms a claim, 0.8 ms after a 60 ms vacuum). Autovacuum does this
    /// where it is on; this keeps claims cheap where it is off. SQLite reuses the space itself.
    pub async fn tidy_queue(&self) -> Result<(), StoreError> {
        if self.backend == Backend::Postgres {
            // Outside a transaction (VACUUM refuses to run in one); another replica's vacuum
            // in progress is skipped, not waited for.
            self.pool.execute(sqlx::raw_sql("VACUUM (SKIP_LOCKED) lead_queue")).await?;
        }
        Ok(())
    }

    /// How many leads are in the dispatch queue (with pending events, held or not).
    pub async fn queued_leads(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM lead_queue").fetch_one(&self.pool).await?)
    }

    /// Give a lead held under `lease` back, due again at `due_at`.
    pub async fn release_lead(&self, lead_id: &str, lease: &str, due_at: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE lead_queue SET locked_by = NULL, due_at = $1 WHERE lead_id = $2 AND locked_by = $3")
            .bind(due_at)
            .bind(lead_id)
            .bind(lease)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Drop a held lead from the queue if it has no pending event (returns `Idle`), else keep
    /// holding it (`Busy`).
    pub async fn settle_lead(&self, lead_id: &str, lease: &str) -> Result<LeadAfter, StoreError> {
        let mut tx = self.pool.begin().await?;
        if !self.hold(&mut tx, lead_id, lease).await? {
            tx.rollback().await?;
            return Ok(LeadAfter::Lost);
        }
        let after = leave_if_idle(&mut tx, lead_id).await?;
        tx.commit().await?;
        Ok(after)
    }

    /// In `tx`, lock the lead's queue row if it is still held under `lease`. Until commit, no
    /// other worker can claim the lead and no new event of the lead can be queued.
    pub(super) async fn hold(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        lead_id: &str,
        lease: &str,
    ) -> Result<bool, StoreError> {
        let sql = match self.backend {
            Backend::Postgres => "SELECT 1 FROM lead_queue WHERE lead_id = $1 AND locked_by = $2 FOR UPDATE",
            Backend::Sqlite => "SELECT 1 FROM lead_queue WHERE lead_id = $1 AND locked_by = $2",
        };
        let held: Option<i32> = sqlx::query_scalar(sql).bind(lead_id).bind(lease).fetch_optional(&mut **tx).await?;
        Ok(held.is_some())
    }

    /// The earliest time anything is due (a timer, an event retry, a message retry).
    pub async fn next_wakeup(&self) -> Result<Option<i64>, StoreError> {
        let at: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(t) FROM (
               SELECT MIN(due_at) AS t FROM timers
               UNION ALL SELECT MIN(due_at) AS t FROM lead_queue
               UNION ALL SELECT MIN(next_attempt_at) AS t FROM outbox WHERE status = 'queued') AS due",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(at)
    }
}

/// In a transaction holding the lead's queue row (see `Database::hold`): drop the row when the
/// lead has no pending event left. Events queued by transactions that committed before the
/// hold are seen here; later ones wait for this commit and queue the lead again.
pub(super) async fn leave_if_idle(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    lead_id: &str,
) -> Result<LeadAfter, StoreError> {
    let left = sqlx::query(
        "DELETE FROM lead_queue WHERE lead_id = $1
           AND NOT EXISTS (SELECT 1 FROM events WHERE lead_id = $1 AND status = 'pending')",
    )
    .bind(lead_id)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(if left == 1 { LeadAfter::Idle } else { LeadAfter::Busy })
}
