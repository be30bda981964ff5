//! `POST /v1/plugins?name=&version=` (the body is the component's bytes) and `GET /v1/plugins`.
//! An upload is validated before it is stored (size cap, a component of the `funnel` world,
//! `describe()` within limits); refusals are 422 with a reason a person can act on.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;

use super::AppState;
use super::auth::require_producer;
use super::problem::Problem;
use crate::runtime::wit::capability_name;
use crate::store::plugins::StoredPlugin;

#[derive(Deserialize)]
pub struct UploadQuery {
    name: Option<String>,
    version: Option<String>,
}

pub async fn upload(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<UploadQuery>,
    body: Bytes,
) -> Result<(StatusCode, Json<serde_json::Value>), Problem> {
    let producer = require_producer(&state, &headers).await?;
    let stored = store_upload(&state, &producer, q.name, q.version, body).await?;
    Ok((StatusCode::CREATED, Json(serde_json::to_value(&stored).map_err(Problem::internal)?)))
}

/// Validate an uploaded component and store it for a producer (the API's upload and the
/// console's use this one function, so both refuse the same things with the same words).
pub async fn store_upload(
    state: &AppState,
    producer: &str,
    name: Option<String>,
    version: Option<String>,
    body: Bytes,
) -> Result<StoredPlugin, Problem> {
    let runtime = state.plugins.runtime().clone();
    let bytes = body.clone();
    // Within the checks' share of the instance pool, never the dispatcher's.
    let _slot = state.plugins.validation_slot().await;
    let plugin = tokio::task::spawn_blocking(move || runtime.validate_upload(&bytes))
        .await
        .map_err(Problem::internal)?
        .map_err(|e| Problem::field("body", e.to_string()))?;
    let name = name.unwrap_or_else(|| plugin.info.name.clone());
    let version = version.unwrap_or_else(|| plugin.info.version.clone());
    if crate::guests::builtin(&name).is_some() {
        return Err(Problem::field("name", format!("{name:?} is a built-in plugin's name: pick another")));
    }
    if name != plugin.info.name {
        return Err(Problem::field("name", format!("the component calls itself {:?}, not {name:?}", plugin.info.name)));
    }
    let capabilities: Vec<&str> = plugin.info.capabilities.iter().map(|c| capability_name(*c)).collect();
    let info = serde_json::json!({"description": plugin.info.description, "capabilities": capabilities});
    let stored = StoredPlugin { name, version, sha256: plugin.sha256.clone(), info };
    state.store.put_plugin(producer, &stored, &body, state.clock.now_ms()).await?;
    Ok(stored)
}

pub async fn list(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<serde_json::Value>, Problem> {
    let producer = require_producer(&state, &headers).await?;
    let builtins: Vec<serde_json::Value> =
        crate::guests::builtin_names().map(|n| serde_json::json!({"name": n, "builtin": true})).collect();
    Ok(Json(serde_json::json!({"plugins": state.store.plugins(&producer).await?, "builtin": builtins})))
}
