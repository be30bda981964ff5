//! `POST /v1/plugins?name=&version=` (the body is the component's bytes) and `GET /v1/plugins`.
//! An upload is validated before it is stored (size cap, a component of the `funnel` world,
//! `describe()` within limits); refusals are 422 with a reason a person can act on.

use std::time::Duration;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::BytesMut;
use futures_util::StreamExt;
use serde::Deserialize;

use super::AppState;
use super::auth::require_producer;
use super::problem::{FieldError, Problem};
use crate::runtime::plugin::version_problem;
use crate::runtime::wit::capability_name;
use crate::store::plugins::{DeletePlugin, PutPlugin, StoredPlugin};

#[derive(Deserialize)]
pub struct UploadQuery {
    name: Option<String>,
    version: Option<String>,
}

/// Seconds a client told to wait for an upload slot waits.
const RETRY_AFTER_S: u64 = 5;

/// The body is a stream, not `Bytes`: the key is checked from the headers before a byte of the
/// body is read (a bogus key costs nothing), then the body is read within the runtime's
/// `upload_deadline`, in one of its `max_concurrent_uploads` slots.
pub async fn upload(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<UploadQuery>,
    body: Body,
) -> Result<Response, Problem> {
    let producer = require_producer(&state, &headers).await?;
    let config = state.plugins.runtime().config().clone();
    let Some(_slot) = state.plugins.runtime().upload_slot() else {
        let busy = Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Busy",
            format!("{} uploads are being checked already: retry in {RETRY_AFTER_S} s", config.max_concurrent_uploads),
        );
        return Ok(([(header::RETRY_AFTER, RETRY_AFTER_S.to_string())], busy).into_response());
    };
    let body = read_body(body, config.max_upload_bytes, config.upload_deadline).await?;
    let (stored, created) = store_upload(&state, &producer, q.name, q.version, body).await?;
    let json = serde_json::to_value(&stored).map_err(Problem::internal)?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(json)).into_response())
}

/// Read a body of at most `max` bytes, all of it within `deadline`.
async fn read_body(body: Body, max: usize, deadline: Duration) -> Result<Bytes, Problem> {
    let read = async {
        let mut stream = body.into_data_stream();
        let mut bytes = BytesMut::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| Problem::field("body", format!("the body could not be read: {e}")))?;
            if bytes.len() + chunk.len() > max {
                let message = format!("the body is larger than this route takes: {} MiB", max >> 20);
                return Err(Problem {
                    status: StatusCode::PAYLOAD_TOO_LARGE,
                    title: "Payload too large",
                    detail: message.clone(),
                    errors: vec![FieldError { path: "body".into(), message }],
                });
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes.freeze())
    };
    tokio::time::timeout(deadline, read).await.map_err(|_| {
        Problem::new(
            StatusCode::REQUEST_TIMEOUT,
            "Request timeout",
            format!("the upload took longer than {} s: send the whole body at once", deadline.as_secs_f64()),
        )
    })?
}

/// Validate an uploaded component and store it for a producer (the API's upload and the
/// console's use this one function, so both refuse the same things with the same words).
/// Returns it and whether it was stored now (`false`: these bytes were there already). A name
/// and version holding other bytes is a 409: stored components never change.
pub async fn store_upload(
    state: &AppState,
    producer: &str,
    name: Option<String>,
    version: Option<String>,
    body: Bytes,
) -> Result<(StoredPlugin, bool), Problem> {
    if let Some(problem) = version.as_deref().and_then(version_problem) {
        return Err(Problem::field("version", problem));
    }
    let runtime = state.plugins.runtime().clone();
    let quota = runtime.config().max_plugins_per_producer;
    let bytes = body.clone();
    // Within the checks' share of the instance pool, never the dispatcher's.
    let _slot = state.plugins.validation_slot().await;
    let plugin = tokio::task::spawn_blocking(move || runtime.validate_upload(&bytes))
        .await
        .map_err(Problem::internal)?
        .map_err(|e| Problem::field("body", e.to_string()))?;
    let name = name.unwrap_or_else(|| plugin.info.name.clone());
    let version = version.unwrap_or_else(|| plugin.info.version.clone());
    if crate::guests::builtin(&name).is_some() {
        return Err(Problem::field("name", format!("{name:?} is a built-in plugin's name: pick another")));
    }
    if name != plugin.info.name {
        return Err(Problem::field("name", format!("the component calls itself {:?}, not {name:?}", plugin.info.name)));
    }
    let capabilities: Vec<&str> = plugin.info.capabilities.iter().map(|c| capability_name(*c)).collect();
    let info = serde_json::json!({"description": plugin.info.description, "capabilities": capabilities});
    let stored = StoredPlugin { name, version, sha256: plugin.sha256.clone(), info };
    // The quota counts stored components; the same name and version again is judged below.
    let taken = state.store.plugin_version_sha(producer, &stored.name, &stored.version).await?;
    if taken.is_none() && state.store.plugin_count(producer).await? >= i64::try_from(quota).unwrap_or(i64::MAX) {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "Quota reached",
            format!(
                "you keep {quota} stored components, the most a producer may: delete one no binding uses with \
                 DELETE /v1/plugins/{{name}}/{{version}} (GET /v1/plugins lists them), then upload again"
            ),
        ));
    }
    match state.store.put_plugin(producer, &stored, &body, state.clock.now_ms()).await? {
        PutPlugin::Stored => Ok((stored, true)),
        PutPlugin::AlreadyStored => Ok((stored, false)),
        PutPlugin::Taken { sha256 } => Err(Problem::new(
            StatusCode::CONFLICT,
            "Version taken",
            format!(
                "{}@{} is stored already with other bytes (sha256 {sha256}); stored components never change: \
                 give this one a new version (?version= or the version describe() returns)",
                stored.name, stored.version
            ),
        )),
    }
}

pub async fn list(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<serde_json::Value>, Problem> {
    let producer = require_producer(&state, &headers).await?;
    let builtins: Vec<serde_json::Value> =
        crate::guests::builtin_names().map(|n| serde_json::json!({"name": n, "builtin": true})).collect();
    Ok(Json(serde_json::json!({"plugins": state.store.plugins(&producer).await?, "builtin": builtins})))
}

/// `DELETE /v1/plugins/{name}/{version}`: make room under the quota. A component whose bytes a
/// binding or a running lead still needs (and no other stored copy has) stays: 409.
pub async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((name, version)): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    let producer = require_producer(&state, &headers).await?;
    match state.store.delete_plugin(&producer, &name, &version).await? {
        DeletePlugin::Deleted => Ok(StatusCode::NO_CONTENT),
        DeletePlugin::NotFound => Err(Problem::not_found(format!("no stored component {name}@{version}"))),
        DeletePlugin::InUse { bindings, runs } => Err(Problem::new(
            StatusCode::CONFLICT,
            "In use",
            format!(
                "{name}@{version} serves {bindings} binding(s) and {runs} running lead(s): bind another version \
                 (PUT /v1/bindings) and let its leads finish first"
            ),
        )),
    }
}
