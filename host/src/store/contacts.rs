//! Lists as the producer reads them, and erasure of one person's data.

use sqlx::Row;

use super::{Database, StoreError};

impl Database {
    /// The producer's lists with their sizes.
    pub async fn lists(&self, producer_id: &str) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT list_name, COUNT(*) AS members FROM list_members WHERE producer_id = $1 GROUP BY list_name ORDER BY list_name",
        )
        .bind(producer_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok((r.try_get("list_name")?, r.try_get("members")?))).collect()
    }

    /// Members of one list: (email, lead id).
    pub async fn list_members(&self, producer_id: &str, list: &str) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT email, lead_id FROM list_members WHERE producer_id = $1 AND list_name = $2 ORDER BY email",
        )
        .bind(producer_id)
        .bind(list)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok((r.try_get("email")?, r.try_get("lead_id")?))).collect()
    }

    /// Delete everything about `email` for this producer, in one transaction; the suppression
    /// entry is kept (and added) so the person is not contacted again.
    pub async fn erase_contact(
        &self,
        producer_id: &str,
        email: &crate::domain::EmailAddress,
    ) -> Result<(), StoreError> {
        // Stored addresses are normalized (at ingest, and by migration 0006 for older rows):
        // equality, never the database's LOWER(), which folds only ASCII on SQLite.
        let email = email.as_str();
        let mut tx = self.pool.begin().await?;
        let leads: Vec<String> = sqlx::query_scalar("SELECT id FROM leads WHERE producer_id = $1 AND email = $2")
            .bind(producer_id)
            .bind(email)
            .fetch_all(&mut *tx)
            .await?;
        for lead in &leads {
            for table in ["events", "lead_queue", "outbox", "timers", "runs", "timeline"] {
                sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table} WHERE lead_id = $1")))
                    .bind(lead)
                    .execute(&mut *tx)
                    .await?;
            }
            super::webhooks::erase_lead(&mut tx, lead).await?;
            sqlx::query("DELETE FROM leads WHERE id = $1").bind(lead).execute(&mut *tx).await?;
        }
        sqlx::query("DELETE FROM list_members WHERE producer_id = $1 AND email = $2")
            .bind(producer_id)
            .bind(email)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO suppressions (producer_id, address, reason, created_at) VALUES ($1, $2, 'erased', 0)
             ON CONFLICT (producer_id, address) DO NOTHING",
        )
        .bind(producer_id)
        .bind(email)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The newest upload of a producer's plugin by name: its sha256.
    pub async fn plugin_sha_by_name(&self, producer_id: &str, name: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT sha256 FROM plugins WHERE producer_id = $1 AND name = $2 AND status <> 'failed'
             ORDER BY created_at DESC LIMIT 1",
        )
        .bind(producer_id)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?)
    }
}
