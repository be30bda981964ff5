//! `four-emails`: the sales-recovery policy of a Brazilian infoproduct platform, exactly.
//!
//! Products priced over R$ 20,00 (`min_price_cents`, default 2000, strictly greater) get up
//! to four recovery emails within 72 hours of the lead's capture: the first at least 20
//! minutes after capture, each next at least 5 hours after the one before. An email that
//! would fall past 72 hours is *disabled*: accepted, reported in the config report, never
//! sent. Coupons only on bindings that name a product and a plan with a registered coupon.
//! A purchase, an unsubscribe or a bounce ends the sequence.
//!
//! The rules live in [`policy`] as pure functions (tested natively); this file is the thin
//! layer that calls the host.

pub mod policy;

use funnel_sdk::{Call, Capability, ConfigNote, Event, LogLevel, Next, Plugin, PluginInfo, host};
use policy::{Config, State};

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

    fn check(config: &Config, binding: &funnel_sdk::BindingContext) -> Result<Vec<ConfigNote>, Vec<ConfigNote>> {
        let scope_named = binding.scope.product_id.is_some() && binding.scope.plan_id.is_some();
        policy::check(config, scope_named, binding.coupon.is_some())
    }

    fn summary(config: &Config) -> String {
        policy::summary(config)
    }

    fn handle(call: Call<'_, Config>, state: &mut State) -> Result<Next, String> {
        let config = call.config;
        let price = call.lead.price.as_ref().map(|p| p.amount_cents);
        match &call.event {
            Event::Captured => {
                if !policy::eligible(price, config.min_price_cents) {
                    let why =
                        format!("not eligible: price {price:?} cents is not over {} cents", config.min_price_cents);
                    host::log(LogLevel::Info, &why);
                    return Ok(Next::End);
                }
                schedule(config, 0)
            }
            Event::Timer(timer) => {
                let Some(index) = policy::index_of_tag(&timer.tag) else { return Ok(Next::Continue) };
                if index != state.next || call.lead.purchased {
                    return Ok(if call.lead.purchased { Next::End } else { Next::Continue });
                }
                if !policy::eligible(price, config.min_price_cents) {
                    host::log(LogLevel::Info, "the cart is no longer eligible: stopping");
                    return Ok(Next::End);
                }
                if call.now_ms > call.lead.captured_at_ms + policy::WINDOW.as_millis() as i64 {
                    host::log(LogLevel::Warn, &format!("{} is due past the 72-hour window: not sent", timer.tag));
                    return Ok(Next::End);
                }
                let email = policy::email(config, index);
                host::send_email(&email).map_err(|e| format!("send-email failed: {e}"))?;
                state.next = index + 1;
                match policy::next_enabled(config, index) {
                    Some(next) => {
                        let after = config.emails[next].after;
                        let due = call.now_ms + after.as_millis() as i64;
                        if due > call.lead.captured_at_ms + policy::WINDOW.as_millis() as i64 {
                            // Sent late (the host was down): the next one would now fall past 72 h.
                            return Ok(Next::End);
                        }
                        schedule(config, next)
                    }
                    None => Ok(Next::End),
                }
            }
            Event::Purchased(_) | Event::Unsubscribed | Event::Bounced(_) => Ok(Next::End),
            _ => Ok(Next::Continue),
        }
    }
}

fn schedule(config: &Config, index: usize) -> Result<Next, String> {
    host::schedule(config.emails[index].after, &policy::tag(index)).map_err(|e| format!("schedule failed: {e}"))?;
    Ok(Next::Continue)
}

funnel_sdk::export_plugin!(FourEmails);
