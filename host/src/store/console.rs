//! Reads made only by the console's pages, each scoped by the producer id (the same tenancy as
//! the API's reads): leads filtered and paged by keyset, a lead's events and messages, the
//! HTML of one email, how many leads each binding serves, per-step counts of a flow, recovered
//! revenue per day and per message tag, and the stored size of each uploaded plugin.

use std::collections::HashMap;

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Database, StoreError, stored_word};
use crate::domain::{Channel, EventStatus, LeadEvent, LeadStatus, MessageKind, MessageStatus};

/// Which leads the report shows. Every part is optional; times are Unix ms, `to` exclusive.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeadFilter {
    pub status: Option<String>,
    pub product_id: Option<String>,
    pub captured_from: Option<i64>,
    pub captured_to: Option<i64>,
    /// A part of the email, matched case-insensitively.
    pub email_contains: Option<String>,
}

/// One row of the leads report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeadRow {
    pub id: String,
    pub email: String,
    pub name: Option<String>,
    pub product_id: Option<String>,
    pub plan_id: Option<String>,
    pub price_cents: Option<i64>,
    pub currency: Option<String>,
    pub status: LeadStatus,
    pub captured_at: i64,
    /// The newest message: (tag, channel, status, queued at).
    pub last_message: Option<(String, Channel, MessageStatus, i64)>,
}

/// A lead with what the timeline page shows about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeadDetail {
    pub row: LeadRow,
    pub phone: Option<String>,
    pub checkout_url: Option<String>,
    pub purchased_at: Option<i64>,
    /// The message the purchase is credited to.
    pub recovered_by: Option<String>,
    /// The plugin serving the lead, if a binding took it.
    pub plugin: Option<String>,
}

/// An event the lead received, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventRow {
    pub seq: i64,
    /// What the plugin was (or would have been) told; `None` for a platform event that made
    /// no lead event (an `ignored` row).
    pub event: Option<LeadEvent>,
    pub status: EventStatus,
    pub error: Option<String>,
    pub created_at: i64,
}

/// A message of a lead, without its body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageRow {
    pub id: String,
    pub channel: Channel,
    pub kind: MessageKind,
    pub tag: String,
    pub status: MessageStatus,
    pub reason: Option<String>,
    pub subject: Option<String>,
    /// The text body (the whole SMS for SMS).
    pub text: Option<String>,
    pub coupon: Option<String>,
    pub queued_at: i64,
    pub sent_at: Option<i64>,
    pub clicked_at: Option<i64>,
    pub opened_at: Option<i64>,
}

/// Live numbers of one step of a flow binding.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StepCounts {
    /// Leads with a pending timer of this step (waiting there now).
    pub waiting: i64,
    pub sent: i64,
    pub clicked: i64,
    /// Leads that bought after this step's message reached them.
    pub recovered: i64,
}

/// An uploaded plugin with its stored size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginRow {
    pub name: String,
    pub version: String,
    pub sha256: String,
    pub size: i64,
    pub info_json: String,
    pub created_at: i64,
    /// `compiling`, `ready` or `failed` (see `store::plugins`), and why it failed.
    pub status: String,
    pub failure: Option<String>,
}

/// Recovered revenue of one day (days since 1970-01-01, UTC) in one currency.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DayRevenue {
    pub day: i64,
    pub currency: String,
    pub amount_cents: i64,
}

/// The biggest page the report asks for.
pub const MAX_PAGE: i64 = 1000;

/// `%` and `_` are wildcards of LIKE: a search for `a_b` means those characters.
fn like_pattern(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('%');
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

fn lead_row(r: &AnyRow) -> Result<LeadRow, StoreError> {
    let tag: Option<String> = r.try_get("last_tag")?;
    let last_message = match tag {
        Some(tag) => Some((
            tag,
            stored_word(r, "leads", "last_channel", Channel::parse)?,
            stored_word(r, "leads", "last_status", MessageStatus::parse)?,
            r.try_get("last_at")?,
        )),
        None => None,
    };
    Ok(LeadRow {
        id: r.try_get("id")?,
        email: r.try_get("email")?,
        name: r.try_get("name")?,
        product_id: r.try_get("product_id")?,
        plan_id: r.try_get("plan_id")?,
        price_cents: r.try_get("price_cents")?,
        currency: r.try_get("currency")?,
        status: stored_word(r, "leads", "status", LeadStatus::parse)?,
        captured_at: r.try_get("captured_at")?,
        last_message,
    })
}

/// The report's columns; the newest message by correlated subqueries (a page is at most
/// [`MAX_PAGE`] rows, each an index lookup on `outbox_lead`).
const LEAD_COLUMNS: &str = "l.id, l.email, l.name, l.product_id, l.plan_id, l.price_cents, l.currency, l.status,
    l.captured_at,
    (SELECT o.tag FROM outbox o WHERE o.lead_id = l.id ORDER BY o.queued_at DESC, o.id DESC LIMIT 1) AS last_tag,
    (SELECT o.channel FROM outbox o WHERE o.lead_id = l.id ORDER BY o.queued_at DESC, o.id DESC LIMIT 1) AS last_channel,
    (SELECT o.status FROM outbox o WHERE o.lead_id = l.id ORDER BY o.queued_at DESC, o.id DESC LIMIT 1) AS last_status,
    (SELECT o.queued_at FROM outbox o WHERE o.lead_id = l.id ORDER BY o.queued_at DESC, o.id DESC LIMIT 1) AS last_at";

impl Database {
    /// A page of a producer's leads matching `filter`, newest first, after the
    /// `(captured_at, id)` cursor.
    pub async fn console_leads(
        &self,
        producer_id: &str,
        filter: &LeadFilter,
        after: Option<(i64, String)>,
        limit: i64,
    ) -> Result<Vec<LeadRow>, StoreError> {
        let mut clauses = vec!["l.producer_id = $1".to_string()];
        let mut binds: Vec<Bind> = vec![Bind::Text(producer_id.to_string())];
        let next = |bind: Bind, binds: &mut Vec<Bind>| {
            binds.push(bind);
            format!("${}", binds.len())
        };
        if let Some(status) = &filter.status {
            let p = next(Bind::Text(status.clone()), &mut binds);
            clauses.push(format!("l.status = {p}"));
        }
        if let Some(product) = &filter.product_id {
            let p = next(Bind::Text(product.clone()), &mut binds);
            clauses.push(format!("l.product_id = {p}"));
        }
        if let Some(from) = filter.captured_from {
            let p = next(Bind::Int(from), &mut binds);
            clauses.push(format!("l.captured_at >= {p}"));
        }
        if let Some(to) = filter.captured_to {
            let p = next(Bind::Int(to), &mut binds);
            clauses.push(format!("l.captured_at < {p}"));
        }
        if let Some(text) = &filter.email_contains {
            let p = next(Bind::Text(like_pattern(text)), &mut binds);
            clauses.push(format!("LOWER(l.email) LIKE {p} ESCAPE '\\'"));
        }
        if let Some((at, id)) = after {
            let a = next(Bind::Int(at), &mut binds);
            let i = next(Bind::Text(id), &mut binds);
            clauses.push(format!("(l.captured_at < {a} OR (l.captured_at = {a} AND l.id < {i}))"));
        }
        let l = next(Bind::Int(limit.clamp(1, MAX_PAGE)), &mut binds);
        let sql = format!(
            "SELECT {LEAD_COLUMNS} FROM leads l WHERE {} ORDER BY l.captured_at DESC, l.id DESC LIMIT {l}",
            clauses.join(" AND ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for bind in binds {
            query = match bind {
                Bind::Text(t) => query.bind(t),
                Bind::Int(i) => query.bind(i),
            };
        }
        query.fetch_all(&self.read).await?.iter().map(lead_row).collect()
    }

    /// The product ids a producer's leads name (for the report's filter), at most 200.
    pub async fn lead_products(&self, producer_id: &str) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT product_id FROM leads WHERE producer_id = $1 AND product_id IS NOT NULL
             ORDER BY product_id LIMIT 200",
        )
        .bind(producer_id)
        .fetch_all(&self.read)
        .await?)
    }

    /// One lead of a producer; none for another producer's lead.
    pub async fn console_lead(&self, producer_id: &str, lead_id: &str) -> Result<Option<LeadDetail>, StoreError> {
        let sql = format!(
            "SELECT {LEAD_COLUMNS}, l.phone, l.checkout_url, l.purchased_at, l.recovered_by,
                    (SELECT b.plugin_name FROM runs r JOIN bindings b ON b.id = r.binding_id WHERE r.lead_id = l.id)
                      AS plugin
             FROM leads l WHERE l.id = $1 AND l.producer_id = $2"
        );
        let row =
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(lead_id).bind(producer_id).fetch_optional(&self.read).await?;
        let Some(r) = row else { return Ok(None) };
        Ok(Some(LeadDetail {
            row: lead_row(&r)?,
            phone: r.try_get("phone")?,
            checkout_url: r.try_get("checkout_url")?,
            purchased_at: r.try_get("purchased_at")?,
            recovered_by: r.try_get("recovered_by")?,
            plugin: r.try_get("plugin")?,
        }))
    }

    /// The events a producer's lead received, oldest first.
    pub async fn lead_events(&self, producer_id: &str, lead_id: &str) -> Result<Vec<EventRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, kind, payload, status, error, created_at FROM events
             WHERE lead_id = $1 AND producer_id = $2 ORDER BY seq",
        )
        .bind(lead_id)
        .bind(producer_id)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                let seq: i64 = r.try_get("seq")?;
                let payload: String = r.try_get("payload")?;
                let event =
                    serde_json::from_str::<Option<LeadEvent>>(&payload).map_err(|_| StoreError::UnknownValue {
                        table: "events",
                        row: seq.to_string(),
                        column: "payload",
                        value: payload,
                    })?;
                Ok(EventRow {
                    seq,
                    event,
                    status: stored_word(r, "events", "status", EventStatus::parse)?,
                    error: r.try_get("error")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// The messages of a producer's lead, oldest first, without their HTML.
    pub async fn lead_messages(&self, producer_id: &str, lead_id: &str) -> Result<Vec<MessageRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, channel, kind, tag, status, reason, subject, text, coupon, queued_at, sent_at, clicked_at,
                    opened_at
             FROM outbox WHERE lead_id = $1 AND producer_id = $2 ORDER BY queued_at, id",
        )
        .bind(lead_id)
        .bind(producer_id)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(MessageRow {
                    id: r.try_get("id")?,
                    channel: stored_word(r, "outbox", "channel", Channel::parse)?,
                    kind: stored_word(r, "outbox", "kind", MessageKind::parse)?,
                    tag: r.try_get("tag")?,
                    status: stored_word(r, "outbox", "status", MessageStatus::parse)?,
                    reason: r.try_get("reason")?,
                    subject: r.try_get("subject")?,
                    text: r.try_get("text")?,
                    coupon: r.try_get("coupon")?,
                    queued_at: r.try_get("queued_at")?,
                    sent_at: r.try_get("sent_at")?,
                    clicked_at: r.try_get("clicked_at")?,
                    opened_at: r.try_get("opened_at")?,
                })
            })
            .collect()
    }

    /// The rendered HTML of one email of a producer's lead.
    pub async fn message_html(
        &self,
        producer_id: &str,
        lead_id: &str,
        message_id: &str,
    ) -> Result<Option<String>, StoreError> {
        let html: Option<Option<String>> =
            sqlx::query_scalar("SELECT html FROM outbox WHERE id = $1 AND lead_id = $2 AND producer_id = $3")
                .bind(message_id)
                .bind(lead_id)
                .bind(producer_id)
                .fetch_optional(&self.read)
                .await?;
        Ok(html.flatten())
    }

    /// How many leads each of a producer's bindings serves (by binding id).
    pub async fn leads_per_binding(&self, producer_id: &str) -> Result<HashMap<String, i64>, StoreError> {
        let rows = sqlx::query(
            "SELECT r.binding_id, COUNT(*) AS n FROM runs r JOIN bindings b ON b.id = r.binding_id
             WHERE b.producer_id = $1 GROUP BY r.binding_id",
        )
        .bind(producer_id)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(|r| Ok((r.try_get("binding_id")?, r.try_get("n")?))).collect()
    }

    /// Per step (by the tag the flow gives its timers and messages: the step id), the live
    /// counts of a producer's binding.
    pub async fn flow_step_counts(
        &self,
        producer_id: &str,
        binding_id: &str,
    ) -> Result<HashMap<String, StepCounts>, StoreError> {
        let mut counts: HashMap<String, StepCounts> = HashMap::new();
        let waiting = sqlx::query(
            "SELECT t.tag, COUNT(DISTINCT t.lead_id) AS n FROM timers t JOIN runs r ON r.lead_id = t.lead_id
             WHERE r.binding_id = $1 AND t.producer_id = $2 GROUP BY t.tag",
        )
        .bind(binding_id)
        .bind(producer_id)
        .fetch_all(&self.read)
        .await?;
        for r in &waiting {
            counts.entry(r.try_get("tag")?).or_default().waiting = r.try_get("n")?;
        }
        let messages = sqlx::query(
            "SELECT o.tag,
                    SUM(CASE WHEN o.status = 'sent' THEN 1 ELSE 0 END) AS sent,
                    SUM(CASE WHEN o.clicked_at IS NOT NULL THEN 1 ELSE 0 END) AS clicked,
                    COUNT(DISTINCT CASE WHEN l.recovered_by IS NOT NULL AND o.status = 'sent'
                                         AND l.purchased_at >= o.sent_at THEN l.id END) AS recovered
             FROM outbox o JOIN runs r ON r.lead_id = o.lead_id JOIN leads l ON l.id = o.lead_id
             WHERE r.binding_id = $1 AND o.producer_id = $2 GROUP BY o.tag",
        )
        .bind(binding_id)
        .bind(producer_id)
        .fetch_all(&self.read)
        .await?;
        for r in &messages {
            let step = counts.entry(r.try_get("tag")?).or_default();
            step.sent = r.try_get("sent")?;
            step.clicked = r.try_get("clicked")?;
            step.recovered = r.try_get("recovered")?;
        }
        Ok(counts)
    }

    /// A producer's uploaded plugins with their sizes, by name then upload time.
    pub async fn plugin_rows(&self, producer_id: &str) -> Result<Vec<PluginRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, version, sha256, CAST(LENGTH(bytes) AS BIGINT) AS size, info_json, created_at, status, failure
             FROM plugins
             WHERE producer_id = $1 ORDER BY name, created_at",
        )
        .bind(producer_id)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(PluginRow {
                    name: r.try_get("name")?,
                    version: r.try_get("version")?,
                    sha256: r.try_get("sha256")?,
                    size: r.try_get("size")?,
                    info_json: r.try_get("info_json")?,
                    created_at: r.try_get("created_at")?,
                    status: r.try_get("status")?,
                    failure: r.try_get("failure")?,
                })
            })
            .collect()
    }

    /// Recovered revenue per UTC day (purchase day) and currency, days `from_day..=to_day`.
    pub async fn daily_revenue(
        &self,
        producer_id: &str,
        from_day: i64,
        to_day: i64,
    ) -> Result<Vec<DayRevenue>, StoreError> {
        const DAY_MS: i64 = 86_400_000;
        let rows = sqlx::query(
            "SELECT purchased_at / 86400000 AS day, currency, SUM(CAST(price_cents AS DOUBLE PRECISION)) AS amount
             FROM leads
             WHERE producer_id = $1 AND recovered_by IS NOT NULL AND price_cents IS NOT NULL AND currency IS NOT NULL
               AND purchased_at >= $2 AND purchased_at < $3
             GROUP BY purchased_at / 86400000, currency ORDER BY day, currency",
        )
        .bind(producer_id)
        .bind(from_day.saturating_mul(DAY_MS))
        .bind(to_day.saturating_add(1).saturating_mul(DAY_MS))
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DayRevenue {
                    day: r.try_get("day")?,
                    currency: r.try_get("currency")?,
                    amount_cents: super::stats::cents(r.try_get("amount")?),
                })
            })
            .collect()
    }

    /// Recovered revenue credited to each message tag, per currency: (tag, currency, cents).
    pub async fn revenue_by_tag(&self, producer_id: &str) -> Result<Vec<(String, String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT o.tag, l.currency, SUM(CAST(l.price_cents AS DOUBLE PRECISION)) AS amount
             FROM leads l JOIN outbox o ON o.id = l.recovered_by
             WHERE l.producer_id = $1 AND l.price_cents IS NOT NULL AND l.currency IS NOT NULL
             GROUP BY o.tag, l.currency ORDER BY o.tag, l.currency",
        )
        .bind(producer_id)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("tag")?, r.try_get("currency")?, super::stats::cents(r.try_get("amount")?))))
            .collect()
    }
}

/// A value bound to a query built from the filter.
enum Bind {
    Text(String),
    Int(i64),
}

#[cfg(test)]
mod tests {
    use super::like_pattern;

    #[test]
    fn a_search_matches_its_characters_not_wildcards() {
        assert_eq!(like_pattern("Ana_1%"), "%ana\\_1\\%%");
    }
}
