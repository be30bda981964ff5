//! Uploaded plugin components: bytes, sha256 and what `describe()` declared, per producer.
//! Built-in plugins are not stored: they are embedded in the binary. A stored component is
//! never changed: a name and version name one sha256 for good.

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

/// What storing an upload did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PutPlugin {
    /// Stored now.
    Stored,
    /// These very bytes were stored under this name and version before.
    AlreadyStored,
    /// The name and version hold other bytes (their sha256): a new version needs a new number.
    Taken { sha256: String },
}

impl Database {
    /// Store an uploaded component. A stored component is immutable: bindings and runs pin its
    /// sha256 and load its bytes by it, so a name and version already holding other bytes is
    /// refused ([`PutPlugin::Taken`]), never overwritten; the same bytes again change nothing.
    pub async fn put_plugin(
        &self,
        producer_id: &str,
        plugin: &StoredPlugin,
        bytes: &[u8],
        now: i64,
    ) -> Result<PutPlugin, StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO plugins (sha256, producer_id, name, version, bytes, info_json, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (producer_id, name, version) DO NOTHING",
        )
        .bind(&plugin.sha256)
        .bind(producer_id)
        .bind(&plugin.name)
        .bind(&plugin.version)
        .bind(bytes)
        .bind(plugin.info.to_string())
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if inserted == 1 {
            return Ok(PutPlugin::Stored);
        }
        let existing: Option<String> =
            sqlx::query_scalar("SELECT sha256 FROM plugins WHERE producer_id = $1 AND name = $2 AND version = $3")
                .bind(producer_id)
                .bind(&plugin.name)
                .bind(&plugin.version)
                .fetch_optional(&self.pool)
                .await?;
        match existing {
            Some(sha256) if sha256 == plugin.sha256 => Ok(PutPlugin::AlreadyStored),
            Some(sha256) => Ok(PutPlugin::Taken { sha256 }),
            None => Err(StoreError::Corrupt(format!(
                "plugin {}@{} was neither stored nor found: removed meanwhile?",
                plugin.name, plugin.version
            ))),
        }
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
