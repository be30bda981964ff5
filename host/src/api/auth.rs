//! Who is calling: the admin (a token), a producer (an API key, stored hashed), or the
//! checkout platform (a bearer token, or an HMAC-SHA256 `Funnel-Signature: t=<unix>,v1=<hex>`
//! over `t + "." + body`, refused when the timestamp is more than five minutes off: replays).

use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::AppState;
use super::problem::Problem;

/// How far a signature's timestamp may be from now.
pub const SIGNATURE_TOLERANCE_S: i64 = 300;

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers.get("authorization")?.to_str().ok()?.strip_prefix("Bearer ")
}

pub fn require_admin(state: &AppState, headers: &HeaderMap) -> Result<(), Problem> {
    match bearer(headers) {
        Some(token) if state.secrets.admin_token.matches(token) => Ok(()),
        Some(_) => Err(Problem::unauthorized("the admin token is wrong")),
        None => Err(Problem::unauthorized("send the admin token as Authorization: Bearer <token>")),
    }
}

/// The producer whose API key this is.
pub async fn require_producer(state: &AppState, headers: &HeaderMap) -> Result<String, Problem> {
    let key =
        bearer(headers).ok_or_else(|| Problem::unauthorized("send your API key as Authorization: Bearer <key>"))?;
    state.store.producer_by_key(key).await?.ok_or_else(|| Problem::unauthorized("unknown API key"))
}

/// The platform: bearer token or signature.
pub fn require_platform(state: &AppState, headers: &HeaderMap, body: &[u8], now_s: i64) -> Result<(), Problem> {
    if let Some(signature) = headers.get("funnel-signature") {
        let signature = signature.to_str().map_err(|_| Problem::unauthorized("Funnel-Signature is not ASCII"))?;
        return verify_signature(&state.secrets.platform_secret, signature, body, now_s);
    }
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
