//! Send windows (quiet hours) and the contact frequency cap (issue 16): recovery messages due
//! outside a binding's window wait for its next opening (in the lead's own zone when the
//! platform sends one), over real HTTP and a real SMTP server on both databases and through
//! `funnel simulate`; the producer's cap defers or drops a contact's messages past it;
//! transactional messages are neither held nor capped; every bad value is a field error.

use std::sync::Arc;

use reqwest::Method;
use serde_json::{Value, json};

use crate::api_server::{Server, event, start, start_with};
use crate::db::{Db, TestDb, on_both};
use crate::harness::T0;
use crate::sim_support::{simulate, t, timeline};

const HOUR: i64 = 3_600_000;
const MINUTE: i64 = 60_000;

/// 08:00 to 21:00, every day, São Paulo time (UTC-3 all year).
fn sao_paulo_window() -> Value {
    json!({"start": "08:00", "end": "21:00", "timezone": "America/Sao_Paulo"})
}

fn four_emails(afters: &[&str]) -> Value {
    let emails: Vec<Value> = afters
        .iter()
        .enumerate()
        .map(|(i, after)| {
            json!({"after": after, "subject": format!("Lembrete {}", i + 1), "html": "<p>{{checkout_url}}</p>"})
        })
        .collect();
    json!({"emails": emails})
}

async fn smtp_server(store: funnel_host::store::Database) -> (Server, Arc<crate::smtp_server::Mailbox>) {
    let (url, mailbox) = crate::smtp_server::start();
    let smtp =
        funnel_host::delivery::smtp::SmtpTransport::new(&url, "Loja <loja@example.com>", "https://funnel.test".into())
            .expect("smtp");
    (start_with(store, Some(Arc::new(smtp))).await, mailbox)
}

async fn lead_detail(s: &Server, key: &str) -> Value {
    let (_, leads) = s.get("/v1/leads", key).await;
    let id = leads["leads"][0]["id"].as_str().expect("a lead").to_string();
    s.get(&format!("/v1/leads/{id}"), key).await.1
}

fn entries<'a>(detail: &'a Value, kind: &str) -> Vec<&'a Value> {
    detail["timeline"].as_array().map(|t| t.iter().filter(|e| e["kind"] == kind).collect()).unwrap_or_default()
}

on_both!(a_deferred_email_reaches_the_smtp_server_at_the_opening_not_before);
async fn a_deferred_email_reaches_the_smtp_server_at_the_opening_not_before(db: Db) {
    let (_db, store) = TestDb::with_store(db).await;
    let (s, mailbox) = smtp_server(store).await;
    let (producer, key) = s.producer().await;
    let binding = json!({"plugin": "four-emails", "config": four_emails(&["20m"]), "send_window": sao_paulo_window()});
    let (status, body) = s.send(Method::PUT, "/v1/bindings", Some(&key), Some(binding)).await;
    assert_eq!(status, 200, "{body}");
    let shown = json!({"start": "08:00", "end": "21:00", "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                       "timezone": "America/Sao_Paulo"});
    assert_eq!(body["send_window"], shown);
    assert_eq!(s.get("/v1/bindings", &key).await.1["bindings"][0]["send_window"], shown);
    // T0 is 21:00 in São Paulo: closed. The email is due at 21:20 and waits for 08:00 (11:00Z).
    assert_eq!(s.post_event(event("evt-1", &producer, "ana@example.com")).await.0, 202);
    s.settle().await;
    s.clock.set(T0 + 20 * MINUTE);
    s.settle().await;
    let detail = lead_detail(&s, &key).await;
    let deferred = entries(&detail, "deferred");
    assert_eq!(deferred.len(), 1, "{detail}");
    let said: Value = serde_json::from_str(deferred[0]["detail"].as_str().expect("detail")).expect("json");
    assert_eq!(said["reason"], "send_window");
    assert_eq!(said["until"], T0 + 11 * HOUR);
    assert!(said["until_local"].as_str().is_some_and(|l| l.starts_with("2026-01-01 08:00")), "{said}");
    s.clock.set(T0 + 11 * HOUR - 1000);
    s.settle().await;
    assert!(mailbox.received().is_empty(), "nothing before the opening");
    s.clock.set(T0 + 11 * HOUR);
    s.settle().await;
    assert_eq!(mailbox.received().len(), 1, "sent at 08:00 São Paulo");
    let (_, stats) = s.get("/v1/stats", &key).await;
    assert_eq!(stats["by_tag"][0]["sent"], 1, "{stats}");
    assert_eq!(stats["capped"], json!({"deferred": 0, "dropped": 0}), "a window is not the cap");
}

on_both!(a_backlog_carried_past_closing_is_held_when_claimed);
async fn a_backlog_carried_past_closing_is_held_when_claimed(db: Db) {
    let (_db, store) = TestDb::with_store(db).await;
    let (s, mailbox) = smtp_server(store).await;
    let (producer, key) = s.producer().await;
    let flow = json!({"start": "a", "steps": {"a": {"email": {"subject": "Oi", "html": "<p>{{checkout_url}}</p>"}, "next": "end"}}});
    let window = json!({"start": "08:00", "end": "21:00", "timezone": "UTC"});
    let (status, body) = s
        .send(
            Method::PUT,
            "/v1/bindings",
            Some(&key),
            Some(json!({"plugin": "flow", "config": flow, "send_window": window})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // Queued at 20:59, inside the window; delivery only gets to it at 21:05.
    s.clock.set(T0 + 20 * HOUR + 59 * MINUTE);
    assert_eq!(s.post_event(event("evt-1", &producer, "ana@example.com")).await.0, 202);
    s.engine.dispatcher.drain().await.expect("drain");
    assert!(entries(&lead_detail(&s, &key).await, "deferred").is_empty(), "queued in the window");
    s.clock.set(T0 + 21 * HOUR + 5 * MINUTE);
    s.engine.deliverer.deliver_due().await.expect("deliver");
    assert!(mailbox.received().is_empty(), "held at claim time");
    let detail = lead_detail(&s, &key).await;
    assert_eq!(entries(&detail, "deferred").len(), 1, "{detail}");
    s.clock.set(T0 + 32 * HOUR - 1000);
    s.settle().await;
    assert!(mailbox.received().is_empty());
    s.clock.set(T0 + 32 * HOUR);
    s.settle().await;
    assert_eq!(mailbox.received().len(), 1, "sent at the next day's 08:00");
}

on_both!(a_lead_with_its_own_zone_gets_the_window_in_it);
async fn a_lead_with_its_own_zone_gets_the_window_in_it(db: Db) {
    let (_db, store) = TestDb::with_store(db).await;
    let s = start(store).await;
    let (producer, key) = s.producer().await;
    let binding = json!({"plugin": "four-emails", "config": four_emails(&["20m"]), "send_window": sao_paulo_window()});
    assert_eq!(s.send(Method::PUT, "/v1/bindings", Some(&key), Some(binding)).await.0, 200);
    let mut warsaw = event("evt-1", &producer, "ana@example.com");
    warsaw["checkout"]["timezone"] = json!("Europe/Warsaw");
    assert_eq!(s.post_event(warsaw).await.0, 202);
    s.settle().await;
    s.clock.set(T0 + 20 * MINUTE);
    s.settle().await;
    let detail = lead_detail(&s, &key).await;
    let said: Value =
        serde_json::from_str(entries(&detail, "deferred")[0]["detail"].as_str().expect("d")).expect("json");
    // 01:20 in Warsaw (UTC+1): opens at 08:00 Warsaw = 07:00Z, not 08:00 São Paulo (11:00Z).
    assert_eq!(said["until"], T0 + 7 * HOUR, "{said}");
    assert!(said["until_local"].as_str().is_some_and(|l| l.contains("Europe/Warsaw")), "{said}");
}

on_both!(every_bad_window_zone_and_setting_is_a_field_error);
async fn every_bad_window_zone_and_setting_is_a_field_error(db: Db) {
    let (_db, store) = TestDb::with_store(db).await;
    let s = start(store).await;
    let (producer, key) = s.producer().await;
    let window = |patch: Value| {
        let mut w = json!({"start": "08:00", "end": "21:00", "days": ["mon"], "timezone": "America/Sao_Paulo"});
        for (k, v) in patch.as_object().expect("object") {
            w[k] = v.clone();
        }
        json!({"plugin": "four-emails", "config": four_emails(&["20m"]), "send_window": w})
    };
    for (bad, path) in [
        (window(json!({"start": "8am"})), "send_window.start"),
        (window(json!({"start": "25:00"})), "send_window.start"),
        (window(json!({"end": "21:61"})), "send_window.end"),
        (window(json!({"end": "08:00"})), "send_window.end"),
        (window(json!({"days": []})), "send_window.days"),
        (window(json!({"days": ["mon", "someday"]})), "send_window.days[1]"),
        (window(json!({"days": ["fri", "fri"]})), "send_window.days[1]"),
        (window(json!({"timezone": "America/Springfield"})), "send_window.timezone"),
        (window(json!({"timezone": 3})), "send_window.timezone"),
        (window(json!({"hours": 3})), "send_window.hours"),
    ] {
        let (status, body) = s.send(Method::PUT, "/v1/bindings", Some(&key), Some(bad.clone())).await;
        assert_eq!(status, 422, "{bad}: {body}");
        assert_eq!(body["errors"][0]["path"], path, "{bad}: {body}");
    }
    assert_eq!(s.get("/v1/bindings", &key).await.1["bindings"], json!([]), "nothing stored");

    let mut bad_zone = event("evt-1", &producer, "ana@example.com");
    bad_zone["checkout"]["timezone"] = json!("Brazil/Nowhere");
    let (status, body) = s.post_event(bad_zone).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["path"], "checkout.timezone", "{body}");

    let cap = |c: Value| json!({"max_recovery_messages_per_contact": c});
    for (bad, path) in [
        (cap(json!({"count": 0, "per": "24h"})), "max_recovery_messages_per_contact.count"),
        (cap(json!({"count": 101, "per": "24h"})), "max_recovery_messages_per_contact.count"),
        (cap(json!({"count": 3, "per": "59m"})), "max_recovery_messages_per_contact.per"),
        (cap(json!({"count": 3, "per": "31d"})), "max_recovery_messages_per_contact.per"),
        (cap(json!({"count": 3, "per": "soon"})), "max_recovery_messages_per_contact.per"),
        (cap(json!({"count": 3, "per": "24h", "over": "ignore"})), "max_recovery_messages_per_contact.over"),
        // A missing field is named at its object (serde says "missing field `count`").
        (cap(json!({"per": "24h"})), "max_recovery_messages_per_contact"),
        (json!({"max_messages": 3}), "max_messages"),
    ] {
        let (status, body) = s.send(Method::PUT, "/v1/settings", Some(&key), Some(bad.clone())).await;
        assert_eq!(status, 422, "{bad}: {body}");
        assert_eq!(body["errors"][0]["path"], path, "{bad}: {body}");
    }
    assert_eq!(s.get("/v1/settings", &key).await.1, cap(Value::Null), "nothing stored");
    let (status, body) =
        s.send(Method::PUT, "/v1/settings", Some(&key), Some(cap(json!({"count": 3, "per": "1d"})))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(s.get("/v1/settings", &key).await.1, cap(json!({"count": 3, "per": "1d", "over": "defer"})));
    assert_eq!(s.send(Method::PUT, "/v1/settings", Some(&key), Some(cap(Value::Null))).await.0, 200);
    assert_eq!(s.get("/v1/settings", &key).await.1, cap(Value::Null), "null removes it");
    assert_eq!(s.send(Method::GET, "/v1/settings", None, None).await.0, 401);
}

/// Four emails in 15 h 20 min to one person under a cap of 3 a day: the fourth is deferred to
/// when the first leaves the day (or dropped).
async fn capped(db: Db, over: &str) -> (Server, TestDb, String, Arc<crate::smtp_server::Mailbox>) {
    let (test_db, store) = TestDb::with_store(db).await;
    let (s, mailbox) = smtp_server(store).await;
    let (producer, key) = s.producer().await;
    let settings = json!({"max_recovery_messages_per_contact": {"count": 3, "per": "24h", "over": over}});
    assert_eq!(s.send(Method::PUT, "/v1/settings", Some(&key), Some(settings)).await.0, 200);
    let binding = json!({"plugin": "four-emails", "config": four_emails(&["20m", "5h", "5h", "5h"])});
    assert_eq!(s.send(Method::PUT, "/v1/bindings", Some(&key), Some(binding)).await.0, 200);
    assert_eq!(s.post_event(event("evt-1", &producer, "ana@example.com")).await.0, 202);
    s.settle().await;
    for at in [20 * MINUTE, 5 * HOUR + 20 * MINUTE, 10 * HOUR + 20 * MINUTE, 15 * HOUR + 20 * MINUTE] {
        s.clock.set(T0 + at);
        s.settle().await;
    }
    assert_eq!(mailbox.received().len(), 3, "three in the day");
    (s, test_db, key, mailbox)
}

on_both!(the_cap_defers_the_fourth_message_of_a_day);
async fn the_cap_defers_the_fourth_message_of_a_day(db: Db) {
    let (s, _db, key, mailbox) = capped(db, "defer").await;
    let detail = lead_detail(&s, &key).await;
    let deferred = entries(&detail, "deferred");
    assert_eq!(deferred.len(), 1, "{detail}");
    let said: Value = serde_json::from_str(deferred[0]["detail"].as_str().expect("d")).expect("json");
    assert_eq!(
        (said["reason"].as_str(), said["until"].as_i64()),
        (Some("contact_cap"), Some(T0 + 24 * HOUR + 20 * MINUTE))
    );
    s.clock.set(T0 + 24 * HOUR + 20 * MINUTE - 1000);
    s.settle().await;
    assert_eq!(mailbox.received().len(), 3);
    s.clock.set(T0 + 24 * HOUR + 20 * MINUTE);
    s.settle().await;
    assert_eq!(mailbox.received().len(), 4, "sent once the first left the 24 h");
    let (_, stats) = s.get("/v1/stats", &key).await;
    assert_eq!(stats["capped"], json!({"deferred": 1, "dropped": 0}), "{stats}");
}

on_both!(the_cap_drops_the_fourth_message_in_drop_mode);
async fn the_cap_drops_the_fourth_message_in_drop_mode(db: Db) {
    let (s, _db, key, mailbox) = capped(db, "drop").await;
    let detail = lead_detail(&s, &key).await;
    let dropped = entries(&detail, "dropped");
    assert_eq!(dropped.len(), 1, "{detail}");
    assert!(dropped[0]["detail"].as_str().is_some_and(|d| d.contains("contact_cap")), "{detail}");
    s.clock.set(T0 + 48 * HOUR);
    s.settle().await;
    assert_eq!(mailbox.received().len(), 3, "never sent");
    let (_, stats) = s.get("/v1/stats", &key).await;
    assert_eq!(stats["capped"], json!({"deferred": 0, "dropped": 1}), "{stats}");
}

on_both!(transactional_messages_are_not_capped_and_the_cap_counts_the_person_across_leads);
async fn transactional_messages_are_not_capped_and_the_cap_counts_the_person_across_leads(db: Db) {
    let (_db, store) = TestDb::with_store(db).await;
    let (s, mailbox) = smtp_server(store).await;
    let (producer, key) = s.producer().await;
    let settings = json!({"max_recovery_messages_per_contact": {"count": 1, "per": "24h"}});
    assert_eq!(s.send(Method::PUT, "/v1/settings", Some(&key), Some(settings)).await.0, 200);
    let flow = json!({"start": "a", "on_purchase": "thx", "steps": {
        "a": {"email": {"subject": "Volte", "html": "<p>{{checkout_url}}</p>"}, "next": "w"},
        "w": {"wait": "3d", "next": "end"},
        "thx": {"email": {"subject": "Obrigado", "html": "<p>Obrigado</p>", "kind": "transactional"}, "next": "end"}}});
    assert_eq!(
        s.send(Method::PUT, "/v1/bindings", Some(&key), Some(json!({"plugin": "flow", "config": flow}))).await.0,
        200
    );
    assert_eq!(s.post_event(event("evt-1", &producer, "ana@example.com")).await.0, 202);
    s.settle().await;
    assert_eq!(mailbox.received().len(), 1, "the one recovery email of the day");
    s.clock.set(T0 + HOUR);
    let mut paid = event("evt-2", &producer, "ana@example.com");
    paid["type"] = json!("order.paid");
    assert_eq!(s.post_event(paid).await.0, 202);
    s.settle().await;
    assert_eq!(mailbox.received().len(), 2, "the thank-you is transactional: not capped");
    // Another checkout of the same person: its recovery email counts against the same cap.
    s.clock.set(T0 + 2 * HOUR);
    let mut other = event("evt-3", &producer, "ANA@example.com");
    other["checkout"]["id"] = json!("chk-2");
    assert_eq!(s.post_event(other).await.0, 202);
    s.settle().await;
    assert_eq!(mailbox.received().len(), 2, "held: the person had one today");
    s.clock.set(T0 + 24 * HOUR);
    s.settle().await;
    assert_eq!(mailbox.received().len(), 3, "sent a day after the first");
    let (_, stats) = s.get("/v1/stats", &key).await;
    assert_eq!(stats["capped"]["deferred"], 1, "{stats}");
}

// ---- funnel simulate: virtual time, São Paulo and Warsaw ----

fn scenario(start: &str, window: Option<Value>, lead_zone: Option<&str>, until: &str) -> Value {
    let mut scn = json!({"start": start, "lead": {"email": "ana@example.com", "price": {"amount_cents": 9700, "currency": "BRL"}},
                         "until": until});
    if let Some(window) = window {
        scn["binding"] = json!({"send_window": window});
    }
    if let Some(zone) = lead_zone {
        scn["lead"]["timezone"] = json!(zone);
    }
    scn
}

#[tokio::test]
async fn simulate_defers_a_23_10_email_to_08_00_and_keeps_the_5h_gap() {
    // Captured 22:50 São Paulo: the first email is due 23:10, sent 08:00 (9 h 10 min later);
    // the second comes at least 5 h after the first's real send.
    let scn = scenario("2026-03-06T22:50:00-03:00", Some(sao_paulo_window()), None, "96h");
    let out = simulate("four-emails", &four_emails(&["20m", "5h"]), &scn).await.expect("runs");
    let first = 9 * 3600 + 10 * 60;
    let lines = timeline(&out);
    assert_eq!(lines[0], t(20 * 60, "deferred", "email-1"), "{out:?}");
    assert!(out[0]["detail"].as_str().is_some_and(|d| d.contains("2026-03-07 08:00")), "{out:?}");
    assert_eq!(lines[1], t(first, "email", "email-1"), "{out:?}");
    let second = lines.iter().find(|l| l.1 == "email" && l.2 == "email-2").expect("second email");
    assert!(second.0 >= first + 5 * 3600, "the 5 h gap counts from the real send: {out:?}");
    assert!(lines.iter().all(|l| l.1 != "dropped"), "never dropped: {out:?}");
}

#[tokio::test]
async fn simulate_puts_a_warsaw_lead_in_its_own_zone() {
    let scn = scenario("2026-01-01T00:00:00Z", Some(sao_paulo_window()), Some("Europe/Warsaw"), "24h");
    let out = simulate("four-emails", &four_emails(&["20m"]), &scn).await.expect("runs");
    // 01:20 Warsaw → 08:00 Warsaw = 07:00Z, 7 h after capture.
    assert_eq!(timeline(&out), [t(20 * 60, "deferred", "email-1"), t(7 * 3600, "email", "email-1")], "{out:?}");
    assert!(out[0]["detail"].as_str().is_some_and(|d| d.contains("Europe/Warsaw")), "{out:?}");
    // Without its zone the same lead waits for São Paulo's 08:00 (11:00Z).
    let scn = scenario("2026-01-01T00:00:00Z", Some(sao_paulo_window()), None, "24h");
    let out = simulate("four-emails", &four_emails(&["20m"]), &scn).await.expect("runs");
    assert_eq!(timeline(&out)[1], t(11 * 3600, "email", "email-1"), "{out:?}");
}

#[tokio::test]
async fn simulate_disables_an_email_a_deferral_would_carry_past_72h() {
    // Captured Friday 2026-01-02 09:00Z; the window opens only on Mondays 09:00-10:00 UTC.
    // Email 1 (20 min): Monday 09:00 (72 h later would be Monday 09:00 too: sent at 72 h exactly).
    // Email 2 (5 h after it) would need the next Monday: past 72 h, disabled.
    let window = json!({"start": "09:00", "end": "10:00", "days": ["mon"], "timezone": "UTC"});
    let scn = scenario("2026-01-02T09:00:00Z", Some(window), None, "10d");
    let out = simulate("four-emails", &four_emails(&["20m", "5h"]), &scn).await.expect("runs");
    let lines = timeline(&out);
    assert!(lines.contains(&t(72 * 3600, "email", "email-1")), "{out:?}");
    assert!(lines.iter().all(|l| !(l.1 == "email" && l.2 == "email-2")), "email-2 never sent: {out:?}");
}

#[tokio::test]
async fn simulate_sends_a_transactional_thank_you_outside_the_window() {
    let flow = json!({"start": "w", "on_purchase": "thx", "steps": {
        "w": {"wait": "3d", "next": "end"},
        "thx": {"email": {"subject": "Obrigado", "html": "<p>Obrigado</p>", "kind": "transactional"}, "next": "end"}}});
    let mut scn = scenario(
        "2026-01-01T02:00:00Z",
        Some(json!({"start": "08:00", "end": "21:00", "timezone": "UTC"})),
        None,
        "1h",
    );
    scn["events"] = json!([{"at": "10m", "type": "order.paid"}]);
    let out = simulate("flow", &flow, &scn).await.expect("runs");
    assert_eq!(timeline(&out), [t(600, "email", "thx")], "{out:?}");
}

#[tokio::test]
async fn simulate_names_each_bad_start_window_and_zone() {
    for (scn, says) in [
        (scenario("yesterday", None, None, "1h"), "start: "),
        (
            scenario(
                "2026-01-01T00:00:00Z",
                Some(json!({"start": "8", "end": "21:00", "timezone": "UTC"})),
                None,
                "1h",
            ),
            "binding.send_window.start: ",
        ),
        (
            scenario(
                "2026-01-01T00:00:00Z",
                Some(json!({"start": "08:00", "end": "21:00", "timezone": "Mars/Base"})),
                None,
                "1h",
            ),
            "binding.send_window.timezone: ",
        ),
        (
            scenario(
                "2026-01-01T00:00:00Z",
                Some(json!({"start": "08:00", "end": "21:00", "days": ["mon", "mon"], "timezone": "UTC"})),
                None,
                "1h",
            ),
            "binding.send_window.days[1]: ",
        ),
        (scenario("2026-01-01T00:00:00Z", None, Some("Europe/Wrsaw"), "1h"), "lead.timezone: "),
    ] {
        let err = simulate("four-emails", &four_emails(&["20m"]), &scn).await.unwrap_err().to_string();
        assert!(err.starts_with(&format!("scenario: {says}")), "{scn}: {err}");
        assert!(!err.contains('\n'), "one line: {err}");
    }
}
