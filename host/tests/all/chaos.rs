//! The kill -9 loop: real `funnel serve` processes (one on SQLite, or two replicas on one
//! PostgreSQL database) are SIGKILLed at random moments and restarted while leads flow through a
//! `flow` binding with short waits (1 s, an email, 2 s, a second email); a real SMTP server
//! outlives them all and counts what arrived. Nothing accepted may be lost, a duplicate may only
//! be a send in flight at a kill (same `Message-ID`), and no timer may be left unfired.
//!
//! [`run`] is shared: `cargo bench -p funnel-host --bench chaos` runs it big and prints its
//! figures as JSON lines; the test below runs it small on SQLite.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::{Value, json};
use sqlx::Connection;

use crate::process::{self, Serve};
use crate::smtp_server;

/// The size of a run.
#[derive(Clone, Debug)]
pub(crate) struct ChaosConfig {
    /// `sqlite` (one process) or a PostgreSQL URL (two replicas, in a schema made and dropped here).
    pub database: ChaosDatabase,
    pub leads: usize,
    pub kills: usize,
}

#[derive(Clone, Debug)]
pub(crate) enum ChaosDatabase {
    Sqlite,
    Postgres(String),
}

/// What a run counted.
#[derive(Clone, Debug, Default)]
pub(crate) struct Figures {
    pub database: &'static str,
    pub replicas: usize,
    pub leads: usize,
    pub kills: usize,
    /// Emails the flow sends: two a lead.
    pub expected: usize,
    /// Distinct (recipient, step) emails the SMTP server received.
    pub received: usize,
    pub lost: usize,
    /// Extra copies of an email with the first copy's `Message-ID` (a send in flight at a kill).
    pub duplicates_same_message_id: usize,
    /// Extra copies with another `Message-ID` (the plugin's effects committed twice: never fine).
    pub duplicates_other_message_id: usize,
    /// Timers due more than 10 s ago and still stored at the end.
    pub timers_never_fired: i64,
    pub seconds: f64,
}

impl Figures {
    /// One JSON line per figure, as the other benches print them.
    pub(crate) fn print(&self) {
        let tag = format!("{}_{}x", self.database, self.replicas);
        for (metric, value) in [
            ("leads", self.leads as f64),
            ("kills", self.kills as f64),
            ("expected", self.expected as f64),
            ("received", self.received as f64),
            ("lost", self.lost as f64),
            ("duplicates_same_message_id", self.duplicates_same_message_id as f64),
            ("duplicates_other_message_id", self.duplicates_other_message_id as f64),
            ("timers_never_fired", self.timers_never_fired as f64),
            ("seconds", self.seconds),
        ] {
            println!(r#"{{"bench":"chaos","run":"{tag}","metric":"{metric}","value":{value}}}"#);
        }
    }
}

const FLOW: &str = r#"{"start": "w1", "steps": {
    "w1": {"wait": "1s", "next": "e1"},
    "e1": {"email": {"subject": "step-one", "html": "<p>{{checkout_url}}</p>"}, "next": "w2"},
    "w2": {"wait": "2s", "next": "e2"},
    "e2": {"email": {"subject": "step-two", "html": "<p>{{checkout_url}}</p>"}, "next": "end"}}}"#;
const EMAILS_PER_LEAD: usize = 2;

/// A free loopback port (bound, then released for the process to take).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// One replica: its address and the running process, if it is up.
struct Replica {
    listen: String,
    base: String,
    process: Option<Serve>,
}

/// Run the loop; the figures, whatever they are (the caller asserts).
pub(crate) async fn run(config: ChaosConfig) -> Figures {
    sqlx::any::install_default_drivers();
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("dir");
    let (url, replicas, schema) = match &config.database {
        ChaosDatabase::Sqlite => (format!("sqlite:{}", dir.path().join("funnel.db").display()), 1, None),
        ChaosDatabase::Postgres(base) => {
            let name = format!("chaos_{}", uuid::Uuid::new_v4().simple());
            let mut conn = sqlx::AnyConnection::connect(base).await.expect("PostgreSQL");
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}"))).execute(&mut conn).await.expect("schema");
            let sep = if base.contains('?') { '&' } else { '?' };
            (format!("{base}{sep}options=-c%20search_path%3D{name}"), 2, Some((base.clone(), name)))
        }
    };
    let (smtp_url, mailbox) = smtp_server::start();
    let settings: Vec<(String, String)> = vec![
        ("FUNNEL_SMTP_URL".into(), smtp_url),
        ("FUNNEL_MAX_SENDS_PER_MINUTE".into(), "1000000".into()),
        ("FUNNEL_MAX_PRODUCER_SENDS_PER_MINUTE".into(), "1000000".into()),
    ];
    let spawn = |listen: String| {
        let (url, dir, settings) = (url.clone(), dir.path().to_path_buf(), settings.clone());
        async move {
            tokio::task::spawn_blocking(move || {
                let settings: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                process::spawn_on(&listen, &url, &dir, &settings)
            })
            .await
            .expect("spawn")
        }
    };
    let mut fleet = Vec::new();
    for _ in 0..replicas {
        let listen = format!("127.0.0.1:{}", free_port());
        let process = spawn(listen.clone()).await;
        fleet.push(Replica { listen, base: process.base.clone(), process: Some(process) });
    }
    let first = fleet[0].process.as_ref().expect("up");
    let producer = first.create_producer().await;
    let (producer_id, key) =
        (producer["id"].as_str().expect("id").to_string(), producer["api_key"].as_str().expect("key").to_string());
    let binding = json!({"plugin": "flow", "config": serde_json::from_str::<Value>(FLOW).expect("flow")});
    let (status, bound) = first.bind(&key, &binding).await;
    assert_eq!(status, 200, "{bound}");

    // Leads go in small batches to whichever replica answers, retried until accepted (a batch
    // whose answer was lost to a kill comes back as duplicates, which is an acceptance too),
    // spread over the time the kills take (1.35 s apart on average).
    let batch = (config.leads / 20).clamp(1, 50);
    let spacing = Duration::from_millis(1350 * config.kills as u64 / config.leads.div_ceil(batch).max(1) as u64);
    let bases: Vec<String> = fleet.iter().map(|r| r.base.clone()).collect();
    let posted = Arc::new(AtomicUsize::new(0));
    let poster = {
        let (posted, producer_id, leads) = (posted.clone(), producer_id.clone(), config.leads);
        tokio::spawn(async move {
            let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("client");
            let mut next = 0;
            let mut attempt = 0usize;
            while next < leads {
                let end = (next + batch).min(leads);
                let events: Vec<Value> = (next..end)
                    .map(|i| json!({"id": format!("chaos-{i}"), "type": "checkout.updated", "occurred_at": "2026-11-22T10:00:00Z",
                                    "producer_id": producer_id, "checkout": {"id": format!("chk-{i}"), "email": format!("lead{i}@example.com"),
                                    "price": {"amount_cents": 9700, "currency": "BRL"}}}))
                    .collect();
                let base = &bases[attempt % bases.len()];
                attempt += 1;
                let sent = http
                    .post(format!("{base}/v1/events/batch"))
                    .bearer_auth(process::PLATFORM)
                    .body(json!({"events": events}).to_string())
                    .send()
                    .await;
                match sent {
                    Ok(resp) if resp.status().as_u16() == 202 => {
                        next = end;
                        posted.store(next, Ordering::SeqCst);
                        tokio::time::sleep(spacing).await;
                    }
                    Ok(resp) => {
                        let status = resp.status();
                        assert!(status.is_server_error(), "a batch refused: {status} {:?}", resp.text().await);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        })
    };

    // SIGKILL at random moments, each process restarted at once on its own address.
    let mut kills = 0;
    let mut rng = rand::rng();
    while kills < config.kills {
        let pause = rng.random_range(200..2500);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        let victim = rng.random_range(0..fleet.len());
        drop(fleet[victim].process.take()); // SIGKILL, then reaped
        kills += 1;
        let listen = fleet[victim].listen.clone();
        fleet[victim].process = Some(spawn(listen).await);
    }
    poster.await.expect("poster");

    // Then wait for every email: the last lead's second one is 3 s after it was handled, but an
    // event or a send held by a killed process waits for its lease to run out (30 s for events,
    // 60 s for outbox rows), so the deadline leaves room for both.
    let expected = config.leads * EMAILS_PER_LEAD;
    let deadline = Instant::now() + Duration::from_secs(180 + config.leads as u64 / 20);
    loop {
        let got: HashSet<(String, String)> = mailbox.received().iter().filter_map(|m| key_of(m)).collect();
        if got.len() >= expected || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Room for a late duplicate to show.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let mut first_id: HashMap<(String, String), String> = HashMap::new();
    let (mut same, mut other) = (0, 0);
    for message in mailbox.received() {
        let Some(k) = key_of(&message) else { continue };
        let id = header(&message, "message-id").unwrap_or_default();
        match first_id.get(&k) {
            None => {
                first_id.insert(k, id);
            }
            Some(first) if *first == id => same += 1,
            Some(_) => other += 1,
        }
    }
    let expected_keys: HashSet<(String, String)> = (0..config.leads)
        .flat_map(|i| ["step-one", "step-two"].map(|s| (format!("lead{i}@example.com"), s.to_string())))
        .collect();
    let received = first_id.keys().filter(|k| expected_keys.contains(*k)).count();
    let now_ms = chrono::Utc::now().timestamp_millis();
    let mut conn = sqlx::AnyConnection::connect(&url).await.expect("database");
    let overdue: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM timers WHERE due_at < {}",
        now_ms - 10_000
    )))
    .fetch_one(&mut conn)
    .await
    .expect("timers");
    drop(conn);
    drop(fleet);
    if let Some((base, name)) = schema {
        let mut conn = sqlx::AnyConnection::connect(&base).await.expect("PostgreSQL");
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {name} CASCADE"))).execute(&mut conn).await;
    }
    Figures {
        database: match config.database {
            ChaosDatabase::Sqlite => "sqlite",
            ChaosDatabase::Postgres(_) => "postgres",
        },
        replicas,
        leads: posted.load(Ordering::SeqCst),
        kills,
        expected,
        received,
        lost: expected - received,
        duplicates_same_message_id: same,
        duplicates_other_message_id: other,
        timers_never_fired: overdue,
        seconds: started.elapsed().as_secs_f64(),
    }
}

/// A header's value (unfolded, first occurrence), by lower-case name.
fn header(message: &str, name: &str) -> Option<String> {
    let head = message.split("\r\n\r\n").next().unwrap_or(message);
    let mut lines = head.split("\r\n").peekable();
    while let Some(line) = lines.next() {
        let Some((n, v)) = line.split_once(':') else { continue };
        if n.eq_ignore_ascii_case(name) {
            let mut value = v.trim().to_string();
            while let Some(cont) = lines.peek().filter(|l| l.starts_with([' ', '\t'])) {
                value.push(' ');
                value.push_str(cont.trim());
                lines.next();
            }
            return Some(value);
        }
    }
    None
}

/// (recipient address, subject) of a received email.
fn key_of(message: &str) -> Option<(String, String)> {
    let to = header(message, "to")?;
    let address = to.rsplit('<').next()?.trim_end_matches('>').trim().to_string();
    Some((address, header(message, "subject")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The short variant: 20 leads, 3 kills, SQLite.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn kill_nine_loop_loses_nothing() {
        let figures = run(ChaosConfig { database: ChaosDatabase::Sqlite, leads: 20, kills: 3 }).await;
        figures.print();
        assert_eq!(figures.lost, 0, "{figures:?}");
        assert_eq!(figures.duplicates_other_message_id, 0, "{figures:?}");
        assert!(figures.duplicates_same_message_id <= figures.kills, "one in-flight send a kill at most: {figures:?}");
        assert_eq!(figures.timers_never_fired, 0, "{figures:?}");
    }

    /// The same with two replicas on one PostgreSQL database.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(not(funnel_postgres), ignore = "PostgreSQL is not configured: set FUNNEL_TEST_POSTGRES_URL")]
    async fn kill_nine_loop_loses_nothing_on_two_postgres_replicas() {
        let url = std::env::var("FUNNEL_TEST_POSTGRES_URL").expect("FUNNEL_TEST_POSTGRES_URL");
        let figures = run(ChaosConfig { database: ChaosDatabase::Postgres(url), leads: 20, kills: 3 }).await;
        figures.print();
        assert_eq!(figures.lost, 0, "{figures:?}");
        assert_eq!(figures.duplicates_other_message_id, 0, "{figures:?}");
        assert!(figures.duplicates_same_message_id <= figures.kills, "one in-flight send a kill at most: {figures:?}");
        assert_eq!(figures.timers_never_fired, 0, "{figures:?}");
    }
}
