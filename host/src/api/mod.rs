//! The HTTP API (axum): one file per resource. It authenticates, checks bodies and sizes, and
//! calls the store and the plugin registry; it never touches wasmtime directly (plugin calls go
//! through [`crate::dispatch::plugins`]).
//!
//! ## Layout
//! - [`problem`]: RFC 9457 problem+json errors with a field-level `errors` list.
//! - `openapi`: `/openapi.json`, generated from [`routes`] and the body types' schemas.
//! - [`auth`]: admin token, producer API keys, platform bearer token or `Funnel-Signature` HMAC.
//! - `producers`, `bindings`, `coupons`, `events`, `leads`, `stats`, `settings`, `lists`, `plugins`,
//!   `contacts` (erasure), `health`: the routes.
//! - `tracking`: the public click and unsubscribe links.
//! - [`webhooks`]: the producer's outgoing webhooks and their deliveries.

pub mod auth;
pub mod bindings;
mod contacts;
mod coupons;
pub mod events;
mod health;
mod leads;
mod lists;
mod openapi;
pub mod plugins;
pub(crate) mod problem;
mod producers;
pub mod secrets;
mod settings;
mod stats;
mod tracking;
pub mod webhooks;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{MethodRouter, delete, get, post, put};
use tokio::sync::Notify;

use crate::clock::Clock;
use crate::dispatch::plugins::PluginRegistry;
use crate::store::Database;

pub use secrets::Secrets;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Database,
    pub plugins: Arc<PluginRegistry>,
    pub clock: Arc<dyn Clock>,
    pub secrets: Arc<Secrets>,
    /// Woken when new work is stored, so the engine loop does not wait for its next tick.
    pub work: Arc<Notify>,
    /// Where webhooks may point (`FUNNEL_WEBHOOK_ALLOW_PRIVATE`); checked at registration.
    pub webhook_targets: crate::webhooks::TargetPolicy,
}

/// Largest request body (a batch of 1000 events fits; plugin uploads have their own route).
const BODY_LIMIT: usize = 4 * 1024 * 1024;

/// Largest plugin upload (Python and JS components are 12 to 18 MB).
pub const PLUGIN_LIMIT: usize = 32 * 1024 * 1024;

/// Schema pattern of a lead id and of a link token in a path: what `store::new_id` and
/// `store::new_token` make (32 hex digits). Any other value is answered 404, as an unknown one.
pub const ID_PATTERN: &str = r"^[0-9a-f]{32}$";
/// Schema pattern of a webhook id (`wh_` and a `store::new_id`).
pub const WEBHOOK_ID_PATTERN: &str = r"^wh_[0-9a-f]{32}$";
/// Schema pattern of a page cursor: the `next_cursor` a page answered (`<ms>.<id>`).
pub const CURSOR_PATTERN: &str = r"^-?[0-9]{1,18}\.[0-9a-z_]{1,64}$";

/// Who may call a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Auth {
    Public,
    Admin,
    Producer,
    Platform,
}

/// One route: the router is built from these, and so is `/openapi.json`, so the document
/// cannot drift from what is served.
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    pub auth: Auth,
    /// JSON Schema of the request body, if it is JSON.
    pub body: Option<fn() -> serde_json::Value>,
    /// Documented answers (an OpenAPI `responses` object), beside the problem+json default.
    pub responses: Option<fn() -> serde_json::Value>,
    /// JSON Schema of an object whose properties are the path's `{parameters}`, by name (the
    /// type the handler extracts with `Path`); a parameter it does not name is any string.
    pub path_params: Option<fn() -> serde_json::Value>,
    /// JSON Schema of an object whose properties are the query parameters (the type the
    /// handler extracts with `Query`).
    pub query: Option<fn() -> serde_json::Value>,
    handler: MethodRouter<AppState>,
}

fn schema<T: schemars::JsonSchema>() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(T)).unwrap_or_default()
}

/// What one documented status of a route answers with.
enum Answer {
    /// A JSON body of this schema (of the type the handler returns).
    Json(serde_json::Value),
    /// A body of this content type that is not JSON (an HTML page, Prometheus text).
    Other(&'static str),
    /// No body (204, a redirect).
    Empty,
}

/// An OpenAPI `responses` object from `(status, description, answer)` entries.
fn answers(entries: Vec<(&str, &str, Answer)>) -> serde_json::Value {
    let mut all = serde_json::Map::new();
    for (status, description, answer) in entries {
        let content = match answer {
            Answer::Json(schema) => serde_json::json!({"application/json": {"schema": schema}}),
            Answer::Other(content_type) => serde_json::json!({ content_type: {"schema": {"type": "string"}} }),
            Answer::Empty => serde_json::json!(null),
        };
        let mut entry = serde_json::json!({ "description": description });
        if !content.is_null() {
            entry["content"] = content;
        }
        all.insert(status.to_string(), entry);
    }
    serde_json::Value::Object(all)
}

/// `200` answering `T` as JSON.
fn ok<T: schemars::JsonSchema>(description: &str) -> serde_json::Value {
    answers(vec![("200", description, Answer::Json(schema::<T>()))])
}

impl Route {
    /// A route whose callers `auth` names; the router guards it accordingly (see [`auth`]).
    pub fn new(
        method: &'static str,
        path: &'static str,
        summary: &'static str,
        auth: Auth,
        handler: MethodRouter<AppState>,
    ) -> Route {
        Route { method, path, summary, auth, body: None, responses: None, path_params: None, query: None, handler }
    }

    /// The handler behind the guard of the route's `auth`.
    fn guarded(self, state: &AppState) -> MethodRouter<AppState> {
        use axum::middleware::from_fn_with_state;
        match self.auth {
            Auth::Public => self.handler,
            Auth::Admin => self.handler.route_layer(from_fn_with_state(state.clone(), auth::admin)),
            Auth::Producer => self.handler.route_layer(from_fn_with_state(state.clone(), auth::producer)),
            Auth::Platform => self.handler.route_layer(from_fn_with_state(state.clone(), auth::platform)),
        }
    }
}

/// Every route of the API.
pub fn routes() -> Vec<Route> {
    use Auth::*;
    vec![
        Route {
            responses: Some(|| ok::<health::Health>("The database answers")),
            ..Route::new("get", "/healthz", "Liveness; the database answers", Public, get(health::healthz))
        },
        Route {
            responses: Some(|| {
                answers(vec![("200", "Prometheus text exposition", Answer::Other("text/plain; version=0.0.4"))])
            }),
            ..Route::new("get", "/metrics", "Prometheus metrics", Public, get(health::metrics))
        },
        Route {
            responses: Some(|| {
                answers(vec![("200", "OpenAPI 3.1", Answer::Json(serde_json::json!({"type": "object"})))])
            }),
            ..Route::new("get", "/openapi.json", "This document", Public, get(openapi::document))
        },
        Route {
            body: Some(schema::<producers::NewProducer>),
            responses: Some(|| {
                answers(vec![(
                    "201",
                    "Created; the API key is shown this once",
                    Answer::Json(schema::<producers::CreatedProducer>()),
                )])
            }),
            ..Route::new(
                "post",
                "/v1/admin/producers",
                "Create a producer; returns its API key once",
                Admin,
                post(producers::create),
            )
        },
        Route {
            query: Some(schema::<plugins::UploadQuery>),
            responses: Some(plugins::upload_responses),
            ..Route::new(
                "post",
                "/v1/plugins",
                "Upload a plugin component (body: the .wasm bytes; ?name=&version=); 202 when it is checked in \
                 the background",
                Producer,
                // The handler streams the body itself (after the key is checked), capped by the
                // runtime's `max_upload_bytes`; this limit only lifts the router's 4 MiB default.
                post(plugins::upload).layer(DefaultBodyLimit::max(PLUGIN_LIMIT)),
            )
        },
        Route {
            responses: Some(plugins::list_responses),
            ..Route::new(
                "get",
                "/v1/plugins",
                "Your plugins (each compiling, ready or failed) and the built-ins",
                Producer,
                get(plugins::list),
            )
        },
        Route {
            path_params: Some(schema::<plugins::PluginPath>),
            responses: Some(|| answers(vec![("204", "Deleted", Answer::Empty)])),
            ..Route::new(
                "delete",
                "/v1/plugins/{name}/{version}",
                "Delete a stored component no binding or running lead needs",
                Producer,
                delete(plugins::delete),
            )
        },
        Route {
            body: Some(schema::<bindings::PutBinding>),
            ..Route::new(
                "put",
                "/v1/bindings",
                "Bind a plugin and config to a scope (checked by the plugin)",
                Producer,
                put(bindings::put),
            )
        },
        Route::new("get", "/v1/bindings", "Your bindings", Producer, get(bindings::list)),
        Route {
            body: Some(schema::<coupons::NewCoupon>),
            ..Route::new(
                "post",
                "/v1/coupons",
                "Register a product and plan's coupon: a static code, codes for its pool, or a pattern",
                Producer,
                post(coupons::create),
            )
        },
        Route {
            responses: Some(coupons::list_responses),
            ..Route::new(
                "get",
                "/v1/coupons",
                "Your coupons: static codes, and pools and patterns with codes total, assigned and left",
                Producer,
                get(coupons::list),
            )
        },
        Route {
            body: Some(schema::<events::EventBody>),
            responses: Some(|| {
                answers(vec![(
                    "202",
                    "Stored (or a duplicate of a stored event); handled in the background",
                    Answer::Json(schema::<events::EventAnswer>()),
                )])
            }),
            ..Route::new("post", "/v1/events", "One platform event", Platform, post(events::one))
        },
        Route {
            body: Some(schema::<events::BatchBody>),
            responses: Some(|| {
                answers(vec![(
                    "202",
                    "Every event stored (or a duplicate), in the order sent",
                    Answer::Json(schema::<events::BatchAnswer>()),
                )])
            }),
            ..Route::new("post", "/v1/events/batch", "Up to 1000 platform events", Platform, post(events::batch))
        },
        Route {
            query: Some(schema::<leads::ListQuery>),
            responses: Some(|| ok::<leads::LeadPage>("A page of your leads")),
            ..Route::new("get", "/v1/leads", "My leads, newest first (?cursor=&limit=)", Producer, get(leads::list))
        },
        Route {
            path_params: Some(schema::<leads::LeadPath>),
            responses: Some(|| ok::<leads::LeadWithTimeline>("The lead, its messages and its timeline")),
            ..Route::new("get", "/v1/leads/{id}", "One lead with its messages and timeline", Producer, get(leads::one))
        },
        Route {
            query: Some(schema::<stats::StatsQuery>),
            responses: Some(stats::responses),
            ..Route::new(
                "get",
                "/v1/stats",
                "Leads, recoveries and revenue, per message tag and per A/B split variant; ?from=&to= (YYYY-MM-DD) \
                 adds daily counts",
                Producer,
                get(stats::stats),
            )
        },
        Route {
            body: Some(schema::<webhooks::NewWebhook>),
            responses: Some(webhooks::create_responses),
            ..Route::new(
                "post",
                "/v1/webhooks",
                "Register a webhook for event types; returns its signing secret once",
                Producer,
                post(webhooks::create),
            )
        },
        Route {
            responses: Some(webhooks::list_responses),
            ..Route::new("get", "/v1/webhooks", "Your webhooks (without their secrets)", Producer, get(webhooks::list))
        },
        Route {
            path_params: Some(schema::<webhooks::WebhookPath>),
            responses: Some(webhooks::delete_responses),
            ..Route::new(
                "delete",
                "/v1/webhooks/{id}",
                "Delete a webhook and its deliveries",
                Producer,
                delete(webhooks::delete),
            )
        },
        Route {
            path_params: Some(schema::<webhooks::WebhookPath>),
            query: Some(schema::<webhooks::DeliveriesQuery>),
            responses: Some(webhooks::deliveries_responses),
            ..Route::new(
                "get",
                "/v1/webhooks/{id}/deliveries",
                "A webhook's deliveries with their attempts and status codes, newest first (?cursor=&limit=)",
                Producer,
                get(webhooks::deliveries),
            )
        },
        Route {
            body: Some(schema::<settings::Settings>),
            responses: Some(|| ok::<settings::SettingsDocument>("The settings as stored")),
            ..Route::new(
                "put",
                "/v1/settings",
                "Your settings: the contact frequency cap (max_recovery_messages_per_contact)",
                Producer,
                put(settings::put),
            )
        },
        Route {
            responses: Some(|| ok::<settings::SettingsDocument>("Your settings")),
            ..Route::new("get", "/v1/settings", "Your settings", Producer, get(settings::get))
        },
        Route {
            responses: Some(|| ok::<lists::Lists>("Your lists, by name")),
            ..Route::new("get", "/v1/lists", "Your lists and their sizes", Producer, get(lists::list))
        },
        Route {
            path_params: Some(schema::<lists::ListPath>),
            responses: Some(|| ok::<lists::ListMembers>("The list's members (none for a list never used)")),
            ..Route::new("get", "/v1/lists/{name}/members", "Members of a list", Producer, get(lists::members))
        },
        Route {
            path_params: Some(schema::<contacts::ContactPath>),
            responses: Some(|| answers(vec![("204", "Erased (also when nothing was stored)", Answer::Empty)])),
            ..Route::new(
                "delete",
                "/v1/contacts/{email}",
                "Erase a person's data (LGPD / GDPR)",
                Producer,
                delete(contacts::erase),
            )
        },
        Route {
            path_params: Some(schema::<tracking::TokenPath>),
            responses: Some(|| answers(vec![("302", "Redirect to the checkout (Location)", Answer::Empty)])),
            ..Route::new(
                "get",
                "/r/{token}",
                "Tracked link: records a click, redirects to the checkout",
                Public,
                get(tracking::click),
            )
        },
        Route {
            path_params: Some(schema::<tracking::TokenPath>),
            responses: Some(|| answers(vec![("200", "An HTML page with the button", Answer::Other("text/html"))])),
            ..Route::new("get", "/u/{token}", "Unsubscribe confirmation page", Public, get(tracking::unsubscribe_page))
        },
        Route {
            path_params: Some(schema::<tracking::TokenPath>),
            responses: Some(|| answers(vec![("200", "An HTML page saying it is done", Answer::Other("text/html"))])),
            ..Route::new("post", "/u/{token}", "One-click unsubscribe (RFC 8058)", Public, post(tracking::unsubscribe))
        },
    ]
}

/// The router with every route.
pub fn router(state: AppState) -> Router {
    router_from(routes(), state)
}

/// A router serving `routes`, each behind the guard its table entry names.
pub fn router_from(routes: Vec<Route>, state: AppState) -> Router {
    let mut by_path: std::collections::BTreeMap<&'static str, MethodRouter<AppState>> =
        std::collections::BTreeMap::new();
    for r in routes {
        let path = r.path;
        let handler = r.guarded(&state);
        let merged = match by_path.remove(path) {
            Some(existing) => existing.merge(handler),
            None => handler,
        };
        by_path.insert(path, merged);
    }
    let mut router = Router::new();
    for (path, handler) in by_path {
        router = router.route(path, handler);
    }
    router
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::map_response(oversized_as_problem))
        .layer(axum::middleware::from_fn(refuse_control_characters))
        .with_state(state)
}

/// A path or query holding a percent-encoded control character (`%00`, `%1F`, `%7F`) is
/// refused before any handler runs: no id, name, token or cursor takes one, and a NUL bound to
/// a PostgreSQL query fails it (a 500, on public routes too). The console's router uses it as well.
pub async fn refuse_control_characters(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    const MESSAGE: &str = "must not contain control characters (%00 to %1F, %7F)";
    let uri = request.uri();
    if encodes_control_character(uri.path()) {
        return problem::Problem::field("path", MESSAGE).into_response();
    }
    if let Some(query) = uri.query().filter(|q| encodes_control_character(q)) {
        // Name the parameter (`version`), unless its name is the culprit.
        let culprit = url::form_urlencoded::parse(query.as_bytes())
            .find(|(key, value)| key.contains(char::is_control) || value.contains(char::is_control))
            .map(|(key, _)| key.into_owned())
            .filter(|key| !key.contains(char::is_control))
            .unwrap_or_else(|| "query".into());
        return problem::Problem::field(&culprit, MESSAGE).into_response();
    }
    next.run(request).await
}

/// Whether percent-encoded `text` decodes to a control character.
fn encodes_control_character(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.windows(3).any(|w| {
        w[0] == b'%'
            && std::str::from_utf8(&w[1..])
                .ok()
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                .is_some_and(|b| b < 0x20 || b == 0x7f)
    })
}

/// axum answers a body over a route's limit with a plain-text 413 before any handler runs;
/// send the same problem+json, naming the body, as every other refusal.
async fn oversized_as_problem(response: axum::response::Response) -> axum::response::Response {
    use axum::response::IntoResponse;
    let is_problem = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == b"application/problem+json");
    if response.status() != axum::http::StatusCode::PAYLOAD_TOO_LARGE || is_problem {
        return response;
    }
    let message = format!(
        "the body is larger than this route takes: {} MiB ({} MiB for plugin uploads)",
        BODY_LIMIT >> 20,
        PLUGIN_LIMIT >> 20
    );
    problem::Problem {
        status: axum::http::StatusCode::PAYLOAD_TOO_LARGE,
        title: "Payload too large",
        detail: message.clone(),
        errors: vec![problem::FieldError { path: "body".into(), message }],
    }
    .into_response()
}

#[cfg(test)]
mod tests {
    //! Each pattern a request schema carries accepts what the handler's own check accepts.

    use regex_automata::meta::Regex;

    use crate::domain::coupon::{self, CouponPattern};
    use crate::domain::text;
    use crate::runtime::plugin;

    fn agree(pattern: &str, check: impl Fn(&str) -> bool, samples: &[&str]) {
        let re = Regex::new(pattern).unwrap_or_else(|e| panic!("{pattern}: {e}"));
        for sample in samples {
            assert_eq!(re.is_match(sample), check(sample), "{pattern} and the handler disagree on {sample:?}");
        }
    }

    const TEXT: &[&str] = &[
        "",
        " ",
        "a",
        " a ",
        "Loja da Ana",
        "\t",
        "a\tb",
        "a\nb",
        "\u{0}",
        "a\u{7f}",
        "a\u{85}b",
        "\u{9f}",
        "\u{a0}",
        "\u{a0}x",
        "\u{2003}",
        "\u{3000}",
        "Élise",
        "é",
        "日本",
        "a b",
        "a-b_c.d",
        "A+1",
        "1.0.0",
        "x@y",
    ];

    #[test]
    fn line_patterns_agree_with_the_text_checks() {
        agree(text::SINGLE_LINE, |s| text::single_line_problem(s).is_none(), TEXT);
        agree(text::NON_BLANK_LINE, |s| text::required_line_problem(s, usize::MAX).is_none(), TEXT);
    }

    #[test]
    fn coupon_patterns_agree_with_the_coupon_checks() {
        let (a64, a65) = ("A".repeat(64), "A".repeat(65));
        let codes = [TEXT, &["VOLTA-2026_a.1", "ação", "<b>", "A\"B", "V10", &a64, &a65]].concat();
        agree(coupon::POOL_CODE, |s| coupon::pool_code_problem(s).is_none(), &codes);
        // The schema's maxLength (64 characters) stands beside the pattern.
        agree(coupon::STATIC_CODE, |s| s.chars().count() > 64 || coupon::static_code_problem(s).is_none(), &codes);
        // The syntax only: how many random characters a pattern has is the handler's to say.
        let patterns = [
            "VOLTA-{A6}",
            "BF{D4}-{A4}",
            "{A64}",
            "{A65}",
            "{A0}",
            "{A06}",
            "{D1}",
            "{X6}",
            "V-{A6",
            "V {A6}",
            "{Á6}",
            "{A+6}",
            "{A}",
            "a.b_c-{D9}",
        ];
        let syntax_ok = |s: &str| match CouponPattern::parse(s) {
            Ok(_) => true,
            Err(e) => e.contains("random characters") || e.contains("its codes would be"),
        };
        agree(coupon::PATTERN_SYNTAX, syntax_ok, &patterns);
    }

    #[test]
    fn plugin_patterns_agree_with_the_plugin_checks() {
        let (a64, a65) = ("a".repeat(64), "a".repeat(65));
        let names = [TEXT, &["four-emails", "my_plugin2", "Upper", &a64, &a65]].concat();
        agree(plugin::NAME_PATTERN, plugin::name_ok, &names);
        let (n32, n33) = ("1".repeat(32), "1".repeat(33));
        let versions = [TEXT, &["0.1.0", "1.0.0+build.5", "1.0.0-rc_1", &n32, &n33]].concat();
        agree(plugin::VERSION_PATTERN, |s| plugin::version_problem(s).is_none(), &versions);
    }

    #[test]
    fn id_patterns_match_the_ids_the_store_makes() {
        let id = Regex::new(super::ID_PATTERN).expect("id");
        let webhook = Regex::new(super::WEBHOOK_ID_PATTERN).expect("webhook id");
        let cursor = Regex::new(super::CURSOR_PATTERN).expect("cursor");
        for _ in 0..100 {
            let (new_id, token) = (crate::store::new_id(), crate::store::new_token());
            assert!(id.is_match(&new_id) && id.is_match(&token), "{new_id} {token}");
            assert!(webhook.is_match(&format!("wh_{new_id}")));
            // The cursors pages answer: `<ms>.<id>` of a lead or a delivery.
            assert!(cursor.is_match(&format!("1796167122831.{new_id}")) && cursor.is_match(&format!("0.whd_{new_id}")));
        }
    }
}
