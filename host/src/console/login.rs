//! Sign-in with an API key (the form's password field is `api_key`), sign-out, and sign-out
//! everywhere. The sign-in form has no session yet, so its CSRF token is checked against a
//! cookie set with the form (double submit).

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::ConsoleState;
use super::i18n::Lang;
use super::page::{Chrome, render};
use super::session::{LOGIN_CSRF_COOKIE, Refusal, SignedForm, cookie, cookie_name, form_fields, same, set_cookie};
use crate::store::new_token;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    c: Chrome,
    csrf: String,
    error: Option<String>,
    signed_out: bool,
}

#[derive(Deserialize)]
pub(super) struct LoginQuery {
    #[serde(default)]
    signed_out: Option<String>,
}

/// The form, with a fresh double-submit token in a cookie and a hidden field.
fn login_page(
    state: &ConsoleState,
    lang: Lang,
    status: StatusCode,
    error: Option<String>,
    signed_out: bool,
) -> Response {
    let csrf = new_token();
    let page =
        LoginPage { c: Chrome::anonymous(lang, lang.strings().sign_in_title), csrf: csrf.clone(), error, signed_out };
    let mut response = render(status, &page);
    let (name, value) = set_cookie(state, LOGIN_CSRF_COOKIE, Some(&csrf));
    response.headers_mut().append(name, value);
    response
}

pub(super) async fn form(State(state): State<ConsoleState>, lang: Lang, Query(q): Query<LoginQuery>) -> Response {
    login_page(&state, lang, StatusCode::OK, None, q.signed_out.is_some())
}

pub(super) async fn sign_in(
    State(state): State<ConsoleState>,
    lang: Lang,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let t = lang.strings();
    let fields = form_fields(&body);
    let expected = cookie(&headers, LOGIN_CSRF_COOKIE);
    let given = fields.get("csrf").map(String::as_str);
    if !matches!((expected, given), (Some(a), Some(b)) if same(a, b)) {
        return Refusal::Forged(lang).into_response();
    }
    let key = fields.get("api_key").map(|k| k.trim()).unwrap_or("");
    if key.is_empty() {
        return login_page(&state, lang, StatusCode::UNPROCESSABLE_ENTITY, Some(t.api_key_missing.into()), false);
    }
    let producer = match state.app.store.producer_by_key(key).await {
        Ok(Some(producer)) => producer,
        Ok(None) => {
            return login_page(&state, lang, StatusCode::UNAUTHORIZED, Some(t.api_key_wrong.into()), false);
        }
        Err(e) => {
            tracing::error!(error = %e, "console sign-in failed");
            return Refusal::Internal(lang).into_response();
        }
    };
    let now = state.app.clock.now_ms();
    match state.app.store.create_session(&producer, state.sessions, now).await {
        Ok(session) => {
            let mut response = Redirect::to("/console/leads").into_response();
            let (name, value) = set_cookie(&state, cookie_name(&state), Some(&session.token));
            response.headers_mut().append(name, value);
            let (name, value) = set_cookie(&state, LOGIN_CSRF_COOKIE, None);
            response.headers_mut().append(name, value);
            response
        }
        Err(e) => {
            tracing::error!(error = %e, "console session could not be stored");
            Refusal::Internal(lang).into_response()
        }
    }
}

/// End this session, or with `everywhere` every session of the producer.
pub(super) async fn sign_out(State(state): State<ConsoleState>, headers: HeaderMap, form: SignedForm) -> Response {
    let lang = form.signed.lang;
    let ended = if form.get("everywhere").is_some() {
        state.app.store.end_producer_sessions(form.signed.producer()).await.map(|_| ())
    } else {
        match cookie(&headers, cookie_name(&state)) {
            Some(token) => state.app.store.end_session(token).await,
            None => Ok(()),
        }
    };
    if let Err(e) = ended {
        tracing::error!(error = %e, "console sign-out failed");
        return Refusal::Internal(lang).into_response();
    }
    let mut response = Redirect::to("/console/login?signed_out=1").into_response();
    let (name, value) = set_cookie(&state, cookie_name(&state), None);
    response.headers_mut().append(name, value);
    response
}
