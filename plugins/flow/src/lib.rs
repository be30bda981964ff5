//! `flow`: GetALL-style branching funnels, defined as config. A producer who writes no code
//! draws a funnel of steps (wait, email, SMS, if, list, end) and this plugin walks it per lead.
//!
//! ## Layout
//! - [`config`]: the config's shape (the public contract).
//! - [`validate`]: the rules beyond the shape, each error with its path.
//! - [`run`]: walking the steps over a [`run::World`]; here, the host's capabilities.

pub mod config;
pub mod run;
pub mod validate;

use funnel_sdk::host::{self, Email};
use funnel_sdk::{
    BindingContext, Call, Capability, ConfigNote, Duration, Event, LogLevel, MessageKind, Next, Plugin, PluginInfo,
};

use config::FlowConfig;
use run::{Outcome, State, World};

struct Flow;

impl Plugin for Flow {
    type Config = FlowConfig;
    type State = State;

    fn info() -> PluginInfo {
        funnel_sdk::info(
            "flow",
            "1.0.0",
            "Branching funnels of waits, emails, SMS, conditions and list moves, drawn as config",
            &[Capability::Email, Capability::Sms, Capability::Timers, Capability::Lists, Capability::Coupons],
        )
    }

    fn check(config: &FlowConfig, binding: &BindingContext) -> Result<Vec<ConfigNote>, Vec<ConfigNote>> {
        let errors = validate::check(config, coupon_problem(binding));
        if errors.is_empty() { Ok(Vec::new()) } else { Err(errors) }
    }

    fn summary(config: &FlowConfig) -> String {
        summary(config)
    }

    fn handle(call: Call<'_, FlowConfig>, state: &mut State) -> Result<Next, String> {
        let flow = call.config;
        let mut world = HostWorld { purchased: call.lead.purchased };
        let outcome = match &call.event {
            Event::Captured => {
                let start = flow.start.as_deref().ok_or("the flow has no start")?;
                run::walk(flow, start, state, &mut world)?
            }
            Event::Timer(timer) if state.timer.as_deref() == Some(timer.id.as_str()) => {
                let at = state.waiting_at.clone().unwrap_or_default();
                let next = flow
                    .steps
                    .get(&at)
                    .and_then(|s| s.next.clone())
                    .ok_or_else(|| format!("wait step {at:?} vanished"))?;
                run::walk(flow, &next, state, &mut world)?
            }
            Event::Purchased(_) => match &flow.on_purchase {
                Some(target) => run::jump(flow, target, state, &mut world)?,
                None => Outcome::Waiting,
            },
            Event::Clicked(_) => match &flow.on_click {
                Some(target) => run::jump(flow, target, state, &mut world)?,
                None => Outcome::Waiting,
            },
            Event::Unsubscribed => match &flow.on_unsubscribe {
                Some(target) => run::jump(flow, target, state, &mut world)?,
                None => Outcome::Ended,
            },
            Event::Bounced(_) => Outcome::Ended,
            _ => Outcome::Waiting,
        };
        Ok(match outcome {
            Outcome::Waiting => Next::Continue,
            Outcome::Ended => Next::End,
        })
    }
}

/// Why this binding cannot carry a coupon, if it cannot.
fn coupon_problem(binding: &BindingContext) -> Option<&'static str> {
    if binding.scope.product_id.is_none() || binding.scope.plan_id.is_none() {
        Some("coupons need a binding with a product and a plan")
    } else if binding.coupon.is_none() {
        Some("no coupon is registered for this product and plan: register one with POST /v1/coupons first")
    } else {
        None
    }
}

/// One line for the producer.
pub fn summary(flow: &FlowConfig) -> String {
    let emails = flow.steps.values().filter(|s| s.email.is_some()).count();
    let sms = flow.steps.values().filter(|s| s.sms.is_some()).count();
    format!(
        "{} steps, starts at {}, sends {emails} email{} and {sms} SMS",
        flow.steps.len(),
        flow.start.as_deref().unwrap_or("?"),
        if emails == 1 { "" } else { "s" }
    )
}

/// The host's capabilities as the walk's world.
struct HostWorld {
    purchased: bool,
}

impl World for HostWorld {
    fn purchased(&self) -> bool {
        self.purchased
    }
    fn messages(&self) -> Vec<(String, bool, bool)> {
        host::messages().into_iter().map(|m| (m.tag, m.clicked, m.opened)).collect()
    }
    fn lists(&self) -> Vec<String> {
        host::lists()
    }
    fn send_email(&mut self, email: Email) -> Result<(), String> {
        host::send_email(&email).map(|_| ()).map_err(|e| e.to_string())
    }
    fn send_sms(&mut self, body: &str, tag: &str, kind: MessageKind) -> Result<(), String> {
        host::send_sms(body, tag, kind).map(|_| ()).map_err(|e| e.to_string())
    }
    fn schedule(&mut self, after: Duration, tag: &str) -> Result<String, String> {
        host::schedule(after, tag).map_err(|e| e.to_string())
    }
    fn cancel_all(&mut self) {
        host::cancel_all()
    }
    fn add_to_list(&mut self, name: &str) -> Result<(), String> {
        host::add_to_list(name).map_err(|e| e.to_string())
    }
    fn remove_from_list(&mut self, name: &str) -> Result<(), String> {
        host::remove_from_list(name).map_err(|e| e.to_string())
    }
    fn log(&mut self, text: &str) {
        host::log(LogLevel::Info, text)
    }
}

funnel_sdk::export_plugin!(Flow);

#[cfg(test)]
mod tests;
