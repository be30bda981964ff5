//! Load: N `checkout.updated` events for distinct leads through real HTTP in batches of 1000
//! (four-emails bound), until every one is handled; the same rows inserted raw into the same
//! kind of database (the storage floor); then a virtual clock jumps past the first email and
//! the durable timers fire; then the emails they queued go through the engine's delivery to a
//! real SMTP server on loopback, beside the transport alone sending to the same server (the
//! `--bench delivery` figure) in the same run. Run with `cargo bench -p funnel-host --bench load`.
//! `FUNNEL_BENCH_EVENTS` (default 100000) and `FUNNEL_BENCH_DATABASE_URL` (default a SQLite
//! file in a temp dir; e.g. postgres://postgres@127.0.0.1:5432/test) choose the run. On
//! PostgreSQL each run works in a schema of its own and drops it, so runs are repeatable.
//! `FUNNEL_BENCH_CONSOLE_READERS=N` has N producers' browsers reload the console's leads page
//! (a signed-in session, the real console router) while the events are ingested and handled,
//! to compare `handled_events_per_s` with and without them; `FUNNEL_BENCH_CONSOLE_PAUSE_MS`
//! (default 0: as fast as they can) is each browser's pause between two pages. Last, single
//! events posted by 64 clients at once (`ingest_single_events_per_s_64_clients`, up to 20,000),
//! which share commits.

use std::sync::Arc;
use std::time::{Duration, Instant};

use funnel_host::api::{self, AppState, Secrets};
use funnel_host::clock::VirtualClock;
use funnel_host::delivery::Transport;
use funnel_host::delivery::smtp::SmtpTransport;
use funnel_host::pipeline::{Pipeline, PipelineParts};
use funnel_host::runtime::{Runtime, RuntimeConfig};
use funnel_host::store::Database;
use funnel_host::store::bindings::NewBinding;
use serde_json::json;

#[path = "support/smtp_sink.rs"]
mod smtp_sink;

fn emit(metric: &str, value: f64, unit: &str) {
    // Ratios are small numbers: keep four decimals for them, one for rates.
    let digits = if unit == "x" { 4 } else { 1 };
    println!(r#"{{"bench":"load","metric":"{metric}","value":{value:.digits$},"unit":"{unit}"}}"#);
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::var("FUNNEL_BENCH_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let dir = std::env::temp_dir().join(format!("funnel-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let base_url = std::env::var("FUNNEL_BENCH_DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite:{}", dir.join("load.db").display()));
    let schema = BenchSchema::create(&base_url).await;
    let url = schema.as_ref().map_or(base_url.clone(), |s| s.url.clone());
    let store = Database::connect(&url).await.expect("store");
    let sink = smtp_sink::SmtpSink::start();
    let smtp: Arc<SmtpTransport> =
        Arc::new(SmtpTransport::new(&sink.url, "Loja <loja@example.com>", "https://funnel.test".into()).expect("smtp"));
    let t0 = chrono::Utc::now().timestamp_millis();
    let clock = Arc::new(VirtualClock::new(t0));
    let runtime = Arc::new(Runtime::new(RuntimeConfig::default()).expect("runtime"));
    let engine = Arc::new(Pipeline::new(PipelineParts {
        store: store.clone(),
        runtime,
        clock: clock.clone(),
        email: smtp.clone(),
        sms: smtp.clone(),
        public_url: "https://funnel.test".into(),
        rate_caps: (None, None),
    }));
    let producer = store.create_producer("load", t0).await.expect("producer");
    let plugin = engine.plugins.builtin("four-emails").expect("four-emails");
    let config = json!({"emails": [{"after": "20m", "subject": "Volte", "html": "<p>{{checkout_url}}</p>"}]});
    let binding = NewBinding {
        producer_id: &producer.id,
        scope: &funnel_host::domain::Scope::Producer,
        plugin: "four-emails",
        plugin_sha256: &plugin.sha256,
        config: &config,
        enabled: true,
        send_window: None,
    };
    store.put_binding(&binding, t0).await.expect("binding");
    let state = AppState {
        store: store.clone(),
        plugins: engine.plugins.clone(),
        clock: clock.clone(),
        secrets: Arc::new(Secrets { admin_token: "a".into(), platform_token: "p".into(), platform_secret: "s".into() }),
        work: Arc::new(tokio::sync::Notify::new()),
        webhook_targets: Default::default(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let readers: usize = std::env::var("FUNNEL_BENCH_CONSOLE_READERS").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
    let session = store
        .create_session(&producer.id, funnel_host::store::sessions::SessionPolicy::default(), t0)
        .await
        .expect("session");
    let console = funnel_host::console::router(funnel_host::console::ConsoleState::new(state.clone(), &base));
    tokio::spawn(async move { axum::serve(listener, api::router(state).merge(console)).await });
    let pause = Duration::from_millis(
        std::env::var("FUNNEL_BENCH_CONSOLE_PAUSE_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(0),
    );
    let reading = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let pages = Arc::new(std::sync::atomic::AtomicU64::new(0));
    for _ in 0..readers {
        let (http, url, cookie) =
            (reqwest::Client::new(), format!("{base}/console/leads"), format!("funnel_session={}", session.token));
        let (reading, pages) = (reading.clone(), pages.clone());
        tokio::spawn(async move {
            while reading.load(std::sync::atomic::Ordering::Relaxed) {
                let page = http.get(&url).header("cookie", &cookie).send().await.expect("page");
                assert_eq!(page.status().as_u16(), 200, "the console's leads page");
                let _ = page.bytes().await;
                pages.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(pause).await;
            }
        });
    }
    let worker = engine.clone();
    tokio::spawn(async move {
        loop {
            if worker.dispatcher.drain().await.unwrap_or(0) == 0 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
    });

    let http = reqwest::Client::new();
    let started = Instant::now();
    for batch in 0..n.div_ceil(1000) {
        let events: Vec<_> = (batch * 1000..((batch + 1) * 1000).min(n))
            .map(|i| json!({"id": format!("e{i}"), "type": "checkout.updated", "occurred_at": "2026-11-22T10:00:00Z",
                            "producer_id": producer.id, "checkout": {"id": format!("c{i}"), "email": format!("l{i}@example.com"),
                            "price": {"amount_cents": 9700, "currency": "BRL"}}}))
            .collect();
        let resp = http
            .post(format!("{base}/v1/events/batch"))
            .bearer_auth("p")
            .body(json!({"events": events}).to_string())
            .send()
            .await
            .expect("post");
        assert_eq!(resp.status().as_u16(), 202);
    }
    let posted = started.elapsed();
    while store.pending_timers().await.expect("timers") < n as i64 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let handled = started.elapsed();
    reading.store(false, std::sync::atomic::Ordering::Relaxed);
    emit("ingest_events_per_s", n as f64 / posted.as_secs_f64(), "1/s");
    emit("handled_events_per_s", n as f64 / handled.as_secs_f64(), "1/s");
    if readers > 0 {
        let served = pages.load(std::sync::atomic::Ordering::Relaxed) as f64;
        emit("console_pages_per_s_meanwhile", served / handled.as_secs_f64(), "1/s");
    }

    // The storage floor: the same number of rows, 1000 a transaction, one multi-row INSERT each.
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&url).await.expect("pool");
    sqlx::query("CREATE TABLE IF NOT EXISTS floor_rows (id TEXT PRIMARY KEY, producer_id TEXT, payload TEXT)")
        .execute(&pool)
        .await
        .expect("table");
    let floor_started = Instant::now();
    for batch in 0..n.div_ceil(1000) {
        let rows: Vec<String> =
            (batch * 1000..((batch + 1) * 1000).min(n)).map(|i| format!("('f{i}', 'p', '{{\"i\":{i}}}')")).collect();
        let sql = format!("INSERT INTO floor_rows (id, producer_id, payload) VALUES {}", rows.join(","));
        let mut tx = pool.begin().await.expect("tx");
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut *tx).await.expect("insert");
        tx.commit().await.expect("commit");
    }
    let floor = n as f64 / floor_started.elapsed().as_secs_f64();
    emit("storage_floor_rows_per_s", floor, "1/s");
    emit("handled_to_floor_ratio", (n as f64 / handled.as_secs_f64()) / floor, "x");

    // Timers: jump past the first email; every lead's timer fires and is handled.
    clock.set(t0 + 20 * 60_000);
    let fire_started = Instant::now();
    let mut latencies = Vec::with_capacity(n);
    while latencies.len() < n {
        let tick = engine.scheduler.tick().await.expect("tick");
        for _ in 0..tick.fired {
            latencies.push(fire_started.elapsed());
        }
        if tick.fired == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let fired = fire_started.elapsed();
    latencies.sort_unstable();
    emit("timers_fired_per_s", n as f64 / fired.as_secs_f64(), "1/s");
    emit(
        "timer_lateness_p99_ms",
        latencies[(latencies.len() * 99 / 100).min(latencies.len() - 1)].as_secs_f64() * 1000.0,
        "ms",
    );

    // Delivery through the engine: every lead's first email, outbox to the SMTP server.
    while store.outbox_depth().await.expect("depth") < n as i64 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let delivery_started = Instant::now();
    let before = sink.received();
    while sink.received() - before < n {
        if engine.deliverer.deliver_due().await.expect("deliver") == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let through_engine = n as f64 / delivery_started.elapsed().as_secs_f64();
    emit("emails_per_s_through_engine", through_engine, "1/s");
    // The transport alone, sixteen senders, to the same server.
    let total = n.min(20_000);
    let transport_started = Instant::now();
    let before = sink.received();
    let mut senders = Vec::new();
    for s in 0..16 {
        let smtp = smtp.clone();
        senders.push(tokio::spawn(async move {
            for i in (s..total).step_by(16) {
                smtp.send(&smtp_sink::sample_message(i)).await.expect("sent");
            }
        }));
    }
    for sender in senders {
        sender.await.expect("sender");
    }
    assert_eq!(sink.received() - before, total);
    let transport_only = total as f64 / transport_started.elapsed().as_secs_f64();
    emit("emails_per_s_transport_only_16_senders", transport_only, "1/s");
    emit("engine_to_transport_delivery_ratio", through_engine / transport_only, "x");

    // Ingest of single events (`POST /v1/events`), 64 clients at once, for a producer with no
    // binding (nothing to handle): concurrent requests share commits (group commit).
    let single = store.create_producer("single", t0).await.expect("producer");
    let total = n.min(20_000);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let single_started = Instant::now();
    let mut clients = Vec::new();
    for _ in 0..64 {
        let (http, base, next, producer) = (http.clone(), base.clone(), next.clone(), single.id.clone());
        clients.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= total {
                    return;
                }
                let event = json!({"id": format!("s{i}"), "type": "checkout.updated", "occurred_at": "2026-11-22T10:00:00Z",
                                   "producer_id": producer, "checkout": {"id": format!("s{i}"), "email": format!("s{i}@example.com")}});
                let resp = http
                    .post(format!("{base}/v1/events"))
                    .bearer_auth("p")
                    .body(event.to_string())
                    .send()
                    .await
                    .expect("post");
                assert_eq!(resp.status().as_u16(), 202);
            }
        }));
    }
    for client in clients {
        client.await.expect("client");
    }
    emit("ingest_single_events_per_s_64_clients", total as f64 / single_started.elapsed().as_secs_f64(), "1/s");
    emit("peak_rss_mb", peak_rss_mb(), "MB");

    if let Some(schema) = schema {
        schema.remove().await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The process's peak resident set (VmHWM), in MB; 0 where /proc is not there.
fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

/// On PostgreSQL, a schema for this run alone: the engine's tables and the floor's rows start
/// empty, and are dropped at the end.
struct BenchSchema {
    admin: sqlx::PgPool,
    name: String,
    url: String,
}

impl BenchSchema {
    async fn create(base_url: &str) -> Option<BenchSchema> {
        if !base_url.starts_with("postgres") {
            return None;
        }
        let admin = sqlx::PgPool::connect(base_url).await.expect("postgres");
        let name = format!("funnel_load_{}", std::process::id());
        for sql in [format!("DROP SCHEMA IF EXISTS {name} CASCADE"), format!("CREATE SCHEMA {name}")] {
            sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&admin).await.expect("schema");
        }
        let sep = if base_url.contains('?') { '&' } else { '?' };
        let url = format!("{base_url}{sep}options=-c%20search_path%3D{name}");
        Some(BenchSchema { admin, name, url })
    }

    async fn remove(self) {
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name)))
            .execute(&self.admin)
            .await
            .expect("drop schema");
    }
}
