//! The engine on both databases: idempotent ingest, per-lead order, one binding per lead,
//! rollback and parking of failing invocations, durable timers across a restart, and two
//! replicas on one PostgreSQL without double handling.

use funnel_host::store::ingest::{IngestOutcome, PlatformEventType};

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
        let store = funnel_host::store::Store::connect(&url).await.expect("store");
        let h = Harness::new(store, T0).await;
        h.bind_test_guest("roundtrip", None, None).await;
        let lead = lead_id(&h.post("e1", PlatformEventType::CheckoutUpdated, "c1", None).await);
        h.settle().await;
        drop(h);
        // The process is gone for five hours; a new one starts on the same database.
        let store = funnel_host::store::Store::connect(&url).await.expect("store reopens");
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
    let a = Harness::new(funnel_host::store::Store::connect(&url).await.expect("a"), T0).await;
    let mut b = Harness::attach(funnel_host::store::Store::connect(&url).await.expect("b"), T0).await;
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
