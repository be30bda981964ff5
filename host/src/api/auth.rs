//! Who is calling: the admin (a token), a producer (an API key, stored hashed), or the
//! checkout platform (a bearer token, or an HMAC-SHA256 `Funnel-Signature: t=<unix>,v1=<hex>`
//! over `t + "." + body`, refused when the timestamp is more than five minutes off: replays).
//!
//! The route table decides: `api::router_from` wraps each route in the guard its
//! [`Auth`](super::Auth) names ([`admin`], [`producer`], [`platform`]), before the handler and
//! before a body is read. A guard that lets a request through leaves who it was in the
//! request, and handlers take that as an extractor ([`AdminCaller`], [`ProducerCaller`],
//! [`PlatformCaller`]); an extractor finds nothing on a route the table did not guard for its
//! role and refuses (401), so a handler cannot be reached by a role the table does not name.

use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::AppState;
use super::problem::{FieldError, Problem};

/// The admin called (a route the table marks `Admin`).
#[derive(Clone, Copy, Debug)]
pub struct AdminCaller;

/// The producer whose API key called (a route the table marks `Producer`): their id.
#[derive(Clone, Debug)]
pub struct ProducerCaller(pub String);

/// The checkout platform called (a route the table marks `Platform`), by token or signature.
#[derive(Clone, Copy, Debug)]
pub struct PlatformCaller;

/// The guard of `Admin` routes.
pub async fn admin(State(state): State<AppState>, mut request: Request, next: Next) -> Result<Response, Problem> {
    require_admin(&state, request.headers())?;
    request.extensions_mut().insert(AdminCaller);
    Ok(next.run(request).await)
}

/// The guard of `Producer` routes.
pub async fn producer(State(state): State<AppState>, mut request: Request, next: Next) -> Result<Response, Problem> {
    let id = require_producer(&state, request.headers()).await?;
    request.extensions_mut().insert(ProducerCaller(id));
    Ok(next.run(request).await)
}

/// The guard of `Platform` routes. A signature covers the body, so a signed request's body is
/// read here (within the route's limit) and handed on.
pub async fn platform(State(state): State<AppState>, request: Request, next: Next) -> Result<Response, Problem> {
    let (mut parts, body) = request.into_parts();
    let body = match parts.headers.get("funnel-signature") {
        Some(signature) => {
            let bytes = axum::body::to_bytes(body, super::BODY_LIMIT).await.map_err(unreadable_body)?;
            require_platform_signature(&state, signature, &bytes)?;
            Body::from(bytes)
        }
        None => {
            require_platform_token(&state, &parts.headers)?;
            body
        }
    };
    parts.extensions.insert(PlatformCaller);
    Ok(next.run(Request::from_parts(parts, body)).await)
}

fn unreadable_body(error: axum::Error) -> Problem {
    let message = format!("the body could not be read within {} MiB: {error}", super::BODY_LIMIT >> 20);
    Problem {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        title: "Payload too large",
        detail: message.clone(),
        errors: vec![FieldError { path: "body".into(), message }],
    }
}

/// What a guard left in the request, or a refusal when the route's table entry names another
/// role (fail closed).
fn left_by_guard<T: Clone + Send + Sync + 'static>(parts: &Parts, role: &str) -> Result<T, Problem> {
    parts
        .extensions
        .get::<T>()
        .cloned()
        .ok_or_else(|| Problem::unauthorized(format!("this route is not for the {role}")))
}

impl<S: Send + Sync> FromRequestParts<S> for AdminCaller {
    type Rejection = Problem;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Problem> {
        left_by_guard(parts, "admin")
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ProducerCaller {
    type Rejection = Problem;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Problem> {
        left_by_guard(parts, "producer")
    }
}

impl<S: Send + Sync> FromRequestParts<S> for PlatformCaller {
    type Rejection = Problem;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Problem> {
        left_by_guard(parts, "platform")
    }
}

/// How far a signature's timestamp may be from now.
pub const SIGNATURE_TOLERANCE_S: i64 = 300;

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers.get("authorization")?.to_str().ok()?.strip_prefix("Bearer ")
}

fn require_admin(state: &AppState, headers: &HeaderMap) -> Result<(), Problem> {
    match bearer(headers) {
        Some(token) if state.secrets.admin_token.matches(token) => Ok(()),
        Some(_) => Err(Problem::unauthorized("the admin token is wrong")),
        None => Err(Problem::unauthorized("send the admin token as Authorization: Bearer <token>")),
    }
}

/// The producer whose API key this is.
async fn require_producer(state: &AppState, headers: &HeaderMap) -> Result<String, Problem> {
    let key =
        bearer(headers).ok_or_else(|| Problem::unauthorized("send your API key as Authorization: Bearer <key>"))?;
    state.store.producer_by_key(key).await?.ok_or_else(|| Problem::unauthorized("unknown API key"))
}

/// The platform by its signature over `body`.
fn require_platform_signature(state: &AppState, signature: &HeaderValue, body: &[u8]) -> Result<(), Problem> {
    let signature = signature.to_str().map_err(|_| Problem::unauthorized("Funnel-Signature is not ASCII"))?;
    verify_signature(&state.secrets.platform_secret, signature, body, state.clock.now_ms() / 1000)
}

/// The platform by its bearer token.
fn require_platform_token(state: &AppState, headers: &HeaderMap) -> Result<(), Problem> {
    match bearer(headers) {
        Some(token) if state.secrets.platform_token.matches(token) => Ok(()),
        Some(_) => Err(Problem::unauthorized("the platform token is wrong")),
        None => Err(Problem::unauthorized("send Authorization: Bearer <platform token> or a Funnel-Signature header")),
    }
}

/// Check `t=<unix>,v1=<hex hmac-sha256(secret, t + "." + body)>`.
pub fn verify_signature(secret: &str, header: &str, body: &[u8], now_s: i64) -> Result<(), Problem> {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => t = value.parse::<i64>().ok(),
            Some(("v1", value)) => v1 = hex::decode(value).ok(),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return Err(Problem::unauthorized("Funnel-Signature must be t=<unix seconds>,v1=<hex hmac>"));
    };
    // Checked: a timestamp near i64::MIN or MAX must be a 401, not an overflow panic.
    let off = now_s.checked_sub(t);
    if off.is_none_or(|off| off.unsigned_abs() > SIGNATURE_TOLERANCE_S.unsigned_abs()) {
        let off = off.map_or_else(|| "far".to_string(), |off| format!("{off} s"));
        return Err(Problem::unauthorized(format!(
            "Funnel-Signature timestamp is {off} off (tolerance {SIGNATURE_TOLERANCE_S} s): sign with the current time"
        )));
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).map_err(Problem::internal)?;
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&v1).map_err(|_| Problem::unauthorized("Funnel-Signature does not match the body"))
}

/// The signature header value for `body` at `t` (for clients and tests).
pub fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}
