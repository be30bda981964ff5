//! One tenant or one slow server cannot stall the others: a silent SMTP server does not hold
//! up another producer's dispatch in a real `funnel serve`, a store error on one event fails
//! that event only, a template past its limits fails its own event, a delivery claim taken over
//! is not finished by its old owner, producers share the dispatcher fairly, and SIGTERM stops
//! the engine without losing what it held.

use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::json;

use funnel_host::domain::TimelineKind;
use funnel_host::domain::{Channel, MessageStatus, PlatformEventType};

use crate::db::{Db, TestDb, on_both};
use crate::harness::{Harness, T0, lead_id, logs_starting};
use crate::process::{event, spawn_with, wait_for};
use crate::smtp_server;

#[tokio::test]
async fn a_silent_smtp_server_does_not_hold_up_another_producers_dispatch() {
    let test_db = TestDb::new(Db::Sqlite).await;
    let dir = tempfile::tempdir().expect("dir");
    let (smtp_url, accepted) = smtp_server::silent("smtp");
    // A step deadline far beyond the test's wait: only independent loops can pass it.
    let serve = spawn_with(
        &test_db.url,
        dir.path(),
        &[("FUNNEL_SMTP_URL", smtp_url.as_str()), ("FUNNEL_DELIVERY_STEP_TIMEOUT_SECS", "3600")],
    );
    // Producer A's plugin emails at once: its email goes to the silent server.
    let a = serve.create_producer().await;
    let (a_id, a_key) = (a["id"].as_str().expect("id"), a["api_key"].as_str().expect("key"));
    let guest = funnel_host::guests::TEST_GUEST.to_vec();
    assert_eq!(serve.send(reqwest::Method::POST, "/v1/plugins", a_key, guest).await.0, 201);
    let (status, bound) = serve.bind(a_key, &json!({"plugin": "test-guest", "config": {"mode": "roundtrip"}})).await;
    assert_eq!(status, 200, "{bound}");
    assert_eq!(serve.post_event(&event(1, a_id)).await.0, 202);
    wait_for(Duration::from_secs(60), "A's email to reach the silent server", || async {
        (accepted.load(Ordering::SeqCst) > 0).then_some(())
    })
    .await;

    // Producer B's event, posted while delivery waits on that server, is still handled.
    let b = serve.create_producer().await;
    let (b_id, b_key) = (b["id"].as_str().expect("id"), b["api_key"].as_str().expect("key"));
    let binding = json!({"plugin": "four-emails", "config": {"emails": [{"after": "20m", "subject": "Volte", "html": "<p>{{checkout_url}}</p>"}]}});
    assert_eq!(serve.bind(b_key, &binding).await.0, 200);
    let (status, accepted_b) = serve.post_event(&event(2, b_id)).await;
    assert_eq!(status, 202, "{accepted_b}");
    let lead = accepted_b["lead_id"].as_str().expect("lead").to_string();
    let store = test_db.store().await;
    wait_for(Duration::from_secs(60), "B's event to be dispatched (its plugin set its timer)", || async {
        let timeline = store.timeline(&lead, 0).await.expect("timeline");
        timeline.iter().any(|e| e.kind() == TimelineKind::TimerSet).then_some(())
    })
    .await;
}

on_both!(a_store_error_on_one_event_fails_that_event_not_the_step);
async fn a_store_error_on_one_event_fails_that_event_not_the_step(db: Db) {
    let test_db = TestDb::new(db).await;
    let h = Harness::new(test_db.store().await, T0).await;
    h.bind_test_guest("roundtrip", None, None).await;
    // The database refuses one lead's outbox row (as PostgreSQL refuses a NUL byte): that
    // lead's commit fails, half-way through.
    test_db.refuse("outbox", "INSERT", "NEW.recipient = 'ana@example.com'").await;
    let ana = lead_id(&h.post("e-ana", PlatformEventType::CheckoutUpdated, "ana", None).await);
    let bia = lead_id(&h.post("e-bia", PlatformEventType::CheckoutUpdated, "bia", None).await);
    h.settle().await;
    assert_eq!(logs_starting(&h.timeline(&bia).await, "event=").len(), 1, "{db:?}: the other lead was handled");
    let failed = h.engine.store.next_pending_event(&ana).await.expect("event").expect("still pending");
    assert_eq!(failed.attempts, 1, "{db:?}: an attempt, counted");
    assert_eq!(failed.next_attempt_at, T0 + 1000, "{db:?}: retried with the usual backoff");
    assert!(failed.last_error.as_deref().is_some_and(|e| e.contains("refused by the test")), "{failed:?}");
    let rows = |table: &str| format!("SELECT COUNT(*) FROM {table} WHERE lead_id = '{ana}'");
    assert_eq!(test_db.count(&rows("timers")).await, 0, "{db:?}: nothing of the failed commit stayed");
    // It keeps failing: retried with backoff, then parked; the lead no longer blocks anything.
    for at in [1_000, 3_000, 7_000, 15_000] {
        h.at(at).await;
    }
    assert!(h.engine.store.next_pending_event(&ana).await.expect("event").is_none(), "{db:?}: parked");
    let timeline = h.timeline(&ana).await;
    assert!(timeline.iter().any(|e| e.detail().contains("parked as failed after 5 attempts")), "{db:?}: {timeline:#?}");
}

/// The template: 300 × 100 KB, a 30 MB body from a 60-byte source.
const BOMB: &str = "{% for i in range(300) %}{{ 'x' * 100000 }}{% endfor %}";

#[tokio::test]
async fn a_template_past_the_message_limits_is_refused_when_the_binding_is_saved() {
    let (_test_db, store) = TestDb::with_store(Db::Sqlite).await;
    let s = crate::api_server::start(store).await;
    let (_producer, key) = s.producer().await;
    let cases = [
        (json!({"after": "20m", "subject": "Oi", "html": BOMB}), "config.emails[0].html", "524288 bytes"),
        (
            json!({"after": "20m", "subject": "{{ 'x' * 999 }}", "html": "<p>Oi</p>"}),
            "config.emails[0].subject",
            "998 bytes",
        ),
        (
            json!({"after": "20m", "subject": "Oi", "html": "{% for i in range(100000) %}{% endfor %}"}),
            "config.emails[0].html",
            "too much work",
        ),
    ];
    for (email, path, says) in cases {
        let binding = json!({"plugin": "four-emails", "config": {"emails": [email]}});
        let (status, problem) = s.send(reqwest::Method::PUT, "/v1/bindings", Some(&key), Some(binding)).await;
        assert_eq!(status, 422, "{problem}");
        let error = &problem["errors"][0];
        assert_eq!(error["path"], path, "{problem}");
        assert!(error["message"].as_str().is_some_and(|m| m.contains(says)), "{problem}");
    }
    let (_, bindings) = s.send(reqwest::Method::GET, "/v1/bindings", Some(&key), None).await;
    assert_eq!(bindings["bindings"], json!([]), "no binding was stored");
}

on_both!(a_template_past_the_message_limits_fails_its_event_and_stores_nothing_big);
async fn a_template_past_the_message_limits_fails_its_event_and_stores_nothing_big(db: Db) {
    let test_db = TestDb::new(db).await;
    let h = Harness::new(test_db.store().await, T0).await;
    // Stored without the API's check (as a binding saved before the check existed).
    let config = json!({"emails": [{"after": "20m", "subject": "Oi", "html": BOMB}]});
    h.bind_builtin("four-emails", &config, None, None).await;
    let lead = lead_id(&h.post("e1", PlatformEventType::CheckoutUpdated, "ana", None).await);
    h.settle().await;
    h.at(20 * 60_000).await;
    let rows = |table: &str| format!("SELECT COUNT(*) FROM {table} WHERE lead_id = '{lead}'");
    assert_eq!(test_db.count(&rows("outbox")).await, 0, "{db:?}: no message stored");
    let biggest = test_db.count("SELECT COALESCE(MAX(LENGTH(detail)), 0) FROM timeline").await;
    assert!(biggest < 4096, "{db:?}: nothing big in the timeline either ({biggest} bytes)");
    let timeline = h.timeline(&lead).await;
    let parked =
        timeline.iter().find(|e| e.kind() == TimelineKind::Failed).unwrap_or_else(|| panic!("{db:?}: {timeline:#?}"));
    assert!(parked.detail().contains("524288 bytes"), "{db:?}: says which limit: {}", parked.detail());
    assert!(h.engine.store.next_pending_event(&lead).await.expect("event").is_none(), "{db:?}: parked at once");
}

on_both!(a_delivery_claim_taken_over_is_not_finished_by_its_old_owner);
async fn a_delivery_claim_taken_over_is_not_finished_by_its_old_owner(db: Db) {
    use funnel_host::store::outbox::Outcome;
    let (url, mailbox) = smtp_server::start();
    let (_test_db, store) = TestDb::with_store(db).await;
    let smtp =
        funnel_host::delivery::smtp::SmtpTransport::new(&url, "Loja <loja@example.com>", "https://x.test".into())
            .expect("smtp");
    let h = Harness::with_email(store, T0, std::sync::Arc::new(smtp)).await;
    h.bind_test_guest("roundtrip", None, None).await;
    let lead = lead_id(&h.post("e1", PlatformEventType::CheckoutUpdated, "ana", None).await);
    h.engine.dispatcher.drain().await.expect("drain");
    // A worker claims the email and stalls past its lease; another takes it over and sends it.
    let claimed = h.engine.store.claim_messages(h.clock_now(), 60_000, 10).await.expect("claim");
    let stale = claimed.into_iter().find(|m| m.channel == Channel::Email).expect("the email was claimed");
    h.at(60_000).await;
    assert_eq!(mailbox.received().len(), 1, "{db:?}: sent by the new owner");
    assert_eq!(h.message(&lead, "email").await.status, MessageStatus::Sent, "{db:?}");
    // The old owner wakes up: its outcome is not recorded over the new owner's.
    let retry = Outcome::Retry { at: h.clock_now() + 30_000, error: "451 late".into() };
    h.engine.store.finish_message(&stale, &retry, h.clock_now()).await.expect("finish");
    assert_eq!(
        h.message(&lead, "email").await.status,
        MessageStatus::Sent,
        "{db:?}: not queued again by the old owner"
    );
    h.engine.store.finish_message(&stale, &Outcome::Sent, h.clock_now()).await.expect("finish");
    assert_eq!(h.message(&lead, "email").await.status, MessageStatus::Sent, "{db:?}: the old owner changed nothing");
    let sent = h.timeline(&lead).await.into_iter().filter(|e| e.kind() == TimelineKind::Email).count();
    assert_eq!(sent, 1, "{db:?}: one sent entry in the timeline");
    // Later (the guest's 20-minute timer sends another email): that one was never sent again.
    h.at(24 * 3_600_000).await;
    let id = format!("Message-ID: <{}@funnel>", stale.id);
    let copies = mailbox.received().iter().filter(|m| m.contains(&id)).count();
    assert_eq!(copies, 1, "{db:?}: sent once overall");
}

on_both!(another_producers_lead_is_claimed_in_the_first_round_behind_a_noisy_one);
async fn another_producers_lead_is_claimed_in_the_first_round_behind_a_noisy_one(db: Db) {
    let test_db = TestDb::new(db).await;
    // Producer A: 50 leads whose plugin burns all its fuel on every event.
    let a = Harness::new(test_db.store().await, T0).await;
    a.bind_test_guest("loop", None, None).await;
    for i in 0..50 {
        a.post(&format!("a{i}"), PlatformEventType::CheckoutUpdated, &format!("a{i}"), None).await;
    }
    // Producer B: one lead, posted after them.
    let mut b = Harness::attach(test_db.store().await, T0).await;
    b.producer = b.engine.store.create_producer("B", T0).await.expect("producer").id;
    b.bind_test_guest("roundtrip", None, None).await;
    let lead_b = lead_id(&b.post("b1", PlatformEventType::CheckoutUpdated, "b1", None).await);
    a.settle().await;
    // In the order things were written (the timeline's global sequence): how many of A's
    // attempts came before B's event was handled.
    let handled_b = h_first_seq(&a, &lead_b, "log").await;
    let a_attempts_before =
        test_db.count(&format!("SELECT COUNT(*) FROM timeline WHERE kind = 'retry' AND seq < {handled_b}")).await;
    assert!(
        a_attempts_before < 32,
        "{db:?}: B was handled after {a_attempts_before} of A's failing attempts, not in the first round of claims"
    );
    assert_eq!(test_db.count("SELECT COUNT(*) FROM timeline WHERE kind = 'retry'").await, 50, "{db:?}: A's ran too");
}

/// The sequence number of the lead's first timeline entry of `kind`.
async fn h_first_seq(h: &Harness, lead: &str, kind: &str) -> i64 {
    let timeline = h.timeline(lead).await;
    timeline
        .iter()
        .find(|e| e.kind().as_str() == kind)
        .map(|e| e.seq)
        .unwrap_or_else(|| panic!("no {kind}: {timeline:#?}"))
}

on_both!(a_throttled_producer_gets_one_lead_a_claim_while_others_want_the_slots);
async fn a_throttled_producer_gets_one_lead_a_claim_while_others_want_the_slots(db: Db) {
    let test_db = TestDb::new(db).await;
    let a = Harness::new(test_db.store().await, T0).await;
    a.bind_test_guest("roundtrip", None, None).await;
    let mut b = Harness::attach(test_db.store().await, T0).await;
    b.producer = b.engine.store.create_producer("B", T0).await.expect("producer").id;
    b.bind_test_guest("roundtrip", None, None).await;
    let mut owner = std::collections::HashMap::new();
    for i in 0..10 {
        owner.insert(
            lead_id(&a.post(&format!("a{i}"), PlatformEventType::CheckoutUpdated, &format!("a{i}"), None).await),
            'A',
        );
        owner.insert(
            lead_id(&b.post(&format!("b{i}"), PlatformEventType::CheckoutUpdated, &format!("b{i}"), None).await),
            'B',
        );
    }
    let store = &a.engine.store;
    let throttled = std::collections::HashSet::from([a.producer.clone()]);
    let none = std::collections::HashSet::new();
    let (leads, _) = store.claim_leads_fair("w1", T0, 30_000, 4, "", &throttled, &none).await.expect("claim");
    let who: String = leads.iter().map(|(l, _)| owner[l]).collect();
    assert_eq!((who.matches('A').count(), who.matches('B').count()), (1, 3), "{db:?}: {who}");
    // Unthrottled, the two share equally, interleaved.
    let (leads, _) = store.claim_leads_fair("w2", T0, 30_000, 4, "", &none, &none).await.expect("claim");
    let who: String = leads.iter().map(|(l, _)| owner[l]).collect();
    assert_eq!((who.matches('A').count(), who.matches('B').count()), (2, 2), "{db:?}: {who}");
    // However many slots are free, a throttled producer gets one lead a claim (it may hold
    // one slot of a dispatcher: more would only wait, holding their leases).
    let (leads, _) = store.claim_leads_fair("w3", T0, 30_000, 20, "", &throttled, &none).await.expect("claim");
    let who: String = leads.iter().map(|(l, _)| owner[l]).collect();
    assert_eq!((who.matches('A').count(), who.matches('B').count()), (1, 5), "{db:?}: {who}");
    assert!(leads.iter().all(|(l, p)| (owner[l] == 'A') == (*p == a.producer)), "{db:?}: each with its producer");
    // A producer skipped (throttled and busy in this process) gets none.
    let skip = std::collections::HashSet::from([a.producer.clone()]);
    let (leads, _) = store.claim_leads_fair("w4", T0, 30_000, 20, "", &throttled, &skip).await.expect("claim");
    assert!(leads.is_empty(), "{db:?}: only A has due leads left, and it is skipped: {leads:?}");
}

#[test]
fn loads_of_one_component_at_once_compile_it_once() {
    let config = funnel_host::runtime::RuntimeConfig { cache_dir: None, ..Default::default() };
    let runtime = std::sync::Arc::new(funnel_host::runtime::Runtime::new(config).expect("runtime"));
    let start = std::sync::Arc::new(std::sync::Barrier::new(6));
    let loads: Vec<_> = (0..6)
        .map(|_| {
            let (runtime, start) = (runtime.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                runtime.load(funnel_host::guests::TEST_GUEST).expect("loads").sha256.clone()
            })
        })
        .collect();
    for load in loads {
        load.join().expect("thread");
    }
    assert_eq!(runtime.compiles(), 1, "six loads at once, one compile");
}

on_both!(many_events_needing_an_uncompiled_component_compile_it_once);
async fn many_events_needing_an_uncompiled_component_compile_it_once(db: Db) {
    let test_db = TestDb::new(db).await;
    let store = test_db.store().await;
    // The upload is stored by one engine; a fresh one (no compile cache) handles the events.
    let first = Harness::new(store.clone(), T0).await;
    first.bind_test_guest("roundtrip", None, None).await;
    for i in 0..12 {
        first.post(&format!("e{i}"), PlatformEventType::CheckoutUpdated, &format!("c{i}"), None).await;
    }
    let mut config = funnel_host::runtime::RuntimeConfig { cache_dir: None, ..Default::default() };
    config.max_concurrent_instances = 16;
    let runtime = std::sync::Arc::new(funnel_host::runtime::Runtime::new(config).expect("runtime"));
    let discard = std::sync::Arc::new(funnel_host::delivery::Discard);
    let h = Harness::attach_to(store, T0, discard.clone(), discard, runtime.clone()).await;
    h.settle().await;
    assert_eq!(test_db.count("SELECT COUNT(*) FROM events WHERE status = 'done'").await, 12, "{db:?}");
    assert_eq!(runtime.compiles(), 1, "{db:?}: leads in flight at once waited for one compile");
}

on_both!(sigterm_stops_the_engine_within_ten_seconds_and_loses_nothing);
async fn sigterm_stops_the_engine_within_ten_seconds_and_loses_nothing(db: Db) {
    let test_db = TestDb::new(db).await;
    let dir = tempfile::tempdir().expect("dir");
    let mut first = crate::process::spawn(&test_db.url, dir.path());
    let producer = first.create_producer().await;
    let (id, key) = (producer["id"].as_str().expect("id"), producer["api_key"].as_str().expect("key"));
    let binding = json!({"plugin": "four-emails", "config": {"emails": [{"after": "20m", "subject": "Volte", "html": "<p>{{checkout_url}}</p>"}]}});
    assert_eq!(first.bind(key, &binding).await.0, 200);
    let total = 40;
    let batch: Vec<serde_json::Value> = (0..total).map(|i| event(i, id)).collect();
    let (status, answer) = first
        .send(reqwest::Method::POST, "/v1/events/batch", crate::process::PLATFORM, json!({"events": batch}).to_string())
        .await;
    assert_eq!(status, 202, "{answer}");
    // SIGTERM while the engine works through them: it stops claiming, finishes or gives back
    // what it holds, and exits 0 within 10 s.
    let exit = first.terminate(Duration::from_secs(10));
    let exit = exit.unwrap_or_else(|| panic!("{db:?}: still running 10 s after SIGTERM"));
    assert!(exit.success(), "{db:?}: exited cleanly: {exit:?}");
    // The next start handles whatever was left, and nothing twice.
    let _second = crate::process::spawn(&test_db.url, dir.path());
    let store = test_db.store().await;
    wait_for(Duration::from_secs(60), "every event to be handled after the restart", || async {
        let mut timers = 0;
        for lead in store.list_leads(id, None, 500).await.expect("leads") {
            let timeline = store.timeline(&lead.id, 0).await.expect("timeline");
            let set = timeline.iter().filter(|e| e.kind() == TimelineKind::TimerSet).count();
            assert!(set <= 1, "{db:?}: lead {} handled twice: {timeline:?}", lead.id);
            timers += set;
        }
        (timers == total).then_some(())
    })
    .await;
}

#[tokio::test]
async fn sigterm_during_a_stuck_send_exits_within_ten_seconds_and_keeps_the_message() {
    let test_db = TestDb::new(Db::Sqlite).await;
    let dir = tempfile::tempdir().expect("dir");
    let (smtp_url, accepted) = smtp_server::silent("smtp");
    let mut serve = spawn_with(
        &test_db.url,
        dir.path(),
        &[("FUNNEL_SMTP_URL", smtp_url.as_str()), ("FUNNEL_DELIVERY_STEP_TIMEOUT_SECS", "3600")],
    );
    let producer = serve.create_producer().await;
    let (id, key) = (producer["id"].as_str().expect("id"), producer["api_key"].as_str().expect("key"));
    let guest = funnel_host::guests::TEST_GUEST.to_vec();
    assert_eq!(serve.send(reqwest::Method::POST, "/v1/plugins", key, guest).await.0, 201);
    assert_eq!(serve.bind(key, &json!({"plugin": "test-guest", "config": {"mode": "roundtrip"}})).await.0, 200);
    assert_eq!(serve.post_event(&event(1, id)).await.0, 202);
    wait_for(Duration::from_secs(60), "the email's send to start", || async {
        (accepted.load(Ordering::SeqCst) > 0).then_some(())
    })
    .await;
    let exit = serve.terminate(Duration::from_secs(10)).expect("exited within 10 s of SIGTERM");
    assert!(exit.success(), "exited cleanly: {exit:?}");
    // The send never finished: the email is still in the outbox (its lease runs out, then the
    // next start sends it).
    let unsent =
        test_db.count("SELECT COUNT(*) FROM outbox WHERE channel = 'email' AND status IN ('sending', 'queued')").await;
    assert_eq!(unsent, 1, "the email was kept for the next start");
}

/// A transport that, during its first send, lets the batch's lease run out and has another
/// worker take the claimed messages over (what a send slower than the lease meets on a
/// replica); it counts what it was asked to send.
struct SlowerThanTheLease {
    engine: std::sync::OnceLock<(funnel_host::store::Database, std::sync::Arc<funnel_host::clock::VirtualClock>)>,
    sent: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl funnel_host::delivery::Transport for SlowerThanTheLease {
    async fn send(
        &self,
        _message: &funnel_host::store::outbox::OutboxMessage,
    ) -> Result<(), funnel_host::delivery::SendError> {
        use funnel_host::clock::Clock;
        if self.sent.fetch_add(1, Ordering::SeqCst) == 0 {
            let (store, clock) = self.engine.get().expect("wired");
            clock.set(clock.now_ms() + 61_000);
            let taken = store.claim_messages(clock.now_ms(), 60_000, 10).await.expect("claim");
            assert_eq!(taken.len(), 2, "the other worker took both over");
        }
        Ok(())
    }
}

on_both!(a_message_whose_claim_was_taken_over_mid_batch_is_not_sent_by_the_old_owner);
async fn a_message_whose_claim_was_taken_over_mid_batch_is_not_sent_by_the_old_owner(db: Db) {
    let (_test_db, store) = TestDb::with_store(db).await;
    let slow = std::sync::Arc::new(SlowerThanTheLease { engine: Default::default(), sent: Default::default() });
    let h = Harness::with_transports(store.clone(), T0, slow.clone(), slow.clone()).await;
    // One send at a time: the second message waits for its turn past the lease (with sends in
    // parallel both would start inside it, and sending both would be right).
    h.engine.deliverer.set_concurrency(1);
    let _ = slow.engine.set((store, h.clock.clone()));
    h.bind_test_guest("roundtrip", None, None).await;
    let lead = lead_id(&h.post("e1", PlatformEventType::CheckoutUpdated, "ana", None).await);
    h.engine.dispatcher.drain().await.expect("drain");
    // One batch of two messages (an email and an SMS); the first send outlasts the lease.
    h.engine.deliverer.deliver_due().await.expect("deliver");
    assert_eq!(slow.sent.load(Ordering::SeqCst), 1, "{db:?}: the second message was left to its new owner");
    let statuses: Vec<String> = h.messages(&lead).await.into_iter().map(|m| m.status.to_string()).collect();
    assert_eq!(statuses, ["sending", "sending"], "{db:?}: both held by the new owner, nothing recorded over it");
}

on_both!(a_throttled_producer_holds_one_slot_and_new_work_of_another_starts_at_once);
/// Issue 13 #10, measured by the noisy-neighbour bench: producer A's plugin burns its fuel on
/// every event. Once throttled, A holds at most one of the dispatcher's slots, and producer B's
/// event posted while A's backlog is being worked through starts in the free slot as soon as
/// the dispatcher hears of it — not after A's leads already claimed. Checked by order in the
/// timeline (global `seq`), not by time.
async fn a_throttled_producer_holds_one_slot_and_new_work_of_another_starts_at_once(db: Db) {
    let test_db = TestDb::new(db).await;
    let a = Harness::new(test_db.store().await, T0).await;
    a.bind_test_guest("loop", Some("fuel"), None).await;
    let mut b = Harness::attach(test_db.store().await, T0).await;
    b.producer = b.engine.store.create_producer("B", T0).await.expect("producer").id;
    b.bind_test_guest("roundtrip", None, None).await;
    let a_leads = 60;
    for i in 0..a_leads {
        a.post(&format!("a{i}"), PlatformEventType::CheckoutUpdated, &format!("a{i}"), Some("fuel")).await;
    }
    let failures = "SELECT COUNT(*) FROM timeline WHERE kind = 'retry'";
    let drain = a.engine.dispatcher.drain();
    let post_b = async {
        wait_for(Duration::from_secs(60), "A's first failure", || async {
            (test_db.count(failures).await >= 1).then_some(())
        })
        .await;
        // Through A's store: on SQLite one writer connection, as in `serve` (a second one
        // would wait on the file lock behind A's commits).
        let lead =
            lead_id(&a.post_for(&b.producer, "b0", PlatformEventType::CheckoutUpdated, "b0", (None, None)).await);
        let failed_before = test_db.count(failures).await;
        a.engine.dispatcher.new_work().notify_one();
        (lead, failed_before)
    };
    let (drained, (b_lead, failed_at_post)) = tokio::join!(drain, post_b);
    drained.expect("drain");
    let b_handled = format!(
        "SELECT COALESCE(MIN(seq), 0) FROM timeline WHERE lead_id = '{b_lead}' AND kind = 'log' AND detail LIKE '%\"source\":\"plugin\",\"text\":\"event=%'"
    );
    let b_handled = test_db.count(&b_handled).await;
    assert!(b_handled > 0, "{db:?}: B's event was handled in the same drain");
    let a_before_b =
        test_db.count(&format!("SELECT COUNT(*) FROM timeline WHERE kind = 'retry' AND seq < {b_handled}")).await;
    // When B is posted, A has at most the dispatcher's slots in flight (more than one only if
    // they started before A was throttled): they may finish before B starts, and one more as
    // the two race; not the rest of A's backlog.
    assert!(failed_at_post < a_leads - 10, "{db:?}: B was posted after {failed_at_post} failures: too late to tell");
    assert!(
        a_before_b <= failed_at_post + 5,
        "{db:?}: {a_before_b} of A's {a_leads} failures came before B's event was handled ({failed_at_post} when posted)"
    );
    assert_eq!(test_db.count(failures).await, a_leads, "{db:?}: every A lead was tried");
}

/// A transport that holds the first message it is given until released, and sends every
/// other at once, counting them.
#[derive(Default)]
struct HoldsTheFirst {
    started: std::sync::atomic::AtomicUsize,
    sent: std::sync::atomic::AtomicUsize,
    release: tokio::sync::Notify,
}

#[async_trait::async_trait]
impl funnel_host::delivery::Transport for HoldsTheFirst {
    async fn send(
        &self,
        _message: &funnel_host::store::outbox::OutboxMessage,
    ) -> Result<(), funnel_host::delivery::SendError> {
        if self.started.fetch_add(1, Ordering::SeqCst) == 0 {
            self.release.notified().await;
        }
        self.sent.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

on_both!(a_send_that_hangs_does_not_hold_another_leads_messages);
/// Delivery sends in parallel: while one lead's message hangs on its server, another lead's
/// messages go out in the same step; the hung lead's next message waits its turn (a lead's
/// messages keep their order), and every outcome is recorded once the send ends.
async fn a_send_that_hangs_does_not_hold_another_leads_messages(db: Db) {
    let (_test_db, store) = TestDb::with_store(db).await;
    let transport = std::sync::Arc::new(HoldsTheFirst::default());
    let h = Harness::with_transports(store, T0, transport.clone(), transport.clone()).await;
    h.bind_test_guest("roundtrip", None, None).await;
    let ana = lead_id(&h.post("e1", PlatformEventType::CheckoutUpdated, "ana", None).await);
    let bia = lead_id(&h.post("e2", PlatformEventType::CheckoutUpdated, "bia", None).await);
    h.engine.dispatcher.drain().await.expect("drain");
    let watch = async {
        let started = std::time::Instant::now();
        while transport.sent.load(Ordering::SeqCst) < 2 {
            assert!(started.elapsed() < Duration::from_secs(20), "{db:?}: the other lead's messages were held");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // The held lead's other message has not started: it waits behind the hung one.
        assert_eq!(transport.started.load(Ordering::SeqCst), 3, "{db:?}: one lead, one send at a time");
        transport.release.notify_one();
    };
    let (delivered, ()) = tokio::join!(h.engine.deliverer.deliver_due(), watch);
    assert_eq!(delivered.expect("deliver"), 4, "{db:?}");
    assert_eq!(transport.sent.load(Ordering::SeqCst), 4, "{db:?}");
    for lead in [&ana, &bia] {
        let statuses: Vec<String> = h.messages(lead).await.into_iter().map(|m| m.status.to_string()).collect();
        assert_eq!(statuses, ["sent", "sent"], "{db:?}: every outcome recorded");
    }
}

on_both!(warming_compiles_every_bound_component_before_the_first_event);
/// `serve` warms at start: every component an enabled binding uses is loaded before any event
/// needs it, so a restarted engine's first event compiles nothing.
async fn warming_compiles_every_bound_component_before_the_first_event(db: Db) {
    let test_db = TestDb::new(db).await;
    let store = test_db.store().await;
    let first = Harness::new(store.clone(), T0).await;
    first.bind_test_guest("roundtrip", None, None).await;
    first.post("e1", PlatformEventType::CheckoutUpdated, "ana", None).await;
    // A fresh engine without a compile cache, as after a restart on a new machine.
    let config = funnel_host::runtime::RuntimeConfig { cache_dir: None, ..Default::default() };
    let runtime = std::sync::Arc::new(funnel_host::runtime::Runtime::new(config).expect("runtime"));
    let discard = std::sync::Arc::new(funnel_host::delivery::Discard);
    let h = Harness::attach_to(store, T0, discard.clone(), discard, runtime.clone()).await;
    let sha = funnel_host::runtime::plugin::sha256_hex(funnel_host::guests::TEST_GUEST);
    assert!(runtime.cached(&sha).is_none(), "{db:?}: nothing loaded yet");
    assert!(h.engine.plugins.warm(&h.engine.store).await >= 1, "{db:?}");
    assert!(runtime.cached(&sha).is_some(), "{db:?}: the bound upload is loaded");
    let compiles = runtime.compiles();
    h.settle().await;
    assert_eq!(test_db.count("SELECT COUNT(*) FROM events WHERE status = 'done'").await, 1, "{db:?}");
    assert_eq!(runtime.compiles(), compiles, "{db:?}: the first event compiled nothing");
}
