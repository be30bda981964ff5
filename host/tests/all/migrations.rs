//! Versioned migrations. A database made by the last release before migrations (a real one,
//! `host/tests/fixtures/last-release-db.json`, loaded onto that release's schema, which is
//! migration 0001) upgrades in place when a `Database` connects, keeps its leads, runs, timers,
//! queued messages and pending events, and they carry on: timers fire, plugins run, messages go
//! out. A database migrated by a newer funnel is refused with an error saying so.

use funnel_host::domain::TimelineKind;
use funnel_host::store::Database;
use funnel_host::store::migrations::{MigrationError, latest_version};
use funnel_host::store::snapshots::MessageSnapshot;
use serde_json::Value;
use sqlx::Connection;

use crate::db::{Db, TestDb, on_both};
use crate::harness::{Harness, T0};

const FIXTURE: &str = include_str!("../fixtures/last-release-db.json");
const MINUTE: i64 = 60_000;

/// Tables in an order that inserts cleanly.
const TABLES: [&str; 13] = [
    "producers",
    "bindings",
    "leads",
    "runs",
    "events",
    "lead_queue",
    "timers",
    "outbox",
    "list_members",
    "suppressions",
    "timeline",
    "settings",
    "stats_daily",
];

/// Columns of integer type that may be NULL (a typed NULL matters on PostgreSQL).
const NULLABLE_INTEGERS: [&str; 5] = ["purchased_at", "sent_at", "clicked_at", "opened_at", "price_cents"];

/// A fresh database with the last release's schema, applied as that release did (no
/// migrations table), holding the fixture's rows.
async fn last_release_database(db: Db) -> TestDb {
    let test_db = TestDb::new(db).await;
    let url = &test_db.url;
    let create = if db == Db::Sqlite { format!("{url}?mode=rwc") } else { url.clone() };
    let mut conn = sqlx::AnyConnection::connect(&create).await.expect("connect");
    let schema = match db {
        Db::Sqlite => include_str!("../../migrations/sqlite/0001_initial.sql"),
        Db::Postgres => include_str!("../../migrations/postgres/0001_initial.sql"),
    };
    sqlx::raw_sql(schema).execute(&mut conn).await.expect("the last release's schema");
    let fixture: Value = serde_json::from_str(FIXTURE).expect("fixture");
    // Runs and bindings pin the bytes of the built-in that served them. Whether this build's
    // built-ins happen to be byte-identical to the last release's or not, runs must carry on:
    // pin bytes no build has, as after any change to a built-in.
    let older_build = "0".repeat(64);
    for table in TABLES {
        for row in fixture[table].as_array().into_iter().flatten() {
            let row = row.as_object().expect("row");
            let columns: Vec<&str> = row.keys().map(String::as_str).collect();
            let params: Vec<String> = (1..=columns.len()).map(|i| format!("${i}")).collect();
            let sql = format!("INSERT INTO {table} ({}) VALUES ({})", columns.join(", "), params.join(", "));
            let mut insert = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (column, value) in row {
                insert = match value {
                    Value::Null if NULLABLE_INTEGERS.contains(&column.as_str()) => insert.bind(None::<i64>),
                    Value::Null if column == "state" => insert.bind(None::<Vec<u8>>),
                    Value::Null => insert.bind(None::<String>),
                    Value::Number(n) => insert.bind(n.as_i64().expect("integer")),
                    Value::Object(blob) => insert.bind(hex::decode(blob["hex"].as_str().expect("hex")).expect("hex")),
                    Value::String(_) if column == "plugin_sha256" => insert.bind(older_build.clone()),
                    Value::String(s) => insert.bind(s.clone()),
                    other => panic!("{table}.{column}: unexpected {other}"),
                };
            }
            insert.execute(&mut conn).await.unwrap_or_else(|e| panic!("{db:?} {table}: {e}"));
        }
    }
    if db == Db::Postgres {
        // The rows came with their serial numbers; move the sequences past them.
        for table in ["events", "timeline"] {
            let sql =
                format!("SELECT setval(pg_get_serial_sequence('{table}', 'seq'), (SELECT MAX(seq) FROM {table}))");
            sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await.expect("setval");
        }
    }
    conn.close().await.expect("close");
    test_db
}

fn fixture_id(table: &str, column: &str, matching: (&str, &str)) -> String {
    let fixture: Value = serde_json::from_str(FIXTURE).expect("fixture");
    let row = fixture[table]
        .as_array()
        .expect("table")
        .iter()
        .find(|r| r[matching.0] == matching.1)
        .unwrap_or_else(|| panic!("{table} with {}={}", matching.0, matching.1));
    row[column].as_str().expect("string").to_string()
}

/// The lead of a fixture checkout.
fn lead(checkout: &str) -> String {
    fixture_id("leads", "id", ("checkout_id", checkout))
}

async fn messages(store: &Database, lead: &str) -> Vec<MessageSnapshot> {
    store.lead_snapshot(lead).await.expect("lead").messages
}

fn tags_and_statuses(messages: &[MessageSnapshot]) -> Vec<(String, String)> {
    messages.iter().map(|m| (m.tag.clone(), m.status.to_string())).collect()
}

async fn applied_versions(url: &str) -> Vec<i64> {
    let mut conn = sqlx::AnyConnection::connect(url).await.expect("connect");
    sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
        .fetch_all(&mut conn)
        .await
        .expect("migrations table")
}

on_both!(a_database_of_the_last_release_upgrades_and_carries_on, a_database_migrated_by_a_newer_funnel_is_refused);

async fn a_database_of_the_last_release_upgrades_and_carries_on(db: Db) {
    let test_db = last_release_database(db).await;
    let url = test_db.url.clone();
    let store = Database::connect(&url).await.unwrap_or_else(|e| panic!("{db:?}: the upgrade failed: {e}"));
    assert_eq!(applied_versions(&url).await, (1..=latest_version()).collect::<Vec<_>>(), "{db:?}");

    // Everything is still there.
    let producer = fixture_id("producers", "id", ("name", "test producer"));
    let leads = store.list_leads(&producer, None, 50).await.expect("leads");
    assert_eq!(leads.len(), 6, "{db:?}");
    assert_eq!(store.pending_timers().await.expect("timers"), 3, "{db:?}");
    assert_eq!(store.outbox_depth().await.expect("outbox"), 1, "{db:?}: dora's email-1, queued");
    assert_eq!(store.queued_leads().await.expect("queue"), 1, "{db:?}: caio's capture, pending");
    let (ana, bia, caio, dora, eva, fabio) =
        (lead("chk-a"), lead("chk-b"), lead("chk-c"), lead("chk-d"), lead("chk-e"), lead("chk-f"));
    let timelines_before = {
        let mut lengths = Vec::new();
        for l in [&eva, &fabio] {
            lengths.push(store.timeline(l, 0).await.expect("timeline").len());
        }
        lengths
    };

    // And it carries on, from where the last release left it (T0 + 42 min).
    let mut h = Harness::attach(store, T0 + 42 * MINUTE).await;
    h.producer = producer;
    h.settle().await;
    let sent = |tag: &str| (tag.to_string(), "sent".to_string());
    assert_eq!(
        tags_and_statuses(&messages(&h.engine.store, &dora).await),
        [sent("email-1")],
        "{db:?}: the queued email went out"
    );
    assert!(
        h.timeline(&caio).await.iter().any(|e| e.kind() == TimelineKind::TimerSet),
        "{db:?}: the pending capture was handled: {:?}",
        h.timeline(&caio).await
    );

    h.at(60 * MINUTE).await;
    h.at(6 * 60 * MINUTE).await;
    assert_eq!(
        tags_and_statuses(&messages(&h.engine.store, &ana).await),
        [sent("email-1"), sent("email-2")],
        "{db:?}: ana's pending timer fired"
    );
    assert_eq!(tags_and_statuses(&messages(&h.engine.store, &dora).await), [sent("email-1"), sent("email-2")]);
    assert_eq!(tags_and_statuses(&messages(&h.engine.store, &caio).await), [sent("no_payment")], "{db:?}");

    // Bia's day-long wait ends at 24h10m, then an hour; caio's at 25h, then an hour.
    for hours in [24, 25, 26, 27] {
        h.at(hours * 60 * MINUTE).await;
    }
    let inactive = h.engine.store.list_members(&h.producer, "inactive").await.expect("members");
    let emails: Vec<&str> = inactive.iter().map(|(email, _)| email.as_str()).collect();
    assert_eq!(emails, ["bia@example.com", "caio@example.com"], "{db:?}: both flows reached their end");
    assert_eq!(
        tags_and_statuses(&messages(&h.engine.store, &caio).await),
        [sent("no_payment"), sent("problems")],
        "{db:?}: caio did not click, so the second reminder"
    );
    assert_eq!(tags_and_statuses(&messages(&h.engine.store, &bia).await), [sent("no_payment")], "{db:?}: bia clicked");
    for (ended, before) in [&eva, &fabio].into_iter().zip(timelines_before) {
        assert_eq!(h.timeline(ended).await.len(), before, "{db:?}: an ended run stays ended");
    }
    for l in [&ana, &bia, &caio, &dora] {
        let timeline = h.timeline(l).await;
        assert!(
            !timeline.iter().any(|e| e.kind() == TimelineKind::Retry || e.kind() == TimelineKind::Failed),
            "{db:?}: no event failed: {timeline:?}"
        );
    }

    // Connecting again changes nothing.
    drop(h);
    Database::connect(&url).await.expect("reconnect");
    assert_eq!(applied_versions(&url).await, (1..=latest_version()).collect::<Vec<_>>(), "{db:?}");
}

async fn a_database_migrated_by_a_newer_funnel_is_refused(db: Db) {
    let test_db = TestDb::new(db).await;
    let url = test_db.url.clone();
    drop(Database::connect(&url).await.expect("a fresh database migrates"));
    let newer = latest_version() + 1;
    let mut conn = sqlx::AnyConnection::connect(&url).await.expect("connect");
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES ($1, 'from the future', TRUE, $2, 0)",
    )
    .bind(newer)
    .bind(vec![0u8; 48])
    .execute(&mut conn)
    .await
    .expect("insert");
    conn.close().await.expect("close");
    let refused = Database::connect(&url).await.expect_err("refused");
    let message = refused.to_string();
    match refused {
        funnel_host::store::StoreError::Migration(MigrationError::NewerDatabase { found, latest }) => {
            assert_eq!((found, latest), (newer, latest_version()), "{db:?}");
        }
        other => panic!("{db:?}: {other}"),
    }
    assert!(message.contains("newer funnel"), "{db:?}: {message}");
}
