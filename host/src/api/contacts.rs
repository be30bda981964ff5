//! `DELETE /v1/contacts/{email}`: erasure of a person's data for one producer (LGPD / GDPR):
//! their leads, events, messages, timers, runs, timeline and list memberships. The suppression
//! entry stays, so the person is never contacted again.

use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::AppState;
use super::auth::ProducerCaller;
use super::problem::Problem;

pub async fn erase(
    State(state): State<AppState>,
    ProducerCaller(producer): ProducerCaller,
    Path(email): Path<String>,
) -> Result<StatusCode, Problem> {
    let email = crate::domain::EmailAddress::parse(&email).map_err(|e| Problem::field("email", e.to_string()))?;
    state.store.erase_contact(&producer, &email).await?;
    Ok(StatusCode::NO_CONTENT)
}
