//! The dispatcher's group commit (`store::settlements`) on both databases: several leads'
//! outcomes in one transaction, each event's writes all-or-nothing. A failed invocation is
//! recorded beside its neighbours' writes; writes the database refuses fail only their event;
//! a lead whose lease another process took over writes nothing; and through the dispatcher,
//! a producer whose plugin fails costs its neighbours nothing.

use funnel_host::domain::timeline::LogLevel;
use funnel_host::domain::{PlatformEventType, TimelineNote};
use funnel_host::store::Database;
use funnel_host::store::commit::Write;
use funnel_host::store::queue::LeadAfter;
use funnel_host::store::settlements::{Outcome, Settled, Settlement};
use funnel_host::store::snapshots::PendingEvent;

use crate::db::{Db, TestDb, on_both};
use crate::harness::{Harness, T0, lead_id, logs_starting};

/// Post one capture for each checkout and claim every lead under `lease`; their pending events.
async fn claimed(h: &Harness, checkouts: &[&str], lease: &str) -> Vec<PendingEvent> {
    let mut events = Vec::new();
    for checkout in checkouts {
        let lead = lead_id(&h.post(&format!("{checkout}-1"), PlatformEventType::CheckoutUpdated, checkout, None).await);
        events.push(h.engine.store.next_pending_event(&lead).await.expect("event").expect("pending"));
    }
    let leads = h.engine.store.claim_leads(lease, T0, 30_000, 100).await.expect("claim");
    assert_eq!(leads.len(), checkouts.len(), "every lead claimed");
    events
}

/// A successful invocation's outcome: a timer `timer_id`, a timeline line, new state.
async fn invoked(store: &Database, event: &PendingEvent, timer_id: &str) -> Outcome {
    let lead = store.lead_snapshot(&event.lead_id).await.expect("lead");
    let writes = vec![
        Write::Timeline(TimelineNote::Log {
            level: LogLevel::Info,
            source: "test".into(),
            text: "handled in a group".into(),
        }),
        Write::Timer { id: timer_id.into(), tag: "later".into(), due_at: T0 + 60_000 },
    ];
    Outcome::Invoked { lead: Box::new(lead), state: Some(b"{\"n\":1}".to_vec()), writes, retry_at: Some(T0 + 1_000) }
}

fn settlement(lease: &str, event: &PendingEvent, outcome: Outcome) -> Settlement {
    Settlement { lease: lease.into(), event: event.clone(), outcome, now: T0 }
}

/// Rows of `table` for `lead`.
async fn rows(db: &TestDb, table: &str, lead: &str) -> i64 {
    db.count(&format!("SELECT COUNT(*) FROM {table} WHERE lead_id = '{lead}'")).await
}

/// The lead's timeline kinds, oldest first.
async fn kinds(h: &Harness, lead: &str) -> Vec<String> {
    h.timeline(lead).await.into_iter().map(|e| e.kind().as_str().to_string()).collect()
}

on_both!(a_failed_invocation_is_recorded_beside_its_neighbours_writes);
async fn a_failed_invocation_is_recorded_beside_its_neighbours_writes(db: Db) {
    let test_db = TestDb::new(db).await;
    let h = Harness::new(test_db.store().await, T0).await;
    h.bind_test_guest("count", None, None).await;
    let events = claimed(&h, &["ok1", "retried", "ok2", "parked"], "w").await;
    let store = &h.engine.store;
    let group = [
        settlement("w", &events[0], invoked(store, &events[0], "t-ok1").await),
        settlement("w", &events[1], Outcome::Failed { error: "boom".into(), retry_at: Some(T0 + 1_000) }),
        settlement("w", &events[2], invoked(store, &events[2], "t-ok2").await),
        settlement("w", &events[3], Outcome::Failed { error: "boom again".into(), retry_at: None }),
    ];
    let answers: Vec<Settled> =
        store.settle_together(&group).await.expect("one commit").into_iter().map(|a| a.expect("settled")).collect();
    let afters: Vec<LeadAfter> = answers.iter().map(|a| a.after).collect();
    assert_eq!(afters, [LeadAfter::Idle, LeadAfter::Waiting, LeadAfter::Idle, LeadAfter::Idle], "{db:?}");
    assert!(answers.iter().all(|a| a.refused.is_none()), "{db:?}: nothing refused");
    for ok in [&events[0], &events[2]] {
        assert_eq!(rows(&test_db, "timers", &ok.lead_id).await, 1, "{db:?}: the neighbour's timer");
        assert_eq!(kinds(&h, &ok.lead_id).await, ["log"], "{db:?}: the neighbour's timeline");
        assert!(store.next_pending_event(&ok.lead_id).await.expect("event").is_none(), "{db:?}: done");
        let run = store.run_snapshot(&ok.lead_id).await.expect("run").expect("a run");
        assert_eq!(run.state.as_deref(), Some(b"{\"n\":1}".as_slice()), "{db:?}: the neighbour's state");
    }
    let retried = store.next_pending_event(&events[1].lead_id).await.expect("event").expect("still pending");
    assert_eq!((retried.attempts, retried.next_attempt_at), (1, T0 + 1_000), "{db:?}: retried with backoff");
    assert_eq!(kinds(&h, &events[1].lead_id).await, ["retry"], "{db:?}");
    assert!(store.next_pending_event(&events[3].lead_id).await.expect("event").is_none(), "{db:?}: parked");
    assert_eq!(kinds(&h, &events[3].lead_id).await, ["failed"], "{db:?}");
    let parked = format!("SELECT COUNT(*) FROM leads WHERE id = '{}' AND status = 'parked'", events[3].lead_id);
    assert_eq!(test_db.count(&parked).await, 1, "{db:?}: the parked event's lead needs a person");
    for failed in [&events[1], &events[3]] {
        assert_eq!(rows(&test_db, "timers", &failed.lead_id).await, 0, "{db:?}: no writes for a failure");
    }
}

on_both!(writes_the_database_refuses_fail_only_their_event);
async fn writes_the_database_refuses_fail_only_their_event(db: Db) {
    let test_db = TestDb::new(db).await;
    let h = Harness::new(test_db.store().await, T0).await;
    h.bind_test_guest("count", None, None).await;
    let events = claimed(&h, &["first", "clash", "last"], "w").await;
    let store = &h.engine.store;
    // The second event's timer takes the first's id: the database refuses it half-way through
    // that event's writes (after its timeline line).
    let group = [
        settlement("w", &events[0], invoked(store, &events[0], "same-id").await),
        settlement("w", &events[1], invoked(store, &events[1], "same-id").await),
        settlement("w", &events[2], invoked(store, &events[2], "t-last").await),
    ];
    let answers: Vec<Settled> =
        store.settle_together(&group).await.expect("one commit").into_iter().map(|a| a.expect("settled")).collect();
    assert_eq!(answers[0], Settled { after: LeadAfter::Idle, refused: None }, "{db:?}");
    assert_eq!(answers[2], Settled { after: LeadAfter::Idle, refused: None }, "{db:?}");
    assert_eq!(answers[1].after, LeadAfter::Waiting, "{db:?}: the refused event waits for its retry");
    assert!(answers[1].refused.as_deref().is_some_and(|e| e.starts_with("store error")), "{db:?}: {answers:?}");
    for ok in [&events[0], &events[2]] {
        assert_eq!(rows(&test_db, "timers", &ok.lead_id).await, 1, "{db:?}");
        assert_eq!(kinds(&h, &ok.lead_id).await, ["log"], "{db:?}");
    }
    let clash = &events[1].lead_id;
    assert_eq!(kinds(&h, clash).await, ["retry"], "{db:?}: its timeline line went with its refused timer");
    assert_eq!(rows(&test_db, "timers", clash).await, 0, "{db:?}");
    let run = store.run_snapshot(clash).await.expect("run").expect("a run");
    assert_eq!(run.state, None, "{db:?}: no new state");
    let pending = store.next_pending_event(clash).await.expect("event").expect("still pending");
    assert_eq!((pending.attempts, pending.next_attempt_at), (1, T0 + 1_000), "{db:?}");
}

on_both!(a_lead_taken_over_mid_group_writes_nothing);
async fn a_lead_taken_over_mid_group_writes_nothing(db: Db) {
    let test_db = TestDb::new(db).await;
    let h = Harness::new(test_db.store().await, T0).await;
    h.bind_test_guest("count", None, None).await;
    let events = claimed(&h, &["kept", "lost", "failed-lost"], "slow").await;
    let store = &h.engine.store;
    let group = [
        settlement("slow", &events[0], invoked(store, &events[0], "t-kept").await),
        settlement("slow", &events[1], invoked(store, &events[1], "t-lost").await),
        settlement("slow", &events[2], Outcome::Failed { error: "boom".into(), retry_at: Some(T0 + 1_000) }),
    ];
    // While the slow worker was invoking, its leases on two of them ran out and another took
    // them over.
    for lead in [&events[1].lead_id, &events[2].lead_id] {
        test_db
            .execute(&format!("UPDATE lead_queue SET locked_by = 'other', due_at = {} WHERE lead_id = '{lead}'", T0))
            .await;
    }
    let answers: Vec<LeadAfter> = store
        .settle_together(&group)
        .await
        .expect("one commit")
        .into_iter()
        .map(|a| a.expect("settled").after)
        .collect();
    assert_eq!(answers, [LeadAfter::Idle, LeadAfter::Lost, LeadAfter::Lost], "{db:?}");
    assert_eq!(rows(&test_db, "timers", &events[0].lead_id).await, 1, "{db:?}: the held lead committed");
    for lost in [&events[1], &events[2]] {
        assert_eq!(rows(&test_db, "timers", &lost.lead_id).await, 0, "{db:?}: nothing for a lost lead");
        assert!(kinds(&h, &lost.lead_id).await.is_empty(), "{db:?}: no timeline for a lost lead");
        let pending = store.next_pending_event(&lost.lead_id).await.expect("event").expect("still pending");
        assert_eq!(pending.attempts, 0, "{db:?}: its event untouched, for the new holder");
        let holder =
            format!("SELECT COUNT(*) FROM lead_queue WHERE lead_id = '{}' AND locked_by = 'other'", lost.lead_id);
        assert_eq!(test_db.count(&holder).await, 1, "{db:?}: still the new holder's");
    }
}

on_both!(a_failing_producer_costs_its_neighbours_nothing_in_a_drain);
async fn a_failing_producer_costs_its_neighbours_nothing_in_a_drain(db: Db) {
    let test_db = TestDb::new(db).await;
    let a = Harness::new(test_db.store().await, T0).await;
    a.bind_test_guest("roundtrip", None, None).await;
    let mut b = Harness::attach(a.engine.store.clone(), T0).await;
    b.producer = a.engine.store.create_producer("failing producer", T0).await.expect("producer").id;
    b.bind_test_guest("fail", None, None).await;
    let (mut good, mut bad) = (Vec::new(), Vec::new());
    for i in 0..12 {
        let kind = PlatformEventType::CheckoutUpdated;
        good.push(lead_id(&a.post(&format!("a{i}"), kind, &format!("a{i}"), None).await));
        bad.push(lead_id(&b.post(&format!("b{i}"), kind, &format!("b{i}"), None).await));
    }
    let handled = a.engine.dispatcher.drain().await.expect("the drain goes through");
    assert_eq!(handled, 12, "{db:?}: every good lead handled, no failed one counted");
    for lead in &good {
        let counts = [rows(&test_db, "outbox", lead).await, rows(&test_db, "timers", lead).await];
        assert_eq!(counts, [2, 1], "{db:?}: lead {lead}: an email and an SMS, the 20-minute timer");
        assert_eq!(logs_starting(&a.timeline(lead).await, "event=").len(), 1, "{db:?}: handled once");
    }
    for lead in &bad {
        let counts = [rows(&test_db, "outbox", lead).await, rows(&test_db, "timers", lead).await];
        assert_eq!(counts, [0, 0], "{db:?}: lead {lead}: nothing the failing plugin recorded");
        let pending = a.engine.store.next_pending_event(lead).await.expect("event").expect("pending");
        assert_eq!(pending.attempts, 1, "{db:?}: one failed attempt, retried later");
    }
}
