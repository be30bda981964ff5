//! `flow`: GetALL-style branching funnels, defined as config. A producer who writes no code
//! draws a funnel of steps (wait, email, SMS, if, list, end) and this plugin walks it per lead.
//! This file owns the plugin's face to the host: `describe`, `validate-config` (shape, rules,
//! coupon availability), the summary line, and `handle` wired to the host's capabilities.
//!
//! ## Layout
//! - [`config`]: the config's shape (the public contract) and loading it with every problem.
//! - [`validate`]: the graph rules beyond the shape, each error with its path.
//! - [`run`]: what each event does and walking the steps, over a [`run::World`].

pub mod config;
pub mod run;
pub mod validate;

use funnel_sdk::host::{self, Email};
use funnel_sdk::{
    BindingContext, Call, Capability, ConfigNote, Duration, LogLevel, MessageKind, Next, Plugin, PluginInfo,
};

use config::{FlowConfig, RawConfig};
use run::{Outcome, Seen, State, World};

struct Flow;

impl Plugin for Flow {
    type Config = RawConfig;
    type State = State;

    fn info() -> PluginInfo {
        funnel_sdk::info(
            "flow",
            "1.0.0",
            "Branching funnels of waits, emails, SMS, conditions and list moves, drawn as config",
            &[Capability::Email, Capability::Sms, Capability::Timers, Capability::Lists, Capability::Coupons],
        )
    }

    fn check(config: &RawConfig, binding: &BindingContext) -> Result<Vec<ConfigNote>, Vec<ConfigNote>> {
        check(config, binding)
    }

    fn summary(config: &RawConfig) -> String {
        match config::load(config) {
            Ok(flow) => summary(&flow),
            Err(_) => "an invalid flow".to_string(),
        }
    }

    fn handle(call: Call<'_, RawConfig>, state: &mut State) -> Result<Next, String> {
        // The config was validated when bound; if it no longer loads, refusing the event (the
        // host retries) is safer than guessing.
        let flow = config::load(call.config).map_err(|notes| {
            let first = notes.first().map(|n| funnel_sdk::wire::note_line(&n.path, &n.message)).unwrap_or_default();
            format!("config no longer loads: {first}")
        })?;
        let mut world = HostWorld { purchased: call.lead.purchased };
        Ok(match run::on_event(&flow, &call.event, state, &mut world)? {
            Outcome::Waiting => Next::Continue,
            Outcome::Ended => Next::End,
        })
    }
}

/// `validate-config`: every shape problem and every rule broken, or the remarks on a good flow.
pub fn check(raw: &RawConfig, binding: &BindingContext) -> Result<Vec<ConfigNote>, Vec<ConfigNote>> {
    let (flow, mut errors) = config::load_lenient(raw);
    // Without an object of steps, the graph rules would only restate that nothing is there.
    if raw.0.get("steps").is_some_and(serde_json::Value::is_object) {
        errors.extend(validate::check(&flow, coupon_problem(binding)));
    }
    if errors.is_empty() { Ok(validate::remarks(&flow)) } else { Err(errors) }
}

/// Why this binding cannot carry a coupon, if it cannot.
pub fn coupon_problem(binding: &BindingContext) -> Option<&'static str> {
    if binding.scope.product_id.is_none() || binding.scope.plan_id.is_none() {
        Some("coupons need a binding whose scope names a product and a plan")
    } else if binding.coupon.is_none() {
        Some("no coupon is registered for this product and plan: register one first")
    } else {
        None
    }
}

/// One line for the producer, e.g. `9 steps, starts at wait_10m, sends 3 emails and 1 SMS`.
pub fn summary(flow: &FlowConfig) -> String {
    let emails = flow.steps.values().filter(|s| s.email.is_some()).count();
    let sms = flow.steps.values().filter(|s| s.sms.is_some()).count();
    let mut sends = Vec::new();
    if emails > 0 {
        sends.push(format!("{emails} email{}", if emails == 1 { "" } else { "s" }));
    }
    if sms > 0 {
        sends.push(format!("{sms} SMS"));
    }
    let sends = if sends.is_empty() { "no messages".to_string() } else { sends.join(" and ") };
    let steps = flow.steps.len();
    format!(
        "{steps} step{}, starts at {}, sends {sends}",
        if steps == 1 { "" } else { "s" },
        flow.start.as_deref().unwrap_or("?")
    )
}

/// The host's capabilities as the run's world.
struct HostWorld {
    purchased: bool,
}

impl World for HostWorld {
    fn purchased(&self) -> bool {
        self.purchased
    }
    fn messages(&self) -> Vec<Seen> {
        host::messages().into_iter().map(|m| Seen { tag: m.tag, clicked: m.clicked, opened: m.opened }).collect()
    }
    fn lists(&self) -> Vec<String> {
        host::lists()
    }
    fn has_coupon(&self) -> bool {
        host::coupon().is_some()
    }
    fn unique_coupon(&mut self) -> run::UniqueCoupon {
        match host::unique_coupon() {
            Ok(_) => run::UniqueCoupon::Given,
            Err(funnel_sdk::HostError::LimitReached(why)) => run::UniqueCoupon::Refused(why),
            // No pool or pattern on the scope (`invalid`): the static coupon, as before.
            Err(_) => run::UniqueCoupon::NoSource,
        }
    }
    fn choose_variant(&mut self, step: &str, variants: &[config::SplitVariant]) -> Result<String, String> {
        let variants: Vec<(&str, u32)> = variants.iter().map(|v| (v.name.as_str(), v.weight)).collect();
        host::choose_variant(step, &variants).map_err(|e| format!("choose-variant refused: {e}"))
    }
    fn send_email(&mut self, email: &Email) -> Result<(), String> {
        host::send_email(email).map(|_| ()).map_err(|e| e.to_string())
    }
    fn send_sms(&mut self, body: &str, tag: &str, kind: MessageKind) -> Result<(), String> {
        host::send_sms(body, tag, kind).map(|_| ()).map_err(|e| e.to_string())
    }
    fn schedule(&mut self, after: Duration, tag: &str) -> Result<String, String> {
        host::schedule(after, tag).map_err(|e| format!("could not schedule the wait at {tag}: {e}"))
    }
    fn cancel(&mut self, timer_id: &str) {
        host::cancel(timer_id)
    }
    fn add_to_list(&mut self, name: &str) -> Result<(), String> {
        host::add_to_list(name).map_err(|e| e.to_string())
    }
    fn remove_from_list(&mut self, name: &str) -> Result<(), String> {
        host::remove_from_list(name).map_err(|e| e.to_string())
    }
    fn log(&mut self, level: LogLevel, text: &str) {
        host::log(level, text)
    }
}

funnel_sdk::export_plugin!(Flow);

#[cfg(test)]
mod tests;
