//! Real `funnel serve` processes: two replicas on one PostgreSQL handle every event once, both
//! take a share, and the survivor carries on when the other is killed with SIGKILL (no
//! accepted event lost); a killed process restarts and fires its overdue timers, late.

use std::process::Command;
use std::time::Duration;

use funnel_host::domain::TimelineKind;
use funnel_host::store::Database;
use serde_json::json;

use crate::db::{Db, TestDb, on_both};
use crate::process::{event, spawn, wait_for};

/// How many of the producer's leads were handled (four-emails sets one timer per capture);
/// fails if one was handled twice.
async fn handled(store: &Database, producer: &str) -> usize {
    let mut handled = 0;
    for lead in store.list_leads(producer, None, 500).await.expect("leads") {
        let timeline = store.timeline(&lead.id, 0).await.expect("timeline");
        let timers = timeline.iter().filter(|e| e.kind() == TimelineKind::TimerSet).count();
        assert!(timers <= 1, "lead {} handled twice: {timeline:?}", lead.id);
        handled += timers;
    }
    handled
}

#[tokio::test]
#[cfg_attr(not(funnel_postgres), ignore = "PostgreSQL is not configured: set FUNNEL_TEST_POSTGRES_URL")]
async fn two_processes_share_the_work_and_survive_a_kill() {
    let test_db = TestDb::new(Db::Postgres).await;
    let dir = tempfile::tempdir().expect("dir");
    let a = spawn(&test_db.url, dir.path());
    let b = spawn(&test_db.url, dir.path());
    let producer = a.create_producer().await;
    let (id, key) = (producer["id"].as_str().expect("id"), producer["api_key"].as_str().expect("key"));
    let binding = json!({"plugin": "four-emails", "config": {"emails": [{"after": "20m", "subject": "Volte", "html": "<p>{{checkout_url}}</p>"}]}});
    assert_eq!(b.bind(key, &binding).await.0, 200);
    let store = test_db.store().await;

    // Both alive: events arrive at either, and each replica handles a share, once.
    let shared = 60;
    for i in 0..shared {
        let target = if i % 2 == 0 { &a } else { &b };
        assert_eq!(target.post_event(&event(i, id)).await.0, 202);
    }
    wait_for(Duration::from_secs(90), "the first events to be handled", || async {
        (handled(&store, id).await == shared).then_some(())
    })
    .await;
    let (by_a, by_b) = (a.metric("funnel_invocations_ok_total").await, b.metric("funnel_invocations_ok_total").await);
    assert!(by_a > 0 && by_b > 0, "both replicas handled events (a {by_a}, b {by_b})");
    assert_eq!(by_a + by_b, shared as i64, "each event once across the replicas (a {by_a}, b {by_b})");

    // Events accepted by a, which is killed at once (whatever it held is left to its lease),
    // and more to b: none is lost, none handled twice.
    let total = shared + 40;
    for i in shared..shared + 20 {
        assert_eq!(a.post_event(&event(i, id)).await.0, 202);
    }
    drop(a);
    for i in shared + 20..total {
        assert_eq!(b.post_event(&event(i, id)).await.0, 202);
    }
    wait_for(Duration::from_secs(90), "every event to be handled after the kill", || async {
        (handled(&store, id).await == total).then_some(())
    })
    .await;
    assert_eq!(store.list_leads(id, None, 500).await.expect("leads").len(), total);
    assert_eq!(store.pending_timers().await.expect("timers"), total as i64, "one timer per lead, none twice");
}

on_both!(a_killed_process_restarts_and_fires_overdue_timers_late);
async fn a_killed_process_restarts_and_fires_overdue_timers_late(db: Db) {
    let test_db = TestDb::new(db).await;
    let dir = tempfile::tempdir().expect("dir");
    let first = spawn(&test_db.url, dir.path());
    let producer = first.create_producer().await;
    let (id, key) = (producer["id"].as_str().expect("id"), producer["api_key"].as_str().expect("key"));
    let guest = funnel_host::guests::TEST_GUEST.to_vec();
    assert_eq!(first.send(reqwest::Method::POST, "/v1/plugins", key, guest).await.0, 201, "{db:?}");
    let binding = json!({"plugin": "test-guest", "config": {"mode": "roundtrip"}});
    let (status, bound) = first.bind(key, &binding).await;
    assert_eq!(status, 200, "{db:?}: {bound}");
    let (status, accepted) = first.post_event(&event(1, id)).await;
    assert_eq!(status, 202, "{db:?}: {accepted}");
    let lead = accepted["lead_id"].as_str().expect("lead").to_string();
    // The capture is handled: its 20-minute timer is stored. Then SIGKILL.
    let store = test_db.store().await;
    wait_for(Duration::from_secs(30), "the timer to be stored", || async {
        (store.pending_timers().await.expect("timers") == 1).then_some(())
    })
    .await;
    drop(first);
    // While no process runs, the timer's time passes: it is due 5 s before the restart.
    let now_ms = chrono::Utc::now().timestamp_millis();
    test_db.execute(&format!("UPDATE timers SET due_at = {}", now_ms - 5_000)).await;
    let _second = spawn(&test_db.url, dir.path());
    let late = wait_for(Duration::from_secs(30), "the overdue timer to fire after the restart", || async {
        let timeline = store.timeline(&lead, 0).await.expect("timeline");
        timeline.iter().find_map(|e| {
            let detail = e.detail();
            let rest = detail.split("event=timer:rt-timer:").nth(1)?;
            rest.split_whitespace().next()?.parse::<u64>().ok()
        })
    })
    .await;
    assert!(late >= 5_000, "{db:?}: fired late, and the plugin was told: {late} ms");
    assert_eq!(store.pending_timers().await.expect("timers"), 1, "{db:?}: fired once, and the plugin set the next");
}

#[tokio::test]
async fn plugin_push_uploads_to_a_running_server() {
    let test_db = TestDb::new(Db::Sqlite).await;
    let dir = tempfile::tempdir().expect("dir");
    let server = spawn(&test_db.url, dir.path());
    let producer = server.create_producer().await;
    let key = producer["api_key"].as_str().expect("key").to_string();
    let wasm = dir.path().join("guest.wasm");
    std::fs::write(&wasm, funnel_host::guests::TEST_GUEST).expect("write");
    let push = |key: &str| {
        Command::new(env!("CARGO_BIN_EXE_funnel"))
            .args(["plugin", "push", wasm.to_str().unwrap_or_default(), "--server", &server.base, "--key", key])
            .output()
            .expect("funnel runs")
    };
    let out = push(&key);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let uploaded: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(uploaded["name"], "test-guest");
    let refused = push("fk_wrong");
    assert_eq!(refused.status.code(), Some(2));
    let err = String::from_utf8_lossy(&refused.stderr).to_string();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("401") && err.contains("unknown API key"), "{err}");
}
