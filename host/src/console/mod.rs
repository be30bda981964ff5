//! The producers' console: web pages served by `funnel serve` under `/console/` (`GET /`
//! redirects there). Pages are rendered on the server from askama templates (checked when the
//! crate compiles), every asset is embedded in the binary, and everything reads with
//! JavaScript off; the one small script only hides unused form parts.
//!
//! A producer signs in with their API key and then holds a server-side session
//! ([`session`]); every state-changing form carries the session's CSRF token. Pages read
//! through the store's producer-scoped reads and change things through the same functions as
//! the API (`api::bindings::save`, `api::plugins::store_upload`, `sim::run`), so a producer
//! sees and may do exactly what the API lets them. Nothing here is on the event path.
//!
//! ## Layout
//! - [`session`]: sign-in sessions as cookies, the signed-in extractor, CSRF checks on forms.
//! - [`i18n`]: the string catalogs (English, Brazilian Portuguese) and the choice between them.
//! - [`page`]: what every page shares (header, navigation, formats of dates and money).
//! - [`assets`]: the stylesheet and script, embedded.
//! - `login`, `leads` (report and CSV), `lead` (timeline and email previews), `strategy`
//!   (bindings, the four-emails form, the flow editor, other plugins' JSON), `simulate`,
//!   `plugins`, `stats`, `webhooks` (endpoints and their recent deliveries): the pages.
//! - [`flow_graph`]: a flow config drawn as SVG; [`charts`]: the stats' SVG charts.

pub(crate) mod assets;
pub(crate) mod charts;
pub(crate) mod flow_graph;
pub(crate) mod i18n;
mod lead;
mod leads;
mod login;
pub(crate) mod page;
mod plugins;
pub(crate) mod session;
mod simulate;
mod stats;
mod strategy;
mod webhooks;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::Redirect;
use axum::routing::{get, post};
use tokio::sync::Semaphore;

use crate::api::AppState;
use crate::store::sessions::SessionPolicy;

/// What the console's handlers reach: the API's state plus the console's own settings.
#[derive(Clone)]
pub struct ConsoleState {
    pub app: AppState,
    /// Mark cookies `Secure` (the public URL is https).
    pub secure_cookies: bool,
    pub sessions: SessionPolicy,
    /// Simulations run on blocking threads, a few at a time, so "Try it" cannot crowd out
    /// the engine.
    pub simulations: Arc<Semaphore>,
}

impl ConsoleState {
    /// The console over `app`; cookies are `Secure` when `public_url` is https.
    pub fn new(app: AppState, public_url: &str) -> Self {
        ConsoleState {
            app,
            secure_cookies: public_url.starts_with("https://"),
            sessions: SessionPolicy::default(),
            simulations: Arc::new(Semaphore::new(2)),
        }
    }
}

/// Every console route, and `GET /` sending browsers to the console.
pub fn router(state: ConsoleState) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/console/") }))
        .route("/console", get(|| async { Redirect::to("/console/") }))
        .route("/console/", get(|| async { Redirect::to("/console/leads") }))
        .route("/console/assets/{name}", get(assets::serve))
        .route("/console/login", get(login::form).post(login::sign_in))
        .route("/console/logout", post(login::sign_out))
        .route("/console/leads", get(leads::report))
        .route("/console/leads.csv", get(leads::csv))
        .route("/console/leads/{id}", get(lead::timeline))
        .route("/console/leads/{id}/messages/{message}/preview", get(lead::preview))
        .route("/console/strategy", get(strategy::list))
        .route("/console/strategy/edit", get(strategy::edit))
        .route("/console/strategy/save", post(strategy::submit))
        .route("/console/strategy/toggle", post(strategy::toggle))
        .route("/console/simulate", get(simulate::form).post(simulate::run))
        .route(
            "/console/plugins",
            get(plugins::list).post(plugins::upload).layer(DefaultBodyLimit::max(crate::api::PLUGIN_LIMIT + 64 * 1024)),
        )
        .route("/console/stats", get(stats::page))
        .route("/console/webhooks", get(webhooks::page))
        .layer(axum::middleware::from_fn(crate::api::refuse_control_characters))
        .with_state(state)
}
