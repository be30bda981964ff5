//! The HTTP API over real HTTP on loopback, with the engine on a virtual clock behind it and
//! messages written as files: auth failures, bad bodies (problem+json naming the field, nothing
//! stored), duplicates, batches (one transaction, answered per event), bindings checked by the
//! plugin, and a first email after 20 minutes.

use std::sync::Arc;

use funnel_host::api::{self, AppState, Secrets, auth};
use funnel_host::clock::{Clock, VirtualClock};
use funnel_host::delivery::file::FileTransport;
use funnel_host::pipeline::{Pipeline, PipelineParts};
use funnel_host::scheduler::periodic::{Periodic, PeriodicJobs};
use serde_json::{Value, json};

use crate::db::{BOTH, Db, fresh_store, fresh_url};
use crate::harness::T0;

struct Server {
    base: String,
    engine: Arc<Pipeline>,
    clock: Arc<VirtualClock>,
    outbox: tempfile::TempDir,
    http: reqwest::Client,
}

const ADMIN: &str = "admin-token";
const PLATFORM: &str = "platform-token";
const SECRET: &str = "platform-secret";

async fn start(store: funnel_host::store::Database) -> Server {
    start_with(store, None).await
}

/// A server whose emails go to `email` (files under a temp dir when `None`).
async fn start_with(
    store: funnel_host::store::Database,
    email: Option<Arc<dyn funnel_host::delivery::Transport>>,
) -> Server {
    let clock = Arc::new(VirtualClock::new(T0));
    let outbox = tempfile::tempdir().expect("outbox dir");
    let files = Arc::new(
        FileTransport::new(outbox.path().to_path_buf(), "shop <shop@example.com>", "https://funnel.test".into())
            .expect("transport"),
    );
    let engine = Arc::new(Pipeline::new(PipelineParts {
        store: store.clone(),
        runtime: Arc::new(crate::support::runtime()),
        clock: clock.clone(),
        email: email.unwrap_or_else(|| files.clone()),
        sms: files,
        public_url: "https://funnel.test".into(),
        rate_caps: (None, None),
    }));
    let state = AppState {
        store,
        plugins: engine.plugins.clone(),
        clock: clock.clone(),
        secrets: Arc::new(Secrets {
            admin_token: ADMIN.into(),
            platform_token: PLATFORM.into(),
            platform_secret: SECRET.into(),
        }),
        work: Arc::new(tokio::sync::Notify::new()),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, api::router(state)).await });
    Server { base, engine, clock, outbox, http: reqwest::Client::new() }
}

impl Server {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.body(body.to_string());
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let is_problem =
            resp.headers().get("content-type").is_some_and(|v| v.as_bytes() == b"application/problem+json");
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if status >= 400 {
            assert!(is_problem, "errors are problem+json: {body}");
        }
        (status, body)
    }

    async fn producer(&self) -> (String, String) {
        let (status, body) = self
            .send(reqwest::Method::POST, "/v1/admin/producers", Some(ADMIN), Some(json!({"name": "Loja da Ana"})))
            .await;
        assert_eq!(status, 201, "{body}");
        (body["id"].as_str().expect("id").into(), body["api_key"].as_str().expect("key").into())
    }
}

fn event(id: &str, producer: &str, email: &str) -> Value {
    json!({"id": id, "type": "checkout.updated", "occurred_at": "2026-01-01T00:00:00Z", "producer_id": producer,
           "checkout": {"id": "chk-1", "email": email, "name": "Ana Souza", "price": {"amount_cents": 9700, "currency": "BRL"},
                        "url": "https://pay.example/chk-1"}})
}

fn four_emails() -> Value {
    json!({"plugin": "four-emails", "config": {"emails": [
        {"after": "20m", "subject": "{{first_name}}, seu pedido <está> esperando", "html": "<p>Oi {{name}}, <a href=\"{{checkout_url}}\">volte</a></p>"}]}})
}

#[tokio::test]
async fn auth_failures_are_refused() {
    for db in BOTH {
        let Some(store) = fresh_store(db).await else { continue };
        let s = start(store).await;
        let (status, _) = s.send(reqwest::Method::POST, "/v1/admin/producers", None, Some(json!({"name": "x"}))).await;
        assert_eq!(status, 401, "no admin token");
        let (status, _) =
            s.send(reqwest::Method::POST, "/v1/admin/producers", Some("wrong"), Some(json!({"name": "x"}))).await;
        assert_eq!(status, 401, "wrong admin token");
        let (producer, key) = s.producer().await;
        let (status, _) = s.send(reqwest::Method::GET, "/v1/leads", None, None).await;
        assert_eq!(status, 401, "no producer key");
        let (status, _) =
            s.send(reqwest::Method::POST, "/v1/events", Some(&key), Some(event("e1", &producer, "a@b.co"))).await;
        assert_eq!(status, 401, "a producer key is not a platform token");

        let body = event("e1", &producer, "ana@example.com").to_string();
        let now_s = T0 / 1000;
        for (signature, why) in [
            (auth::sign("wrong secret", now_s, body.as_bytes()), "bad signature"),
            (auth::sign(SECRET, now_s - 600, body.as_bytes()), "stale timestamp"),
            ("t=abc".to_string(), "malformed header"),
        ] {
            let resp = s
                .http
                .post(format!("{}/v1/events", s.base))
                .header("Funnel-Signature", signature)
                .body(body.clone())
                .send()
                .await
                .expect("send");
            assert_eq!(resp.status().as_u16(), 401, "{why}");
        }
        let good = auth::sign(SECRET, now_s, body.as_bytes());
        let resp = s
            .http
            .post(format!("{}/v1/events", s.base))
            .header("Funnel-Signature", good)
            .body(body)
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status().as_u16(), 202, "a good signature is accepted");

        // Another producer's key sees nothing of this producer's leads.
        let (_, other_key) = s.producer().await;
        let (_, leads) = s.send(reqwest::Method::GET, "/v1/leads", Some(&other_key), None).await;
        assert_eq!(leads["leads"], json!([]));
    }
}

#[tokio::test]
async fn bad_bodies_name_the_field_and_store_nothing() {
    for db in BOTH {
        let Some(store) = fresh_store(db).await else { continue };
        let s = start(store).await;
        let (producer, key) = s.producer().await;
        let mut missing_checkout = event("e1", &producer, "a@b.co");
        missing_checkout.as_object_mut().expect("object").remove("checkout");
        let mut bad_type = event("e2", &producer, "a@b.co");
        bad_type["type"] = json!("order.exploded");
        let cases = [
            (event("e3", &producer, "not-an-email"), "checkout.email"),
            (missing_checkout, "$"),
            (bad_type, "type"),
            (event("e4", "no-such-producer", "a@b.co"), "producer_id"),
            (
                json!({"id": "e5", "type": "checkout.updated", "occurred_at": "yesterday", "producer_id": producer, "checkout": {"id": "c"}}),
                "occurred_at",
            ),
        ];
        for (body, path) in cases {
            let (status, problem) = s.send(reqwest::Method::POST, "/v1/events", Some(PLATFORM), Some(body)).await;
            assert_eq!(status, 422, "{problem}");
            let paths: Vec<&str> =
                problem["errors"].as_array().expect("errors").iter().filter_map(|e| e["path"].as_str()).collect();
            assert!(paths.contains(&path), "expected {path} in {paths:?}: {problem}");
        }
        let batch = json!({"events": [event("b1", &producer, "a@b.co"), event("b2", &producer, "nope")]});
        let (status, problem) = s.send(reqwest::Method::POST, "/v1/events/batch", Some(PLATFORM), Some(batch)).await;
        assert_eq!(status, 422);
        assert_eq!(problem["errors"][0]["path"], "events[1].checkout.email");
        let (_, leads) = s.send(reqwest::Method::GET, "/v1/leads", Some(&key), None).await;
        assert_eq!(leads["leads"], json!([]), "nothing was stored");

        let (status, problem) = s
            .send(
                reqwest::Method::PUT,
                "/v1/bindings",
                Some(&key),
                Some(json!({"plugin": "four-emails", "config": {"emails": []}})),
            )
            .await;
        assert_eq!((status, problem["errors"][0]["path"].as_str()), (422, Some("config.emails")), "{problem}");
        let (status, problem) = s
            .send(reqwest::Method::PUT, "/v1/bindings", Some(&key), Some(json!({"plugin": "nope", "config": {}})))
            .await;
        assert_eq!((status, problem["errors"][0]["path"].as_str()), (422, Some("plugin")), "{problem}");
        let (_, bindings) = s.send(reqwest::Method::GET, "/v1/bindings", Some(&key), None).await;
        assert_eq!(bindings["bindings"], json!([]), "no binding was stored");
    }
}

#[tokio::test]
async fn an_abandoned_checkout_gets_its_first_email_after_20_minutes() {
    for db in BOTH {
        let Some(store) = fresh_store(db).await else { continue };
        let s = start(store).await;
        let (producer, key) = s.producer().await;
        let (status, binding) = s.send(reqwest::Method::PUT, "/v1/bindings", Some(&key), Some(four_emails())).await;
        assert_eq!(status, 200, "{binding}");
        let (status, first) = s
            .send(
                reqwest::Method::POST,
                "/v1/events",
                Some(PLATFORM),
                Some(event("evt-1", &producer, "ana@example.com")),
            )
            .await;
        assert_eq!((status, first["status"].as_str()), (202, Some("accepted")), "{db:?} {first}");
        let (_, again) = s
            .send(
                reqwest::Method::POST,
                "/v1/events",
                Some(PLATFORM),
                Some(event("evt-1", &producer, "ana@example.com")),
            )
            .await;
        assert_eq!(again, json!({"status": "duplicate", "lead_id": first["lead_id"]}));

        s.engine.settle().await.expect("settle");
        s.clock.set(T0 + 19 * 60_000 + 59_000);
        s.engine.settle().await.expect("settle");
        assert_eq!(
            std::fs::read_dir(s.outbox.path()).map(|d| d.count()).unwrap_or(0),
            0,
            "{db:?}: nothing before 20 minutes"
        );
        s.clock.set(T0 + 20 * 60_000);
        s.engine.settle().await.expect("settle");
        let files: Vec<_> = std::fs::read_dir(s.outbox.path()).expect("outbox").flatten().collect();
        assert_eq!(files.len(), 1, "{db:?}: one email at 20 minutes");
        let eml = unfold_quoted_printable(&std::fs::read_to_string(files[0].path()).expect("eml"));
        assert!(eml.contains("Subject: Ana, seu pedido =?utf-8?b?PGVzdMOhPg==?= esperando"), "encoded subject: {eml}");
        assert!(eml.contains("Oi Ana Souza, <a href=\"https://funnel.test/r/"), "tracked link, escaped name: {eml}");
        assert!(eml.contains("Oi Ana Souza, volte (https://funnel.test/r/"), "a text part with the link: {eml}");
        assert!(eml.contains("@funnel>"), "stable Message-ID: {eml}");
        assert!(eml.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"), "{eml}");

        let (_, leads) = s.send(reqwest::Method::GET, "/v1/leads", Some(&key), None).await;
        let lead = &leads["leads"][0];
        assert_eq!(
            (lead["status"].as_str(), lead["value"]["amount_cents"].as_i64()),
            (Some("recovering"), Some(9700)),
            "{db:?} {lead}"
        );
        assert_eq!(lead["messages"][0]["tag"], "email-1");
        assert_eq!(lead["messages"][0]["status"], "sent");
        let (status, detail) = s
            .send(
                reqwest::Method::GET,
                &format!("/v1/leads/{}", first["lead_id"].as_str().unwrap_or("")),
                Some(&key),
                None,
            )
            .await;
        assert_eq!(status, 200);
        assert!(detail["timeline"].as_array().is_some_and(|t| t.iter().any(|e| e["kind"] == "email")), "{detail}");
    }
}

/// Undo quoted-printable soft line breaks and `=3D` so assertions can read HTML parts.
pub fn unfold_quoted_printable(text: &str) -> String {
    text.replace("=\r\n", "").replace("=\n", "").replace("=3D", "=")
}

#[tokio::test]
async fn four_emails_over_http_reaches_a_real_smtp_server_at_20_minutes() {
    let Some(store) = fresh_store(crate::db::Db::Sqlite).await else { return };
    let (url, mailbox) = crate::smtp_server::start();
    let smtp = funnel_host::delivery::smtp::SmtpTransport::new(
        &url,
        "Loja da Ana <loja@example.com>",
        "https://funnel.test".into(),
    )
    .expect("smtp");
    let s = start_with(store, Some(Arc::new(smtp))).await;
    let (producer, key) = s.producer().await;
    let binding = json!({"plugin": "four-emails", "config": {"emails": [
        {"after": "20m", "subject": "{{first_name}}, seu pedido está esperando",
         "html": "<p>Oi {{first_name}}, faltou pouco! <a href=\"{{checkout_url}}\">Finalize sua compra</a>.</p>"}]}});
    let (status, body) = s.send(reqwest::Method::PUT, "/v1/bindings", Some(&key), Some(binding)).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = s
        .send(reqwest::Method::POST, "/v1/events", Some(PLATFORM), Some(event("evt-1", &producer, "ana@example.com")))
        .await;
    assert_eq!(status, 202);
    s.engine.settle().await.expect("settle"); // as serve's engine loop does at once
    s.clock.set(T0 + 19 * 60_000 + 59_000);
    s.engine.settle().await.expect("settle");
    assert!(mailbox.received().is_empty(), "nothing before 20 minutes");
    s.clock.set(T0 + 20 * 60_000);
    s.engine.settle().await.expect("settle");
    let received = mailbox.received();
    let (_, leads) = s.send(reqwest::Method::GET, "/v1/leads", Some(&key), None).await;
    assert_eq!(received.len(), 1, "{leads}");
    let mail = unfold_quoted_printable(&received[0]);
    assert!(mail.contains("Subject: Ana, seu pedido =?utf-8?"), "{mail}");
    assert!(mail.contains("<a href=\"https://funnel.test/r/"), "tracked link: {mail}");
}

/// The first `/{kind}/<token>` link in a message.
fn link(mail: &str, kind: &str) -> String {
    let marker = format!("https://funnel.test/{kind}/");
    let start = mail.find(&marker).expect("a link") + marker.len();
    mail[start..start + 32].to_string()
}

#[tokio::test]
async fn tracked_links_click_through_and_unsubscribe_in_one_click() {
    let Some(store) = fresh_store(crate::db::Db::Sqlite).await else { return };
    let s = start(store).await;
    let (producer, key) = s.producer().await;
    let binding = json!({"plugin": "four-emails", "config": {"emails": [
        {"after": "20m", "subject": "Volte", "html": "<p><a href=\"{{checkout_url}}\">pagar</a> <a href=\"{{unsubscribe_url}}\">sair</a></p>"},
        {"after": "5h", "subject": "De novo", "html": "<p>{{checkout_url}}</p>"}]}});
    assert_eq!(s.send(reqwest::Method::PUT, "/v1/bindings", Some(&key), Some(binding)).await.0, 200);
    let (_, accepted) = s
        .send(reqwest::Method::POST, "/v1/events", Some(PLATFORM), Some(event("e1", &producer, "ana@example.com")))
        .await;
    let lead = accepted["lead_id"].as_str().expect("lead").to_string();
    s.engine.settle().await.expect("settle");
    s.clock.set(T0 + 20 * 60_000);
    s.engine.settle().await.expect("settle");
    let file = std::fs::read_dir(s.outbox.path()).expect("outbox").flatten().next().expect("an email");
    let mail = unfold_quoted_printable(&std::fs::read_to_string(file.path()).expect("read"));

    let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let click = no_redirects.get(format!("{}/r/{}", s.base, link(&mail, "r"))).send().await.expect("click");
    assert_eq!(click.status().as_u16(), 302);
    assert_eq!(click.headers()["location"], "https://pay.example/chk-1", "the tracked link leads to the checkout");
    s.engine.settle().await.expect("settle");
    let (_, detail) = s.send(reqwest::Method::GET, &format!("/v1/leads/{lead}"), Some(&key), None).await;
    assert_eq!(detail["messages"][0]["clicked"], true, "{detail}");
    let unknown = no_redirects.get(format!("{}/r/{}", s.base, "0".repeat(32))).send().await.expect("unknown");
    assert_eq!(unknown.status().as_u16(), 404);

    let token = link(&mail, "u");
    let page = no_redirects.get(format!("{}/u/{token}", s.base)).send().await.expect("page");
    assert_eq!(page.status().as_u16(), 200);
    assert!(page.text().await.expect("html").contains("<form method=\"post\""), "a confirmation page");
    let (_, before) = s.send(reqwest::Method::GET, &format!("/v1/leads/{lead}"), Some(&key), None).await;
    assert_eq!(before["status"], "recovering", "a GET changes nothing");
    let one_click = no_redirects
        .post(format!("{}/u/{token}", s.base))
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .expect("one-click");
    assert_eq!(one_click.status().as_u16(), 200);
    s.clock.set(T0 + 6 * 3_600_000);
    s.engine.settle().await.expect("settle");
    let (_, after) = s.send(reqwest::Method::GET, &format!("/v1/leads/{lead}"), Some(&key), None).await;
    assert_eq!(after["status"], "unsubscribed", "{after}");
    assert_eq!(std::fs::read_dir(s.outbox.path()).expect("outbox").count(), 1, "no second email after unsubscribing");
}

#[tokio::test]
async fn stats_credit_the_clicked_message_with_the_recovery() {
    for db in BOTH {
        let Some(store) = fresh_store(db).await else { continue };
        let s = start(store).await;
        let (producer, key) = s.producer().await;
        let binding = json!({"plugin": "four-emails", "config": {"emails": [
            {"after": "20m", "subject": "Volte", "html": "<p><a href=\"{{checkout_url}}\">pagar</a></p>"},
            {"after": "5h", "subject": "De novo", "html": "<p>{{checkout_url}}</p>"}]}});
        assert_eq!(s.send(reqwest::Method::PUT, "/v1/bindings", Some(&key), Some(binding)).await.0, 200);
        s.send(reqwest::Method::POST, "/v1/events", Some(PLATFORM), Some(event("e1", &producer, "ana@example.com")))
            .await;
        s.send(
            reqwest::Method::POST,
            "/v1/events",
            Some(PLATFORM),
            Some(event("e2", &producer, "bia@example.com").tap_checkout("chk-2")),
        )
        .await;
        s.engine.settle().await.expect("settle");
        s.clock.set(T0 + 20 * 60_000);
        s.engine.settle().await.expect("settle");
        let mut files: Vec<_> =
            std::fs::read_dir(s.outbox.path()).expect("outbox").flatten().map(|f| f.path()).collect();
        files.sort();
        let ana = files
            .iter()
            .map(|f| unfold_quoted_printable(&std::fs::read_to_string(f).expect("read")))
            .find(|m| m.contains("To: ana@example.com"))
            .expect("ana's email");
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
        client.get(format!("{}/r/{}", s.base, link(&ana, "r"))).send().await.expect("click");
        s.clock.set(T0 + 3_600_000);
        s.engine.settle().await.expect("settle");
        let mut paid = event("e3", &producer, "ana@example.com");
        paid["type"] = json!("order.paid");
        s.send(reqwest::Method::POST, "/v1/events", Some(PLATFORM), Some(paid)).await;
        s.engine.settle().await.expect("settle");
        let (status, stats) = s.send(reqwest::Method::GET, "/v1/stats", Some(&key), None).await;
        assert_eq!(status, 200);
        assert_eq!(
            stats,
            json!({"leads": 2, "recovered": 1, "recovered_revenue": [{"currency": "BRL", "amount_cents": 9700}],
                   "by_tag": [{"tag": "email-1", "sent": 2, "clicked": 1, "recovered": 1}]}),
            "{db:?}"
        );
        let (_, leads) = s.send(reqwest::Method::GET, "/v1/leads", Some(&key), None).await;
        let statuses: Vec<&str> =
            leads["leads"].as_array().expect("leads").iter().filter_map(|l| l["status"].as_str()).collect();
        assert!(statuses.contains(&"recovered") && statuses.contains(&"recovering"), "{statuses:?}");

        // Per day, from the roll-up the periodic job refreshes: nothing until it has run.
        let range = "/v1/stats?from=2025-12-31&to=2026-01-02";
        let (_, before) = s.send(reqwest::Method::GET, range, Some(&key), None).await;
        assert_eq!(before["daily"], json!([]), "{db:?}");
        let mut jobs = PeriodicJobs {
            retention: Periodic::parse("0 30 3 * * *").expect("cron"),
            retention_days: 90,
            stats_rollup: Periodic::parse("0 * * * * *").expect("cron"),
        };
        let now = s.clock.now_ms();
        jobs.run_due(&s.engine.store, now).await; // arms the schedules
        jobs.run_due(&s.engine.store, now + 60_000).await;
        let (status, after) = s.send(reqwest::Method::GET, range, Some(&key), None).await;
        assert_eq!(status, 200);
        assert_eq!(
            after["daily"],
            json!([{"day": "2026-01-01", "leads": 2, "recovered": 1,
                    "by_tag": [{"tag": "email-1", "sent": 2, "clicked": 1, "recovered": 1}]}]),
            "{db:?}"
        );
        assert_eq!(after["leads"], 2, "the totals stay live");
        let (status, bad) =
            s.send(reqwest::Method::GET, "/v1/stats?from=2026-01-02&to=2026-01-01", Some(&key), None).await;
        assert_eq!((status, bad["errors"][0]["path"].as_str()), (422, Some("to")));
    }
}

/// Make the database refuse to store the event `id` (a trigger), to break a batch half-way.
async fn refuse_event(db: Db, url: &str, id: &str) {
    sqlx::any::install_default_drivers();
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(url).await.expect("connect");
    let ddl = match db {
        Db::Sqlite => format!(
            "CREATE TRIGGER refuse BEFORE INSERT ON events WHEN NEW.id = '{id}'
             BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
        ),
        Db::Postgres => format!(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN IF NEW.id = '{id}' THEN RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; END $$;
             CREATE TRIGGER refuse BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION refuse()"
        ),
    };
    sqlx::raw_sql(sqlx::AssertSqlSafe(ddl)).execute(&mut conn).await.expect("trigger");
}

fn statuses(body: &Value) -> Vec<&str> {
    body["results"].as_array().expect("results").iter().filter_map(|r| r["status"].as_str()).collect()
}

#[tokio::test]
async fn a_batch_is_stored_in_one_transaction_and_answered_per_event() {
    for db in BOTH {
        let Some(url) = fresh_url(db).await else { continue };
        let s = start(funnel_host::store::Database::connect(&url).await.expect("store")).await;
        let (producer, key) = s.producer().await;
        let batch = json!({"events": [
            event("b1", &producer, "ana@example.com"),
            event("b1", &producer, "ana@example.com"),
            event("b2", &producer, "ana@example.com"),
            event("b3", &producer, "bia@example.com").tap_checkout("chk-2"),
        ]});
        let (status, body) =
            s.send(reqwest::Method::POST, "/v1/events/batch", Some(PLATFORM), Some(batch.clone())).await;
        assert_eq!(status, 202, "{db:?}: {body}");
        assert_eq!(
            statuses(&body),
            ["accepted", "duplicate", "accepted", "accepted"],
            "{db:?}: a repeat inside the batch"
        );
        let results = &body["results"];
        assert_eq!(results[0]["lead_id"], results[1]["lead_id"], "{db:?}");
        assert_eq!(results[0]["lead_id"], results[2]["lead_id"], "{db:?}: one checkout, one lead");
        assert_ne!(results[0]["lead_id"], results[3]["lead_id"], "{db:?}");
        let (_, again) = s.send(reqwest::Method::POST, "/v1/events/batch", Some(PLATFORM), Some(batch)).await;
        assert_eq!(statuses(&again), ["duplicate"; 4], "{db:?}: a platform retry changes nothing");

        // All or nothing: the database refuses the third event, so the first two are not kept.
        refuse_event(db, &url, "boom").await;
        let c1 = event("c1", &producer, "caio@example.com").tap_checkout("chk-3");
        let c2 = event("c2", &producer, "dora@example.com").tap_checkout("chk-4");
        let boom = event("boom", &producer, "eva@example.com").tap_checkout("chk-5");
        let failing = json!({"events": [c1.clone(), c2.clone(), boom]});
        let (status, _) = s.send(reqwest::Method::POST, "/v1/events/batch", Some(PLATFORM), Some(failing)).await;
        assert_eq!(status, 500, "{db:?}");
        let (_, leads) = s.send(reqwest::Method::GET, "/v1/leads", Some(&key), None).await;
        assert_eq!(leads["leads"].as_array().map(Vec::len), Some(2), "{db:?}: no lead of the failed batch: {leads}");
        let retry = json!({"events": [c1, c2]});
        let (status, body) = s.send(reqwest::Method::POST, "/v1/events/batch", Some(PLATFORM), Some(retry)).await;
        assert_eq!((status, statuses(&body)), (202, vec!["accepted", "accepted"]), "{db:?}: none was stored");
    }
}

trait TapCheckout {
    fn tap_checkout(self, id: &str) -> Self;
}

impl TapCheckout for Value {
    fn tap_checkout(mut self, id: &str) -> Self {
        self["checkout"]["id"] = json!(id);
        self
    }
}

#[tokio::test]
async fn uploaded_plugins_lists_and_erasure() {
    let Some(store) = fresh_store(crate::db::Db::Sqlite).await else { return };
    let s = start(store).await;
    let (producer, key) = s.producer().await;
    let upload = |bytes: Vec<u8>| {
        s.http.post(format!("{}/v1/plugins?name=test-guest&version=0.1.0", s.base)).bearer_auth(&key).body(bytes).send()
    };
    let refused = upload(b"not wasm at all".to_vec()).await.expect("upload");
    assert_eq!(refused.status().as_u16(), 422);
    let problem: Value = refused.json().await.expect("json");
    assert_eq!(problem["errors"][0]["path"], "body");
    assert!(problem["detail"].as_str().unwrap_or("").contains("not WebAssembly"), "{problem}");
    let accepted = upload(funnel_host::guests::TEST_GUEST.to_vec()).await.expect("upload");
    assert_eq!(accepted.status().as_u16(), 201);
    let (_, plugins) = s.send(reqwest::Method::GET, "/v1/plugins", Some(&key), None).await;
    assert_eq!(plugins["plugins"][0]["name"], "test-guest", "{plugins}");

    let (status, binding) = s
        .send(
            reqwest::Method::PUT,
            "/v1/bindings",
            Some(&key),
            Some(json!({"plugin": "test-guest", "config": {"mode": "roundtrip"}})),
        )
        .await;
    assert_eq!(status, 200, "{binding}");
    s.send(reqwest::Method::POST, "/v1/events", Some(PLATFORM), Some(event("e1", &producer, "Ana@Example.com"))).await;
    s.engine.settle().await.expect("settle");
    let (_, lists) = s.send(reqwest::Method::GET, "/v1/lists", Some(&key), None).await;
    assert_eq!(lists, json!({"lists": [{"name": "vip", "members": 1}]}));
    let (_, members) = s.send(reqwest::Method::GET, "/v1/lists/vip/members", Some(&key), None).await;
    assert_eq!(members["members"][0]["email"], "ana@example.com");

    let erased = s
        .http
        .delete(format!("{}/v1/contacts/ana@example.com", s.base))
        .bearer_auth(&key)
        .send()
        .await
        .expect("delete");
    assert_eq!(erased.status().as_u16(), 204);
    let (_, leads) = s.send(reqwest::Method::GET, "/v1/leads", Some(&key), None).await;
    assert_eq!(leads["leads"], json!([]));
    let (_, lists) = s.send(reqwest::Method::GET, "/v1/lists", Some(&key), None).await;
    assert_eq!(lists, json!({"lists": []}));
}

#[tokio::test]
async fn health_and_metrics_answer() {
    let Some(store) = fresh_store(crate::db::Db::Sqlite).await else { return };
    let s = start(store).await;
    let (producer, _) = s.producer().await;
    s.send(reqwest::Method::POST, "/v1/events", Some(PLATFORM), Some(event("m1", &producer, "ana@example.com"))).await;
    let (status, health) = s.send(reqwest::Method::GET, "/healthz", None, None).await;
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")));
    let text = s.http.get(format!("{}/metrics", s.base)).send().await.expect("metrics").text().await.expect("text");
    let accepted: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("funnel_events_accepted_total "))
        .and_then(|v| v.parse().ok())
        .expect("the counter is there");
    assert!(accepted >= 1, "{text}");
    assert!(text.contains("# TYPE funnel_outbox_depth gauge"), "{text}");
}

#[tokio::test]
async fn openapi_documents_every_route_with_body_schemas() {
    let Some(store) = fresh_store(crate::db::Db::Sqlite).await else { return };
    let s = start(store).await;
    let (status, doc) = s.send(reqwest::Method::GET, "/openapi.json", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    for route in api::routes() {
        assert!(doc["paths"][route.path][route.method].is_object(), "{} {} is documented", route.method, route.path);
    }
    let event_schema = &doc["paths"]["/v1/events"]["post"]["requestBody"]["content"]["application/json"]["schema"];
    assert!(event_schema.to_string().contains("checkout"), "{event_schema}");
    assert!(doc["paths"]["/v1/leads/{id}"]["get"]["parameters"][0]["name"] == "id");
}
