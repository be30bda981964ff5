//! The HTTP API on a loopback port for tests, with the engine on a virtual clock behind it and
//! messages written as files; the credentials it checks, and platform events as JSON.

use std::sync::Arc;

use funnel_host::api::{self, AppState, Secrets};
use funnel_host::clock::VirtualClock;
use funnel_host::delivery::file::FileTransport;
use funnel_host::pipeline::{Pipeline, PipelineParts};
use funnel_host::webhooks::{SenderSettings, TargetPolicy};
use serde_json::{Value, json};

use crate::harness::T0;

pub(crate) const ADMIN: &str = "admin-token";
pub(crate) const PLATFORM: &str = "platform-token";
pub(crate) const SECRET: &str = "platform-secret";

/// The API on a loopback port over an engine on a virtual clock.
pub(crate) struct Server {
    pub base: String,
    pub engine: Arc<Pipeline>,
    pub clock: Arc<VirtualClock>,
    /// Where emails and SMS are written.
    pub outbox: tempfile::TempDir,
    pub http: reqwest::Client,
    /// What the router serves from.
    pub state: AppState,
}

pub(crate) async fn start(store: funnel_host::store::Database) -> Server {
    start_with(store, None).await
}

/// A server whose emails go to `email` (files under a temp dir when `None`).
pub(crate) async fn start_with(
    store: funnel_host::store::Database,
    email: Option<Arc<dyn funnel_host::delivery::Transport>>,
) -> Server {
    start_configured(store, email, crate::support::runtime()).await
}

/// A server over `runtime` (its limits, upload deadline and upload slots).
pub(crate) async fn start_configured(
    store: funnel_host::store::Database,
    email: Option<Arc<dyn funnel_host::delivery::Transport>>,
    runtime: funnel_host::runtime::Runtime,
) -> Server {
    start_full(store, email, runtime, ALLOW_PRIVATE, SenderSettings::default()).await
}

/// Tests post webhooks to receivers on loopback (`FUNNEL_WEBHOOK_ALLOW_PRIVATE=1`).
pub(crate) const ALLOW_PRIVATE: TargetPolicy = TargetPolicy { allow_private: true };

/// A server whose webhooks may reach what `targets` allows, delivered under `webhooks`.
pub(crate) async fn start_full(
    store: funnel_host::store::Database,
    email: Option<Arc<dyn funnel_host::delivery::Transport>>,
    runtime: funnel_host::runtime::Runtime,
    targets: TargetPolicy,
    webhooks: SenderSettings,
) -> Server {
    let clock = Arc::new(VirtualClock::new(T0));
    let outbox = tempfile::tempdir().expect("outbox dir");
    let files = Arc::new(
        FileTransport::new(outbox.path().to_path_buf(), "shop <shop@example.com>", "https://funnel.test".into())
            .expect("transport"),
    );
    let engine = Arc::new(
        Pipeline::new(PipelineParts {
            store: store.clone(),
            runtime: Arc::new(runtime),
            clock: clock.clone(),
            email: email.unwrap_or_else(|| files.clone()),
            sms: files,
            public_url: "https://funnel.test".into(),
            rate_caps: (None, None),
        })
        .with_webhooks(targets, webhooks),
    );
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
        webhook_targets: targets,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let router = api::router(state.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    Server { base, engine, clock, outbox, http: reqwest::Client::new(), state }
}

/// The status and JSON body of a response; an error must be problem+json.
pub(crate) async fn answer(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let is_problem = resp.headers().get("content-type").is_some_and(|v| v.as_bytes() == b"application/problem+json");
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    if status >= 400 {
        assert!(is_problem, "errors are problem+json ({status}): {body}");
    }
    (status, body)
}

impl Server {
    /// A request to `path`, with `token` as bearer if given.
    pub(crate) fn request(&self, method: reqwest::Method, path: &str, token: Option<&str>) -> reqwest::RequestBuilder {
        let req = self.http.request(method, format!("{}{path}", self.base));
        match token {
            Some(token) => req.bearer_auth(token),
            None => req,
        }
    }

    /// Send a JSON body (or none); the status and the JSON answer.
    pub(crate) async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.request(method, path, token);
        if let Some(body) = body {
            req = req.body(body.to_string());
        }
        answer(req.send().await.expect("request")).await
    }

    /// `GET path` with `token`; the status and the JSON answer.
    pub(crate) async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, path, Some(token), None).await
    }

    /// Upload component bytes with a producer's key, as `test-guest` 0.1.0.
    pub(crate) async fn upload(&self, key: &str, bytes: Vec<u8>) -> (u16, Value) {
        let req = self.request(reqwest::Method::POST, "/v1/plugins?name=test-guest&version=0.1.0", Some(key));
        answer(req.body(bytes).send().await.expect("upload")).await
    }

    /// Post one platform event with the platform token.
    pub(crate) async fn post_event(&self, event: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, "/v1/events", Some(PLATFORM), Some(event)).await
    }

    /// Handle, fire and deliver everything due at the clock's time.
    pub(crate) async fn settle(&self) {
        self.engine.settle().await.expect("settle");
    }

    /// Create a producer; its id and API key.
    pub(crate) async fn producer(&self) -> (String, String) {
        let (status, body) = self
            .send(reqwest::Method::POST, "/v1/admin/producers", Some(ADMIN), Some(json!({"name": "Loja da Ana"})))
            .await;
        assert_eq!(status, 201, "{body}");
        (body["id"].as_str().expect("id").into(), body["api_key"].as_str().expect("key").into())
    }
}

/// A `checkout.updated` event of checkout `chk-1`, with a price and a checkout URL.
pub(crate) fn event(id: &str, producer: &str, email: &str) -> Value {
    json!({"id": id, "type": "checkout.updated", "occurred_at": "2026-01-01T00:00:00Z", "producer_id": producer,
           "checkout": {"id": "chk-1", "email": email, "name": "Ana Souza", "price": {"amount_cents": 9700, "currency": "BRL"},
                        "url": "https://pay.example/chk-1"}})
}

/// A four-emails binding with one email at 20 minutes.
pub(crate) fn four_emails() -> Value {
    json!({"plugin": "four-emails", "config": {"emails": [
        {"after": "20m", "subject": "{{first_name}}, seu pedido <está> esperando", "html": "<p>Oi {{name}}, <a href=\"{{checkout_url}}\">volte</a></p>"}]}})
}

/// Undo quoted-printable soft line breaks and `=3D` so assertions can read HTML parts.
pub(crate) fn unfold_quoted_printable(text: &str) -> String {
    text.replace("=\r\n", "").replace("=\n", "").replace("=3D", "=")
}

/// The first `/{kind}/<token>` link in a message.
pub(crate) fn link(mail: &str, kind: &str) -> String {
    let marker = format!("https://funnel.test/{kind}/");
    let start = mail.find(&marker).expect("a link") + marker.len();
    mail[start..start + 32].to_string()
}

/// Change a JSON event's fields in place.
pub(crate) trait TapEvent {
    fn tap_checkout(self, id: &str) -> Self;
    fn tap(self, path: &[&str], value: Value) -> Self;
}

impl TapEvent for Value {
    fn tap_checkout(self, id: &str) -> Self {
        self.tap(&["checkout", "id"], json!(id))
    }

    fn tap(mut self, path: &[&str], value: Value) -> Self {
        let mut at = &mut self;
        for key in path {
            at = &mut at[*key];
        }
        *at = value;
        self
    }
}
