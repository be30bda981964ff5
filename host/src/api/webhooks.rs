//! `POST /v1/webhooks`, `GET /v1/webhooks`, `DELETE /v1/webhooks/{id}` and
//! `GET /v1/webhooks/{id}/deliveries`: a producer's outgoing webhooks (see
//! [`crate::webhooks`]). The signing secret is in the 201 of the registration and nowhere else.
//! Another producer's webhook answers 404, as a missing one does.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;

use super::AppState;
use super::auth::ProducerCaller;
use super::problem::{FieldError, Path, Problem, Query, parse_json};
use crate::store::webhooks::{DeliveryRow, Registered, Webhook};
use crate::webhooks::{WebhookEvent, target};

/// The most webhooks a producer may register.
pub const MAX_WEBHOOKS_PER_PRODUCER: usize = 10;

/// The most deliveries one page lists.
const MAX_PAGE: i64 = 100;

/// The body of `POST /v1/webhooks`.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// Where deliveries are POSTed: http or https, at most 2048 bytes, no user or password, and
    /// (unless the operator allows it) no loopback, private, link-local or otherwise
    /// non-public address.
    #[schemars(length(max = target::MAX_URL_BYTES), regex(pattern = URL_PATTERN))]
    url: String,
    /// The event types to receive, at least one, each once.
    #[schemars(schema_with = "event_names")]
    events: Vec<String>,
}

/// Schema pattern of a webhook URL: http(s), a host without a user or password, no white space
/// or control characters ([`target::parse`] checks the rest, and where it leads).
const URL_PATTERN: &str = r"^https?://[^\s\u0000-\u001f\u007f-\u009f@/?#]+([/?#][^\s\u0000-\u001f\u007f-\u009f]*)?$";

fn event_names(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let names: Vec<&str> = WebhookEvent::ALL.iter().map(|e| e.as_str()).collect();
    schemars::json_schema!({
        "type": "array", "minItems": 1, "maxItems": names.len(), "uniqueItems": true,
        "items": {"type": "string", "enum": names},
    })
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// A webhook as the API shows it (never with its secret).
#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct WebhookView {
    pub id: String,
    pub url: String,
    /// The event types it receives.
    #[schemars(schema_with = "event_names")]
    pub events: Vec<String>,
    /// RFC 3339.
    pub created_at: String,
}

/// `POST /v1/webhooks`'s answer: the webhook and its signing secret, shown this once.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct CreatedWebhook {
    #[serde(flatten)]
    pub webhook: WebhookView,
    /// The HMAC-SHA256 key deliveries are signed with (`Funnel-Signature`). Shown only here.
    pub secret: String,
}

/// `GET /v1/webhooks`'s answer.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct WebhookList {
    pub webhooks: Vec<WebhookView>,
}

/// One try at a delivery.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct AttemptView {
    /// RFC 3339.
    pub at: String,
    /// The receiver's HTTP status; null when it did not answer.
    pub status_code: Option<u16>,
    /// Why the attempt failed (no answer, or the start of a non-2xx answer's body).
    pub error: Option<String>,
    pub duration_ms: i64,
}

/// One delivery of an event to the webhook.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct DeliveryView {
    /// The `Funnel-Delivery` header and the body's `id`.
    pub id: String,
    pub event: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    pub attempts: i64,
    /// RFC 3339.
    pub created_at: String,
    /// When the next attempt is due (pending only).
    pub next_attempt_at: Option<String>,
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
    /// Newest first, at most 50.
    pub attempt_log: Vec<AttemptView>,
}

/// `GET /v1/webhooks/{id}/deliveries`'s answer.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct DeliveryPage {
    /// Newest first.
    pub deliveries: Vec<DeliveryView>,
    /// Pass as `?cursor=` for the next page; null on the last one.
    pub next_cursor: Option<String>,
}

fn webhook_view(w: &Webhook) -> WebhookView {
    WebhookView {
        id: w.id.clone(),
        url: w.url.clone(),
        events: w.events.iter().map(|e| e.as_str().to_string()).collect(),
        created_at: rfc3339(w.created_at),
    }
}

fn delivery_view(d: &DeliveryRow) -> DeliveryView {
    DeliveryView {
        id: d.id.clone(),
        event: d.event.as_str().to_string(),
        status: d.status.as_str().to_string(),
        attempts: d.attempts,
        created_at: rfc3339(d.created_at),
        next_attempt_at: d.next_attempt_at.map(rfc3339),
        last_status_code: d.last_status,
        last_error: d.last_error.clone(),
        attempt_log: d
            .log
            .iter()
            .map(|a| AttemptView {
                at: rfc3339(a.at),
                status_code: a.status_code,
                error: a.error.clone(),
                duration_ms: a.duration_ms,
            })
            .collect(),
    }
}

/// The events of a registration, each known and listed once; or the field errors.
fn parse_events(events: &[String]) -> Result<Vec<WebhookEvent>, Vec<FieldError>> {
    let mut errors = Vec::new();
    let known = || WebhookEvent::ALL.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(", ");
    if events.is_empty() {
        errors.push(FieldError { path: "events".into(), message: format!("list at least one of: {}", known()) });
    }
    if events.len() > WebhookEvent::ALL.len() {
        errors.push(FieldError {
            path: "events".into(),
            message: format!("at most {} event types (got {})", WebhookEvent::ALL.len(), events.len()),
        });
        return Err(errors);
    }
    let mut parsed = Vec::new();
    for (i, name) in events.iter().enumerate() {
        let path = format!("events[{i}]");
        match name.parse::<WebhookEvent>() {
            Ok(e) if parsed.contains(&e) => {
                errors.push(FieldError { path, message: format!("{name:?} is listed twice") })
            }
            Ok(e) => parsed.push(e),
            Err(_) => {
                let shown: String = name.chars().take(64).collect();
                errors.push(FieldError {
                    path,
                    message: format!("unknown event type {shown:?}; use one of: {}", known()),
                })
            }
        }
    }
    if errors.is_empty() { Ok(parsed) } else { Err(errors) }
}

fn problem(description: &str) -> serde_json::Value {
    serde_json::json!({"description": description, "content": {"application/problem+json": {
        "schema": {"$ref": "#/components/schemas/Problem"}}}})
}

fn json_answer(description: &str, schema: serde_json::Value) -> serde_json::Value {
    serde_json::json!({"description": description, "content": {"application/json": {"schema": schema}}})
}

/// `POST /v1/webhooks`'s documented answers.
pub fn create_responses() -> serde_json::Value {
    serde_json::json!({
        "201": json_answer("Registered; keep the secret, it is not shown again", super::schema::<CreatedWebhook>()),
        "409": problem("The producer has the most webhooks allowed already"),
        "422": problem("A field is not valid; `errors` names it (`url` for a refused target)"),
    })
}

/// `GET /v1/webhooks`'s documented answer.
pub fn list_responses() -> serde_json::Value {
    serde_json::json!({"200": json_answer("Your webhooks (never their secrets)", super::schema::<WebhookList>())})
}

/// `DELETE /v1/webhooks/{id}`'s documented answers.
pub fn delete_responses() -> serde_json::Value {
    serde_json::json!({
        "204": {"description": "Deleted, with its deliveries (pending ones are not sent)"},
        "404": problem("No webhook of yours has this id"),
    })
}

/// `GET /v1/webhooks/{id}/deliveries`'s documented answers.
pub fn deliveries_responses() -> serde_json::Value {
    serde_json::json!({
        "200": json_answer(
            "Deliveries, newest first, each with its attempts; pass next_cursor as ?cursor= for the next page",
            super::schema::<DeliveryPage>()),
        "404": problem("No webhook of yours has this id"),
    })
}

pub async fn create(
    State(state): State<AppState>,
    ProducerCaller(producer): ProducerCaller,
    body: Bytes,
) -> Result<(StatusCode, Json<CreatedWebhook>), Problem> {
    let body: NewWebhook = parse_json(&body)?;
    let mut errors = Vec::new();
    let url = match target::parse(body.url.trim()) {
        Ok(url) => match state.webhook_targets.check(&url).await {
            Ok(()) => Some(url),
            Err(e) => {
                errors.push(FieldError { path: "url".into(), message: e.to_string() });
                None
            }
        },
        Err(e) => {
            errors.push(FieldError { path: "url".into(), message: e.to_string() });
            None
        }
    };
    let events = parse_events(&body.events).map_err(|e| errors.extend(e)).ok();
    let (Some(url), Some(events)) = (url, events) else {
        return Err(Problem::invalid_fields(errors));
    };
    if !errors.is_empty() {
        return Err(Problem::invalid_fields(errors));
    }
    let now = state.clock.now_ms();
    match state.store.create_webhook(&producer, url.as_str(), &events, MAX_WEBHOOKS_PER_PRODUCER, now).await? {
        Registered::Created(new) => {
            Ok((StatusCode::CREATED, Json(CreatedWebhook { webhook: webhook_view(&new.webhook), secret: new.secret })))
        }
        Registered::Full { max } => Err(Problem {
            status: StatusCode::CONFLICT,
            title: "Too many webhooks",
            detail: format!("you have {max} webhooks, the most allowed: delete one first"),
            errors: vec![FieldError { path: "url".into(), message: format!("at most {max} webhooks per producer") }],
        }),
    }
}

pub async fn list(
    State(state): State<AppState>,
    ProducerCaller(producer): ProducerCaller,
) -> Result<Json<WebhookList>, Problem> {
    let hooks = state.store.webhooks(&producer).await?;
    Ok(Json(WebhookList { webhooks: hooks.iter().map(webhook_view).collect() }))
}

fn not_found(id: &str) -> Problem {
    let shown: String = id.chars().take(64).collect();
    Problem::not_found(format!("no webhook {shown:?} of yours"))
}

pub async fn delete(
    State(state): State<AppState>,
    ProducerCaller(producer): ProducerCaller,
    Path(WebhookPath { id }): Path<WebhookPath>,
) -> Result<StatusCode, Problem> {
    if state.store.delete_webhook(&producer, &id).await? { Ok(StatusCode::NO_CONTENT) } else { Err(not_found(&id)) }
}

/// `GET /v1/webhooks/{id}/deliveries`'s query.
#[derive(Deserialize, schemars::JsonSchema)]
pub struct DeliveriesQuery {
    /// The `next_cursor` of the previous page.
    #[schemars(regex(pattern = super::CURSOR_PATTERN))]
    cursor: Option<String>,
    /// Deliveries a page, 1 to 100 (20 when absent).
    #[schemars(range(min = 1, max = MAX_PAGE))]
    limit: Option<i64>,
}

/// The path of a webhook's routes.
#[derive(Deserialize, schemars::JsonSchema)]
pub struct WebhookPath {
    #[schemars(regex(pattern = super::WEBHOOK_ID_PATTERN))]
    id: String,
}

pub async fn deliveries(
    State(state): State<AppState>,
    ProducerCaller(producer): ProducerCaller,
    Path(WebhookPath { id }): Path<WebhookPath>,
    Query(q): Query<DeliveriesQuery>,
) -> Result<Json<DeliveryPage>, Problem> {
    let limit = q.limit.unwrap_or(20);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(Problem::field("limit", format!("must be 1 to {MAX_PAGE} (got {limit})")));
    }
    let before = match &q.cursor {
        None => None,
        Some(c) => Some(
            c.split_once('.')
                .and_then(|(at, id)| Some((at.parse::<i64>().ok()?, id.to_string())))
                .filter(|(_, id)| id.len() <= 64)
                .ok_or_else(|| Problem::field("cursor", "use the next_cursor of the previous page"))?,
        ),
    };
    if state.store.webhook(&producer, &id).await?.is_none() {
        return Err(not_found(&id));
    }
    let rows = state.store.webhook_deliveries(&producer, &id, before, limit).await?;
    let next =
        if rows.len() as i64 == limit { rows.last().map(|d| format!("{}.{}", d.created_at, d.id)) } else { None };
    Ok(Json(DeliveryPage { deliveries: rows.iter().map(delivery_view).collect(), next_cursor: next }))
}
