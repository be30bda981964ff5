//! The engine on both databases: idempotent ingest (batches too), per-lead order, one binding
//! per lead, rollback and parking of failing invocations, durable timers across a restart, the
//! dispatch queue (finished work leaves it, leases run out, no event is stranded by a race),
//! and two replicas on one PostgreSQL without double handling.

use funnel_host::domain::{Checkout, PlatformEvent, PlatformEventType};
use funnel_host::store::Database;
use funnel_host::store::ingest::IngestOutcome;
use funnel_host::store::queue::LeadAfter;

use crate::db::{BOTH, Db, fresh_store, fresh_url};
use crate::harness::{Harness, T0, lead_id, logs_starting};

#[tokio::test]
async fn duplicate_event_ids_change_nothing() {
    for db in BOTH {
        let Some(store) = fresh_store(db).await else { continue };
        let h = Harness::new(store, T0).await;
        h.bind_test_guest("roundtrip", None, None).await;
        let first = h.post("evt-1", PlatformEventType::CheckoutUpdated, "c1", None).await;
        let again = h.post("evt-1", PlatformEventType::CheckoutUpdated, "c1", None).await;
        assert!(matches!(first, IngestOutcome::Accepted { .. }), "{db:?}");
        assert_eq!(again, IngestOutcome::Duplicate { lead_id: Some(lead_id(&first)) }, "{db:?}");
        h.settle().await;
        let events = logs_starting(&h.timeline(&lead_id(&first)).await, "event=");
        assert_eq!(events.len(), 1, "{db:?}: the duplicate was not handled: {events:?}");
    }
}

#[tokio::test]
async fn events_of_one_lead_are_handled_in_order() {
    for db in BOTH {
        let Some(store) = fresh_store(db).await else { continue };
        let h = Harness::new(store, T0).await;
        h.bind_test_guest("roundtrip", None, None).await;
        let lead = lead_id(&h.post("e1", PlatformEventType::CheckoutUpdated, "c1", None).await);
        h.post("e2", PlatformEventType::CheckoutUpdated, "c1", None).await;
        h.post("e3", PlatformEventType::OrderPaid, "c1", None).await;
        h.post("e4", PlatformEventType::OrderRefunded, "c1", None).await;
        h.settle().await;
        let events: Vec<String> = logs_starting(&h.timeline(&lead).await, "event=")
            .iter()
            .map(|l| l.split_whitespace().next().unwrap_or("").to_string())
            .collect();
        assert_eq!(
            events,
            ["event=captured", "event=Event::Updated", "event=purchased:Some(9700)", "event=Event::Refunded"],
            "{db:?}"
        );
    }
}

#[tokio::test]
async fn a_lead_keeps_the_most_specific_binding_of_its_capture() {
    for db in BOTH {
        let Some(store) = fresh_store(db).await else { continue };
        let h = Harness::new(store, T0).await;
        h.bind_test_guest("count", None, None).await;
        h.bind_test_guest("roundtrip", Some("p1"), None).await;
        let specific = lead_id(&h.post("a", PlatformEventType::CheckoutUpdated, "c1", Some("p1")).await);
        let general = lead_id(&h.post("b", PlatformEventType::CheckoutUpdated, "c2", Some("p2")).await);
        h.settle().await;
        assert_eq!(logs_starting(&h.timeline(&specific).await, "event=").len(), 1, "{db:?}: product binding served p1");
        assert!(logs_starting(&h.timeline(&general).await, "event=").is_empty(), "{db:?}: producer-wide served p2");
        // Rebinding the producer-wide scope does not move a lead that is already served.
        h.bind_test_guest("roundtrip", None, None).await;
        h.post("b2", PlatformEventType::CheckoutUpdated, "c2", Some("p2")).await;
        h.settle().await;
        assert!(logs_starting(&h.timeline(&general).await, "event=").is_empty(), "{db:?}: one binding for life");
    }
}

#[tokio::test]
async fn a_failing_plugin_commits_nothing_is_retried_then_parked() {
    for db in BOTH {
        let Some(store) = fresh_store(db).await else { continue };
        let h = Harness::new(store, T0).await;
        h.bind_test_guest("fail", None, None).await;
        let lead = lead_id(&h.post("e1", PlatformEventType::CheckoutUpdated, "c1", None).await);
        h.settle().await;
        // Backoff 1 s, 2 s, 4 s, 8 s: by 20 s the fifth attempt parked it.
        for s in 1..=20 {
            h.at(s * 1000).await;
        }
        let timeline = h.timeline(&lead).await;
        let kinds: Vec<&str> = timeline.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(kinds, ["retry", "retry", "retry", "retry", "failed"], "{db:?}: {timeline:#?}");
        assert!(timeline[4].detail.contains("failing on purpose"), "{db:?}: the reason is visible");
        assert_eq!(
            h.engine.store.outbox_depth().await.expect("depth"),
            0,
            "{db:?}: the recorded email was rolled back"
        );
    }
}

#[tokio::test]
async fn overdue_timers_fire_late_after_a_restart() {
    for db in BOTH {
        let Some(url) = fresh_url(db).await else { continue };
        let store = funnel_host::store::Database::connect(&url).await.expect("store");
        let h = Harness::new(store, T0).await;
        h.bind_test_guest("roundtrip", None, None).await;
        let lead = lead_id(&h.post("e1", PlatformEventType::CheckoutUpdated, "c1", None).await);
        h.settle().await;
        drop(h);
        // The process is gone for five hours; a new one starts on the same database.
        let store = funnel_host::store::Database::connect(&url).await.expect("store reopens");
        let restarted = Harness::attach(store, T0 + 5 * 3_600_000).await;
        restarted.settle().await;
        let timers = logs_starting(&restarted.timeline(&lead).await, "event=timer:");
        assert_eq!(timers.len(), 1, "{db:?}: {timers:?}");
        let late_ms = (5 * 3_600_000 - 20 * 60_000).to_string();
        assert!(timers[0].starts_with(&format!("event=timer:rt-timer:{late_ms} ")), "{db:?}: {}", timers[0]);
    }
}

#[tokio::test]
async fn two_replicas_on_postgres_never_handle_an_event_twice() {
    let Some(url) = fresh_url(Db::Postgres).await else { return };
    let a = Harness::new(funnel_host::store::Database::connect(&url).await.expect("a"), T0).await;
    let mut b = Harness::attach(funnel_host::store::Database::connect(&url).await.expect("b"), T0).await;
    b.producer = a.producer.clone();
    a.bind_test_guest("roundtrip", None, None).await;
    let mut leads = Vec::new();
    for i in 0..40 {
        leads
            .push(lead_id(&a.post(&format!("e{i}"), PlatformEventType::CheckoutUpdated, &format!("c{i}"), None).await));
        a.post(&format!("u{i}"), PlatformEventType::CheckoutUpdated, &format!("c{i}"), None).await;
    }
    let (ra, rb) = tokio::join!(a.engine.dispatcher.drain(), b.engine.dispatcher.drain());
    let (na, nb) = (ra.expect("a drains"), rb.expect("b drains"));
    assert_eq!(na + nb, 80, "every event handled once across the replicas (a {na}, b {nb})");
    for lead in &leads {
        let handled = logs_starting(&a.timeline(lead).await, "event=");
        assert_eq!(handled.len(), 2, "lead {lead}: {handled:?}");
    }
}

#[tokio::test]
async fn retention_purges_handled_events_only() {
    for db in BOTH {
        let Some(store) = fresh_store(db).await else { continue };
        let h = Harness::new(store, T0).await;
        h.bind_test_guest("fail", Some("failing"), None).await;
        h.bind_test_guest("count", None, None).await;
        h.post("done-1", PlatformEventType::CheckoutUpdated, "c1", None).await;
        h.post("pending-1", PlatformEventType::CheckoutUpdated, "c2", Some("failing")).await;
        h.settle().await;
        let purged = h.engine.store.purge_events(T0 + 1).await.expect("purge");
        assert_eq!(purged, 1, "{db:?}: the handled event goes, the one awaiting a retry stays");
        // The purged id is forgotten, but the lead and its run are intact.
        assert!(
            h.engine
                .store
                .next_pending_event(&lead_id(
                    &h.post("x", PlatformEventType::CheckoutUpdated, "c2", Some("failing")).await
                ))
                .await
                .expect("pending")
                .is_some()
        );
    }
}

#[tokio::test]
async fn finished_work_leaves_the_queue() {
    for db in BOTH {
        let Some(store) = fresh_store(db).await else { continue };
        let h = Harness::new(store, T0).await;
        h.bind_test_guest("roundtrip", None, None).await;
        let lead = lead_id(&h.post("e1", PlatformEventType::CheckoutUpdated, "c1", None).await);
        h.post("e2", PlatformEventType::CheckoutUpdated, "c1", None).await;
        h.post("e3", PlatformEventType::CheckoutUpdated, "c2", None).await;
        let store = &h.engine.store;
        assert_eq!(store.queued_leads().await.expect("queue"), 2, "{db:?}: one row per lead with work");
        h.settle().await;
        assert_eq!(store.queued_leads().await.expect("queue"), 0, "{db:?}: handled leads left the queue");
        let claimed = store.claim_leads("another", h.clock_now(), 30_000, 100).await.expect("claim");
        assert!(claimed.is_empty(), "{db:?}: a claim after completion sees no done work: {claimed:?}");
        // A new event of a lead that left the queue brings it back, and is handled.
        h.post("e4", PlatformEventType::CheckoutUpdated, "c1", None).await;
        assert_eq!(store.queued_leads().await.expect("queue"), 1, "{db:?}");
        h.settle().await;
        assert_eq!(store.queued_leads().await.expect("queue"), 0, "{db:?}");
        assert_eq!(logs_starting(&h.timeline(&lead).await, "event=").len(), 3, "{db:?}");
    }
}

#[tokio::test]
async fn a_dead_workers_lead_is_taken_over_when_its_lease_runs_out() {
    for db in BOTH {
        let Some(store) = fresh_store(db).await else { continue };
        let h = Harness::new(store, T0).await;
        h.bind_test_guest("roundtrip", None, None).await;
        let lead = lead_id(&h.post("e1", PlatformEventType::CheckoutUpdated, "c1", None).await);
        let store = &h.engine.store;
        assert_eq!(
            store.claim_leads("dead", T0, 30_000, 10).await.expect("claim"),
            std::slice::from_ref(&lead),
            "{db:?}"
        );
        let stale = store.next_pending_event(&lead).await.expect("event").expect("pending");
        h.settle().await;
        assert!(logs_starting(&h.timeline(&lead).await, "event=").is_empty(), "{db:?}: held by the dead worker");
        h.at(30_000).await;
        assert_eq!(logs_starting(&h.timeline(&lead).await, "event=").len(), 1, "{db:?}: taken over at lease end");
        // The dead worker comes back: its commit writes nothing.
        let snapshot = store.lead_snapshot(&lead).await.expect("lead");
        let late = store.commit_invocation("dead", &stale, &snapshot, Some(Vec::new()), &[], T0).await.expect("commit");
        assert_eq!(late, LeadAfter::Lost, "{db:?}");
        assert_eq!(logs_starting(&h.timeline(&lead).await, "event=").len(), 1, "{db:?}: handled once");
    }
}

#[tokio::test]
async fn events_arriving_while_their_lead_is_handled_are_never_stranded() {
    for db in BOTH {
        let Some(url) = fresh_url(db).await else { continue };
        let a = Harness::new(Database::connect(&url).await.expect("a"), T0).await;
        a.bind_test_guest("roundtrip", None, None).await;
        // On PostgreSQL a second replica drains too; SQLite has one writer, one engine.
        let b = match db {
            Db::Postgres => Some(Harness::attach(Database::connect(&url).await.expect("b"), T0).await),
            Db::Sqlite => None,
        };
        let (leads, rounds) = (4, 15);
        let mut ids = Vec::new();
        for c in 0..leads {
            ids.push(lead_id(
                &a.post(&format!("e{c}-0"), PlatformEventType::CheckoutUpdated, &format!("c{c}"), None).await,
            ));
        }
        let posted = std::sync::atomic::AtomicBool::new(false);
        let post = async {
            for round in 1..rounds {
                // Each lead's new event first, then repeats of old ones: the batch's transaction
                // stays open after queueing the leads, while the dispatchers finish their last
                // events and decide whether they are idle.
                let mut batch: Vec<_> =
                    (0..leads).map(|c| updated(&a.producer, &format!("e{c}-{round}"), &format!("c{c}"))).collect();
                batch.extend((0..40).map(|i| updated(&a.producer, &format!("e{}-0", i % leads), "c0")));
                a.engine.store.ingest_batch(&batch, T0).await.expect("batch");
                tokio::task::yield_now().await;
            }
            posted.store(true, std::sync::atomic::Ordering::SeqCst);
        };
        tokio::join!(post, drain_until(Some(&a), &posted), drain_until(b.as_ref(), &posted));
        // Whatever the interleaving, every event is still queued: one more pass handles it all.
        a.settle().await;
        assert_eq!(a.engine.store.queued_leads().await.expect("queue"), 0, "{db:?}");
        for lead in &ids {
            assert_eq!(logs_starting(&a.timeline(lead).await, "event=").len(), rounds, "{db:?}: lead {lead}");
        }
    }
}

#[tokio::test]
async fn an_event_queued_while_its_lead_settles_is_not_stranded() {
    let Some(url) = fresh_url(Db::Postgres).await else { return };
    let h = Harness::new(Database::connect(&url).await.expect("store"), T0).await;
    h.bind_test_guest("roundtrip", None, None).await;
    let lead = lead_id(&h.post("e1", PlatformEventType::CheckoutUpdated, "c1", None).await);
    h.post("x1", PlatformEventType::CheckoutUpdated, "cx", None).await;
    let store = &h.engine.store;
    assert_eq!(store.claim_leads("w", T0, 30_000, 10).await.expect("claim").len(), 2);
    let e1 = store.next_pending_event(&lead).await.expect("event").expect("pending");
    let snapshot = store.lead_snapshot(&lead).await.expect("lead");
    // Another connection locks lead cx, so a batch (c1's new event, then one of cx) stops
    // half-way: c1's event is queued, its transaction still open.
    let mut blocker = <sqlx::AnyConnection as sqlx::Connection>::connect(&url).await.expect("connect");
    let blocker_pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(&mut blocker).await.expect("pid");
    sqlx::query("BEGIN").execute(&mut blocker).await.expect("begin");
    sqlx::query("SELECT id FROM leads WHERE checkout_id = 'cx' FOR UPDATE").execute(&mut blocker).await.expect("lock");
    let batch = [updated(&h.producer, "e2", "c1"), updated(&h.producer, "x2", "cx")];
    let ingest = store.ingest_batch(&batch, T0);
    // Meanwhile the worker settles e1, c1's last event as far as it can see.
    let settle = async {
        wait_until_blocked_by(&url, blocker_pid).await;
        let state = br#"{"events": 1}"#.to_vec();
        store.commit_invocation("w", &e1, &snapshot, Some(state), &[], T0).await
    };
    let unblock = async {
        wait_until_blocked_by(&url, blocker_pid).await;
        // Give the commit time to reach the lead's queue row, then let the batch finish.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        sqlx::query("ROLLBACK").execute(&mut blocker).await.expect("rollback");
    };
    let (ingested, settled, ()) = tokio::join!(ingest, settle, unblock);
    ingested.expect("batch");
    assert_eq!(settled.expect("commit"), LeadAfter::Busy, "the commit waited for the batch and saw e2");
    // The worker stops there; its leases run out and the leads are handled.
    h.at(30_000).await;
    assert!(store.next_pending_event(&lead).await.expect("event").is_none(), "e2 was handled, not stranded");
    assert_eq!(logs_starting(&h.timeline(&lead).await, "event=").len(), 1, "e2 reached the plugin");
    assert_eq!(store.queued_leads().await.expect("queue"), 0);
}

/// Wait until some PostgreSQL session waits for a lock held by `pid`.
async fn wait_until_blocked_by(url: &str, pid: i32) {
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(url).await.expect("connect");
    for _ in 0..500 {
        let blocked: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))")
                .bind(pid)
                .fetch_one(&mut conn)
                .await
                .expect("blocked");
        if blocked > 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("nothing waited for the blocker");
}

/// A `checkout.updated` event of a checkout, with an email.
fn updated(producer: &str, id: &str, checkout: &str) -> PlatformEvent {
    PlatformEvent {
        id: id.into(),
        kind: PlatformEventType::CheckoutUpdated,
        occurred_at_ms: T0,
        producer_id: producer.into(),
        checkout: Checkout {
            id: checkout.into(),
            email: Some(format!("{checkout}@example.com")),
            ..Checkout::default()
        },
    }
}

/// Drain over and over until `done` is set.
async fn drain_until(h: Option<&Harness>, done: &std::sync::atomic::AtomicBool) {
    let Some(h) = h else { return };
    while !done.load(std::sync::atomic::Ordering::SeqCst) {
        h.engine.dispatcher.drain().await.expect("drain");
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn concurrent_batches_of_the_same_events_store_each_once() {
    let Some(store) = fresh_store(Db::Postgres).await else { return };
    let h = Harness::new(store, T0).await;
    let events: Vec<PlatformEvent> =
        (0..300).map(|i| updated(&h.producer, &format!("e{i}"), &format!("c{i}"))).collect();
    let store = &h.engine.store;
    let (x, y) = tokio::join!(store.ingest_batch(&events, T0), store.ingest_batch(&events, T0));
    let (x, y) = (x.expect("first batch"), y.expect("second batch"));
    for (i, pair) in x.iter().zip(&y).enumerate() {
        let accepted = [pair.0, pair.1].iter().filter(|o| matches!(o, IngestOutcome::Accepted { .. })).count();
        assert_eq!(accepted, 1, "event {i}: {pair:?}");
    }
}
