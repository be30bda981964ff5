//! `POST /v1/admin/producers {"name"}` → 201 `{"id", "api_key"}` (the key is shown once).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;

use super::AppState;
use super::auth::AdminCaller;
use super::problem::{Problem, parse_json};

/// The body of `POST /v1/admin/producers`.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProducer {
    name: String,
}

/// `POST /v1/admin/producers`'s answer.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct CreatedProducer {
    pub id: String,
    pub name: String,
    /// The producer's API key, shown this once (the server keeps only its digest).
    pub api_key: String,
}

pub async fn create(
    State(state): State<AppState>,
    _: AdminCaller,
    body: Bytes,
) -> Result<(StatusCode, Json<CreatedProducer>), Problem> {
    let input: NewProducer = parse_json(&body)?;
    let name = input.name.trim();
    if name.is_empty() || name.len() > 200 {
        return Err(Problem::field("name", "must be 1 to 200 characters"));
    }
    if let Some(problem) = crate::domain::text::single_line_problem(name) {
        return Err(Problem::field("name", problem));
    }
    let created = state.store.create_producer(name, state.clock.now_ms()).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedProducer { id: created.id, name: name.to_string(), api_key: created.api_key }),
    ))
}
