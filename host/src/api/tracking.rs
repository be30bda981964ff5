//! Public routes behind the links in messages: `GET /r/{token}` records a click and redirects
//! to the checkout; `GET /u/{token}` shows a confirmation page and `POST /u/{token}`
//! unsubscribes at once (RFC 8058 one-click). Tokens are 128 random bits and reveal nothing;
//! an unknown token gets a plain 404.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use super::AppState;
use super::problem::{Path, Problem};

/// The path of a tracked link: its token (any other value is unknown: 404).
#[derive(Deserialize, schemars::JsonSchema)]
pub(super) struct TokenPath {
    #[schemars(regex(pattern = super::ID_PATTERN))]
    token: String,
}

fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>{title}</title></head><body style=\"font-family:sans-serif;max-width:32em;margin:3em auto\">{body}</body></html>"
    ))
}

pub(super) async fn click(
    State(state): State<AppState>,
    Path(TokenPath { token }): Path<TokenPath>,
) -> Result<Response, Problem> {
    let message = state.store.message_by_token(&token).await?.ok_or_else(|| Problem::not_found("unknown link"))?;
    state.store.record_click(&message.message_id, state.clock.now_ms()).await?;
    state.work.notify_one();
    let target = message.checkout_url.unwrap_or_else(|| "/".into());
    Ok((StatusCode::FOUND, [(header::LOCATION, target)]).into_response())
}

pub(super) async fn unsubscribe_page(
    State(state): State<AppState>,
    Path(TokenPath { token }): Path<TokenPath>,
) -> Result<Html<String>, Problem> {
    state.store.message_by_token(&token).await?.ok_or_else(|| Problem::not_found("unknown link"))?;
    Ok(page(
        "Unsubscribe",
        &format!(
            "<h1>Unsubscribe</h1><p>You will receive no more messages about this purchase from this shop.</p>\
             <form method=\"post\" action=\"/u/{token}\"><button type=\"submit\">Unsubscribe</button></form>"
        ),
    ))
}

pub(super) async fn unsubscribe(
    State(state): State<AppState>,
    Path(TokenPath { token }): Path<TokenPath>,
) -> Result<Html<String>, Problem> {
    let message = state.store.message_by_token(&token).await?.ok_or_else(|| Problem::not_found("unknown link"))?;
    state.store.unsubscribe_lead(&message.lead_id, state.clock.now_ms()).await?;
    state.work.notify_one();
    Ok(page("Unsubscribed", "<h1>You are unsubscribed</h1><p>You will receive no more messages from this shop.</p>"))
}
