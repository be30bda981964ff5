//! A producer's numbers: leads, recovered leads and revenue (per currency), and per message
//! tag how many were sent, clicked and credited with a recovery (the message a purchase is
//! attributed to: the last clicked before it, else the last delivered); and per A/B split
//! variant the same ([`super::variants`]).

use serde::Serialize;
use sqlx::Row;

use super::{Database, StoreError};

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Revenue {
    pub currency: String,
    pub amount_cents: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TagStats {
    pub tag: String,
    pub sent: i64,
    pub clicked: i64,
    pub recovered: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub leads: i64,
    pub recovered: i64,
    pub recovered_revenue: Vec<Revenue>,
    pub by_tag: Vec<TagStats>,
    /// Recovery messages the contact frequency cap held back.
    pub capped: CappedStats,
    /// Per A/B split step and variant (see [`super::variants`]).
    pub by_variant: Vec<super::variants::VariantStats>,
}

/// Messages over the producer's contact cap (`PUT /v1/settings`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CappedStats {
    /// Held back at least once, sent later (or still waiting).
    pub deferred: i64,
    /// Dropped (the cap's `over` is `drop`).
    pub dropped: i64,
}

/// A sum of prices read from SQL. Prices are summed as DOUBLE PRECISION, not integers: an
/// integer SUM overflows (SQLite: an error; PostgreSQL: a numeric that no longer fits BIGINT),
/// and one producer's stats page must not fail on large amounts. Exact while the sum is under
/// 2^53 cents (ingest caps a price at 10^11 cents); beyond i64 it saturates.
pub(crate) fn cents(sum: f64) -> i64 {
    // `as` saturates (and maps NaN to 0).
    sum.round() as i64
}

impl Database {
    pub async fn stats(&self, producer_id: &str) -> Result<Stats, StoreError> {
        let leads: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM leads WHERE producer_id = $1")
            .bind(producer_id)
            .fetch_one(&self.read)
            .await?;
        let recovered: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM leads WHERE producer_id = $1 AND recovered_by IS NOT NULL")
                .bind(producer_id)
                .fetch_one(&self.read)
                .await?;
        let revenue = sqlx::query(
            "SELECT currency, SUM(CAST(price_cents AS DOUBLE PRECISION)) AS amount FROM leads
             WHERE producer_id = $1 AND recovered_by IS NOT NULL AND price_cents IS NOT NULL AND currency IS NOT NULL
             GROUP BY currency ORDER BY currency",
        )
        .bind(producer_id)
        .fetch_all(&self.read)
        .await?;
        let by_tag = sqlx::query(
            "SELECT o.tag,
                    SUM(CASE WHEN o.status = 'sent' THEN 1 ELSE 0 END) AS sent,
                    SUM(CASE WHEN o.clicked_at IS NOT NULL THEN 1 ELSE 0 END) AS clicked,
                    SUM(CASE WHEN l.recovered_by = o.id THEN 1 ELSE 0 END) AS recovered
             FROM outbox o JOIN leads l ON l.id = o.lead_id WHERE o.producer_id = $1 GROUP BY o.tag ORDER BY o.tag",
        )
        .bind(producer_id)
        .fetch_all(&self.read)
        .await?;
        let capped = sqlx::query(
            "SELECT COALESCE(SUM(CASE WHEN capped = 'deferred' THEN 1 ELSE 0 END), 0) AS deferred,
                    COALESCE(SUM(CASE WHEN status = 'dropped' AND reason = 'contact_cap' THEN 1 ELSE 0 END), 0) AS dropped
             FROM outbox WHERE producer_id = $1",
        )
        .bind(producer_id)
        .fetch_one(&self.read)
        .await?;
        let by_variant = self.variant_stats(producer_id).await?;
        Ok(Stats {
            capped: CappedStats { deferred: capped.try_get("deferred")?, dropped: capped.try_get("dropped")? },
            by_variant,
            leads,
            recovered,
            recovered_revenue: revenue
                .iter()
                .map(|r| Ok(Revenue { currency: r.try_get("currency")?, amount_cents: cents(r.try_get("amount")?) }))
                .collect::<Result<_, StoreError>>()?,
            by_tag: by_tag
                .iter()
                .map(|r| {
                    Ok(TagStats {
                        tag: r.try_get("tag")?,
                        sent: r.try_get("sent")?,
                        clicked: r.try_get("clicked")?,
                        recovered: r.try_get("recovered")?,
                    })
                })
                .collect::<Result<_, StoreError>>()?,
        })
    }
}
