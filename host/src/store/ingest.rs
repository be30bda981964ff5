//! Platform events become event rows, and the lead they concern is born or updated, in one
//! transaction. An event id already seen for the producer changes nothing and answers
//! `Duplicate`. A lead is (producer, checkout id), born with its first event carrying an
//! email; its binding is chosen then (plan beats product beats producer-wide) and kept for
//! its whole life, so a lead is never served by two strategies.

use sqlx::Row;

use super::events::insert_event;
use super::runs::{self, BindingCache};
use super::{Database, StoreError, new_id};
use crate::domain::{EmailAddress, EventStatus, LeadEvent, PlatformEvent, PlatformEventType};

/// Whether the event was new.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IngestOutcome {
    Accepted { lead_id: Option<String> },
    Duplicate { lead_id: Option<String> },
}

/// Tries of a batch that lost a race with another transaction (see [`is_conflict`]).
const INGEST_ATTEMPTS: u32 = 3;

impl Database {
    /// Record a platform event (idempotent on its id).
    pub async fn ingest(&self, event: &PlatformEvent, now: i64) -> Result<IngestOutcome, StoreError> {
        let mut outcomes = self.ingest_batch(std::slice::from_ref(event), now).await?;
        outcomes.pop().ok_or_else(|| StoreError::Corrupt("ingest answered nothing".into()))
    }

    /// Record platform events in order, all in one transaction — one commit for the batch, not
    /// one per event — so all are stored or none. Each answers `Accepted` or `Duplicate` on its
    /// own; a repeat inside the batch is a duplicate of the first.
    pub async fn ingest_batch(&self, events: &[PlatformEvent], now: i64) -> Result<Vec<IngestOutcome>, StoreError> {
        let mut attempt = 1;
        loop {
            match self.try_ingest_batch(events, now).await {
                // The transaction rolled back as a whole: trying again answers duplicates for
                // what the other transaction stored.
                Err(e) if attempt < INGEST_ATTEMPTS && is_conflict(&e) => attempt += 1,
                result => return result,
            }
        }
    }

    /// [`Database::ingest_batch`] of events each received at its own time (a group commit of
    /// requests).
    pub(crate) async fn ingest_each_at(
        &self,
        events: &[(&PlatformEvent, i64)],
    ) -> Result<Vec<IngestOutcome>, StoreError> {
        let mut attempt = 1;
        loop {
            match self.try_ingest(events.iter().copied()).await {
                Err(e) if attempt < INGEST_ATTEMPTS && is_conflict(&e) => attempt += 1,
                result => return result,
            }
        }
    }

    async fn try_ingest_batch(&self, events: &[PlatformEvent], now: i64) -> Result<Vec<IngestOutcome>, StoreError> {
        self.try_ingest(events.iter().map(|e| (e, now))).await
    }

    async fn try_ingest(
        &self,
        events: impl ExactSizeIterator<Item = (&PlatformEvent, i64)>,
    ) -> Result<Vec<IngestOutcome>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut outcomes = Vec::with_capacity(events.len());
        let mut bindings = BindingCache::default();
        for (event, now) in events {
            outcomes.push(ingest_one(&mut tx, &mut bindings, event, now).await?);
        }
        tx.commit().await?;
        Ok(outcomes)
    }
}

/// A write that lost a race with a concurrent transaction on PostgreSQL (the same event or
/// checkout stored meanwhile, a deadlock between two batches, a serialization failure).
fn is_conflict(error: &StoreError) -> bool {
    match error {
        StoreError::Database(sqlx::Error::Database(e)) => {
            matches!(e.code().as_deref(), Some("23505" | "40P01" | "40001"))
        }
        _ => false,
    }
}

/// Record one platform event in `tx`.
async fn ingest_one(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    bindings: &mut BindingCache,
    event: &PlatformEvent,
    now: i64,
) -> Result<IngestOutcome, StoreError> {
    let c = &event.checkout;
    // Seen before? And the checkout's lead, if any: one round trip for both.
    let row = sqlx::query(
        "SELECT (SELECT 1 FROM events WHERE producer_id = $1 AND platform_id = $2) AS seen,
                (SELECT lead_id FROM events WHERE producer_id = $1 AND platform_id = $2) AS seen_lead,
                (SELECT id FROM leads WHERE producer_id = $1 AND checkout_id = $3) AS lead",
    )
    .bind(&event.producer_id)
    .bind(&event.id)
    .bind(&c.id)
    .fetch_one(&mut **tx)
    .await?;
    if row.try_get::<Option<i32>, _>("seen")?.is_some() {
        return Ok(IngestOutcome::Duplicate { lead_id: row.try_get("seen_lead")? });
    }
    let existing: Option<String> = row.try_get("lead")?;
    let mut lead_events: Vec<LeadEvent> = Vec::new();
    // Whether the lead's run takes events: a new lead's is known, an existing one's is asked.
    let mut active = false;
    let lead_id = match existing {
        Some(lead_id) => {
            sqlx::query(
                "UPDATE leads SET email = COALESCE($1, email), name = COALESCE($2, name), phone = COALESCE($3, phone),
                     product_id = COALESCE(product_id, $4), plan_id = COALESCE(plan_id, $5),
                     price_cents = COALESCE($6, price_cents), currency = COALESCE($7, currency),
                     checkout_url = COALESCE($8, checkout_url), timezone = COALESCE($10, timezone) WHERE id = $9",
            )
            .bind(c.email.as_ref().map(EmailAddress::as_str))
            .bind(&c.name)
            .bind(&c.phone)
            .bind(&c.product_id)
            .bind(&c.plan_id)
            .bind(c.price.as_ref().map(|p| p.amount_cents))
            .bind(c.price.as_ref().map(|p| p.currency.clone()))
            .bind(&c.url)
            .bind(&lead_id)
            .bind(c.timezone.map(|z| z.name()))
            .execute(&mut **tx)
            .await?;
            if event.kind == PlatformEventType::CheckoutUpdated {
                lead_events.push(LeadEvent::Updated);
            }
            active = runs::run_is_active(tx, &lead_id).await?;
            Some(lead_id)
        }
        None => match &c.email {
            Some(email) => {
                let lead_id = new_id();
                sqlx::query(
                    "INSERT INTO leads (id, producer_id, checkout_id, email, name, phone, product_id, plan_id,
                         price_cents, currency, checkout_url, status, captured_at, timezone)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'open', $12, $13)",
                )
                .bind(&lead_id)
                .bind(&event.producer_id)
                .bind(&c.id)
                .bind(email.as_str())
                .bind(&c.name)
                .bind(&c.phone)
                .bind(&c.product_id)
                .bind(&c.plan_id)
                .bind(c.price.as_ref().map(|p| p.amount_cents))
                .bind(c.price.as_ref().map(|p| p.currency.clone()))
                .bind(&c.url)
                .bind(now)
                .bind(c.timezone.map(|z| z.name()))
                .execute(&mut **tx)
                .await?;
                active = runs::start_run(tx, bindings, &event.producer_id, &lead_id, c, now).await?;
                lead_events.push(LeadEvent::Captured);
                Some(lead_id)
            }
            None => None,
        },
    };
    if let Some(lead_id) = &lead_id {
        match event.kind {
            PlatformEventType::OrderPaid => {
                mark_purchased(tx, lead_id, now).await?;
                lead_events.push(LeadEvent::Purchased { price: c.price.clone() });
            }
            PlatformEventType::OrderRefunded => {
                sqlx::query("UPDATE leads SET status = 'refunded' WHERE id = $1")
                    .bind(lead_id)
                    .execute(&mut **tx)
                    .await?;
                lead_events.push(LeadEvent::Refunded);
            }
            PlatformEventType::CheckoutUpdated => {}
        }
    }
    // The platform's event id is recorded once (for idempotency) on the first row, in its own
    // column; a platform event can make two lead events (captured + purchased) in order, and
    // every row's `id` is the host's, so no platform id can ever take one of them.
    if lead_events.is_empty() {
        let id = format!("ignored:{}", new_id());
        insert_event(tx, &id, Some(&event.id), &event.producer_id, lead_id.as_deref(), None, EventStatus::Skipped, now)
            .await?;
    }
    for (i, lead_event) in lead_events.iter().enumerate() {
        let id = format!("{}:{}", lead_event.name(), new_id());
        let platform_id = (i == 0).then_some(event.id.as_str());
        let status = EventStatus::arriving(active);
        let lead = lead_id.as_deref();
        insert_event(tx, &id, platform_id, &event.producer_id, lead, Some(lead_event), status, now).await?;
    }
    Ok(IngestOutcome::Accepted { lead_id })
}

/// Mark a lead purchased, and recovered when a recovery message was delivered before. The
/// first purchase of a lead queues `lead.purchased` (and `lead.recovered` when recovered) for
/// the producer's webhooks in the same transaction; a later `order.paid` of the same checkout
/// (another event id) changes nothing and reports nothing.
pub(crate) async fn mark_purchased(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    lead_id: &str,
    now: i64,
) -> Result<(), StoreError> {
    // Attribution: the last clicked message, else the last delivered one.
    let by: Option<String> = sqlx::query_scalar(
        "SELECT id FROM outbox WHERE lead_id = $1 AND status = 'sent' AND kind = 'recovery'
         ORDER BY (CASE WHEN clicked_at IS NULL THEN 0 ELSE 1 END) DESC, COALESCE(clicked_at, sent_at) DESC LIMIT 1",
    )
    .bind(lead_id)
    .fetch_optional(&mut **tx)
    .await?;
    let status = if by.is_some() { "recovered" } else { "purchased" };
    // The first purchase only (`purchased_at IS NULL`: on PostgreSQL a concurrent one waits
    // for this row and then finds it set), so the webhooks hear of it once.
    let first = sqlx::query(
        "UPDATE leads SET purchased_at = $1, status = $2, recovered_by = $3 WHERE id = $4 AND purchased_at IS NULL",
    )
    .bind(now)
    .bind(status)
    .bind(&by)
    .bind(lead_id)
    .execute(&mut **tx)
    .await?
    .rows_affected()
        == 1;
    if !first {
        sqlx::query("UPDATE leads SET status = $1, recovered_by = COALESCE(recovered_by, $2) WHERE id = $3")
            .bind(status)
            .bind(by)
            .bind(lead_id)
            .execute(&mut **tx)
            .await?;
        return Ok(());
    }
    report_purchase(tx, lead_id, now).await
}

/// Queue `lead.purchased`, and `lead.recovered` for a recovered lead, for the producer's
/// webhooks (the definition of recovered is the stats': `recovered_by` is set).
async fn report_purchase(tx: &mut sqlx::Transaction<'_, sqlx::Any>, lead_id: &str, now: i64) -> Result<(), StoreError> {
    use crate::webhooks::WebhookEvent;
    let r = sqlx::query(
        "SELECT l.producer_id, l.checkout_id, l.email, l.product_id, l.plan_id, l.price_cents, l.currency,
                l.recovered_by, o.tag, o.channel
         FROM leads l LEFT JOIN outbox o ON o.id = l.recovered_by WHERE l.id = $1",
    )
    .bind(lead_id)
    .fetch_one(&mut **tx)
    .await?;
    let producer_id: String = r.try_get("producer_id")?;
    let price_cents: Option<i64> = r.try_get("price_cents")?;
    let currency: Option<String> = r.try_get("currency")?;
    let recovered_by: Option<String> = r.try_get("recovered_by")?;
    let mut data = serde_json::json!({
        "lead_id": lead_id,
        "checkout_id": r.try_get::<String, _>("checkout_id")?,
        "email": r.try_get::<String, _>("email")?,
        "product_id": r.try_get::<Option<String>, _>("product_id")?,
        "plan_id": r.try_get::<Option<String>, _>("plan_id")?,
        "value": price_cents.zip(currency).map(|(c, cur)| serde_json::json!({"amount_cents": c, "currency": cur})),
        "purchased_at": chrono::DateTime::from_timestamp_millis(now)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        "recovered": recovered_by.is_some(),
    });
    if let Some(message_id) = &recovered_by {
        data["recovered_by"] = serde_json::json!({
            "message_id": message_id,
            "tag": r.try_get::<Option<String>, _>("tag")?,
            "channel": r.try_get::<Option<String>, _>("channel")?,
        });
    }
    let lead = Some(lead_id);
    super::webhooks::enqueue(tx, &producer_id, WebhookEvent::LeadPurchased, lead, data.clone(), now).await?;
    if recovered_by.is_some() {
        super::webhooks::enqueue(tx, &producer_id, WebhookEvent::LeadRecovered, lead, data, now).await?;
    }
    Ok(())
}
