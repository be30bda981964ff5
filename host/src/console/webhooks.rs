//! Webhooks: the producer's endpoints (URL, event types, when registered; never the secret)
//! and, for each, its most recent deliveries with their status and the receiver's last answer.
//! Read-only: endpoints are registered and deleted through the API, which shows the secret once.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::ConsoleState;
use super::leads::internal;
use super::page::{Chrome, Tab, datetime, datetime_s, render};
use super::session::Signed;
use crate::store::webhooks::DeliveryStatus;

/// Deliveries shown per endpoint.
const RECENT: i64 = 10;

pub(super) struct DeliveryView {
    pub id: String,
    pub event: String,
    pub status: &'static str,
    pub status_class: &'static str,
    pub attempts: i64,
    pub created_at: String,
    /// The receiver's last status code, or why there was none.
    pub last: String,
    pub next: String,
}

pub(super) struct WebhookView {
    pub id: String,
    pub url: String,
    pub events: String,
    pub created_at: String,
    pub deliveries: Vec<DeliveryView>,
}

#[derive(Template)]
#[template(path = "webhooks.html")]
struct WebhooksPage {
    c: Chrome,
    webhooks: Vec<WebhookView>,
}

pub(super) async fn page(State(state): State<ConsoleState>, signed: Signed) -> Response {
    let t = signed.lang.strings();
    let store = &state.app.store;
    let build = async {
        let mut webhooks = Vec::new();
        for w in store.webhooks(signed.producer()).await? {
            let deliveries = store
                .webhook_deliveries(signed.producer(), &w.id, None, RECENT)
                .await?
                .into_iter()
                .map(|d| {
                    let (status, status_class) = match d.status {
                        DeliveryStatus::Pending => (t.delivery_pending, "m-queued"),
                        DeliveryStatus::Delivered => (t.delivery_delivered, "m-sent"),
                        DeliveryStatus::Failed => (t.delivery_failed, "m-failed"),
                    };
                    let last = match (d.last_status, &d.last_error) {
                        (Some(code), _) => format!("HTTP {code}"),
                        (None, Some(error)) => {
                            format!("{}: {}", t.delivery_no_answer, error.chars().take(120).collect::<String>())
                        }
                        (None, None) => String::new(),
                    };
                    DeliveryView {
                        id: d.id,
                        event: d.event.as_str().to_string(),
                        status,
                        status_class,
                        attempts: d.attempts,
                        created_at: datetime(d.created_at),
                        last,
                        next: d.next_attempt_at.map(datetime_s).unwrap_or_default(),
                    }
                })
                .collect();
            webhooks.push(WebhookView {
                events: w.events.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(", "),
                created_at: datetime(w.created_at),
                id: w.id,
                url: w.url,
                deliveries,
            });
        }
        Ok::<_, crate::store::StoreError>(webhooks)
    };
    match build.await {
        Ok(webhooks) => render(
            StatusCode::OK,
            &WebhooksPage { c: Chrome::signed(&signed, Tab::Webhooks, t.webhooks_title), webhooks },
        ),
        Err(e) => internal(signed.lang, e),
    }
}
