//! Databases for tests: a fresh SQLite file, or a fresh schema in the local PostgreSQL
//! (`FUNNEL_TEST_POSTGRES_URL`). When PostgreSQL is not configured the PostgreSQL half of a
//! test says it skipped, unless `FUNNEL_REQUIRE_POSTGRES` is set (CI sets it): then it fails.

use funnel_host::store::Database;

/// Which database a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// Both backends, for tests that must hold on each.
pub const BOTH: [Db; 2] = [Db::Sqlite, Db::Postgres];

/// A database URL of the given kind, fresh for this test, or `None` (skip) when PostgreSQL is
/// not configured and not required.
pub async fn fresh_url(db: Db) -> Option<String> {
    match db {
        Db::Sqlite => {
            let dir = std::env::temp_dir().join(format!("funnel-test-{}", uuid::Uuid::new_v4().simple()));
            std::fs::create_dir_all(&dir).expect("temp dir");
            Some(format!("sqlite:{}", dir.join("funnel.db").display()))
        }
        Db::Postgres => {
            let Ok(base) = std::env::var("FUNNEL_TEST_POSTGRES_URL") else {
                assert!(
                    std::env::var_os("FUNNEL_REQUIRE_POSTGRES").is_none(),
                    "FUNNEL_REQUIRE_POSTGRES is set but FUNNEL_TEST_POSTGRES_URL is not"
                );
                eprintln!(
                    "skipped the PostgreSQL half: set FUNNEL_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test"
                );
                return None;
            };
            let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
            sqlx::any::install_default_drivers();
            let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&base)
                .await
                .unwrap_or_else(|e| panic!("PostgreSQL at {base} is not reachable: {e}"));
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
                .execute(&mut conn)
                .await
                .expect("create schema");
            let sep = if base.contains('?') { '&' } else { '?' };
            Some(format!("{base}{sep}options=-c%20search_path%3D{schema}"))
        }
    }
}

/// A fresh store of the given kind (see [`fresh_url`]).
pub async fn fresh_store(db: Db) -> Option<Database> {
    let url = fresh_url(db).await?;
    Some(Database::connect(&url).await.unwrap_or_else(|e| panic!("{db:?} store at {url}: {e}")))
}
