//! `POST /v1/admin/producers {"name"}` → 201 `{"id", "api_key"}` (the key is shown once).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;

use super::AppState;
use super::auth::AdminCaller;
use super::problem::{Problem, parse_json};
use crate::domain::text::{NON_BLANK_LINE, required_line_problem};

/// The body of `POST /v1/admin/producers`.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewProducer {
    /// One line, 1 to 200 bytes once trimmed.
    #[schemars(length(min = 1, max = MAX_NAME_BYTES), regex(pattern = NON_BLANK_LINE))]
    name: String,
}

/// The longest producer name, in bytes.
const MAX_NAME_BYTES: usize = 200;

/// `POST /v1/admin/producers`'s answer.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub(super) struct CreatedProducer {
    pub id: String,
    pub name: String,
    /// The producer's API key, shown this once (the server keeps only its digest).
    pub api_key: String,
}

pub(super) async fn create(
    State(state): State<AppState>,
    _: AdminCaller,
    body: Bytes,
) -> Result<(StatusCode, Json<CreatedProducer>), Problem> {
    let input: NewProducer = parse_json(&body)?;
    let name = input.name.trim();
    if let Some(problem) = required_line_problem(name, MAX_NAME_BYTES) {
        return Err(Problem::field("name", problem));
    }
    let created = state.store.create_producer(name, state.clock.now_ms()).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedProducer { id: created.id, name: name.to_string(), api_key: created.api_key }),
    ))
}
