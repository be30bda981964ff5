//! The `host` interface of the WIT contract, one file per capability. This file only routes
//! each WIT function to its module and holds the checks they share: the phase (effects only
//! in `handle`), the declared capabilities, the effect cap, and the record of calls refused as
//! a plugin's mistake (undeclared capability, unusable argument), which the host reports in
//! the lead's timeline and `funnel simulate` prints as failures.

mod coupons;
mod email;
mod lists;
mod log;
mod messages;
mod send_window;
mod sms;
mod timers;
mod unique_coupon;
pub(super) mod v0_1;
mod variants;

use super::effects::Effect;
use super::error::Limit;
use super::state::{InvocationState, Phase};
use super::wit::funnel::plugin::{host, types};
use super::wit::{Capability, Coupon, HostError, LogLevel, MessageKind, SentMessage};

impl types::Host for InvocationState {}

impl host::Host for InvocationState {
    fn send_email(
        &mut self,
        subject: String,
        html: String,
        text: Option<String>,
        tag: String,
        kind: MessageKind,
    ) -> wasmtime::Result<Result<String, HostError>> {
        let result = email::send_email(self, subject, html, text, tag, kind);
        refused(self, "send-email", result)
    }

    fn send_sms(
        &mut self,
        body: String,
        tag: String,
        kind: MessageKind,
    ) -> wasmtime::Result<Result<String, HostError>> {
        let result = sms::send_sms(self, body, tag, kind);
        refused(self, "send-sms", result)
    }

    fn schedule(&mut self, after_ms: u64, tag: String) -> wasmtime::Result<Result<String, HostError>> {
        let result = timers::schedule(self, after_ms, tag);
        refused(self, "schedule", result)
    }

    fn cancel(&mut self, id: String) -> wasmtime::Result<()> {
        timers::cancel(self, id)
    }

    fn cancel_all(&mut self) -> wasmtime::Result<()> {
        timers::cancel_all(self)
    }

    fn add_to_list(&mut self, name: String) -> wasmtime::Result<Result<(), HostError>> {
        let result = lists::add(self, name);
        refused(self, "add-to-list", result)
    }

    fn remove_from_list(&mut self, name: String) -> wasmtime::Result<Result<(), HostError>> {
        let result = lists::remove(self, name);
        refused(self, "remove-from-list", result)
    }

    fn lists(&mut self) -> wasmtime::Result<Vec<String>> {
        lists::current(self)
    }

    fn coupon(&mut self) -> wasmtime::Result<Option<Coupon>> {
        coupons::coupon(self)
    }

    fn messages(&mut self) -> wasmtime::Result<Vec<SentMessage>> {
        messages::messages(self)
    }

    fn log(&mut self, level: LogLevel, text: String) -> wasmtime::Result<()> {
        log::log(self, level, text)
    }

    fn send_window_opens(&mut self, at_ms: i64) -> wasmtime::Result<i64> {
        send_window::opens(self, at_ms)
    }

    fn unique_coupon(&mut self) -> wasmtime::Result<Result<Coupon, HostError>> {
        let result = unique_coupon::unique_coupon(self);
        // A scope without a pool or pattern is a question plugins ask (`invalid`, then the
        // static coupon), not a mistake to report in the timeline.
        if matches!(&result, Ok(Err(HostError::Invalid(_)))) && self.declared.contains(&Capability::Coupons) {
            return result;
        }
        refused(self, "unique-coupon", result)
    }

    fn choose_variant(
        &mut self,
        step: String,
        variants: Vec<types::WeightedVariant>,
    ) -> wasmtime::Result<Result<String, HostError>> {
        let variants =
            variants.into_iter().map(|v| crate::domain::split::Variant { name: v.name, weight: v.weight }).collect();
        let result = variants::choose_variant(self, step, variants);
        refused(self, "choose-variant", result)
    }
}

/// Note a call refused as the plugin's mistake: a capability it did not declare, or an
/// argument the host cannot use. Refusals about the lead (suppressed, no phone) or a cap are
/// the plugin's to handle and are not noted.
fn refused<T>(
    state: &mut InvocationState,
    function: &str,
    result: wasmtime::Result<Result<T, HostError>>,
) -> wasmtime::Result<Result<T, HostError>> {
    if let Ok(Err(error)) = &result {
        let why = match error {
            HostError::NotDeclared(capability) => Some(format!(
                "the plugin did not declare the {} capability in describe()",
                super::wit::capability_name(*capability)
            )),
            HostError::Invalid(problem) => Some(problem.clone()),
            HostError::Suppressed | HostError::NoRecipient | HostError::LimitReached(_) => None,
        };
        if let Some(why) = why {
            state.refusals.push(format!("{function} refused: {why}"));
        }
    }
    result
}

/// Capability calls outside `handle` are a programming error of the plugin: trap.
fn require_handle(state: &InvocationState, what: &str) -> wasmtime::Result<()> {
    if state.phase != Phase::Handle {
        return Err(wasmtime::format_err!(
            "{what} may only be called from handle(), not from describe() or validate-config()"
        ));
    }
    Ok(())
}

/// Refuse a capability the plugin did not declare in `describe()`.
fn require_declared(state: &InvocationState, capability: Capability) -> Result<(), HostError> {
    if state.declared.contains(&capability) { Ok(()) } else { Err(HostError::NotDeclared(capability)) }
}

/// Record an effect, or stop the invocation when the plugin exceeds the effect cap.
fn record(state: &mut InvocationState, effect: Effect) -> wasmtime::Result<()> {
    if state.effects.len() >= state.max_effects {
        state.limit_hit = Some(Limit::Effects(state.max_effects));
        return Err(wasmtime::format_err!("effect limit of {} reached", state.max_effects));
    }
    state.effects.push(effect);
    Ok(())
}

/// A fresh, unguessable id for a message or timer.
fn new_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

/// Shared argument check: a non-empty tag of reasonable length.
fn check_tag(tag: &str) -> Result<(), HostError> {
    match funnel_sdk::limits::tag_problem(tag) {
        Some(problem) => Err(HostError::Invalid(format!("tag {problem}"))),
        None => Ok(()),
    }
}
