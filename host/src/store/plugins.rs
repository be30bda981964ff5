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

/// What deleting a stored component did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeletePlugin {
    Deleted,
    NotFound,
    /// Its bytes are pinned by this many bindings and active runs, and stored nowhere else.
    InUse {
        bindings: i64,
        runs: i64,
    },
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

    /// How many components a producer keeps stored.
    pub async fn plugin_count(&self, producer_id: &str) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM plugins WHERE producer_id = $1")
            .bind(producer_id)
            .fetch_one(&self.pool)
            .await?)
    }

    /// The sha256 stored under a producer's name and version, if any.
    pub async fn plugin_version_sha(
        &self,
        producer_id: &str,
        name: &str,
        version: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT sha256 FROM plugins WHERE producer_id = $1 AND name = $2 AND version = $3")
            .bind(producer_id)
            .bind(name)
            .bind(version)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Delete a stored component, unless it is the last copy of bytes a binding or an active
    /// run still needs (its events would fail as an unknown plugin).
    pub async fn delete_plugin(
        &self,
        producer_id: &str,
        name: &str,
        version: &str,
    ) -> Result<DeletePlugin, StoreError> {
        let mut tx = self.pool.begin().await?;
        let sha: Option<String> =
            sqlx::query_scalar("SELECT sha256 FROM plugins WHERE producer_id = $1 AND name = $2 AND version = $3")
                .bind(producer_id)
                .bind(name)
                .bind(version)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(sha) = sha else { return Ok(DeletePlugin::NotFound) };
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM plugins WHERE sha256 = $1) AS copies,
                    (SELECT COUNT(*) FROM bindings WHERE plugin_sha256 = $1) AS bindings,
                    (SELECT COUNT(*) FROM runs WHERE plugin_sha256 = $1 AND status = 'active') AS runs",
        )
        .bind(&sha)
        .fetch_one(&mut *tx)
        .await?;
        let (copies, bindings, runs): (i64, i64, i64) =
            (row.try_get("copies")?, row.try_get("bindings")?, row.try_get("runs")?);
        if copies == 1 && bindings + runs > 0 {
            return Ok(DeletePlugin::InUse { bindings, runs });
        }
        sqlx::query("DELETE FROM plugins WHERE producer_id = $1 AND name = $2 AND version = $3")
            .bind(producer_id)
            .bind(name)
            .bind(version)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(DeletePlugin::Deleted)
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
