//! Uploaded plugin components: bytes, sha256 and what `describe()` declared, per producer.
//! Built-in plugins are not stored: they are embedded in the binary.

use serde::Serialize;
use sqlx::Row;

use super::{Database, StoreError};

/// A stored plugin, without its bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StoredPlugin {
    pub name: String,
    pub version: String,
    pub sha256: String,
    pub info: serde_json::Value,
}

impl Database {
    /// Database an uploaded component (a new version, or the same bytes again).
    pub async fn put_plugin(
        &self,
        producer_id: &str,
        plugin: &StoredPlugin,
        bytes: &[u8],
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO plugins (sha256, producer_id, name, version, bytes, info_json, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (producer_id, name, version) DO UPDATE SET sha256 = excluded.sha256, bytes = excluded.bytes,
             info_json = excluded.info_json, created_at = excluded.created_at",
        )
        .bind(&plugin.sha256)
        .bind(producer_id)
        .bind(&plugin.name)
        .bind(&plugin.version)
        .bind(bytes)
        .bind(plugin.info.to_string())
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The bytes of a stored component, by sha256.
    pub async fn plugin_bytes(&self, sha256: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(sqlx::query_scalar("SELECT bytes FROM plugins WHERE sha256 = $1 LIMIT 1")
            .bind(sha256)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// A producer's plugins, newest version last.
    pub async fn plugins(&self, producer_id: &str) -> Result<Vec<StoredPlugin>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, version, sha256, info_json FROM plugins WHERE producer_id = $1 ORDER BY name, created_at",
        )
        .bind(producer_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let info: String = r.try_get("info_json")?;
                Ok(StoredPlugin {
                    name: r.try_get("name")?,
                    version: r.try_get("version")?,
                    sha256: r.try_get("sha256")?,
                    info: serde_json::from_str(&info).map_err(|e| StoreError::Corrupt(format!("plugin info: {e}")))?,
                })
            })
            .collect()
    }
}
