//! `GET /v1/leads` ("my leads", newest first, with a cursor) and `GET /v1/leads/{id}` (with the
//! lead's timeline). A producer sees only its own leads.

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Deserialize;

use super::AppState;
use super::auth::ProducerCaller;
use super::problem::Problem;
use crate::store::leads::LeadSummary;

#[derive(Deserialize)]
pub struct ListQuery {
    cursor: Option<String>,
    limit: Option<i64>,
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

fn lead_json(lead: &LeadSummary) -> serde_json::Value {
    serde_json::json!({
        "id": lead.id, "email": lead.email, "status": lead.status, "product_id": lead.product_id, "plan_id": lead.plan_id,
        "value": lead.price_cents.map(|c| serde_json::json!({"amount_cents": c, "currency": lead.currency})),
        "captured_at": rfc3339(lead.captured_at),
        "messages": lead.messages.iter().map(|m| serde_json::json!({
            "id": m.id, "tag": m.tag, "channel": m.channel, "kind": m.kind, "status": m.status,
            "queued_at": rfc3339(m.queued_at), "clicked": m.clicked, "opened": m.opened,
        })).collect::<Vec<_>>(),
    })
}

pub async fn list(
    State(state): State<AppState>,
    ProducerCaller(producer): ProducerCaller,
    Query(q): Query<ListQuery>,
) -> Result<Json<serde_json::Value>, Problem> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(Problem::field("limit", format!("must be 1 to 500 (got {limit})")));
    }
    let after = match &q.cursor {
        None => None,
        Some(c) => Some(
            c.split_once('.')
                .and_then(|(at, id)| Some((at.parse::<i64>().ok()?, id.to_string())))
                .ok_or_else(|| Problem::field("cursor", "use the next_cursor of the previous page"))?,
        ),
    };
    let leads = state.store.list_leads(&producer, after, limit).await?;
    let next =
        if leads.len() as i64 == limit { leads.last().map(|l| format!("{}.{}", l.captured_at, l.id)) } else { None };
    Ok(Json(serde_json::json!({"leads": leads.iter().map(lead_json).collect::<Vec<_>>(), "next_cursor": next})))
}

pub async fn one(
    State(state): State<AppState>,
    ProducerCaller(producer): ProducerCaller,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, Problem> {
    let lead = state
        .store
        .lead_summary(&producer, &id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no lead {id:?} of yours")))?;
    let timeline: Vec<serde_json::Value> = state
        .store
        .timeline(&id, 0)
        .await?
        .into_iter()
        .map(|e| serde_json::json!({"at": rfc3339(e.at), "kind": e.kind, "detail": e.detail}))
        .collect();
    let mut body = lead_json(&lead);
    body["timeline"] = serde_json::Value::Array(timeline);
    Ok(Json(body))
}
