//! The HTTP API over real HTTP on loopback, with the engine on a virtual clock behind it and
//! messages written as files: auth failures, bad bodies (problem+json naming the field, nothing
//! stored), duplicates, batches (one transaction, answered per event), bindings checked by the
//! plugin, a first email after 20 minutes, tracked links, stats, uploads, lists and erasure.

use std::sync::Arc;

use funnel_host::api::{self, auth};
use funnel_host::clock::Clock;
use funnel_host::scheduler::periodic::{Periodic, PeriodicJobs};
use serde_json::{Value, json};

use crate::api_server::{
    PLATFORM, SECRET, TapEvent, event, four_emails, link, start, start_with, unfold_quoted_printable,
};
use crate::db::{Db, TestDb, on_both};
use crate::harness::T0;

on_both!(auth_failures_are_refused);
async fn auth_failures_are_refused(db: Db) {
    let (_db, store) = TestDb::with_store(db).await;
    let s = start(store).await;
    let (status, _) = s.send(reqwest::Method::POST, "/v1/admin/producers", None, Some(json!({"name": "x"}))).await;
    assert_eq!(status, 401, "no admin token");
    let (status, _) =
        s.send(reqwest::Method::POST, "/v1/admin/producers", Some("wrong"), Some(json!({"name": "x"}))).await;
    assert_eq!(status, 401, "wrong admin token");
    let (producer, key) = s.producer().await;
    let (status, _) = s.send(reqwest::Method::GET, "/v1/leads", None, None).await;
    assert_eq!(status, 401, "no producer key");
    let (status, _) =
        s.send(reqwest::Method::POST, "/v1/events", Some(&key), Some(event("e1", &producer, "a@b.co"))).await;
    assert_eq!(status, 401, "a producer key is not a platform token");

    let body = event("e1", &producer, "ana@example.com").to_string();
    let now_s = T0 / 1000;
    for (signature, why) in [
        (auth::sign("wrong secret", now_s, body.as_bytes()), "bad signature"),
        (auth::sign(SECRET, now_s - 600, body.as_bytes()), "stale timestamp"),
        ("t=abc".to_string(), "malformed header"),
    ] {
        let resp = s
            .http
            .post(format!("{}/v1/events", s.base))
            .header("Funnel-Signature", signature)
            .body(body.clone())
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status().as_u16(), 401, "{why}");
    }
    let good = auth::sign(SECRET, now_s, body.as_bytes());
    let resp = s
        .http
        .post(format!("{}/v1/events", s.base))
        .header("Funnel-Signature", good)
        .body(body)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 202, "a good signature is accepted");

    // Another producer's key sees nothing of this producer's leads.
    let (_, other_key) = s.producer().await;
    let (_, leads) = s.send(reqwest::Method::GET, "/v1/leads", Some(&other_key), None).await;
    assert_eq!(leads["leads"], json!([]));
}

on_both!(bad_bodies_name_the_field_and_store_nothing);
async fn bad_bodies_name_the_field_and_store_nothing(db: Db) {
    let (_db, store) = TestDb::with_store(db).await;
    let s = start(store).await;
    let (producer, key) = s.producer().await;
    let mut missing_checkout = event("e1", &producer, "a@b.co");
    missing_checkout.as_object_mut().expect("object").remove("checkout");
    let mut bad_type = event("e2", &producer, "a@b.co");
    bad_type["type"] = json!("order.exploded");
    let cases = [
        (event("e3", &producer, "not-an-email"), "checkout.email"),
        (missing_checkout, "$"),
        (bad_type, "type"),
        (event("e4", "no-such-producer", "a@b.co"), "producer_id"),
        (
            json!({"id": "e5", "type": "checkout.updated", "occurred_at": "yesterday", "producer_id": producer, "checkout": {"id": "c"}}),
            "occurred_at",
        ),
    ];
    for (body, path) in cases {
        let (status, problem) = s.send(reqwest::Method::POST, "/v1/events", Some(PLATFORM), Some(body)).await;
        assert_eq!(status, 422, "{problem}");
        let paths: Vec<&str> =
            problem["errors"].as_array().expect("errors").iter().filter_map(|e| e["path"].as_str()).collect();
        assert!(paths.contains(&path), "expected {path} in {paths:?}: {problem}");
    }
    let batch = json!({"events": [event("b1", &producer, "a@b.co"), event("b2", &producer, "nope")]});
    let (status, problem) = s.send(reqwest::Method::POST, "/v1/events/batch", Some(PLATFORM), Some(batch)).await;
    assert_eq!(status, 422);
    assert_eq!(problem["errors"][0]["path"], "events[1].checkout.email");
    let (_, leads) = s.send(reqwest::Method::GET, "/v1/leads", Some(&key), None).await;
    assert_eq!(leads["leads"], json!([]), "nothing was stored");

    let (status, problem) = s
        .send(
            reqwest::Method::PUT,
            "/v1/bindings",
            Some(&key),
            Some(json!({"plugin": "four-emails", "config": {"emails": []}})),
        )
        .await;
    assert_eq!((status, problem["errors"][0]["path"].as_str()), (422, Some("config.emails")), "{problem}");
    let (status, problem) =
        s.send(reqwest::Method::PUT, "/v1/bindings", Some(&key), Some(json!({"plugin": "nope", "config": {}}))).await;
    assert_eq!((status, problem["errors"][0]["path"].as_str()), (422, Some("plugin")), "{problem}");
    let (_, bindings) = s.send(reqwest::Method::GET, "/v1/bindings", Some(&key), None).await;
    assert_eq!(bindings["bindings"], json!([]), "no binding was stored");
}

on_both!(an_abandoned_checkout_gets_its_first_email_after_20_minutes);
async fn an_abandoned_checkout_gets_its_first_email_after_20_minutes(db: Db) {
    let (_db, store) = TestDb::with_store(db).await;
    let s = start(store).await;
    let (producer, key) = s.producer().await;
    let (status, binding) = s.send(reqwest::Method::PUT, "/v1/bindings", Some(&key), Some(four_emails())).await;
    assert_eq!(status, 200, "{binding}");
    let (status, first) = s
        .send(reqwest::Method::POST, "/v1/events", Some(PLATFORM), Some(event("evt-1", &producer, "ana@example.com")))
        .await;
    assert_eq!((status, first["status"].as_str()), (202, Some("accepted")), "{db:?} {first}");
    let (_, again) = s
        .send(reqwest::Method::POST, "/v1/events", Some(PLATFORM), Some(event("evt-1", &producer, "ana@example.com")))
        .await;
    assert_eq!(again, json!({"status": "duplicate", "lead_id": first["lead_id"]}));

    s.engine.settle().await.expect("settle");
    s.clock.set(T0 + 19 * 60_000 + 59_000);
    s.engine.settle().await.expect("settle");
    assert_eq!(
        std::fs::read_dir(s.outbox.path()).map(|d| d.count()).unwrap_or(0),
        0,
        "{db:?}: nothing before 20 minutes"
    );
    s.clock.set(T0 + 20 * 60_000);
    s.engine.settle().await.expect("settle");
    let files: Vec<_> = std::fs::read_dir(s.outbox.path()).expect("outbox").flatten().collect();
    assert_eq!(files.len(), 1, "{db:?}: one email at 20 minutes");
    let eml = unfold_quoted_printable(&std::fs::read_to_string(files[0].path()).expect("eml"));
    assert!(eml.contains("Subject: Ana, seu pedido =?utf-8?b?PGVzdMOhPg==?= esperando"), "encoded subject: {eml}");
    assert!(eml.contains("Oi Ana Souza, <a href=\"https://funnel.test/r/"), "tracked link, escaped name: {eml}");
    assert!(eml.contains("Oi Ana Souza, volte (https://funnel.test/r/"), "a text part with the link: {eml}");
    assert!(eml.contains("@funnel>"), "stable Message-ID: {eml}");
    assert!(eml.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"), "{eml}");

    let (_, leads) = s.send(reqwest::Method::GET, "/v1/leads", Some(&key), None).await;
    let lead = &leads["leads"][0];
    assert_eq!(
        (lead["status"].as_str(), lead["value"]["amount_cents"].as_i64()),
        (Some("recovering"), Some(9700)),
        "{db:?} {lead}"
    );
    assert_eq!(lead["messages"][0]["tag"], "email-1");
    assert_eq!(lead["messages"][0]["status"], "sent");
    let (status, detail) = s
        .send(reqwest::Method::GET, &format!("/v1/leads/{}", first["lead_id"].as_str().unwrap_or("")), Some(&key), None)
        .await;
    assert_eq!(status, 200);
    assert!(detail["timeline"].as_array().is_some_and(|t| t.iter().any(|e| e["kind"] == "email")), "{detail}");
}

on_both!(four_emails_over_http_reaches_a_real_smtp_server_at_20_minutes);
async fn four_emails_over_http_reaches_a_real_smtp_server_at_20_minutes(db: Db) {
    let (_db, store) = TestDb::with_store(db).await;
    let (url, mailbox) = crate::smtp_server::start();
    let smtp = funnel_host::delivery::smtp::SmtpTransport::new(
        &url,
        "Loja da Ana <loja@example.com>",
        "https://funnel.test".into(),
    )
    .expect("smtp");
    let s = start_with(store, Some(Arc::new(smtp))).await;
    let (producer, key) = s.producer().await;
    let binding = json!({"plugin": "four-emails", "config": {"emails": [
        {"after": "20m", "subject": "{{first_name}}, seu pedido está esperando",
         "html": "<p>Oi {{first_name}}, faltou pouco! <a href=\"{{checkout_url}}\">Finalize sua compra</a>.</p>"}]}});
    let (status, body) = s.send(reqwest::Method::PUT, "/v1/bindings", Some(&key), Some(binding)).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = s
        .send(reqwest::Method::POST, "/v1/events", Some(PLATFORM), Some(event("evt-1", &producer, "ana@example.com")))
        .await;
    assert_eq!(status, 202);
    s.engine.settle().await.expect("settle"); // as serve's engine loop does at once
    s.clock.set(T0 + 19 * 60_000 + 59_000);
    s.engine.settle().await.expect("settle");
    assert!(mailbox.received().is_empty(), "nothing before 20 minutes");
    s.clock.set(T0 + 20 * 60_000);
    s.engine.settle().await.expect("settle");
    let received = mailbox.received();
    let (_, leads) = s.send(reqwest::Method::GET, "/v1/leads", Some(&key), None).await;
    assert_eq!(received.len(), 1, "{leads}");
    let mail = unfold_quoted_printable(&received[0]);
    assert!(mail.contains("Subject: Ana, seu pedido =?utf-8?"), "{mail}");
    assert!(mail.contains("<a href=\"https://funnel.test/r/"), "tracked link: {mail}");
}

on_both!(tracked_links_click_through_and_unsubscribe_in_one_click);
async fn tracked_links_click_through_and_unsubscribe_in_one_click(db: Db) {
    let (_db, store) = TestDb::with_store(db).await;
    let s = start(store).await;
    let (producer, key) = s.producer().await;
    let binding = json!({"plugin": "four-emails", "config": {"emails": [
        {"after": "20m", "subject": "Volte", "html": "<p><a href=\"{{checkout_url}}\">pagar</a> <a href=\"{{unsubscribe_url}}\">sair</a></p>"},
        {"after": "5h", "subject": "De novo", "html": "<p>{{checkout_url}}</p>"}]}});
    assert_eq!(s.send(reqwest::Method::PUT, "/v1/bindings", Some(&key), Some(binding)).await.0, 200);
    let (_, accepted) = s
        .send(reqwest::Method::POST, "/v1/events", Some(PLATFORM), Some(event("e1", &producer, "ana@example.com")))
        .await;
    let lead = accepted["lead_id"].as_str().expect("lead").to_string();
    s.engine.settle().await.expect("settle");
    s.clock.set(T0 + 20 * 60_000);
    s.engine.settle().await.expect("settle");
    let file = std::fs::read_dir(s.outbox.path()).expect("outbox").flatten().next().expect("an email");
    let mail = unfold_quoted_printable(&std::fs::read_to_string(file.path()).expect("read"));

    let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let click = no_redirects.get(format!("{}/r/{}", s.base, link(&mail, "r"))).send().await.expect("click");
    assert_eq!(click.status().as_u16(), 302);
    assert_eq!(click.headers()["location"], "https://pay.example/chk-1", "the tracked link leads to the checkout");
    s.engine.settle().await.expect("settle");
    let (_, detail) = s.send(reqwest::Method::GET, &format!("/v1/leads/{lead}"), Some(&key), None).await;
    assert_eq!(detail["messages"][0]["clicked"], true, "{detail}");
    // Clicking again (a person, a link scanner, a bot) still leads to the checkout but tells
    // the plugin nothing new: one `clicked` event per message, however many clicks.
    for _ in 0..5 {
        let again = no_redirects.get(format!("{}/r/{}", s.base, link(&mail, "r"))).send().await.expect("click");
        assert_eq!(again.status().as_u16(), 302);
    }
    s.engine.settle().await.expect("settle");
    assert_eq!(_db.count("SELECT COUNT(*) FROM events WHERE kind = 'clicked'").await, 1, "{db:?}: one clicked event");
    let unknown = no_redirects.get(format!("{}/r/{}", s.base, "0".repeat(32))).send().await.expect("unknown");
    assert_eq!(unknown.status().as_u16(), 404);

    let token = link(&mail, "u");
    let page = no_redirects.get(format!("{}/u/{token}", s.base)).send().await.expect("page");
    assert_eq!(page.status().as_u16(), 200);
    assert!(page.text().await.expect("html").contains("<form method=\"post\""), "a confirmation page");
    let (_, before) = s.send(reqwest::Method::GET, &format!("/v1/leads/{lead}"), Some(&key), None).await;
    assert_eq!(before["status"], "recovering", "a GET changes nothing");
    let one_click = no_redirects
        .post(format!("{}/u/{token}", s.base))
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .expect("one-click");
    assert_eq!(one_click.status().as_u16(), 200);
    s.clock.set(T0 + 6 * 3_600_000);
    s.engine.settle().await.expect("settle");
    let (_, after) = s.send(reqwest::Method::GET, &format!("/v1/leads/{lead}"), Some(&key), None).await;
    assert_eq!(after["status"], "unsubscribed", "{after}");
    assert_eq!(std::fs::read_dir(s.outbox.path()).expect("outbox").count(), 1, "no second email after unsubscribing");
}

on_both!(stats_credit_the_clicked_message_with_the_recovery);
async fn stats_credit_the_clicked_message_with_the_recovery(db: Db) {
    let (_db, store) = TestDb::with_store(db).await;
    let s = start(store).await;
    let (producer, key) = s.producer().await;
    let binding = json!({"plugin": "four-emails", "config": {"emails": [
        {"after": "20m", "subject": "Volte", "html": "<p><a href=\"{{checkout_url}}\">pagar</a></p>"},
        {"after": "5h", "subject": "De novo", "html": "<p>{{checkout_url}}</p>"}]}});
    assert_eq!(s.send(reqwest::Method::PUT, "/v1/bindings", Some(&key), Some(binding)).await.0, 200);
    s.send(reqwest::Method::POST, "/v1/events", Some(PLATFORM), Some(event("e1", &producer, "ana@example.com"))).await;
    s.send(
        reqwest::Method::POST,
        "/v1/events",
        Some(PLATFORM),
        Some(event("e2", &producer, "bia@example.com").tap_checkout("chk-2")),
    )
    .await;
    s.engine.settle().await.expect("settle");
    s.clock.set(T0 + 20 * 60_000);
    s.engine.settle().await.expect("settle");
    let mut files: Vec<_> = std::fs::read_dir(s.outbox.path()).expect("outbox").flatten().map(|f| f.path()).collect();
    files.sort();
    let ana = files
        .iter()
        .map(|f| unfold_quoted_printable(&std::fs::read_to_string(f).expect("read")))
        .find(|m| m.contains("To: ana@example.com"))
        .expect("ana's email");
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    client.get(format!("{}/r/{}", s.base, link(&ana, "r"))).send().await.expect("click");
    s.clock.set(T0 + 3_600_000);
    s.engine.settle().await.expect("settle");
    let mut paid = event("e3", &producer, "ana@example.com");
    paid["type"] = json!("order.paid");
    s.send(reqwest::Method::POST, "/v1/events", Some(PLATFORM), Some(paid)).await;
    s.engine.settle().await.expect("settle");
    let (status, stats) = s.send(reqwest::Method::GET, "/v1/stats", Some(&key), None).await;
    assert_eq!(status, 200);
    assert_eq!(
        stats,
        json!({"leads": 2, "recovered": 1, "recovered_revenue": [{"currency": "BRL", "amount_cents": 9700}],
               "by_tag": [{"tag": "email-1", "sent": 2, "clicked": 1, "recovered": 1}],
               "capped": {"deferred": 0, "dropped": 0}, "by_variant": []}),
        "{db:?}"
    );
    let (_, leads) = s.send(reqwest::Method::GET, "/v1/leads", Some(&key), None).await;
    let statuses: Vec<&str> =
        leads["leads"].as_array().expect("leads").iter().filter_map(|l| l["status"].as_str()).collect();
    assert!(statuses.contains(&"recovered") && statuses.contains(&"recovering"), "{statuses:?}");

    // Per day, from the roll-up the periodic job refreshes: nothing until it has run.
    let range = "/v1/stats?from=2025-12-31&to=2026-01-02";
    let (_, before) = s.send(reqwest::Method::GET, range, Some(&key), None).await;
    assert_eq!(before["daily"], json!([]), "{db:?}");
    let mut jobs = PeriodicJobs {
        retention: Periodic::parse("0 30 3 * * *").expect("cron"),
        retention_days: 90,
        stats_rollup: Periodic::parse("0 * * * * *").expect("cron"),
    };
    let now = s.clock.now_ms();
    jobs.run_due(&s.engine.store, now).await; // arms the schedules
    jobs.run_due(&s.engine.store, now + 60_000).await;
    let (status, after) = s.send(reqwest::Method::GET, range, Some(&key), None).await;
    assert_eq!(status, 200);
    assert_eq!(
        after["daily"],
        json!([{"day": "2026-01-01", "leads": 2, "recovered": 1,
                "by_tag": [{"tag": "email-1", "sent": 2, "clicked": 1, "recovered": 1}]}]),
        "{db:?}"
    );
    assert_eq!(after["leads"], 2, "the totals stay live");
    let (status, bad) = s.send(reqwest::Method::GET, "/v1/stats?from=2026-01-02&to=2026-01-01", Some(&key), None).await;
    assert_eq!((status, bad["errors"][0]["path"].as_str()), (422, Some("to")));
}

fn statuses(body: &Value) -> Vec<&str> {
    body["results"].as_array().expect("results").iter().filter_map(|r| r["status"].as_str()).collect()
}

on_both!(a_batch_is_stored_in_one_transaction_and_answered_per_event);
async fn a_batch_is_stored_in_one_transaction_and_answered_per_event(db: Db) {
    let test_db = TestDb::new(db).await;
    let s = start(test_db.store().await).await;
    let (producer, key) = s.producer().await;
    let batch = json!({"events": [
        event("b1", &producer, "ana@example.com"),
        event("b1", &producer, "ana@example.com"),
        event("b2", &producer, "ana@example.com"),
        event("b3", &producer, "bia@example.com").tap_checkout("chk-2"),
    ]});
    let (status, body) = s.send(reqwest::Method::POST, "/v1/events/batch", Some(PLATFORM), Some(batch.clone())).await;
    assert_eq!(status, 202, "{db:?}: {body}");
    assert_eq!(statuses(&body), ["accepted", "duplicate", "accepted", "accepted"], "{db:?}: a repeat inside the batch");
    let results = &body["results"];
    assert_eq!(results[0]["lead_id"], results[1]["lead_id"], "{db:?}");
    assert_eq!(results[0]["lead_id"], results[2]["lead_id"], "{db:?}: one checkout, one lead");
    assert_ne!(results[0]["lead_id"], results[3]["lead_id"], "{db:?}");
    let (_, again) = s.send(reqwest::Method::POST, "/v1/events/batch", Some(PLATFORM), Some(batch)).await;
    assert_eq!(statuses(&again), ["duplicate"; 4], "{db:?}: a platform retry changes nothing");

    // All or nothing: the database refuses the third event, so the first two are not kept.
    test_db.refuse("events", "INSERT", "NEW.platform_id = 'boom'").await;
    let c1 = event("c1", &producer, "caio@example.com").tap_checkout("chk-3");
    let c2 = event("c2", &producer, "dora@example.com").tap_checkout("chk-4");
    let boom = event("boom", &producer, "eva@example.com").tap_checkout("chk-5");
    let failing = json!({"events": [c1.clone(), c2.clone(), boom]});
    let (status, _) = s.send(reqwest::Method::POST, "/v1/events/batch", Some(PLATFORM), Some(failing)).await;
    assert_eq!(status, 500, "{db:?}");
    let (_, leads) = s.send(reqwest::Method::GET, "/v1/leads", Some(&key), None).await;
    assert_eq!(leads["leads"].as_array().map(Vec::len), Some(2), "{db:?}: no lead of the failed batch: {leads}");
    let retry = json!({"events": [c1, c2]});
    let (status, body) = s.send(reqwest::Method::POST, "/v1/events/batch", Some(PLATFORM), Some(retry)).await;
    assert_eq!((status, statuses(&body)), (202, vec!["accepted", "accepted"]), "{db:?}: none was stored");
}

on_both!(uploaded_plugins_and_lists);
async fn uploaded_plugins_and_lists(db: Db) {
    let (_db, store) = TestDb::with_store(db).await;
    let s = start(store).await;
    let (producer, key) = s.producer().await;
    let (status, problem) = s.upload(&key, b"not wasm at all".to_vec()).await;
    assert_eq!((status, problem["errors"][0]["path"].as_str()), (422, Some("body")), "{db:?}");
    assert!(problem["detail"].as_str().unwrap_or("").contains("not WebAssembly"), "{problem}");
    let (_, plugins) = s.get("/v1/plugins", &key).await;
    assert_eq!(plugins["plugins"], json!([]), "{db:?}: a refused upload is not stored");
    assert_eq!(s.upload(&key, funnel_host::guests::TEST_GUEST.to_vec()).await.0, 201, "{db:?}");
    let (_, plugins) = s.get("/v1/plugins", &key).await;
    assert_eq!(plugins["plugins"][0]["name"], "test-guest", "{db:?}: {plugins}");

    bind_roundtrip(&s, &key).await;
    s.post_event(event("e1", &producer, "Ana@Example.com")).await;
    s.settle().await;
    let (_, lists) = s.get("/v1/lists", &key).await;
    assert_eq!(lists, json!({"lists": [{"name": "vip", "members": 1}]}), "{db:?}");
    let (_, members) = s.get("/v1/lists/vip/members", &key).await;
    assert_eq!(members["members"][0]["email"], "ana@example.com", "{db:?}");
}

/// Upload the test guest and bind it producer-wide in roundtrip mode (an email, an SMS, a
/// timer and list `vip` per event).
async fn bind_roundtrip(s: &crate::api_server::Server, key: &str) {
    // 201 when stored now, 200 when these bytes were stored already.
    assert!(matches!(s.upload(key, funnel_host::guests::TEST_GUEST.to_vec()).await.0, 200 | 201));
    let binding = json!({"plugin": "test-guest", "config": {"mode": "roundtrip"}});
    let (status, body) = s.send(reqwest::Method::PUT, "/v1/bindings", Some(key), Some(binding)).await;
    assert_eq!(status, 200, "{body}");
}

on_both!(erasure_removes_the_person_keeps_their_suppression_and_nothing_else);
async fn erasure_removes_the_person_keeps_their_suppression_and_nothing_else(db: Db) {
    let test_db = TestDb::new(db).await;
    let s = start(test_db.store().await).await;
    let (a, ka) = s.producer().await;
    let (b, kb) = s.producer().await;
    bind_roundtrip(&s, &ka).await;
    bind_roundtrip(&s, &kb).await;
    // Ana at producer A (the one erased), Bia at A, and Ana at producer B.
    let post = |producer: &str, id: &str, email: &str, checkout: &str| {
        s.post_event(event(id, producer, email).tap_checkout(checkout))
    };
    let ana = post(&a, "a1", "Ana@Example.com", "chk-1").await.1["lead_id"].as_str().expect("lead").to_string();
    let bia = post(&a, "a2", "bia@example.com", "chk-2").await.1["lead_id"].as_str().expect("lead").to_string();
    let ana_at_b = post(&b, "b1", "ana@example.com", "chk-1").await.1["lead_id"].as_str().expect("lead").to_string();
    s.settle().await;
    // Ana unsubscribed before asking for erasure: that suppression must survive it.
    s.engine.store.unsubscribe_lead(&ana, T0).await.expect("unsubscribe");
    post(&a, "a3", "ana@example.com", "chk-1").await;

    let (status, _) = s.send(reqwest::Method::DELETE, "/v1/contacts/ana@example.com", Some(&ka), None).await;
    assert_eq!(status, 204, "{db:?}");
    let of = |table: &str, lead: &str| format!("SELECT COUNT(*) FROM {table} WHERE lead_id = '{lead}'");
    for table in ["events", "lead_queue", "outbox", "timers", "runs", "timeline", "list_members"] {
        assert_eq!(test_db.count(&of(table, &ana)).await, 0, "{db:?}: Ana's rows in {table} are gone");
    }
    assert_eq!(test_db.count(&format!("SELECT COUNT(*) FROM leads WHERE id = '{ana}'")).await, 0, "{db:?}");
    let mentions = format!(
        "SELECT (SELECT COUNT(*) FROM leads WHERE producer_id = '{a}' AND LOWER(email) = 'ana@example.com')
              + (SELECT COUNT(*) FROM outbox WHERE producer_id = '{a}' AND LOWER(recipient) = 'ana@example.com')
              + (SELECT COUNT(*) FROM list_members WHERE producer_id = '{a}' AND email = 'ana@example.com')"
    );
    assert_eq!(test_db.count(&mentions).await, 0, "{db:?}: nothing of A's names Ana any more");
    let kept = format!(
        "SELECT COUNT(*) FROM suppressions WHERE producer_id = '{a}' AND address = 'ana@example.com' AND reason = 'unsubscribed'"
    );
    assert_eq!(test_db.count(&kept).await, 1, "{db:?}: the unsubscribe stays on record");
    let (status, _) = s.get(&format!("/v1/leads/{ana}"), &ka).await;
    assert_eq!(status, 404, "{db:?}");

    // Everyone else's data is intact: Bia at A, Ana at B.
    for (lead, who) in [(&bia, "Bia at A"), (&ana_at_b, "Ana at B")] {
        let counts = [
            test_db.count(&of("outbox", lead)).await,
            test_db.count(&of("timers", lead)).await,
            test_db.count(&of("list_members", lead)).await,
            test_db.count(&of("runs", lead)).await,
        ];
        assert_eq!(counts, [1, 1, 1, 1], "{db:?}: {who} keeps their email, timer, list and run");
        assert!(test_db.count(&of("timeline", lead)).await > 0, "{db:?}: {who} keeps a timeline");
    }
    let (status, detail) = s.get(&format!("/v1/leads/{ana_at_b}"), &kb).await;
    assert_eq!((status, detail["email"].as_str()), (200, Some("ana@example.com")), "{db:?}");
    let (_, members) = s.get("/v1/lists/vip/members", &kb).await;
    assert_eq!(members["members"][0]["email"], "ana@example.com", "{db:?}: B's list keeps B's Ana");

    // Ana comes back to A's checkout: a new lead, and the host still sends her nothing.
    let back = post(&a, "a4", "ana@example.com", "chk-9").await.1["lead_id"].as_str().expect("lead").to_string();
    s.settle().await;
    assert_eq!(test_db.count(&of("outbox", &back)).await, 0, "{db:?}: suppressed, so nothing is queued");
}

#[tokio::test]
async fn health_and_metrics_count_what_this_process_did() {
    // A process of its own: the counters are process-wide, and tests share this one.
    let test_db = TestDb::new(Db::Sqlite).await;
    let dir = tempfile::tempdir().expect("dir");
    let serve = crate::process::spawn(&test_db.url, dir.path());
    let producer = serve.create_producer().await;
    let id = producer["id"].as_str().expect("id");
    let before = serve.metric("funnel_events_accepted_total").await;
    assert_eq!(before, 0, "a fresh process has accepted nothing");
    let first = crate::process::event(1, id);
    let answers = [
        serve.post_event(&first).await,
        serve.post_event(&crate::process::event(2, id)).await,
        serve.post_event(&first).await,
    ];
    let statuses: Vec<(u16, &str)> = answers.iter().map(|(s, b)| (*s, b["status"].as_str().unwrap_or(""))).collect();
    assert_eq!(statuses, [(202, "accepted"), (202, "accepted"), (202, "duplicate")]);
    assert_eq!(serve.metric("funnel_events_accepted_total").await - before, 2, "two accepted");
    assert_eq!(serve.metric("funnel_events_duplicate_total").await, 1, "one duplicate");
    let health: Value =
        reqwest::get(format!("{}/healthz", serve.base)).await.expect("healthz").json().await.expect("json");
    assert_eq!(health["status"], "ok", "{health}");
    let text = reqwest::get(format!("{}/metrics", serve.base)).await.expect("metrics").text().await.expect("text");
    assert!(text.contains("# TYPE funnel_outbox_depth gauge"), "{text}");
}

#[tokio::test]
async fn openapi_documents_every_route_with_body_schemas() {
    let (_db, store) = TestDb::with_store(Db::Sqlite).await;
    let s = start(store).await;
    let (status, doc) = s.send(reqwest::Method::GET, "/openapi.json", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    for route in api::routes() {
        assert!(doc["paths"][route.path][route.method].is_object(), "{} {} is documented", route.method, route.path);
    }
    let event_schema = &doc["paths"]["/v1/events"]["post"]["requestBody"]["content"]["application/json"]["schema"];
    assert!(event_schema.to_string().contains("checkout"), "{event_schema}");
    assert!(doc["paths"]["/v1/leads/{id}"]["get"]["parameters"][0]["name"] == "id");
    // Every reference resolves inside the document (schemathesis skipped `#/$defs/Price`).
    let mut stack = vec![&doc];
    let mut refs = 0;
    while let Some(v) = stack.pop() {
        match v {
            serde_json::Value::Object(o) => {
                if let Some(r) = o.get("$ref").and_then(|r| r.as_str()) {
                    let pointer = r.strip_prefix('#').unwrap_or_else(|| panic!("{r} is a local reference"));
                    assert!(doc.pointer(pointer).is_some_and(|t| t.is_object()), "{r} resolves");
                    refs += 1;
                }
                stack.extend(o.values());
            }
            serde_json::Value::Array(a) => stack.extend(a),
            _ => {}
        }
    }
    assert!(refs > 0, "the event body's Price is a reference");
    let error = &doc["paths"]["/v1/events"]["post"]["responses"]["default"]["content"]["application/problem+json"];
    assert_eq!(error["schema"]["$ref"], "#/components/schemas/Problem");
}

#[tokio::test]
async fn the_event_schema_carries_the_limits_the_handler_enforces() {
    let (_db, store) = TestDb::with_store(Db::Sqlite).await;
    let s = start(store).await;
    let (producer, _) = s.producer().await;
    let (_, doc) = s.send(reqwest::Method::GET, "/openapi.json", None, None).await;
    let schemas = &doc["components"]["schemas"];
    let checkout = &schemas["Checkout"]["properties"];
    assert_eq!(checkout["email"]["format"], "email", "{checkout}");
    assert_eq!((&checkout["id"]["minLength"], &checkout["id"]["maxLength"]), (&json!(1), &json!(200)));
    assert_eq!(checkout["phone"]["maxLength"], 32);
    assert_eq!(schemas["Price"]["properties"]["amount_cents"]["maximum"], json!(api::events::MAX_AMOUNT_CENTS));
    assert_eq!(schemas["Price"]["properties"]["currency"]["pattern"], "^[A-Z]{3}$");
    // Each documented limit is the one enforced: just past it is refused naming the field,
    // at it is accepted.
    let cases = [
        ("id", json!("x".repeat(200)), json!("x".repeat(201))),
        ("phone", json!("1".repeat(32)), json!("1".repeat(33))),
        (
            "price",
            json!({"amount_cents": api::events::MAX_AMOUNT_CENTS, "currency": "BRL"}),
            json!({"amount_cents": api::events::MAX_AMOUNT_CENTS + 1, "currency": "BRL"}),
        ),
        ("name", json!("Ana"), json!("Ana\u{85}")),
    ];
    for (i, (field, at, past)) in cases.into_iter().enumerate() {
        let mut ok = event(&format!("ok-{i}"), &producer, "ana@example.com");
        ok["checkout"][field] = at;
        assert_eq!(s.post_event(ok).await.0, 202, "checkout.{field} at its limit");
        let mut bad = event(&format!("bad-{i}"), &producer, "ana@example.com");
        bad["checkout"][field] = past;
        let (status, problem) = s.post_event(bad).await;
        assert_eq!(status, 422, "checkout.{field} past its limit: {problem}");
        assert!(
            problem["errors"][0]["path"].as_str().is_some_and(|p| p.starts_with(&format!("checkout.{field}"))),
            "{problem}"
        );
    }
}

on_both!(concurrent_single_event_posts_share_commits_and_each_answer_is_stored);
/// `POST /v1/events` requests arriving together share a commit (group commit): each still
/// answers for its own event, a repeat of an event is a duplicate whether it shares the other's
/// commit or comes after it, and every event answered accepted is stored when its answer comes.
async fn concurrent_single_event_posts_share_commits_and_each_answer_is_stored(db: Db) {
    let (test_db, store) = TestDb::with_store(db).await;
    let s = start(store).await;
    let (producer, key) = s.producer().await;
    assert_eq!(s.send(reqwest::Method::PUT, "/v1/bindings", Some(&key), Some(four_emails())).await.0, 200);
    // One small pool reads behind the API's back (a connection per check would be 80 at once).
    let reader = sqlx::any::AnyPoolOptions::new().max_connections(4).connect(&test_db.url).await.expect("reader");
    let (s, reader) = (&s, &reader);
    let posts = (0..80).map(|i| {
        let n = i % 40;
        let mut body = event(&format!("evt-{n}"), &producer, &format!("l{n}@example.com"));
        body["checkout"]["id"] = json!(format!("chk-{n}"));
        async move {
            let answer = s.post_event(body).await;
            // Answered accepted means stored: the row is there the moment the answer is.
            let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE platform_id = $1")
                .bind(format!("evt-{n}"))
                .fetch_one(reader)
                .await
                .expect("count");
            (answer, stored)
        }
    });
    let answers = futures_util::future::join_all(posts).await;
    let mut accepted = std::collections::BTreeSet::new();
    for ((status, body), stored) in answers {
        assert_eq!(status, 202, "{db:?}: {body}");
        assert_eq!(stored, 1, "{db:?}: {body} answered before its event was stored");
        if body["status"] == "accepted" {
            accepted.insert(body["lead_id"].as_str().expect("lead").to_string());
        } else {
            assert_eq!(body["status"], "duplicate", "{db:?}: {body}");
        }
    }
    assert_eq!(accepted.len(), 40, "{db:?}: each event accepted once, its repeat a duplicate");
    assert_eq!(test_db.count("SELECT COUNT(*) FROM leads").await, 40, "{db:?}");
}
