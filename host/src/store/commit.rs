//! Settling an event: what the plugin decided — state, timers, outbox rows, list changes — the
//! event marked done and the lead's place in the queue, in **one transaction**; or the event
//! skipped, or its failure recorded for a retry with backoff. Each first re-checks that the
//! worker still holds the lead (see [`super::queue`]), and writes nothing when it does not.

use super::queue::{LeadAfter, leave_if_idle};
use super::snapshots::{LeadSnapshot, PendingEvent};
use super::{Database, StoreError};
use crate::domain::{EventStatus, RunStatus, TimelineNote};

/// One write of a successful invocation, applied in order.
#[derive(Clone, Debug)]
pub enum Write {
    Timer {
        id: String,
        tag: String,
        due_at: i64,
    },
    CancelTimer {
        id: String,
    },
    CancelAllTimers,
    /// Boxed: a message is far bigger than the other writes.
    Outbox(Box<NewOutbox>),
    ListAdd {
        name: String,
    },
    ListRemove {
        name: String,
    },
    Timeline(TimelineNote),
    /// The plugin chose a variant at a split step (`choose-variant`): recorded once per lead.
    Variant {
        step: String,
        variant: String,
    },
}

/// A rendered message to queue.
#[derive(Clone, Debug)]
pub struct NewOutbox {
    pub id: String,
    pub channel: crate::domain::Channel,
    pub kind: crate::domain::MessageKind,
    pub tag: String,
    pub recipient: String,
    pub subject: Option<String>,
    pub html: Option<String>,
    pub text: Option<String>,
    pub coupon: Option<String>,
    pub link_token: String,
    pub unsubscribe_token: String,
    /// The window a recovery message waits for (the lead's zone resolved); `None`: any time.
    pub send_window: Option<crate::domain::SendWindow>,
}

impl Database {
    /// Mark an event skipped without invoking anything (the run ended or never existed).
    pub async fn skip_event(&self, lease: &str, event: &PendingEvent, reason: &str) -> Result<LeadAfter, StoreError> {
        let mut tx = self.pool.begin().await?;
        if !self.hold(&mut tx, &event.lead_id, lease).await? {
            tx.rollback().await?;
            return Ok(LeadAfter::Lost);
        }
        let after = self.apply_skip(&mut tx, event, reason).await?;
        tx.commit().await?;
        Ok(after)
    }

    /// [`skip_event`](Self::skip_event)'s writes, in a transaction holding the lead.
    pub(super) async fn apply_skip(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        event: &PendingEvent,
        reason: &str,
    ) -> Result<LeadAfter, StoreError> {
        sqlx::query("UPDATE events SET status = 'skipped', error = $1 WHERE seq = $2 AND status = 'pending'")
            .bind(reason)
            .bind(event.seq)
            .execute(&mut **tx)
            .await?;
        leave_if_idle(tx, &event.lead_id).await
    }

    /// Commit a successful invocation: all writes, the new state (or the run's end), the event
    /// marked done and the lead's place in the queue, in one transaction. Writes nothing and
    /// answers `Lost` when the worker no longer holds the lead.
    pub async fn commit_invocation(
        &self,
        lease: &str,
        event: &PendingEvent,
        lead: &LeadSnapshot,
        new_state: Option<Vec<u8>>,
        writes: &[Write],
        now: i64,
    ) -> Result<LeadAfter, StoreError> {
        let mut tx = self.pool.begin().await?;
        if !self.hold(&mut tx, &event.lead_id, lease).await? {
            tx.rollback().await?;
            return Ok(LeadAfter::Lost);
        }
        let after = self.apply_invocation(&mut tx, event, lead, new_state, writes, now).await?;
        match after {
            LeadAfter::Lost => tx.rollback().await?,
            _ => tx.commit().await?,
        }
        Ok(after)
    }

    /// [`commit_invocation`](Self::commit_invocation)'s writes, in a transaction holding the
    /// lead; `Lost` (and nothing written) when the event is no longer pending.
    pub(super) async fn apply_invocation(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        event: &PendingEvent,
        lead: &LeadSnapshot,
        new_state: Option<Vec<u8>>,
        writes: &[Write],
        now: i64,
    ) -> Result<LeadAfter, StoreError> {
        let still_ours =
            sqlx::query("UPDATE events SET status = 'done', error = NULL WHERE seq = $1 AND status = 'pending'")
                .bind(event.seq)
                .execute(&mut **tx)
                .await?
                .rows_affected()
                == 1;
        if !still_ours {
            return Ok(LeadAfter::Lost);
        }
        let (lead_id, producer_id, email) = (event.lead_id.as_str(), lead.producer_id.as_str(), lead.email.as_str());
        for write in writes {
            match write {
                Write::Timer { id, tag, due_at } => {
                    sqlx::query(
                        "INSERT INTO timers (id, lead_id, producer_id, tag, due_at, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(id)
                    .bind(lead_id)
                    .bind(producer_id)
                    .bind(tag)
                    .bind(due_at)
                    .bind(now)
                    .execute(&mut **tx)
                    .await?;
                }
                Write::CancelTimer { id } => {
                    sqlx::query("DELETE FROM timers WHERE id = $1 AND lead_id = $2")
                        .bind(id)
                        .bind(lead_id)
                        .execute(&mut **tx)
                        .await?;
                }
                Write::CancelAllTimers => {
                    sqlx::query("DELETE FROM timers WHERE lead_id = $1").bind(lead_id).execute(&mut **tx).await?;
                }
                Write::Outbox(m) => {
                    // Due outside its window: queued for the opening (checked again when claimed).
                    let hold = crate::domain::window::Hold::window(m.send_window.as_ref(), now);
                    sqlx::query(
                        "INSERT INTO outbox (id, producer_id, lead_id, channel, kind, tag, recipient, subject, html, text, coupon,
                         link_token, unsubscribe_token, status, attempts, next_attempt_at, queued_at, send_window_json)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'queued', 0, $15, $14, $16)",
                    )
                    .bind(&m.id)
                    .bind(producer_id)
                    .bind(lead_id)
                    .bind(m.channel.as_str())
                    .bind(m.kind.as_str())
                    .bind(&m.tag)
                    .bind(&m.recipient)
                    .bind(&m.subject)
                    .bind(&m.html)
                    .bind(&m.text)
                    .bind(&m.coupon)
                    .bind(&m.link_token)
                    .bind(&m.unsubscribe_token)
                    .bind(now)
                    .bind(hold.as_ref().map_or(now, |h| h.until))
                    .bind(super::bindings::window_to_column(m.send_window.as_ref()))
                    .execute(&mut **tx)
                    .await?;
                    if let Some(hold) = hold {
                        let note = hold.timeline_note(&m.id, m.channel, &m.tag);
                        super::timeline::append(tx, lead_id, now, &note).await?;
                    }
                }
                Write::ListAdd { name } => {
                    sqlx::query(
                        "INSERT INTO list_members (producer_id, list_name, email, lead_id, added_at) VALUES ($1, $2, $3, $4, $5)
                         ON CONFLICT (producer_id, list_name, email) DO NOTHING",
                    )
                    .bind(producer_id)
                    .bind(name)
                    .bind(email.to_lowercase())
                    .bind(lead_id)
                    .bind(now)
                    .execute(&mut **tx)
                    .await?;
                    let note = TimelineNote::ListAdd { list: name.clone() };
                    super::timeline::append(tx, lead_id, now, &note).await?;
                }
                Write::ListRemove { name } => {
                    let removed = sqlx::query(
                        "DELETE FROM list_members WHERE producer_id = $1 AND list_name = $2 AND email = $3",
                    )
                    .bind(producer_id)
                    .bind(name)
                    .bind(email.to_lowercase())
                    .execute(&mut **tx)
                    .await?
                    .rows_affected();
                    if removed > 0 {
                        let note = TimelineNote::ListRemove { list: name.clone() };
                        super::timeline::append(tx, lead_id, now, &note).await?;
                    }
                }
                Write::Timeline(note) => super::timeline::append(tx, lead_id, now, note).await?,
                Write::Variant { step, variant } => {
                    super::variants::record(tx, lead_id, producer_id, step, variant, now).await?
                }
            }
        }
        match new_state {
            Some(state) => {
                sqlx::query("UPDATE runs SET state = $1, updated_at = $2 WHERE lead_id = $3")
                    .bind(state)
                    .bind(now)
                    .bind(lead_id)
                    .execute(&mut **tx)
                    .await?;
            }
            None => {
                // The plugin ended the run: its timers go, later events are skipped.
                sqlx::query("UPDATE runs SET state = NULL, status = $1, updated_at = $2 WHERE lead_id = $3")
                    .bind(RunStatus::Ended.as_str())
                    .bind(now)
                    .bind(lead_id)
                    .execute(&mut **tx)
                    .await?;
                sqlx::query("DELETE FROM timers WHERE lead_id = $1").bind(lead_id).execute(&mut **tx).await?;
                super::timeline::append(tx, lead_id, now, &TimelineNote::RunEnded {}).await?;
            }
        }
        leave_if_idle(tx, lead_id).await
    }

    /// Record a failed invocation: retry at `retry_at` (the lead waits in the queue until then,
    /// so its later events wait too), or park the event as failed when `retry_at` is `None`
    /// and mark an open or recovering lead `parked`. Nothing the plugin recorded is kept.
    pub async fn fail_event(
        &self,
        lease: &str,
        event: &PendingEvent,
        error: &str,
        retry_at: Option<i64>,
        now: i64,
    ) -> Result<LeadAfter, StoreError> {
        let mut tx = self.pool.begin().await?;
        if !self.hold(&mut tx, &event.lead_id, lease).await? {
            tx.rollback().await?;
            return Ok(LeadAfter::Lost);
        }
        let after = self.apply_failure(&mut tx, event, error, retry_at, now).await?;
        tx.commit().await?;
        Ok(after)
    }

    /// [`fail_event`](Self::fail_event)'s writes, in a transaction holding the lead.
    pub(super) async fn apply_failure(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        event: &PendingEvent,
        error: &str,
        retry_at: Option<i64>,
        now: i64,
    ) -> Result<LeadAfter, StoreError> {
        let (status, next) = match retry_at {
            Some(at) => (EventStatus::Pending, at),
            None => (EventStatus::Failed, now),
        };
        sqlx::query(
            "UPDATE events SET status = $1, attempts = attempts + 1, next_attempt_at = $2, error = $3 WHERE seq = $4",
        )
        .bind(status.as_str())
        .bind(next)
        .bind(error)
        .bind(event.seq)
        .execute(&mut **tx)
        .await?;
        let (name, attempt, error) = (event.event.name().to_string(), event.attempts + 1, error.to_string());
        let note = match retry_at {
            Some(at) => TimelineNote::Retry { event: name, attempt, retry_in_s: (at - now) / 1000, error },
            None => TimelineNote::Failed { event: name, attempts: attempt, error },
        };
        super::timeline::append(tx, &event.lead_id, now, &note).await?;
        if retry_at.is_none() {
            // The lead needs a person: say so where the producer looks ("my leads").
            sqlx::query("UPDATE leads SET status = 'parked' WHERE id = $1 AND status IN ('open', 'recovering')")
                .bind(&event.lead_id)
                .execute(&mut **tx)
                .await?;
        }
        let after = match retry_at {
            Some(at) => {
                sqlx::query("UPDATE lead_queue SET locked_by = NULL, due_at = $1 WHERE lead_id = $2")
                    .bind(at)
                    .bind(&event.lead_id)
                    .execute(&mut **tx)
                    .await?;
                LeadAfter::Waiting
            }
            None => leave_if_idle(tx, &event.lead_id).await?,
        };
        Ok(after)
    }
}
