//! Storage: every write of the product goes through this module. One schema, two backends:
//! SQLite (the default, a file in WAL mode, or in memory for `simulate`) and PostgreSQL (shared
//! by any number of replicas). Queries are written once in SQL both understand, through
//! sqlx's `Any` driver; the few that differ (claims with `FOR UPDATE SKIP LOCKED`) branch on
//! [`Backend`].
//!
//! ## Layout
//! - [`migrations`]: the versioned schema (`host/migrations/{sqlite,postgres}/NNNN_name.sql`),
//!   applied at connect under a lock; its doc says how to add a migration.
//! - [`ingest`]: platform events become leads and event rows (idempotent on the event id).
//! - [`events`]: the rows of lead events (written by ingest, tracking and timers).
//! - [`runs`]: which binding serves a lead, chosen once when it is captured.
//! - [`queue`]: the lead queue (a row per lead with pending events, claimed in batches under
//!   a lease).
//! - [`snapshots`]: what an invocation needs to know (the pending event, the lead, its run).
//! - [`commit`]: settling an event: an invocation's writes committed in one transaction, or
//!   the event skipped, or its failure recorded.
//! - [`settlements`]: the dispatcher's group commit: several leads' settlements in one
//!   transaction, each lead's lease checked, each event's writes under a savepoint.
//! - [`timers`]: durable timers coming due.
//! - [`outbox`]: messages waiting for delivery and their outcome.
//! - [`plugins`]: uploaded components.
//! - [`producers`], [`bindings`]: who the producers are and which plugin serves which scope.
//! - [`contacts`]: lists as read by producers, and erasure of a person.
//! - [`coupons`]: unique coupons: pools, patterns, and the code each lead was given (0010).
//! - [`variants`]: A/B split assignments per lead and step, and stats per variant (0010).
//! - [`stats`]: recovered leads and revenue, per message tag.
//! - [`tracking`]: clicks, opens and unsubscribes arriving from outside.
//! - [`timeline`]: what happened to a lead, in order.
//! - [`settings`]: producer-wide settings (the contact frequency cap) and what the cap counts.
//! - [`sessions`]: the console's sign-in sessions (revocable, idle expiry; migration 0002).
//! - [`webhooks`]: outgoing webhooks, their delivery outbox (written in the transaction of the
//!   change reported) and the log of attempts (migration 0008).
//! - [`console`]: the reads only the console's pages make (filtered leads, per-step counts,
//!   revenue per day and per message, plugin sizes), each scoped by producer.

pub mod bindings;
pub mod commit;
pub mod console;
pub(crate) mod contacts;
pub mod coupons;
pub(crate) mod events;
mod group;
pub mod ingest;
pub(crate) mod leads;
pub mod migrations;
pub mod outbox;
pub mod plugins;
pub(crate) mod producers;
pub mod queue;
pub(crate) mod rollup;
pub(crate) mod runs;
pub mod sessions;
pub mod settings;
pub mod settlements;
pub mod snapshots;
pub(crate) mod stats;
pub mod timeline;
pub(crate) mod timers;
pub(crate) mod tracking;
pub(crate) mod variants;
pub mod webhooks;

use std::str::FromStr;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

/// Which database is behind the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A failure of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("unsupported database URL {0:?}: use sqlite:PATH, sqlite::memory: or postgres://…")]
    UnsupportedUrl(String),
    #[error(transparent)]
    Migration(#[from] migrations::MigrationError),
    #[error("{0}")]
    Corrupt(String),
    /// A stored word this build does not know (written by a newer build, or by hand).
    #[error("{table} row {row:?}: unknown {column} {value:?}")]
    UnknownValue { table: &'static str, row: String, column: &'static str, value: String },
}

/// Read the word in `column` of `row` (of `table`, whose `id` column names the row) as `T`.
pub(crate) fn stored_word<T>(
    row: &sqlx::any::AnyRow,
    table: &'static str,
    column: &'static str,
    parse: fn(&str) -> Option<T>,
) -> Result<T, StoreError> {
    stored_word_keyed(row, (table, "id"), column, parse)
}

/// [`stored_word`] for a table whose rows are named by another column (`runs` by `lead_id`).
pub(crate) fn stored_word_keyed<T>(
    row: &sqlx::any::AnyRow,
    (table, key): (&'static str, &'static str),
    column: &'static str,
    parse: fn(&str) -> Option<T>,
) -> Result<T, StoreError> {
    use sqlx::Row;
    let value: String = row.try_get(column)?;
    parse(&value).ok_or_else(|| StoreError::UnknownValue { table, row: row_name(row, key), column, value })
}

/// What names a row in an error: its key column, text or a number (`seq`).
fn row_name(row: &sqlx::any::AnyRow, key: &str) -> String {
    use sqlx::Row;
    row.try_get::<String, _>(key).or_else(|_| row.try_get::<i64, _>(key).map(|n| n.to_string())).unwrap_or_default()
}

/// The handle every module writes and reads through. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Database {
    pub(crate) pool: AnyPool,
    /// Where reports read (the console's pages, `GET /v1/leads`, stats) and the dispatcher
    /// loads what an invocation needs (`snapshots`): on a SQLite file, a read-only pool of its
    /// own, so neither a producer reloading a page nor a lead's reads wait for — or hold up —
    /// the one writer connection the engine commits through (WAL readers do not block the
    /// writer). Elsewhere the same pool.
    pub(crate) read: AnyPool,
    backend: Backend,
    /// Single-event ingests waiting to share a commit (see `group`).
    group: std::sync::Arc<group::IngestGroup>,
    /// The dispatcher's settlements waiting to share a commit (see [`settlements`]).
    settle_group: std::sync::Arc<settlements::SettleGroup>,
}

impl Database {
    /// Connect to `url` and bring its schema up to date (see [`migrations`]). `sqlite:` URLs
    /// create the file if missing. A database migrated by a newer funnel is refused.
    pub async fn connect(url: &str) -> Result<Database, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_string()));
        };
        let url = match backend {
            Backend::Sqlite if !url.contains("mode=") && !url.contains(":memory:") => {
                format!("{url}{}mode=rwc", if url.contains('?') { "&" } else { "?" })
            }
            _ => url.to_string(),
        };
        let options = AnyConnectOptions::from_str(&url)?;
        let pool = match backend {
            // SQLite has one writer; one connection avoids lock upgrades failing under load and
            // keeps an in-memory database a single database.
            Backend::Sqlite => {
                AnyPoolOptions::new()
                    .max_connections(1)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            conn.execute(
                                "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000;",
                            )
                            .await?;
                            Ok(())
                        })
                    })
                    .connect_with(options)
                    .await?
            }
            Backend::Postgres => AnyPoolOptions::new().max_connections(16).connect_with(options).await?,
        };
        migrations::run(&pool, backend).await?;
        let read = match backend {
            Backend::Sqlite if !url.contains(":memory:") && !url.contains("mode=memory") => {
                let read_only = url.replace("mode=rwc", "mode=ro");
                AnyPoolOptions::new()
                    // The dispatcher's leads in flight read here too.
                    .max_connections(4)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            conn.execute("PRAGMA busy_timeout=5000;").await?;
                            Ok(())
                        })
                    })
                    .connect_with(AnyConnectOptions::from_str(&read_only)?)
                    .await?
            }
            _ => pool.clone(),
        };
        Ok(Database {
            pool,
            read,
            backend,
            group: std::sync::Arc::new(group::IngestGroup::new(backend)),
            settle_group: std::sync::Arc::new(settlements::SettleGroup::new(backend)),
        })
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A value of the `settings` table.
    pub async fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT value FROM settings WHERE key = $1").bind(key).fetch_optional(&self.pool).await?)
    }

    /// Set a value of the `settings` table, replacing what was there.
    pub async fn set_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = $2")
            .bind(key)
            .bind(value)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Remove a value of the `settings` table.
    pub async fn delete_setting(&self, key: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM settings WHERE key = $1").bind(key).execute(&self.pool).await?;
        Ok(())
    }

    /// Set a value of the `settings` table unless it exists; returns the value in force.
    pub async fn setting_or_insert(&self, key: &str, value: &str) -> Result<String, StoreError> {
        sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
            .bind(key)
            .bind(value)
            .execute(&self.pool)
            .await?;
        self.setting(key).await?.ok_or_else(|| StoreError::Corrupt(format!("setting {key} vanished")))
    }
}

/// A fresh random id: 128 bits, hex.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// An unguessable token for public links (128 bits of randomness, reveals nothing).
pub fn new_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Channel;

    #[tokio::test]
    async fn an_unknown_stored_word_is_an_error_naming_table_row_column_and_value() {
        sqlx::any::install_default_drivers();
        let pool = AnyPool::connect("sqlite::memory:").await.expect("sqlite in memory");
        let row = sqlx::query("SELECT 'msg-7' AS id, 'fax' AS channel").fetch_one(&pool).await.expect("a row");
        let err = stored_word(&row, "outbox", "channel", Channel::parse).expect_err("fax is no channel");
        assert_eq!(err.to_string(), r#"outbox row "msg-7": unknown channel "fax""#);
        let row = sqlx::query("SELECT 'msg-8' AS id, 'sms' AS channel").fetch_one(&pool).await.expect("a row");
        assert_eq!(stored_word(&row, "outbox", "channel", Channel::parse).ok(), Some(Channel::Sms));
    }

    /// The words set-based SQL compares a status or kind with, in every store module: each
    /// `status = 'w'`, `status <> 'w'`, `status IN ('w', …)` and `kind = 'w'` (any table
    /// alias before it). SQL keeps them as literals (partial indexes and plans match on
    /// them); this keeps them words the enums know, so a typo or a renamed word fails here.
    #[test]
    fn every_status_and_kind_word_in_the_stores_sql_is_a_known_word() {
        use crate::domain::{DeliveryStatus, EventStatus, LeadStatus, MessageStatus, PluginStatus, RunStatus};
        let status_known = |w: &str| {
            MessageStatus::parse(w).is_some()
                || LeadStatus::parse(w).is_some()
                || EventStatus::parse(w).is_some()
                || RunStatus::parse(w).is_some()
                || PluginStatus::parse(w).is_some()
                || DeliveryStatus::parse(w).is_some()
        };
        // `kind` of outbox rows (a message kind) or of event rows (a lead event's name).
        let kind_known = |w: &str| {
            crate::domain::MessageKind::parse(w).is_some()
                || ["captured", "updated", "purchased", "refunded", "clicked", "opened", "unsubscribed", "bounced"]
                    .contains(&w)
                || ["timer", "ignored"].contains(&w)
        };
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/store");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).expect("the store's sources") {
            let path = entry.expect("an entry").path();
            let source = std::fs::read_to_string(&path).expect("a source file");
            for (column, known) in [("status", &status_known as &dyn Fn(&str) -> bool), ("kind", &kind_known)] {
                for op in [" = '", " <> '", " IN ('"] {
                    let needle = format!("{column}{op}");
                    for (at, _) in source.match_indices(&needle) {
                        // Only a column, not a longer name ending in it (`last_status`).
                        let before = source[..at].chars().next_back().unwrap_or(' ');
                        let line = &source[source[..at].rfind('\n').map_or(0, |n| n + 1)..at];
                        if before.is_alphanumeric() || before == '_' || line.trim_start().starts_with("//") {
                            continue;
                        }
                        // One quoted word, or the words of an `IN (…)` list.
                        let rest = &source[at + needle.len()..];
                        let end = if op == " IN ('" { rest.find(')') } else { rest.find('\'') };
                        let list = &rest[..end.unwrap_or(rest.len())];
                        for word in list.split(',').map(|w| w.trim().trim_matches('\'')) {
                            if word.starts_with('$') || word.is_empty() {
                                continue;
                            }
                            assert!(known(word), "{}: {column} word {word:?} is no known word", path.display());
                            seen += 1;
                        }
                    }
                }
            }
        }
        assert!(seen > 20, "the scan found the SQL words ({seen})");
    }
}
