//! A small WebDriver client (the W3C protocol over HTTP, with the reqwest the host already
//! has) driving Debian's headless Chromium through its chromedriver: enough to open pages,
//! fill and submit forms, read text, step into frames, and save screenshots.
//!
//! Without chromedriver the browser tests say they skipped, unless `FUNNEL_REQUIRE_BROWSER`
//! is set (CI sets it and installs `chromium` and `chromium-driver`): then they fail.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// The key W3C WebDriver names element references by.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A chromedriver process and one browser session in it; both end on drop.
pub(crate) struct Browser {
    driver: Child,
    http: reqwest::Client,
    session: String,
    base: String,
    _profile: tempfile::TempDir,
    shots: PathBuf,
    shot_count: usize,
}

/// An element of the current page.
#[derive(Clone, Debug)]
pub(crate) struct Element(String);

/// Whether browser tests can run here; `false` means skip (and say so).
pub(crate) fn available() -> bool {
    if std::path::Path::new(CHROMEDRIVER).exists() && std::path::Path::new(CHROMIUM).exists() {
        return true;
    }
    assert!(
        std::env::var_os("FUNNEL_REQUIRE_BROWSER").is_none(),
        "FUNNEL_REQUIRE_BROWSER is set but {CHROMEDRIVER} or {CHROMIUM} is missing: apt-get install chromium chromium-driver"
    );
    eprintln!("skipped the browser test: apt-get install chromium chromium-driver");
    false
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

impl Browser {
    /// Start chromedriver and a headless Chromium session; screenshots go to `shots`.
    pub(crate) async fn start(shots: PathBuf) -> Browser {
        std::fs::create_dir_all(&shots).expect("screenshot dir");
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().expect("client");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = http.get(format!("{base}/status")).send().await
                && r.status().is_success()
            {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not answer on {base}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().expect("profile dir");
        // Root needs --no-sandbox; the network is closed, so background traffic is turned off.
        let args = vec![
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            "--window-size=1280,900".into(),
            "--lang=en-US".into(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args, "prefs": {"intl.accept_languages": "en-US,en"}},
        }}});
        let r: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .expect("new session")
            .json()
            .await
            .expect("json");
        let session = r["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {r}")).to_string();
        Browser { driver, http, session, base, _profile: profile, shots, shot_count: 0 }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut req = self.http.request(method, &url);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let r: Value = req.send().await.unwrap_or_else(|e| panic!("{url}: {e}")).json().await.expect("json");
        r["value"].clone()
    }

    async fn ok(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let v = self.call(method, path, body).await;
        if let Some(error) = v.get("error") {
            panic!("WebDriver {path}: {error}: {}", v["message"]);
        }
        v
    }

    pub(crate) async fn goto(&self, url: &str) {
        self.ok(reqwest::Method::POST, "/url", Some(json!({"url": url}))).await;
    }

    pub(crate) async fn url(&self) -> String {
        self.ok(reqwest::Method::GET, "/url", None).await.as_str().unwrap_or("").to_string()
    }

    /// The first element matching a CSS selector, if any.
    pub(crate) async fn try_find(&self, css: &str) -> Option<Element> {
        let v =
            self.call(reqwest::Method::POST, "/element", Some(json!({"using": "css selector", "value": css}))).await;
        v[ELEMENT].as_str().map(|id| Element(id.to_string()))
    }

    pub(crate) async fn find(&self, css: &str) -> Element {
        match self.try_find(css).await {
            Some(e) => e,
            None => panic!("no element {css:?} on {}:\n{}", self.url().await, self.text("body").await),
        }
    }

    pub(crate) async fn find_all(&self, css: &str) -> Vec<Element> {
        let v = self.ok(reqwest::Method::POST, "/elements", Some(json!({"using": "css selector", "value": css}))).await;
        v.as_array().into_iter().flatten().filter_map(|e| e[ELEMENT].as_str()).map(|id| Element(id.into())).collect()
    }

    /// The visible text of the first element matching `css`.
    pub(crate) async fn text(&self, css: &str) -> String {
        let Some(e) = self.try_find(css).await else { return String::new() };
        self.text_of(&e).await
    }

    pub(crate) async fn text_of(&self, e: &Element) -> String {
        self.ok(reqwest::Method::GET, &format!("/element/{}/text", e.0), None).await.as_str().unwrap_or("").to_string()
    }

    pub(crate) async fn attribute(&self, e: &Element, name: &str) -> Option<String> {
        self.ok(reqwest::Method::GET, &format!("/element/{}/attribute/{name}", e.0), None)
            .await
            .as_str()
            .map(String::from)
    }

    /// Replace the value of an input or textarea.
    pub(crate) async fn fill(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        self.ok(reqwest::Method::POST, &format!("/element/{}/clear", e.0), Some(json!({}))).await;
        if !text.is_empty() {
            self.ok(reqwest::Method::POST, &format!("/element/{}/value", e.0), Some(json!({"text": text}))).await;
        }
    }

    /// Set a field's value by script (for long texts such as a JSON config; typing them key by
    /// key is slow and editors may auto-indent).
    pub(crate) async fn set_value(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        self.script("arguments[0].value = arguments[1];", vec![json!({ELEMENT: e.0}), json!(text)]).await;
    }

    pub(crate) async fn select(&self, css: &str, value: &str) {
        let e = self.find(css).await;
        self.script(
            "arguments[0].value = arguments[1]; arguments[0].dispatchEvent(new Event('change'));",
            vec![json!({ELEMENT: e.0}), json!(value)],
        )
        .await;
    }

    pub(crate) async fn click(&self, css: &str) {
        let e = self.find(css).await;
        self.ok(reqwest::Method::POST, &format!("/element/{}/click", e.0), Some(json!({}))).await;
    }

    /// Click something that loads a new page (a submit button, a link) and wait until the new
    /// page is there: a marker set on the old document must be gone.
    pub(crate) async fn click_to_load(&self, css: &str) {
        self.script("window.__funnelOldPage = true;", vec![]).await;
        self.click(css).await;
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let v = self.call(reqwest::Method::POST, "/execute/sync", Some(json!({"script": "return document.readyState === 'complete' && !window.__funnelOldPage;", "args": []}))).await;
            if v.as_bool() == Some(true) {
                return;
            }
            assert!(Instant::now() < deadline, "clicking {css} loaded no new page");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub(crate) async fn script(&self, script: &str, args: Vec<Value>) -> Value {
        self.ok(reqwest::Method::POST, "/execute/sync", Some(json!({"script": script, "args": args}))).await
    }

    /// Step into the frame `css`, or back to the page with `None`.
    pub(crate) async fn frame(&self, css: Option<&str>) {
        match css {
            Some(css) => {
                let e = self.find(css).await;
                self.ok(reqwest::Method::POST, "/frame", Some(json!({"id": {ELEMENT: e.0}}))).await;
            }
            None => {
                self.ok(reqwest::Method::POST, "/frame", Some(json!({"id": null}))).await;
            }
        }
    }

    /// The text of an open alert dialog, if one is open.
    pub(crate) async fn alert(&self) -> Option<String> {
        let v = self.call(reqwest::Method::GET, "/alert/text", None).await;
        if v.get("error").is_some() { None } else { v.as_str().map(String::from) }
    }

    pub(crate) async fn resize(&self, width: u32, height: u32) {
        self.ok(reqwest::Method::POST, "/window/rect", Some(json!({"width": width, "height": height}))).await;
    }

    /// Save a screenshot of the whole page as `NN-name.png`; returns its path.
    pub(crate) async fn screenshot(&mut self, name: &str) -> PathBuf {
        let size = self.ok(reqwest::Method::GET, "/window/rect", None).await;
        let (width, height) = (size["width"].as_u64().unwrap_or(1280), size["height"].as_u64().unwrap_or(900));
        let sizes =
            self.script("return [Math.ceil(document.documentElement.scrollHeight), window.innerHeight];", vec![]).await;
        let page_height = sizes[0].as_u64().unwrap_or(height).clamp(300, 6000);
        let chrome = height.saturating_sub(sizes[1].as_u64().unwrap_or(height));
        // The window grows to the page for the shot (WebDriver shoots the viewport only).
        self.resize(width as u32, (page_height + chrome) as u32).await;
        let png = self.ok(reqwest::Method::GET, "/screenshot", None).await;
        self.resize(width as u32, height as u32).await;
        let bytes = base64::engine::general_purpose::STANDARD.decode(png.as_str().unwrap_or("")).expect("base64 PNG");
        self.shot_count += 1;
        let path = self.shots.join(format!("{:02}-{name}.png", self.shot_count));
        std::fs::write(&path, bytes).expect("screenshot written");
        path
    }

    /// Reload until `check` holds (for counts that change as the server works), or panic
    /// after `timeout` with `what`.
    pub(crate) async fn reload_until<F, Fut>(&self, url: &str, timeout: Duration, what: &str, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = Instant::now() + timeout;
        loop {
            self.goto(url).await;
            if check().await {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not seen within {timeout:?} on {url}:\n{}",
                self.text("body").await
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ending the session closes Chromium; then the driver goes.
        let url = format!("{}/session/{}", self.base, self.session);
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build();
            if let Ok(rt) = rt {
                rt.block_on(async {
                    let _ = reqwest::Client::new().delete(url).timeout(Duration::from_secs(5)).send().await;
                });
            }
        })
        .join();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
