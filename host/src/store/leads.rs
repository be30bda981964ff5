//! Reading leads for "my leads": a producer's leads newest first, with their messages.

use sqlx::Row;

use super::snapshots::MessageSnapshot;
use super::{Database, StoreError};

/// A lead as the producer sees it.
#[derive(Clone, Debug)]
pub struct LeadSummary {
    pub id: String,
    pub email: String,
    pub status: crate::domain::LeadStatus,
    pub product_id: Option<String>,
    pub plan_id: Option<String>,
    pub price_cents: Option<i64>,
    pub currency: Option<String>,
    pub captured_at: i64,
    pub messages: Vec<MessageSnapshot>,
}

impl Database {
    /// Whether a producer exists.
    pub async fn producer_exists(&self, producer_id: &str) -> Result<bool, StoreError> {
        let found: Option<String> = sqlx::query_scalar("SELECT id FROM producers WHERE id = $1")
            .bind(producer_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(found.is_some())
    }

    /// A page of a producer's leads, newest first, after the `(captured_at, id)` cursor.
    pub async fn list_leads(
        &self,
        producer_id: &str,
        after: Option<(i64, String)>,
        limit: i64,
    ) -> Result<Vec<LeadSummary>, StoreError> {
        let (at, id) = after.unwrap_or((i64::MAX, String::new()));
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM leads WHERE producer_id = $1 AND (captured_at < $2 OR (captured_at = $2 AND id < $3))
             ORDER BY captured_at DESC, id DESC LIMIT $4",
        )
        .bind(producer_id)
        .bind(at)
        .bind(&id)
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        let mut leads = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(lead) = self.lead_summary(producer_id, &id).await? {
                leads.push(lead);
            }
        }
        Ok(leads)
    }

    /// One lead of a producer (none for another producer's lead).
    pub async fn lead_summary(&self, producer_id: &str, lead_id: &str) -> Result<Option<LeadSummary>, StoreError> {
        let row = sqlx::query("SELECT * FROM leads WHERE id = $1 AND producer_id = $2")
            .bind(lead_id)
            .bind(producer_id)
            .fetch_optional(&self.read)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let snapshot = self.lead_snapshot(lead_id).await?;
        Ok(Some(LeadSummary {
            id: lead_id.to_string(),
            email: row.try_get("email")?,
            status: super::stored_word(&row, "leads", "status", crate::domain::LeadStatus::parse)?,
            product_id: row.try_get("product_id")?,
            plan_id: row.try_get("plan_id")?,
            price_cents: row.try_get("price_cents")?,
            currency: row.try_get("currency")?,
            captured_at: row.try_get("captured_at")?,
            messages: snapshot.messages,
        }))
    }
}
