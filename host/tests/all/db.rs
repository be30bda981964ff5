//! Databases for tests: a fresh SQLite file, or a fresh schema in the local PostgreSQL
//! (`FUNNEL_TEST_POSTGRES_URL`), removed when the test ends ([`TestDb`]'s `Drop`).
//!
//! A test that must hold on both backends is written once, `async fn name(db: Db)`, and
//! [`on_both!`] makes two tests of it, `name::sqlite` and `name::postgres`. PostgreSQL tests
//! are reported as *ignored* in the summary when PostgreSQL was not configured at build time
//! (the `funnel_postgres` cfg, set by `host/build.rs` when `FUNNEL_TEST_POSTGRES_URL` or
//! `FUNNEL_REQUIRE_POSTGRES` is set), so a skip is never silent; CI sets both, and a PostgreSQL
//! test that runs without a reachable database fails.

use funnel_host::store::Database;
use sqlx::{AnyConnection, Connection};

/// Which database a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Db {
    Sqlite,
    Postgres,
}

/// Make two tests of each `async fn name(db: Db)`: `name::sqlite` and `name::postgres`, the
/// latter ignored (visibly) when PostgreSQL is not configured.
macro_rules! on_both {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$name($crate::db::Db::Sqlite).await
            }

            #[tokio::test]
            #[cfg_attr(not(funnel_postgres), ignore = "PostgreSQL is not configured: set FUNNEL_TEST_POSTGRES_URL")]
            async fn postgres() {
                super::$name($crate::db::Db::Postgres).await
            }
        }
    )+};
}
pub(crate) use on_both;

/// A database of its own for one test; dropping it deletes it (the SQLite file's folder, or
/// the PostgreSQL schema with everything in it).
pub(crate) struct TestDb {
    pub kind: Db,
    /// Connects to this test's database only (on PostgreSQL, `search_path` is its schema).
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    /// Held only to be dropped: dropping it removes the directory.
    Dir(#[allow(dead_code)] tempfile::TempDir),
    Schema {
        base: String,
        name: String,
    },
}

/// The PostgreSQL server's URL, or a failure saying how to configure it.
fn postgres_base() -> String {
    std::env::var("FUNNEL_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!(
            "this test needs PostgreSQL: set FUNNEL_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test \
             (without it, and without FUNNEL_REQUIRE_POSTGRES, PostgreSQL tests are built as ignored)"
        )
    })
}

impl TestDb {
    /// A fresh, empty database of the given kind.
    pub(crate) async fn new(kind: Db) -> TestDb {
        sqlx::any::install_default_drivers();
        let id = uuid::Uuid::new_v4().simple();
        match kind {
            Db::Sqlite => {
                let dir = tempfile::Builder::new().prefix("funnel-test-").tempdir().expect("temp dir");
                let url = format!("sqlite:{}", dir.path().join("funnel.db").display());
                TestDb { kind, url, cleanup: Cleanup::Dir(dir) }
            }
            Db::Postgres => {
                let base = postgres_base();
                let name = format!("t_{id}");
                let mut conn = AnyConnection::connect(&base)
                    .await
                    .unwrap_or_else(|e| panic!("PostgreSQL at {base} is not reachable: {e}"));
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}")))
                    .execute(&mut conn)
                    .await
                    .expect("create schema");
                let sep = if base.contains('?') { '&' } else { '?' };
                let url = format!("{base}{sep}options=-c%20search_path%3D{name}");
                TestDb { kind, url, cleanup: Cleanup::Schema { base, name } }
            }
        }
    }

    /// A fresh database and a store on it. Keep the first value alive: dropping it deletes the
    /// database.
    pub(crate) async fn with_store(kind: Db) -> (TestDb, Database) {
        let db = TestDb::new(kind).await;
        let store = db.store().await;
        (db, store)
    }

    /// A store on this database (the schema applied); call again for a restart or a replica.
    pub(crate) async fn store(&self) -> Database {
        Database::connect(&self.url).await.unwrap_or_else(|e| panic!("{:?} store at {}: {e}", self.kind, self.url))
    }

    /// A plain connection, to read or change rows behind the store's back.
    pub(crate) async fn connect(&self) -> AnyConnection {
        AnyConnection::connect(&self.url).await.unwrap_or_else(|e| panic!("connect to {}: {e}", self.url))
    }

    /// The single integer `sql` answers (a `COUNT(*)`, say).
    pub(crate) async fn count(&self, sql: &str) -> i64 {
        let mut conn = self.connect().await;
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
            .fetch_one(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Run statements (DDL, triggers) on this database.
    pub(crate) async fn execute(&self, sql: &str) {
        let mut conn = self.connect().await;
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// Make the database refuse `op` (`INSERT`, `UPDATE`, `DELETE`) on `table` for rows where
    /// `condition` holds (SQL over `NEW`, or `OLD` for a delete), with a trigger: the
    /// statement fails, and so does the transaction around it, half-way through.
    pub(crate) async fn refuse(&self, table: &str, op: &str, condition: &str) {
        let ddl = match self.kind {
            Db::Sqlite => format!(
                "CREATE TRIGGER refuse_{table} BEFORE {op} ON {table} WHEN {condition}
                 BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
            ),
            Db::Postgres => format!(
                "CREATE FUNCTION refuse_{table}() RETURNS trigger LANGUAGE plpgsql AS $$
                 BEGIN IF {condition} THEN RAISE EXCEPTION 'refused by the test'; END IF;
                 RETURN COALESCE(NEW, OLD); END $$;
                 CREATE TRIGGER refuse_{table} BEFORE {op} ON {table} FOR EACH ROW EXECUTE FUNCTION refuse_{table}()"
            ),
        };
        self.execute(&ddl).await;
    }

    /// Undo [`TestDb::refuse`] on `table`.
    pub(crate) async fn allow(&self, table: &str) {
        let ddl = match self.kind {
            Db::Sqlite => format!("DROP TRIGGER refuse_{table}"),
            Db::Postgres => format!("DROP TRIGGER refuse_{table} ON {table}; DROP FUNCTION refuse_{table}()"),
        };
        self.execute(&ddl).await;
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::Dir(_) => {}
            Cleanup::Schema { base, name } => {
                // Drop runs inside the test's runtime, which cannot be blocked on: a thread of
                // its own with its own runtime. `lock_timeout`: a connection the test left in
                // a transaction (after a failure) must not hang the run; the schema stays then.
                let (base, schema) = (base.clone(), name.clone());
                let dropped = std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
                    runtime.block_on(async {
                        let mut conn = AnyConnection::connect(&base).await?;
                        let sql = format!("SET lock_timeout = '10s'; DROP SCHEMA IF EXISTS {schema} CASCADE");
                        sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await?;
                        Ok::<_, sqlx::Error>(())
                    })?;
                    Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
                })
                .join();
                if !matches!(dropped, Ok(Ok(()))) {
                    eprintln!("could not drop the test schema {name}: {dropped:?}");
                }
            }
        }
    }
}
