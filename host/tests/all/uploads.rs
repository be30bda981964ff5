//! Uploads off the request path: an upload whose check takes longer than the runtime's
//! `upload_check_budget` is stored as `compiling` and answered 202 at once; the check goes on
//! in the background and ends `ready` or `failed` with the reason the synchronous 422 gives.
//! Binding a compiling plugin waits (a bounded time) for it; its events are never failed.

use std::time::{Duration, Instant};

use funnel_host::guests;
use serde_json::{Value, json};

use crate::api_server::{Server, event, start_configured};
use crate::db::{Db, TestDb, on_both};

/// A server whose upload check budget is `budget` and whose bindings wait `binding_wait` for
/// a compiling plugin.
async fn server(store: funnel_host::store::Database, budget: Duration, binding_wait: Duration) -> Server {
    let mut config = crate::support::runtime_config();
    config.upload_check_budget = budget;
    config.binding_wait = binding_wait;
    start_configured(store, None, funnel_host::runtime::Runtime::new(config).expect("runtime")).await
}

async fn upload(s: &Server, key: &str, query: &str, bytes: &[u8]) -> (u16, Value) {
    let req = s.request(reqwest::Method::POST, &format!("/v1/plugins{query}"), Some(key)).body(bytes.to_vec());
    crate::api_server::answer(req.send().await.expect("upload")).await
}

/// Poll `GET /v1/plugins` (generous deadline) until the stored component `sha256` is no longer
/// `compiling`; return its entry.
async fn settled_upload(s: &Server, key: &str, sha256: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (status, list) = s.get("/v1/plugins", key).await;
        assert_eq!(status, 200, "{list}");
        let entry = list["plugins"].as_array().expect("plugins").iter().find(|p| p["sha256"] == sha256).cloned();
        if let Some(entry) = entry
            && entry["status"] != "compiling"
        {
            return entry;
        }
        assert!(Instant::now() < deadline, "{sha256} still compiling: {list}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

on_both!(a_slow_check_answers_202_at_once_and_the_upload_becomes_ready);
async fn a_slow_check_answers_202_at_once_and_the_upload_becomes_ready(db: Db) {
    let (_db, store) = TestDb::with_store(db).await;
    let s = server(store, Duration::ZERO, Duration::from_secs(10)).await;
    let (_, key) = s.producer().await;
    let (status, body) = upload(&s, &key, "", guests::TEST_GUEST).await;
    assert_eq!(status, 202, "{db:?}: {body}");
    assert_eq!(body["status"], "compiling", "{body}");
    assert!(body.get("name").is_none(), "no name was given: {body}");
    let sha = body["sha256"].as_str().expect("sha256").to_string();
    let ready = settled_upload(&s, &key, &sha).await;
    assert_eq!(ready["status"], "ready", "{db:?}: {ready}");
    assert_eq!((&ready["name"], &ready["version"]), (&json!("test-guest"), &json!("0.1.0")), "{ready}");
    assert_eq!(ready["info"]["capabilities"].as_array().map(Vec::len), Some(5), "{ready}");
    // Built-ins are listed ready too.
    let (_, list) = s.get("/v1/plugins", &key).await;
    assert!(list["builtin"].as_array().expect("builtin").iter().all(|b| b["status"] == "ready"), "{list}");
    // Given a name and version, the 202 says them; the same bytes again are the same component.
    let (status, body) = upload(&s, &key, "?name=test-guest&version=0.2.0", guests::TEST_GUEST).await;
    assert_eq!(status, 202, "{db:?}: {body}");
    assert_eq!((&body["name"], &body["version"]), (&json!("test-guest"), &json!("0.2.0")), "{body}");
    assert_eq!(settled_upload(&s, &key, &sha).await["status"], "ready");
}

on_both!(a_component_of_another_world_ends_failed_with_the_synchronous_reason);
async fn a_component_of_another_world_ends_failed_with_the_synchronous_reason(db: Db) {
    let (_db, store) = TestDb::with_store(db).await;
    let at_once = server(store.clone(), Duration::from_secs(60), Duration::from_secs(10)).await;
    let (_, key) = at_once.producer().await;
    let (status, problem) = upload(&at_once, &key, "?name=other&version=1", guests::WRONG_WORLD).await;
    assert_eq!(status, 422, "{db:?}: {problem}");
    let reason = problem["errors"][0]["message"].as_str().expect("a reason").to_string();
    let later = server(store, Duration::ZERO, Duration::from_secs(10)).await;
    let (status, body) = upload(&later, &key, "?name=other&version=1", guests::WRONG_WORLD).await;
    assert_eq!((status, &body["status"]), (202, &json!("compiling")), "{db:?}: {body}");
    let failed = settled_upload(&later, &key, body["sha256"].as_str().expect("sha")).await;
    assert_eq!((&failed["status"], &failed["reason"]), (&json!("failed"), &json!(reason)), "{db:?}: {failed}");
    // A failed component is not bound: 422 at `plugin`, with the reason.
    let binding = json!({"plugin": "other", "config": {}});
    let (status, problem) = later.send(reqwest::Method::PUT, "/v1/bindings", Some(&key), Some(binding)).await;
    assert_eq!(status, 422, "{db:?}: {problem}");
    assert_eq!(problem["errors"][0]["path"], "plugin", "{problem}");
    assert!(problem["errors"][0]["message"].as_str().unwrap_or("").contains(&reason), "{problem}");
    // Cheap refusals still answer 422 at once, whatever the budget.
    let (status, problem) = upload(&later, &key, "", b"#!/bin/sh\n").await;
    assert_eq!((status, &problem["errors"][0]["path"]), (422, &json!("body")), "{problem}");
}

on_both!(binding_a_compiling_plugin_waits_for_it_then_checks_the_config);
async fn binding_a_compiling_plugin_waits_for_it_then_checks_the_config(db: Db) {
    let (test_db, store) = TestDb::with_store(db).await;
    let s = server(store, Duration::ZERO, Duration::from_secs(30)).await;
    let (producer, key) = s.producer().await;
    let (status, body) = upload(&s, &key, "?name=test-guest&version=0.1.0", guests::TEST_GUEST).await;
    assert_eq!(status, 202, "{db:?}: {body}");
    // At once, while it may still compile: the binding waits for it and the plugin checks the config.
    let binding = json!({"plugin": "test-guest", "config": {"mode": "count"}});
    let (status, bound) = s.send(reqwest::Method::PUT, "/v1/bindings", Some(&key), Some(binding)).await;
    assert_eq!(status, 200, "{db:?}: {bound}");
    // One that never finishes (its compile died with another process): 409 at `plugin`, retry.
    test_db
        .execute(&format!(
            "INSERT INTO plugins (sha256, producer_id, name, version, bytes, info_json, created_at, status)
             VALUES ('stuck-sha', '{producer}', 'stuck', '1', '', '{{}}', 0, 'compiling')"
        ))
        .await;
    let impatient = server(s.engine.store.clone(), Duration::ZERO, Duration::from_millis(200)).await;
    let binding = json!({"plugin": "stuck", "config": {}});
    let (status, problem) = impatient.send(reqwest::Method::PUT, "/v1/bindings", Some(&key), Some(binding)).await;
    assert_eq!((status, &problem["errors"][0]["path"]), (409, &json!("plugin")), "{db:?}: {problem}");
    assert!(problem["detail"].as_str().unwrap_or("").contains("compiling"), "{problem}");
}

on_both!(an_event_for_a_plugin_still_compiling_waits_and_is_handled_once_ready);
async fn an_event_for_a_plugin_still_compiling_waits_and_is_handled_once_ready(db: Db) {
    let (test_db, store) = TestDb::with_store(db).await;
    let s = server(store, Duration::ZERO, Duration::from_secs(30)).await;
    let (producer, key) = s.producer().await;
    let (status, body) = upload(&s, &key, "?name=test-guest&version=0.1.0", guests::TEST_GUEST).await;
    assert_eq!(status, 202, "{db:?}: {body}");
    let binding = json!({"plugin": "test-guest", "config": {"mode": "count"}});
    let (status, bound) = s.send(reqwest::Method::PUT, "/v1/bindings", Some(&key), Some(binding)).await;
    assert_eq!(status, 200, "{db:?}: {bound}");
    let (status, _) = s.post_event(event("e1", &producer, "ana@example.com")).await;
    assert_eq!(status, 202);
    s.settle().await;
    assert_eq!(
        test_db.count("SELECT COUNT(*) FROM events WHERE status = 'done' AND attempts = 0").await,
        1,
        "{db:?}: handled at the first attempt, none counted while it compiled"
    );
}

on_both!(uploads_left_compiling_by_a_stopped_process_finish_at_start);
async fn uploads_left_compiling_by_a_stopped_process_finish_at_start(db: Db) {
    let (test_db, store) = TestDb::with_store(db).await;
    let s = server(store.clone(), Duration::ZERO, Duration::from_secs(10)).await;
    let (_, key) = s.producer().await;
    let (status, body) = upload(&s, &key, "?name=test-guest&version=0.1.0", guests::TEST_GUEST).await;
    assert_eq!(status, 202, "{db:?}: {body}");
    let sha = body["sha256"].as_str().expect("sha").to_string();
    // Whatever the first server did, mark it compiling again as a crash mid-compile leaves it.
    settled_upload(&s, &key, &sha).await;
    test_db.execute(&format!("UPDATE plugins SET status = 'compiling' WHERE sha256 = '{sha}'")).await;
    let restarted = server(store, Duration::ZERO, Duration::from_secs(10)).await;
    funnel_host::api::plugins::resume_compiling(restarted.state.clone()).await.expect("resume");
    assert_eq!(settled_upload(&restarted, &key, &sha).await["status"], "ready", "{db:?}");
}

#[tokio::test]
async fn the_openapi_document_says_202_and_the_statuses() {
    let (_db, store) = TestDb::with_store(Db::Sqlite).await;
    let s = crate::api_server::start(store).await;
    let (status, doc) = s.send(reqwest::Method::GET, "/openapi.json", None, None).await;
    assert_eq!(status, 200);
    let upload = &doc["paths"]["/v1/plugins"]["post"]["responses"];
    for code in ["201", "202", "409", "422", "default"] {
        assert!(upload[code].is_object(), "{code}: {upload}");
    }
    let item = &doc["paths"]["/v1/plugins"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]["properties"]
        ["plugins"]["items"];
    assert_eq!(item["properties"]["status"]["enum"], json!(["compiling", "ready", "failed"]), "{item}");
    assert!(item["properties"]["reason"].is_object(), "{item}");
}

#[tokio::test]
async fn funnel_serve_with_a_zero_budget_answers_202_then_binds_and_handles_events_after_a_restart() {
    use crate::process::{event as numbered_event, spawn_with, wait_for};
    let test_db = TestDb::new(Db::Sqlite).await;
    let dir = tempfile::tempdir().expect("dir");
    let settings = [("FUNNEL_UPLOAD_CHECK_BUDGET_MS", "0")];
    let first = spawn_with(&test_db.url, dir.path(), &settings);
    let producer = first.create_producer().await;
    let (id, key) = (producer["id"].as_str().expect("id"), producer["api_key"].as_str().expect("key"));
    let path = "/v1/plugins?name=test-guest&version=0.1.0";
    let (status, body) = first.send(reqwest::Method::POST, path, key, guests::TEST_GUEST.to_vec()).await;
    assert_eq!((status, &body["status"]), (202, &json!("compiling")), "{body}");
    let binding = json!({"plugin": "test-guest", "config": {"mode": "count"}});
    let (status, bound) = first.bind(key, &binding).await;
    assert_eq!(status, 200, "the binding waited for the check: {bound}");
    drop(first);
    // A new process: nothing loaded in memory, the compiled code in the cache.
    let second = spawn_with(&test_db.url, dir.path(), &settings);
    let (status, list) = second.send(reqwest::Method::GET, "/v1/plugins", key, "").await;
    assert_eq!((status, &list["plugins"][0]["status"]), (200, &json!("ready")), "{list}");
    assert_eq!(second.post_event(&numbered_event(1, id)).await.0, 202);
    wait_for(Duration::from_secs(60), "the event to be handled at its first attempt", || async {
        let done = test_db.count("SELECT COUNT(*) FROM events WHERE status = 'done' AND attempts = 0").await;
        (done == 1).then_some(())
    })
    .await;
}

on_both!(the_last_ready_copy_of_bound_bytes_stays_beside_a_compiling_one);
async fn the_last_ready_copy_of_bound_bytes_stays_beside_a_compiling_one(db: Db) {
    let (test_db, store) = TestDb::with_store(db).await;
    let s = server(store, Duration::from_secs(60), Duration::from_secs(10)).await;
    let (producer, key) = s.producer().await;
    let (status, body) = upload(&s, &key, "?name=test-guest&version=1", guests::TEST_GUEST).await;
    assert_eq!(status, 201, "{db:?}: {body}");
    let binding = json!({"plugin": "test-guest", "config": {"mode": "count"}});
    let (status, bound) = s.send(reqwest::Method::PUT, "/v1/bindings", Some(&key), Some(binding)).await;
    assert_eq!(status, 200, "{bound}");
    // The same bytes, still compiling under another version (they may yet fail and lose them).
    let sha = body["sha256"].as_str().expect("sha");
    test_db
        .execute(&format!(
            "INSERT INTO plugins (sha256, producer_id, name, version, bytes, info_json, created_at, status)
             SELECT sha256, producer_id, name, '2', bytes, info_json, created_at + 1, 'compiling' FROM plugins
             WHERE producer_id = '{producer}' AND sha256 = '{sha}'"
        ))
        .await;
    let (status, problem) = s.send(reqwest::Method::DELETE, "/v1/plugins/test-guest/1", Some(&key), None).await;
    assert_eq!(status, 409, "{db:?}: the only ready copy of the binding's bytes: {problem}");
    let resp = s.request(reqwest::Method::DELETE, "/v1/plugins/test-guest/2", Some(&key)).send().await.expect("delete");
    assert_eq!(resp.status().as_u16(), 204, "{db:?}: the compiling copy can go");
}
