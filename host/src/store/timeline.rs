//! A lead's timeline: what happened to it, in order, for "my leads" and `funnel simulate`.

use serde::Serialize;
use sqlx::Row;

use super::{Database, StoreError};

/// One line of a lead's timeline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TimelineEntry {
    pub seq: i64,
    pub at: i64,
    pub kind: String,
    pub detail: String,
}

pub(crate) async fn append(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    lead_id: &str,
    at: i64,
    kind: &str,
    detail: &str,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO timeline (lead_id, at, kind, detail) VALUES ($1, $2, $3, $4)")
        .bind(lead_id)
        .bind(at)
        .bind(kind)
        .bind(detail)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

impl Database {
    /// The lead's timeline entries after `after_seq`, oldest first.
    pub async fn timeline(&self, lead_id: &str, after_seq: i64) -> Result<Vec<TimelineEntry>, StoreError> {
        let rows =
            sqlx::query("SELECT seq, at, kind, detail FROM timeline WHERE lead_id = $1 AND seq > $2 ORDER BY seq")
                .bind(lead_id)
                .bind(after_seq)
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| {
                Ok(TimelineEntry {
                    seq: r.try_get("seq")?,
                    at: r.try_get("at")?,
                    kind: r.try_get("kind")?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect()
    }

    /// Append one entry outside any other transaction.
    pub async fn note(&self, lead_id: &str, at: i64, kind: &str, detail: &str) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        append(&mut tx, lead_id, at, kind, detail).await?;
        tx.commit().await?;
        Ok(())
    }
}
