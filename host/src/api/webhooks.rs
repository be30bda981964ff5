//! `POST /v1/webhooks`, `GET /v1/webhooks`, `DELETE /v1/webhooks/{id}` and
//! `GET /v1/webhooks/{id}/deliveries`: a producer's outgoing webhooks (see
//! [`crate::webhooks`]). The signing secret is in the 201 of the registration and nowhere else.
//! Another producer's webhook answers 404, as a missing one does.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;

use super::AppState;
use super::auth::ProducerCaller;
use super::problem::{FieldError, Problem, parse_json};
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
    url: String,
    /// The event types to receive, at least one, each once.
    #[schemars(schema_with = "event_names")]
    events: Vec<String>,
}

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

fn webhook_json(w: &Webhook) -> serde_json::Value {
    serde_json::json!({
        "id": w.id, "url": w.url, "events": w.events.iter().map(|e| e.as_str()).collect::<Vec<_>>(),
        "created_at": rfc3339(w.created_at),
    })
}

fn delivery_json(d: &DeliveryRow) -> serde_json::Value {
    serde_json::json!({
        "id": d.id, "event": d.event, "status": d.status.as_str(), "attempts": d.attempts,
        "created_at": rfc3339(d.created_at), "next_attempt_at": d.next_attempt_at.map(rfc3339),
        "last_status_code": d.last_status, "last_error": d.last_error,
        "attempt_log": d.log.iter().map(|a| serde_json::json!({
            "at": rfc3339(a.at), "status_code": a.status_code, "error": a.error, "duration_ms": a.duration_ms,
        })).collect::<Vec<_>>(),
    })
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

/// `POST /v1/webhooks`'s documented answers.
pub fn create_responses() -> serde_json::Value {
    let problem = |description: &str| serde_json::json!({"description": description, "content": {"application/problem+json": {}}});
    let mut created = webhook_schema();
    created["required"] = serde_json::json!(["id", "url", "events", "created_at", "secret"]);
    created["properties"]["secret"] = serde_json::json!({"type": "string",
        "description": "The HMAC-SHA256 key deliveries are signed with (Funnel-Signature). Shown only here."});
    serde_json::json!({
        "201": {"description": "Registered; keep the secret, it is not shown again",
                "content": {"application/json": {"schema": created}}},
        "409": problem("The producer has the most webhooks allowed already"),
        "422": problem("A field is not valid; `errors` names it (`url` for a refused target)"),
    })
}

fn webhook_schema() -> serde_json::Value {
    serde_json::json!({"type": "object", "required": ["id", "url", "events", "created_at"], "properties": {
        "id": {"type": "string"}, "url": {"type": "string"},
        "events": {"type": "array", "items": {"type": "string", "enum": WebhookEvent::ALL.iter().map(|e| e.as_str()).collect::<Vec<_>>()}},
        "created_at": {"type": "string", "format": "date-time"}}})
}

/// `GET /v1/webhooks`'s documented answer.
pub fn list_responses() -> serde_json::Value {
    serde_json::json!({"200": {"description": "Your webhooks (never their secrets)", "content": {"application/json": {"schema":
        {"type": "object", "required": ["webhooks"], "properties": {"webhooks": {"type": "array", "items": webhook_schema()}}}}}}})
}

/// `DELETE /v1/webhooks/{id}`'s documented answers.
pub fn delete_responses() -> serde_json::Value {
    serde_json::json!({
        "204": {"description": "Deleted, with its deliveries (pending ones are not sent)"},
        "404": {"description": "No webhook of yours has this id", "content": {"application/problem+json": {}}},
    })
}

/// `GET /v1/webhooks/{id}/deliveries`'s documented answers.
pub fn deliveries_responses() -> serde_json::Value {
    let attempt = serde_json::json!({"type": "object", "required": ["at", "duration_ms"], "properties": {
        "at": {"type": "string", "format": "date-time"},
        "status_code": {"type": ["integer", "null"], "description": "the receiver's HTTP status; null when it did not answer"},
        "error": {"type": ["string", "null"]}, "duration_ms": {"type": "integer"}}});
    let delivery = serde_json::json!({"type": "object", "required": ["id", "event", "status", "attempts", "created_at", "attempt_log"],
        "properties": {
            "id": {"type": "string", "description": "the Funnel-Delivery header and the body's id"},
            "event": {"type": "string"}, "status": {"enum": ["pending", "delivered", "failed"]},
            "attempts": {"type": "integer"}, "created_at": {"type": "string", "format": "date-time"},
            "next_attempt_at": {"type": ["string", "null"], "format": "date-time"},
            "last_status_code": {"type": ["integer", "null"]}, "last_error": {"type": ["string", "null"]},
            "attempt_log": {"type": "array", "items": attempt, "description": "newest first, at most 50"}}});
    serde_json::json!({
        "200": {"description": "Deliveries, newest first; pass next_cursor as ?cursor= for the next page",
                "content": {"application/json": {"schema": {"type": "object", "required": ["deliveries", "next_cursor"], "properties": {
                    "deliveries": {"type": "array", "items": delivery}, "next_cursor": {"type": ["string", "null"]}}}}}},
        "404": {"description": "No webhook of yours has this id", "content": {"application/problem+json": {}}},
    })
}

pub async fn create(
    State(state): State<AppState>,
    ProducerCaller(producer): ProducerCaller,
    body: Bytes,
) -> Result<(StatusCode, Json<serde_json::Value>), Problem> {
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
            let mut json = webhook_json(&new.webhook);
            json["secret"] = serde_json::json!(new.secret);
            Ok((StatusCode::CREATED, Json(json)))
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
) -> Result<Json<serde_json::Value>, Problem> {
    let hooks = state.store.webhooks(&producer).await?;
    Ok(Json(serde_json::json!({"webhooks": hooks.iter().map(webhook_json).collect::<Vec<_>>()})))
}

fn not_found(id: &str) -> Problem {
    let shown: String = id.chars().take(64).collect();
    Problem::not_found(format!("no webhook {shown:?} of yours"))
}

pub async fn delete(
    State(state): State<AppState>,
    ProducerCaller(producer): ProducerCaller,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    if state.store.delete_webhook(&producer, &id).await? { Ok(StatusCode::NO_CONTENT) } else { Err(not_found(&id)) }
}

#[derive(Deserialize)]
pub struct DeliveriesQuery {
    cursor: Option<String>,
    limit: Option<i64>,
}

pub async fn deliveries(
    State(state): State<AppState>,
    ProducerCaller(producer): ProducerCaller,
    Path(id): Path<String>,
    Query(q): Query<DeliveriesQuery>,
) -> Result<Json<serde_json::Value>, Problem> {
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
    Ok(Json(serde_json::json!({"deliveries": rows.iter().map(delivery_json).collect::<Vec<_>>(), "next_cursor": next})))
}
