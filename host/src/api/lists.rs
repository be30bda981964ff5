//! `GET /v1/lists` (names and sizes) and `GET /v1/lists/{name}/members`.

use axum::Json;
use axum::extract::{Path, State};

use super::AppState;
use super::auth::ProducerCaller;
use super::problem::Problem;

pub async fn list(
    State(state): State<AppState>,
    ProducerCaller(producer): ProducerCaller,
) -> Result<Json<serde_json::Value>, Problem> {
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
    ProducerCaller(producer): ProducerCaller,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>, Problem> {
    let members: Vec<serde_json::Value> = state
        .store
        .list_members(&producer, &name)
        .await?
        .into_iter()
        .map(|(email, lead_id)| serde_json::json!({"email": email, "lead_id": lead_id}))
        .collect();
    Ok(Json(serde_json::json!({"name": name, "members": members})))
}
