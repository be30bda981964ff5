//! Plugins: upload a `.wasm` component (the API's checks and messages, through
//! `api::plugins::store_upload`), and the list of built-ins and uploads with name, version,
//! size, sha256, what `describe()` said, and which bindings use each.

use askama::Template;
use axum::extract::{Multipart, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use bytes::Bytes;

use super::ConsoleState;
use super::leads::internal;
use super::page::{Chrome, Tab, datetime, render};
use super::session::{Signed, check_csrf};
use super::strategy::scope_label;
use crate::api::plugins::{Uploaded, store_upload};

pub(super) struct PluginView {
    pub name: String,
    pub version: String,
    pub builtin: bool,
    pub size: String,
    pub sha256: String,
    pub description: String,
    pub capabilities: String,
    pub uploaded_at: String,
    pub used_by: Vec<String>,
    /// The check's status, in the page's language (`compiling`, `ready`, `failed`), its CSS
    /// class, and why it failed.
    pub status: &'static str,
    pub status_class: &'static str,
    pub failure: Option<String>,
}

#[derive(Template)]
#[template(path = "plugins.html")]
struct PluginsPage {
    c: Chrome,
    plugins: Vec<PluginView>,
    error: Option<String>,
    uploaded: Option<String>,
}

fn size_text(bytes: i64) -> String {
    match bytes {
        b if b >= 1024 * 1024 => format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0)),
        b if b >= 1024 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

async fn page(
    state: &ConsoleState,
    signed: &Signed,
    error: Option<String>,
    uploaded: Option<String>,
) -> Result<PluginsPage, crate::store::StoreError> {
    let t = signed.lang.strings();
    let store = &state.app.store;
    let bindings = store.bindings(signed.producer()).await?;
    let used_by = |sha: &str| -> Vec<String> {
        bindings.iter().filter(|b| b.plugin_sha256 == sha).map(|b| scope_label(t, &b.scope)).collect()
    };
    let mut plugins = Vec::new();
    for name in crate::guests::builtin_names() {
        let Ok(loaded) = state.app.plugins.builtin(name) else { continue };
        let size = crate::guests::builtin(name).map_or(0, |b| b.len() as i64);
        plugins.push(PluginView {
            name: name.to_string(),
            version: loaded.info.version.clone(),
            builtin: true,
            size: size_text(size),
            sha256: loaded.sha256.clone(),
            description: loaded.info.description.clone(),
            capabilities: loaded
                .info
                .capabilities
                .iter()
                .map(|c| crate::runtime::wit::capability_name(*c))
                .collect::<Vec<_>>()
                .join(", "),
            uploaded_at: String::new(),
            used_by: used_by(&loaded.sha256),
            status: t.plugin_ready,
            status_class: "s-recovered",
            failure: None,
        });
    }
    for row in store.plugin_rows(signed.producer()).await? {
        let info: serde_json::Value = serde_json::from_str(&row.info_json).unwrap_or_default();
        let (status, status_class) = match row.status.as_str() {
            "compiling" => (t.plugin_compiling, "m-queued"),
            "failed" => (t.plugin_failed, "m-failed"),
            _ => (t.plugin_ready, "s-recovered"),
        };
        // An upload without a name has none (its version is a placeholder) until its check ends.
        let unnamed = row.name.is_empty();
        plugins.push(PluginView {
            used_by: used_by(&row.sha256),
            name: if unnamed { row.sha256.chars().take(12).collect() } else { row.name },
            version: if unnamed || row.version == row.sha256 { String::new() } else { row.version },
            status,
            status_class,
            failure: row.failure,
            builtin: false,
            size: size_text(row.size),
            sha256: row.sha256,
            description: info["description"].as_str().unwrap_or("").to_string(),
            capabilities: info["capabilities"]
                .as_array()
                .map(|c| c.iter().filter_map(|v| v.as_str()).collect::<Vec<_>>().join(", "))
                .unwrap_or_default(),
            uploaded_at: datetime(row.created_at),
        });
    }
    Ok(PluginsPage { c: Chrome::signed(signed, Tab::Plugins, t.plugins_title), plugins, error, uploaded })
}

#[derive(serde::Deserialize)]
pub(super) struct ListQuery {
    uploaded: Option<String>,
}

pub(super) async fn list(
    State(state): State<ConsoleState>,
    signed: Signed,
    axum::extract::Query(q): axum::extract::Query<ListQuery>,
) -> Response {
    match page(&state, &signed, None, q.uploaded).await {
        Ok(p) => render(StatusCode::OK, &p),
        Err(e) => internal(signed.lang, e),
    }
}

/// The fields of the upload form.
#[derive(Default)]
struct UploadForm {
    csrf: Option<String>,
    name: Option<String>,
    version: Option<String>,
    component: Option<Bytes>,
}

/// Read the multipart form, or the reason it could not be read.
async fn read_form(multipart: &mut Multipart) -> Result<UploadForm, String> {
    let mut form = UploadForm::default();
    while let Some(field) = multipart.next_field().await.map_err(|e| e.to_string())? {
        let field_name = field.name().unwrap_or("").to_string();
        let bytes = field.bytes().await.map_err(|e| e.to_string())?;
        let text = || String::from_utf8_lossy(&bytes).trim().to_string();
        match field_name.as_str() {
            "csrf" => form.csrf = Some(text()),
            "name" => form.name = Some(text()).filter(|n| !n.is_empty()),
            "version" => form.version = Some(text()).filter(|v| !v.is_empty()),
            "component" => form.component = Some(bytes),
            _ => {}
        }
    }
    Ok(form)
}

/// The multipart form: `csrf`, optional `name` and `version`, and the file `component`. Held
/// to the API's upload rules: the session is checked (the `Signed` extractor) before the body
/// is read, the body must arrive within the runtime's `upload_deadline`, and console and API
/// uploads share its `max_concurrent_uploads` slots.
pub(super) async fn upload(State(state): State<ConsoleState>, signed: Signed, mut multipart: Multipart) -> Response {
    let lang = signed.lang;
    let t = lang.strings();
    let runtime = state.app.plugins.runtime().clone();
    let Some(slot) = runtime.upload_slot() else {
        let message = format!("{} ({})", t.upload_unreadable, t.upload_busy);
        let mut busy = refuse_with(&state, &signed, StatusCode::SERVICE_UNAVAILABLE, message).await;
        busy.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static("5"));
        return busy;
    };
    let deadline = runtime.config().upload_deadline;
    let form = match tokio::time::timeout(deadline, read_form(&mut multipart)).await {
        Ok(Ok(form)) => form,
        Ok(Err(e)) => return refuse(&state, &signed, format!("{} ({e})", t.upload_unreadable)).await,
        Err(_) => {
            let message = format!("{} ({} {} s)", t.upload_unreadable, t.upload_too_slow, deadline.as_secs());
            return refuse_with(&state, &signed, StatusCode::REQUEST_TIMEOUT, message).await;
        }
    };
    let UploadForm { csrf, name, version, component } = form;
    if let Err(refusal) = check_csrf(&signed, csrf.as_deref()) {
        return refusal.into_response();
    }
    let Some(component) = component.filter(|c: &Bytes| !c.is_empty()) else {
        return refuse(&state, &signed, t.upload_no_file.to_string()).await;
    };
    match store_upload(&state.app, signed.producer(), name, version, component, Some(slot)).await {
        Ok(uploaded) => {
            let label = match uploaded {
                Uploaded::Checked(stored, _) => format!("{} {}", stored.name, stored.version),
                // Checked in the background: the list shows it compiling, then ready or failed.
                Uploaded::Compiling { sha256, name, version } => {
                    let named = [name, version].into_iter().flatten().collect::<Vec<_>>().join(" ");
                    if named.is_empty() { sha256.chars().take(12).collect() } else { named }
                }
            };
            let qs = url::form_urlencoded::Serializer::new(String::new()).append_pair("uploaded", &label).finish();
            Redirect::to(&format!("/console/plugins?{qs}")).into_response()
        }
        Err(problem) => {
            let message = problem.errors.first().map(|e| e.message.clone()).unwrap_or(problem.detail);
            refuse(&state, &signed, message).await
        }
    }
}

async fn refuse(state: &ConsoleState, signed: &Signed, message: String) -> Response {
    refuse_with(state, signed, StatusCode::UNPROCESSABLE_ENTITY, message).await
}

async fn refuse_with(state: &ConsoleState, signed: &Signed, status: StatusCode, message: String) -> Response {
    match page(state, signed, Some(message), None).await {
        Ok(p) => render(status, &p),
        Err(e) => internal(signed.lang, e),
    }
}
