//! Rows of the `events` table: each lead event a plugin will be told about (or that was skipped),
//! written by ingest, the tracking links and the scheduler; a pending one queues its lead.

use super::StoreError;
use crate::domain::EventStatus;
use crate::domain::LeadEvent;

/// Insert one event row; a pending one puts its lead in the dispatch queue. `id` is the host's
/// (`<kind>:<uuid>`); `platform_id` is the platform's event id on the row that records it
/// (unique per producer: the idempotency key), in a column of its own so the two never meet.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn insert_event(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    id: &str,
    platform_id: Option<&str>,
    producer_id: &str,
    lead_id: Option<&str>,
    event: Option<&LeadEvent>,
    status: EventStatus,
    now: i64,
) -> Result<(), StoreError> {
    let payload = match event {
        Some(e) => serde_json::to_string(e).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        None => "null".to_string(),
    };
    sqlx::query(
        "INSERT INTO events (id, platform_id, producer_id, lead_id, kind, payload, status, attempts, next_attempt_at,
             created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, $8)",
    )
    .bind(id)
    .bind(platform_id)
    .bind(producer_id)
    .bind(lead_id)
    .bind(event.map(|e| e.name()).unwrap_or("ignored"))
    .bind(payload)
    .bind(status.as_str())
    .bind(now)
    .execute(&mut **tx)
    .await?;
    if let (Some(lead_id), EventStatus::Pending) = (lead_id, status) {
        super::queue::enqueue(tx, lead_id, now).await?;
    }
    Ok(())
}
