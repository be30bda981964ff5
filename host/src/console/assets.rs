//! The console's stylesheet, script and icon, embedded in the binary and served with an ETag
//! (a hash of the bytes), so a browser revalidates cheaply and never runs a stale copy.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

pub(crate) const STYLESHEET: &str = "console.css";
pub(crate) const SCRIPT: &str = "console.js";
pub(crate) const ICON: &str = "icon.svg";

const FILES: &[(&str, &str, &str)] = &[
    (STYLESHEET, "text/css; charset=utf-8", include_str!("assets/console.css")),
    (SCRIPT, "text/javascript; charset=utf-8", include_str!("assets/console.js")),
    (ICON, "image/svg+xml", include_str!("assets/icon.svg")),
];

fn etags() -> &'static Vec<String> {
    static ETAGS: OnceLock<Vec<String>> = OnceLock::new();
    ETAGS.get_or_init(|| {
        FILES
            .iter()
            .map(|(_, _, body)| format!("\"{}\"", &hex::encode(Sha256::digest(body.as_bytes()))[..16]))
            .collect()
    })
}

pub(crate) async fn serve(Path(name): Path<String>, headers: HeaderMap) -> Response {
    let Some(i) = FILES.iter().position(|(n, _, _)| *n == name) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    let (_, content_type, body) = FILES[i];
    let etag = &etags()[i];
    let fresh = headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(etag.as_str());
    let mut response = if fresh { StatusCode::NOT_MODIFIED.into_response() } else { body.into_response() };
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    response
}
