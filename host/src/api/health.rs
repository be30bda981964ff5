//! `GET /healthz`: liveness (and that the database answers); `GET /metrics`: Prometheus text.

use axum::Json;
use axum::extract::State;

use super::AppState;
use super::problem::Problem;

/// `GET /healthz`'s answer.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub(super) struct Health {
    /// Always `ok` (a database that does not answer is a 500).
    pub status: &'static str,
    /// Durable timers not yet fired.
    pub pending_timers: i64,
}

pub(super) async fn healthz(State(state): State<AppState>) -> Result<Json<Health>, Problem> {
    let pending_timers = state.store.pending_timers().await?;
    Ok(Json(Health { status: "ok", pending_timers }))
}

/// `GET /metrics`: Prometheus text.
pub(super) async fn metrics(
    State(state): State<AppState>,
) -> Result<([(axum::http::HeaderName, &'static str); 1], String), Problem> {
    let gauges = [
        ("funnel_outbox_depth", "Messages waiting to be sent", state.store.outbox_depth().await?),
        ("funnel_timers_pending", "Durable timers not yet due or not yet fired", state.store.pending_timers().await?),
    ];
    Ok(([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], crate::metrics::render(&gauges)))
}
