//! A/B split assignments (migration 0010): the variant of each split step a lead was put in,
//! recorded once (with the event whose plugin chose it; see [`super::commit`]), and the
//! numbers per variant for `GET /v1/stats`.

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::Row;

use super::stats::{Revenue, cents};
use super::{Database, StoreError};

/// A lead's variant at one split step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LeadVariant {
    pub step: String,
    pub variant: String,
    pub assigned_at: i64,
}

/// One variant of one split step: how many leads it got, and of the messages queued to them
/// from the moment they entered it, how many were sent and clicked; how many of its leads were
/// recovered, and their revenue per currency.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VariantStats {
    pub step: String,
    pub variant: String,
    pub leads: i64,
    pub sent: i64,
    pub clicked: i64,
    pub recovered: i64,
    pub recovered_revenue: Vec<Revenue>,
}

/// Record the lead's variant at `step` unless one is recorded; a timeline line when recorded.
pub(crate) async fn record(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    lead_id: &str,
    producer_id: &str,
    step: &str,
    variant: &str,
    now: i64,
) -> Result<(), StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO lead_variants (lead_id, step, variant, producer_id, assigned_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (lead_id, step) DO NOTHING",
    )
    .bind(lead_id)
    .bind(step)
    .bind(variant)
    .bind(producer_id)
    .bind(now)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if inserted > 0 {
        let note = crate::domain::TimelineNote::Variant { step: step.to_string(), variant: variant.to_string() };
        super::timeline::append(tx, lead_id, now, &note).await?;
    }
    Ok(())
}

impl Database {
    /// The variant recorded for the lead at `step`, if any.
    pub async fn recorded_variant(&self, lead_id: &str, step: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT variant FROM lead_variants WHERE lead_id = $1 AND step = $2")
            .bind(lead_id)
            .bind(step)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Every variant recorded for the lead, by step.
    pub async fn lead_variants(&self, lead_id: &str) -> Result<Vec<LeadVariant>, StoreError> {
        let rows = sqlx::query(
            "SELECT step, variant, assigned_at FROM lead_variants WHERE lead_id = $1 ORDER BY assigned_at, step",
        )
        .bind(lead_id)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(LeadVariant {
                    step: r.try_get("step")?,
                    variant: r.try_get("variant")?,
                    assigned_at: r.try_get("assigned_at")?,
                })
            })
            .collect()
    }

    /// The producer's numbers per split step and variant, by step then variant.
    pub async fn variant_stats(&self, producer_id: &str) -> Result<Vec<VariantStats>, StoreError> {
        let mut by: BTreeMap<(String, String), VariantStats> = BTreeMap::new();
        let leads = sqlx::query(
            "SELECT v.step, v.variant, COUNT(*) AS leads,
                    SUM(CASE WHEN l.recovered_by IS NOT NULL THEN 1 ELSE 0 END) AS recovered
             FROM lead_variants v JOIN leads l ON l.id = v.lead_id
             WHERE v.producer_id = $1 GROUP BY v.step, v.variant",
        )
        .bind(producer_id)
        .fetch_all(&self.read)
        .await?;
        for r in &leads {
            let (step, variant): (String, String) = (r.try_get("step")?, r.try_get("variant")?);
            by.insert(
                (step.clone(), variant.clone()),
                VariantStats {
                    step,
                    variant,
                    leads: r.try_get("leads")?,
                    sent: 0,
                    clicked: 0,
                    recovered: r.try_get("recovered")?,
                    recovered_revenue: Vec::new(),
                },
            );
        }
        // Messages queued at or after the lead entered the variant: what the variant sent.
        let messages = sqlx::query(
            "SELECT v.step, v.variant,
                    SUM(CASE WHEN o.status = 'sent' THEN 1 ELSE 0 END) AS sent,
                    SUM(CASE WHEN o.clicked_at IS NOT NULL THEN 1 ELSE 0 END) AS clicked
             FROM lead_variants v JOIN outbox o ON o.lead_id = v.lead_id AND o.queued_at >= v.assigned_at
             WHERE v.producer_id = $1 GROUP BY v.step, v.variant",
        )
        .bind(producer_id)
        .fetch_all(&self.read)
        .await?;
        for r in &messages {
            if let Some(s) = by.get_mut(&(r.try_get("step")?, r.try_get("variant")?)) {
                s.sent = r.try_get("sent")?;
                s.clicked = r.try_get("clicked")?;
            }
        }
        let revenue = sqlx::query(
            "SELECT v.step, v.variant, l.currency, SUM(CAST(l.price_cents AS DOUBLE PRECISION)) AS amount
             FROM lead_variants v JOIN leads l ON l.id = v.lead_id
             WHERE v.producer_id = $1 AND l.recovered_by IS NOT NULL AND l.price_cents IS NOT NULL
               AND l.currency IS NOT NULL
             GROUP BY v.step, v.variant, l.currency ORDER BY l.currency",
        )
        .bind(producer_id)
        .fetch_all(&self.read)
        .await?;
        for r in &revenue {
            if let Some(s) = by.get_mut(&(r.try_get("step")?, r.try_get("variant")?)) {
                s.recovered_revenue
                    .push(Revenue { currency: r.try_get("currency")?, amount_cents: cents(r.try_get("amount")?) });
            }
        }
        Ok(by.into_values().collect())
    }
}
