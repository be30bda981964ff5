//! Signals from outside about messages: a click on a tracked link, an open, an unsubscribe.
//! Each is recorded on the message and enters the lead's run as an event.

use sqlx::Row;

use super::events::insert_event;
use super::runs::run_is_active;
use super::{Database, StoreError, new_id};
use crate::domain::{EventStatus, LeadEvent};

/// What a tracked link leads to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackedMessage {
    pub message_id: String,
    pub lead_id: String,
    pub checkout_url: Option<String>,
}

impl Database {
    /// The message behind a link or unsubscribe token.
    pub async fn message_by_token(&self, token: &str) -> Result<Option<TrackedMessage>, StoreError> {
        let row = sqlx::query(
            "SELECT o.id, o.lead_id, l.checkout_url FROM outbox o JOIN leads l ON l.id = o.lead_id
             WHERE o.link_token = $1 OR o.unsubscribe_token = $1",
        )
        .bind(token)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(TrackedMessage {
                message_id: r.try_get("id")?,
                lead_id: r.try_get("lead_id")?,
                checkout_url: r.try_get("checkout_url")?,
            })
        })
        .transpose()
    }

    /// Record the first click on a message and queue a `clicked` event; later clicks (a person
    /// again, a link scanner, a bot hammering the link) change nothing and run no plugin.
    pub async fn record_click(&self, message_id: &str, now: i64) -> Result<(), StoreError> {
        self.record_signal(message_id, "clicked_at", LeadEvent::Clicked { message_id: message_id.into() }, now).await
    }

    /// Record the first open of a message and queue an `opened` event; later opens change nothing.
    pub async fn record_open(&self, message_id: &str, now: i64) -> Result<(), StoreError> {
        self.record_signal(message_id, "opened_at", LeadEvent::Opened { message_id: message_id.into() }, now).await
    }

    async fn record_signal(
        &self,
        message_id: &str,
        column: &str,
        event: LeadEvent,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        // Only the first signal of its kind per message: the plugin hears of it once.
        let sql = format!(
            "UPDATE outbox SET {column} = $1 WHERE id = $2 AND {column} IS NULL RETURNING lead_id, producer_id"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now).bind(message_id).fetch_optional(&mut *tx).await?;
        if let Some(row) = row {
            let lead_id: String = row.try_get("lead_id")?;
            let producer_id: String = row.try_get("producer_id")?;
            let status = EventStatus::arriving(run_is_active(&mut tx, &lead_id).await?);
            insert_event(
                &mut tx,
                &format!("{}:{}", event.name(), new_id()),
                None,
                &producer_id,
                Some(&lead_id),
                Some(&event),
                status,
                now,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Unsubscribe the lead's email (suppressed for the whole producer) and tell its run.
    pub async fn unsubscribe_lead(&self, lead_id: &str, now: i64) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query("SELECT producer_id, email FROM leads WHERE id = $1")
            .bind(lead_id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else { return Ok(()) };
        let producer_id: String = row.try_get("producer_id")?;
        let email: String = row.try_get("email")?;
        let inserted = sqlx::query(
            "INSERT INTO suppressions (producer_id, address, reason, created_at) VALUES ($1, $2, 'unsubscribed', $3)
             ON CONFLICT (producer_id, address) DO NOTHING",
        )
        .bind(&producer_id)
        .bind(email.to_lowercase())
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted > 0 {
            sqlx::query("UPDATE leads SET status = 'unsubscribed' WHERE producer_id = $1 AND email = $2 AND purchased_at IS NULL")
                .bind(&producer_id)
                .bind(&email)
                .execute(&mut *tx)
                .await?;
            let status = EventStatus::arriving(run_is_active(&mut tx, lead_id).await?);
            insert_event(
                &mut tx,
                &format!("unsubscribed:{}", new_id()),
                None,
                &producer_id,
                Some(lead_id),
                Some(&LeadEvent::Unsubscribed),
                status,
                now,
            )
            .await?;
            let note = crate::domain::TimelineNote::Unsubscribed { email: email.to_string() };
            super::timeline::append(&mut tx, lead_id, now, &note).await?;
            let data = serde_json::json!({"lead_id": lead_id, "email": email});
            let event = crate::webhooks::WebhookEvent::ContactUnsubscribed;
            super::webhooks::enqueue(&mut tx, &producer_id, event, Some(lead_id), data, now).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
