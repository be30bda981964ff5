//! "Try it": a scenario form (the lead, what it does and when) run through `sim::run`, the
//! same engine as `funnel simulate`, against a saved binding or the config being edited, before
//! anything is saved. The scenario is built as the JSON `funnel simulate` reads and parsed by
//! its one parser, so both refuse the same things.

use std::time::Duration;

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::ConsoleState;
use super::i18n::Strings;
use super::leads::internal;
use super::page::{Chrome, Tab, duration, render};
use super::session::{Signed, SignedForm};
use super::strategy::{config_from_form, scope_label};
use crate::sim::{self, PluginSource, SimulateInput};
use funnel_sdk::wire::{Line, Scenario};

/// Scenario rows the form offers.
const EVENT_ROWS: usize = 5;
/// A simulation taking longer than this is abandoned (its plugin calls have their own limits).
const DEADLINE: Duration = Duration::from_secs(30);

pub(super) const EVENT_TYPES: &[&str] =
    &["click", "open", "order.paid", "order.refunded", "unsubscribe", "checkout.updated"];

#[derive(Clone, Debug, Default)]
pub(super) struct EventFields {
    pub n: usize,
    pub kind: String,
    pub at: String,
    pub message: String,
    /// Errors placed at this row: (field, message), field `type`, `at` or `message`.
    pub errors: Vec<(String, String)>,
}

impl EventFields {
    pub(super) fn error(&self, field: &str) -> Option<&str> {
        self.errors.iter().find(|(f, _)| f == field).map(|(_, m)| m.as_str())
    }
}

/// One input of the lead part of the scenario form.
pub(super) struct LeadField {
    pub id: &'static str,
    pub label: &'static str,
    pub value: String,
    pub kind: &'static str,
    pub error: Option<String>,
}

#[derive(Clone, Debug)]
pub(super) struct ScenarioFields {
    pub email: String,
    pub name: String,
    pub phone: String,
    pub price: String,
    pub currency: String,
    pub product: String,
    pub plan: String,
    pub until: String,
    pub events: Vec<EventFields>,
}

impl Default for ScenarioFields {
    fn default() -> Self {
        ScenarioFields {
            email: "ana@example.com".into(),
            name: "Ana Souza".into(),
            phone: String::new(),
            price: "97.00".into(),
            currency: "BRL".into(),
            product: String::new(),
            plan: String::new(),
            until: "4d".into(),
            events: (0..EVENT_ROWS).map(|n| EventFields { n, ..EventFields::default() }).collect(),
        }
    }
}

pub(super) struct OutputRow {
    pub at: String,
    pub kind: String,
    pub tag: String,
    pub detail: String,
    pub coupon: String,
}

pub(super) struct BindingChoice {
    pub id: String,
    pub label: String,
    pub selected: bool,
}

#[derive(Template)]
#[template(path = "simulate.html")]
struct SimulatePage {
    c: Chrome,
    bindings: Vec<BindingChoice>,
    plugin: String,
    product: String,
    plan: String,
    config: String,
    source: String,
    s: ScenarioFields,
    error: Option<String>,
    /// (field id, message) for errors the scenario parser placed.
    field_errors: Vec<(String, String)>,
    rows: Option<Vec<OutputRow>>,
    event_types: Vec<(&'static str, &'static str)>,
}

impl SimulatePage {
    /// The lead inputs with their errors.
    fn lead_fields(&self) -> Vec<LeadField> {
        let t = self.c.t;
        let s = &self.s;
        [
            ("email", t.email, &s.email, "email"),
            ("name", t.name, &s.name, "text"),
            ("phone", t.phone, &s.phone, "tel"),
            ("price", t.cart_value, &s.price, "text"),
            ("currency", t.currency, &s.currency, "text"),
            ("lead_product", t.product, &s.product, "text"),
            ("lead_plan", t.plan_label, &s.plan, "text"),
            ("until", t.sim_until, &s.until, "text"),
        ]
        .into_iter()
        .map(|(id, label, value, kind)| LeadField {
            id,
            label,
            value: value.clone(),
            kind,
            error: self.field_errors.iter().find(|(f, _)| f == id).map(|(_, m)| m.clone()),
        })
        .collect()
    }

    /// Put an error at its field: a lead input, or a row of the events table.
    fn place(&mut self, field: String, message: String) {
        if let Some(rest) = field.strip_prefix("ev")
            && let Some((n, which)) = rest.split_once('_')
            && let Ok(n) = n.parse::<usize>()
            && let Some(row) = self.s.events.get_mut(n)
        {
            row.errors.push((which.to_string(), message));
            return;
        }
        self.field_errors.push((field, message));
    }
}

fn event_label(t: &Strings, kind: &str) -> &'static str {
    match kind {
        "click" => t.ev_click,
        "open" => t.ev_open,
        "order.paid" => t.ev_paid,
        "order.refunded" => t.ev_refunded,
        "unsubscribe" => t.ev_unsubscribe,
        _ => t.ev_updated,
    }
}

fn page(signed: &Signed, bindings: Vec<BindingChoice>) -> SimulatePage {
    let t = signed.lang.strings();
    SimulatePage {
        c: Chrome::signed(signed, Tab::Simulate, t.simulate_title),
        bindings,
        plugin: String::new(),
        product: String::new(),
        plan: String::new(),
        config: String::new(),
        source: String::new(),
        s: ScenarioFields::default(),
        error: None,
        field_errors: Vec::new(),
        rows: None,
        event_types: EVENT_TYPES.iter().map(|k| (*k, event_label(t, k))).collect(),
    }
}

async fn choices(
    state: &ConsoleState,
    signed: &Signed,
    selected: &str,
) -> Result<Vec<BindingChoice>, crate::store::StoreError> {
    let t = signed.lang.strings();
    Ok(state
        .app
        .store
        .bindings(signed.producer())
        .await?
        .into_iter()
        .map(|b| BindingChoice {
            label: format!("{} — {}", scope_label(t, &b.scope), b.plugin),
            selected: b.id == selected,
            id: b.id,
        })
        .collect())
}

pub(super) async fn form(State(state): State<ConsoleState>, signed: Signed) -> Response {
    match choices(&state, &signed, "").await {
        Ok(bindings) => render(StatusCode::OK, &page(&signed, bindings)),
        Err(e) => internal(signed.lang, e),
    }
}

fn scenario_fields(form: &SignedForm) -> ScenarioFields {
    let get = |name: &str| form.raw(name).trim().to_string();
    let mut s = ScenarioFields {
        email: get("email"),
        name: get("name"),
        phone: get("phone"),
        price: get("price"),
        currency: get("currency"),
        product: get("lead_product"),
        plan: get("lead_plan"),
        until: get("until"),
        events: Vec::new(),
    };
    if !form.fields.contains_key("email") {
        // Straight from the editor: the default scenario, on the binding's scope.
        let d = ScenarioFields::default();
        s = ScenarioFields { product: get("product"), plan: get("plan"), ..d };
        return s;
    }
    s.events = (0..EVENT_ROWS)
        .map(|n| EventFields {
            n,
            kind: get(&format!("ev{n}_type")),
            at: get(&format!("ev{n}_at")),
            message: get(&format!("ev{n}_message")),
            errors: Vec::new(),
        })
        .collect();
    s
}

/// The scenario JSON `funnel simulate` reads, from the form; or (field id, message).
fn scenario_json(
    t: &Strings,
    s: &ScenarioFields,
    product: &str,
    plan: &str,
    coupon: Option<(String, u8)>,
) -> Result<Value, (String, String)> {
    let opt = |v: &str| (!v.is_empty()).then(|| json!(v));
    let mut lead = json!({"email": s.email});
    for (key, value) in [("name", &s.name), ("phone", &s.phone), ("product_id", &s.product), ("plan_id", &s.plan)] {
        if let Some(v) = opt(value) {
            lead[key] = v;
        }
    }
    if !s.price.is_empty() {
        let cents =
            super::strategy::parse_price(&s.price).ok_or_else(|| ("price".to_string(), t.bad_price.to_string()))?;
        let currency = if s.currency.is_empty() { "BRL".to_string() } else { s.currency.to_uppercase() };
        lead["price"] = json!({"amount_cents": cents, "currency": currency});
    }
    let mut events = Vec::new();
    for e in s.events.iter().filter(|e| !e.kind.is_empty()) {
        let mut event = json!({"at": e.at, "type": e.kind});
        if !e.message.is_empty() {
            let n: u64 =
                e.message.parse().map_err(|_| (format!("ev{}_message", e.n), t.bad_message_number.to_string()))?;
            event["message"] = json!(n);
        }
        events.push(event);
    }
    let mut scenario = json!({"lead": lead, "events": events, "until": s.until});
    let mut binding = json!({});
    if !product.is_empty() {
        binding["product_id"] = json!(product);
    }
    if !plan.is_empty() {
        binding["plan_id"] = json!(plan);
    }
    if let Some((code, discount_percent)) = coupon {
        binding["coupon"] = json!({"code": code, "discount_percent": discount_percent});
    }
    scenario["binding"] = binding;
    Ok(scenario)
}

/// The form field a scenario path names (`events[2].at` is the third filled row's `at`).
fn field_of(path: &str, s: &ScenarioFields) -> Option<String> {
    let simple = match path {
        "lead.email" => Some("email"),
        "lead.name" => Some("name"),
        "lead.phone" => Some("phone"),
        "lead.price" | "lead.price.amount_cents" => Some("price"),
        "lead.price.currency" => Some("currency"),
        "until" => Some("until"),
        _ => None,
    };
    if let Some(f) = simple {
        return Some(f.to_string());
    }
    let rest = path.strip_prefix("events[")?;
    let (index, field) = rest.split_once("].")?;
    let index: usize = index.parse().ok()?;
    let row = s.events.iter().filter(|e| !e.kind.is_empty()).nth(index)?;
    let field = match field {
        "at" => "at",
        "message" => "message",
        _ => "type",
    };
    Some(format!("ev{}_{field}", row.n))
}

fn output_rows(lines: &[Line]) -> Vec<OutputRow> {
    lines
        .iter()
        .map(|l| {
            let detail = [&l.subject, &l.body, &l.list, &l.reason, &l.detail].into_iter().flatten().next();
            OutputRow {
                at: duration(l.at_s),
                kind: l.kind.to_string(),
                tag: l.tag.clone().unwrap_or_default(),
                detail: detail.cloned().unwrap_or_default(),
                coupon: l.coupon.clone().unwrap_or_default(),
            }
        })
        .collect()
}

pub(super) async fn run(State(state): State<ConsoleState>, form: SignedForm) -> Response {
    let signed = form.signed.clone();
    let lang = signed.lang;
    let t = lang.strings();
    let producer = signed.producer().to_string();
    let store = &state.app.store;
    let source = form.get("binding").unwrap_or("").to_string();
    let mut p = page(&signed, Vec::new());
    // Which plugin and config: a saved binding, or what the editor posted.
    if let (Some(id), None) = (form.get("binding"), form.fields.get("plugin")) {
        match store.bindings(&producer).await {
            Ok(bindings) => match bindings.into_iter().find(|b| b.id == id) {
                Some(b) => {
                    p.plugin = b.plugin;
                    p.product = b.scope.product_id().unwrap_or_default().to_string();
                    p.plan = b.scope.plan_id().unwrap_or_default().to_string();
                    p.config = serde_json::to_string_pretty(&b.config).unwrap_or_default();
                }
                None => p.error = Some(t.binding_not_found.to_string()),
            },
            Err(e) => return internal(lang, e),
        }
    } else {
        p.plugin = form.get("plugin").unwrap_or("four-emails").to_string();
        p.product = form.get("product").unwrap_or("").to_string();
        p.plan = form.get("plan").unwrap_or("").to_string();
        match config_from_form(t, &p.plugin, &form) {
            (Ok(config), _, _) => p.config = serde_json::to_string_pretty(&config).unwrap_or_default(),
            (Err(errors), _, raw) => {
                p.config = raw.unwrap_or_default();
                p.error =
                    Some(errors.iter().map(|e| format!("{}: {}", e.path, e.message)).collect::<Vec<_>>().join("; "));
            }
        }
    }
    p.s = scenario_fields(&form);
    // A lead outside the binding's scope would meet no strategy: it takes the scope by default.
    if p.s.product.is_empty() && p.s.plan.is_empty() {
        p.s.product = p.product.clone();
        p.s.plan = p.plan.clone();
    }
    p.source = source.clone();
    p.bindings = match choices(&state, &signed, &source).await {
        Ok(b) => b,
        Err(e) => return internal(lang, e),
    };
    if p.error.is_some() || p.plugin.is_empty() {
        return render(StatusCode::UNPROCESSABLE_ENTITY, &p);
    }
    // A plan without its product has no coupon (the scenario's own check says why).
    let scope = crate::domain::Scope::new(Some(&p.product), Some(&p.plan)).unwrap_or(crate::domain::Scope::Producer);
    let coupon = match store.coupon(&producer, &scope).await {
        Ok(c) => c.map(|c| (c.code, c.discount_percent)),
        Err(e) => return internal(lang, e),
    };
    let scenario = match scenario_json(t, &p.s, &p.product, &p.plan, coupon) {
        Ok(json) => Scenario::parse(&json.to_string()).map_err(|e| e.to_string()),
        Err((field, message)) => {
            p.place(field, message);
            return render(StatusCode::UNPROCESSABLE_ENTITY, &p);
        }
    };
    let scenario = match scenario {
        Ok(s) => s,
        Err(message) => {
            let placed =
                message.split_once(": ").and_then(|(path, msg)| Some((field_of(path, &p.s)?, msg.to_string())));
            match placed {
                Some((field, message)) => p.place(field, message),
                None => p.error = Some(message),
            }
            return render(StatusCode::UNPROCESSABLE_ENTITY, &p);
        }
    };
    let plugin = if crate::guests::builtin(&p.plugin).is_some() {
        PluginSource::Builtin(p.plugin.clone())
    } else {
        let bytes = match store.plugin_sha_by_name(&producer, &p.plugin).await {
            Ok(Some(sha)) => store.plugin_bytes(&sha).await,
            Ok(None) => Ok(None),
            Err(e) => Err(e),
        };
        match bytes {
            Ok(Some(bytes)) => PluginSource::Component(bytes),
            Ok(None) => {
                p.error = Some(t.plugin_not_found.to_string());
                return render(StatusCode::UNPROCESSABLE_ENTITY, &p);
            }
            Err(e) => return internal(lang, e),
        }
    };
    let input = SimulateInput {
        plugin,
        config_json: p.config.clone(),
        scenario,
        verbose: false,
        show_body: false,
        cache_dir: state.app.plugins.runtime().config().cache_dir.clone(),
    };
    match simulate(&state, input).await {
        Ok(lines) => p.rows = Some(output_rows(&lines)),
        Err(message) => p.error = Some(message),
    }
    let status = if p.error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    render(status, &p)
}

/// Run a simulation on a blocking thread of its own (it compiles and runs wasm), a few at a
/// time, abandoned after [`DEADLINE`].
async fn simulate(state: &ConsoleState, input: SimulateInput) -> Result<Vec<Line>, String> {
    let _permit = state.simulations.clone().acquire_owned().await.map_err(|e| e.to_string())?;
    let job = tokio::task::spawn_blocking(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
        runtime.block_on(sim::run(input)).map_err(|e| e.to_string())
    });
    match tokio::time::timeout(DEADLINE, job).await {
        Ok(Ok(result)) => result,
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("the simulation took longer than {} s and was stopped", DEADLINE.as_secs())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenario_paths_land_on_the_row_that_has_them() {
        let mut s = ScenarioFields::default();
        s.events[2].kind = "click".into();
        assert_eq!(field_of("events[0].message", &s).as_deref(), Some("ev2_message"));
        assert_eq!(field_of("lead.email", &s).as_deref(), Some("email"));
        assert_eq!(field_of("events[1].at", &s), None);
    }
}
