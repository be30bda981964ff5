//! `POST /v1/plugins?name=&version=` (the body is the component's bytes) and `GET /v1/plugins`.
//! An upload is validated (size cap, a component of the `funnel` world, `describe()` within
//! limits); refusals are 422 with a reason a person can act on. A check that outlasts the
//! runtime's `upload_check_budget` goes on in the background: the component is stored as
//! `compiling`, answered 202, and ends `ready` or `failed` with the same reason.

use std::time::Duration;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::BytesMut;
use futures_util::StreamExt;
use serde::Deserialize;

use super::AppState;
use super::auth::ProducerCaller;
use super::problem::{FieldError, Path, Problem, Query};
use crate::runtime::LoadedPlugin;
use crate::runtime::plugin::{NAME_PATTERN, VERSION_PATTERN, sha256_hex, version_problem};
use crate::runtime::upload::precheck;
use crate::runtime::wit::capability_name;
use crate::store::StoreError;
use crate::store::plugins::{DeletePlugin, PluginStatus, PutPlugin, StoredPlugin};
use tokio::sync::OwnedSemaphorePermit;

/// `POST /v1/plugins`'s query.
#[derive(Deserialize, schemars::JsonSchema)]
pub struct UploadQuery {
    /// The component's own name (what its `describe()` says), not a built-in's; absent: that name.
    #[schemars(schema_with = "upload_name")]
    name: Option<String>,
    /// Absent: the version its `describe()` says.
    #[schemars(regex(pattern = VERSION_PATTERN))]
    version: Option<String>,
}

fn upload_name(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let builtins: Vec<&str> = crate::guests::builtin_names().collect();
    schemars::json_schema!({"type": "string", "pattern": NAME_PATTERN, "not": {"enum": builtins}})
}

/// `DELETE /v1/plugins/{name}/{version}`'s path.
#[derive(Deserialize, schemars::JsonSchema)]
pub struct PluginPath {
    #[schemars(regex(pattern = NAME_PATTERN))]
    name: String,
    #[schemars(regex(pattern = VERSION_PATTERN))]
    version: String,
}

/// Seconds a client told to wait for an upload slot waits.
const RETRY_AFTER_S: u64 = 5;

/// The body is a stream, not `Bytes`: the route's guard checks the key before a byte of the
/// body is read (a bogus key costs nothing), then the body is read within the runtime's
/// `upload_deadline`, in one of its `max_concurrent_uploads` slots.
pub async fn upload(
    State(state): State<AppState>,
    ProducerCaller(producer): ProducerCaller,
    Query(q): Query<UploadQuery>,
    body: Body,
) -> Result<Response, Problem> {
    let config = state.plugins.runtime().config().clone();
    let Some(slot) = state.plugins.runtime().upload_slot() else {
        let busy = Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Busy",
            format!("{} uploads are being checked already: retry in {RETRY_AFTER_S} s", config.max_concurrent_uploads),
        );
        return Ok(([(header::RETRY_AFTER, RETRY_AFTER_S.to_string())], busy).into_response());
    };
    let body = read_body(body, config.max_upload_bytes, config.upload_deadline).await?;
    store_upload(&state, &producer, q.name, q.version, body, Some(slot)).await?.into_response()
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

/// What [`store_upload`] did with an upload.
pub enum Uploaded {
    /// Checked within the budget and stored (`true`), or these bytes were there already.
    Checked(StoredPlugin, bool),
    /// Stored as `compiling`: the check goes on in the background. Name and version are the
    /// upload's, when it gave them.
    Compiling { sha256: String, name: Option<String>, version: Option<String> },
}

impl Uploaded {
    /// The answer of `POST /v1/plugins`: 201 (stored now), 200 (there already) or 202
    /// (`compiling`, checked in the background).
    fn into_response(self) -> Result<Response, Problem> {
        match self {
            Uploaded::Checked(stored, created) => {
                let json = serde_json::to_value(&stored).map_err(Problem::internal)?;
                let status = if created { StatusCode::CREATED } else { StatusCode::OK };
                Ok((status, Json(json)).into_response())
            }
            Uploaded::Compiling { sha256, name, version } => {
                let mut json = serde_json::json!({"sha256": sha256, "status": PluginStatus::Compiling});
                if let Some(name) = name {
                    json["name"] = name.into();
                }
                if let Some(version) = version {
                    json["version"] = version.into();
                }
                Ok((StatusCode::ACCEPTED, Json(json)).into_response())
            }
        }
    }
}

/// Validate an uploaded component and store it for a producer (the API's upload and the
/// console's use this one function, so both refuse the same things with the same words).
/// A name and version holding other bytes is a 409: stored components never change.
///
/// The check (compile, `describe()`) runs on a blocking thread; the request waits for it up to
/// the runtime's `upload_check_budget`. Past that the bytes are stored as `compiling` and the
/// check finishes in the background under the same rules, holding `upload_slot` and a
/// validation slot until it ends (that bounds how many run at once), and records the
/// component `ready` or `failed` with the reason the synchronous answer would have given.
pub async fn store_upload(
    state: &AppState,
    producer: &str,
    name: Option<String>,
    version: Option<String>,
    body: Bytes,
    upload_slot: Option<OwnedSemaphorePermit>,
) -> Result<Uploaded, Problem> {
    if let Some(problem) = version.as_deref().and_then(version_problem) {
        return Err(Problem::field("version", problem));
    }
    let runtime = state.plugins.runtime().clone();
    let config = runtime.config().clone();
    // What costs nothing is refused at once, whatever the budget.
    precheck(config.max_upload_bytes, &body).map_err(|e| Problem::field("body", e.to_string()))?;
    if let Some(name) = name.as_deref() {
        builtin_name(name)?;
    }
    // Within the checks' share of the instance pool, never the dispatcher's.
    let validation_slot = state.plugins.validation_slot().await;
    let check = {
        let bytes = body.clone();
        tokio::task::spawn_blocking(move || runtime.validate_upload(&bytes))
    };
    let mut check = Box::pin(check);
    let waited = match config.upload_check_budget {
        budget if budget.is_zero() => None,
        budget => tokio::time::timeout(budget, &mut check).await.ok(),
    };
    if let Some(checked) = waited {
        let plugin = checked.map_err(Problem::internal)?.map_err(|e| Problem::field("body", e.to_string()))?;
        let (stored, created) = store_checked(state, producer, name, version, &plugin, &body).await?;
        return Ok(Uploaded::Checked(stored, created));
    }
    // Past the budget: stored now, checked in the background.
    let sha256 = sha256_hex(&body);
    let placeholder = StoredPlugin {
        name: name.clone().unwrap_or_default(),
        version: match (&name, &version) {
            (Some(_), Some(version)) => version.clone(),
            // Not given: the row's key until describe() says it (never shown as a version).
            _ => sha256.clone(),
        },
        sha256: sha256.clone(),
        info: serde_json::json!({}),
    };
    let stored_already = if name.is_some() && version.is_some() {
        state.store.plugin_version_sha(producer, &placeholder.name, &placeholder.version).await?
    } else {
        None
    };
    if stored_already.is_none() {
        check_quota(state, producer, config.max_plugins_per_producer).await?;
    }
    match state.store.put_compiling(producer, &placeholder, &body, state.clock.now_ms()).await? {
        PutPlugin::Taken { sha256 } => return Err(version_taken(&placeholder.name, &placeholder.version, &sha256)),
        // The same bytes under the same key: one check is enough; if it is over, and they
        // are ready, this check is quick (loaded already) and answers as it always did.
        PutPlugin::AlreadyStored => {
            let status = state.store.plugin_status(producer, &placeholder.name, &placeholder.version).await?;
            if matches!(status, Some((_, PluginStatus::Ready))) {
                let plugin =
                    check.await.map_err(Problem::internal)?.map_err(|e| Problem::field("body", e.to_string()))?;
                let (stored, created) = store_checked(state, producer, name, version, &plugin, &body).await?;
                return Ok(Uploaded::Checked(stored, created));
            }
        }
        PutPlugin::Stored => {
            let (state, producer) = (state.clone(), producer.to_string());
            let (key_name, key_version) = (placeholder.name.clone(), placeholder.version.clone());
            let given = (name.clone(), version.clone());
            let sha256 = sha256.clone();
            tokio::spawn(async move {
                let checked = check.await;
                // The slots go back only once the check is over.
                drop((validation_slot, upload_slot));
                let outcome = match checked {
                    Ok(Ok(plugin)) => finish(&state, &producer, (&key_name, &key_version), given, &plugin).await,
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(join) => Err(format!("the check stopped: {join}")),
                };
                record(&state, &producer, (&key_name, &key_version), &sha256, outcome).await;
            });
        }
    }
    Ok(Uploaded::Compiling { sha256, name, version })
}

/// The reason a problem gives a person: its first field's message, else its detail.
fn reason(problem: Problem) -> String {
    problem.errors.into_iter().next().map(|e| e.message).unwrap_or(problem.detail)
}

/// A background check passed: the rules of the synchronous path, then `ready`. `Err` is the
/// reason it failed (the synchronous answer's words).
async fn finish(
    state: &AppState,
    producer: &str,
    (key_name, key_version): (&str, &str),
    (name, version): (Option<String>, Option<String>),
    plugin: &LoadedPlugin,
) -> Result<(), String> {
    let stored = describe(name, version, plugin).map_err(reason)?;
    match state.store.compiled_ready(producer, key_name, key_version, &stored).await {
        Ok(PutPlugin::Stored | PutPlugin::AlreadyStored) => Ok(()),
        Ok(PutPlugin::Taken { sha256 }) => Err(version_taken(&stored.name, &stored.version, &sha256).detail),
        Err(e) => Err(format!("could not be stored: {e}")),
    }
}

/// Record how a background check ended, and wake whoever waits for it.
async fn record(
    state: &AppState,
    producer: &str,
    (name, version): (&str, &str),
    sha256: &str,
    outcome: Result<(), String>,
) {
    if let Err(reason) = outcome {
        tracing::info!(producer, name, sha256, reason, "an upload failed its check");
        if let Err(e) = state.store.compiled_failed(producer, name, version, sha256, &reason).await {
            tracing::warn!(producer, sha256, error = %e, "could not record a failed upload; it stays compiling");
        }
    }
    state.plugins.checked();
}

/// Check again, in the background, the uploads a stopped process left `compiling` (called at
/// start; each holds a validation slot while it compiles, so they never take the dispatcher's).
pub async fn resume_compiling(state: AppState) -> Result<(), StoreError> {
    for left in state.store.compiling_plugins().await? {
        let state = state.clone();
        tokio::spawn(async move {
            let key = (left.name.as_str(), left.version.as_str());
            let outcome = match state.store.plugin_bytes(&left.sha256).await {
                Ok(Some(bytes)) => {
                    let slot = state.plugins.validation_slot().await;
                    let runtime = state.plugins.runtime().clone();
                    let checked = tokio::task::spawn_blocking(move || runtime.validate_upload(&bytes)).await;
                    drop(slot);
                    // The key says what the upload gave: a name (else empty), a version (else
                    // the sha256).
                    let name = Some(left.name.clone()).filter(|n| !n.is_empty());
                    let version = name.as_ref().map(|_| left.version.clone()).filter(|v| *v != left.sha256);
                    let given = (name, version);
                    match checked {
                        Ok(Ok(plugin)) => finish(&state, &left.producer_id, key, given, &plugin).await,
                        Ok(Err(e)) => Err(e.to_string()),
                        Err(join) => Err(format!("the check stopped: {join}")),
                    }
                }
                Ok(None) => Err("its bytes are gone".to_string()),
                Err(e) => {
                    tracing::warn!(sha256 = left.sha256, error = %e, "could not read an upload left compiling");
                    return;
                }
            };
            record(&state, &left.producer_id, key, &left.sha256, outcome).await;
        });
    }
    Ok(())
}

/// Refuse a built-in's name for an upload, and a name no component can have (it must be the
/// component's own, which `describe()` checks against [`NAME_PATTERN`]).
fn builtin_name(name: &str) -> Result<(), Problem> {
    if !crate::runtime::plugin::name_ok(name) {
        return Err(Problem::field("name", "use 1 to 64 characters of a-z, 0-9, '-' or '_'"));
    }
    match crate::guests::builtin(name) {
        Some(_) => Err(Problem::field("name", format!("{name:?} is a built-in plugin's name: pick another"))),
        None => Ok(()),
    }
}

/// The stored record of a checked component: the name and version given or those
/// `describe()` returned, refused when the name is a built-in's or not the component's own.
fn describe(name: Option<String>, version: Option<String>, plugin: &LoadedPlugin) -> Result<StoredPlugin, Problem> {
    let name = name.unwrap_or_else(|| plugin.info.name.clone());
    let version = version.unwrap_or_else(|| plugin.info.version.clone());
    builtin_name(&name)?;
    if name != plugin.info.name {
        return Err(Problem::field("name", format!("the component calls itself {:?}, not {name:?}", plugin.info.name)));
    }
    let capabilities: Vec<&str> = plugin.info.capabilities.iter().map(|c| capability_name(*c)).collect();
    let info = serde_json::json!({"description": plugin.info.description, "capabilities": capabilities});
    Ok(StoredPlugin { name, version, sha256: plugin.sha256.clone(), info })
}

/// 409 when the producer keeps as many components as it may.
async fn check_quota(state: &AppState, producer: &str, quota: usize) -> Result<(), Problem> {
    if state.store.plugin_count(producer).await? >= i64::try_from(quota).unwrap_or(i64::MAX) {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "Quota reached",
            format!(
                "you keep {quota} stored components, the most a producer may: delete one no binding uses with \
                 DELETE /v1/plugins/{{name}}/{{version}} (GET /v1/plugins lists them), then upload again"
            ),
        ));
    }
    Ok(())
}

fn version_taken(name: &str, version: &str, sha256: &str) -> Problem {
    Problem::new(
        StatusCode::CONFLICT,
        "Version taken",
        format!(
            "{name}@{version} is stored already with other bytes (sha256 {sha256}); stored components never change: \
             give this one a new version (?version= or the version describe() returns)"
        ),
    )
}

/// Store a component checked within the request. Returns it and whether it was stored now
/// (`false`: these bytes were there already).
async fn store_checked(
    state: &AppState,
    producer: &str,
    name: Option<String>,
    version: Option<String>,
    plugin: &LoadedPlugin,
    body: &[u8],
) -> Result<(StoredPlugin, bool), Problem> {
    let stored = describe(name, version, plugin)?;
    // The quota counts stored components; the same name and version again is judged below.
    let taken = state.store.plugin_version_sha(producer, &stored.name, &stored.version).await?;
    if taken.is_none() {
        check_quota(state, producer, state.plugins.runtime().config().max_plugins_per_producer).await?;
    }
    match state.store.put_plugin(producer, &stored, body, state.clock.now_ms()).await? {
        PutPlugin::Stored => Ok((stored, true)),
        PutPlugin::AlreadyStored => Ok((stored, false)),
        PutPlugin::Taken { sha256 } => Err(version_taken(&stored.name, &stored.version, &sha256)),
    }
}

/// The stored component as a 201 or 200 answers it.
fn stored_schema() -> serde_json::Value {
    serde_json::json!({"type": "object", "required": ["name", "version", "sha256", "info"], "properties": {
        "name": {"type": "string"}, "version": {"type": "string"}, "sha256": {"type": "string"},
        "info": {"type": "object", "properties": {"description": {"type": "string"},
                 "capabilities": {"type": "array", "items": {"type": "string"}}}}}})
}

pub(super) fn json_answer(description: &str, schema: serde_json::Value) -> serde_json::Value {
    serde_json::json!({"description": description, "content": {"application/json": {"schema": schema}}})
}

/// `POST /v1/plugins`'s documented answers (OpenAPI `responses`).
pub fn upload_responses() -> serde_json::Value {
    let problem = |description: &str| serde_json::json!({"description": description, "content": {"application/problem+json": {}}});
    serde_json::json!({
        "201": json_answer("Checked within the request and stored", stored_schema()),
        "200": json_answer("These bytes were stored under this name and version already", stored_schema()),
        "202": json_answer(
            "Stored; its check (compile, describe()) outlasted the request's budget and goes on in the \
             background: GET /v1/plugins shows it compiling, then ready or failed with the reason",
            serde_json::json!({"type": "object", "required": ["sha256", "status"], "properties": {
                "sha256": {"type": "string"}, "status": {"const": "compiling"},
                "name": {"type": "string", "description": "as given in ?name="},
                "version": {"type": "string", "description": "as given in ?version="}}})),
        "409": problem("The name and version hold other bytes, or the producer's quota is reached"),
        "422": problem("Not a valid component of the funnel world; `errors` says why"),
        "503": problem("Every upload slot is busy: retry after Retry-After seconds"),
    })
}

/// `GET /v1/plugins`'s documented answer.
pub fn list_responses() -> serde_json::Value {
    let status = serde_json::json!({"enum": ["compiling", "ready", "failed"]});
    serde_json::json!({"200": json_answer("Your stored components and the built-ins", serde_json::json!({
        "type": "object", "properties": {
            "plugins": {"type": "array", "items": {"type": "object", "required": ["sha256", "info", "status"],
                "properties": {
                    "name": {"type": "string", "description": "absent while an upload without ?name= compiles"},
                    "version": {"type": "string"}, "sha256": {"type": "string"}, "info": {"type": "object"},
                    "status": status,
                    "reason": {"type": "string", "description": "why a failed component was refused"}}}},
            "builtin": {"type": "array", "items": {"type": "object", "properties": {
                "name": {"type": "string"}, "builtin": {"const": true}, "status": {"const": "ready"}}}}}}))})
}

pub async fn list(
    State(state): State<AppState>,
    ProducerCaller(producer): ProducerCaller,
) -> Result<Json<serde_json::Value>, Problem> {
    let builtins: Vec<serde_json::Value> = crate::guests::builtin_names()
        .map(|n| serde_json::json!({"name": n, "builtin": true, "status": "ready"}))
        .collect();
    Ok(Json(serde_json::json!({"plugins": state.store.plugins(&producer).await?, "builtin": builtins})))
}

/// `DELETE /v1/plugins/{name}/{version}`: make room under the quota. A component whose bytes a
/// binding or a running lead still needs (and no other stored copy has) stays: 409.
pub async fn delete(
    State(state): State<AppState>,
    ProducerCaller(producer): ProducerCaller,
    Path(PluginPath { name, version }): Path<PluginPath>,
) -> Result<StatusCode, Problem> {
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
