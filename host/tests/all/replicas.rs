//! Two real `funnel serve` processes on one PostgreSQL: every event is handled once, whichever
//! replica receives it, and the survivor carries on when the other is killed with SIGKILL.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::db::{Db, fresh_url};

struct Replica {
    child: Child,
    base: String,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(url: &str, dir: &std::path::Path) -> Replica {
    let mut child = Command::new(env!("CARGO_BIN_EXE_funnel"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .current_dir(dir)
        .env("FUNNEL_DATABASE_URL", url)
        .env("FUNNEL_ADMIN_TOKEN", "admin")
        .env("FUNNEL_PLATFORM_TOKEN", "platform")
        .env("FUNNEL_PLATFORM_SECRET", "secret")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("funnel serve starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let base = loop {
        let line = lines.next().expect("serve prints where it listens").expect("line");
        if let Some(rest) = line.strip_prefix("funnel listening on ") {
            break rest.split_whitespace().next().expect("url").to_string();
        }
    };
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Replica { child, base }
}

/// Create a producer through the admin API; its JSON (`id`, `api_key`).
async fn create_producer(base: &str) -> serde_json::Value {
    reqwest::Client::new()
        .post(format!("{base}/v1/admin/producers"))
        .bearer_auth("admin")
        .body(json!({"name": "Loja"}).to_string())
        .send()
        .await
        .expect("producer")
        .json()
        .await
        .expect("json")
}

fn event(i: usize, producer: &str) -> serde_json::Value {
    json!({"id": format!("evt-{i}"), "type": "checkout.updated", "occurred_at": "2026-11-22T10:00:00Z", "producer_id": producer,
           "checkout": {"id": format!("chk-{i}"), "email": format!("lead{i}@example.com"), "price": {"amount_cents": 9700, "currency": "BRL"}}})
}

#[tokio::test]
async fn two_processes_share_the_work_and_survive_a_kill() {
    let Some(url) = fresh_url(Db::Postgres).await else { return };
    let dir = tempfile::tempdir().expect("dir");
    let a = spawn(&url, dir.path());
    let b = spawn(&url, dir.path());
    let http = reqwest::Client::new();
    let producer = create_producer(&a.base).await;
    let (id, key) = (producer["id"].as_str().expect("id"), producer["api_key"].as_str().expect("key"));
    let binding = json!({"plugin": "four-emails", "config": {"emails": [{"after": "20m", "subject": "Volte", "html": "<p>{{checkout_url}}</p>"}]}});
    let resp = http
        .put(format!("{}/v1/bindings", b.base))
        .bearer_auth(key)
        .body(binding.to_string())
        .send()
        .await
        .expect("bind");
    assert_eq!(resp.status().as_u16(), 200);

    let total = 60;
    for i in 0..total {
        let target = if i % 2 == 0 { &a.base } else { &b.base };
        let resp = http
            .post(format!("{target}/v1/events"))
            .bearer_auth("platform")
            .body(event(i, id).to_string())
            .send()
            .await
            .expect("post");
        assert_eq!(resp.status().as_u16(), 202);
    }
    drop(a); // SIGKILL: whatever it held is left to its lease
    for i in total..total + 20 {
        let resp = http
            .post(format!("{}/v1/events", b.base))
            .bearer_auth("platform")
            .body(event(i, id).to_string())
            .send()
            .await
            .expect("post");
        assert_eq!(resp.status().as_u16(), 202);
    }

    let store = funnel_host::store::Database::connect(&url).await.expect("store");
    let deadline = Instant::now() + Duration::from_secs(90);
    let leads = loop {
        let leads = store.list_leads(id, None, 500).await.expect("leads");
        let mut handled = 0;
        for lead in &leads {
            let timeline = store.timeline(&lead.id, 0).await.expect("timeline");
            let timers = timeline.iter().filter(|e| e.kind == "timer_set").count();
            assert!(timers <= 1, "lead {} handled twice: {timeline:?}", lead.id);
            handled += timers;
        }
        if handled == total + 20 || Instant::now() > deadline {
            break (leads.len(), handled);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(leads, (total + 20, total + 20), "every capture handled exactly once");
    assert_eq!(store.pending_timers().await.expect("timers"), (total + 20) as i64, "one timer per lead, none twice");
}

#[tokio::test]
async fn a_killed_process_restarts_and_fires_overdue_timers_late() {
    let dir = tempfile::tempdir().expect("dir");
    let url = format!("sqlite:{}", dir.path().join("funnel.db").display());
    let first = spawn(&url, dir.path());
    let http = reqwest::Client::new();
    let producer = create_producer(&first.base).await;
    let (id, key) =
        (producer["id"].as_str().expect("id").to_string(), producer["api_key"].as_str().expect("key").to_string());
    let upload = http
        .post(format!("{}/v1/plugins", first.base))
        .bearer_auth(&key)
        .body(funnel_host::guests::TEST_GUEST.to_vec())
        .send()
        .await
        .expect("upload");
    assert_eq!(upload.status().as_u16(), 201);
    let binding = json!({"plugin": "test-guest", "config": {"mode": "short-timer"}});
    let bound = http
        .put(format!("{}/v1/bindings", first.base))
        .bearer_auth(&key)
        .body(binding.to_string())
        .send()
        .await
        .expect("bind");
    assert_eq!(bound.status().as_u16(), 200, "{}", bound.text().await.unwrap_or_default());
    let accepted: serde_json::Value = http
        .post(format!("{}/v1/events", first.base))
        .bearer_auth("platform")
        .body(event(1, &id).to_string())
        .send()
        .await
        .expect("post")
        .json()
        .await
        .expect("json");
    let lead = accepted["lead_id"].as_str().expect("lead").to_string();
    // Let the capture be handled (the timer is stored), then SIGKILL before it is due.
    let store = funnel_host::store::Database::connect(&url).await.expect("store");
    let deadline = Instant::now() + Duration::from_secs(20);
    while store.pending_timers().await.expect("timers") == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(first);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let _second = spawn(&url, dir.path());
    let deadline = Instant::now() + Duration::from_secs(20);
    let late = loop {
        let timeline = store.timeline(&lead, 0).await.expect("timeline");
        if let Some(line) =
            timeline.iter().find_map(|e| e.detail.split("timer short late_ms=").nth(1).map(str::to_string))
        {
            break line.trim().parse::<u64>().expect("late_ms");
        }
        assert!(Instant::now() < deadline, "the overdue timer fired after the restart: {timeline:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(late >= 1000, "fired late, and the plugin was told: {late} ms");
}

#[tokio::test]
async fn plugin_push_uploads_to_a_running_server() {
    let dir = tempfile::tempdir().expect("dir");
    let url = format!("sqlite:{}", dir.path().join("funnel.db").display());
    let server = spawn(&url, dir.path());
    let producer = create_producer(&server.base).await;
    let key = producer["api_key"].as_str().expect("key").to_string();
    let wasm = dir.path().join("guest.wasm");
    std::fs::write(&wasm, funnel_host::guests::TEST_GUEST).expect("write");
    let push = |key: &str| {
        Command::new(env!("CARGO_BIN_EXE_funnel"))
            .args(["plugin", "push", wasm.to_str().unwrap_or_default(), "--server", &server.base, "--key", key])
            .output()
            .expect("funnel runs")
    };
    let out = push(&key);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let uploaded: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(uploaded["name"], "test-guest");
    let refused = push("fk_wrong");
    assert_eq!(refused.status.code(), Some(2));
    let err = String::from_utf8_lossy(&refused.stderr).to_string();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("401") && err.contains("unknown API key"), "{err}");
}
