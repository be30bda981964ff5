//! `PUT /v1/bindings`, `GET /v1/bindings`: which plugin and config serve a scope. A config is
//! stored only when the plugin's own `validate-config` accepts it; otherwise 422 with the
//! plugin's errors, each with its path. An upload still compiling (checked in the background)
//! is waited for up to the runtime's `binding_wait`, then 409 at `plugin`; a failed one is 422.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use serde::Deserialize;

use super::AppState;
use super::auth::ProducerCaller;
use super::problem::{FieldError, Problem, parse_json};
use crate::domain::text::single_line_problem;
use crate::domain::window::{SendWindow, SendWindowSpec};
use crate::runtime::wit::{BindingContext, Coupon, Scope};
use crate::store::bindings::NewBinding;
use crate::store::plugins::PluginStatus;

/// The body of `PUT /v1/bindings`.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PutBinding {
    #[schemars(length(max = 200), regex(pattern = crate::domain::text::SINGLE_LINE))]
    pub product_id: Option<String>,
    #[schemars(length(max = 200), regex(pattern = crate::domain::text::SINGLE_LINE))]
    pub plan_id: Option<String>,
    #[schemars(length(min = 1, max = 200), regex(pattern = crate::domain::text::NON_BLANK_LINE))]
    pub plugin: String,
    pub config: serde_json::Value,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// When its recovery messages may go out, in the lead's zone (`checkout.timezone`) or else
    /// this one's; absent: any time. Replaced with the binding (a PUT without it removes it).
    #[serde(default)]
    pub send_window: Option<SendWindowSpec>,
}

fn yes() -> bool {
    true
}

pub async fn put(
    State(state): State<AppState>,
    ProducerCaller(producer): ProducerCaller,
    body: Bytes,
) -> Result<Json<serde_json::Value>, Problem> {
    let b: PutBinding = parse_json(&body)?;
    let saved = save(&state, &producer, &b).await?;
    let stored = saved.binding;
    Ok(Json(serde_json::json!({
        "id": stored.id, "product_id": stored.scope.product_id(), "plan_id": stored.scope.plan_id(),
        "plugin": stored.plugin,
        "config": stored.config, "enabled": stored.enabled, "send_window": stored.send_window,
        "report": {"summary": saved.report.summary, "notes": saved.report.notes},
    })))
}

/// What a plugin's `validate-config` said of an accepted config: a summary and remarks (e.g.
/// a disabled email), each note's path prefixed `config.` as in the API's errors.
#[derive(Clone, Debug, Default)]
pub struct CheckedConfig {
    pub summary: String,
    pub notes: Vec<FieldError>,
}

/// A binding stored by [`save`], with its check.
pub struct SavedBinding {
    pub binding: crate::store::bindings::Binding,
    pub report: CheckedConfig,
}

/// The binding's scope (blanks are absent), or the errors of its fields.
fn scope(b: &PutBinding) -> Result<crate::domain::Scope, Problem> {
    let mut errors = Vec::new();
    for (path, value) in
        [("product_id", b.product_id.as_deref()), ("plan_id", b.plan_id.as_deref()), ("plugin", Some(&b.plugin))]
    {
        let problem = value.and_then(|v| {
            single_line_problem(v)
                .or_else(|| (v.len() > 200).then(|| format!("must be at most 200 bytes (got {})", v.len())))
        });
        if let Some(message) = problem {
            errors.push(FieldError { path: path.into(), message });
        }
    }
    // The console's forms reach here without `parse_json`: the config is checked here too.
    errors.extend(
        crate::domain::text::json_problems(&b.config, "config")
            .into_iter()
            .map(|(path, message)| FieldError { path, message }),
    );
    if let Err(window_errors) = send_window(b) {
        errors.extend(window_errors);
    }
    if !errors.is_empty() {
        return Err(Problem::invalid_fields(errors));
    }
    crate::domain::Scope::new(b.product_id.as_deref(), b.plan_id.as_deref())
        .map_err(|e| Problem::field("plan_id", e.to_string()))
}

/// The binding's send window, checked: each bad value an error naming it (`send_window.start`).
fn send_window(b: &PutBinding) -> Result<Option<SendWindow>, Vec<FieldError>> {
    let Some(spec) = &b.send_window else { return Ok(None) };
    SendWindow::parse(spec).map(Some).map_err(|errors| {
        errors.into_iter().map(|e| FieldError { path: format!("send_window.{}", e.path), message: e.message }).collect()
    })
}

/// The plugin a binding names (a built-in, or the producer's newest upload of that name) and
/// its verdict on the config for the binding's scope, as `PUT /v1/bindings` checks it; the
/// console checks its forms with the same function. Returns the plugin's sha256.
pub async fn check(state: &AppState, producer: &str, b: &PutBinding) -> Result<(String, CheckedConfig), Problem> {
    let scope = scope(b)?;
    // Loading (compiling on first use) runs on a blocking thread.
    let plugin = match state.plugins.builtin_sha(&b.plugin) {
        Some(_) => {
            let (plugins, name) = (state.plugins.clone(), b.plugin.clone());
            tokio::task::spawn_blocking(move || plugins.builtin(&name))
                .await
                .map_err(Problem::internal)?
                .map_err(|e| Problem::field("plugin", e.to_string()))?
        }
        None => {
            // An upload of this producer (its newest version), else an error naming the choices.
            let sha = checked_upload(state, producer, &b.plugin).await?;
            let bytes = state.store.plugin_bytes(&sha).await?;
            // Compiling (if not loaded yet) runs on a blocking thread.
            let plugins = state.plugins.clone();
            tokio::task::spawn_blocking(move || plugins.by_sha(&sha, bytes.as_deref()))
                .await
                .map_err(Problem::internal)?
                .map_err(|e| Problem::field("plugin", e.to_string()))?
        }
    };
    let mut coupon = state.store.coupon(producer, &scope).await?;
    // A scope with unique codes but no static one still has coupons: `validate-config` sees
    // the pool or pattern as the scope's coupon (its code describes it; a 0.2.0 plugin asks
    // `unique-coupon` for the lead's own code when it sends).
    if let (None, Some((product, plan))) = (&coupon, scope.product_plan())
        && let Some((discount_percent, pattern)) = state.store.coupon_source(producer, product, plan).await?
    {
        let code = pattern.unwrap_or_else(|| "(a code from the pool)".to_string());
        coupon = Some(crate::store::bindings::CouponRow { code, discount_percent });
    }
    let context = BindingContext {
        scope: Scope::from(&scope),
        coupon: coupon.map(|c| Coupon { code: c.code, discount_percent: c.discount_percent }),
    };
    let config_json = b.config.to_string();
    // Within the checks' share of the instance pool, never the dispatcher's.
    let _slot = state.plugins.validation_slot().await;
    let checked = {
        let plugin = plugin.clone();
        tokio::task::spawn_blocking(move || plugin.validate_config(&config_json, &context))
            .await
            .map_err(Problem::internal)?
    };
    match checked {
        Ok(Ok(report)) => {
            // The messages' templates, rendered with sample values under the limits a lead's
            // would meet (off the async workers: a template is a producer's code).
            let config = b.config.clone();
            let problems = tokio::task::spawn_blocking(move || crate::delivery::template::check_config(&config))
                .await
                .map_err(Problem::internal)?;
            if !problems.is_empty() {
                let errors = problems
                    .into_iter()
                    .map(|(path, message)| FieldError { path: format!("config.{path}"), message })
                    .collect();
                return Err(Problem::invalid_fields(errors));
            }
            Ok((
                plugin.sha256.clone(),
                CheckedConfig {
                    summary: report.summary,
                    notes: report
                        .notes
                        .into_iter()
                        .map(|n| FieldError { path: format!("config.{}", n.path), message: n.message })
                        .collect(),
                },
            ))
        }
        Ok(Err(notes)) => {
            let errors: Vec<FieldError> = notes
                .into_iter()
                .map(|n| FieldError {
                    path: if n.path.is_empty() { "config".into() } else { format!("config.{}", n.path) },
                    message: n.message,
                })
                .collect();
            Err(Problem::invalid_fields(errors))
        }
        Err(e) => Err(Problem::field("plugin", format!("the plugin failed to check the config: {e}"))),
    }
}

/// The sha256 of the producer's newest upload named `name`, once its check is over: one
/// still compiling is waited for, up to the runtime's `binding_wait` (then 409: retry); one
/// that failed its check is refused with the reason.
async fn checked_upload(state: &AppState, producer: &str, name: &str) -> Result<String, Problem> {
    let wait = state.plugins.runtime().config().binding_wait;
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let named = state.store.plugin_by_name(producer, name).await?.ok_or_else(|| {
            Problem::field(
                "plugin",
                format!("unknown plugin {name:?}: use four-emails, flow, or upload it with POST /v1/plugins"),
            )
        })?;
        match named.status {
            PluginStatus::Ready => return Ok(named.sha256),
            PluginStatus::Failed => {
                let reason = named.reason.unwrap_or_default();
                return Err(Problem::field(
                    "plugin",
                    format!("{name} failed its check when it was uploaded: {reason}; upload a fixed component"),
                ));
            }
            PluginStatus::Compiling => {
                let now = tokio::time::Instant::now();
                if now >= deadline {
                    let message = format!(
                        "{name} is still compiling after {} s: retry shortly (GET /v1/plugins shows when it is ready)",
                        wait.as_secs_f64()
                    );
                    return Err(Problem {
                        status: axum::http::StatusCode::CONFLICT,
                        title: "Still compiling",
                        detail: format!("plugin: {message}"),
                        errors: vec![FieldError { path: "plugin".into(), message }],
                    });
                }
                // Woken when a background check ends; looked at again at least every 250 ms
                // (the check may end in another process).
                let nap = (deadline - now).min(std::time::Duration::from_millis(250));
                let _ = tokio::time::timeout(nap, state.plugins.wait_checked()).await;
            }
        }
    }
}

/// Check a binding with its plugin and store it (create or replace the binding of its scope).
pub async fn save(state: &AppState, producer: &str, b: &PutBinding) -> Result<SavedBinding, Problem> {
    let (sha256, report) = check(state, producer, b).await?;
    let scope = scope(b)?;
    let window = send_window(b).map_err(Problem::invalid_fields)?;
    let binding = NewBinding {
        producer_id: producer,
        scope: &scope,
        plugin: &b.plugin,
        plugin_sha256: &sha256,
        config: &b.config,
        enabled: b.enabled,
        send_window: window.as_ref(),
    };
    let stored = state.store.put_binding(&binding, state.clock.now_ms()).await?;
    Ok(SavedBinding { binding: stored, report })
}

pub async fn list(
    State(state): State<AppState>,
    ProducerCaller(producer): ProducerCaller,
) -> Result<Json<serde_json::Value>, Problem> {
    Ok(Json(serde_json::json!({"bindings": state.store.bindings(&producer).await?})))
}
