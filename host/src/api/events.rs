//! `POST /v1/events` and `POST /v1/events/batch` (up to 1000): the platform's lead events.
//! Every event is checked before anything is stored; a batch with one bad event stores none
//! and names each bad field (`events[3].checkout.email`). A good batch is stored in one
//! transaction, all or nothing, and answers per event. A known event id answers `duplicate`
//! and changes nothing.

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;

use super::AppState;
use super::auth::PlatformCaller;
use super::problem::{FieldError, Problem, parse_json};
use crate::domain::event::SINGLE_LINE;
use crate::domain::text::single_line_problem;
use crate::domain::{Checkout, PlatformEvent, PlatformEventType};
use crate::store::ingest::IngestOutcome;

/// Most events in one batch.
pub const MAX_BATCH: usize = 1000;

/// The largest price: a billion in major units (10^11 cents). Sums of such prices stay exact
/// far beyond any real producer's volume (see `store::stats`).
pub const MAX_AMOUNT_CENTS: i64 = 100_000_000_000;

/// A platform event (the body of `POST /v1/events`).
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventBody {
    /// The platform's id of the event: a second event with this id is a duplicate.
    #[schemars(length(min = 1, max = 200), regex(pattern = SINGLE_LINE))]
    id: String,
    #[serde(rename = "type")]
    kind: PlatformEventType,
    /// RFC 3339, e.g. 2026-01-31T12:00:00Z.
    #[schemars(extend("format" = "date-time"))]
    occurred_at: String,
    #[schemars(length(min = 1, max = 200), regex(pattern = SINGLE_LINE))]
    producer_id: String,
    checkout: Checkout,
}

/// Up to 1000 events (the body of `POST /v1/events/batch`).
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchBody {
    #[schemars(length(min = 1, max = 1000))]
    events: Vec<EventBody>,
}

/// Check one event; `prefix` is its path in the body.
fn check(body: EventBody, prefix: &str, errors: &mut Vec<FieldError>) -> Option<PlatformEvent> {
    let mut push = |path: &str, message: String| errors.push(FieldError { path: format!("{prefix}{path}"), message });
    if body.id.trim().is_empty() || body.id.len() > 200 {
        push("id", "must be 1 to 200 characters".into());
    }
    let occurred = chrono::DateTime::parse_from_rfc3339(&body.occurred_at);
    if occurred.is_err() {
        push("occurred_at", format!("{:?} is not an RFC 3339 time like 2026-01-31T12:00:00Z", body.occurred_at));
    }
    if body.producer_id.trim().is_empty() {
        push("producer_id", "must not be empty".into());
    }
    let c = &body.checkout;
    if c.id.trim().is_empty() || c.id.len() > 200 {
        push("checkout.id", "must be 1 to 200 characters".into());
    }
    // checkout.email was checked and normalized as it was read (domain::EmailAddress).
    if let Some(price) = &c.price {
        if !(0..=MAX_AMOUNT_CENTS).contains(&price.amount_cents) {
            push(
                "checkout.price.amount_cents",
                format!("must be 0 to {MAX_AMOUNT_CENTS} (got {})", price.amount_cents),
            );
        }
        if price.currency.len() != 3 || !price.currency.chars().all(|ch| ch.is_ascii_uppercase()) {
            push("checkout.price.currency", format!("{:?} is not an ISO 4217 code like BRL", price.currency));
        }
    }
    if let Some(url) = &c.url
        && !(url.starts_with("https://") || url.starts_with("http://"))
    {
        push("checkout.url", "must be an http(s) URL".into());
    }
    // Every text field is one line of bounded size: none takes a control character.
    let fields = [
        ("id", Some(&body.id), 200),
        ("producer_id", Some(&body.producer_id), 200),
        ("checkout.id", Some(&c.id), 200),
        ("checkout.name", c.name.as_ref(), 200),
        ("checkout.phone", c.phone.as_ref(), 32),
        ("checkout.product_id", c.product_id.as_ref(), 200),
        ("checkout.plan_id", c.plan_id.as_ref(), 200),
        ("checkout.url", c.url.as_ref(), 2048),
    ];
    for (path, value, max) in fields {
        let Some(value) = value else { continue };
        if let Some(problem) = single_line_problem(value) {
            push(path, problem);
        } else if value.len() > max {
            push(path, format!("must be at most {max} bytes (got {})", value.len()));
        }
    }
    let occurred_at_ms = occurred.ok()?.timestamp_millis();
    Some(PlatformEvent {
        id: body.id,
        kind: body.kind,
        occurred_at_ms,
        producer_id: body.producer_id,
        checkout: body.checkout,
    })
}

async fn known_producers(
    state: &AppState,
    events: &[PlatformEvent],
    prefix: impl Fn(usize) -> String,
) -> Result<(), Problem> {
    let mut errors = Vec::new();
    // A batch usually comes from one producer: ask the store once per producer, not per event.
    let mut known: HashMap<&str, bool> = HashMap::new();
    for (i, e) in events.iter().enumerate() {
        let exists = match known.get(e.producer_id.as_str()) {
            Some(exists) => *exists,
            None => {
                let exists = state.store.producer_exists(&e.producer_id).await?;
                known.insert(&e.producer_id, exists);
                exists
            }
        };
        if !exists {
            errors.push(FieldError {
                path: format!("{}producer_id", prefix(i)),
                message: format!("unknown producer {:?}", e.producer_id),
            });
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(Problem::invalid("unknown producer", errors)) }
}

/// What became of one posted event.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct EventAnswer {
    pub status: EventStatus,
    /// The lead the event belongs to; null while no event of the checkout carried an email.
    pub lead_id: Option<String>,
}

#[derive(serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum EventStatus {
    /// Stored now; it will be handled.
    Accepted,
    /// An event with this id was stored before; nothing changed.
    Duplicate,
}

/// `POST /v1/events/batch`'s answer: one entry per event, in the order sent.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct BatchAnswer {
    pub results: Vec<EventAnswer>,
}

fn answer(outcome: IngestOutcome) -> EventAnswer {
    match outcome {
        IngestOutcome::Accepted { lead_id } => {
            crate::metrics::EVENTS_ACCEPTED.inc();
            EventAnswer { status: EventStatus::Accepted, lead_id }
        }
        IngestOutcome::Duplicate { lead_id } => {
            crate::metrics::EVENTS_DUPLICATE.inc();
            EventAnswer { status: EventStatus::Duplicate, lead_id }
        }
    }
}

pub async fn one(
    State(state): State<AppState>,
    _: PlatformCaller,
    body: Bytes,
) -> Result<(StatusCode, Json<EventAnswer>), Problem> {
    let now = state.clock.now_ms();
    let parsed: EventBody = parse_json(&body)?;
    let mut errors = Vec::new();
    let event = check(parsed, "", &mut errors);
    let event = match event {
        Some(event) if errors.is_empty() => event,
        _ => return Err(Problem::invalid("the event is not valid", errors)),
    };
    known_producers(&state, std::slice::from_ref(&event), |_| String::new()).await?;
    // Concurrent requests share a commit; each is answered once its own event is durable.
    let outcome = state.store.ingest_grouped(&event, now).await?;
    state.work.notify_one();
    Ok((StatusCode::ACCEPTED, Json(answer(outcome))))
}

pub async fn batch(
    State(state): State<AppState>,
    _: PlatformCaller,
    body: Bytes,
) -> Result<(StatusCode, Json<BatchAnswer>), Problem> {
    let now = state.clock.now_ms();
    let parsed: BatchBody = parse_json(&body)?;
    if parsed.events.is_empty() || parsed.events.len() > MAX_BATCH {
        return Err(Problem::field("events", format!("send 1 to {MAX_BATCH} events (got {})", parsed.events.len())));
    }
    let mut errors = Vec::new();
    let mut events = Vec::with_capacity(parsed.events.len());
    for (i, body) in parsed.events.into_iter().enumerate() {
        if let Some(event) = check(body, &format!("events[{i}]."), &mut errors) {
            events.push(event);
        }
    }
    if !errors.is_empty() {
        return Err(Problem::invalid("some events are not valid; none was stored", errors));
    }
    known_producers(&state, &events, |i| format!("events[{i}].")).await?;
    // One transaction for the batch: one commit instead of one per event.
    let outcomes = state.store.ingest_batch(&events, now).await?;
    let results: Vec<_> = outcomes.into_iter().map(answer).collect();
    state.work.notify_one();
    Ok((StatusCode::ACCEPTED, Json(BatchAnswer { results })))
}
