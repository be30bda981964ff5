//! Producer-wide settings (`PUT /v1/settings`, migration 0009): today the contact frequency
//! cap, and the reads the cap needs at send time (a contact's recent recovery sends).

use std::fmt;
use std::str::FromStr;

use sqlx::Row;

use super::{Database, StoreError};

/// What happens to a recovery message over the cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CapOver {
    /// Held until the contact's period frees a slot (the default).
    #[default]
    Defer,
    /// Dropped, with `contact_cap` as the reason.
    Drop,
}

impl CapOver {
    pub fn as_str(self) -> &'static str {
        match self {
            CapOver::Defer => "defer",
            CapOver::Drop => "drop",
        }
    }
}

impl fmt::Display for CapOver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CapOver {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "defer" => Ok(CapOver::Defer),
            "drop" => Ok(CapOver::Drop),
            other => Err(format!("{other:?} is neither \"defer\" nor \"drop\"")),
        }
    }
}

/// At most `count` recovery messages to one contact in any `per_ms`, across all the
/// producer's bindings; transactional messages are neither counted nor held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContactCap {
    /// 1 to [`ContactCap::MAX_COUNT`].
    pub count: u32,
    /// [`ContactCap::MIN_PER_MS`] to [`ContactCap::MAX_PER_MS`].
    pub per_ms: i64,
    pub over: CapOver,
}

impl ContactCap {
    pub const MAX_COUNT: u32 = 100;
    pub const MIN_PER_MS: i64 = 3_600_000;
    pub const MAX_PER_MS: i64 = 30 * 86_400_000;
}

impl Database {
    /// The producer's contact cap, if it set one.
    pub async fn contact_cap(&self, producer_id: &str) -> Result<Option<ContactCap>, StoreError> {
        let row = sqlx::query(
            "SELECT contact_cap_count, contact_cap_per_ms, contact_cap_over FROM producer_settings WHERE producer_id = $1",
        )
        .bind(producer_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let (count, per_ms, over): (Option<i64>, Option<i64>, Option<String>) =
            (row.try_get("contact_cap_count")?, row.try_get("contact_cap_per_ms")?, row.try_get("contact_cap_over")?);
        let (Some(count), Some(per_ms), Some(over)) = (count, per_ms, over) else { return Ok(None) };
        Ok(Some(ContactCap {
            count: u32::try_from(count).map_err(|_| StoreError::Corrupt(format!("contact cap count {count}")))?,
            per_ms,
            over: over.parse().map_err(|e| StoreError::Corrupt(format!("contact cap over: {e}")))?,
        }))
    }

    /// Set (or, with `None`, remove) the producer's contact cap.
    pub async fn put_contact_cap(
        &self,
        producer_id: &str,
        cap: Option<&ContactCap>,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO producer_settings (producer_id, contact_cap_count, contact_cap_per_ms, contact_cap_over, updated_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (producer_id) DO UPDATE SET contact_cap_count = excluded.contact_cap_count,
             contact_cap_per_ms = excluded.contact_cap_per_ms, contact_cap_over = excluded.contact_cap_over,
             updated_at = excluded.updated_at",
        )
        .bind(producer_id)
        .bind(cap.map(|c| i64::from(c.count)))
        .bind(cap.map(|c| c.per_ms))
        .bind(cap.map(|c| c.over.as_str()))
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// When the producer's last `limit` recovery messages to `contact` (a normalized email,
    /// whichever lead and channel) were sent after `since`, newest first.
    pub async fn recent_recovery_sends(
        &self,
        producer_id: &str,
        contact: &str,
        since: i64,
        limit: u32,
    ) -> Result<Vec<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT o.sent_at FROM outbox o JOIN leads l ON l.id = o.lead_id
             WHERE l.producer_id = $1 AND l.email = $2 AND o.kind = 'recovery' AND o.status = 'sent' AND o.sent_at > $3
             ORDER BY o.sent_at DESC LIMIT $4",
        )
        .bind(producer_id)
        .bind(contact)
        .bind(since)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }
}
