//! `funnel simulate`: the same engine as `serve` (store, dispatcher, scheduler, runtime,
//! delivery's send-time rules) on a virtual clock and an in-memory database, sending nothing.
//! It tells what would happen to one lead, as [`Line`]s in time order. The scenario it reads
//! and the lines it returns are the SDK's wire types ([`funnel_sdk::wire`]), shared with
//! `funnel_sdk::testing` and the command line.

use std::sync::Arc;

use funnel_sdk::wire::{Line, LineKind, Scenario, ScenarioEvent, ScenarioEventKind};
use serde_json::Value;

use crate::clock::{Clock, VirtualClock};
use crate::delivery::Discard;
use crate::domain::window::SendWindowSpec;
use crate::domain::{
    Checkout, EmailAddress, PlatformEvent, PlatformEventType, Price, SendWindow, TimeZone, TimelineKind, TimelineNote,
};
use crate::pipeline::{Pipeline, PipelineParts};
use crate::runtime::wit::{BindingContext, Coupon, Scope};
use crate::runtime::{Runtime, RuntimeConfig};
use crate::store::{Database, StoreError};

/// Capture time of the simulated lead when the scenario gives no `start`: 2026-01-01T00:00:00Z.
pub const T0_MS: i64 = 1_767_225_600_000;

/// The server address simulated messages link to.
const PUBLIC_URL: &str = "https://funnel.example";

/// What to simulate.
pub struct SimulateInput {
    /// A built-in name or the bytes of a component.
    pub plugin: PluginSource,
    pub config_json: String,
    pub scenario: Scenario,
    /// Also timers, logs and other lines only a curious reader wants.
    pub verbose: bool,
    /// Emails carry their rendered text in `body`.
    pub show_body: bool,
    /// Where compiled components are kept between runs (a big component, e.g. a Python one,
    /// takes seconds to compile); `None` compiles every time.
    pub cache_dir: Option<std::path::PathBuf>,
}

#[derive(Clone)]
pub enum PluginSource {
    Builtin(String),
    Component(Vec<u8>),
}

/// Why a simulation could not run: each names what to fix.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("plugin: {0}")]
    Plugin(String),
    #[error("config: {0}")]
    Config(String),
    #[error("scenario: {0}")]
    Scenario(String),
    #[error("engine: {0}")]
    Engine(#[from] StoreError),
}

/// Run a simulation; returns the output lines in time order.
pub async fn run(input: SimulateInput) -> Result<Vec<Line>, SimError> {
    let runtime = Arc::new(
        Runtime::new(RuntimeConfig { cache_dir: input.cache_dir.clone(), ..RuntimeConfig::default() })
            .map_err(|e| SimError::Plugin(e.to_string()))?,
    );
    let times = ScenarioTimes::of(&input.scenario)?;
    let t0 = times.start;
    let clock = Arc::new(VirtualClock::new(t0));
    let store = Database::connect("sqlite::memory:").await?;
    let engine = Pipeline::new(PipelineParts {
        store: store.clone(),
        runtime,
        clock: clock.clone(),
        email: Arc::new(Discard),
        sms: Arc::new(Discard),
        public_url: PUBLIC_URL.into(),
        rate_caps: (None, None),
    });
    let scenario = input.scenario;

    let (plugin_name, plugin) = match &input.plugin {
        PluginSource::Builtin(name) => {
            (name.clone(), engine.plugins.builtin(name).map_err(|e| SimError::Plugin(e.to_string()))?)
        }
        PluginSource::Component(bytes) => {
            let plugin =
                engine.plugins.runtime().validate_upload(bytes).map_err(|e| SimError::Plugin(e.to_string()))?;
            (plugin.info.name.clone(), plugin)
        }
    };
    let config: Value =
        serde_json::from_str(&input.config_json).map_err(|e| SimError::Config(format!("not valid JSON: {e}")))?;
    let binding = scenario.binding.clone().unwrap_or_default();
    let coupon = binding.coupon.as_ref().map(|c| Coupon { code: c.code.clone(), discount_percent: c.discount_percent });
    let unique = unique_coupons(&binding)?;
    // As on a server (`api::bindings`): a pool or pattern without a static code is the
    // scope's coupon for `validate-config`.
    let context_coupon = coupon.clone().or_else(|| {
        unique.as_ref().map(|(percent, source)| Coupon {
            code: match source {
                UniqueSource::Pattern(p) => p.as_str().to_string(),
                UniqueSource::Pool(_) => "(a code from the pool)".to_string(),
            },
            discount_percent: *percent,
        })
    });
    let scope = crate::domain::Scope::new(binding.product_id.as_deref(), binding.plan_id.as_deref())
        .map_err(|e| SimError::Scenario(format!("binding.plan_id: {e}")))?;
    let context = BindingContext { scope: Scope::from(&scope), coupon: context_coupon };
    let validation =
        plugin.validate_config(&input.config_json, &context).map_err(|e| SimError::Plugin(e.to_string()))?;
    if let Err(notes) = validation {
        let line = funnel_sdk::wire::notes_line(notes.iter().map(|n| (n.path.as_str(), n.message.as_str())));
        return Err(SimError::Config(line));
    }

    let producer = store.create_producer("simulation", t0).await?;
    if let (Some(c), Some((product, plan))) = (&coupon, scope.product_plan()) {
        store.put_coupon(&producer.id, product, plan, &c.code, c.discount_percent).await?;
    }
    if let (Some((percent, source)), Some((product, plan))) = (&unique, scope.product_plan()) {
        match source {
            UniqueSource::Pattern(pattern) => {
                store.set_coupon_pattern(&producer.id, (product, plan), pattern, *percent, T0_MS).await?
            }
            UniqueSource::Pool(codes) => {
                // An empty pool is a pool used up from the start.
                store.add_pool_codes(&producer.id, (product, plan), *percent, codes, T0_MS).await?;
            }
        }
    }
    let new_binding = crate::store::bindings::NewBinding {
        producer_id: &producer.id,
        scope: &scope,
        plugin: &plugin_name,
        plugin_sha256: &plugin.sha256,
        config: &config,
        enabled: true,
        send_window: times.send_window.as_ref(),
    };
    store.put_binding(&new_binding, t0).await?;

    let lead = &scenario.lead;
    let email = EmailAddress::parse(&lead.email).map_err(|e| SimError::Scenario(format!("lead.email: {e}")))?;
    let checkout = Checkout {
        id: "simulated-checkout".into(),
        email: Some(email),
        name: lead.name.clone(),
        phone: lead.phone.clone(),
        product_id: lead.product_id.clone(),
        plan_id: lead.plan_id.clone(),
        price: lead.price.as_ref().map(|p| Price { amount_cents: p.amount_cents, currency: p.currency.clone() }),
        url: Some(lead.url.clone().unwrap_or_else(|| "https://checkout.example/pay".into())),
        timezone: times.lead_timezone,
    };
    let platform_event = |id: String, kind| PlatformEvent {
        id,
        kind,
        occurred_at_ms: clock.now_ms(),
        producer_id: producer.id.clone(),
        checkout: checkout.clone(),
    };
    let lead_id =
        match store.ingest(&platform_event("sim-capture".into(), PlatformEventType::CheckoutUpdated), t0).await? {
            crate::store::ingest::IngestOutcome::Accepted { lead_id: Some(id) } => id,
            other => return Err(SimError::Scenario(format!("the lead was not captured: {other:?}"))),
        };
    engine.settle().await?;

    // Scenario events in time order; at equal times, in file order, before timers due then.
    let mut events: Vec<(usize, &ScenarioEvent)> = scenario.events.iter().enumerate().collect();
    events.sort_by_key(|(i, e)| (e.at, *i));
    let until = t0 + i64::try_from(scenario.until.as_millis()).unwrap_or(i64::MAX / 2);
    let mut next_event = 0;
    loop {
        let scenario_at = events.get(next_event).map(|(_, e)| t0 + i64::try_from(e.at.as_millis()).unwrap_or(0));
        let engine_at = store.next_wakeup().await?.map(|at| at.max(clock.now_ms()));
        let Some(at) = [scenario_at, engine_at].into_iter().flatten().min() else { break };
        if at > until {
            break;
        }
        clock.set(at);
        while let Some((index, event)) = events.get(next_event) {
            if t0 + i64::try_from(event.at.as_millis()).unwrap_or(0) > at {
                break;
            }
            apply(&store, &lead_id, *index, event, at, &platform_event).await?;
            next_event += 1;
        }
        engine.settle().await?;
    }

    let entries = store.timeline(&lead_id, 0).await?;
    let mut lines = Vec::with_capacity(entries.len());
    for entry in &entries {
        let mut line = output_line(entry, t0);
        if !input.verbose && !line.kind.always_printed() {
            continue;
        }
        if input.show_body
            && let TimelineNote::Email(email) = &entry.note
            && let Some(text) = store.message_text(&email.message_id).await?
        {
            line.body = Some(stable_links(&text, line.tag.as_deref().unwrap_or("message")));
        }
        lines.push(line);
    }
    Ok(lines)
}

/// The scenario's values the SDK's shape cannot check: its start, the binding's send window
/// and the lead's zone (each error names its field, as the command line prints it).
struct ScenarioTimes {
    start: i64,
    send_window: Option<SendWindow>,
    lead_timezone: Option<TimeZone>,
}

impl ScenarioTimes {
    fn of(scenario: &Scenario) -> Result<ScenarioTimes, SimError> {
        let start = match &scenario.start {
            None => T0_MS,
            Some(text) => chrono::DateTime::parse_from_rfc3339(text)
                .map_err(|_| {
                    SimError::Scenario(format!(
                        "start: {text:?} is not an RFC 3339 instant like 2026-03-06T23:10:00-03:00"
                    ))
                })?
                .timestamp_millis(),
        };
        let send_window = match scenario.binding.as_ref().and_then(|b| b.send_window.as_ref()) {
            None => None,
            Some(w) => {
                let spec = SendWindowSpec {
                    start: w.start.clone(),
                    end: w.end.clone(),
                    days: w.days.clone(),
                    timezone: w.timezone.clone(),
                };
                Some(SendWindow::parse(&spec).map_err(|errors| {
                    let notes: Vec<(String, String)> =
                        errors.into_iter().map(|e| (format!("binding.send_window.{}", e.path), e.message)).collect();
                    SimError::Scenario(funnel_sdk::wire::notes_line(
                        notes.iter().map(|(p, m)| (p.as_str(), m.as_str())),
                    ))
                })?)
            }
        };
        let lead_timezone = scenario
            .lead
            .timezone
            .as_deref()
            .map(TimeZone::parse)
            .transpose()
            .map_err(|e| SimError::Scenario(format!("lead.timezone: {e}")))?;
        Ok(ScenarioTimes { start, send_window, lead_timezone })
    }
}

/// Where a scenario's unique coupons come from.
enum UniqueSource {
    Pool(Vec<String>),
    Pattern(crate::domain::coupon::CouponPattern),
}

/// The scenario's unique coupons, checked as `POST /v1/coupons` would.
fn unique_coupons(binding: &funnel_sdk::wire::ScenarioBinding) -> Result<Option<(u8, UniqueSource)>, SimError> {
    let Some(u) = &binding.unique_coupons else { return Ok(None) };
    let bad = |what: String| SimError::Scenario(format!("binding.unique_coupons.{what}"));
    if binding.product_id.is_none() || binding.plan_id.is_none() {
        return Err(bad("codes: unique coupons need a binding with a product_id and a plan_id".into()));
    }
    if !(1..=100).contains(&u.discount_percent) {
        return Err(bad(format!("discount_percent: must be 1 to 100 (got {})", u.discount_percent)));
    }
    let source = match (&u.codes, &u.pattern) {
        (Some(codes), None) => {
            if codes.len() > crate::store::coupons::MAX_CODES_PER_REQUEST {
                return Err(bad(format!("codes: at most {} codes", crate::store::coupons::MAX_CODES_PER_REQUEST)));
            }
            for (i, code) in codes.iter().enumerate() {
                if let Some(problem) = crate::domain::coupon::pool_code_problem(code) {
                    return Err(bad(format!("codes[{i}]: {problem}")));
                }
            }
            UniqueSource::Pool(codes.clone())
        }
        (None, Some(pattern)) => UniqueSource::Pattern(
            crate::domain::coupon::CouponPattern::parse(pattern).map_err(|e| bad(format!("pattern: {e}")))?,
        ),
        _ => return Err(bad("codes: give one of codes and pattern".into())),
    };
    Ok(Some((u.discount_percent, source)))
}

async fn apply(
    store: &Database,
    lead_id: &str,
    index: usize,
    event: &ScenarioEvent,
    now: i64,
    platform_event: &impl Fn(String, PlatformEventType) -> PlatformEvent,
) -> Result<(), SimError> {
    let id = format!("sim-event-{index}");
    match event.kind {
        ScenarioEventKind::OrderPaid => {
            store.ingest(&platform_event(id, PlatformEventType::OrderPaid), now).await?;
        }
        ScenarioEventKind::OrderRefunded => {
            store.ingest(&platform_event(id, PlatformEventType::OrderRefunded), now).await?;
        }
        ScenarioEventKind::CheckoutUpdated => {
            store.ingest(&platform_event(id, PlatformEventType::CheckoutUpdated), now).await?;
        }
        ScenarioEventKind::Unsubscribe => store.unsubscribe_lead(lead_id, now).await?,
        ScenarioEventKind::Click | ScenarioEventKind::Open => {
            let n = event.message.unwrap_or(1);
            let sent: Vec<String> = store
                .lead_snapshot(lead_id)
                .await?
                .messages
                .into_iter()
                .filter(|m| m.status == crate::domain::MessageStatus::Sent)
                .map(|m| m.id)
                .collect();
            let Some(message_id) = sent.get(n - 1) else {
                return Err(SimError::Scenario(format!(
                    "events[{index}].message: message {n} was not sent by {} (only {} sent then)",
                    event.at,
                    sent.len()
                )));
            };
            if event.kind == ScenarioEventKind::Click {
                store.record_click(message_id, now).await?;
            } else {
                store.record_open(message_id, now).await?;
            }
        }
    }
    Ok(())
}

/// The output line of a timeline entry.
fn output_line(entry: &crate::store::timeline::TimelineEntry, t0: i64) -> Line {
    let at_s = (entry.at - t0) / 1000;
    let kind = match entry.kind() {
        TimelineKind::Email => LineKind::Email,
        TimelineKind::Sms => LineKind::Sms,
        TimelineKind::Dropped => LineKind::Dropped,
        TimelineKind::Deferred => LineKind::Deferred,
        TimelineKind::ListAdd => LineKind::ListAdd,
        TimelineKind::ListRemove => LineKind::ListRemove,
        TimelineKind::Retry => LineKind::Retry,
        TimelineKind::Failed => LineKind::Failed,
        TimelineKind::Refused => LineKind::Refused,
        TimelineKind::TimerSet => LineKind::TimerSet,
        TimelineKind::Log => LineKind::Log,
        TimelineKind::RunEnded => LineKind::RunEnded,
        TimelineKind::Bounced => LineKind::Bounced,
        TimelineKind::SendFailed => LineKind::SendFailed,
        TimelineKind::Unsubscribed => LineKind::Unsubscribed,
        TimelineKind::CouponAssigned | TimelineKind::Variant => LineKind::Other,
    };
    let line = Line::new(at_s, kind);
    match &entry.note {
        TimelineNote::Email(m) => {
            Line { tag: Some(m.tag.clone()), subject: m.subject.clone(), coupon: m.coupon.clone(), ..line }
        }
        TimelineNote::Sms(m) => {
            let body = m.body.as_deref().map(|body| stable_links(body, &m.tag));
            Line { body, coupon: m.coupon.clone(), tag: Some(m.tag.clone()), ..line }
        }
        TimelineNote::Dropped(m) => Line { tag: Some(m.tag.clone()), reason: m.reason.clone(), ..line },
        TimelineNote::Deferred(h) => {
            let until = h.until_local.as_ref().map(|local| format!("until {local}"));
            Line { tag: Some(h.tag.clone()), reason: Some(h.reason.as_str().to_string()), detail: until, ..line }
        }
        TimelineNote::ListAdd { list } | TimelineNote::ListRemove { list } => Line { list: Some(list.clone()), ..line },
        _ => Line { detail: Some(entry.detail()), ..line },
    }
}

/// Tracked links carry a random token per message; for output that is the same on every run,
/// print `…/r/<tag>` and `…/u/<tag>` instead (the link and unsubscribe page of that message).
fn stable_links(text: &str, tag: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(PUBLIC_URL) {
        let (before, from_url) = rest.split_at(at);
        out.push_str(before);
        let after_url = &from_url[PUBLIC_URL.len()..];
        let token = after_url.get(3..).map(|t| t.bytes().take_while(u8::is_ascii_hexdigit).count()).unwrap_or(0);
        if (after_url.starts_with("/r/") || after_url.starts_with("/u/")) && token == 32 {
            out.push_str(&from_url[..PUBLIC_URL.len() + 3]);
            out.push_str(tag);
            rest = &after_url[3 + token..];
        } else {
            out.push_str(PUBLIC_URL);
            rest = after_url;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::stable_links;

    #[test]
    fn tracked_links_print_the_same_on_every_run() {
        let token = "0123456789abcdef0123456789abcdef";
        let body = format!("Oi: https://funnel.example/r/{token} (sair: https://funnel.example/u/{token}.)");
        assert_eq!(
            stable_links(&body, "sms-1"),
            "Oi: https://funnel.example/r/sms-1 (sair: https://funnel.example/u/sms-1.)"
        );
        let untouched = "https://funnel.example/r/short and https://funnel.example/x";
        assert_eq!(stable_links(untouched, "sms-1"), untouched);
    }
}
