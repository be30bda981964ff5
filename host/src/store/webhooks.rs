//! Outgoing webhooks as stored (migration 0008): the endpoints a producer registered, the
//! delivery outbox and the log of attempts.
//!
//! Deliveries are written by [`enqueue`] inside the transaction of the change they report
//! (an order paid, a message sent or bounced, an unsubscribe, a coupon given), so a change that
//! commits is reported and one that rolls back is not, whatever crashes in between. One row per
//! endpoint subscribed to the event type; its body is fixed at that moment and POSTed as is on
//! every attempt. Workers claim due rows under a named lease, at most one row per endpoint per
//! claim (`FOR UPDATE SKIP LOCKED` on PostgreSQL), and only the claim's owner records the
//! outcome: a worker whose lease ran out and whose row another took over writes nothing.

use sqlx::Row;

use super::{Backend, Database, StoreError, new_id, new_token};
use crate::webhooks::WebhookEvent;

/// A registered endpoint, as listed (never with its secret).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Webhook {
    pub id: String,
    pub url: String,
    pub events: Vec<WebhookEvent>,
    pub created_at: i64,
}

/// An endpoint just registered, with the secret to show once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewWebhook {
    pub webhook: Webhook,
    pub secret: String,
}

/// How registering an endpoint ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Registered {
    Created(NewWebhook),
    /// The producer has `max` endpoints already.
    Full {
        max: usize,
    },
}

pub use crate::domain::DeliveryStatus;

/// A delivery handed to a worker.
#[derive(Clone, Debug)]
pub struct ClaimedDelivery {
    pub id: String,
    pub webhook_id: String,
    pub producer_id: String,
    pub event: WebhookEvent,
    pub url: String,
    pub secret: String,
    /// The exact body to POST.
    pub payload: String,
    /// Attempts made before this one.
    pub attempts: i64,
    pub created_at: i64,
    /// The name of the claim it was handed out under.
    pub claim: String,
}

/// One try at delivering.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    pub at: i64,
    /// The receiver's HTTP status, if it answered.
    pub status_code: Option<u16>,
    /// Why there was no (good) answer.
    pub error: Option<String>,
    pub duration_ms: i64,
}

/// What happens to a delivery after an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    Delivered,
    Retry { at: i64 },
    Failed,
}

/// A delivery as the producer reads it, with its attempts (newest first).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryRow {
    pub id: String,
    pub event: WebhookEvent,
    pub status: DeliveryStatus,
    pub attempts: i64,
    pub created_at: i64,
    /// When the next attempt is due (pending only).
    pub next_attempt_at: Option<i64>,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub log: Vec<Attempt>,
}

/// The most attempts listed per delivery (a day of retries makes about 30).
pub const MAX_ATTEMPTS_LISTED: usize = 50;

fn events_column(events: &[WebhookEvent]) -> String {
    let mut names: Vec<&str> = events.iter().map(|e| e.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    names.join(",")
}

/// An event type as stored (its dotted name); `None` for one this build does not know.
fn event_named(name: &str) -> Option<WebhookEvent> {
    name.parse().ok()
}

/// The `events` column of a `webhooks` row: dotted names, comma-separated.
fn parse_events(id: &str, column: &str) -> Result<Vec<WebhookEvent>, StoreError> {
    column
        .split(',')
        .map(|name| {
            event_named(name).ok_or_else(|| StoreError::UnknownValue {
                table: "webhooks",
                row: id.to_string(),
                column: "events",
                value: name.to_string(),
            })
        })
        .collect()
}

fn webhook_from(r: &sqlx::any::AnyRow) -> Result<Webhook, StoreError> {
    let id: String = r.try_get("id")?;
    Ok(Webhook {
        events: parse_events(&id, &r.try_get::<String, _>("events")?)?,
        id,
        url: r.try_get("url")?,
        created_at: r.try_get("created_at")?,
    })
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// Queue `event` for every endpoint of `producer_id` subscribed to it, inside `tx` (the
/// transaction of the change it reports); returns how many deliveries were queued. `data` is
/// the event's object (`{"lead_id": …}`); each delivery's body is
/// `{"id", "type", "created_at", "producer_id", "data"}`, `id` being the delivery's own id.
/// `lead_id` ties the delivery to a lead, so erasing the person erases it too.
pub async fn enqueue(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    producer_id: &str,
    event: WebhookEvent,
    lead_id: Option<&str>,
    data: serde_json::Value,
    now: i64,
) -> Result<usize, StoreError> {
    let rows = sqlx::query("SELECT id, events FROM webhooks WHERE producer_id = $1")
        .bind(producer_id)
        .fetch_all(&mut **tx)
        .await?;
    let mut queued = 0;
    for r in rows {
        let events: String = r.try_get("events")?;
        if !events.split(',').any(|name| name == event.as_str()) {
            continue;
        }
        let webhook_id: String = r.try_get("id")?;
        let id = format!("whd_{}", new_id());
        let body = serde_json::json!({
            "id": id, "type": event.as_str(), "created_at": rfc3339(now), "producer_id": producer_id, "data": data,
        })
        .to_string();
        sqlx::query(
            "INSERT INTO webhook_deliveries (id, webhook_id, producer_id, lead_id, event, payload, status, attempts,
             created_at, next_attempt_at) VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7, $7)",
        )
        .bind(&id)
        .bind(&webhook_id)
        .bind(producer_id)
        .bind(lead_id)
        .bind(event.as_str())
        .bind(&body)
        .bind(now)
        .execute(&mut **tx)
        .await?;
        queued += 1;
    }
    Ok(queued)
}

impl Database {
    /// Register an endpoint for `producer_id` unless it has `max` already. `url` must have been
    /// checked ([`crate::webhooks::target`]) and `events` be non-empty.
    pub async fn create_webhook(
        &self,
        producer_id: &str,
        url: &str,
        events: &[WebhookEvent],
        max: usize,
        now: i64,
    ) -> Result<Registered, StoreError> {
        let mut tx = self.pool.begin().await?;
        if self.backend == Backend::Postgres {
            // Two registrations at once must not both see room under the cap: they queue on
            // the producer's row. (SQLite has one writer.)
            sqlx::query("SELECT id FROM producers WHERE id = $1 FOR UPDATE")
                .bind(producer_id)
                .fetch_optional(&mut *tx)
                .await?;
        }
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM webhooks WHERE producer_id = $1")
            .bind(producer_id)
            .fetch_one(&mut *tx)
            .await?;
        if usize::try_from(count).unwrap_or(usize::MAX) >= max {
            tx.rollback().await?;
            return Ok(Registered::Full { max });
        }
        let id = format!("wh_{}", new_id());
        let secret = format!("whsec_{}{}", new_token(), new_token());
        let column = events_column(events);
        sqlx::query(
            "INSERT INTO webhooks (id, producer_id, url, events, secret, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&id)
        .bind(producer_id)
        .bind(url)
        .bind(&column)
        .bind(&secret)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        let events = parse_events(&id, &column)?;
        Ok(Registered::Created(NewWebhook {
            webhook: Webhook { id, url: url.to_string(), events, created_at: now },
            secret,
        }))
    }

    /// The producer's endpoints, oldest first.
    pub async fn webhooks(&self, producer_id: &str) -> Result<Vec<Webhook>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, url, events, created_at FROM webhooks WHERE producer_id = $1 ORDER BY created_at, id",
        )
        .bind(producer_id)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(webhook_from).collect()
    }

    /// One of the producer's endpoints (`None` for another producer's).
    pub async fn webhook(&self, producer_id: &str, id: &str) -> Result<Option<Webhook>, StoreError> {
        let row = sqlx::query("SELECT id, url, events, created_at FROM webhooks WHERE producer_id = $1 AND id = $2")
            .bind(producer_id)
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(webhook_from).transpose()
    }

    /// Delete one of the producer's endpoints with its deliveries and their attempts; `false`
    /// when it has none of that id.
    pub async fn delete_webhook(&self, producer_id: &str, id: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let deleted = sqlx::query("DELETE FROM webhooks WHERE producer_id = $1 AND id = $2")
            .bind(producer_id)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if deleted == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(
            "DELETE FROM webhook_attempts WHERE delivery_id IN (SELECT id FROM webhook_deliveries WHERE webhook_id = $1)",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM webhook_deliveries WHERE webhook_id = $1").bind(id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Claim up to `limit` deliveries due at `now` for `lease_ms`: at most one per endpoint,
    /// and none for the endpoints in `busy` (this worker is calling them already), so one
    /// slow endpoint holds at most one of the worker's slots.
    pub async fn claim_webhook_deliveries(
        &self,
        now: i64,
        lease_ms: i64,
        limit: i64,
        busy: &[String],
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        let claim = new_id();
        // $1 claim, $2 lease end, $3 now, $4 limit, $5.. the busy endpoints.
        let not_busy = if busy.is_empty() {
            String::new()
        } else {
            let list: Vec<String> = (0..busy.len()).map(|i| format!("${}", i + 5)).collect();
            format!("AND webhook_id NOT IN ({})", list.join(", "))
        };
        // The first due row of each endpoint (a window, which `FOR UPDATE` may not sit beside:
        // on PostgreSQL the rows are locked one level up, skipping those another worker holds).
        let firsts = format!(
            "SELECT id FROM (SELECT id, next_attempt_at,
                    ROW_NUMBER() OVER (PARTITION BY webhook_id ORDER BY next_attempt_at, id) AS n
                  FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= $3 {not_busy}) AS due
             WHERE n = 1 ORDER BY next_attempt_at, id LIMIT $4"
        );
        let chosen = match self.backend {
            Backend::Postgres => format!(
                "SELECT id FROM webhook_deliveries WHERE id IN ({firsts}) AND status = 'pending' AND next_attempt_at <= $3
                 FOR UPDATE SKIP LOCKED"
            ),
            Backend::Sqlite => firsts,
        };
        let sql = format!(
            "UPDATE webhook_deliveries SET claim = $1, claim_until = $2, next_attempt_at = $2
             WHERE id IN ({chosen}) AND status = 'pending' AND next_attempt_at <= $3
             RETURNING id"
        );
        let mut query = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql))
            .bind(&claim)
            .bind(now.saturating_add(lease_ms))
            .bind(now)
            .bind(limit);
        for webhook in busy {
            query = query.bind(webhook);
        }
        let ids = query.fetch_all(&self.pool).await?;
        let mut claimed = Vec::with_capacity(ids.len());
        for id in ids {
            let r = sqlx::query(
                "SELECT d.id, d.webhook_id, d.producer_id, d.event, d.payload, d.attempts, d.created_at, w.url, w.secret
                 FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id WHERE d.id = $1",
            )
            .bind(&id)
            .fetch_optional(&self.pool)
            .await?;
            // Its endpoint was deleted in between (with its deliveries): nothing to send.
            let Some(r) = r else { continue };
            let event = super::stored_word(&r, "webhook_deliveries", "event", event_named)?;
            claimed.push(ClaimedDelivery {
                id: r.try_get("id")?,
                webhook_id: r.try_get("webhook_id")?,
                producer_id: r.try_get("producer_id")?,
                event,
                url: r.try_get("url")?,
                secret: r.try_get("secret")?,
                payload: r.try_get("payload")?,
                attempts: r.try_get("attempts")?,
                created_at: r.try_get("created_at")?,
                claim: claim.clone(),
            });
        }
        Ok(claimed)
    }

    /// Record an attempt and what follows it, if the delivery is still under the claim it was
    /// made under; `false` (and nothing written) if another worker took it over.
    pub async fn finish_webhook_delivery(
        &self,
        delivery: &ClaimedDelivery,
        attempt: &Attempt,
        next: Next,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let (status, next_at, finished_at) = match next {
            Next::Delivered => (DeliveryStatus::Delivered, attempt.at, Some(attempt.at)),
            Next::Retry { at } => (DeliveryStatus::Pending, at, None),
            Next::Failed => (DeliveryStatus::Failed, attempt.at, Some(attempt.at)),
        };
        let status_code = attempt.status_code.map(i64::from);
        let finished = sqlx::query(
            "UPDATE webhook_deliveries SET status = $1, next_attempt_at = $2, finished_at = $3, attempts = attempts + 1,
                 last_status = $4, last_error = $5, claim = NULL, claim_until = NULL
             WHERE id = $6 AND status = 'pending' AND claim = $7",
        )
        .bind(status.as_str())
        .bind(next_at)
        .bind(finished_at)
        .bind(status_code)
        .bind(&attempt.error)
        .bind(&delivery.id)
        .bind(&delivery.claim)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if finished == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO webhook_attempts (delivery_id, at, status_code, error, duration_ms) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&delivery.id)
        .bind(attempt.at)
        .bind(status_code)
        .bind(&attempt.error)
        .bind(attempt.duration_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Give a claimed delivery back untried, due at `now` (for shutdown).
    pub async fn release_webhook_delivery(&self, delivery: &ClaimedDelivery, now: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE webhook_deliveries SET next_attempt_at = $1, claim = NULL, claim_until = NULL
             WHERE id = $2 AND status = 'pending' AND claim = $3",
        )
        .bind(now)
        .bind(&delivery.id)
        .bind(&delivery.claim)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The deliveries of one of the producer's endpoints, newest first, `limit` at most,
    /// after the cursor `(created_at, id)` of the previous page; each with its attempts,
    /// newest first (at most [`MAX_ATTEMPTS_LISTED`]).
    pub async fn webhook_deliveries(
        &self,
        producer_id: &str,
        webhook_id: &str,
        before: Option<(i64, String)>,
        limit: i64,
    ) -> Result<Vec<DeliveryRow>, StoreError> {
        const COLUMNS: &str = "SELECT id, event, status, attempts, created_at, next_attempt_at, last_status, last_error
             FROM webhook_deliveries WHERE producer_id = $1 AND webhook_id = $2";
        let rows = match before {
            None => {
                sqlx::query(sqlx::AssertSqlSafe(format!("{COLUMNS} ORDER BY created_at DESC, id DESC LIMIT $3")))
                    .bind(producer_id)
                    .bind(webhook_id)
                    .bind(limit)
                    .fetch_all(&self.read)
                    .await?
            }
            Some((at, id)) => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "{COLUMNS} AND (created_at < $3 OR (created_at = $3 AND id < $4))
                     ORDER BY created_at DESC, id DESC LIMIT $5"
                )))
                .bind(producer_id)
                .bind(webhook_id)
                .bind(at)
                .bind(id)
                .bind(limit)
                .fetch_all(&self.read)
                .await?
            }
        };
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let id: String = r.try_get("id")?;
            let status = super::stored_word(&r, "webhook_deliveries", "status", DeliveryStatus::parse)?;
            let log = sqlx::query(
                "SELECT at, status_code, error, duration_ms FROM webhook_attempts WHERE delivery_id = $1
                 ORDER BY at DESC LIMIT $2",
            )
            .bind(&id)
            .bind(MAX_ATTEMPTS_LISTED as i64)
            .fetch_all(&self.read)
            .await?
            .iter()
            .map(|a| {
                Ok(Attempt {
                    at: a.try_get("at")?,
                    status_code: a
                        .try_get::<Option<i64>, _>("status_code")?
                        .map(|c| u16::try_from(c).map_err(|_| StoreError::Corrupt(format!("HTTP status {c}"))))
                        .transpose()?,
                    error: a.try_get("error")?,
                    duration_ms: a.try_get("duration_ms")?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
            out.push(DeliveryRow {
                event: super::stored_word(&r, "webhook_deliveries", "event", event_named)?,
                attempts: r.try_get("attempts")?,
                created_at: r.try_get("created_at")?,
                next_attempt_at: if status == DeliveryStatus::Pending {
                    Some(r.try_get("next_attempt_at")?)
                } else {
                    None
                },
                last_status: r.try_get("last_status")?,
                last_error: r.try_get("last_error")?,
                status,
                log,
                id,
            });
        }
        Ok(out)
    }

    /// Delete finished (delivered or failed) deliveries created before `before`, with their
    /// attempts; returns how many deliveries went.
    pub async fn purge_webhook_deliveries(&self, before: i64) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "DELETE FROM webhook_attempts WHERE delivery_id IN (SELECT id FROM webhook_deliveries
             WHERE status IN ('delivered', 'failed') AND created_at < $1)",
        )
        .bind(before)
        .execute(&mut *tx)
        .await?;
        let n =
            sqlx::query("DELETE FROM webhook_deliveries WHERE status IN ('delivered', 'failed') AND created_at < $1")
                .bind(before)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        tx.commit().await?;
        Ok(n)
    }
}

/// Delete the deliveries about `lead_id` and their attempts, inside `tx` (erasure).
pub(crate) async fn erase_lead(tx: &mut sqlx::Transaction<'_, sqlx::Any>, lead_id: &str) -> Result<(), StoreError> {
    sqlx::query(
        "DELETE FROM webhook_attempts WHERE delivery_id IN (SELECT id FROM webhook_deliveries WHERE lead_id = $1)",
    )
    .bind(lead_id)
    .execute(&mut **tx)
    .await?;
    sqlx::query("DELETE FROM webhook_deliveries WHERE lead_id = $1").bind(lead_id).execute(&mut **tx).await?;
    Ok(())
}
