//! `DELETE /v1/contacts/{email}`: erasure of a person's data for one producer (LGPD / GDPR):
//! their leads, events, messages, timers, runs, timeline and list memberships. The suppression
//! entry stays, so the person is never contacted again.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;

use super::AppState;
use super::auth::ProducerCaller;
use super::problem::{Path, Problem};

/// `DELETE /v1/contacts/{email}`'s path.
#[derive(Deserialize, schemars::JsonSchema)]
pub(super) struct ContactPath {
    /// The person's address (any case: it is normalized as it is read).
    #[schemars(extend("format" = "email"), length(max = crate::domain::email::MAX_BYTES))]
    email: String,
}

pub(super) async fn erase(
    State(state): State<AppState>,
    ProducerCaller(producer): ProducerCaller,
    Path(ContactPath { email }): Path<ContactPath>,
) -> Result<StatusCode, Problem> {
    let email = crate::domain::EmailAddress::parse(&email).map_err(|e| Problem::field("email", e.to_string()))?;
    state.store.erase_contact(&producer, &email).await?;
    Ok(StatusCode::NO_CONTENT)
}
