//! Who is signed in, and whether a form is genuine.
//!
//! The session cookie holds a random token (the store keeps only its hash) and is `HttpOnly`,
//! `SameSite=Strict`, `Path=/console`, and `Secure` (with the `__Host-` name prefix) when the
//! public URL is https. [`Signed`] is the extractor of every signed-in page: without a live
//! session it answers with a redirect to the sign-in form. [`SignedForm`] also reads a
//! url-encoded body and refuses it (403) unless its `csrf` field is the session's token; the
//! sign-in form, which has no session yet, carries a token that must match a cookie set with
//! the form (double submit).

use std::collections::HashMap;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

use super::ConsoleState;
use super::i18n::Lang;
use super::page::error_page;
use crate::store::sessions::Session;

const SESSION_COOKIE: &str = "funnel_session";
const SECURE_SESSION_COOKIE: &str = "__Host-funnel_session";
pub(crate) const LOGIN_CSRF_COOKIE: &str = "funnel_login_csrf";

/// Largest url-encoded form (a flow config of many steps fits with room).
const FORM_LIMIT: usize = 2 * 1024 * 1024;

/// A signed-in producer.
#[derive(Clone, Debug)]
pub(crate) struct Signed {
    pub session: Session,
    pub lang: Lang,
}

impl Signed {
    pub(crate) fn producer(&self) -> &str {
        &self.session.producer_id
    }
}

/// The name of the session cookie under these settings.
pub(crate) fn cookie_name(state: &ConsoleState) -> &'static str {
    if state.secure_cookies { SECURE_SESSION_COOKIE } else { SESSION_COOKIE }
}

/// A cookie's value from the request.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// `Set-Cookie` for a console cookie; `None` clears it.
pub(crate) fn set_cookie(
    state: &ConsoleState,
    name: &str,
    value: Option<&str>,
) -> (axum::http::HeaderName, HeaderValue) {
    // `__Host-` cookies must have Path=/; the others stay within the console.
    let path = if name.starts_with("__Host-") { "/" } else { "/console" };
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    let text = match value {
        Some(v) => format!("{name}={v}; Path={path}; HttpOnly; SameSite=Strict{secure}"),
        None => format!("{name}=; Path={path}; HttpOnly; SameSite=Strict{secure}; Max-Age=0"),
    };
    (SET_COOKIE, HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("")))
}

/// Constant-time comparison: a token cannot be found byte by byte from timings.
pub(crate) fn same(a: &str, b: &str) -> bool {
    subtle::ConstantTimeEq::ct_eq(a.as_bytes(), b.as_bytes()).into()
}

/// Why a console request was refused.
pub(crate) enum Refusal {
    /// No live session: go and sign in.
    SignIn,
    /// The form's CSRF token is missing or wrong.
    Forged(Lang),
    /// The form could not be read.
    BadForm(Lang, String),
    /// The store failed.
    Internal(Lang),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::SignIn => Redirect::to("/console/login").into_response(),
            Refusal::Forged(lang) => {
                error_page(lang, StatusCode::FORBIDDEN, lang.strings().csrf_refused.to_string()).into_response()
            }
            Refusal::BadForm(lang, why) => error_page(lang, StatusCode::BAD_REQUEST, why).into_response(),
            Refusal::Internal(lang) => {
                error_page(lang, StatusCode::INTERNAL_SERVER_ERROR, lang.strings().internal_error.to_string())
                    .into_response()
            }
        }
    }
}

impl FromRequestParts<ConsoleState> for Lang {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &ConsoleState) -> Result<Self, Self::Rejection> {
        Ok(Lang::from_headers(&parts.headers))
    }
}

impl FromRequestParts<ConsoleState> for Signed {
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, state: &ConsoleState) -> Result<Self, Self::Rejection> {
        let lang = Lang::from_headers(&parts.headers);
        let token = cookie(&parts.headers, cookie_name(state)).ok_or(Refusal::SignIn)?;
        let now = state.app.clock.now_ms();
        match state.app.store.session(token, state.sessions, now).await {
            Ok(Some(session)) => Ok(Signed { session, lang }),
            Ok(None) => Err(Refusal::SignIn),
            Err(e) => {
                tracing::error!(error = %e, "console session lookup failed");
                Err(Refusal::Internal(lang))
            }
        }
    }
}

/// The fields of a url-encoded form (the last value of a repeated name wins).
pub(crate) fn form_fields(body: &[u8]) -> HashMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

/// A signed-in producer's form whose CSRF token checked out.
pub(crate) struct SignedForm {
    pub signed: Signed,
    pub fields: HashMap<String, String>,
}

impl SignedForm {
    /// A field, trimmed; empty counts as absent.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    /// A field as typed (not trimmed), empty when absent.
    pub(crate) fn raw(&self, name: &str) -> &str {
        self.fields.get(name).map(String::as_str).unwrap_or("")
    }
}

impl FromRequest<ConsoleState> for SignedForm {
    type Rejection = Refusal;

    async fn from_request(req: Request, state: &ConsoleState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let signed = Signed::from_request_parts(&mut parts, state).await?;
        let lang = signed.lang;
        let bytes = axum::body::to_bytes(body, FORM_LIMIT)
            .await
            .map_err(|_| Refusal::BadForm(lang, lang.strings().form_too_big.to_string()))?;
        let fields = form_fields(&bytes);
        check_csrf(&signed, fields.get("csrf").map(String::as_str))?;
        Ok(SignedForm { signed, fields })
    }
}

/// Refuse unless `given` is the session's CSRF token.
pub(crate) fn check_csrf(signed: &Signed, given: Option<&str>) -> Result<(), Refusal> {
    match given {
        Some(token) if same(token, &signed.session.csrf) => Ok(()),
        _ => Err(Refusal::Forged(signed.lang)),
    }
}
