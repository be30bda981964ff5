//! The strategy: a producer's bindings by scope (all products, a product, a product and
//! plan), which serves how many leads, enable/disable; and the editor of one binding, by
//! plugin: `four-emails` as a form, `flow` as JSON beside its drawing with live counts, any
//! other plugin as JSON. Saving goes through `api::bindings::save`, so the plugin's own
//! `validate-config` judges, and its errors appear at the fields (or steps) they name.

use std::collections::{HashMap, HashSet};

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::ConsoleState;
use super::flow_graph;
use super::i18n::Strings;
use super::leads::internal;
use super::page::{Chrome, Tab, render, signed_error_page};
use super::session::{Signed, SignedForm};
use crate::api::bindings::{CheckedConfig, PutBinding, check};
use crate::api::problem::{FieldError, Problem};
use crate::domain::{Scope, SendWindow};

/// How many emails the four-emails form offers.
const MAX_EMAILS: usize = 4;

/// The scope of a binding, blanks as absent.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub(super) struct ScopeQuery {
    #[serde(default)]
    pub product: String,
    #[serde(default)]
    pub plan: String,
    #[serde(default)]
    pub plugin: String,
    #[serde(default)]
    pub saved: Option<String>,
}

impl ScopeQuery {
    /// The scope it names (trimmed); `None` for a plan without its product.
    fn scope(&self) -> Option<Scope> {
        Scope::new(Some(self.product.trim()), Some(self.plan.trim())).ok()
    }
}

/// The scope a form names (its fields trimmed, blanks absent); `None` for a plan without its
/// product.
fn form_scope(form: &SignedForm) -> Option<Scope> {
    Scope::new(form.get("product"), form.get("plan")).ok()
}

/// "All products", "Product X", "Product X · plan Y".
pub(super) fn scope_label(t: &Strings, scope: &Scope) -> String {
    match scope {
        Scope::ProductPlan(product, plan) => format!("{} {product} · {} {plan}", t.product, t.plan),
        Scope::Product(product) => format!("{} {product}", t.product),
        Scope::Producer => t.all_products.to_string(),
    }
}

pub(super) struct BindingView {
    pub scope: String,
    pub level: &'static str,
    pub product: String,
    pub plan: String,
    pub plugin: String,
    pub enabled: bool,
    /// `08:00–21:00 mon tue (America/Sao_Paulo)`, or the "any time" text.
    pub window: String,
    pub leads: i64,
    pub edit_qs: String,
}

/// A window as the strategy page shows it: `08:00–21:00 mon tue (America/Sao_Paulo)`.
fn window_label(window: &SendWindow) -> String {
    let spec = window.spec();
    let days = spec.days.unwrap_or_default();
    let days = if days.len() == 7 { String::new() } else { format!(" {}", days.join(" ")) };
    format!("{}–{}{days} ({})", spec.start, spec.end, spec.timezone)
}

fn edit_qs(scope: &Scope, plugin: &str) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("product", scope.product_id().unwrap_or(""))
        .append_pair("plan", scope.plan_id().unwrap_or(""))
        .append_pair("plugin", plugin)
        .finish()
}

#[derive(Template)]
#[template(path = "strategy.html")]
struct StrategyPage {
    c: Chrome,
    bindings: Vec<BindingView>,
    plugins: Vec<String>,
}

/// Built-ins, then the producer's uploads by name.
async fn plugin_names(state: &ConsoleState, producer: &str) -> Result<Vec<String>, crate::store::StoreError> {
    let mut names: Vec<String> = crate::guests::builtin_names().map(|n| n.to_string()).collect();
    for p in state.app.store.plugins(producer).await? {
        if !names.contains(&p.name) {
            names.push(p.name);
        }
    }
    Ok(names)
}

pub(super) async fn list(State(state): State<ConsoleState>, signed: Signed) -> Response {
    let lang = signed.lang;
    let t = lang.strings();
    let producer = signed.producer();
    let (bindings, served, plugins) = match (
        state.app.store.bindings(producer).await,
        state.app.store.leads_per_binding(producer).await,
        plugin_names(&state, producer).await,
    ) {
        (Ok(b), Ok(s), Ok(p)) => (b, s, p),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return internal(lang, e),
    };
    let mut views: Vec<BindingView> = bindings
        .iter()
        .map(|b| BindingView {
            scope: scope_label(t, &b.scope),
            level: match &b.scope {
                Scope::ProductPlan(..) => "plan",
                Scope::Product(_) => "product",
                Scope::Producer => "all",
            },
            product: b.scope.product_id().unwrap_or_default().to_string(),
            plan: b.scope.plan_id().unwrap_or_default().to_string(),
            plugin: b.plugin.clone(),
            enabled: b.enabled,
            window: b.send_window.as_ref().map_or_else(|| t.any_time.to_string(), window_label),
            leads: served.get(&b.id).copied().unwrap_or(0),
            edit_qs: edit_qs(&b.scope, &b.plugin),
        })
        .collect();
    // Broadest first: the producer-wide default, then products, then plans.
    let rank = |level: &str| match level {
        "all" => 0,
        "product" => 1,
        _ => 2,
    };
    views.sort_by(|a, b| (rank(a.level), &a.product, &a.plan).cmp(&(rank(b.level), &b.product, &b.plan)));
    render(
        StatusCode::OK,
        &StrategyPage { c: Chrome::signed(&signed, Tab::Strategy, t.strategy_title), bindings: views, plugins },
    )
}

/// One email of the four-emails form, with what the plugin said of its fields.
#[derive(Clone, Debug, Default)]
pub(super) struct EmailFields {
    pub n: usize,
    pub after: String,
    pub subject: String,
    pub html: String,
    pub text: String,
    pub coupon: bool,
    pub errors: HashMap<String, String>,
    /// The plugin's remark when the email is accepted but disabled (past 72 h).
    pub disabled: Option<String>,
}

impl EmailFields {
    pub(super) fn error(&self, field: &str) -> Option<&str> {
        self.errors.get(field).map(String::as_str)
    }
}

/// The four-emails form.
#[derive(Clone, Debug, Default)]
pub(super) struct FourEmailsForm {
    pub count: usize,
    pub min_price: String,
    pub emails: Vec<EmailFields>,
    pub coupon_allowed: bool,
}

fn blank_emails() -> Vec<EmailFields> {
    (0..MAX_EMAILS).map(|n| EmailFields { n, ..EmailFields::default() }).collect()
}

fn cents_text(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, (cents % 100).abs())
}

impl FourEmailsForm {
    fn from_config(config: &Value, coupon_allowed: bool) -> Self {
        let mut emails = blank_emails();
        let list = config["emails"].as_array().cloned().unwrap_or_default();
        for (i, e) in list.iter().take(MAX_EMAILS).enumerate() {
            let text = |f: &str| e[f].as_str().unwrap_or("").to_string();
            emails[i].after = text("after");
            emails[i].subject = text("subject");
            emails[i].html = text("html");
            emails[i].text = text("text");
            emails[i].coupon = e["coupon"].as_bool().unwrap_or(false);
        }
        FourEmailsForm {
            count: list.len().clamp(1, MAX_EMAILS),
            min_price: cents_text(config["min_price_cents"].as_i64().unwrap_or(2000)),
            emails,
            coupon_allowed,
        }
    }

    fn from_fields(fields: &HashMap<String, String>, coupon_allowed: bool) -> Self {
        let get = |name: &str| fields.get(name).cloned().unwrap_or_default();
        let mut emails = blank_emails();
        for (i, e) in emails.iter_mut().enumerate() {
            e.after = get(&format!("emails[{i}].after")).trim().to_string();
            e.subject = get(&format!("emails[{i}].subject"));
            e.html = get(&format!("emails[{i}].html"));
            e.text = get(&format!("emails[{i}].text"));
            e.coupon = fields.contains_key(&format!("emails[{i}].coupon"));
        }
        FourEmailsForm {
            count: get("count").trim().parse::<usize>().unwrap_or(1).clamp(1, MAX_EMAILS),
            min_price: get("min_price").trim().to_string(),
            emails,
            coupon_allowed,
        }
    }

    /// The config, or the fields the form itself cannot turn into one.
    fn config(&self, t: &Strings) -> Result<Value, Vec<FieldError>> {
        let cents = parse_price(&self.min_price)
            .ok_or_else(|| vec![FieldError { path: "config.min_price_cents".into(), message: t.bad_price.into() }])?;
        let emails: Vec<Value> = self.emails[..self.count]
            .iter()
            .map(|e| {
                let mut email = json!({"after": e.after, "subject": e.subject, "html": e.html});
                if !e.text.trim().is_empty() {
                    email["text"] = json!(e.text);
                }
                if e.coupon {
                    email["coupon"] = json!(true);
                }
                email
            })
            .collect();
        Ok(json!({"min_price_cents": cents, "emails": emails}))
    }

    /// Put the plugin's errors and remarks at their fields; returns those that name no field.
    fn place(&mut self, errors: &[FieldError], notes: &[FieldError]) -> Vec<FieldError> {
        let mut elsewhere = Vec::new();
        for e in errors {
            let path = e.path.strip_prefix("config.").unwrap_or(&e.path);
            match email_field(path) {
                Some((i, field)) if i < MAX_EMAILS => {
                    self.emails[i].errors.insert(field.to_string(), e.message.clone());
                }
                _ if path == "min_price_cents" => {
                    self.emails[0].errors.entry("__min_price".into()).or_insert_with(|| e.message.clone());
                }
                _ => elsewhere.push(e.clone()),
            }
        }
        for n in notes {
            let path = n.path.strip_prefix("config.").unwrap_or(&n.path);
            if let Some((i, "")) = email_field(path)
                && i < MAX_EMAILS
            {
                self.emails[i].disabled = Some(n.message.clone());
            }
        }
        elsewhere
    }

    /// Every error placed on the form, for the summary at its top: (field id, path, message).
    pub(super) fn placed_errors(&self) -> Vec<(String, String, String)> {
        let mut all = Vec::new();
        if let Some(e) = self.min_price_error() {
            all.push(("min_price".to_string(), "min_price_cents".to_string(), e.to_string()));
        }
        for email in &self.emails {
            for field in ["after", "subject", "html", "text", "coupon"] {
                if let Some(e) = email.error(field) {
                    all.push((
                        format!("emails-{}-{field}", email.n),
                        format!("emails[{}].{field}", email.n),
                        e.to_string(),
                    ));
                }
            }
        }
        all
    }

    pub(super) fn min_price_error(&self) -> Option<&str> {
        self.emails.first().and_then(|e| e.error("__min_price"))
    }
}

/// `emails[2].after` → (2, "after"); `emails[2]` → (2, "").
fn email_field(path: &str) -> Option<(usize, &str)> {
    let rest = path.strip_prefix("emails[")?;
    let (index, rest) = rest.split_once(']')?;
    Some((index.parse().ok()?, rest.strip_prefix('.').unwrap_or(rest)))
}

/// `20`, `20.00` or `20,00` → 2000 cents (the scenario form's price too).
pub(super) fn parse_price(text: &str) -> Option<i64> {
    let text = text.trim().replace(',', ".");
    let (units, fraction) = text.split_once('.').unwrap_or((&text, ""));
    if units.is_empty() || !units.bytes().all(|b| b.is_ascii_digit()) || fraction.len() > 2 {
        return None;
    }
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let units: i64 = units.parse().ok()?;
    let fraction: i64 = if fraction.is_empty() { 0 } else { format!("{fraction:0<2}").parse().ok()? };
    units.checked_mul(100)?.checked_add(fraction)
}

/// The step boxes and list of a flow editor.
pub(super) struct FlowView {
    pub svg: String,
    pub steps: Vec<(String, String, String)>,
}

/// What the editor shows for the binding's plugin.
pub(super) enum Editor {
    FourEmails(FourEmailsForm),
    Flow { json: String, view: FlowView },
    Json { json: String },
}

#[derive(Template)]
#[template(path = "strategy_edit.html")]
pub(super) struct EditPage {
    pub c: Chrome,
    pub scope: String,
    pub product: String,
    pub plan: String,
    pub plugin: String,
    pub enabled: bool,
    pub saved: bool,
    pub summary: String,
    pub editor: Editor,
    /// Errors that name no field of the form (shown at the top, and for JSON editors by path).
    pub errors: Vec<FieldError>,
    pub notes: Vec<FieldError>,
}

impl EditPage {
    fn is_four_emails(&self) -> bool {
        matches!(self.editor, Editor::FourEmails(_))
    }
}

/// A default config to start a new binding from.
fn starter_config(plugin: &str) -> Value {
    match plugin {
        "four-emails" => json!({"min_price_cents": 2000, "emails": [
            {"after": "20m", "subject": "{{first_name}}, your order is waiting",
             "html": "<p>Hi {{first_name}}, you were almost there! <a href=\"{{checkout_url}}\">Finish your purchase</a>.</p><p><a href=\"{{unsubscribe_url}}\">Unsubscribe</a></p>"}]}),
        "flow" => serde_json::from_str(include_str!("../../../examples/flows/getall-abandoned-cart.json"))
            .unwrap_or_else(|_| json!({})),
        _ => json!({}),
    }
}

/// The editor for `plugin` showing `config`, with errors and remarks placed.
#[allow(clippy::too_many_arguments)]
async fn editor(
    state: &ConsoleState,
    signed: &Signed,
    plugin: &str,
    config: &Value,
    raw_json: Option<String>,
    four_emails: Option<FourEmailsForm>,
    binding_id: Option<&str>,
    scope: &Scope,
    errors: &[FieldError],
    notes: &[FieldError],
) -> Result<(Editor, Vec<FieldError>), crate::store::StoreError> {
    let t = signed.lang.strings();
    let json_text = || raw_json.clone().unwrap_or_else(|| serde_json::to_string_pretty(config).unwrap_or_default());
    let flow_text = || raw_json.clone().unwrap_or_else(|| flow_graph::pretty(config));
    Ok(match plugin {
        "four-emails" => {
            let coupon_allowed = scope.product_plan().is_some();
            let mut form = four_emails.unwrap_or_else(|| FourEmailsForm::from_config(config, coupon_allowed));
            let elsewhere = form.place(errors, notes);
            (Editor::FourEmails(form), elsewhere)
        }
        "flow" => {
            let graph = flow_graph::parse(config);
            let counts = match binding_id {
                Some(id) => state.app.store.flow_step_counts(signed.producer(), id).await?,
                None => HashMap::new(),
            };
            let broken: HashSet<String> =
                errors.iter().filter_map(|e| flow_graph::step_of(&e.path)).map(str::to_string).collect();
            let svg = flow_graph::svg(&graph, &counts, &broken, t);
            let steps = graph
                .steps
                .values()
                .map(|s| {
                    let c = counts.get(&s.id).copied().unwrap_or_default();
                    (s.id.clone(), s.summary.clone(), flow_graph::counts_text(t, s.kind, &c))
                })
                .collect();
            (Editor::Flow { json: flow_text(), view: FlowView { svg, steps } }, errors.to_vec())
        }
        _ => (Editor::Json { json: json_text() }, errors.to_vec()),
    })
}

pub(super) async fn edit(State(state): State<ConsoleState>, signed: Signed, Query(q): Query<ScopeQuery>) -> Response {
    let lang = signed.lang;
    let t = lang.strings();
    let producer = signed.producer().to_string();
    let Some(scope) = q.scope() else {
        return signed_error_page(
            &signed,
            Tab::Strategy,
            StatusCode::UNPROCESSABLE_ENTITY,
            t.plan_needs_product.to_string(),
        );
    };
    let bindings = match state.app.store.bindings(&producer).await {
        Ok(b) => b,
        Err(e) => return internal(lang, e),
    };
    let existing = bindings.iter().find(|b| b.scope == scope);
    let plugin = match (q.plugin.trim(), existing) {
        ("", Some(b)) => b.plugin.clone(),
        ("", None) => "four-emails".to_string(),
        (p, _) => p.to_string(),
    };
    let same_plugin = existing.filter(|b| b.plugin == plugin);
    let config = same_plugin.map(|b| b.config.clone()).unwrap_or_else(|| starter_config(&plugin));
    let request = PutBinding {
        product_id: scope.product_id().map(str::to_string),
        plan_id: scope.plan_id().map(str::to_string),
        plugin: plugin.clone(),
        config: config.clone(),
        enabled: existing.is_none_or(|b| b.enabled),
        send_window: existing.and_then(|b| b.send_window.as_ref().map(SendWindow::spec)),
    };
    // What the plugin says of the config now (remarks such as disabled emails).
    let (summary, errors, notes) = match check(&state.app, &producer, &request).await {
        Ok((_, CheckedConfig { summary, notes })) => (summary, Vec::new(), notes),
        Err(problem) => (String::new(), problem_errors(problem), Vec::new()),
    };
    let page = edit_page(
        &state,
        &signed,
        EditInput {
            plugin,
            config,
            raw_json: None,
            four_emails: None,
            binding_id: same_plugin.map(|b| b.id.clone()),
            scope,
            enabled: request.enabled,
            saved: q.saved.is_some(),
            summary,
            errors,
            notes,
        },
    )
    .await;
    match page {
        Ok(page) => render(StatusCode::OK, &page),
        Err(e) => internal(lang, e),
    }
}

/// The field errors of a refusal (a problem with none is one error at `config`).
pub(super) fn problem_errors(problem: Problem) -> Vec<FieldError> {
    if problem.errors.is_empty() {
        vec![FieldError { path: "config".into(), message: problem.detail }]
    } else {
        problem.errors
    }
}

pub(super) struct EditInput {
    pub plugin: String,
    pub config: Value,
    pub raw_json: Option<String>,
    pub four_emails: Option<FourEmailsForm>,
    pub binding_id: Option<String>,
    pub scope: Scope,
    pub enabled: bool,
    pub saved: bool,
    pub summary: String,
    pub errors: Vec<FieldError>,
    pub notes: Vec<FieldError>,
}

async fn edit_page(
    state: &ConsoleState,
    signed: &Signed,
    input: EditInput,
) -> Result<EditPage, crate::store::StoreError> {
    let t = signed.lang.strings();
    let (editor, elsewhere) = editor(
        state,
        signed,
        &input.plugin,
        &input.config,
        input.raw_json,
        input.four_emails,
        input.binding_id.as_deref(),
        &input.scope,
        &input.errors,
        &input.notes,
    )
    .await?;
    let label = scope_label(t, &input.scope);
    Ok(EditPage {
        c: Chrome::signed(signed, Tab::Strategy, format!("{} · {label}", t.strategy_title)),
        scope: label,
        product: input.scope.product_id().unwrap_or_default().to_string(),
        plan: input.scope.plan_id().unwrap_or_default().to_string(),
        plugin: input.plugin,
        enabled: input.enabled,
        saved: input.saved,
        summary: input.summary,
        editor,
        errors: elsewhere,
        notes: input.notes,
    })
}

/// The config a strategy form describes: the four-emails fields, or the JSON of `config`.
/// On a JSON syntax error: the error at `config`, and the text as typed.
pub(super) fn config_from_form(
    t: &Strings,
    plugin: &str,
    form: &SignedForm,
) -> (Result<Value, Vec<FieldError>>, Option<FourEmailsForm>, Option<String>) {
    if plugin == "four-emails" && form.fields.contains_key("count") {
        let coupon_allowed = form_scope(form).is_some_and(|s| s.product_plan().is_some());
        let fields = FourEmailsForm::from_fields(&form.fields, coupon_allowed);
        (fields.config(t), Some(fields), None)
    } else {
        let text = form.raw("config").to_string();
        let parsed = serde_json::from_str::<Value>(&text)
            .map_err(|e| vec![FieldError { path: "config".into(), message: format!("{} ({e})", t.json_invalid) }]);
        (parsed, None, Some(text))
    }
}

pub(super) async fn save_form(state: &ConsoleState, form: SignedForm) -> Response {
    let signed = form.signed.clone();
    let lang = signed.lang;
    let t = lang.strings();
    let producer = signed.producer().to_string();
    let plugin = form.get("plugin").unwrap_or("four-emails").to_string();
    let Some(scope) = form_scope(&form) else {
        return signed_error_page(
            &signed,
            Tab::Strategy,
            StatusCode::UNPROCESSABLE_ENTITY,
            t.plan_needs_product.into(),
        );
    };
    let enabled = form.get("enabled").is_some();
    let (config, four_emails, raw_json) = config_from_form(t, &plugin, &form);
    let bindings = match state.app.store.bindings(&producer).await {
        Ok(b) => b,
        Err(e) => return internal(lang, e),
    };
    let existing = bindings.iter().find(|b| b.scope == scope);
    let outcome = match &config {
        Ok(config) => {
            let request = PutBinding {
                product_id: scope.product_id().map(str::to_string),
                plan_id: scope.plan_id().map(str::to_string),
                plugin: plugin.clone(),
                config: config.clone(),
                enabled,
                // The console does not edit windows (PUT /v1/bindings does): kept as they are.
                send_window: existing.and_then(|b| b.send_window.as_ref().map(SendWindow::spec)),
            };
            crate::api::bindings::save(&state.app, &producer, &request).await.map_err(problem_errors)
        }
        Err(errors) => Err(errors.clone()),
    };
    match outcome {
        Ok(_) => {
            let qs = edit_qs(&scope, &plugin);
            Redirect::to(&format!("/console/strategy/edit?{qs}&saved=1")).into_response()
        }
        Err(errors) => {
            let shown = config.clone().unwrap_or_else(|_| {
                existing.filter(|b| b.plugin == plugin).map(|b| b.config.clone()).unwrap_or(Value::Null)
            });
            let page = edit_page(
                state,
                &signed,
                EditInput {
                    binding_id: existing.filter(|b| b.plugin == plugin).map(|b| b.id.clone()),
                    plugin,
                    config: shown,
                    raw_json,
                    four_emails,
                    scope,
                    enabled,
                    saved: false,
                    summary: String::new(),
                    errors,
                    notes: Vec::new(),
                },
            )
            .await;
            match page {
                Ok(page) => render(StatusCode::UNPROCESSABLE_ENTITY, &page),
                Err(e) => internal(lang, e),
            }
        }
    }
}

pub(super) async fn submit(State(state): State<ConsoleState>, form: SignedForm) -> Response {
    save_form(&state, form).await
}

/// Enable or disable a binding (its config is checked again, as any save).
pub(super) async fn toggle(State(state): State<ConsoleState>, form: SignedForm) -> Response {
    let lang = form.signed.lang;
    let producer = form.signed.producer().to_string();
    let scope = form_scope(&form);
    let bindings = match state.app.store.bindings(&producer).await {
        Ok(b) => b,
        Err(e) => return internal(lang, e),
    };
    let Some(b) = bindings.into_iter().find(|b| Some(&b.scope) == scope.as_ref()) else {
        return signed_error_page(
            &form.signed,
            Tab::Strategy,
            StatusCode::NOT_FOUND,
            lang.strings().binding_not_found.to_string(),
        );
    };
    let request = PutBinding {
        product_id: b.scope.product_id().map(str::to_string),
        plan_id: b.scope.plan_id().map(str::to_string),
        plugin: b.plugin,
        config: b.config,
        enabled: form.get("enabled") == Some("1"),
        send_window: b.send_window.as_ref().map(SendWindow::spec),
    };
    match crate::api::bindings::save(&state.app, &producer, &request).await {
        Ok(_) => Redirect::to("/console/strategy").into_response(),
        Err(problem) => {
            signed_error_page(&form.signed, Tab::Strategy, StatusCode::UNPROCESSABLE_ENTITY, problem.detail)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_read_with_either_decimal_mark() {
        assert_eq!(parse_price("20"), Some(2000));
        assert_eq!(parse_price("20,5"), Some(2050));
        assert_eq!(parse_price("1.99"), Some(199));
        for bad in ["", "-1", "1.999", "abc", "1.a"] {
            assert_eq!(parse_price(bad), None, "{bad}");
        }
    }

    #[test]
    fn plugin_paths_land_on_their_email_field() {
        assert_eq!(email_field("emails[1].after"), Some((1, "after")));
        assert_eq!(email_field("emails[3]"), Some((3, "")));
        assert_eq!(email_field("min_price_cents"), None);
        let mut form = FourEmailsForm { count: 2, emails: blank_emails(), ..FourEmailsForm::default() };
        let errors = vec![
            FieldError { path: "config.emails[1].after".into(), message: "too soon".into() },
            FieldError { path: "config.emails".into(), message: "at least 1".into() },
        ];
        let notes = vec![FieldError { path: "config.emails[0]".into(), message: "disabled: late".into() }];
        let elsewhere = form.place(&errors, &notes);
        assert_eq!(form.emails[1].error("after"), Some("too soon"));
        assert_eq!(form.emails[0].disabled.as_deref(), Some("disabled: late"));
        assert_eq!(elsewhere.len(), 1);
    }
}
