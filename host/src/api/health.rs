//! `GET /healthz`: liveness (and that the database answers).

use axum::Json;
use axum::extract::State;

use super::AppState;
use super::problem::Problem;

pub async fn healthz(State(state): State<AppState>) -> Result<Json<serde_json::Value>, Problem> {
    let timers = state.store.pending_timers().await?;
    Ok(Json(serde_json::json!({"status": "ok", "pending_timers": timers})))
}
