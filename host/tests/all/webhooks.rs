//! Outgoing webhooks over real HTTP on loopback, on both databases: a receiver hears of each
//! recovered lead exactly once, signed; a receiver that is down or answers 503 gets it when it
//! is back; a day of failures ends `failed` with every status code listed; private targets are
//! refused at registration and at delivery without the operator's flag; each bad field is a
//! 422 naming it; a producer sees and deletes only its own webhooks; and a receiver that hangs
//! holds up neither other producers' webhooks nor the engine.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use funnel_host::api::auth;
use funnel_host::clock::Clock;
use funnel_host::webhooks::{SenderSettings, TargetPolicy, WebhookEvent, WebhookSender};
use serde_json::{Value, json};

use crate::api_server::{ALLOW_PRIVATE, PLATFORM, Server, TapEvent, event, four_emails, start, start_full};
use crate::coupons::ScopeEvent;
use crate::db::{Db, TestDb, on_both};
use crate::harness::T0;

/// One request a receiver saw.
#[derive(Clone, Debug)]
pub(crate) struct Seen {
    signature: String,
    delivery: String,
    event: String,
    body: String,
}

/// A webhook receiver on loopback that records what it is sent and answers `status`.
pub(crate) struct Receiver {
    pub(crate) url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    pub(crate) status: Arc<AtomicU16>,
}

impl Receiver {
    pub(crate) async fn start() -> Receiver {
        Receiver::on(tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind")).await
    }

    async fn on(listener: tokio::net::TcpListener) -> Receiver {
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let status = Arc::new(AtomicU16::new(200));
        let (s, code) = (seen.clone(), status.clone());
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let (s, code) = (s.clone(), code.clone());
                async move {
                    let header =
                        |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
                    s.lock().expect("lock").push(Seen {
                        signature: header("funnel-signature"),
                        delivery: header("funnel-delivery"),
                        event: header("funnel-event"),
                        body: String::from_utf8_lossy(&body).into_owned(),
                    });
                    StatusCode::from_u16(code.load(Ordering::SeqCst)).unwrap_or(StatusCode::OK)
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { url, seen, status }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }

    pub(crate) fn of(&self, event: &str) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.event == event).collect()
    }
}

/// Register a webhook with `key`; the status and answer.
async fn register(s: &Server, key: &str, url: &str, events: &[&str]) -> (u16, Value) {
    s.send(reqwest::Method::POST, "/v1/webhooks", Some(key), Some(json!({"url": url, "events": events}))).await
}

/// Post a platform event of `kind` for checkout `checkout` of `producer`.
async fn post(s: &Server, id: &str, producer: &str, checkout: &str, kind: &str) -> Value {
    let e = event(id, producer, &format!("{checkout}@example.com")).tap_checkout(checkout).tap(&["type"], json!(kind));
    let (status, body) = s.send(reqwest::Method::POST, "/v1/events", Some(PLATFORM), Some(e)).await;
    assert!(status == 202 || status == 200, "{status} {body}");
    body
}

async fn deliver(s: &Server) -> usize {
    s.engine.webhooks.deliver_due().await.expect("deliver webhooks")
}

async fn deliveries(s: &Server, key: &str, webhook: &str) -> Vec<Value> {
    let (status, body) = s.get(&format!("/v1/webhooks/{webhook}/deliveries?limit=100"), key).await;
    assert_eq!(status, 200, "{body}");
    body["deliveries"].as_array().expect("deliveries").clone()
}

on_both!(a_recovered_lead_is_reported_once_with_a_valid_signature);
async fn a_recovered_lead_is_reported_once_with_a_valid_signature(db: Db) {
    let (_db, store) = TestDb::with_store(db).await;
    let s = start(store).await;
    let (producer, key) = s.producer().await;
    let rx = Receiver::start().await;
    let (status, hook) =
        register(&s, &key, &rx.url, &["lead.recovered", "lead.purchased", "message.sent", "message.bounced"]).await;
    assert_eq!(status, 201, "{hook}");
    let secret = hook["secret"].as_str().expect("the secret, once").to_string();
    assert!(secret.len() >= 32, "{secret}");
    let webhook = hook["id"].as_str().expect("id").to_string();
    assert_eq!(s.send(reqwest::Method::PUT, "/v1/bindings", Some(&key), Some(four_emails())).await.0, 200);

    // Three leads; two get their first email at 20 minutes and buy later (recovered), one buys
    // before any email went (purchased, not recovered).
    let mut leads = Vec::new();
    for (i, c) in ["ana", "bia", "caio"].iter().enumerate() {
        leads.push(post(&s, &format!("cap-{i}"), &producer, c, "checkout.updated").await["lead_id"].clone());
    }
    s.settle().await;
    post(&s, "paid-caio", &producer, "caio", "order.paid").await;
    s.clock.set(T0 + 20 * 60_000);
    s.settle().await;
    s.clock.set(T0 + 60 * 60_000);
    post(&s, "paid-ana", &producer, "ana", "order.paid").await;
    post(&s, "paid-bia", &producer, "bia", "order.paid").await;
    // The platform sends Ana's payment again under another event id: still one report.
    post(&s, "paid-ana-again", &producer, "ana", "order.paid").await;
    s.settle().await;
    deliver(&s).await;
    assert_eq!(deliver(&s).await, 0, "{db:?}: nothing left to deliver");

    let recovered = rx.of("lead.recovered");
    let mut recovered_leads: Vec<Value> = recovered
        .iter()
        .map(|r| serde_json::from_str::<Value>(&r.body).expect("json")["data"]["lead_id"].clone())
        .collect();
    recovered_leads.sort_by_key(|v| v.to_string());
    let mut expected = vec![leads[0].clone(), leads[1].clone()];
    expected.sort_by_key(|v| v.to_string());
    assert_eq!(recovered_leads, expected, "{db:?}: exactly once per recovered lead");
    assert_eq!(rx.of("lead.purchased").len(), 3, "{db:?}: every first purchase");
    assert_eq!(rx.of("message.sent").len(), 2, "{db:?}: Caio's email was dropped (he bought), never sent");
    assert!(rx.of("contact.unsubscribed").is_empty());

    let now_s = s.clock.now_ms() / 1000;
    let mut ids = HashSet::new();
    for seen in rx.seen() {
        auth::verify_signature(&secret, &seen.signature, seen.body.as_bytes(), now_s)
            .unwrap_or_else(|p| panic!("{db:?}: a valid signature on {}: {}", seen.event, p.detail));
        assert!(auth::verify_signature("another secret", &seen.signature, seen.body.as_bytes(), now_s).is_err());
        let body: Value = serde_json::from_str(&seen.body).expect("json body");
        assert_eq!(body["id"], seen.delivery, "the body's id is the Funnel-Delivery header");
        assert_eq!(body["type"], seen.event, "the body's type is the Funnel-Event header");
        assert_eq!(body["producer_id"], producer);
        assert!(ids.insert(seen.delivery.clone()), "{db:?}: a unique id per delivery");
    }
    let ana: Value = serde_json::from_str(
        &recovered.iter().find(|r| r.body.contains(leads[0].as_str().expect("id"))).expect("ana's").body,
    )
    .expect("json");
    assert_eq!(ana["data"]["email"], "ana@example.com");
    assert_eq!(ana["data"]["value"], json!({"amount_cents": 9700, "currency": "BRL"}));
    assert_eq!(ana["data"]["recovered_by"]["tag"], "email-1", "{ana}");

    let listed = deliveries(&s, &key, &webhook).await;
    assert_eq!(listed.len(), 7, "{db:?}");
    for d in &listed {
        assert_eq!(d["status"], "delivered", "{d}");
        assert_eq!(d["attempt_log"][0]["status_code"], 200, "{d}");
    }
    // The secret is shown once: never in a list.
    let (_, list) = s.get("/v1/webhooks", &key).await;
    assert_eq!(list["webhooks"][0]["id"], webhook.as_str());
    assert!(!list.to_string().contains(&secret) && list["webhooks"][0].get("secret").is_none(), "{list}");
}

on_both!(a_receiver_that_is_down_gets_it_when_it_is_back);
async fn a_receiver_that_is_down_gets_it_when_it_is_back(db: Db) {
    let (_db, store) = TestDb::with_store(db).await;
    let s = start(store).await;
    let (producer, key) = s.producer().await;
    // A port held but not listening (no other test can take it): connections are refused.
    let parked = tokio::net::TcpSocket::new_v4().expect("socket");
    parked.bind("127.0.0.1:0".parse().expect("address")).expect("bind");
    let addr = parked.local_addr().expect("addr");
    let url = format!("http://{addr}/hook");
    let (status, hook) = register(&s, &key, &url, &["lead.purchased"]).await;
    assert_eq!(status, 201, "{hook}");
    let webhook = hook["id"].as_str().expect("id").to_string();
    post(&s, "cap", &producer, "ana", "checkout.updated").await;
    post(&s, "paid", &producer, "ana", "order.paid").await;
    assert_eq!(deliver(&s).await, 1, "{db:?}: tried at once");
    assert_eq!(deliver(&s).await, 0, "{db:?}: not again before its backoff");
    s.clock.advance(40_000); // the first retry comes 30 s ± 20 % later
    assert_eq!(deliver(&s).await, 1, "{db:?}: retried");

    // Back, but answering 503 for a while.
    let rx = Receiver::on(parked.listen(64).expect("listen on the held port")).await;
    rx.status.store(503, Ordering::SeqCst);
    s.clock.advance(80_000);
    assert_eq!(deliver(&s).await, 1, "{db:?}");
    rx.status.store(200, Ordering::SeqCst);
    s.clock.advance(150_000);
    assert_eq!(deliver(&s).await, 1, "{db:?}");
    s.clock.advance(24 * 3_600_000);
    assert_eq!(deliver(&s).await, 0, "{db:?}: delivered, never sent again");

    let seen = rx.seen();
    assert_eq!(seen.len(), 2, "{db:?}: the 503 and the 200");
    assert_eq!(seen[0].delivery, seen[1].delivery, "{db:?}: the same delivery id on every attempt");
    assert_eq!(seen[0].body, seen[1].body, "{db:?}: the same body on every attempt");
    auth::verify_signature(
        hook["secret"].as_str().expect("secret"),
        &seen[1].signature,
        seen[1].body.as_bytes(),
        (T0 + 270_000) / 1000,
    )
    .expect("signed at the time of its attempt");
    let listed = deliveries(&s, &key, &webhook).await;
    assert_eq!(listed.len(), 1, "{db:?}");
    assert_eq!(listed[0]["status"], "delivered");
    assert_eq!(listed[0]["attempts"], 4);
    let codes: Vec<Value> =
        listed[0]["attempt_log"].as_array().expect("log").iter().map(|a| a["status_code"].clone()).collect();
    assert_eq!(codes, [json!(200), json!(503), Value::Null, Value::Null], "{db:?}: newest first");
    let refused = listed[0]["attempt_log"][3]["error"].as_str().expect("why");
    assert!(refused.contains("connect"), "{refused}");
}

on_both!(after_a_day_of_failures_the_delivery_is_failed);
async fn after_a_day_of_failures_the_delivery_is_failed(db: Db) {
    let (_db, store) = TestDb::with_store(db).await;
    let s = start(store).await;
    let (producer, key) = s.producer().await;
    let rx = Receiver::start().await;
    rx.status.store(500, Ordering::SeqCst);
    let (_, hook) = register(&s, &key, &rx.url, &["lead.purchased"]).await;
    let webhook = hook["id"].as_str().expect("id").to_string();
    post(&s, "cap", &producer, "ana", "checkout.updated").await;
    post(&s, "paid", &producer, "ana", "order.paid").await;
    let mut tries = 0;
    // Each retry comes at most 72 minutes after the last (an hour + 20 % jitter).
    for _ in 0..30 {
        tries += deliver(&s).await;
        s.clock.advance(75 * 60_000);
    }
    let listed = deliveries(&s, &key, &webhook).await;
    assert_eq!(listed[0]["status"], "failed", "{db:?}: {}", listed[0]);
    assert_eq!(listed[0]["last_status_code"], 500);
    let log = listed[0]["attempt_log"].as_array().expect("log");
    assert_eq!(log.len(), tries, "{db:?}: every attempt listed");
    assert_eq!(rx.seen().len(), tries, "{db:?}");
    assert!((12..=40).contains(&tries), "{db:?}: retried for a day ({tries} attempts)");
    assert!(log.iter().all(|a| a["status_code"] == 500), "{log:?}");
    let at = |a: &Value| chrono::DateTime::parse_from_rfc3339(a["at"].as_str().expect("at")).expect("time");
    let span = at(&log[0]) - at(&log[log.len() - 1]);
    assert!(span <= chrono::Duration::hours(24) && span >= chrono::Duration::hours(20), "{db:?}: {span}");
    assert_eq!(deliver(&s).await, 0, "{db:?}: failed is final");
}

on_both!(private_targets_are_refused_without_the_operators_flag);
async fn private_targets_are_refused_without_the_operators_flag(db: Db) {
    let (_db, store) = TestDb::with_store(db).await;
    let runtime = crate::support::runtime();
    let s = start_full(store, None, runtime, TargetPolicy::default(), SenderSettings::default()).await;
    let (producer, key) = s.producer().await;
    let rx = Receiver::start().await;
    for url in [
        rx.url.as_str(),
        "http://localhost:9/hook",
        "http://[::1]/",
        "http://10.0.0.1/",
        "http://192.168.0.10/",
        "http://169.254.169.254/latest/meta-data",
        "http://100.64.0.1/",
        "http://0.0.0.0/",
        "http://[fd00::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://2130706433/",
    ] {
        let (status, body) = register(&s, &key, url, &["lead.purchased"]).await;
        assert_eq!(status, 422, "{db:?}: {url}: {body}");
        assert_eq!(body["errors"][0]["path"], "url", "{body}");
        assert!(body["errors"][0]["message"].as_str().expect("message").contains("refused"), "{body}");
    }
    assert_eq!(s.get("/v1/webhooks", &key).await.1["webhooks"], json!([]));

    // A webhook stored when private targets were allowed (or a name that now resolves to
    // loopback) is checked again at delivery: never called.
    for url in [rx.url.clone(), rx.url.replace("127.0.0.1", "localhost")] {
        s.engine
            .store
            .create_webhook(&producer, &url, &[WebhookEvent::LeadPurchased], 10, T0)
            .await
            .expect("stored directly");
    }
    post(&s, "cap", &producer, "ana", "checkout.updated").await;
    post(&s, "paid", &producer, "ana", "order.paid").await;
    assert_eq!(deliver(&s).await, 2, "{db:?}");
    assert!(rx.seen().is_empty(), "{db:?}: the loopback receiver was never reached");
    let (_, list) = s.get("/v1/webhooks", &key).await;
    for hook in list["webhooks"].as_array().expect("hooks") {
        let listed = deliveries(&s, &key, hook["id"].as_str().expect("id")).await;
        let error = listed[0]["attempt_log"][0]["error"].as_str().expect("error").to_string();
        assert!(error.contains("loopback") && error.contains("refused"), "{db:?}: {error}");
        assert_eq!(listed[0]["status"], "pending", "retried (the name may resolve elsewhere later)");
    }
}

on_both!(bad_fields_are_named);
async fn bad_fields_are_named(db: Db) {
    let (_db, store) = TestDb::with_store(db).await;
    let s = start(store).await;
    let (_, key) = s.producer().await;
    let ok = "http://127.0.0.1:9/hook";
    let long = format!("http://127.0.0.1:9/{}", "a".repeat(2048));
    let many: Vec<&str> = std::iter::repeat_n("lead.recovered", 100).collect();
    let cases: Vec<(Value, &str)> = vec![
        (json!({"url": "ftp://example.com/x", "events": ["lead.recovered"]}), "url"),
        (json!({"url": "http://user:pw@127.0.0.1:9/", "events": ["lead.recovered"]}), "url"),
        (json!({"url": long, "events": ["lead.recovered"]}), "url"),
        (json!({"url": "not a url", "events": ["lead.recovered"]}), "url"),
        (json!({"url": "http:///nohost", "events": ["lead.recovered"]}), "url"),
        (json!({"url": ok, "events": []}), "events"),
        (json!({"url": ok, "events": many}), "events"),
        (json!({"url": ok, "events": ["lead.recovered", "lead.recovered"]}), "events[1]"),
        (json!({"url": ok, "events": ["lead.stolen"]}), "events[0]"),
        (json!({"url": ok, "events": ["message.sent", 7]}), "events[1]"),
        (json!({"url": 42, "events": ["lead.recovered"]}), "url"),
        (json!({"url": "http://127.0.0.1:9/\u{0}", "events": ["lead.recovered"]}), "url"),
    ];
    for (body, path) in cases {
        let (status, answer) = s.send(reqwest::Method::POST, "/v1/webhooks", Some(&key), Some(body.clone())).await;
        assert_eq!(status, 422, "{db:?}: {body} → {answer}");
        let paths: Vec<&str> =
            answer["errors"].as_array().expect("errors").iter().filter_map(|e| e["path"].as_str()).collect();
        assert!(paths.contains(&path), "{db:?}: {body} names {path}: {answer}");
    }
    let (status, answer) = s
        .send(
            reqwest::Method::POST,
            "/v1/webhooks",
            Some(&key),
            Some(json!({"url": ok, "events": ["message.sent"], "x": 1})),
        )
        .await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(
        s.send(reqwest::Method::POST, "/v1/webhooks", None, Some(json!({"url": ok, "events": ["message.sent"]})))
            .await
            .0,
        401
    );
    assert_eq!(s.get("/v1/webhooks", &key).await.1["webhooks"], json!([]), "{db:?}: nothing stored");

    // The cap: ten webhooks, and the eleventh is a clear 409.
    let mut last = String::new();
    for _ in 0..10 {
        let (status, hook) = register(&s, &key, ok, &["lead.recovered"]).await;
        assert_eq!(status, 201, "{hook}");
        last = hook["id"].as_str().expect("id").to_string();
    }
    let (status, full) = register(&s, &key, ok, &["lead.recovered"]).await;
    assert_eq!(status, 409, "{db:?}: {full}");
    assert!(full["detail"].as_str().expect("detail").contains("10"), "{full}");
    for (query, field) in [("limit=0", "limit"), ("limit=101", "limit"), ("cursor=zzz", "cursor")] {
        let (status, answer) = s.get(&format!("/v1/webhooks/{last}/deliveries?{query}"), &key).await;
        assert_eq!((status, answer["errors"][0]["path"].as_str()), (422, Some(field)), "{query}: {answer}");
    }
    let (status, page) = s.get(&format!("/v1/webhooks/{last}/deliveries?cursor=0.x&limit=5"), &key).await;
    assert_eq!((status, page["deliveries"].clone()), (200, json!([])), "{page}");
}

on_both!(another_producer_cannot_see_or_delete);
async fn another_producer_cannot_see_or_delete(db: Db) {
    let (_db, store) = TestDb::with_store(db).await;
    let s = start(store).await;
    let (_, ana) = s.producer().await;
    let (_, bia) = s.producer().await;
    let (_, hook) = register(&s, &ana, "http://127.0.0.1:9/hook", &["lead.recovered"]).await;
    let id = hook["id"].as_str().expect("id");
    assert_eq!(s.get("/v1/webhooks", &bia).await.1, json!({"webhooks": []}));
    assert_eq!(s.get(&format!("/v1/webhooks/{id}/deliveries"), &bia).await.0, 404);
    assert_eq!(s.send(reqwest::Method::DELETE, &format!("/v1/webhooks/{id}"), Some(&bia), None).await.0, 404);
    assert_eq!(s.get("/v1/webhooks/wh_nope/deliveries", &ana).await.0, 404);
    assert_eq!(s.send(reqwest::Method::DELETE, "/v1/webhooks/wh_nope", Some(&ana), None).await.0, 404);
    assert_eq!(
        s.get("/v1/webhooks", &ana).await.1["webhooks"].as_array().expect("list").len(),
        1,
        "{db:?}: still there"
    );
    let deleted =
        s.request(reqwest::Method::DELETE, &format!("/v1/webhooks/{id}"), Some(&ana)).send().await.expect("delete");
    assert_eq!(deleted.status().as_u16(), 204);
    assert_eq!(s.get(&format!("/v1/webhooks/{id}/deliveries"), &ana).await.0, 404);
    assert_eq!(s.get("/v1/webhooks", &ana).await.1, json!({"webhooks": []}));
}

on_both!(a_hanging_receiver_holds_up_no_one_else);
async fn a_hanging_receiver_holds_up_no_one_else(db: Db) {
    let (test_db, store) = TestDb::with_store(db).await;
    let settings = SenderSettings { request: Duration::from_secs(4), ..SenderSettings::default() };
    let s = start_full(store, None, crate::support::runtime(), ALLOW_PRIVATE, settings).await;
    let (slow_producer, slow_key) = s.producer().await;
    let (producer, key) = s.producer().await;
    // Accepts connections and never answers.
    let hang = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let hang_url = format!("http://{}/hook", hang.local_addr().expect("addr"));
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = hang.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            held.push(socket);
        }
    });
    let rx = Receiver::start().await;
    assert_eq!(register(&s, &slow_key, &hang_url, &["lead.purchased"]).await.0, 201);
    assert_eq!(register(&s, &key, &rx.url, &["lead.purchased"]).await.0, 201);
    assert_eq!(s.send(reqwest::Method::PUT, "/v1/bindings", Some(&key), Some(four_emails())).await.0, 200);
    for i in 0..5 {
        post(&s, &format!("slow-{i}"), &slow_producer, &format!("s{i}"), "order.paid").await;
    }
    post(&s, "fast", &producer, "ana", "order.paid").await;

    // serve's loops, on the engine behind the API.
    let jobs = funnel_host::scheduler::periodic::PeriodicJobs {
        retention: funnel_host::scheduler::periodic::Periodic::parse("0 30 3 * * *").expect("cron"),
        retention_days: 90,
        stats_rollup: funnel_host::scheduler::periodic::Periodic::parse("0 0 * * * *").expect("cron"),
    };
    let started = std::time::Instant::now();
    let loops = funnel_host::pipeline::loops::Loops::start(s.engine.clone(), s.state.work.clone(), jobs);
    wait_for(|| !rx.of("lead.purchased").is_empty(), "the other producer's delivery").await;
    let fast = started.elapsed();
    eprintln!("webhooks: another producer's delivery arrived {fast:?} after start while one endpoint hung");
    assert!(fast < Duration::from_secs(3), "{db:?}: delivered in {fast:?}, before the hanging request's 4 s deadline");
    // The engine goes on: a new lead is captured and its email queued while the receiver hangs.
    let lead =
        post(&s, "bia", &producer, "bia", "checkout.updated").await["lead_id"].as_str().expect("lead").to_string();
    let handled = format!("SELECT COUNT(*) FROM events WHERE lead_id = '{lead}' AND status = 'done'");
    let mut done = 0;
    for _ in 0..100 {
        done = test_db.count(&handled).await;
        if done > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(done > 0, "{db:?}: dispatch handled the new lead");
    assert!(started.elapsed() < Duration::from_secs(4), "{db:?}: while the slow receiver still hangs");
    assert_eq!(connections.load(Ordering::SeqCst), 1, "{db:?}: one request at a time to the slow endpoint");
    assert!(loops.shutdown(Duration::from_secs(8)).await, "{db:?}: the loops stop cleanly");
}

async fn wait_for(mut done: impl FnMut() -> bool, what: &str) {
    for _ in 0..200 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{what} did not happen within 5 s");
}

on_both!(only_the_claims_owner_records_the_outcome);
async fn only_the_claims_owner_records_the_outcome(db: Db) {
    use funnel_host::store::webhooks::{Attempt, Next};
    let (_db, store) = TestDb::with_store(db).await;
    let s = start(store.clone()).await;
    let (producer, key) = s.producer().await;
    let (_, hook) = register(&s, &key, "http://127.0.0.1:9/hook", &["lead.purchased"]).await;
    post(&s, "paid", &producer, "ana", "order.paid").await;
    let first = store.claim_webhook_deliveries(T0, 60_000, 10, &[]).await.expect("claim");
    assert_eq!(first.len(), 1, "{db:?}");
    assert!(
        store.claim_webhook_deliveries(T0 + 59_999, 60_000, 10, &[]).await.expect("claim").is_empty(),
        "{db:?}: held"
    );
    // The first worker stalls past its lease; another takes the delivery over.
    let second = store.claim_webhook_deliveries(T0 + 60_000, 60_000, 10, &[]).await.expect("claim");
    assert_eq!(second.len(), 1, "{db:?}: taken over when the lease ran out");
    let attempt = |code| Attempt { at: T0 + 61_000, status_code: Some(code), error: None, duration_ms: 5 };
    assert!(
        !store.finish_webhook_delivery(&first[0], &attempt(200), Next::Delivered).await.expect("finish"),
        "{db:?}: the old owner marks nothing"
    );
    assert!(
        store
            .finish_webhook_delivery(&second[0], &attempt(503), Next::Retry { at: T0 + 120_000 })
            .await
            .expect("finish")
    );
    let listed = deliveries(&s, &key, hook["id"].as_str().expect("id")).await;
    assert_eq!((listed[0]["status"].clone(), listed[0]["attempts"].clone()), (json!("pending"), json!(1)), "{db:?}");
    assert_eq!(listed[0]["attempt_log"][0]["status_code"], 503);
}

on_both!(bounces_and_unsubscribes_are_reported);
async fn bounces_and_unsubscribes_are_reported(db: Db) {
    let (url, mailbox) = crate::smtp_server::start();
    mailbox.refuse("ghost@example.com");
    let smtp =
        funnel_host::delivery::smtp::SmtpTransport::new(&url, "Loja <loja@example.com>", "https://funnel.test".into())
            .expect("smtp");
    let (_db, store) = TestDb::with_store(db).await;
    let s = crate::api_server::start_with(store, Some(Arc::new(smtp))).await;
    let (producer, key) = s.producer().await;
    let rx = Receiver::start().await;
    assert_eq!(register(&s, &key, &rx.url, &["message.bounced", "contact.unsubscribed"]).await.0, 201);
    assert_eq!(s.send(reqwest::Method::PUT, "/v1/bindings", Some(&key), Some(four_emails())).await.0, 200);
    post(&s, "cap-ghost", &producer, "ghost", "checkout.updated").await;
    let ana =
        post(&s, "cap-ana", &producer, "ana", "checkout.updated").await["lead_id"].as_str().expect("lead").to_string();
    s.settle().await;
    s.clock.set(T0 + 20 * 60_000);
    s.settle().await;
    s.clock.set(T0 + 30 * 60_000);
    // What the one-click unsubscribe route calls; twice, as a person clicking again would.
    s.engine.store.unsubscribe_lead(&ana, T0 + 30 * 60_000).await.expect("unsubscribe");
    s.engine.store.unsubscribe_lead(&ana, T0 + 30 * 60_000).await.expect("again: nothing new");
    deliver(&s).await;
    let bounced = rx.of("message.bounced");
    assert_eq!(bounced.len(), 1, "{db:?}");
    let body: Value = serde_json::from_str(&bounced[0].body).expect("json");
    assert_eq!(body["data"]["recipient"], "ghost@example.com", "{body}");
    assert!(body["data"]["reason"].as_str().is_some_and(|r| !r.is_empty()), "{body}");
    let unsubscribed = rx.of("contact.unsubscribed");
    assert_eq!(unsubscribed.len(), 1, "{db:?}: once, however many clicks");
    let body: Value = serde_json::from_str(&unsubscribed[0].body).expect("json");
    assert_eq!(body["data"], json!({"lead_id": ana, "email": "ana@example.com"}));
    assert!(rx.of("message.sent").is_empty(), "{db:?}: not subscribed");
}

on_both!(two_workers_deliver_each_event_once);
async fn two_workers_deliver_each_event_once(db: Db) {
    let (_db, store) = TestDb::with_store(db).await;
    let s = start(store.clone()).await;
    let (producer, key) = s.producer().await;
    let rx = Receiver::start().await;
    for _ in 0..3 {
        assert_eq!(register(&s, &key, &rx.url, &["lead.purchased"]).await.0, 201);
    }
    for i in 0..10 {
        post(&s, &format!("paid-{i}"), &producer, &format!("c{i}"), "order.paid").await;
    }
    // A second replica's worker over the same database and clock.
    let other = Arc::new(WebhookSender::new(store, s.clock.clone(), ALLOW_PRIVATE, SenderSettings::default()));
    let (a, b) = tokio::join!(s.engine.webhooks.deliver_due(), other.deliver_due());
    assert_eq!(a.expect("a") + b.expect("b"), 30, "{db:?}: 30 attempts in all");
    let ids: HashSet<String> = rx.seen().into_iter().map(|r| r.delivery).collect();
    assert_eq!((rx.seen().len(), ids.len()), (30, 30), "{db:?}: each delivery once");
}

#[tokio::test]
async fn the_openapi_document_describes_webhooks() {
    let (_db, store) = TestDb::with_store(Db::Sqlite).await;
    let s = start(store).await;
    let (status, doc) = s.send(reqwest::Method::GET, "/openapi.json", None, None).await;
    assert_eq!(status, 200);
    let post = &doc["paths"]["/v1/webhooks"]["post"];
    let body = &post["requestBody"]["content"]["application/json"]["schema"];
    assert_eq!(body["required"], json!(["url", "events"]), "{body}");
    assert_eq!(body["properties"]["events"]["items"]["enum"].as_array().map(Vec::len), Some(6), "{body}");
    let created = &post["responses"]["201"]["content"]["application/json"]["schema"];
    assert!(created["properties"]["secret"].is_object() && created["properties"]["url"].is_object(), "{created}");
    for status in ["409", "422"] {
        assert!(post["responses"][status].is_object(), "{status}: {post}");
    }
    let list = &doc["paths"]["/v1/webhooks"]["get"]["responses"]["200"]["content"]["application/json"]["schema"];
    assert!(!list.to_string().contains("secret"), "a list never shows a secret: {list}");
    let page = &doc["paths"]["/v1/webhooks/{id}/deliveries"]["get"]["responses"];
    assert!(page["200"].is_object() && page["404"].is_object(), "{page}");
    assert!(doc["paths"]["/v1/webhooks/{id}"]["delete"]["responses"]["204"].is_object());
    assert!(doc.to_string().contains("attempt_log"), "the delivery schema is in the document");
}

on_both!(a_unique_coupon_given_to_a_lead_is_reported_once);
async fn a_unique_coupon_given_to_a_lead_is_reported_once(db: Db) {
    let (_db, store) = TestDb::with_store(db).await;
    let s = start(store).await;
    let (producer, key) = s.producer().await;
    let rx = Receiver::start().await;
    let (status, hook) = register(&s, &key, &rx.url, &["coupon.assigned"]).await;
    assert_eq!(status, 201, "{hook}");
    let secret = hook["secret"].as_str().expect("the secret, once").to_string();
    let pool =
        json!({"product_id": "curso", "plan_id": "anual", "discount_percent": 10, "codes": ["VOLTA-1", "VOLTA-2"]});
    assert_eq!(s.send(reqwest::Method::POST, "/v1/coupons", Some(&key), Some(pool)).await.0, 201);
    // Two coupon emails an hour apart: the code is given once, so it is reported once.
    let flow = json!({"start": "first", "steps": {
        "first": {"email": {"subject": "Cupom", "html": "<p>{{coupon_code}}</p>", "coupon": true}, "next": "wait"},
        "wait": {"wait": "1h", "next": "second"},
        "second": {"email": {"subject": "De novo", "html": "<p>{{coupon_code}}</p>", "coupon": true}, "next": "end"}}});
    let binding = json!({"product_id": "curso", "plan_id": "anual", "plugin": "flow", "config": flow});
    let (status, answer) = s.send(reqwest::Method::PUT, "/v1/bindings", Some(&key), Some(binding)).await;
    assert_eq!(status, 200, "{answer}");
    let e = event("cap-ana", &producer, "ana@example.com").tap_checkout_scope("ana");
    let (status, answer) = s.post_event(e).await;
    assert_eq!(status, 202, "{answer}");
    let lead = answer["lead_id"].as_str().expect("lead").to_string();
    s.settle().await;
    s.clock.set(T0 + 3_600_000);
    s.settle().await;
    deliver(&s).await;
    let seen = rx.of("coupon.assigned");
    assert_eq!(seen.len(), 1, "{db:?}: one assignment, one report: {seen:?}");
    auth::verify_signature(&secret, &seen[0].signature, seen[0].body.as_bytes(), s.clock.now_ms() / 1000)
        .expect("signed with the webhook's secret");
    let body: Value = serde_json::from_str(&seen[0].body).expect("json");
    assert_eq!(body["type"], "coupon.assigned", "{body}");
    assert_eq!((&body["data"]["lead_id"], &body["data"]["code"]), (&json!(lead), &json!("VOLTA-1")), "{body}");
    assert_eq!(body["data"]["product_id"], "curso", "{body}");
}
