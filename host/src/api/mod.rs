//! The HTTP API (axum): one file per resource. It authenticates, checks bodies and sizes, and
//! calls the store and the plugin registry; it never touches wasmtime directly (plugin calls go
//! through [`crate::dispatch::plugins`]).
//!
//! ## Layout
//! - [`problem`]: RFC 9457 problem+json errors with a field-level `errors` list.
//! - [`auth`]: admin token, producer API keys, platform bearer token or `Funnel-Signature` HMAC.
//! - `producers`, `bindings`, `coupons`, `events`, `leads`, `stats`, `lists`, `plugins`,
//!   `contacts` (erasure), `health`: the routes.
//! - `tracking`: the public click and unsubscribe links.

pub mod auth;
mod bindings;
mod contacts;
mod coupons;
mod events;
mod health;
mod leads;
mod lists;
mod plugins;
pub mod problem;
mod producers;
mod stats;
mod tracking;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post, put};
use tokio::sync::Notify;

use crate::clock::Clock;
use crate::dispatch::plugins::PluginRegistry;
use crate::store::Store;

/// Secrets the API checks requests against.
#[derive(Clone, Debug)]
pub struct Secrets {
    pub admin_token: String,
    pub platform_token: String,
    pub platform_secret: String,
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub plugins: Arc<PluginRegistry>,
    pub clock: Arc<dyn Clock>,
    pub secrets: Arc<Secrets>,
    /// Woken when new work is stored, so the engine loop does not wait for its next tick.
    pub work: Arc<Notify>,
}

/// Largest request body (a batch of 1000 events fits; plugin uploads have their own route).
const BODY_LIMIT: usize = 4 * 1024 * 1024;

/// Largest plugin upload (Python and JS components are 12 to 18 MB).
const PLUGIN_LIMIT: usize = 32 * 1024 * 1024;

/// The router with every route.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(health::metrics))
        .route("/v1/admin/producers", post(producers::create))
        .route("/v1/bindings", put(bindings::put).get(bindings::list))
        .route("/v1/coupons", post(coupons::create))
        .route("/v1/events", post(events::one))
        .route("/v1/events/batch", post(events::batch))
        .route("/v1/leads", get(leads::list))
        .route("/v1/leads/{id}", get(leads::one))
        .route("/v1/stats", get(stats::stats))
        .route("/v1/lists", get(lists::list))
        .route("/v1/lists/{name}/members", get(lists::members))
        .route("/v1/contacts/{email}", delete(contacts::erase))
        .route("/v1/plugins", post(plugins::upload).get(plugins::list).layer(DefaultBodyLimit::max(PLUGIN_LIMIT)))
        .route("/r/{token}", get(tracking::click))
        .route("/u/{token}", get(tracking::unsubscribe_page).post(tracking::unsubscribe))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}
