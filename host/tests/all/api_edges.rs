//! The API at its edges: batches of 0, 1000 and 1001 events, the 4 MiB body cap, the 32 MiB
//! upload cap, and paging through leads with `limit` and `cursor` (ties included). Refusals
//! are problem+json and store nothing.

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::api_server::{PLATFORM, TapEvent, answer, event, start};
use crate::db::{Db, TestDb, on_both};

fn batch(producer: &str, n: usize) -> Value {
    let events: Vec<Value> = (0..n)
        .map(|i| event(&format!("e{i}"), producer, &format!("lead{i}@example.com")).tap_checkout(&format!("chk-{i}")))
        .collect();
    json!({ "events": events })
}

on_both!(a_batch_holds_one_to_a_thousand_events);
async fn a_batch_holds_one_to_a_thousand_events(db: Db) {
    let (_db, store) = TestDb::with_store(db).await;
    let s = start(store).await;
    let (producer, key) = s.producer().await;
    for n in [0, 1001] {
        let (status, problem) =
            s.send(reqwest::Method::POST, "/v1/events/batch", Some(PLATFORM), Some(batch(&producer, n))).await;
        assert_eq!((status, problem["errors"][0]["path"].as_str()), (422, Some("events")), "{db:?}: {n} events");
        assert!(problem["detail"].as_str().unwrap_or("").contains(&n.to_string()), "{db:?}: says how many: {problem}");
    }
    let (_, leads) = s.get("/v1/leads", &key).await;
    assert_eq!(leads["leads"], json!([]), "{db:?}: a refused batch stores nothing");
    let (status, body) =
        s.send(reqwest::Method::POST, "/v1/events/batch", Some(PLATFORM), Some(batch(&producer, 1000))).await;
    assert_eq!(status, 202, "{db:?}");
    let results = body["results"].as_array().expect("results");
    assert_eq!(results.len(), 1000, "{db:?}: an answer per event");
    assert!(results.iter().all(|r| r["status"] == "accepted"), "{db:?}");
    let leads: HashSet<&str> = results.iter().filter_map(|r| r["lead_id"].as_str()).collect();
    assert_eq!(leads.len(), 1000, "{db:?}: a lead per checkout");
}

#[tokio::test]
async fn a_body_over_4_mib_is_refused_and_one_under_is_read() {
    let (_db, store) = TestDb::with_store(Db::Sqlite).await;
    let s = start(store).await;
    let (producer, key) = s.producer().await;
    let limit = 4 * 1024 * 1024;
    // A valid event padded with spaces (JSON whitespace) to a given size.
    let padded = |id: &str, size: usize| {
        let mut body = event(id, &producer, "ana@example.com").to_string();
        body.push_str(&" ".repeat(size - body.len()));
        body
    };
    let over = s.request(reqwest::Method::POST, "/v1/events", Some(PLATFORM)).body(padded("big", limit + 1));
    let (status, problem) = answer(over.send().await.expect("send")).await;
    assert_eq!((status, problem["errors"][0]["path"].as_str()), (413, Some("body")), "{problem}");
    let (_, leads) = s.get("/v1/leads", &key).await;
    assert_eq!(leads["leads"], json!([]), "nothing stored");
    let at = s.request(reqwest::Method::POST, "/v1/events", Some(PLATFORM)).body(padded("fits", limit));
    let (status, body) = answer(at.send().await.expect("send")).await;
    assert_eq!((status, body["status"].as_str()), (202, Some("accepted")), "exactly 4 MiB is read: {body}");
}

#[tokio::test]
async fn an_upload_over_32_mib_is_refused() {
    let (_db, store) = TestDb::with_store(Db::Sqlite).await;
    let s = start(store).await;
    let (_, key) = s.producer().await;
    let (status, problem) = s.upload(&key, vec![0u8; 32 * 1024 * 1024 + 1]).await;
    assert_eq!((status, problem["errors"][0]["path"].as_str()), (413, Some("body")), "{problem}");
    let (_, plugins) = s.get("/v1/plugins", &key).await;
    assert_eq!(plugins["plugins"], json!([]), "nothing stored");
    // At the cap the body is read and judged on what it is (not WebAssembly), not on its size.
    let (status, problem) = s.upload(&key, vec![0u8; 32 * 1024 * 1024]).await;
    assert_eq!((status, problem["errors"][0]["path"].as_str()), (422, Some("body")), "{problem}");
}

on_both!(leads_page_with_limit_and_cursor);
async fn leads_page_with_limit_and_cursor(db: Db) {
    let (_db, store) = TestDb::with_store(db).await;
    let s = start(store).await;
    let (producer, key) = s.producer().await;
    // Seven leads: four captured at the same instant (ties broken by id), three later.
    let mut posted = Vec::new();
    for i in 0..7 {
        if i == 4 {
            s.clock.set(crate::harness::T0 + 60_000);
        }
        let body = event(&format!("e{i}"), &producer, &format!("l{i}@example.com")).tap_checkout(&format!("c{i}"));
        let (_, accepted) = s.post_event(body).await;
        posted.push(accepted["lead_id"].as_str().expect("lead").to_string());
    }
    let mut pages = Vec::new();
    let mut path = "/v1/leads?limit=3".to_string();
    loop {
        let (status, page) = s.get(&path, &key).await;
        assert_eq!(status, 200, "{db:?}: {page}");
        let ids: Vec<String> =
            page["leads"].as_array().expect("leads").iter().map(|l| l["id"].as_str().expect("id").into()).collect();
        pages.push(ids);
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/leads?limit=3&cursor={cursor}"),
            None => break,
        }
        assert!(pages.len() <= 4, "{db:?}: paging ends: {pages:?}");
    }
    let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
    assert_eq!(sizes, [3, 3, 1], "{db:?}: {pages:?}");
    let seen: Vec<&String> = pages.iter().flatten().collect();
    let unique: HashSet<&&String> = seen.iter().collect();
    assert_eq!(unique.len(), 7, "{db:?}: every lead once, none repeated or skipped: {pages:?}");
    let newest: HashSet<&String> = posted[4..].iter().collect();
    assert_eq!(seen[..3].iter().copied().collect::<HashSet<_>>(), newest, "{db:?}: newest first");
    let (_, all) = s.get("/v1/leads?limit=500", &key).await;
    let all: Vec<&str> = all["leads"].as_array().expect("leads").iter().filter_map(|l| l["id"].as_str()).collect();
    assert_eq!(all, seen.iter().map(|s| s.as_str()).collect::<Vec<_>>(), "{db:?}: pages are the one list, cut");
    for (query, field) in [("limit=0", "limit"), ("limit=501", "limit"), ("cursor=garbage", "cursor")] {
        let (status, problem) = s.get(&format!("/v1/leads?{query}"), &key).await;
        assert_eq!((status, problem["errors"][0]["path"].as_str()), (422, Some(field)), "{db:?}: {query}");
    }
}
