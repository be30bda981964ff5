//! What an invocation needs to know, loaded from the store: the lead's next pending event, the
//! lead (with its lists, messages and suppression flags) and its run. Read through the read
//! pool: on a SQLite file the dispatcher's reads then run beside the one writer connection
//! instead of queueing on it. A lead's reads come after its previous event's commit returned,
//! so they see it (a WAL reader sees every commit completed before its statement began).

use sqlx::Row;

use super::{Database, StoreError, stored_word, stored_word_keyed};
use crate::domain::{Channel, LeadEvent, MessageKind, MessageStatus, RunStatus, Scope, SendWindow, TimeZone};

/// A lead's pending event, oldest first.
#[derive(Clone, Debug)]
pub struct PendingEvent {
    pub seq: i64,
    pub lead_id: String,
    pub event: LeadEvent,
    pub attempts: i64,
    pub next_attempt_at: i64,
    /// Why the last attempt failed, if one did.
    pub last_error: Option<String>,
}

/// Everything about a lead an invocation needs.
#[derive(Clone, Debug)]
pub struct LeadSnapshot {
    pub id: String,
    pub producer_id: String,
    pub email: String,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub product_id: Option<String>,
    pub plan_id: Option<String>,
    pub price_cents: Option<i64>,
    pub currency: Option<String>,
    pub checkout_url: Option<String>,
    pub captured_at: i64,
    pub purchased: bool,
    pub email_suppressed: bool,
    pub phone_suppressed: bool,
    pub lists: Vec<String>,
    pub messages: Vec<MessageSnapshot>,
    /// Timers of the lead waiting to fire.
    pub pending_timers: i64,
    /// The buyer's own zone (`checkout.timezone`): their send window is in it.
    pub timezone: Option<TimeZone>,
}

/// A message already queued for the lead.
#[derive(Clone, Debug)]
pub struct MessageSnapshot {
    pub id: String,
    pub tag: String,
    pub channel: Channel,
    pub kind: MessageKind,
    pub status: MessageStatus,
    pub queued_at: i64,
    pub clicked: bool,
    pub opened: bool,
}

/// The lead's run: which plugin, config and state serve it.
#[derive(Clone, Debug)]
pub struct RunSnapshot {
    pub binding_id: String,
    pub plugin_sha256: String,
    /// The plugin's name in the binding (`None` if the binding was deleted).
    pub plugin_name: Option<String>,
    pub config_json: String,
    pub state: Option<Vec<u8>>,
    pub active: bool,
    /// The binding's scope (the producer's, if the binding was deleted).
    pub binding_scope: Scope,
    /// The binding's send window (in the binding's zone; see [`LeadSnapshot::send_window`]).
    pub send_window: Option<SendWindow>,
}

impl LeadSnapshot {
    /// The window this lead's recovery messages go out in: the binding's hours and days, in
    /// the lead's own zone when the platform sent one, else in the binding's.
    pub fn send_window(&self, run: &RunSnapshot) -> Option<SendWindow> {
        let window = run.send_window.as_ref()?;
        Some(self.timezone.map_or_else(|| window.clone(), |zone| window.in_zone(zone)))
    }
}

impl Database {
    /// The lead's oldest pending event (due or not: order is kept even during a backoff).
    pub async fn next_pending_event(&self, lead_id: &str) -> Result<Option<PendingEvent>, StoreError> {
        let row = sqlx::query(
            "SELECT seq, payload, attempts, next_attempt_at, error FROM events WHERE lead_id = $1 AND status = 'pending'
             ORDER BY seq LIMIT 1",
        )
        .bind(lead_id)
        .fetch_optional(&self.read)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let payload: String = row.try_get("payload")?;
        let event: LeadEvent =
            serde_json::from_str(&payload).map_err(|e| StoreError::Corrupt(format!("event payload: {e}")))?;
        Ok(Some(PendingEvent {
            seq: row.try_get("seq")?,
            lead_id: lead_id.to_string(),
            event,
            attempts: row.try_get("attempts")?,
            next_attempt_at: row.try_get("next_attempt_at")?,
            last_error: row.try_get("error")?,
        }))
    }

    /// The lead with its lists, messages and suppression flags.
    pub async fn lead_snapshot(&self, lead_id: &str) -> Result<LeadSnapshot, StoreError> {
        let row = sqlx::query(
            "SELECT l.*, (SELECT COUNT(*) FROM timers t WHERE t.lead_id = l.id) AS pending_timers FROM leads l
             WHERE l.id = $1",
        )
        .bind(lead_id)
        .fetch_one(&self.read)
        .await?;
        let producer_id: String = row.try_get("producer_id")?;
        let email: String = row.try_get("email")?;
        let phone: Option<String> = row.try_get("phone")?;
        let suppressed: Vec<String> = sqlx::query_scalar(
            "SELECT address FROM suppressions WHERE producer_id = $1 AND (address = $2 OR address = $3)",
        )
        .bind(&producer_id)
        .bind(email.to_lowercase())
        .bind(phone.clone().unwrap_or_default())
        .fetch_all(&self.read)
        .await?;
        let lists: Vec<String> = sqlx::query_scalar(
            "SELECT list_name FROM list_members WHERE producer_id = $1 AND email = $2 ORDER BY list_name",
        )
        .bind(&producer_id)
        .bind(email.to_lowercase())
        .fetch_all(&self.read)
        .await?;
        let message_rows = sqlx::query(
            "SELECT id, tag, channel, kind, status, queued_at, clicked_at, opened_at FROM outbox WHERE lead_id = $1
             ORDER BY queued_at, id",
        )
        .bind(lead_id)
        .fetch_all(&self.read)
        .await?;
        let mut messages = Vec::with_capacity(message_rows.len());
        for m in &message_rows {
            messages.push(MessageSnapshot {
                id: m.try_get("id")?,
                tag: m.try_get("tag")?,
                channel: stored_word(m, "outbox", "channel", Channel::parse)?,
                kind: stored_word(m, "outbox", "kind", MessageKind::parse)?,
                status: stored_word(m, "outbox", "status", MessageStatus::parse)?,
                queued_at: m.try_get("queued_at")?,
                clicked: m.try_get::<Option<i64>, _>("clicked_at")?.is_some(),
                opened: m.try_get::<Option<i64>, _>("opened_at")?.is_some(),
            });
        }
        Ok(LeadSnapshot {
            id: lead_id.to_string(),
            email_suppressed: suppressed.contains(&email.to_lowercase()),
            phone_suppressed: phone.as_ref().is_some_and(|p| suppressed.contains(p)),
            producer_id,
            email,
            name: row.try_get("name")?,
            phone,
            product_id: row.try_get("product_id")?,
            plan_id: row.try_get("plan_id")?,
            price_cents: row.try_get("price_cents")?,
            currency: row.try_get("currency")?,
            checkout_url: row.try_get("checkout_url")?,
            captured_at: row.try_get("captured_at")?,
            purchased: row.try_get::<Option<i64>, _>("purchased_at")?.is_some(),
            lists,
            messages,
            pending_timers: row.try_get("pending_timers")?,
            timezone: row
                .try_get::<Option<String>, _>("timezone")?
                .map(|name| TimeZone::parse(&name).map_err(|e| StoreError::Corrupt(format!("lead timezone: {e}"))))
                .transpose()?,
        })
    }

    /// The lead's run, if a binding serves it.
    pub async fn run_snapshot(&self, lead_id: &str) -> Result<Option<RunSnapshot>, StoreError> {
        let row = sqlx::query(
            "SELECT r.lead_id, r.binding_id, r.plugin_sha256, r.config_json, r.state, r.status, b.product_id, b.plan_id,
                    b.plugin_name, b.send_window_json
             FROM runs r LEFT JOIN bindings b ON b.id = r.binding_id WHERE r.lead_id = $1",
        )
        .bind(lead_id)
        .fetch_optional(&self.read)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let binding_id: String = row.try_get("binding_id")?;
        let (product, plan): (Option<String>, Option<String>) = (row.try_get("product_id")?, row.try_get("plan_id")?);
        let binding_scope = super::bindings::scope_from_columns(
            ("bindings", &binding_id),
            product.unwrap_or_default(),
            plan.unwrap_or_default(),
        )?;
        Ok(Some(RunSnapshot {
            binding_id,
            plugin_sha256: row.try_get("plugin_sha256")?,
            plugin_name: row.try_get("plugin_name")?,
            config_json: row.try_get("config_json")?,
            state: row.try_get("state")?,
            active: stored_word_keyed(&row, ("runs", "lead_id"), "status", RunStatus::parse)? == RunStatus::Active,
            binding_scope,
            send_window: super::bindings::window_from_column(row.try_get("send_window_json")?)?,
        }))
    }
}
