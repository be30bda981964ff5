//! The producers' console. One test drives a real headless Chromium against a real `funnel
//! serve` process on SQLite through a producer's whole day (one browser session for the
//! binary), saving a screenshot of every page under the target dir; the others check over
//! plain HTTP what a browser would hide: CSRF refusals, cookie flags, idle expiry, tenancy,
//! escaping, the CSV guard, the language choice; and the console's store reads and sessions on
//! SQLite and PostgreSQL.

use std::sync::Arc;
use std::time::Duration;

use funnel_host::api::{self, AppState, Secrets};
use funnel_host::clock::VirtualClock;
use funnel_host::console::{self, ConsoleState};
use funnel_host::domain::TimelineNote;
use funnel_host::domain::timeline::LogLevel;
use funnel_host::domain::{LeadEvent, PlatformEventType};
use funnel_host::guests;
use funnel_host::pipeline::{Pipeline, PipelineParts};
use funnel_host::store::Database;
use funnel_host::store::console::LeadFilter;
use funnel_host::store::sessions::SessionPolicy;
use serde_json::{Value, json};

use crate::browser::{self, Browser};
use crate::db::{Db, TestDb, on_both};
use crate::harness::{Harness, T0, lead_id};
use crate::process::{self, ADMIN, PLATFORM};

const HOSTILE_NAME: &str = "<script>alert(1)</script>";

/// A `funnel serve` process (`process::spawn_with`) on a fresh SQLite file, and its API.
struct Serve {
    process: process::Serve,
    base: String,
    dir: tempfile::TempDir,
}

impl Serve {
    fn start() -> Serve {
        let dir = tempfile::tempdir().expect("dir");
        let url = format!("sqlite:{}", dir.path().join("funnel.db").display());
        let cache = crate::support::compile_cache_dir();
        let process = process::spawn_with(
            &url,
            dir.path(),
            &[
                ("FUNNEL_CACHE_DIR", &cache.display().to_string()),
                // The daily stats roll up every second, so the chart shows today's leads at once.
                ("FUNNEL_STATS_ROLLUP_SCHEDULE", "* * * * * *"),
                // Webhooks go to receivers on loopback.
                ("FUNNEL_WEBHOOK_ALLOW_PRIVATE", "1"),
            ],
        );
        Serve { base: process.base.clone(), process, dir }
    }

    async fn api(&self, method: reqwest::Method, path: &str, token: &str, body: Value) -> (u16, Value) {
        let body = if body.is_null() { String::new() } else { body.to_string() };
        self.process.send(method, path, token, body).await
    }

    async fn producer(&self, name: &str) -> (String, String) {
        let (status, body) = self.api(reqwest::Method::POST, "/v1/admin/producers", ADMIN, json!({"name": name})).await;
        assert_eq!(status, 201, "{body}");
        (body["id"].as_str().expect("id").into(), body["api_key"].as_str().expect("key").into())
    }

    async fn event(&self, id: &str, kind: &str, producer: &str, checkout: &str, email: &str, name: &str) -> String {
        let body = json!({"id": id, "type": kind, "occurred_at": chrono::Utc::now().to_rfc3339(), "producer_id": producer,
            "checkout": {"id": checkout, "email": email, "name": name,
                         "price": {"amount_cents": 19_700, "currency": "BRL"}, "url": "https://pay.example/c"}});
        let (status, body) = self.process.post_event(&body).await;
        assert_eq!(status, 202, "{body}");
        body["lead_id"].as_str().expect("lead id").to_string()
    }
}

/// The flow the browser draws: a short wait (so counts move while the test watches), an email
/// whose HTML carries a script that must not run in the preview (after an A/B split whose two
/// variants both lead to it, so the stats page has a variant table), a long wait, a branch.
fn test_flow() -> Value {
    json!({
        "start": "pause",
        "on_purchase": "thanks",
        "steps": {
            "pause": {"wait": "8s", "next": "ab"},
            "ab": {"split": {"variants": [{"name": "short", "weight": 50, "next": "hello"},
                                          {"name": "long", "weight": 50, "next": "hello"}]}},
            "hello": {"email": {"subject": "Hi {{first_name}}",
                "html": "<p id=\"greeting\">Hi {{first_name}}, <a href=\"{{checkout_url}}\">finish your order</a>.</p><script>document.body.insertAdjacentHTML('beforeend', '<p id=\"ran\">script ran</p>')</script><p><a href=\"{{unsubscribe_url}}\">unsubscribe</a></p>"},
                "next": "linger"},
            "linger": {"wait": "1h", "next": "clicked"},
            "clicked": {"if": {"clicked": "hello"}, "then": "thanks", "else": "inactive"},
            "thanks": {"email": {"subject": "Thank you", "html": "<p>Thank you!</p>", "kind": "transactional"}, "next": "end"},
            "inactive": {"list": {"move": {"to": "inactive"}}, "next": "end"}
        }
    })
}

/// The counts a step's box shows: waiting, sent, clicked, recovered.
async fn step_counts(b: &Browser, step: &str) -> Vec<i64> {
    let Some(e) = b.try_find(&format!("g[data-step=\"{step}\"] .step-counts")).await else { return Vec::new() };
    b.attribute(&e, "data-counts").await.unwrap_or_default().split(',').filter_map(|n| n.parse().ok()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_runs_recovery_from_the_console_in_a_real_browser() {
    if !browser::available() {
        return;
    }
    let serve = Serve::start();
    let base = serve.base.clone();
    let (producer, key) = serve.producer("Loja da Ana").await;
    let (other_producer, _) = serve.producer("Outra Loja").await;
    let shots = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    let _ = std::fs::remove_dir_all(&shots);
    let mut b = Browser::start(shots.clone()).await;

    // GET / leads to the console, which asks to sign in.
    b.goto(&base).await;
    assert!(b.url().await.ends_with("/console/login"), "{}", b.url().await);
    b.screenshot("login").await;

    // A wrong key is refused and says so.
    b.fill("#api_key", "fk_not_a_key").await;
    b.click_to_load("button[type=submit].primary").await;
    assert!(b.url().await.ends_with("/console/login"));
    assert!(b.text("#login-error").await.contains("not right"), "{}", b.text("body").await);
    b.screenshot("login-wrong-key").await;

    // The right key signs in.
    b.fill("#api_key", &key).await;
    b.click_to_load("button[type=submit].primary").await;
    assert!(b.url().await.ends_with("/console/leads"), "{}", b.url().await);
    assert!(b.text(".producer").await.contains("Loja da Ana"));
    b.screenshot("leads-empty").await;

    // Draw a flow: a new producer-wide binding of the flow plugin, its JSON pasted and saved.
    b.goto(&format!("{base}/console/strategy/edit?plugin=flow")).await;
    assert!(
        b.try_find("svg.flow g[data-step=\"wait_10m\"]").await.is_some(),
        "the reference flow is drawn to start from"
    );
    // A broken step first: the plugin's error names it, and its box is marked on the drawing.
    let mut broken = test_flow();
    broken["steps"]["hello"]["email"]["subject"] = json!("");
    b.set_value("#config", &serde_json::to_string_pretty(&broken).expect("json")).await;
    b.click_to_load("button[type=submit].primary").await;
    assert!(b.text("#form-errors").await.contains("config.steps.hello.email.subject"), "{}", b.text("body").await);
    assert!(b.try_find("svg.flow g.broken[data-step=\"hello\"]").await.is_some(), "the broken step is marked");
    assert!(b.try_find("svg.flow g.broken[data-step=\"pause\"]").await.is_none());
    b.screenshot("flow-error").await;
    b.set_value("#config", &serde_json::to_string_pretty(&test_flow()).expect("json")).await;
    b.click_to_load("button[type=submit].primary").await;
    assert!(b.try_find("#saved").await.is_some(), "flow saved: {}", b.text("body").await);
    for step in ["pause", "hello", "linger", "clicked", "thanks", "inactive"] {
        assert!(b.try_find(&format!("svg.flow g[data-step=\"{step}\"]")).await.is_some(), "{step} drawn");
    }
    let svg = b.text("svg.flow").await;
    assert!(svg.contains("yes") && svg.contains("no") && svg.contains("on purchase"), "edges labelled: {svg}");
    let flow_url = b.url().await;

    // A lead posted through the API, named with a script tag.
    let lead = serve.event("evt-1", "checkout.updated", &producer, "chk-1", "ana@example.com", HOSTILE_NAME).await;
    // Its count moves: waiting at `pause`, then `hello` sent and waiting at `linger`.
    b.reload_until(&flow_url, Duration::from_secs(6), "1 waiting at pause", || async {
        step_counts(&b, "pause").await == [1, 0, 0, 0]
    })
    .await;
    b.screenshot("flow-waiting-at-pause").await;
    b.reload_until(&flow_url, Duration::from_secs(30), "hello sent, 1 waiting at linger", || async {
        step_counts(&b, "pause").await == [0, 0, 0, 0]
            && step_counts(&b, "hello").await == [0, 1, 0, 0]
            && step_counts(&b, "linger").await == [1, 0, 0, 0]
    })
    .await;
    b.screenshot("flow-after-email").await;

    // The leads report lists it, the name as text: no dialog, no script element from it.
    b.goto(&format!("{base}/console/leads")).await;
    assert_eq!(b.alert().await, None, "no script ran");
    let rows = b.find_all("table.leads tbody tr").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(b.text("table.leads tbody td[data-label=\"Name\"]").await, HOSTILE_NAME);
    b.screenshot("leads").await;

    // Its timeline, in order, and the preview of the email it got.
    b.click_to_load("table.leads tbody a").await;
    assert!(b.url().await.ends_with(&format!("/console/leads/{lead}")));
    let timeline = b.text("ol.timeline").await;
    let captured = timeline.find("lead captured").expect("capture in the timeline");
    let timer = timeline.find("Timer fired").expect("timer in the timeline");
    let sent = timeline.find("Email sent").expect("email in the timeline");
    assert!(captured < timer && timer < sent, "in order: {timeline}");
    assert!(timeline.contains(HOSTILE_NAME), "the subject shows the name as text");
    assert_eq!(b.alert().await, None);
    b.frame(Some("iframe.preview")).await;
    assert!(b.text("#greeting").await.starts_with("Hi <script>alert(1)</script>"), "{}", b.text("body").await);
    assert!(b.try_find("#ran").await.is_none(), "the email's script did not run in the preview");
    b.frame(None).await;
    b.screenshot("lead-timeline").await;

    // A second producer's lead is neither listed nor reachable by id.
    let other = serve.event("evt-b", "checkout.updated", &other_producer, "chk-b", "bia@example.com", "Bia").await;
    b.goto(&format!("{base}/console/leads/{other}")).await;
    assert!(b.text("body").await.contains("No lead of yours"), "{}", b.text("body").await);
    b.screenshot("other-producers-lead").await;
    b.goto(&format!("{base}/console/leads?q=bia")).await;
    assert!(b.find_all("table.leads tbody tr").await.is_empty());

    // four-emails for one product: a bad delay is refused at its field, a good one saved, and
    // an email past 72 h is shown disabled, as the plugin reports it.
    b.goto(&format!("{base}/console/strategy/edit?product=course-1&plugin=four-emails")).await;
    b.select("#count", "4").await;
    let emails = [("10m", "Volte, {{first_name}}"), ("24h", "Ainda quer?"), ("24h", "Última chance"), ("24h", "Tchau")];
    for (i, (after, subject)) in emails.iter().enumerate() {
        b.fill(&format!("#emails-{i}-after"), after).await;
        b.fill(&format!("#emails-{i}-subject"), subject).await;
        b.set_value(&format!("#emails-{i}-html"), "<p><a href=\"{{checkout_url}}\">Voltar</a></p>").await;
    }
    b.click_to_load("button[type=submit].primary").await;
    let error = b.text("#err-emails-0-after").await;
    assert!(error.contains("at least 20 minutes"), "error at the delay field: {}", b.text("body").await);
    assert_eq!(b.attribute(&b.find("#emails-0-after").await, "aria-invalid").await.as_deref(), Some("true"));
    b.screenshot("four-emails-bad-delay").await;
    b.fill("#emails-0-after", "20m").await;
    b.click_to_load("button[type=submit].primary").await;
    assert!(b.try_find("#saved").await.is_some(), "saved: {}", b.text("body").await);
    assert!(b.text("#disabled-3").await.contains("past the 72-hour window"), "{}", b.text("body").await);
    assert!(b.try_find("#disabled-2").await.is_none());
    b.screenshot("four-emails-saved").await;
    // "Try it first" runs the form as edited, before saving: the 3rd email after 20m + 24h.
    b.fill("#emails-1-after", "5h").await;
    b.click_to_load("button[formaction=\"/console/simulate\"]").await;
    let out = b.text("table.sim-out").await;
    assert!(
        out.contains("email-2") && out.contains("5h 20m"),
        "the unsaved delay is simulated: {}",
        b.text("body").await
    );
    b.screenshot("try-it-from-the-editor").await;

    // The strategy list: both bindings with their scope, and a forged toggle is refused.
    b.goto(&format!("{base}/console/strategy")).await;
    let list = b.text("table").await;
    assert!(list.contains("All products") && list.contains("Product course-1"), "{list}");
    b.screenshot("strategy").await;
    b.script("document.querySelectorAll('form input[name=csrf]').forEach(e => e.remove());", vec![]).await;
    b.click_to_load("form[action=\"/console/strategy/toggle\"] button").await;
    assert!(b.text("body").await.contains("security token"), "{}", b.text("body").await);
    b.screenshot("csrf-refused").await;

    // Try it: the four-emails binding, a lead that pays at 30 h.
    b.goto(&format!("{base}/console/simulate")).await;
    let option = b.find("#binding option:nth-child(2)").await;
    let course = b.attribute(&option, "value").await.expect("binding id");
    b.select("#binding", &course).await;
    b.select("#ev0_type", "order.paid").await;
    b.fill("#ev0_at", "30h").await;
    b.click_to_load("button[type=submit].primary").await;
    let out = b.text("table.sim-out").await;
    assert!(out.contains("email-1") && out.contains("email-2"), "{}", b.text("body").await);
    assert!(!out.contains("email-3"), "the purchase at 30 h stops the rest: {out}");
    b.screenshot("simulate").await;
    // A scenario error lands at its field.
    b.fill("#ev0_at", "soon").await;
    b.click_to_load("button[type=submit].primary").await;
    assert!(!b.text("#err-ev0_at").await.is_empty(), "{}", b.text("body").await);

    // Upload a plugin; a component of the wrong world is refused with the API's words.
    let wasm = serve.dir.path().join("test-guest.wasm");
    std::fs::write(&wasm, guests::TEST_GUEST).expect("wasm written");
    let wrong = serve.dir.path().join("wrong-world.wasm");
    std::fs::write(&wrong, guests::WRONG_WORLD).expect("wasm written");
    b.goto(&format!("{base}/console/plugins")).await;
    b.fill("#component", &wrong.display().to_string()).await;
    b.click_to_load("form[enctype] button[type=submit]").await;
    let refusal = b.text("#upload-error").await;
    let (status, api) =
        serve.process.send(reqwest::Method::POST, "/v1/plugins", &key, guests::WRONG_WORLD.to_vec()).await;
    assert_eq!(status, 422);
    assert_eq!(refusal, api["errors"][0]["message"].as_str().expect("message"), "same words as the API");
    b.fill("#component", &wasm.display().to_string()).await;
    b.click_to_load("form[enctype] button[type=submit]").await;
    assert!(b.text("#uploaded").await.contains("test-guest"), "{}", b.text("body").await);
    let listed = b.text(".plugin-list").await;
    assert!(listed.contains("four-emails") && listed.contains("flow") && listed.contains("test-guest"));
    assert!(listed.contains(&funnel_host::runtime::plugin::sha256_hex(guests::TEST_GUEST)));
    b.screenshot("plugins").await;

    // Two webhooks: one answering, one whose receiver is down (retried, shown pending).
    let receiver = crate::webhooks::Receiver::start().await;
    let down = {
        let parked = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}/hook", parked.local_addr().expect("addr"))
    };
    for (url, events) in [
        (receiver.url.clone(), json!(["lead.recovered", "lead.purchased", "message.sent"])),
        (down, json!(["lead.recovered"])),
    ] {
        let (status, hook) =
            serve.api(reqwest::Method::POST, "/v1/webhooks", &key, json!({"url": url, "events": events})).await;
        assert_eq!(status, 201, "{hook}");
    }

    // The lead pays: the flow's thank-you goes out, `hello` is credited, and the stats say so.
    serve.event("evt-2", "order.paid", &producer, "chk-1", "ana@example.com", HOSTILE_NAME).await;
    b.reload_until(&flow_url, Duration::from_secs(15), "thanks sent and hello recovered", || async {
        step_counts(&b, "thanks").await == [0, 1, 0, 0] && step_counts(&b, "hello").await == [0, 1, 0, 1]
    })
    .await;
    b.screenshot("flow-after-purchase").await;
    b.reload_until(&format!("{base}/console/stats"), Duration::from_secs(10), "stats", || async {
        b.text("#kpi-recovered").await == "1" && b.find_all("svg.chart rect.bar.recovered").await.len() == 30
    })
    .await;
    assert_eq!(b.text("#kpi-leads").await, "1");
    assert_eq!(b.text("#kpi-conversion").await, "100.0%");
    assert_eq!(b.text("#kpi-revenue").await, "R$197.00");
    let per_message = b.text("#per-message").await;
    assert!(per_message.contains("hello") && per_message.contains("R$197.00"), "{per_message}");
    let (_, api_stats) = serve.api(reqwest::Method::GET, "/v1/stats", &key, Value::Null).await;
    assert_eq!(api_stats["leads"], 1, "the same numbers as GET /v1/stats");
    // The A/B split's table: the lead's variant, its send and its recovery.
    let variant = api_stats["by_variant"][0]["variant"].as_str().expect("a variant").to_string();
    let per_variant = b.text("#per-variant").await;
    assert!(per_variant.contains("ab") && per_variant.contains(&variant), "{per_variant}");
    assert!(per_variant.contains("100.0%") && per_variant.contains("R$197.00"), "{per_variant}");
    b.screenshot("stats").await;

    // The webhooks page: each endpoint with its recent deliveries and the receiver's answers.
    b.reload_until(&format!("{base}/console/webhooks"), Duration::from_secs(15), "webhook deliveries", || async {
        b.find_all("table.deliveries tbody tr [data-status]").await.len() >= 3
            && b.text("body").await.contains("HTTP 200")
    })
    .await;
    assert_eq!(b.find_all("section.webhook").await.len(), 2);
    let page = b.text("main").await;
    assert!(page.contains("lead.recovered") && page.contains("no answer"), "{page}");
    assert!(!receiver.of("lead.recovered").is_empty(), "the receiver heard of the recovery");
    b.screenshot("webhooks").await;

    // More leads, for a report that looks like a working day (the README's pictures).
    for (i, (email, name, paid)) in [
        ("bruno.lima@example.com", "Bruno Lima", true),
        ("carla@example.com", "Carla Dias", false),
        ("diego.r@example.com", "Diego Rocha", false),
        ("elisa@example.com", "Elisa Martins", false),
    ]
    .iter()
    .enumerate()
    {
        let checkout = format!("chk-more-{i}");
        serve.event(&format!("evt-more-{i}"), "checkout.updated", &producer, &checkout, email, name).await;
        if *paid {
            serve.event(&format!("evt-paid-{i}"), "order.paid", &producer, &checkout, email, name).await;
        }
    }
    b.reload_until(&flow_url, Duration::from_secs(15), "the new leads at their steps", || async {
        step_counts(&b, "thanks").await.get(1).copied().unwrap_or(0) >= 2
            && step_counts(&b, "pause").await.first() == Some(&3)
    })
    .await;
    b.screenshot("flow-busy").await;
    b.goto(&format!("{base}/console/stats")).await;
    b.screenshot("stats-busy").await;
    b.goto(&format!("{base}/console/leads")).await;
    assert_eq!(b.find_all("table.leads tbody tr").await.len(), 5);
    b.screenshot("leads-busy").await;

    // Readable on a phone.
    b.resize(390, 844).await;
    b.goto(&format!("{base}/console/leads")).await;
    b.screenshot("phone-leads").await;
    b.goto(&format!("{base}/console/leads/{lead}")).await;
    b.screenshot("phone-lead").await;
    b.resize(1280, 900).await;

    // Sign out: the session is over on the server, the console asks to sign in again.
    b.goto(&format!("{base}/console/leads")).await;
    b.click_to_load("form[action=\"/console/logout\"] button").await;
    assert!(b.url().await.contains("/console/login"));
    b.goto(&format!("{base}/console/leads")).await;
    assert!(b.url().await.ends_with("/console/login"));
    eprintln!("console screenshots: {}", shots.display());
}

/// An in-process server (API and console) over `store` on a virtual clock, for HTTP checks.
struct Local {
    base: String,
    clock: Arc<VirtualClock>,
    http: reqwest::Client,
}

async fn local(store: Database, public_url: &str) -> Local {
    local_with(store, public_url, crate::support::runtime()).await
}

/// [`local`] over `runtime` (its upload deadline and slots).
async fn local_with(store: Database, public_url: &str, runtime: funnel_host::runtime::Runtime) -> Local {
    let clock = Arc::new(VirtualClock::new(T0));
    let engine = Pipeline::new(PipelineParts {
        store: store.clone(),
        runtime: Arc::new(runtime),
        clock: clock.clone(),
        email: Arc::new(funnel_host::delivery::Discard),
        sms: Arc::new(funnel_host::delivery::Discard),
        public_url: public_url.into(),
        rate_caps: (None, None),
    });
    let state = AppState {
        store: store.clone(),
        plugins: engine.plugins.clone(),
        clock: clock.clone(),
        secrets: Arc::new(Secrets {
            admin_token: ADMIN.into(),
            platform_token: PLATFORM.into(),
            platform_secret: "s".into(),
        }),
        work: Arc::new(tokio::sync::Notify::new()),
        webhook_targets: Default::default(),
    };
    let console = console::router(ConsoleState::new(state.clone(), public_url));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, api::router(state).merge(console)).await });
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    Local { base, clock, http }
}

/// An engine harness whose producer's API key is known (to sign in with).
async fn harness_with_key(store: &Database) -> (Harness, String) {
    let mut h = Harness::attach(store.clone(), T0).await;
    let producer = store.create_producer("Loja da Ana", T0).await.expect("producer");
    h.producer = producer.id;
    (h, producer.api_key)
}

/// A signed-in session: its cookie header and CSRF token.
struct Session {
    cookie: String,
    csrf: String,
}

fn hidden_csrf(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a csrf field") + "name=\"csrf\" value=\"".len();
    html[at..].split('"').next().expect("value").to_string()
}

fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap_or("").to_string()
}

impl Local {
    async fn get(&self, path: &str, cookie: &str) -> (u16, String) {
        let r = self.http.get(format!("{}{path}", self.base)).header("cookie", cookie).send().await.expect("get");
        (r.status().as_u16(), r.text().await.unwrap_or_default())
    }

    async fn post(&self, path: &str, cookie: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
        self.http
            .post(format!("{}{path}", self.base))
            .header("cookie", cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("post")
    }

    /// Sign in with `key` as a browser would (the form's token matches its cookie).
    async fn sign_in(&self, key: &str) -> (Session, Vec<String>) {
        let r = self.http.get(format!("{}/console/login", self.base)).send().await.expect("form");
        let login_cookie = cookie_pair(r.headers()["set-cookie"].to_str().expect("ascii"));
        let csrf = hidden_csrf(&r.text().await.expect("html"));
        let r = self.post("/console/login", &login_cookie, &[("csrf", &csrf), ("api_key", key)]).await;
        assert_eq!(r.status().as_u16(), 303, "signed in");
        let set_cookies: Vec<String> =
            r.headers().get_all("set-cookie").iter().map(|v| v.to_str().expect("ascii").to_string()).collect();
        let session_cookie =
            cookie_pair(set_cookies.iter().find(|c| c.contains("funnel_session=")).expect("session cookie"));
        let (_, html) = self.get("/console/strategy", &session_cookie).await;
        (Session { cookie: session_cookie, csrf: hidden_csrf(&html) }, set_cookies)
    }
}

#[tokio::test]
async fn forms_without_their_csrf_token_are_refused_and_change_nothing() {
    let (_db, store) = TestDb::with_store(Db::Sqlite).await;
    let (h, key) = harness_with_key(&store).await;
    h.bind_builtin("flow", &test_flow(), None, None).await;
    let server = local(store.clone(), "http://127.0.0.1").await;
    let (session, _) = server.sign_in(&key).await;

    // Toggle without a token, with a wrong one: 403, the binding stays enabled.
    for form in [vec![("product", ""), ("plan", ""), ("enabled", "0")], vec![("csrf", "forged"), ("enabled", "0")]] {
        let r = server.post("/console/strategy/toggle", &session.cookie, &form).await;
        assert_eq!(r.status().as_u16(), 403);
        assert!(r.text().await.unwrap_or_default().contains("security token"));
    }
    assert!(store.bindings(&h.producer).await.expect("bindings")[0].enabled);
    // Sign-out without its token does not end the session.
    assert_eq!(server.post("/console/logout", &session.cookie, &[]).await.status().as_u16(), 403);
    assert_eq!(server.get("/console/leads", &session.cookie).await.0, 200);
    // The sign-in form without its cookie's token is refused, even with the right key.
    let r = server.post("/console/login", "", &[("csrf", "x"), ("api_key", &key)]).await;
    assert_eq!(r.status().as_u16(), 403);
    assert!(r.headers().get("set-cookie").is_none_or(|c| !c.to_str().unwrap_or("").contains("funnel_session=")));
    // With the token, the toggle works.
    let r =
        server.post("/console/strategy/toggle", &session.cookie, &[("csrf", &session.csrf), ("enabled", "0")]).await;
    assert_eq!(r.status().as_u16(), 303);
    assert!(!store.bindings(&h.producer).await.expect("bindings")[0].enabled);
}

#[tokio::test]
async fn sessions_are_http_only_strict_secure_on_https_and_end_when_idle_or_signed_out() {
    let (_db, store) = TestDb::with_store(Db::Sqlite).await;
    let (_h, key) = harness_with_key(&store).await;

    let plain = local(store.clone(), "http://127.0.0.1").await;
    let (session, cookies) = plain.sign_in(&key).await;
    let set = cookies.iter().find(|c| c.starts_with("funnel_session=")).expect("cookie");
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict") && !set.contains("Secure"), "{set}");
    // Idle for 29 minutes: still signed in (and the idle clock restarts); 31 more: over.
    plain.clock.advance(29 * 60 * 1000);
    assert_eq!(plain.get("/console/leads", &session.cookie).await.0, 200);
    plain.clock.advance(29 * 60 * 1000);
    assert_eq!(plain.get("/console/leads", &session.cookie).await.0, 200);
    plain.clock.advance(31 * 60 * 1000);
    let (status, _) = plain.get("/console/leads", &session.cookie).await;
    assert_eq!(status, 303, "an idle session is over");

    // Signing out ends the session on the server, not just in the browser.
    let (session, _) = plain.sign_in(&key).await;
    let r = plain.post("/console/logout", &session.cookie, &[("csrf", &session.csrf)]).await;
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(plain.get("/console/leads", &session.cookie).await.0, 303);
    // Sign out everywhere ends every session of the producer.
    let (one, _) = plain.sign_in(&key).await;
    let (two, _) = plain.sign_in(&key).await;
    plain.post("/console/logout", &one.cookie, &[("csrf", &one.csrf), ("everywhere", "1")]).await;
    assert_eq!(plain.get("/console/leads", &two.cookie).await.0, 303);

    let https = local(store.clone(), "https://funnel.example").await;
    let (_, cookies) = https.sign_in(&key).await;
    let set = cookies.iter().find(|c| c.contains("funnel_session=")).expect("cookie");
    assert!(set.starts_with("__Host-funnel_session=") && set.contains("; Secure") && set.contains("Path=/;"), "{set}");
    // A wrong key is refused with 401 and no session.
    let r = https.http.get(format!("{}/console/login", https.base)).send().await.expect("form");
    let login_cookie = cookie_pair(r.headers()["set-cookie"].to_str().expect("ascii"));
    let csrf = hidden_csrf(&r.text().await.expect("html"));
    let r = https.post("/console/login", &login_cookie, &[("csrf", &csrf), ("api_key", "fk_wrong")]).await;
    assert_eq!(r.status().as_u16(), 401);
}

#[tokio::test]
async fn a_producer_sees_only_their_own_leads_and_names_are_text() {
    let (_db, store) = TestDb::with_store(Db::Sqlite).await;
    let (a, key) = harness_with_key(&store).await;
    a.bind_builtin("flow", &test_flow(), None, None).await;
    let other = store.create_producer("Outra Loja", T0).await.expect("producer");
    let (b_producer, b_key) = (other.id, other.api_key);
    let mine = lead_id(&a.post("e1", PlatformEventType::CheckoutUpdated, "chk-a", None).await);
    let hostile = TimelineNote::Log { level: LogLevel::Info, source: "plugin".into(), text: HOSTILE_NAME.into() };
    store.note(&mine, T0, &hostile).await.expect("a hostile line in the timeline");
    let theirs = {
        let event = funnel_host::domain::PlatformEvent {
            id: "e2".into(),
            kind: PlatformEventType::CheckoutUpdated,
            occurred_at_ms: T0,
            producer_id: b_producer.clone(),
            checkout: funnel_host::domain::Checkout {
                id: "chk-b".into(),
                email: Some(funnel_host::domain::EmailAddress::parse("bia@example.com").expect("email")),
                name: Some("=HYPERLINK(\"http://evil\")".into()),
                phone: None,
                product_id: None,
                plan_id: None,
                price: None,
                url: None,
                timezone: None,
            },
        };
        lead_id(&store.ingest(&event, T0).await.expect("ingest"))
    };
    a.settle().await;
    a.at(9_000).await; // past `pause`: the flow's email is sent
    let server = local(store.clone(), "http://127.0.0.1").await;
    let (session, _) = server.sign_in(&key).await;

    let (status, html) = server.get("/console/leads", &session.cookie).await;
    assert_eq!(status, 200);
    assert!(html.contains(&format!("/console/leads/{mine}")) && !html.contains(&theirs) && !html.contains("bia@"));
    let (status, _) = server.get(&format!("/console/leads/{theirs}"), &session.cookie).await;
    assert_eq!(status, 404, "another producer's lead is not reachable by id");
    let (_, csv) = server.get("/console/leads.csv", &session.cookie).await;
    assert!(csv.contains(&mine) && !csv.contains(&theirs), "{csv}");
    // The same over the API.
    let r = server.http.get(format!("{}/v1/leads/{theirs}", server.base)).bearer_auth(&key).send().await.expect("api");
    assert_eq!(r.status().as_u16(), 404);

    // The lead page shows hostile text as text.
    let (_, html) = server.get(&format!("/console/leads/{mine}"), &session.cookie).await;
    assert!(
        html.contains("&#60;script&#62;alert(1)&#60;/script&#62;") && !html.contains(HOSTILE_NAME),
        "escaped: {html}"
    );
    // Its email's preview is served with a sandbox policy; another producer cannot fetch it.
    let message = store.lead_messages(&a.producer, &mine).await.expect("messages");
    let message = &message.first().expect("the flow sent an email").id;
    let preview = format!("/console/leads/{mine}/messages/{message}/preview");
    let r = server
        .http
        .get(format!("{}{preview}", server.base))
        .header("cookie", &session.cookie)
        .send()
        .await
        .expect("preview");
    let csp = r.headers()["content-security-policy"].to_str().expect("ascii").to_string();
    assert!(csp.starts_with("sandbox;") && !csp.contains("allow-scripts"), "{csp}");
    let (b_session, _) = server.sign_in(&b_key).await;
    assert_eq!(server.get(&preview, &b_session.cookie).await.0, 404);
    // A formula in a name is made inert in the CSV.
    let (_, csv) = server.get("/console/leads.csv", &b_session.cookie).await;
    assert!(csv.contains("\"'=HYPERLINK(\"\"http://evil\"\")\""), "{csv}");
}

#[tokio::test]
async fn pages_speak_brazilian_portuguese_when_the_browser_asks() {
    let (_db, store) = TestDb::with_store(Db::Sqlite).await;
    let server = local(store, "http://127.0.0.1").await;
    let get = |lang: &'static str| {
        let http = server.http.clone();
        let url = format!("{}/console/login", server.base);
        async move { http.get(url).header("accept-language", lang).send().await.expect("get").text().await.expect("text") }
    };
    let pt = get("pt-BR,pt;q=0.9,en;q=0.8").await;
    assert!(pt.contains("lang=\"pt-BR\"") && pt.contains("Chave de API") && pt.contains("name=\"api_key\""));
    let en = get("en-GB,en;q=0.9").await;
    assert!(en.contains("lang=\"en\"") && en.contains("API key"));
    // `GET /` sends a browser to the console.
    let r = server.http.get(format!("{}/", server.base)).send().await.expect("get");
    assert_eq!(r.headers()["location"], "/console/");
}

on_both!(console_reads_and_sessions_hold);

async fn console_reads_and_sessions_hold(db: Db) {
    let (test_db, store) = TestDb::with_store(db).await;
    let h = Harness::new(store.clone(), T0).await;
    h.bind_builtin("flow", &test_flow(), None, None).await;
    let binding = store.bindings(&h.producer).await.expect("bindings")[0].id.clone();
    let ana = lead_id(&h.post("e1", PlatformEventType::CheckoutUpdated, "ana", Some("course-1")).await);
    h.settle().await;
    h.at(1000).await;
    let bia = lead_id(&h.post("e2", PlatformEventType::CheckoutUpdated, "bia", None).await);
    h.settle().await;
    h.at(10_000).await; // both past `pause`: `hello` sent to each, both waiting at `linger`
    h.post("e3", PlatformEventType::OrderPaid, "ana", Some("course-1")).await;
    h.at(11_000).await;

    let all = store.console_leads(&h.producer, &LeadFilter::default(), None, 10).await.expect("leads");
    assert_eq!(all.iter().map(|l| l.id.as_str()).collect::<Vec<_>>(), [bia.as_str(), ana.as_str()], "{db:?}");
    assert_eq!(all[0].last_message.as_ref().map(|m| m.0.as_str()), Some("hello"));
    let page = store
        .console_leads(&h.producer, &LeadFilter::default(), Some((all[0].captured_at, all[0].id.clone())), 10)
        .await
        .expect("page");
    assert_eq!(page.len(), 1, "{db:?}: the cursor moves past the first");
    let filter = |f: LeadFilter| {
        let store = store.clone();
        let producer = h.producer.clone();
        async move { store.console_leads(&producer, &f, None, 10).await.expect("leads").len() }
    };
    assert_eq!(filter(LeadFilter { status: Some("recovered".into()), ..LeadFilter::default() }).await, 1, "{db:?}");
    assert_eq!(filter(LeadFilter { product_id: Some("course-1".into()), ..LeadFilter::default() }).await, 1);
    assert_eq!(filter(LeadFilter { email_contains: Some("BIA@".into()), ..LeadFilter::default() }).await, 1);
    assert_eq!(filter(LeadFilter { email_contains: Some("%".into()), ..LeadFilter::default() }).await, 0);
    assert_eq!(filter(LeadFilter { captured_from: Some(T0 + 500), ..LeadFilter::default() }).await, 1);
    assert_eq!(filter(LeadFilter { captured_to: Some(T0 + 500), ..LeadFilter::default() }).await, 1);

    let counts = store.flow_step_counts(&h.producer, &binding).await.expect("counts");
    assert_eq!(counts["linger"].waiting, 1, "{db:?}: bia waits; ana bought and left");
    assert_eq!((counts["hello"].sent, counts["hello"].recovered), (2, 1), "{db:?}");
    assert_eq!(counts["thanks"].sent, 1, "{db:?}");
    let day = T0 / 86_400_000;
    let revenue = store.daily_revenue(&h.producer, day, day).await.expect("revenue");
    assert_eq!(revenue.len(), 1, "{db:?}");
    assert_eq!((revenue[0].day, revenue[0].amount_cents), (day, 9700));
    assert_eq!(store.revenue_by_tag(&h.producer).await.expect("by tag"), [("hello".into(), "BRL".into(), 9700)]);
    assert_eq!(store.leads_per_binding(&h.producer).await.expect("served")[&binding], 2);
    h.bind_test_guest("ok", Some("p"), None).await;
    let plugins = store.plugin_rows(&h.producer).await.expect("plugins");
    assert_eq!(plugins[0].size, guests::TEST_GUEST.len() as i64, "{db:?}");
    let events = store.lead_events(&h.producer, &ana).await.expect("events");
    assert!(events.iter().any(|e| matches!(e.event, Some(LeadEvent::Timer { .. }))), "{db:?}");
    assert!(store.lead_events("someone-else", &ana).await.expect("events").is_empty());

    // Sessions: live while used, over when idle, revocable, hashed at rest.
    let policy = SessionPolicy { idle_ms: 1000, max_age_ms: 10_000 };
    let s = store.create_session(&h.producer, policy, T0).await.expect("session");
    let found = store.session(&s.token, policy, T0 + 900).await.expect("read").expect("live");
    assert_eq!((found.producer_id.as_str(), found.csrf.as_str()), (h.producer.as_str(), s.csrf.as_str()));
    assert!(store.session(&s.token, policy, T0 + 2000).await.expect("read").is_none(), "{db:?}: idle");
    let s = store.create_session(&h.producer, policy, T0).await.expect("session");
    store.end_producer_sessions(&h.producer).await.expect("revoke");
    assert!(store.session(&s.token, policy, T0).await.expect("read").is_none(), "{db:?}: revoked");
    let s = store.create_session(&h.producer, policy, T0).await.expect("session");
    assert!(store.session(&format!("{}x", s.token), policy, T0).await.expect("read").is_none());
    let by_token = format!("SELECT COUNT(*) FROM console_sessions WHERE token_hash = '{}'", s.token);
    assert_eq!(test_db.count(&by_token).await, 0, "{db:?}: the token is stored hashed");
    assert_eq!(test_db.count("SELECT COUNT(*) FROM console_sessions").await, 1);
}

/// The console's upload form is held to the API's upload rules: the session is checked before
/// the body is read, the body must arrive within the deadline, and uploads share the slots.
#[tokio::test]
async fn a_stalled_console_upload_is_cut_at_its_deadline_and_uploads_share_the_slots() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (_db, store) = TestDb::with_store(Db::Sqlite).await;
    let (_h, key) = harness_with_key(&store).await;
    let mut config = crate::support::runtime_config();
    config.upload_deadline = std::time::Duration::from_secs(1);
    config.max_concurrent_uploads = 1;
    let server = local_with(store, "http://127.0.0.1", funnel_host::runtime::Runtime::new(config).expect("rt")).await;
    let (session, _) = server.sign_in(&key).await;
    let addr = server.base.trim_start_matches("http://").to_string();
    let stalled = |cookie: String| {
        let addr = addr.clone();
        async move {
            let mut stream = tokio::net::TcpStream::connect(&addr).await.expect("connect");
            let head = format!(
                "POST /console/plugins HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\n\
                 Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 1000000\r\n\r\n--b\r\n"
            );
            stream.write_all(head.as_bytes()).await.expect("head");
            stream
        }
    };
    let status = |mut stream: tokio::net::TcpStream| async move {
        let mut buf = vec![0u8; 4096];
        let n = tokio::time::timeout(std::time::Duration::from_secs(30), stream.read(&mut buf))
            .await
            .expect("an answer within 30 s")
            .expect("read");
        String::from_utf8_lossy(&buf[..n]).lines().next().unwrap_or_default().to_string()
    };
    // Without a session: sent to the sign-in page before the body is read.
    let line = status(stalled(String::new()).await).await;
    assert!(line.starts_with("HTTP/1.1 303") || line.starts_with("HTTP/1.1 401"), "{line}");
    // Signed in, a stalled body is cut at the deadline.
    assert_eq!(status(stalled(session.cookie.clone()).await).await, "HTTP/1.1 408 Request Timeout");
    // While one upload holds the only slot, another is told to retry. Two stalled uploads race
    // for the slot: the one that loses is answered 503 at once; when the probe won instead (it
    // is then cut at the deadline), try again with a fresh pair.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let holder = stalled(session.cookie.clone()).await;
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let line = status(stalled(session.cookie.clone()).await).await;
        drop(holder);
        if line == "HTTP/1.1 503 Service Unavailable" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no 503 while the slot is held (last: {line})");
    }
}

/// The strategy page shows each binding's send window; the stats page the messages the contact
/// cap deferred and dropped; a lead's timeline a held-back message with its local time.
#[tokio::test]
async fn the_console_shows_send_windows_and_capped_messages() {
    let (_db, store) = TestDb::with_store(Db::Sqlite).await;
    let (h, key) = harness_with_key(&store).await;
    let server = local(store.clone(), "https://funnel.test").await;
    let plugin = h.engine.plugins.builtin("four-emails").expect("four-emails");
    let config = json!({"emails": [{"after": "20m", "subject": "Oi", "html": "<p>{{checkout_url}}</p>"}]});
    let spec = funnel_host::domain::window::SendWindowSpec {
        start: "08:00".into(),
        end: "21:00".into(),
        days: Some(vec!["thu".into(), "fri".into()]),
        timezone: "America/Sao_Paulo".into(),
    };
    let window = funnel_host::domain::SendWindow::parse(&spec).expect("window");
    let binding = funnel_host::store::bindings::NewBinding {
        producer_id: &h.producer,
        scope: &funnel_host::domain::Scope::Producer,
        plugin: "four-emails",
        plugin_sha256: &plugin.sha256,
        config: &config,
        enabled: true,
        send_window: Some(&window),
    };
    store.put_binding(&binding, T0).await.expect("binding");
    let cap = funnel_host::store::settings::ContactCap {
        count: 1,
        per_ms: 86_400_000,
        over: funnel_host::store::settings::CapOver::Drop,
    };
    store.put_contact_cap(&h.producer, Some(&cap), T0).await.expect("cap");
    let lead = lead_id(&h.post("e1", PlatformEventType::CheckoutUpdated, "ana", None).await);
    h.settle().await;
    h.at(20 * 60_000).await;
    let (session, _) = server.sign_in(&key).await;
    let (status, html) = server.get("/console/strategy", &session.cookie).await;
    assert_eq!(status, 200);
    assert!(html.contains("08:00–21:00 thu fri (America/Sao_Paulo)"), "{html}");
    let (_, html) = server.get(&format!("/console/leads/{lead}"), &session.cookie).await;
    // Captured Wednesday 21:00 in São Paulo: the email due at 21:20 waits for Thursday 08:00.
    assert!(html.contains("2026-01-01 08:00 Thu (America/Sao_Paulo)"), "held until Thursday 08:00: {html}");
    let (_, html) = server.get("/console/stats", &session.cookie).await;
    assert!(html.contains("id=\"kpi-capped\">0 · 0<"), "{html}");
}
