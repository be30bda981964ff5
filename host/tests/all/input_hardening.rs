//! Issue 13, the input side: whatever a platform, a producer or a plugin sends is refused at
//! the edge with an error naming the field, or bounded — never a 500, a panic or a store
//! error that stops the engine. Control characters (PostgreSQL text cannot hold NUL), event
//! ids that collide with the host's own, email addresses in display-name form or in another
//! case, and the sizes and counts a plugin can push.

use funnel_host::domain::{EmailAddress, PlatformEventType};
use funnel_host::store::ingest::IngestOutcome;
use serde_json::{Value, json};
use sqlx::Connection;

use crate::api_server::{ADMIN, PLATFORM, TapEvent, event, start};
use crate::db::{Db, TestDb, on_both};
use crate::harness::{Harness, T0, lead_id, logs_starting};

/// The paths a problem+json names.
fn paths(problem: &Value) -> Vec<String> {
    problem["errors"].as_array().into_iter().flatten().filter_map(|e| e["path"].as_str().map(str::to_string)).collect()
}

on_both!(control_characters_in_an_event_are_a_field_error);
async fn control_characters_in_an_event_are_a_field_error(db: Db) {
    let (_db, store) = TestDb::with_store(db).await;
    let s = start(store).await;
    let (producer, key) = s.producer().await;
    let batch =
        json!({"events": [event("b1", &producer, "ana@example.com").tap(&["checkout", "name"], json!("Ana\u{0}"))]});
    // The platform retries what failed: every retry gets the same 422, never a 500.
    for _ in 0..2 {
        let (status, problem) =
            s.send(reqwest::Method::POST, "/v1/events/batch", Some(PLATFORM), Some(batch.clone())).await;
        assert_eq!(status, 422, "{db:?}: {problem}");
        assert!(paths(&problem).contains(&"events[0].checkout.name".to_string()), "{db:?}: {problem}");
    }
    let cases = [
        (event("e\u{1}1", &producer, "ana@example.com"), "id"),
        (event("e2", &format!("{producer}\u{0}"), "ana@example.com"), "producer_id"),
        (event("e3", &producer, "ana\u{0}@example.com"), "checkout.email"),
        (event("e4", &producer, "ana@example.com").tap(&["checkout", "id"], json!("chk\u{0}")), "checkout.id"),
        (event("e5", &producer, "ana@example.com").tap(&["checkout", "phone"], json!("+55\n11")), "checkout.phone"),
        (
            event("e6", &producer, "ana@example.com").tap(&["checkout", "product_id"], json!("p\u{7f}")),
            "checkout.product_id",
        ),
        (event("e7", &producer, "ana@example.com").tap(&["checkout", "plan_id"], json!("\u{0}")), "checkout.plan_id"),
        (
            event("e8", &producer, "ana@example.com").tap(&["checkout", "url"], json!("https://x.test/\u{0}")),
            "checkout.url",
        ),
        (event("e9", &producer, "ana@example.com").tap(&["checkout", "name"], json!("Ana\tSouza")), "checkout.name"),
    ];
    for (body, path) in cases {
        let (status, problem) = s.send(reqwest::Method::POST, "/v1/events", Some(PLATFORM), Some(body)).await;
        assert_eq!(status, 422, "{db:?} {path}: {problem}");
        assert!(paths(&problem).contains(&path.to_string()), "{db:?}: expected {path} in {problem}");
    }
    let (_, leads) = s.get("/v1/leads", &key).await;
    assert_eq!(leads["leads"], json!([]), "{db:?}: nothing was stored");
}

on_both!(control_characters_in_producer_input_are_a_field_error);
async fn control_characters_in_producer_input_are_a_field_error(db: Db) {
    let (_db, store) = TestDb::with_store(db).await;
    let s = start(store).await;
    let (_, key) = s.producer().await;
    // A NUL inside a binding's config JSON, in a coupon, in a producer's name.
    let binding = json!({"plugin": "four-emails", "config": {"emails": [
        {"after": "20m", "subject": "Oi\u{0}", "html": "<p>x</p>"}]}});
    let (status, problem) = s.send(reqwest::Method::PUT, "/v1/bindings", Some(&key), Some(binding)).await;
    assert_eq!(status, 422, "{db:?}: {problem}");
    assert!(paths(&problem).contains(&"config.emails[0].subject".to_string()), "{db:?}: {problem}");
    let binding = json!({"product_id": "p\u{0}", "plugin": "four-emails", "config": {"emails": [
        {"after": "20m", "subject": "Oi", "html": "<p>x</p>"}]}});
    let (status, problem) = s.send(reqwest::Method::PUT, "/v1/bindings", Some(&key), Some(binding)).await;
    assert_eq!((status, paths(&problem)), (422, vec!["product_id".to_string()]), "{db:?}: {problem}");
    let coupon = json!({"product_id": "p\u{0}", "plan_id": "q", "code": "VOLTA", "discount_percent": 10});
    let (status, problem) = s.send(reqwest::Method::POST, "/v1/coupons", Some(&key), Some(coupon)).await;
    assert_eq!((status, paths(&problem)), (422, vec!["product_id".to_string()]), "{db:?}: {problem}");
    let (status, problem) =
        s.send(reqwest::Method::POST, "/v1/admin/producers", Some(ADMIN), Some(json!({"name": "Loja\u{0}"}))).await;
    assert_eq!((status, paths(&problem)), (422, vec!["name".to_string()]), "{db:?}: {problem}");
    let (_, bindings) = s.get("/v1/bindings", &key).await;
    assert_eq!(bindings["bindings"], json!([]), "{db:?}: no binding was stored");
}

on_both!(control_characters_from_a_plugin_are_refused_by_the_capability);
async fn control_characters_from_a_plugin_are_refused_by_the_capability(db: Db) {
    let (_db, h) = Harness::with_guest(db, "control-chars").await;
    let lead = lead_id(&h.post("e1", PlatformEventType::CheckoutUpdated, "c1", None).await);
    h.settle().await;
    let timeline = h.timeline(&lead).await;
    let answers = logs_starting(&timeline, "cc ");
    for call in ["email-subject", "email-html", "email-tag", "sms", "timer"] {
        let answer = answers.iter().find(|l| l.starts_with(&format!("cc {call}="))).unwrap_or_else(|| {
            panic!("{db:?}: no answer for {call}: {answers:?}");
        });
        assert!(
            answer.contains("Err(HostError::Invalid(\"") && answer.contains("control characters"),
            "{db:?}: {answer}"
        );
    }
    let logged = answers.iter().find(|l| l.starts_with("cc log with a NUL")).expect("the NUL log line");
    assert!(!logged.contains('\u{0}'), "{db:?}: control characters are replaced in the timeline: {logged:?}");
    assert!(h.messages(&lead).await.is_empty(), "{db:?}: nothing was queued");
    assert_eq!(h.engine.store.pending_timers().await.expect("timers"), 0, "{db:?}");
}

on_both!(a_plugin_error_with_a_nul_fails_its_event_not_the_engine);
async fn a_plugin_error_with_a_nul_fails_its_event_not_the_engine(db: Db) {
    let (test_db, h) = Harness::with_guest(db, "nul-error").await;
    h.post("e1", PlatformEventType::CheckoutUpdated, "c1", None).await;
    h.settle().await;
    let errors = test_db.count("SELECT COUNT(*) FROM events WHERE error LIKE '%failing with a NUL%'").await;
    assert_eq!(errors, 1, "{db:?}: the failure is recorded on its event");
}

on_both!(platform_ids_never_collide_with_derived_ids);
async fn platform_ids_never_collide_with_derived_ids(db: Db) {
    let (_db, h) = Harness::with_guest(db, "count").await;
    // `e1` makes two lead events (captured, purchased); then a real event `e1#1`.
    let accepted = |o: &IngestOutcome| matches!(o, IngestOutcome::Accepted { .. });
    let first = h.post("e1", PlatformEventType::OrderPaid, "c1", None).await;
    assert!(accepted(&first), "{db:?}: {first:?}");
    let second = h.post("e1#1", PlatformEventType::CheckoutUpdated, "c2", None).await;
    assert!(accepted(&second), "{db:?}: a real e1#1 after e1 is a new event: {second:?}");
    // The other order: `f1#1` first, then `f1`, which makes two lead events.
    let third = h.post("f1#1", PlatformEventType::CheckoutUpdated, "c3", None).await;
    assert!(accepted(&third), "{db:?}: {third:?}");
    let fourth = h.post("f1", PlatformEventType::OrderPaid, "c4", None).await;
    assert!(accepted(&fourth), "{db:?}: f1 after f1#1: {fourth:?}");
    // Each is still known as itself.
    for (id, checkout) in [("e1", "c1"), ("e1#1", "c2"), ("f1#1", "c3"), ("f1", "c4")] {
        let again = h.post(id, PlatformEventType::CheckoutUpdated, checkout, None).await;
        assert!(matches!(again, IngestOutcome::Duplicate { .. }), "{db:?}: {id} again: {again:?}");
    }
    h.settle().await;
}

on_both!(emails_are_bare_addresses_normalized_once);
async fn emails_are_bare_addresses_normalized_once(db: Db) {
    let (test_db, store) = TestDb::with_store(db).await;
    let s = start(store.clone()).await;
    let (producer, key) = s.producer().await;
    for bad in ["x<victim@example.com>", "Victim <victim@example.com>", "\"v\"@example.com", "a@b@example.com"] {
        let (status, problem) = s.post_event(event("e0", &producer, bad)).await;
        assert_eq!((status, paths(&problem)), (422, vec!["checkout.email".to_string()]), "{db:?} {bad}: {problem}");
    }
    // Stored once, normalized.
    let (status, body) = s.post_event(event("e1", &producer, "  ÉLISE@Example.COM ").tap_checkout("chk-e")).await;
    assert_eq!(status, 202, "{db:?}: {body}");
    let lead = body["lead_id"].as_str().expect("lead").to_string();
    let (_, detail) = s.get(&format!("/v1/leads/{lead}"), &key).await;
    assert_eq!(detail["email"], "élise@example.com", "{db:?}: {detail}");
    // Erasure in any case removes the lead and its phone.
    let resp = s.request(reqwest::Method::DELETE, "/v1/contacts/%C3%89LISE%40example.com", Some(&key)).send().await;
    assert_eq!(resp.expect("erase").status().as_u16(), 204);
    assert_eq!(test_db.count("SELECT COUNT(*) FROM leads").await, 0, "{db:?}: the lead and its phone are gone");
    let (status, problem) =
        s.send(reqwest::Method::DELETE, "/v1/contacts/x%3Cv%40example.com%3E", Some(&key), None).await;
    assert_eq!((status, paths(&problem)), (422, vec!["email".to_string()]), "{db:?}: {problem}");

    // An unsubscribed victim stays suppressed whatever the case of a later checkout.
    let (_, victim) = s.post_event(event("e2", &producer, "victim@example.com").tap_checkout("chk-v")).await;
    let victim = victim["lead_id"].as_str().expect("lead").to_string();
    store.unsubscribe_lead(&victim, T0).await.expect("unsubscribe");
    let (status, again) = s.post_event(event("e3", &producer, "VICTIM@example.com").tap_checkout("chk-w")).await;
    assert_eq!(status, 202, "{db:?}: {again}");
    let snapshot = store.lead_snapshot(again["lead_id"].as_str().expect("lead")).await.expect("snapshot");
    assert!(snapshot.email_suppressed, "{db:?}: {snapshot:?}");
    assert_eq!(snapshot.email, "victim@example.com");
}

#[test]
fn an_email_address_is_bare_and_normalized() {
    let parsed = EmailAddress::parse("  ÉLISE@Example.COM ").expect("valid");
    assert_eq!(parsed.as_str(), "élise@example.com");
    for bad in ["", "x", "@example.com", "a@", "a@localhost", "x<v@example.com>", "a b@example.com", "a@b\u{0}.com"] {
        assert!(EmailAddress::parse(bad).is_err(), "{bad:?} must be refused");
    }
}

on_both!(emails_stored_by_an_older_release_are_found_in_any_case);
async fn emails_stored_by_an_older_release_are_found_in_any_case(db: Db) {
    // The last release's schema with a lead stored as the platform sent it, and the
    // suppression it stored lowercased.
    let test_db = older_release_database(
        db,
        "INSERT INTO producers (id, name, api_key_hash, created_at) VALUES ('p1', 'old', 'h', 0);
         INSERT INTO leads (id, producer_id, checkout_id, email, phone, status, captured_at)
             VALUES ('l1', 'p1', 'c1', ' Legacy@Example.COM', '+5511999990000', 'open', 0);
         INSERT INTO leads (id, producer_id, checkout_id, email, status, captured_at)
             VALUES ('l2', 'p1', 'c2', 'Unsub@Example.com', 'open', 0);
         INSERT INTO suppressions (producer_id, address, reason, created_at)
             VALUES ('p1', 'unsub@example.com', 'unsubscribed', 0);
         INSERT INTO leads (id, producer_id, checkout_id, email, status, captured_at)
             VALUES ('l3', 'p1', 'c3', ' Spaced@Example.com', 'open', 0);
         INSERT INTO suppressions (producer_id, address, reason, created_at)
             VALUES ('p1', ' spaced@example.com', 'unsubscribed', 0);
         INSERT INTO list_members (producer_id, list_name, email, lead_id, added_at)
             VALUES ('p1', 'vip', ' spaced@example.com', 'l3', 0);",
    )
    .await;
    let store = test_db.store().await;
    assert!(store.lead_snapshot("l2").await.expect("l2").email_suppressed, "{db:?}");
    let spaced = store.lead_snapshot("l3").await.expect("l3");
    assert!(spaced.email_suppressed, "{db:?}: a suppression stored untrimmed still holds");
    assert_eq!(spaced.lists, vec!["vip".to_string()], "{db:?}: and a list membership");
    let mut conn = test_db.connect().await;
    let stored: String =
        sqlx::query_scalar("SELECT email FROM leads WHERE id = 'l1'").fetch_one(&mut conn).await.expect("l1");
    assert_eq!(stored, "legacy@example.com", "{db:?}: normalized by the migration");
    store.erase_contact("p1", &EmailAddress::parse("LEGACY@example.com").expect("valid")).await.expect("erase");
    assert_eq!(test_db.count("SELECT COUNT(*) FROM leads WHERE id = 'l1'").await, 0, "{db:?}");
}

/// A fresh database with the last release's schema (migration 0001, applied as that release
/// did) holding the rows `sql` inserts; connecting a store then migrates it.
async fn older_release_database(db: Db, sql: &str) -> TestDb {
    let test_db = TestDb::new(db).await;
    let create = if db == Db::Sqlite { format!("{}?mode=rwc", test_db.url) } else { test_db.url.clone() };
    let mut conn = sqlx::AnyConnection::connect(&create).await.expect("connect");
    let schema = match db {
        Db::Sqlite => include_str!("../../migrations/sqlite/0001_initial.sql"),
        Db::Postgres => include_str!("../../migrations/postgres/0001_initial.sql"),
    };
    sqlx::raw_sql(schema).execute(&mut conn).await.expect("schema");
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string())).execute(&mut conn).await.expect("rows");
    conn.close().await.expect("close");
    test_db
}

on_both!(event_ids_stored_by_an_older_release_keep_their_meaning);
async fn event_ids_stored_by_an_older_release_keep_their_meaning(db: Db) {
    // `e1` made two rows (`e1`, and the host's `e1#1`); `x#1` was a platform's own id.
    let test_db = older_release_database(
        db,
        "INSERT INTO producers (id, name, api_key_hash, created_at) VALUES ('p1', 'old', 'h', 0);
         INSERT INTO events (id, producer_id, lead_id, kind, payload, status, next_attempt_at, created_at) VALUES
             ('e1', 'p1', 'l1', 'captured', '{}', 'done', 0, 0),
             ('e1#1', 'p1', 'l1', 'purchased', '{}', 'done', 0, 0),
             ('x#1', 'p1', 'l2', 'captured', '{}', 'done', 0, 0),
             ('timer:abc', 'p1', 'l1', 'timer', '{}', 'done', 0, 0);",
    )
    .await;
    let h = Harness::attach(test_db.store().await, T0).await;
    for (id, duplicate) in [("e1", true), ("x#1", true), ("e1#1", false), ("timer:abc", false)] {
        let outcome = h.post_for("p1", id, PlatformEventType::CheckoutUpdated, "c9", (None, None)).await;
        assert_eq!(matches!(outcome, IngestOutcome::Duplicate { .. }), duplicate, "{db:?} {id}: {outcome:?}");
    }
}

/// Open a connection and send the head of `POST /v1/plugins` with `key`, announcing
/// `length` bytes, then `sent` bytes of them; the caller stalls by sending no more.
async fn stalled_upload(base: &str, key: &str, length: usize, sent: usize) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "POST /v1/plugins?name=test-guest&version=0.1.0 HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\n\
         Content-Length: {length}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    stream.write_all(&vec![0u8; sent]).await.expect("some bytes");
    stream
}

/// The status line the server answers on `stream`, waiting at most 30 s (a server that waits
/// for the rest of the body never answers: the test fails at the deadline).
async fn status_line(stream: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut buf = vec![0u8; 4096];
    let read = tokio::time::timeout(std::time::Duration::from_secs(30), stream.read(&mut buf))
        .await
        .expect("the server answered within 30 s")
        .expect("read");
    let text = String::from_utf8_lossy(&buf[..read]).to_string();
    text.lines().next().unwrap_or_default().to_string()
}

#[tokio::test]
async fn an_upload_with_a_bad_key_is_refused_before_its_body_is_read() {
    let (_db, store) = TestDb::with_store(Db::Sqlite).await;
    let s = start(store).await;
    let mut stream = stalled_upload(&s.base, "bogus", 32 * 1024 * 1024, 1024).await;
    assert_eq!(status_line(&mut stream).await, "HTTP/1.1 401 Unauthorized");
}

#[tokio::test]
async fn a_stalled_upload_is_cut_at_its_deadline() {
    let (_db, store) = TestDb::with_store(Db::Sqlite).await;
    let mut config = crate::support::runtime_config();
    config.upload_deadline = std::time::Duration::from_secs(1);
    let s =
        crate::api_server::start_configured(store, None, funnel_host::runtime::Runtime::new(config).expect("rt")).await;
    let (_, key) = s.producer().await;
    let mut stream = stalled_upload(&s.base, &key, 1024 * 1024, 1024).await;
    assert_eq!(status_line(&mut stream).await, "HTTP/1.1 408 Request Timeout");
}

#[tokio::test]
async fn uploads_beyond_the_concurrent_slots_are_told_to_retry() {
    let (_db, store) = TestDb::with_store(Db::Sqlite).await;
    let mut config = crate::support::runtime_config();
    config.max_concurrent_uploads = 1;
    let s =
        crate::api_server::start_configured(store, None, funnel_host::runtime::Runtime::new(config).expect("rt")).await;
    let (_, key) = s.producer().await;
    let stalled = stalled_upload(&s.base, &key, 1024 * 1024, 1024).await;
    // Once the stalled upload holds the only slot, another is refused with a Retry-After.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let resp = s.request(reqwest::Method::POST, "/v1/plugins", Some(&key)).body(vec![1u8; 16]).send().await;
        let resp = resp.expect("upload");
        if resp.status().as_u16() == 503 {
            assert!(resp.headers().get("retry-after").is_some(), "{:?}", resp.headers());
            let (_, problem) = crate::api_server::answer(resp).await;
            assert!(problem["detail"].as_str().unwrap_or("").contains("upload"), "{problem}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no 503 while another upload holds the only slot");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // Its connection gone, the slot is free again.
    drop(stalled);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (status, _) = s.upload(&key, vec![1u8; 16]).await;
        if status == 422 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the slot was never given back (last status {status})");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The test guest with a custom section appended: other bytes, the same name and version.
fn test_guest_variant(tag: u8) -> Vec<u8> {
    let mut bytes = funnel_host::guests::TEST_GUEST.to_vec();
    // A custom section (id 0): size, name ("x", length 1), payload.
    bytes.extend_from_slice(&[0, 3, 1, b'x', tag]);
    bytes
}

on_both!(a_stored_component_is_immutable);
async fn a_stored_component_is_immutable(db: Db) {
    let (test_db, store) = TestDb::with_store(db).await;
    let s = start(store.clone()).await;
    let (producer, key) = s.producer().await;
    let (status, first) = s.upload(&key, funnel_host::guests::TEST_GUEST.to_vec()).await;
    assert_eq!(status, 201, "{db:?}: {first}");
    let binding = json!({"plugin": "test-guest", "config": {"mode": "count"}});
    let (status, body) = s.send(reqwest::Method::PUT, "/v1/bindings", Some(&key), Some(binding)).await;
    assert_eq!(status, 200, "{db:?}: {body}");
    // The same name and version with other bytes: refused; the same bytes again: fine.
    let (status, problem) = s.upload(&key, test_guest_variant(1)).await;
    assert_eq!(status, 409, "{db:?}: {problem}");
    assert!(problem["detail"].as_str().unwrap_or("").contains(first["sha256"].as_str().expect("sha")), "{problem}");
    let (status, again) = s.upload(&key, funnel_host::guests::TEST_GUEST.to_vec()).await;
    assert_eq!((status, &again["sha256"]), (200, &first["sha256"]), "{db:?}: {again}");
    // After a restart (nothing loaded in memory) the binding's component is still served.
    let restarted = start(store).await;
    let (status, _) = restarted.post_event(event("e1", &producer, "ana@example.com")).await;
    assert_eq!(status, 202);
    restarted.settle().await;
    assert_eq!(test_db.count("SELECT COUNT(*) FROM events WHERE status = 'done'").await, 1, "{db:?}");
}

#[test]
fn loaded_plugins_are_bounded_and_reload_when_evicted() {
    let mut config = crate::support::runtime_config();
    config.max_loaded_plugins = 2;
    let runtime = funnel_host::runtime::Runtime::new(config).expect("runtime");
    let variants: Vec<Vec<u8>> = (1..=3).map(test_guest_variant).collect();
    let shas: Vec<String> = variants.iter().map(|v| runtime.load(v).expect("loads").sha256.clone()).collect();
    assert_eq!(runtime.loaded(), 2, "at most max_loaded_plugins stay in memory");
    assert!(runtime.cached(&shas[0]).is_none(), "the least recently used went");
    assert!(runtime.cached(&shas[2]).is_some());
    // Used again, it loads again (from the compile cache on disk) and pushes out the next.
    runtime.cached(&shas[2]);
    let again = runtime.load(&variants[0]).expect("reloads");
    assert_eq!(again.sha256, shas[0]);
    assert!(runtime.cached(&shas[1]).is_none(), "now the least recently used");
    assert_eq!(runtime.loaded(), 2);
}

on_both!(stored_components_have_a_quota_and_a_checked_version);
async fn stored_components_have_a_quota_and_a_checked_version(db: Db) {
    let (_db, store) = TestDb::with_store(db).await;
    let mut config = crate::support::runtime_config();
    config.max_plugins_per_producer = 2;
    let s =
        crate::api_server::start_configured(store, None, funnel_host::runtime::Runtime::new(config).expect("rt")).await;
    let (_, key) = s.producer().await;
    let guest = funnel_host::guests::TEST_GUEST.to_vec();
    let upload = |version: &str| {
        let path = format!("/v1/plugins?version={version}");
        let req = s.request(reqwest::Method::POST, &path, Some(&key)).body(guest.clone());
        async move { crate::api_server::answer(req.send().await.expect("upload")).await }
    };
    for bad in ["x".repeat(33), "1.0%20beta".into(), "1%0A0".into(), "".into()] {
        let (status, problem) = upload(&bad).await;
        assert_eq!((status, paths(&problem)), (422, vec!["version".to_string()]), "{db:?} {bad:?}: {problem}");
    }
    assert_eq!(upload("1.0.0-rc.1").await.0, 201, "{db:?}");
    assert_eq!(upload("2").await.0, 201, "{db:?}");
    let (status, problem) = upload("3").await;
    assert_eq!(status, 409, "{db:?}: over the quota: {problem}");
    assert!(problem["detail"].as_str().unwrap_or("").contains("DELETE /v1/plugins/"), "says how: {problem}");
    assert_eq!(upload("2").await.0, 200, "{db:?}: the same bytes again are not a new component");
    // Bound, a component cannot go; unbound, it can, and makes room.
    let binding = json!({"plugin": "test-guest", "config": {"mode": "count"}});
    let (status, body) = s.send(reqwest::Method::PUT, "/v1/bindings", Some(&key), Some(binding)).await;
    assert_eq!(status, 200, "{body}");
    let resp = s.request(reqwest::Method::DELETE, "/v1/plugins/test-guest/2", Some(&key)).send().await.expect("delete");
    assert_eq!(resp.status().as_u16(), 204, "{db:?}: another stored version has the same bytes");
    let (status, problem) =
        s.send(reqwest::Method::DELETE, "/v1/plugins/test-guest/1.0.0-rc.1", Some(&key), None).await;
    assert_eq!(status, 409, "{db:?}: the binding's bytes: {problem}");
    let (status, _) = s.send(reqwest::Method::DELETE, "/v1/plugins/test-guest/9", Some(&key), None).await;
    assert_eq!(status, 404, "{db:?}");
    assert_eq!(upload("3").await.0, 201, "{db:?}: room again");
}

#[test]
fn hmac_timestamps_at_the_ends_of_i64_are_refused_not_a_panic() {
    use funnel_host::api::auth::verify_signature;
    for t in [i64::MIN, i64::MAX, i64::MIN + 1] {
        let header = format!("t={t},v1=00");
        for now in [T0 / 1000, i64::MAX, i64::MIN] {
            let refused = verify_signature("secret", &header, b"{}", now).expect_err("refused");
            assert_eq!(refused.status.as_u16(), 401, "t={t} now={now}: {}", refused.detail);
        }
    }
}

on_both!(stats_sums_do_not_overflow_and_amounts_are_bounded);
async fn stats_sums_do_not_overflow_and_amounts_are_bounded(db: Db) {
    let (test_db, store) = TestDb::with_store(db).await;
    let s = start(store.clone()).await;
    let (producer, key) = s.producer().await;
    // At ingest an amount is bounded.
    let huge = event("e1", &producer, "ana@example.com").tap(&["checkout", "price", "amount_cents"], json!(i64::MAX));
    let (status, problem) = s.post_event(huge).await;
    assert_eq!((status, paths(&problem)), (422, vec!["checkout.price.amount_cents".to_string()]), "{problem}");
    // Rows stored before the bound (or many large ones) must not break the sums.
    let each = i64::MAX / 2 + 1;
    for (lead, message) in [("l1", "m1"), ("l2", "m2")] {
        test_db
            .execute(&format!(
                "INSERT INTO leads (id, producer_id, checkout_id, email, price_cents, currency, status, captured_at,
                     purchased_at, recovered_by)
                 VALUES ('{lead}', '{producer}', 'c-{lead}', '{lead}@example.com', {each}, 'BRL', 'recovered', 0, {T0},
                     '{message}');
                 INSERT INTO outbox (id, producer_id, lead_id, channel, kind, tag, recipient, link_token,
                     unsubscribe_token, status, next_attempt_at, queued_at, sent_at)
                 VALUES ('{message}', '{producer}', '{lead}', 'email', 'recovery', 'email-1', '{lead}@example.com',
                     'lt-{lead}', 'ut-{lead}', 'sent', 0, 0, 0);"
            ))
            .await;
    }
    let (status, stats) = s.get("/v1/stats", &key).await;
    assert_eq!(status, 200, "{db:?}: {stats}");
    assert_eq!(stats["recovered_revenue"][0]["amount_cents"], json!(i64::MAX), "{db:?}: saturated: {stats}");
    let by_tag = store.revenue_by_tag(&producer).await.expect("by tag");
    assert_eq!(by_tag, vec![("email-1".to_string(), "BRL".to_string(), i64::MAX)], "{db:?}");
}

#[test]
fn a_plugins_logs_are_capped_by_count() {
    let runtime = crate::support::runtime();
    let plugin = crate::support::test_guest(&runtime);
    let invocation = crate::support::invocation("empty-logs", funnel_host::runtime::wit::Event::Captured);
    let outcome = plugin.handle(&invocation, Default::default()).expect("handled");
    assert_eq!(outcome.logs.len(), 101, "100 lines and one marker");
    let last = outcome.logs.last().expect("marker");
    assert!(last.text.contains("900 log lines dropped"), "{last:?}");
}

#[test]
fn a_plugins_state_is_capped() {
    let runtime = crate::support::runtime();
    let plugin = crate::support::test_guest(&runtime);
    let invocation = crate::support::invocation("big-state", funnel_host::runtime::wit::Event::Captured);
    // (Not expect_err: a 100 KB state would fill the failure message.)
    let Err(failed) = plugin.handle(&invocation, Default::default()) else { panic!("the state limit did not stop it") };
    assert_eq!(failed.limit(), Some(&funnel_host::runtime::Limit::State(64 * 1024)), "{failed}");
    assert!(failed.to_string().contains("state limit (65536 bytes)"), "{failed}");
}

#[test]
fn a_long_handle_error_is_truncated() {
    let runtime = crate::support::runtime();
    let plugin = crate::support::test_guest(&runtime);
    let invocation = crate::support::invocation("long-error", funnel_host::runtime::wit::Event::Captured);
    let failed = plugin.handle(&invocation, Default::default()).expect_err("rejected");
    let funnel_host::runtime::Failure::Rejected(message) = &failed.failure else { panic!("{failed:?}") };
    assert!(message.len() <= 2048 + 100, "{} bytes", message.len());
    assert!(message.ends_with("(truncated: 100000 bytes in all)"), "{}", &message[message.len() - 60..]);
}

#[test]
fn timers_per_lead_are_capped_in_the_capability() {
    let runtime = crate::support::runtime();
    let plugin = crate::support::test_guest(&runtime);
    let invocation = crate::support::invocation("timer-flood", funnel_host::runtime::wit::Event::Captured);
    let ctx = funnel_host::runtime::HandleContext { pending_timers: 95, ..Default::default() };
    let outcome = plugin.handle(&invocation, ctx).expect("handled");
    let scheduled =
        outcome.effects.iter().filter(|e| matches!(e, funnel_host::runtime::Effect::Schedule { .. })).count();
    assert_eq!(scheduled, 5, "up to 100 pending");
    assert!(
        outcome.logs.iter().any(|l| l.text.starts_with("timers refused=HostError::LimitReached(")),
        "{:?}",
        outcome.logs
    );
}

on_both!(timers_per_lead_are_capped);
async fn timers_per_lead_are_capped(db: Db) {
    let (test_db, h) = Harness::with_guest(db, "timer-flood").await;
    for i in 0..7 {
        h.post(&format!("e{i}"), PlatformEventType::CheckoutUpdated, "c1", None).await;
        h.settle().await;
    }
    assert_eq!(test_db.count("SELECT COUNT(*) FROM timers").await, 100, "{db:?}");
    let lead = lead_id(&h.post("e0", PlatformEventType::CheckoutUpdated, "c1", None).await);
    let refused = logs_starting(&h.timeline(&lead).await, "timers refused=");
    assert_eq!(refused.len(), 1, "{db:?}: the seventh event met the cap: {refused:?}");
}

on_both!(control_characters_in_paths_and_queries_are_refused);
async fn control_characters_in_paths_and_queries_are_refused(db: Db) {
    let (_db, store) = TestDb::with_store(db).await;
    let s = start(store).await;
    let (_, key) = s.producer().await;
    for path in [
        "/v1/lists/a%00b/members",
        "/v1/leads/%00",
        "/v1/leads?cursor=%00",
        "/v1/stats?from=%002026-01-01",
        "/r/%00abc",
        "/u/%1Fabc",
        "/v1/plugins/a%7F/1",
    ] {
        let (status, problem) = s.send(reqwest::Method::GET, path, Some(&key), None).await;
        assert_eq!(status, 422, "{db:?} {path}: {problem}");
    }
    let (status, problem) = s.send(reqwest::Method::POST, "/u/%00abc", None, None).await;
    assert_eq!((status, paths(&problem)), (422, vec!["path".to_string()]), "{db:?}: {problem}");
    let (status, problem) = s.send(reqwest::Method::GET, "/v1/leads?limit=5&cursor=a%00", Some(&key), None).await;
    assert_eq!((status, paths(&problem)), (422, vec!["cursor".to_string()]), "{db:?}: names the parameter");
}
