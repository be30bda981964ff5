//! A lead's timeline: what happened to it, in order, for "my leads" and `funnel simulate`.
//! Each row holds a [`TimelineNote`]: its kind as a word, its fields as JSON (see
//! [`crate::domain::timeline`]); a kind this build does not know is an error naming the row.

use serde::Serialize;
use sqlx::Row;

use super::{Database, StoreError, stored_word_keyed};
use crate::domain::{TimelineKind, TimelineNote};

/// One line of a lead's timeline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TimelineEntry {
    pub seq: i64,
    pub at: i64,
    pub note: TimelineNote,
}

impl TimelineEntry {
    /// What kind of entry it is.
    pub fn kind(&self) -> TimelineKind {
        self.note.kind()
    }

    /// Its detail as users read it (see [`TimelineNote::detail_text`]).
    pub fn detail(&self) -> String {
        self.note.detail_text()
    }
}

pub(crate) async fn append(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    lead_id: &str,
    at: i64,
    note: &TimelineNote,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO timeline (lead_id, at, kind, detail) VALUES ($1, $2, $3, $4)")
        .bind(lead_id)
        .bind(at)
        .bind(note.kind().as_str())
        .bind(note.to_stored())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

fn entry_from_row(row: &sqlx::any::AnyRow) -> Result<TimelineEntry, StoreError> {
    let seq: i64 = row.try_get("seq")?;
    let kind = stored_word_keyed(row, ("timeline", "seq"), "kind", TimelineKind::parse)?;
    let detail: String = row.try_get("detail")?;
    let note = TimelineNote::from_stored(kind, &detail)
        .map_err(|e| StoreError::Corrupt(format!("timeline row {seq}: {e}")))?;
    Ok(TimelineEntry { seq, at: row.try_get("at")?, note })
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
        rows.iter().map(entry_from_row).collect()
    }

    /// Append one entry outside any other transaction.
    pub async fn note(&self, lead_id: &str, at: i64, note: &TimelineNote) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        append(&mut tx, lead_id, at, note).await?;
        tx.commit().await?;
        Ok(())
    }
}
