//! Versioned schema migrations: one folder per dialect, `host/migrations/sqlite/` and
//! `host/migrations/postgres/`, the same numbered files in both, applied by sqlx's
//! [`Migrator`] when a [`Database`](super::Database) connects — in order, each in its own
//! transaction, under a lock (PostgreSQL: an advisory lock, so replicas starting together
//! migrate once; SQLite: the write lock of `BEGIN IMMEDIATE`). Each applied migration is
//! recorded with its checksum in `_sqlx_migrations`.
//!
//! A database that has a migration this binary does not know was upgraded by a newer funnel:
//! it is refused ([`MigrationError::NewerDatabase`]) rather than run with a schema this code
//! does not understand. A database made before migrations existed (the release whose schema is
//! `0001_initial`, applied with `CREATE TABLE IF NOT EXISTS` at every start) upgrades in place:
//! 0001 changes nothing there and is recorded, and the later migrations run on its data.
//!
//! ## Adding a migration
//! 1. Write `host/migrations/sqlite/NNNN_what_it_does.sql` and
//!    `host/migrations/postgres/NNNN_what_it_does.sql`: the next number, the same name in
//!    both folders, each in its dialect (SQLite `INTEGER`/`BLOB`, PostgreSQL `BIGINT`/`BYTEA`).
//! 2. Add one `migration!(NNNN, "NNNN_what_it_does")` line to [`MIGRATIONS`].
//! 3. Never edit a migration once it is on `main`: its checksum is in every database it ran
//!    on, and a changed file is refused at start ([`MigrationError::Edited`]). Fix forward with
//!    a new one.
//!
//! The test `every_migration_file_is_listed` fails when a file is missing from the list or
//! from one of the two folders.

use std::borrow::Cow;

use sqlx::migrate::{MigrateError, Migration, MigrationType, Migrator};
use sqlx::{AnyPool, Connection, SqlSafeStr};

use super::Backend;

/// One migration, in both dialects.
pub(super) struct Step {
    version: i64,
    /// The file name without `.sql`, the same in both folders.
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

macro_rules! migration {
    ($version:literal, $name:literal) => {
        Step {
            version: $version,
            name: $name,
            sqlite: include_str!(concat!("../../migrations/sqlite/", $name, ".sql")),
            postgres: include_str!(concat!("../../migrations/postgres/", $name, ".sql")),
        }
    };
}

/// Every migration, oldest first.
pub(super) const MIGRATIONS: &[Step] = &[
    migration!(1, "0001_initial"),
    migration!(2, "0002_console_sessions"),
    migration!(3, "0003_outbox_claims"),
    migration!(4, "0004_lead_queue_producer"),
    migration!(5, "0005_platform_event_ids"),
    migration!(6, "0006_normalized_emails"),
    migration!(7, "0007_plugin_status"),
    migration!(8, "0008_webhooks"),
    migration!(9, "0009_send_windows_and_contact_caps"),
    migration!(10, "0010_unique_coupons_and_splits"),
];

/// The newest schema version this binary knows.
pub fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// Why the schema could not be brought up to date.
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error(
        "the database has schema version {found}, newer than this funnel knows ({latest}): it was upgraded by a newer funnel; run that version (or newer) against it"
    )]
    NewerDatabase { found: i64, latest: i64 },
    #[error(
        "migration {0} in the database differs from the one in this funnel (a released migration was edited); restore the file as released"
    )]
    Edited(i64),
    #[error("migration {0} failed part-way at an earlier start; restore the database from a backup, then start again")]
    Dirty(i64),
    #[error("migrating the schema failed: {0}")]
    Failed(#[from] MigrateError),
}

fn migrator(backend: Backend) -> Migrator {
    let migrations = MIGRATIONS
        .iter()
        .map(|m| {
            let sql = match backend {
                Backend::Sqlite => m.sqlite,
                Backend::Postgres => m.postgres,
            };
            Migration::new(m.version, Cow::Borrowed(m.name), MigrationType::Simple, sql.into_sql_str(), false)
        })
        .collect();
    Migrator::with_migrations(migrations)
}

/// Bring the schema of `pool` up to date (see the module doc).
pub(super) async fn run(pool: &AnyPool, backend: Backend) -> Result<(), MigrationError> {
    let migrator = migrator(backend);
    let result = match backend {
        // `pg_advisory_lock` (sqlx's lock) serializes replicas starting at once.
        Backend::Postgres => migrator.run(pool).await,
        // sqlx takes no lock on SQLite: hold the write lock for the whole run instead, so a
        // second process starting on the same file waits and then finds the work done. The
        // migrations' own transactions nest inside as savepoints.
        Backend::Sqlite => {
            let mut conn = pool.acquire().await.map_err(MigrateError::from)?;
            let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.map_err(MigrateError::from)?;
            match migrator.run_direct(None, &mut *tx, false).await {
                Ok(()) => tx.commit().await.map_err(MigrateError::from),
                Err(e) => Err(e),
            }
        }
    };
    result.map_err(|e| match e {
        MigrateError::VersionMissing(found) => MigrationError::NewerDatabase { found, latest: latest_version() },
        MigrateError::VersionMismatch(version) => MigrationError::Edited(version),
        MigrateError::Dirty(version) => MigrationError::Dirty(version),
        other => MigrationError::Failed(other),
    })
}

#[cfg(test)]
mod tests {
    use super::MIGRATIONS;

    fn names(dialect: &str) -> Vec<String> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations").join(dialect);
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .flatten()
            .filter_map(|f| f.file_name().to_str()?.strip_suffix(".sql").map(str::to_string))
            .collect();
        names.sort();
        names
    }

    #[test]
    fn every_migration_file_is_listed() {
        let listed: Vec<String> = MIGRATIONS.iter().map(|m| m.name.to_string()).collect();
        assert_eq!(names("sqlite"), listed, "host/migrations/sqlite/ and MIGRATIONS");
        assert_eq!(names("postgres"), listed, "host/migrations/postgres/ and MIGRATIONS");
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i64 + 1, "{}: versions count up from 1", m.name);
            assert!(m.name.starts_with(&format!("{:04}_", m.version)), "{}: named NNNN_what", m.name);
        }
    }
}
