//! `GET /v1/lists` (names and sizes) and `GET /v1/lists/{name}/members`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;

use super::AppState;
use super::auth::require_producer;
use super::problem::Problem;

pub async fn list(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<serde_json::Value>, Problem> {
    let producer = require_producer(&state, &headers).await?;
    let lists: Vec<serde_json::Value> = state
        .store
        .lists(&producer)
        .await?
        .into_iter()
        .map(|(name, members)| serde_json::json!({"name": name, "members": members}))
        .collect();
    Ok(Json(serde_json::json!({ "lists": lists })))
}

pub async fn members(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>, Problem> {
    let producer = require_producer(&state, &headers).await?;
    let members: Vec<serde_json::Value> = state
        .store
        .list_members(&producer, &name)
        .await?
        .into_iter()
        .map(|(email, lead_id)| serde_json::json!({"email": email, "lead_id": lead_id}))
        .collect();
    Ok(Json(serde_json::json!({"name": name, "members": members})))
}
