//! Uploaded plugin components: bytes, sha256 and what `describe()` declared, per producer.
//! Built-in plugins are not stored: they are embedded in the binary. A stored component is
//! never changed: a name and version name one sha256 for good.
//!
//! An upload checked in the background is stored first as `compiling` (under its name and
//! version when the upload gave them, else under an empty name and its sha256 as version until
//! `describe()` says them), then becomes `ready` or `failed` (its bytes dropped, the reason
//! kept). Failed rows hold no bytes, serve nothing and count against no quota; the newest
//! [`FAILED_KEPT`] of a producer are kept for `GET /v1/plugins` to show.

use serde::Serialize;
use sqlx::Row;

use super::{Database, StoreError, stored_word_keyed};

/// A stored plugin, without its bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StoredPlugin {
    pub name: String,
    pub version: String,
    pub sha256: String,
    pub info: serde_json::Value,
}

/// Failed uploads kept per producer (to show why); older ones are forgotten.
const FAILED_KEPT: i64 = 10;

pub use crate::domain::PluginStatus;

/// A stored plugin as `GET /v1/plugins` lists it. An upload still compiling without a name
/// given has none yet (nor a version).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ListedPlugin {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub version: String,
    pub sha256: String,
    pub info: serde_json::Value,
    pub status: PluginStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A stored component left `compiling` (by a process that stopped before its check ended).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompilingPlugin {
    pub producer_id: String,
    pub name: String,
    pub version: String,
    pub sha256: String,
}

/// The newest component of a producer under a name, and where it is in its check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedPlugin {
    pub sha256: String,
    pub status: PluginStatus,
    pub reason: Option<String>,
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
        self.insert_plugin(producer_id, plugin, bytes, PluginStatus::Ready, now).await
    }

    /// The sha256 and status stored under a producer's name and version.
    pub async fn plugin_status(
        &self,
        producer_id: &str,
        name: &str,
        version: &str,
    ) -> Result<Option<(String, PluginStatus)>, StoreError> {
        let row =
            sqlx::query("SELECT sha256, status FROM plugins WHERE producer_id = $1 AND name = $2 AND version = $3")
                .bind(producer_id)
                .bind(name)
                .bind(version)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|r| {
            Ok((r.try_get("sha256")?, stored_word_keyed(&r, ("plugins", "sha256"), "status", PluginStatus::parse)?))
        })
        .transpose()
    }

    /// Put other bytes in the place of a failed upload.
    async fn replace(
        &self,
        producer_id: &str,
        plugin: &StoredPlugin,
        bytes: &[u8],
        status: PluginStatus,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE plugins SET sha256 = $1, bytes = $2, info_json = $3, created_at = $4, status = $5, failure = NULL
             WHERE producer_id = $6 AND name = $7 AND version = $8 AND status = 'failed'",
        )
        .bind(&plugin.sha256)
        .bind(bytes)
        .bind(plugin.info.to_string())
        .bind(now)
        .bind(status.as_str())
        .bind(producer_id)
        .bind(&plugin.name)
        .bind(&plugin.version)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn mark_ready(
        &self,
        producer_id: &str,
        name: &str,
        version: &str,
        plugin: &StoredPlugin,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE plugins SET name = $1, version = $2, info_json = $3, status = 'ready', failure = NULL
             WHERE producer_id = $4 AND name = $5 AND version = $6 AND sha256 = $7",
        )
        .bind(&plugin.name)
        .bind(&plugin.version)
        .bind(plugin.info.to_string())
        .bind(producer_id)
        .bind(name)
        .bind(version)
        .bind(&plugin.sha256)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Store an upload before it is checked, as `compiling` under `name` and `version` (an
    /// empty name and the sha256 as version when the upload gave none). The same rules as
    /// [`put_plugin`](Self::put_plugin): a name and version holding other bytes is `Taken`.
    pub async fn put_compiling(
        &self,
        producer_id: &str,
        plugin: &StoredPlugin,
        bytes: &[u8],
        now: i64,
    ) -> Result<PutPlugin, StoreError> {
        self.insert_plugin(producer_id, plugin, bytes, PluginStatus::Compiling, now).await
    }

    /// Store `plugin` as `status` under its name and version, unless they hold other bytes
    /// (`Taken`). A failed upload under that name and version holds nothing and gives way; the
    /// same bytes again change nothing, except that bytes checked now (`Ready`) make a row
    /// still compiling ready, whatever its background check finds.
    async fn insert_plugin(
        &self,
        producer_id: &str,
        plugin: &StoredPlugin,
        bytes: &[u8],
        status: PluginStatus,
        now: i64,
    ) -> Result<PutPlugin, StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO plugins (sha256, producer_id, name, version, bytes, info_json, created_at, status)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (producer_id, name, version) DO NOTHING",
        )
        .bind(&plugin.sha256)
        .bind(producer_id)
        .bind(&plugin.name)
        .bind(&plugin.version)
        .bind(bytes)
        .bind(plugin.info.to_string())
        .bind(now)
        .bind(status.as_str())
        .execute(&self.pool)
        .await?
        .rows_affected();
        if inserted == 1 {
            return Ok(PutPlugin::Stored);
        }
        match self.plugin_status(producer_id, &plugin.name, &plugin.version).await? {
            Some((_, PluginStatus::Failed)) => {
                self.replace(producer_id, plugin, bytes, status, now).await?;
                Ok(PutPlugin::Stored)
            }
            Some((sha256, stored)) if sha256 == plugin.sha256 => {
                if status == PluginStatus::Ready && stored == PluginStatus::Compiling {
                    self.mark_ready(producer_id, &plugin.name, &plugin.version, plugin).await?;
                }
                Ok(PutPlugin::AlreadyStored)
            }
            Some((sha256, _)) => Ok(PutPlugin::Taken { sha256 }),
            None => Err(StoreError::Corrupt(format!(
                "plugin {}@{} was neither stored nor found: removed meanwhile?",
                plugin.name, plugin.version
            ))),
        }
    }

    /// A `compiling` upload passed its check: `ready` under the name and version in `plugin`
    /// (those `describe()` gave, when the upload gave none). When that name and version hold
    /// these bytes already, the compiling row goes (`AlreadyStored`); other bytes: `Taken`,
    /// and the caller marks it failed.
    pub async fn compiled_ready(
        &self,
        producer_id: &str,
        name: &str,
        version: &str,
        plugin: &StoredPlugin,
    ) -> Result<PutPlugin, StoreError> {
        if (name, version) != (plugin.name.as_str(), plugin.version.as_str()) {
            match self.plugin_status(producer_id, &plugin.name, &plugin.version).await? {
                None => {}
                Some((_, PluginStatus::Failed)) => {
                    sqlx::query("DELETE FROM plugins WHERE producer_id = $1 AND name = $2 AND version = $3")
                        .bind(producer_id)
                        .bind(&plugin.name)
                        .bind(&plugin.version)
                        .execute(&self.pool)
                        .await?;
                }
                Some((sha256, status)) if sha256 == plugin.sha256 => {
                    if status == PluginStatus::Compiling {
                        self.mark_ready(producer_id, &plugin.name, &plugin.version, plugin).await?;
                    }
                    sqlx::query(
                        "DELETE FROM plugins WHERE producer_id = $1 AND name = $2 AND version = $3 AND sha256 = $4",
                    )
                    .bind(producer_id)
                    .bind(name)
                    .bind(version)
                    .bind(&plugin.sha256)
                    .execute(&self.pool)
                    .await?;
                    return Ok(PutPlugin::AlreadyStored);
                }
                Some((sha256, _)) => return Ok(PutPlugin::Taken { sha256 }),
            }
        }
        self.mark_ready(producer_id, name, version, plugin).await?;
        Ok(PutPlugin::Stored)
    }

    /// A `compiling` upload failed its check: keep the reason, drop the bytes, and forget
    /// the producer's failures older than the newest [`FAILED_KEPT`].
    pub async fn compiled_failed(
        &self,
        producer_id: &str,
        name: &str,
        version: &str,
        sha256: &str,
        reason: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE plugins SET status = 'failed', failure = $1, bytes = $2
             WHERE producer_id = $3 AND name = $4 AND version = $5 AND sha256 = $6 AND status = 'compiling'",
        )
        .bind(reason)
        .bind(&[][..] as &[u8])
        .bind(producer_id)
        .bind(name)
        .bind(version)
        .bind(sha256)
        .execute(&self.pool)
        .await?;
        sqlx::query(
            "DELETE FROM plugins WHERE producer_id = $1 AND status = 'failed' AND created_at < (
                 SELECT created_at FROM plugins WHERE producer_id = $1 AND status = 'failed'
                 ORDER BY created_at DESC LIMIT 1 OFFSET $2)",
        )
        .bind(producer_id)
        .bind(FAILED_KEPT - 1)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every upload left `compiling`, of every producer (to check again at start).
    pub async fn compiling_plugins(&self) -> Result<Vec<CompilingPlugin>, StoreError> {
        let rows = sqlx::query(
            "SELECT producer_id, name, version, sha256 FROM plugins WHERE status = 'compiling' ORDER BY created_at",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(CompilingPlugin {
                    producer_id: r.try_get("producer_id")?,
                    name: r.try_get("name")?,
                    version: r.try_get("version")?,
                    sha256: r.try_get("sha256")?,
                })
            })
            .collect()
    }

    /// The newest component a producer stored under `name`, whatever its status.
    pub async fn plugin_by_name(&self, producer_id: &str, name: &str) -> Result<Option<NamedPlugin>, StoreError> {
        let row = sqlx::query(
            "SELECT sha256, status, failure FROM plugins WHERE producer_id = $1 AND name = $2
             ORDER BY created_at DESC LIMIT 1",
        )
        .bind(producer_id)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(NamedPlugin {
                sha256: r.try_get("sha256")?,
                status: stored_word_keyed(&r, ("plugins", "sha256"), "status", PluginStatus::parse)?,
                reason: r.try_get("failure")?,
            })
        })
        .transpose()
    }

    /// How many components a producer keeps stored.
    pub async fn plugin_count(&self, producer_id: &str) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM plugins WHERE producer_id = $1 AND status <> 'failed'")
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
        Ok(sqlx::query_scalar(
            "SELECT sha256 FROM plugins WHERE producer_id = $1 AND name = $2 AND version = $3 AND status <> 'failed'",
        )
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
        let found =
            sqlx::query("SELECT sha256, status FROM plugins WHERE producer_id = $1 AND name = $2 AND version = $3")
                .bind(producer_id)
                .bind(name)
                .bind(version)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(found) = found else { return Ok(DeletePlugin::NotFound) };
        let sha: String = found.try_get("sha256")?;
        let status = stored_word_keyed(&found, ("plugins", "sha256"), "status", PluginStatus::parse)?;
        // Only a ready copy serves a binding or a run (a compiling one may yet fail and lose its
        // bytes): the last ready copy of bytes in use stays.
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM plugins WHERE sha256 = $1 AND status = 'ready') AS copies,
                    (SELECT COUNT(*) FROM bindings WHERE plugin_sha256 = $1) AS bindings,
                    (SELECT COUNT(*) FROM runs WHERE plugin_sha256 = $1 AND status = $2) AS runs",
        )
        .bind(&sha)
        .bind(crate::domain::RunStatus::Active.as_str())
        .fetch_one(&mut *tx)
        .await?;
        let (copies, bindings, runs): (i64, i64, i64) =
            (row.try_get("copies")?, row.try_get("bindings")?, row.try_get("runs")?);
        if status == PluginStatus::Ready && copies == 1 && bindings + runs > 0 {
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
        Ok(sqlx::query_scalar("SELECT bytes FROM plugins WHERE sha256 = $1 AND status <> 'failed' LIMIT 1")
            .bind(sha256)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// A producer's plugins, newest version last.
    pub async fn plugins(&self, producer_id: &str) -> Result<Vec<ListedPlugin>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, version, sha256, info_json, status, failure FROM plugins WHERE producer_id = $1
             ORDER BY name, created_at",
        )
        .bind(producer_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let info: String = r.try_get("info_json")?;
                let (name, sha256): (String, String) = (r.try_get("name")?, r.try_get("sha256")?);
                // An upload given no version, still compiling, has a placeholder (its sha256).
                let version: String = r.try_get("version")?;
                let version = if name.is_empty() || version == sha256 { String::new() } else { version };
                Ok(ListedPlugin {
                    name,
                    version,
                    sha256,
                    info: serde_json::from_str(&info).map_err(|e| StoreError::Corrupt(format!("plugin info: {e}")))?,
                    status: stored_word_keyed(r, ("plugins", "sha256"), "status", PluginStatus::parse)?,
                    reason: r.try_get("failure")?,
                })
            })
            .collect()
    }
}
