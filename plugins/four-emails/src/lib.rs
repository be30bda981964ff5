//! `four-emails`: the sales-recovery policy of a Brazilian infoproduct platform, exactly.
//!
//! Carts priced over R$ 20,00 (`min_price_cents`, default 2000, strictly greater; no price,
//! no email) get 1 to 4 recovery emails within 72 hours of the lead's capture: the first at
//! least 20 minutes after capture, each next at least 5 hours after the one before. An email
//! whose time would pass 72 hours is *disabled*: the config is accepted, the report's notes
//! say so, and it is never sent. Coupons only on bindings that name a product and a plan with
//! a registered coupon. A purchase, an unsubscribe or a bounce ends the sequence.
//!
//! The times are when emails really go out: when the binding has a send window, the host holds
//! an email due outside it until it opens (`send-window-opens` says when). An email held past
//! 72 hours is disabled then (noted in the lead's timeline), and the next email's 5-hour gap
//! counts from the held email's real send.
//!
//! ## Layout
//! - [`config`]: the config's shape (the public contract), validation, summary, and what
//!   follows from a config (when each email goes out, the email as sent).
//! - [`policy`]: the numbers and the pure rules built on them (timing, eligibility, tags).
//! - [`run`]: what each event of a lead does, over a small [`run::Host`] trait.
//!
//! This file only wires those to the SDK's `Plugin` trait and the real host capabilities.

pub mod config;
pub mod policy;
pub mod run;

use funnel_sdk::host::{self, Email};
use funnel_sdk::{
    BindingContext, Call, Capability, ConfigNote, Duration, HostError, LogLevel, Next, Plugin, PluginInfo,
};

use config::Config;
use run::State;

struct FourEmails;

impl Plugin for FourEmails {
    type Config = Config;
    type State = State;

    fn info() -> PluginInfo {
        funnel_sdk::info(
            "four-emails",
            "1.0.0",
            "Up to 4 recovery emails within 72 h of abandonment, optionally with a coupon",
            &[Capability::Email, Capability::Timers, Capability::Coupons],
        )
    }

    fn check(config: &Config, binding: &BindingContext) -> Result<Vec<ConfigNote>, Vec<ConfigNote>> {
        config::check(config, binding)
    }

    fn summary(config: &Config) -> String {
        config::summary(config)
    }

    fn handle(call: Call<'_, Config>, state: &mut State) -> Result<Next, String> {
        run::handle(call.config, call.lead, &call.event, call.now_ms, state, &mut RealHost)
    }
}

/// The host's capabilities, as a run sees them.
struct RealHost;

impl run::Host for RealHost {
    fn send_email(&mut self, email: &Email) -> Result<(), HostError> {
        host::send_email(email).map(|_id| ())
    }
    fn unique_coupon(&mut self) -> Result<bool, String> {
        match host::unique_coupon() {
            Ok(_) => Ok(true),
            Err(HostError::LimitReached(why)) => Err(why),
            // No pool or pattern on the scope (`invalid`): the static coupon, as before.
            Err(_) => Ok(false),
        }
    }
    fn has_coupon(&mut self) -> bool {
        host::coupon().is_some()
    }
    fn schedule(&mut self, after: Duration, tag: &str) -> Result<(), HostError> {
        host::schedule(after, tag).map(|_id| ())
    }
    fn log(&mut self, level: LogLevel, text: &str) {
        host::log(level, text)
    }
    fn send_window_opens(&mut self, at_ms: i64) -> i64 {
        host::send_window_opens(at_ms)
    }
}

funnel_sdk::export_plugin!(FourEmails);
