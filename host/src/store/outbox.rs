//! The outbox: messages plugins queued, waiting for delivery. Workers claim due rows with a
//! lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL), so a message is handed to one worker at a
//! time and a dead worker's claim expires; the outcome (sent, dropped, bounced, retry) is
//! recorded here with a timeline entry, by the claim's owner only: each claim has a name, and a
//! worker whose lease ran out (its message taken over by another) records nothing.

use sqlx::Row;

use super::{Backend, Database, StoreError, stored_word};
use crate::domain::timeline::MessageNote;
use crate::domain::window::{Hold, HoldReason};
use crate::domain::{Channel, MessageKind, SendWindow, TimelineNote};
use crate::webhooks::WebhookEvent;

/// A claimed message with what the send-time rules need.
#[derive(Clone, Debug)]
pub struct OutboxMessage {
    pub id: String,
    pub producer_id: String,
    pub lead_id: String,
    pub channel: Channel,
    pub kind: MessageKind,
    pub tag: String,
    pub recipient: String,
    pub subject: Option<String>,
    pub html: Option<String>,
    pub text: Option<String>,
    pub coupon: Option<String>,
    pub unsubscribe_token: String,
    pub attempts: i64,
    pub queued_at: i64,
    /// The lead bought (at any time): recovery messages are dropped.
    pub lead_purchased: bool,
    /// The recipient is on the producer's suppression list.
    pub suppressed: bool,
    /// The name of the claim it was handed out under (see [`Database::finish_message`]).
    pub claim: String,
    /// The window a recovery message goes out in (the lead's zone resolved when queued).
    pub send_window: Option<SendWindow>,
    /// The person it goes to, as the contact cap counts them: the lead's normalized email.
    pub contact: String,
}

/// How a delivery attempt ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    Dropped(String),
    Retry {
        at: i64,
        error: String,
    },
    /// Not attempted (a send rate cap): try again at `at`, without counting an attempt.
    Deferred {
        at: i64,
    },
    Bounced(String),
    Failed(String),
    /// Held back by a send window or the contact cap: queued again for `until` (no attempt
    /// counted), and the timeline says why.
    Held(Hold),
}

/// Queue `message.sent` or `message.bounced` for the producer's webhooks, in the transaction
/// that records the outcome.
async fn report_message(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    message: &OutboxMessage,
    event: WebhookEvent,
    reason: Option<&str>,
    now: i64,
) -> Result<(), StoreError> {
    let mut data = serde_json::json!({
        "message_id": message.id, "lead_id": message.lead_id, "channel": message.channel.as_str(), "kind": message.kind.as_str(),
        "tag": message.tag, "recipient": message.recipient, "coupon": message.coupon,
    });
    if let Some(reason) = reason {
        data["reason"] = serde_json::json!(reason);
    }
    super::webhooks::enqueue(tx, &message.producer_id, event, Some(&message.lead_id), data, now).await?;
    Ok(())
}

impl Database {
    /// Claim up to `limit` messages due at `now` for `lease_ms`: one statement, which also
    /// reads what the send-time checks need (whether the lead bought, whether the address is
    /// suppressed).
    pub async fn claim_messages(&self, now: i64, lease_ms: i64, limit: i64) -> Result<Vec<OutboxMessage>, StoreError> {
        let skip_locked = if self.backend == Backend::Postgres { "FOR UPDATE SKIP LOCKED" } else { "" };
        let claim = super::new_id();
        let sql = format!(
            "UPDATE outbox SET status = 'sending', next_attempt_at = $1, claim = $4
             WHERE id IN (SELECT id FROM outbox WHERE status IN ('queued', 'sending') AND next_attempt_at <= $2
                          ORDER BY queued_at, id LIMIT $3 {skip_locked})
             RETURNING *, (SELECT purchased_at FROM leads l WHERE l.id = outbox.lead_id) AS purchased_at,
               (SELECT email FROM leads l WHERE l.id = outbox.lead_id) AS contact,
               (SELECT COUNT(*) FROM suppressions s
                WHERE s.producer_id = outbox.producer_id AND s.address = LOWER(outbox.recipient)) AS suppressed"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now + lease_ms)
            .bind(now)
            .bind(limit)
            .bind(&claim)
            .fetch_all(&self.pool)
            .await?;
        let mut messages = Vec::with_capacity(rows.len());
        for r in rows {
            messages.push(OutboxMessage {
                id: r.try_get("id")?,
                producer_id: r.try_get("producer_id")?,
                lead_id: r.try_get("lead_id")?,
                channel: stored_word(&r, "outbox", "channel", Channel::parse)?,
                kind: stored_word(&r, "outbox", "kind", MessageKind::parse)?,
                tag: r.try_get("tag")?,
                recipient: r.try_get("recipient")?,
                subject: r.try_get("subject")?,
                html: r.try_get("html")?,
                text: r.try_get("text")?,
                coupon: r.try_get("coupon")?,
                unsubscribe_token: r.try_get("unsubscribe_token")?,
                attempts: r.try_get("attempts")?,
                queued_at: r.try_get("queued_at")?,
                lead_purchased: r.try_get::<Option<i64>, _>("purchased_at")?.is_some(),
                suppressed: r.try_get::<i64, _>("suppressed")? > 0,
                claim: claim.clone(),
                send_window: super::bindings::window_from_column(r.try_get("send_window_json")?)?,
                contact: r.try_get("contact")?,
            });
        }
        messages.sort_by(|a, b| (a.queued_at, &a.id).cmp(&(b.queued_at, &b.id)));
        Ok(messages)
    }

    /// Extend the claim on `message` until `until`, before a send that comes late in its
    /// batch; `false` if the claim is no longer this worker's (do not send).
    pub async fn renew_message_claim(&self, message: &OutboxMessage, until: i64) -> Result<bool, StoreError> {
        let renewed =
            sqlx::query("UPDATE outbox SET next_attempt_at = $1 WHERE id = $2 AND status = 'sending' AND claim = $3")
                .bind(until)
                .bind(&message.id)
                .bind(&message.claim)
                .execute(&self.pool)
                .await?
                .rows_affected();
        Ok(renewed == 1)
    }

    /// Give a claimed message back unsent, due at `now` (nothing counted): for shutdown.
    pub async fn release_message(&self, message: &OutboxMessage, now: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE outbox SET status = 'queued', next_attempt_at = $1, claim = NULL
             WHERE id = $2 AND status = 'sending' AND claim = $3",
        )
        .bind(now)
        .bind(&message.id)
        .bind(&message.claim)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Record the outcome of a delivery attempt, if the message is still under the claim it
    /// was sent under; `false` (and nothing written) if another worker took it over.
    pub async fn finish_message(
        &self,
        message: &OutboxMessage,
        outcome: &Outcome,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let finished = finish_in(&mut tx, message, outcome, now).await?;
        tx.commit().await?;
        Ok(finished)
    }

    /// [`Database::finish_message`] for many messages in one transaction (a group commit of
    /// parallel sends): each outcome is recorded only under its own claim, and the answer says
    /// which were.
    pub async fn finish_messages(
        &self,
        finished: &[(OutboxMessage, Outcome)],
        now: i64,
    ) -> Result<Vec<bool>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut recorded = Vec::with_capacity(finished.len());
        for (message, outcome) in finished {
            recorded.push(finish_in(&mut tx, message, outcome, now).await?);
        }
        tx.commit().await?;
        Ok(recorded)
    }

    /// The rendered text of a message (an email's text part, an SMS's body), for previews.
    pub async fn message_text(&self, id: &str) -> Result<Option<String>, StoreError> {
        let text: Option<Option<String>> =
            sqlx::query_scalar("SELECT text FROM outbox WHERE id = $1").bind(id).fetch_optional(&self.pool).await?;
        Ok(text.flatten())
    }

    /// Messages waiting to be sent (the outbox depth).
    pub async fn outbox_depth(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE status IN ('queued', 'sending')")
            .fetch_one(&self.pool)
            .await?)
    }
}

/// Record one outcome inside `tx` if the message is still under its claim: the row first
/// (its claim checked), then what follows from it; nothing at all when the claim is gone.
async fn finish_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    message: &OutboxMessage,
    outcome: &Outcome,
    now: i64,
) -> Result<bool, StoreError> {
    let (status, reason, next): (&str, Option<String>, i64) = match outcome {
        Outcome::Sent => ("sent", None, now),
        Outcome::Dropped(reason) => ("dropped", Some(reason.clone()), now),
        Outcome::Retry { at, error } => ("queued", Some(error.clone()), *at),
        Outcome::Deferred { at } => ("queued", None, *at),
        Outcome::Bounced(reason) => ("bounced", Some(reason.clone()), now),
        Outcome::Failed(reason) => ("failed", Some(reason.clone()), now),
        Outcome::Held(hold) => ("queued", None, hold.until),
    };
    let capped = matches!(outcome, Outcome::Held(Hold { reason: HoldReason::ContactCap, .. }));
    let finished = sqlx::query(
        "UPDATE outbox SET status = $1, reason = $2, next_attempt_at = $3, attempts = attempts + $6,
         sent_at = CASE WHEN $1 = 'sent' THEN $4 ELSE sent_at END, claim = NULL,
         capped = CASE WHEN $8 = 1 THEN 'deferred' ELSE capped END
         WHERE id = $5 AND status = 'sending' AND claim = $7",
    )
    .bind(status)
    .bind(&reason)
    .bind(next)
    .bind(now)
    .bind(&message.id)
    .bind(i64::from(!matches!(outcome, Outcome::Deferred { .. } | Outcome::Held(_))))
    .bind(&message.claim)
    .bind(i64::from(capped))
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if finished == 0 {
        return Ok(false);
    }
    let note = MessageNote {
        message_id: message.id.clone(),
        channel: message.channel,
        tag: message.tag.clone(),
        subject: message.subject.clone(),
        body: if message.channel == Channel::Sms { message.text.clone() } else { None },
        coupon: message.coupon.clone(),
        reason: reason.clone(),
    };
    match outcome {
        Outcome::Sent => {
            sqlx::query("UPDATE leads SET status = 'recovering' WHERE id = $1 AND status = 'open'")
                .bind(&message.lead_id)
                .execute(&mut **tx)
                .await?;
            let note = match message.channel {
                Channel::Email => TimelineNote::Email(note),
                Channel::Sms => TimelineNote::Sms(note),
            };
            super::timeline::append(tx, &message.lead_id, now, &note).await?;
            report_message(tx, message, WebhookEvent::MessageSent, None, now).await?;
        }
        Outcome::Dropped(_) => super::timeline::append(tx, &message.lead_id, now, &TimelineNote::Dropped(note)).await?,
        Outcome::Bounced(_) => {
            sqlx::query(
                "INSERT INTO suppressions (producer_id, address, reason, created_at) VALUES ($1, $2, 'bounced', $3)
                 ON CONFLICT (producer_id, address) DO NOTHING",
            )
            .bind(&message.producer_id)
            .bind(message.recipient.to_lowercase())
            .bind(now)
            .execute(&mut **tx)
            .await?;
            super::timeline::append(tx, &message.lead_id, now, &TimelineNote::Bounced(note)).await?;
            report_message(tx, message, WebhookEvent::MessageBounced, reason.as_deref(), now).await?;
        }
        Outcome::Failed(_) => {
            super::timeline::append(tx, &message.lead_id, now, &TimelineNote::SendFailed(note)).await?
        }
        Outcome::Held(hold) => {
            let note = hold.timeline_note(&message.id, message.channel, &message.tag);
            super::timeline::append(tx, &message.lead_id, now, &note).await?
        }
        Outcome::Retry { .. } | Outcome::Deferred { .. } => {}
    }
    Ok(true)
}
