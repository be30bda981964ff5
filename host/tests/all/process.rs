//! A real `funnel serve` process for tests (the built binary, on the real clock), killed with
//! SIGKILL when dropped; its admin API and its own `/metrics`, which count this process only.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

pub(crate) const ADMIN: &str = "admin";
pub(crate) const PLATFORM: &str = "platform";

/// A running `funnel serve`.
pub(crate) struct Serve {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `funnel serve` on database `url`, working in `dir` (its outbox and compile cache),
/// on a free port; returns once it listens.
pub(crate) fn spawn(url: &str, dir: &std::path::Path) -> Serve {
    spawn_with(url, dir, &[])
}

/// Like [`spawn`], with more `FUNNEL_*` settings.
pub(crate) fn spawn_with(url: &str, dir: &std::path::Path, settings: &[(&str, &str)]) -> Serve {
    spawn_on("127.0.0.1:0", url, dir, settings)
}

/// Like [`spawn_with`], listening on `listen` (a restarted process keeps its address).
pub(crate) fn spawn_on(listen: &str, url: &str, dir: &std::path::Path, settings: &[(&str, &str)]) -> Serve {
    let mut child = Command::new(env!("CARGO_BIN_EXE_funnel"))
        .args(["serve", "--listen", listen])
        .current_dir(dir)
        .env("FUNNEL_DATABASE_URL", url)
        .env("FUNNEL_ADMIN_TOKEN", ADMIN)
        .env("FUNNEL_PLATFORM_TOKEN", PLATFORM)
        .env("FUNNEL_PLATFORM_SECRET", "secret")
        .env("RUST_LOG", "warn")
        .envs(settings.iter().copied())
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
    Serve { child, base }
}

impl Serve {
    /// Send SIGTERM and wait up to `limit` for the process to exit; its exit status, or
    /// `None` if it was still running at the deadline (it is then killed when dropped).
    pub(crate) fn terminate(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let sent = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().expect("kill runs");
        assert!(sent.success(), "SIGTERM sent");
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Create a producer through the admin API; its JSON (`id`, `api_key`).
    pub(crate) async fn create_producer(&self) -> serde_json::Value {
        let resp = reqwest::Client::new()
            .post(format!("{}/v1/admin/producers", self.base))
            .bearer_auth(ADMIN)
            .body(json!({"name": "Loja"}).to_string())
            .send()
            .await
            .expect("producer");
        assert_eq!(resp.status().as_u16(), 201);
        resp.json().await.expect("json")
    }

    /// Send `body` to `path` with `token`; the status and the answer (JSON, or a string).
    pub(crate) async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: impl Into<reqwest::Body>,
    ) -> (u16, serde_json::Value) {
        let resp = reqwest::Client::new()
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token)
            .body(body)
            .send()
            .await
            .expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)))
    }

    /// Post a platform event; the status and the answer.
    pub(crate) async fn post_event(&self, event: &serde_json::Value) -> (u16, serde_json::Value) {
        self.send(reqwest::Method::POST, "/v1/events", PLATFORM, event.to_string()).await
    }

    /// `PUT /v1/bindings` with a producer's key; the status and the answer.
    pub(crate) async fn bind(&self, key: &str, binding: &serde_json::Value) -> (u16, serde_json::Value) {
        self.send(reqwest::Method::PUT, "/v1/bindings", key, binding.to_string()).await
    }

    /// The value of a metric of this process's `GET /metrics`.
    pub(crate) async fn metric(&self, name: &str) -> i64 {
        let text = reqwest::get(format!("{}/metrics", self.base)).await.expect("metrics").text().await.expect("text");
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no metric {name} in {text}"))
    }
}

/// A `checkout.updated` event numbered `i` of its own checkout and email.
pub(crate) fn event(i: usize, producer: &str) -> serde_json::Value {
    json!({"id": format!("evt-{i}"), "type": "checkout.updated", "occurred_at": "2026-11-22T10:00:00Z", "producer_id": producer,
           "checkout": {"id": format!("chk-{i}"), "email": format!("lead{i}@example.com"), "price": {"amount_cents": 9700, "currency": "BRL"}}})
}

/// Poll `check` every 100 ms until it answers `Some`; fail, saying `what`, after `limit`.
pub(crate) async fn wait_for<T, F: std::future::Future<Output = Option<T>>>(
    limit: Duration,
    what: &str,
    mut check: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(Instant::now() < deadline, "waited {limit:?} for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
