//! `GET /v1/stats`: leads, recovered count and revenue, and per message tag sends, clicks and
//! recoveries.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;

use super::AppState;
use super::auth::require_producer;
use super::problem::Problem;

pub async fn stats(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<serde_json::Value>, Problem> {
    let producer = require_producer(&state, &headers).await?;
    let stats = state.store.stats(&producer).await?;
    Ok(Json(serde_json::to_value(stats).map_err(Problem::internal)?))
}
