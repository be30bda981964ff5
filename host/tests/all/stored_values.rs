//! Values the store keeps as words or JSON and parses back on read: a row holding a value this
//! build does not know (written by a newer build, or by hand) is an error naming the table, the
//! row and the value, never a guess; rows an older build wrote in an older shape still read.

use funnel_host::domain::coupon::CouponSource;
use funnel_host::domain::timeline::LogLevel;
use funnel_host::domain::{LeadEvent, PlatformEventType, Scope, TimelineNote};
use funnel_host::store::StoreError;
use funnel_host::store::webhooks::{NewWebhook, Registered};
use funnel_host::webhooks::WebhookEvent;

use crate::db::{Db, TestDb, on_both};
use crate::harness::{Harness, T0, lead_id};

/// The error's table, row, column and value, for comparing in one assertion.
fn unknown(err: StoreError) -> (&'static str, String, &'static str, String) {
    match err {
        StoreError::UnknownValue { table, row, column, value } => (table, row, column, value),
        other => panic!("not an unknown value: {other}"),
    }
}

on_both!(an_unknown_run_status_is_an_error_naming_the_run);
async fn an_unknown_run_status_is_an_error_naming_the_run(db: Db) {
    let (test_db, store) = TestDb::with_store(db).await;
    let h = Harness::new(store, T0).await;
    h.bind_test_guest("roundtrip", None, None).await;
    let lead = lead_id(&h.post("e1", PlatformEventType::CheckoutUpdated, "c1", None).await);
    h.settle().await;
    let run = h.engine.store.run_snapshot(&lead).await.expect("reads").expect("a run");
    assert!(run.active, "{db:?}: a new lead's run is active");

    test_db.execute(&format!("UPDATE runs SET status = 'paused' WHERE lead_id = '{lead}'")).await;
    let err = h.engine.store.run_snapshot(&lead).await.expect_err("paused is no run status");
    assert_eq!(unknown(err), ("runs", lead.clone(), "status", "paused".into()), "{db:?}");
    // An event arriving for the lead asks whether its run is active: the same error, not "no".
    let err = h.engine.store.ingest(&h.event("e2", PlatformEventType::OrderPaid, "c1"), T0).await;
    let err = err.expect_err("the run's status is unknown");
    assert_eq!(unknown(err), ("runs", lead, "status", "paused".into()), "{db:?}");
}

on_both!(an_unknown_timeline_kind_is_an_error_naming_the_entry);
async fn an_unknown_timeline_kind_is_an_error_naming_the_entry(db: Db) {
    let (test_db, store) = TestDb::with_store(db).await;
    let h = Harness::new(store, T0).await;
    let lead = lead_id(&h.post("e1", PlatformEventType::CheckoutUpdated, "c1", None).await);
    let note = TimelineNote::ListAdd { list: "buyers".into() };
    h.engine.store.note(&lead, T0, &note).await.expect("a note");
    let entries = h.engine.store.timeline(&lead, 0).await.expect("reads");
    assert_eq!(entries.iter().map(|e| &e.note).collect::<Vec<_>>(), [&note], "{db:?}");

    let seq = entries[0].seq;
    test_db.execute(&format!("UPDATE timeline SET kind = 'fax_sent' WHERE seq = {seq}")).await;
    let err = h.engine.store.timeline(&lead, 0).await.expect_err("fax_sent is no timeline kind");
    assert_eq!(unknown(err), ("timeline", seq.to_string(), "kind", "fax_sent".into()), "{db:?}");
}

on_both!(timeline_rows_an_older_build_wrote_still_read);
async fn timeline_rows_an_older_build_wrote_still_read(db: Db) {
    let (test_db, store) = TestDb::with_store(db).await;
    let h = Harness::new(store, T0).await;
    let lead = lead_id(&h.post("e1", PlatformEventType::CheckoutUpdated, "c1", None).await);
    // The rows as builds before typed entries wrote them: prose, or JSON for message entries.
    let old = [
        ("log", "[info] plugin: event=captured"),
        ("timer_set", "first reminder due in 3600 s"),
        ("list_add", "buyers"),
        ("refused", "send-email: the subject is empty"),
        ("retry", "captured event failed (attempt 1), retrying in 1 s: trap: unreachable"),
        ("failed", "timer event parked as failed after 5 attempts: out of fuel"),
        ("run_ended", "the strategy finished with this lead"),
        ("coupon_assigned", "unique coupon VOLTA-7Q2 (15% off) from the pattern"),
        ("variant", "split first: variant b"),
        ("unsubscribed", "c1@example.com"),
        (
            "email",
            r#"{"body":null,"channel":"email","coupon":"VOLTA10","message_id":"m1","reason":null,"subject":"Oi","tag":"email-1"}"#,
        ),
        (
            "deferred",
            r#"{"channel":"sms","message_id":"m2","reason":"send_window","tag":"sms-1","until":1767258000000,"until_local":"2026-01-01 09:00"}"#,
        ),
    ];
    for (i, (kind, detail)) in old.iter().enumerate() {
        let detail = detail.replace('\'', "''");
        test_db
            .execute(&format!(
                "INSERT INTO timeline (lead_id, at, kind, detail) VALUES ('{lead}', {}, '{kind}', '{detail}')",
                T0 + i as i64
            ))
            .await;
    }
    let entries = h.engine.store.timeline(&lead, 0).await.expect("older rows read");
    let notes: Vec<TimelineNote> = entries.iter().map(|e| e.note.clone()).collect();
    assert_eq!(
        notes[..4],
        [
            TimelineNote::Log { level: LogLevel::Info, source: "plugin".into(), text: "event=captured".into() },
            TimelineNote::TimerSet { tag: "first reminder".into(), after_s: 3600 },
            TimelineNote::ListAdd { list: "buyers".into() },
            TimelineNote::Refused { reason: "send-email: the subject is empty".into() },
        ],
        "{db:?}"
    );
    assert_eq!(
        notes[7],
        TimelineNote::CouponAssigned { code: "VOLTA-7Q2".into(), discount_percent: 15, source: CouponSource::Pattern },
        "{db:?}"
    );
    assert_eq!(notes[10].message_id(), Some("m1"), "{db:?}");
    // What users read of them is what they read before: the stored detail, word for word.
    for (entry, (kind, detail)) in entries.iter().zip(old) {
        assert_eq!(entry.kind().as_str(), kind, "{db:?}");
        let shown: serde_json::Value = serde_json::from_str(&entry.detail()).unwrap_or(detail.into());
        let stored: serde_json::Value = serde_json::from_str(detail).unwrap_or(detail.into());
        assert_eq!(shown, stored, "{db:?}: {kind}");
    }
}

on_both!(a_binding_scope_with_a_plan_but_no_product_is_an_error_naming_the_binding);
async fn a_binding_scope_with_a_plan_but_no_product_is_an_error_naming_the_binding(db: Db) {
    let (test_db, store) = TestDb::with_store(db).await;
    let h = Harness::new(store, T0).await;
    let binding = h.bind_test_guest("roundtrip", Some("p1"), Some("gold")).await;
    let bindings = h.engine.store.bindings(&h.producer).await.expect("reads");
    assert_eq!(
        bindings.iter().map(|b| &b.scope).collect::<Vec<_>>(),
        [&Scope::ProductPlan("p1".into(), "gold".into())]
    );
    let lead = lead_id(
        &h.post_for(&h.producer, "e1", PlatformEventType::CheckoutUpdated, "c1", (Some("p1"), Some("gold"))).await,
    );
    let run = h.engine.store.run_snapshot(&lead).await.expect("reads").expect("the plan's binding serves it");
    assert_eq!(run.binding_scope, Scope::ProductPlan("p1".into(), "gold".into()), "{db:?}");

    // "Any product, plan gold" is no scope: whoever wrote it, reading it is an error.
    test_db.execute(&format!("UPDATE bindings SET product_id = '' WHERE id = '{binding}'")).await;
    let expected = ("bindings", binding.clone(), "scope", "plan gold without a product".to_string());
    let err = h.engine.store.bindings(&h.producer).await.expect_err("a plan without its product");
    assert_eq!(unknown(err), expected, "{db:?}");
    let err = h.engine.store.run_snapshot(&lead).await.expect_err("the lead's binding has no scope");
    assert_eq!(unknown(err), expected, "{db:?}");
}

on_both!(an_unknown_plugin_status_or_webhook_delivery_word_is_an_error_naming_the_row);
async fn an_unknown_plugin_status_or_webhook_delivery_word_is_an_error_naming_the_row(db: Db) {
    let (test_db, store) = TestDb::with_store(db).await;
    let h = Harness::new(store, T0).await;
    h.bind_test_guest("roundtrip", None, None).await;
    let sha = funnel_host::runtime::plugin::sha256_hex(funnel_host::guests::TEST_GUEST);
    let url = "https://hooks.example/funnel";
    let registered = h.engine.store.create_webhook(&h.producer, url, &[WebhookEvent::LeadPurchased], 10, T0).await;
    let Ok(Registered::Created(NewWebhook { webhook, .. })) = registered else { panic!("{db:?}: {registered:?}") };
    h.post("e1", PlatformEventType::CheckoutUpdated, "c1", None).await;
    h.post("e2", PlatformEventType::OrderPaid, "c1", None).await;
    let deliveries = h.engine.store.webhook_deliveries(&h.producer, &webhook.id, None, 10).await.expect("reads");
    assert_eq!(deliveries.len(), 1, "{db:?}: the purchase is reported");

    test_db.execute("UPDATE plugins SET status = 'vetted'").await;
    let err = h.engine.store.plugins(&h.producer).await.expect_err("vetted is no plugin status");
    assert_eq!(unknown(err), ("plugins", sha, "status", "vetted".into()), "{db:?}");
    test_db.execute("UPDATE webhook_deliveries SET status = 'lost'").await;
    let err = h.engine.store.webhook_deliveries(&h.producer, &webhook.id, None, 10).await;
    let err = err.expect_err("lost is no delivery status");
    assert_eq!(unknown(err), ("webhook_deliveries", deliveries[0].id.clone(), "status", "lost".into()), "{db:?}");
    test_db.execute("UPDATE webhook_deliveries SET status = 'pending', event = 'lead.teleported'").await;
    let err = h.engine.store.claim_webhook_deliveries(T0, 60_000, 10, &[]).await;
    let err = err.expect_err("lead.teleported is no event type");
    let expected = ("webhook_deliveries", deliveries[0].id.clone(), "event", "lead.teleported".into());
    assert_eq!(unknown(err), expected, "{db:?}");
}

on_both!(an_event_row_of_an_unknown_type_is_an_error_naming_the_event);
async fn an_event_row_of_an_unknown_type_is_an_error_naming_the_event(db: Db) {
    let (test_db, store) = TestDb::with_store(db).await;
    let h = Harness::new(store, T0).await;
    let lead = lead_id(&h.post("e1", PlatformEventType::CheckoutUpdated, "c1", None).await);
    let events = h.engine.store.lead_events(&h.producer, &lead).await.expect("reads");
    assert_eq!(events.iter().map(|e| e.event.clone()).collect::<Vec<_>>(), [Some(LeadEvent::Captured)], "{db:?}");

    let payload = r#"{"type":"teleported"}"#;
    test_db.execute(&format!("UPDATE events SET payload = '{payload}' WHERE seq = {}", events[0].seq)).await;
    let err = h.engine.store.lead_events(&h.producer, &lead).await.expect_err("teleported is no event");
    assert_eq!(unknown(err), ("events", events[0].seq.to_string(), "payload", payload.into()), "{db:?}");
}
