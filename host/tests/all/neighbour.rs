//! The noisy neighbour: on one real `funnel serve` (SQLite, a real SMTP server), tenant B's
//! leads go through a `flow` that emails at once, first alone, then while tenant A's plugin
//! (the test guest's `hostile` mode: it burns its fuel, sleeps to the wall-clock limit, bombs
//! memory or floods effects, by lead) runs on every one of A's events. B's latency is from the
//! event posted to its email at the SMTP server; A's events must end parked and the host must
//! stay up.
//!
//! [`run`] is shared: `cargo bench -p funnel-host --bench neighbour` runs it big and prints B's
//! p50/p99 alone and beside A, and their ratio; the test below runs it small and asserts only
//! correctness (every B email arrives, every A event is parked), never timing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::process::{self, Serve};
use crate::smtp_server::{self, Mailbox};

/// The size of a run.
#[derive(Clone, Debug)]
pub(crate) struct NeighbourConfig {
    /// B's leads in each phase.
    pub b_leads: usize,
    /// A's leads (its hostile events), posted at the start of the second phase.
    pub a_leads: usize,
    /// Time between two of B's leads.
    pub b_spacing: Duration,
}

/// What a run measured.
#[derive(Clone, Debug, Default)]
pub(crate) struct Figures {
    pub b_leads: usize,
    pub a_leads: usize,
    /// B's latencies in ms (posted → email received), sorted: alone, and beside A.
    pub alone_ms: Vec<f64>,
    pub with_a_ms: Vec<f64>,
    /// B's emails that never arrived (by the deadline), per phase.
    pub b_missing: usize,
    /// A's events parked as failed, by the server's own count.
    pub a_parked: i64,
    /// The server's peak resident memory (VmHWM), MiB.
    pub peak_rss_mib: f64,
    pub seconds: f64,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

impl Figures {
    pub(crate) fn print(&self) {
        let (p50a, p99a) = (percentile(&self.alone_ms, 0.5), percentile(&self.alone_ms, 0.99));
        let (p50n, p99n) = (percentile(&self.with_a_ms, 0.5), percentile(&self.with_a_ms, 0.99));
        for (metric, value, unit) in [
            ("b_leads", self.b_leads as f64, "1"),
            ("a_leads", self.a_leads as f64, "1"),
            ("b_p50_alone_ms", p50a, "ms"),
            ("b_p99_alone_ms", p99a, "ms"),
            ("b_p50_with_a_ms", p50n, "ms"),
            ("b_p99_with_a_ms", p99n, "ms"),
            ("b_p99_ratio", p99n / p99a, "x"),
            ("b_missing", self.b_missing as f64, "1"),
            ("a_parked", self.a_parked as f64, "1"),
            ("host_peak_rss_mib", self.peak_rss_mib, "MiB"),
            ("seconds", self.seconds, "s"),
        ] {
            println!(r#"{{"bench":"neighbour","metric":"{metric}","value":{value:.2},"unit":"{unit}"}}"#);
        }
    }
}

/// B's strategy: one email, at once.
const B_FLOW: &str = r#"{"start": "hello", "steps": {
    "hello": {"email": {"subject": "hello", "html": "<p>{{checkout_url}}</p>"}, "next": "end"}}}"#;

/// First time each recipient's email was seen at the SMTP server (polled every 5 ms).
fn watch(mailbox: Arc<Mailbox>) -> Arc<Mutex<HashMap<String, Instant>>> {
    let seen = Arc::new(Mutex::new(HashMap::new()));
    let out = seen.clone();
    std::thread::spawn(move || {
        let mut count = 0;
        loop {
            let messages = mailbox.received();
            if messages.len() > count {
                let now = Instant::now();
                let mut seen = seen.lock().expect("seen");
                for m in &messages[count..] {
                    if let Some(to) = m.split("\r\n").find_map(|l| l.strip_prefix("To: ")) {
                        seen.entry(to.trim().to_string()).or_insert(now);
                    }
                }
                count = messages.len();
            }
            if Arc::strong_count(&seen) == 1 {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    out
}

fn lead_event(id: &str, producer: &str, email: &str) -> Value {
    json!({"id": id, "type": "checkout.updated", "occurred_at": "2026-11-22T10:00:00Z", "producer_id": producer,
           "checkout": {"id": id, "email": email, "price": {"amount_cents": 9700, "currency": "BRL"}}})
}

/// Post B's leads one by one, `spacing` apart; wait for their emails; their latencies (sorted,
/// ms) and how many never came by `limit`.
async fn b_phase(
    serve: &Serve,
    producer: &str,
    phase: &str,
    config: &NeighbourConfig,
    seen: &Mutex<HashMap<String, Instant>>,
    limit: Duration,
) -> (Vec<f64>, usize) {
    let mut posted = Vec::new();
    for i in 0..config.b_leads {
        let email = format!("b-{phase}-{i}@example.com");
        let at = Instant::now();
        let (status, body) = serve.post_event(&lead_event(&format!("b-{phase}-{i}"), producer, &email)).await;
        assert_eq!(status, 202, "{body}");
        posted.push((email, at));
        tokio::time::sleep(config.b_spacing).await;
    }
    let deadline = Instant::now() + limit;
    loop {
        let arrived = {
            let seen = seen.lock().expect("seen");
            posted.iter().filter(|(e, _)| seen.contains_key(e)).count()
        };
        if arrived == posted.len() || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seen = seen.lock().expect("seen");
    let mut latencies: Vec<f64> = posted
        .iter()
        .filter_map(|(e, at)| seen.get(e).map(|got| got.duration_since(*at).as_secs_f64() * 1000.0))
        .collect();
    latencies.sort_by(f64::total_cmp);
    let missing = posted.len() - latencies.len();
    (latencies, missing)
}

fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(f64::NAN);
    kib / 1024.0
}

/// Run both phases on one server; the figures (the caller asserts).
pub(crate) async fn run(config: NeighbourConfig) -> Figures {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("dir");
    let url = format!("sqlite:{}", dir.path().join("funnel.db").display());
    let (smtp_url, mailbox) = smtp_server::start();
    let seen = watch(mailbox);
    let settings = [
        ("FUNNEL_SMTP_URL", smtp_url.as_str()),
        ("FUNNEL_MAX_SENDS_PER_MINUTE", "1000000"),
        ("FUNNEL_MAX_PRODUCER_SENDS_PER_MINUTE", "1000000"),
    ];
    let serve = tokio::task::block_in_place(|| process::spawn_with(&url, dir.path(), &settings));
    let (a, b) = (serve.create_producer().await, serve.create_producer().await);
    let (a_id, a_key) = (a["id"].as_str().expect("id"), a["api_key"].as_str().expect("key"));
    let (b_id, b_key) = (b["id"].as_str().expect("id"), b["api_key"].as_str().expect("key"));
    let (status, up) =
        serve.send(reqwest::Method::POST, "/v1/plugins", a_key, funnel_host::guests::TEST_GUEST.to_vec()).await;
    assert_eq!(status, 201, "{up}");
    let (status, bound) = serve.bind(a_key, &json!({"plugin": "test-guest", "config": {"mode": "hostile"}})).await;
    assert_eq!(status, 200, "{bound}");
    let flow: Value = serde_json::from_str(B_FLOW).expect("flow");
    let (status, bound) = serve.bind(b_key, &json!({"plugin": "flow", "config": flow})).await;
    assert_eq!(status, 200, "{bound}");

    let limit = Duration::from_secs(120 + config.a_leads as u64);
    let (alone_ms, missing_alone) = b_phase(&serve, b_id, "alone", &config, &seen, limit).await;

    // A's leads all at once (a batch), then B's as before.
    for chunk in (0..config.a_leads).collect::<Vec<_>>().chunks(1000) {
        let events: Vec<Value> =
            chunk.iter().map(|i| lead_event(&format!("a-{i}"), a_id, &format!("a{i}@example.com"))).collect();
        let (status, body) = serve
            .send(reqwest::Method::POST, "/v1/events/batch", process::PLATFORM, json!({"events": events}).to_string())
            .await;
        assert_eq!(status, 202, "{body}");
    }
    let (with_a_ms, missing_with_a) = b_phase(&serve, b_id, "with-a", &config, &seen, limit).await;

    // Every A event ends parked (a burnt-fuel trap twice, a wall-clock one five times).
    let deadline = Instant::now() + limit;
    let mut a_parked = 0;
    while Instant::now() < deadline {
        a_parked = serve.metric("funnel_invocations_parked_total").await;
        if a_parked >= config.a_leads as i64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Figures {
        b_leads: config.b_leads,
        a_leads: config.a_leads,
        alone_ms,
        with_a_ms,
        b_missing: missing_alone + missing_with_a,
        a_parked,
        peak_rss_mib: peak_rss_mib(serve.pid()),
        seconds: started.elapsed().as_secs_f64(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The short variant: correctness only (B's emails all arrive, A's events are all parked).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_hostile_neighbour_parks_and_b_is_served() {
        let config = NeighbourConfig { b_leads: 5, a_leads: 4, b_spacing: Duration::from_millis(50) };
        let figures = run(config).await;
        figures.print();
        assert_eq!(figures.b_missing, 0, "every B email arrived: {figures:?}");
        assert_eq!(figures.a_parked, 4, "each hostile event parked, once: {figures:?}");
    }
}
