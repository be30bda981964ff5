//! The engine on both databases: idempotent ingest (batches too), per-lead order, one binding
//! per lead, rollback and parking of failing invocations, durable timers across a restart, the
//! dispatch queue (finished work leaves it, leases run out, no event is stranded by a race),
//! and two replicas on one PostgreSQL without double handling.

use funnel_host::domain::TimelineKind;
use funnel_host::domain::{Checkout, PlatformEvent, PlatformEventType};
use funnel_host::store::ingest::IngestOutcome;
use funnel_host::store::queue::LeadAfter;

use crate::db::{Db, TestDb, on_both};
use crate::harness::{Harness, T0, lead_id, logs_starting};

on_both!(duplicate_event_ids_change_nothing);
async fn duplicate_event_ids_change_nothing(db: Db) {
    let (_db, h) = Harness::with_guest(db, "roundtrip").await;
    let first = h.post("evt-1", PlatformEventType::CheckoutUpdated, "c1", None).await;
    let again = h.post("evt-1", PlatformEventType::CheckoutUpdated, "c1", None).await;
    assert!(matches!(first, IngestOutcome::Accepted { .. }), "{db:?}");
    assert_eq!(again, IngestOutcome::Duplicate { lead_id: Some(lead_id(&first)) }, "{db:?}");
    h.settle().await;
    let events = logs_starting(&h.timeline(&lead_id(&first)).await, "event=");
    assert_eq!(events.len(), 1, "{db:?}: the duplicate was not handled: {events:?}");
}

on_both!(events_of_one_lead_are_handled_in_order);
async fn events_of_one_lead_are_handled_in_order(db: Db) {
    let (_db, h) = Harness::with_guest(db, "roundtrip").await;
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

/// The `event=<kind>` lines the flaky-first-second guest logged for a lead, in order.
async fn kinds_logged(h: &Harness, lead: &str) -> Vec<String> {
    logs_starting(&h.timeline(lead).await, "event=").into_iter().map(|l| l["event=".len()..].to_string()).collect()
}

/// Post the same four events for each of `leads` checkouts: captured, updated, paid, refunded.
async fn post_four_each(h: &Harness, leads: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for c in 0..leads {
        let checkout = format!("c{c}");
        ids.push(lead_id(&h.post(&format!("{checkout}-1"), PlatformEventType::CheckoutUpdated, &checkout, None).await));
        h.post(&format!("{checkout}-2"), PlatformEventType::CheckoutUpdated, &checkout, None).await;
        h.post(&format!("{checkout}-3"), PlatformEventType::OrderPaid, &checkout, None).await;
        h.post(&format!("{checkout}-4"), PlatformEventType::OrderRefunded, &checkout, None).await;
    }
    ids
}

const IN_ORDER: [&str; 4] = ["captured", "updated", "purchased", "refunded"];

on_both!(later_events_wait_behind_an_event_awaiting_its_retry);
async fn later_events_wait_behind_an_event_awaiting_its_retry(db: Db) {
    let (_db, store) = TestDb::with_store(db).await;
    let h = Harness::new(store, T0).await;
    // The guest fails during the lead's first second: the capture waits 1 s for its retry.
    h.bind_test_guest("flaky-first-second", None, None).await;
    let lead = post_four_each(&h, 1).await.remove(0);
    h.settle().await;
    h.at(999).await;
    assert!(kinds_logged(&h, &lead).await.is_empty(), "{db:?}: nothing overtook the waiting capture");
    let waiting = h.engine.store.next_pending_event(&lead).await.expect("event").expect("pending");
    assert_eq!((waiting.attempts, waiting.next_attempt_at), (1, T0 + 1000), "{db:?}: the capture is first in line");
    h.at(1000).await;
    assert_eq!(kinds_logged(&h, &lead).await, IN_ORDER, "{db:?}: the retry, then the rest, in order");
}

#[tokio::test]
#[cfg_attr(not(funnel_postgres), ignore = "PostgreSQL is not configured: set FUNNEL_TEST_POSTGRES_URL")]
async fn two_replicas_keep_each_leads_order_behind_a_waiting_retry() {
    let test_db = TestDb::new(Db::Postgres).await;
    let a = Harness::new(test_db.store().await, T0).await;
    let mut b = Harness::attach(test_db.store().await, T0).await;
    b.producer = a.producer.clone();
    a.bind_test_guest("flaky-first-second", None, None).await;
    let leads = post_four_each(&a, 20).await;
    let (ra, rb) = tokio::join!(a.engine.dispatcher.drain(), b.engine.dispatcher.drain());
    assert_eq!((ra.expect("a drains"), rb.expect("b drains")), (0, 0), "every capture failed, nothing else ran");
    for lead in &leads {
        assert!(kinds_logged(&a, lead).await.is_empty(), "lead {lead}: nothing overtook the waiting capture");
    }
    a.clock.set(T0 + 1000);
    b.clock.set(T0 + 1000);
    let (ra, rb) = tokio::join!(a.engine.dispatcher.drain(), b.engine.dispatcher.drain());
    let (na, nb) = (ra.expect("a drains"), rb.expect("b drains"));
    assert_eq!(na + nb, 80, "each event once across the replicas (a {na}, b {nb})");
    for lead in &leads {
        assert_eq!(kinds_logged(&a, lead).await, IN_ORDER, "lead {lead}: in order, whichever replica");
    }
}

on_both!(an_invocation_commits_all_of_its_writes_or_none);
async fn an_invocation_commits_all_of_its_writes_or_none(db: Db) {
    let test_db = TestDb::new(db).await;
    let h = Harness::new(test_db.store().await, T0).await;
    h.bind_test_guest("roundtrip", None, None).await;
    // The database refuses the run's new state, the last write of the commit: the outbox rows,
    // timers, list changes and timeline entries written before it in the transaction must go.
    test_db.refuse("runs", "UPDATE", "NEW.state IS NOT NULL").await;
    let lead = lead_id(&h.post("e1", PlatformEventType::CheckoutUpdated, "c1", None).await);
    h.engine.dispatcher.drain().await.expect("the failed commit fails its event, not the step");
    let rows = |table: &str| format!("SELECT COUNT(*) FROM {table} WHERE lead_id = '{lead}'");
    for table in ["outbox", "timers", "list_members"] {
        assert_eq!(test_db.count(&rows(table)).await, 0, "{db:?}: nothing in {table}");
    }
    let timeline = format!("SELECT COUNT(*) FROM timeline WHERE lead_id = '{lead}' AND kind <> 'retry'");
    assert_eq!(test_db.count(&timeline).await, 0, "{db:?}: in the timeline, only the failed attempt");
    let run = h.engine.store.run_snapshot(&lead).await.expect("run").expect("a run");
    assert_eq!(run.state, None, "{db:?}: no state");
    let event = h.engine.store.next_pending_event(&lead).await.expect("event").expect("still pending");
    assert_eq!(event.attempts, 1, "{db:?}: a failed attempt, retried with backoff");
    // Once the database takes writes again, the retry handles the event once, all writes together.
    test_db.allow("runs").await;
    h.at(1_000).await;
    let counts = [
        test_db.count(&rows("outbox")).await,
        test_db.count(&rows("timers")).await,
        test_db.count(&rows("list_members")).await,
    ];
    assert_eq!(counts, [2, 1, 1], "{db:?}: an email and an SMS, the 20-minute timer, list vip");
    let run = h.engine.store.run_snapshot(&lead).await.expect("run").expect("a run");
    assert_eq!(run.state.as_deref(), Some(br#"{"events":1}"#.as_slice()), "{db:?}");
    assert_eq!(logs_starting(&h.timeline(&lead).await, "event=").len(), 1, "{db:?}: handled once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(funnel_postgres), ignore = "PostgreSQL is not configured: set FUNNEL_TEST_POSTGRES_URL")]
async fn two_schedulers_on_postgres_fire_each_timer_once() {
    let test_db = TestDb::new(Db::Postgres).await;
    let a = Harness::new(test_db.store().await, T0).await;
    let b = Harness::attach(test_db.store().await, T0).await;
    a.bind_test_guest("roundtrip", None, None).await;
    // 600 leads, a 20-minute timer each: more than one claim's worth (500) for the two to share.
    let leads = 600;
    let events: Vec<PlatformEvent> =
        (0..leads).map(|i| updated(&a.producer, &format!("e{i}"), &format!("c{i}"))).collect();
    a.engine.store.ingest_batch(&events, T0).await.expect("batch");
    a.engine.dispatcher.drain().await.expect("drain");
    assert_eq!(a.engine.store.pending_timers().await.expect("timers"), leads as i64);
    a.clock.set(T0 + 20 * 60_000);
    b.clock.set(T0 + 20 * 60_000);
    let (ta, tb) = tokio::join!(a.engine.scheduler.tick(), b.engine.scheduler.tick());
    let (fa, fb) = (ta.expect("a ticks").fired, tb.expect("b ticks").fired);
    assert_eq!(fa + fb, leads, "each timer fired once (a {fa}, b {fb})");
    let fired = test_db.count("SELECT COUNT(*) FROM events WHERE kind = 'timer'").await;
    let distinct = test_db.count("SELECT COUNT(DISTINCT payload) FROM events WHERE kind = 'timer'").await;
    assert_eq!((fired, distinct), (leads as i64, leads as i64), "one timer event per timer");
    a.engine.dispatcher.drain().await.expect("drain");
    let reached = test_db.count("SELECT COUNT(*) FROM timeline WHERE detail LIKE '%event=timer:rt-timer:%'").await;
    assert_eq!(reached, leads as i64, "each fired timer reached its plugin once");
}

on_both!(a_lead_is_served_by_its_most_specific_binding_for_life);
async fn a_lead_is_served_by_its_most_specific_binding_for_life(db: Db) {
    let (_db, store) = TestDb::with_store(db).await;
    let h = Harness::new(store, T0).await;
    // Three plugins that leave different marks: count only keeps state, short-timer sets a
    // timer, roundtrip logs the event.
    let producer_wide = h.bind_test_guest("count", None, None).await;
    let product = h.bind_test_guest("short-timer", Some("p1"), None).await;
    let plan = h.bind_test_guest("roundtrip", Some("p1"), Some("q1")).await;
    let cases = [
        ("c1", (Some("p1"), Some("q1")), &plan, "the plan binding beats the product's"),
        ("c2", (Some("p1"), Some("q2")), &product, "another plan of p1: the product binding"),
        ("c3", (Some("p1"), None), &product, "p1 without a plan: the product binding"),
        ("c4", (Some("p2"), Some("q1")), &producer_wide, "q1 of another product: producer-wide"),
        ("c5", (None, None), &producer_wide, "no product: producer-wide"),
    ];
    let mut leads = Vec::new();
    for (checkout, scope, _, _) in &cases {
        leads.push(lead_id(
            &h.post_for(&h.producer, checkout, PlatformEventType::CheckoutUpdated, checkout, *scope).await,
        ));
    }
    h.settle().await;
    for ((_, _, binding, why), lead) in cases.iter().zip(&leads) {
        let run = h.engine.store.run_snapshot(lead).await.expect("run").expect("a run");
        assert_eq!(&&run.binding_id, binding, "{db:?}: {why}");
        let timeline = h.timeline(lead).await;
        let logged = logs_starting(&timeline, "event=").len();
        let timers =
            timeline.iter().filter(|e| e.kind() == TimelineKind::TimerSet && e.detail().starts_with("short ")).count();
        let ran = match () {
            _ if *binding == &plan => (logged, timers) == (1, 0),
            _ if *binding == &product => (logged, timers) == (0, 1),
            _ => (logged, timers) == (0, 0) && run.state.as_deref() == Some(br#"{"events":1}"#.as_slice()),
        };
        assert!(ran, "{db:?}: {why}, and that plugin ran: {timeline:#?} state {:?}", run.state);
    }
    // Rebinding a scope does not move a lead that is already served.
    h.bind_test_guest("roundtrip", None, None).await;
    h.post("c5-again", PlatformEventType::CheckoutUpdated, "c5", None).await;
    h.settle().await;
    let run = h.engine.store.run_snapshot(&leads[4]).await.expect("run").expect("a run");
    assert_eq!(
        (&run.binding_id, run.state.as_deref()),
        (&producer_wide, Some(br#"{"events":2}"#.as_slice())),
        "{db:?}"
    );
    assert!(logs_starting(&h.timeline(&leads[4]).await, "event=").is_empty(), "{db:?}: one binding for life");
}

// A plugin that fails the same way again is not retried five times over ~15 s with the lead
// still `open` (finding 7 of issue 17): the second identical failure parks the event, and the
// lead says it needs a person. (The 1/2/4/8 s schedule of a failure that changes is pinned by
// the dispatcher's unit tests; `later_events_wait_behind_an_event_awaiting_its_retry` shows a
// plugin that recovers on its retry.)
on_both!(a_failing_plugin_commits_nothing_and_a_repeated_failure_parks_the_lead);
async fn a_failing_plugin_commits_nothing_and_a_repeated_failure_parks_the_lead(db: Db) {
    let (_db, h) = Harness::with_guest(db, "fail").await;
    let lead = lead_id(&h.post("e1", PlatformEventType::CheckoutUpdated, "c1", None).await);
    h.settle().await;
    h.at(999).await;
    assert_eq!(h.timeline(&lead).await.len(), 1, "{db:?}: the retry waits its second");
    h.at(1_000).await;
    h.at(3_600_000).await;
    let timeline = h.timeline(&lead).await;
    let kinds: Vec<(&str, i64)> = timeline.iter().map(|e| (e.kind().as_str(), e.at - T0)).collect();
    assert_eq!(kinds, [("retry", 0), ("failed", 1_000)], "{db:?}: {timeline:#?}");
    assert!(timeline[0].detail().contains("retrying in 1 s"), "{db:?}: {}", timeline[0].detail());
    assert!(timeline[1].detail().contains("failing on purpose"), "{db:?}: the reason is visible");
    assert!(
        timeline[1].detail().contains("the same failure as the attempt before"),
        "{db:?}: {}",
        timeline[1].detail()
    );
    assert!(h.engine.store.next_pending_event(&lead).await.expect("event").is_none(), "{db:?}: parked, not pending");
    let summary = h.engine.store.lead_summary(&h.producer, &lead).await.expect("read").expect("the lead");
    assert_eq!(summary.status.to_string(), "parked", "{db:?}: my leads shows the lead needs a person");
    assert_eq!(h.engine.store.outbox_depth().await.expect("depth"), 0, "{db:?}: the recorded email was rolled back");
}

on_both!(overdue_timers_fire_late_after_a_restart);
async fn overdue_timers_fire_late_after_a_restart(db: Db) {
    let test_db = TestDb::new(db).await;
    let store = test_db.store().await;
    let h = Harness::new(store, T0).await;
    h.bind_test_guest("roundtrip", None, None).await;
    let lead = lead_id(&h.post("e1", PlatformEventType::CheckoutUpdated, "c1", None).await);
    h.settle().await;
    drop(h);
    // The process is gone for five hours; a new one starts on the same database.
    let store = test_db.store().await;
    let restarted = Harness::attach(store, T0 + 5 * 3_600_000).await;
    restarted.settle().await;
    let timers = logs_starting(&restarted.timeline(&lead).await, "event=timer:");
    assert_eq!(timers.len(), 1, "{db:?}: {timers:?}");
    let late_ms = (5 * 3_600_000 - 20 * 60_000).to_string();
    assert!(timers[0].starts_with(&format!("event=timer:rt-timer:{late_ms} ")), "{db:?}: {}", timers[0]);
}

#[tokio::test]
#[cfg_attr(not(funnel_postgres), ignore = "PostgreSQL is not configured: set FUNNEL_TEST_POSTGRES_URL")]
async fn two_replicas_on_postgres_never_handle_an_event_twice() {
    let test_db = TestDb::new(Db::Postgres).await;
    let a = Harness::new(test_db.store().await, T0).await;
    let mut b = Harness::attach(test_db.store().await, T0).await;
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
        let handled: Vec<String> = logs_starting(&a.timeline(lead).await, "event=")
            .iter()
            .map(|l| l.split_whitespace().next().unwrap_or("").to_string())
            .collect();
        assert_eq!(handled, ["event=captured", "event=Event::Updated"], "lead {lead}: once each, in order");
    }
}

on_both!(retention_purges_handled_events_only);
async fn retention_purges_handled_events_only(db: Db) {
    let (_db, store) = TestDb::with_store(db).await;
    let h = Harness::new(store, T0).await;
    h.bind_test_guest("fail", Some("failing"), None).await;
    h.bind_test_guest("count", None, None).await;
    let done = lead_id(&h.post("done-1", PlatformEventType::CheckoutUpdated, "c1", None).await);
    let waiting = lead_id(&h.post("pending-1", PlatformEventType::CheckoutUpdated, "c2", Some("failing")).await);
    h.settle().await;
    let store = &h.engine.store;
    let before = store.next_pending_event(&waiting).await.expect("event").expect("awaiting its retry");
    assert_eq!((before.attempts, before.next_attempt_at), (1, T0 + 1000), "{db:?}");
    let purged = store.purge_events(T0 + 1).await.expect("purge");
    assert_eq!(purged, 1, "{db:?}: the handled event goes, the one awaiting a retry stays");
    let kept = store.next_pending_event(&waiting).await.expect("event").expect("still pending");
    assert_eq!(
        (kept.seq, kept.attempts, kept.next_attempt_at),
        (before.seq, before.attempts, before.next_attempt_at),
        "{db:?}: the very event that waited, untouched"
    );
    assert_eq!(
        h.post("pending-1", PlatformEventType::CheckoutUpdated, "c2", Some("failing")).await,
        IngestOutcome::Duplicate { lead_id: Some(waiting.clone()) },
        "{db:?}: the kept event's id is still known"
    );
    // The purged id is forgotten: posted again it is new, and the lead and its run are intact.
    assert_eq!(
        h.post("done-1", PlatformEventType::CheckoutUpdated, "c1", None).await,
        IngestOutcome::Accepted { lead_id: Some(done.clone()) },
        "{db:?}: a purged id is accepted as new, for the same lead"
    );
    h.settle().await;
    let run = store.run_snapshot(&done).await.expect("run").expect("the run survived the purge");
    assert_eq!(run.state.as_deref(), Some(br#"{"events":2}"#.as_slice()), "{db:?}: its state went on");
}

on_both!(finished_work_leaves_the_queue);
async fn finished_work_leaves_the_queue(db: Db) {
    let (_db, h) = Harness::with_guest(db, "roundtrip").await;
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

on_both!(a_dead_workers_lead_is_taken_over_when_its_lease_runs_out);
async fn a_dead_workers_lead_is_taken_over_when_its_lease_runs_out(db: Db) {
    let (_db, h) = Harness::with_guest(db, "roundtrip").await;
    let lead = lead_id(&h.post("e1", PlatformEventType::CheckoutUpdated, "c1", None).await);
    let store = &h.engine.store;
    assert_eq!(store.claim_leads("dead", T0, 30_000, 10).await.expect("claim"), std::slice::from_ref(&lead), "{db:?}");
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

on_both!(events_arriving_while_their_lead_is_handled_are_never_stranded);
async fn events_arriving_while_their_lead_is_handled_are_never_stranded(db: Db) {
    let test_db = TestDb::new(db).await;
    let a = Harness::new(test_db.store().await, T0).await;
    a.bind_test_guest("roundtrip", None, None).await;
    // On PostgreSQL a second replica drains too; SQLite has one writer, one engine.
    let b = match db {
        Db::Postgres => Some(Harness::attach(test_db.store().await, T0).await),
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

#[tokio::test]
#[cfg_attr(not(funnel_postgres), ignore = "PostgreSQL is not configured: set FUNNEL_TEST_POSTGRES_URL")]
async fn an_event_queued_while_its_lead_settles_is_not_stranded() {
    let test_db = TestDb::new(Db::Postgres).await;
    let url = test_db.url.clone();
    let h = Harness::new(test_db.store().await, T0).await;
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
        // Once the commit waits for the batch (its lock on c1's queue row), let the batch finish.
        let batch_pid = wait_until_blocked_by(&url, blocker_pid).await;
        wait_until_blocked_by(&url, batch_pid).await;
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

/// Wait until some PostgreSQL session waits for a lock held by `pid`; returns its pid.
async fn wait_until_blocked_by(url: &str, pid: i32) -> i32 {
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(url).await.expect("connect");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let blocked: Option<i32> =
            sqlx::query_scalar("SELECT pid FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid)) LIMIT 1")
                .bind(pid)
                .fetch_optional(&mut conn)
                .await
                .expect("blocked");
        if let Some(blocked) = blocked {
            return blocked;
        }
        assert!(std::time::Instant::now() < deadline, "nothing waited for session {pid} within a minute");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
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
            email: Some(funnel_host::domain::EmailAddress::parse(&format!("{checkout}@example.com")).expect("email")),
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
#[cfg_attr(not(funnel_postgres), ignore = "PostgreSQL is not configured: set FUNNEL_TEST_POSTGRES_URL")]
async fn concurrent_batches_of_the_same_events_store_each_once() {
    let (_db, store) = TestDb::with_store(Db::Postgres).await;
    let h = Harness::new(store, T0).await;
    let events: Vec<PlatformEvent> =
        (0..300).map(|i| updated(&h.producer, &format!("e{i}"), &format!("c{i}"))).collect();
    let store = &h.engine.store;
    let (x, y) = tokio::join!(store.ingest_batch(&events, T0), store.ingest_batch(&events, T0));
    let (x, y) = (x.expect("first batch"), y.expect("second batch"));
    assert_eq!((x.len(), y.len()), (300, 300), "an answer per event");
    for (i, pair) in x.iter().zip(&y).enumerate() {
        let accepted = [pair.0, pair.1].iter().filter(|o| matches!(o, IngestOutcome::Accepted { .. })).count();
        assert_eq!(accepted, 1, "event {i}: {pair:?}");
    }
}
