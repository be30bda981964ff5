//! RFC 9457 problem details: `application/problem+json` with `type`, `title`, `status`,
//! `detail` and a field-level `errors` list of `{path, message}`.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// One problem with one field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub path: String,
    pub message: String,
}

/// An error response.
#[derive(Clone, Debug)]
pub struct Problem {
    pub status: StatusCode,
    pub title: &'static str,
    pub detail: String,
    pub errors: Vec<FieldError>,
}

impl Problem {
    pub fn new(status: StatusCode, title: &'static str, detail: impl Into<String>) -> Self {
        Problem { status, title, detail: detail.into(), errors: Vec::new() }
    }

    /// 422 naming the fields.
    pub fn invalid(detail: impl Into<String>, errors: Vec<FieldError>) -> Self {
        Problem { status: StatusCode::UNPROCESSABLE_ENTITY, title: "Invalid request", detail: detail.into(), errors }
    }

    /// 422 whose detail lists every field error, `path: message; …`.
    pub fn invalid_fields(errors: Vec<FieldError>) -> Self {
        let detail = errors.iter().map(|e| format!("{}: {}", e.path, e.message)).collect::<Vec<_>>().join("; ");
        Problem::invalid(detail, errors)
    }

    /// 422 about one field.
    pub fn field(path: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Problem::invalid(format!("{path}: {message}"), vec![FieldError { path: path.into(), message }])
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::UNAUTHORIZED, "Unauthorized", detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::NOT_FOUND, "Not found", detail)
    }

    pub fn internal(error: impl std::fmt::Display) -> Self {
        tracing::error!(%error, "internal error");
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal error",
            "the server could not complete the request; it is logged",
        )
    }
}

impl From<crate::store::StoreError> for Problem {
    fn from(e: crate::store::StoreError) -> Self {
        Problem::internal(e)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "type": "about:blank",
            "title": self.title,
            "status": self.status.as_u16(),
            "detail": self.detail,
            "errors": self.errors,
        });
        (self.status, [(header::CONTENT_TYPE, "application/problem+json")], body.to_string()).into_response()
    }
}

/// Parse a JSON body into `T`, or a 422 naming the path that failed.
/// A string anywhere in the body holding a control character other than tab and line breaks
/// (NUL, say, which PostgreSQL cannot store) is a 422 naming its path.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Problem> {
    let text = std::str::from_utf8(body).map_err(|_| Problem::field("$", "the body is not UTF-8 JSON"))?;
    // JSON can only carry a control character escaped (`\u0000`, `\b`, `\f`): a body without
    // one of those escapes is not walked a second time.
    if (text.contains("\\u") || text.contains("\\b") || text.contains("\\f"))
        && let Ok(value) = serde_json::from_str::<serde_json::Value>(text)
    {
        let errors: Vec<FieldError> = crate::domain::text::json_problems(&value, "")
            .into_iter()
            .map(|(path, message)| FieldError { path, message })
            .collect();
        if !errors.is_empty() {
            return Err(Problem::invalid_fields(errors));
        }
    }
    funnel_sdk::parse(text).map_err(|notes| {
        let errors: Vec<FieldError> = notes
            .into_iter()
            .map(|n| FieldError { path: if n.path.is_empty() { "$".into() } else { n.path }, message: n.message })
            .collect();
        Problem::invalid_fields(errors)
    })
}

/// axum's `Query`, refusing a query it cannot read (`?limit=abc`) with a 422 naming the query
/// instead of axum's plain-text 400, an answer `/openapi.json` does not document.
pub struct Query<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for Query<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Problem> {
        axum::extract::Query::try_from_uri(&parts.uri)
            .map(|axum::extract::Query(value)| Query(value))
            .map_err(|rejection| Problem::field("query", rejection.body_text()))
    }
}

/// axum's `Path`, refusing a path it cannot read with a 422 naming the path instead of
/// axum's plain-text 400.
pub struct Path<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for Path<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, Problem> {
        match <axum::extract::Path<T> as axum::extract::FromRequestParts<S>>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(rejection) => Err(Problem::field("path", rejection.body_text())),
        }
    }
}
