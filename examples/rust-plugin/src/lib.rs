//! `sms-first`: a producer's own recovery strategy, written with `funnel-sdk`.
//!
//! It does what neither built-in plugin does (see `examples/sms-first/README.md`):
//! - a lead **with a phone** gets an SMS first, `sms_after` the capture;
//! - every lead then gets one email, `email_after` the capture, and the email carries the
//!   binding's coupon **only when the cart is over `coupon_over_cents`** (R$ 200,00 by default);
//! - a purchase, an unsubscribe or a bounce ends the run, and the host cancels its timers.
//!
//! Read it top to bottom: the config and its rules, then what each event does. Build the
//! component with `funnel plugin build` (it prints the path) and try it with
//! `funnel simulate --plugin "$(funnel plugin build)" --config ../sms-first/config.json --scenario ../sms-first/scenarios/big-cart-with-phone.json`.
//! `tests/timeline.rs` runs every scenario through the real runtime and checks the timeline.

use funnel_sdk::host::{self, Email};
use funnel_sdk::{
    BindingContext, Call, Capability, ConfigNote, Duration, Event, HostError, Lead, LogLevel, MessageKind, Next,
    Plugin, PluginInfo, note,
};
use serde::{Deserialize, Serialize};

/// The binding's config, as the producer writes it (`examples/sms-first/config.json`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// When the SMS goes, after capture (leads with a phone only).
    #[serde(default = "default_sms_after")]
    pub sms_after: Duration,
    /// The SMS body template (`{{first_name}}`, `{{checkout_url}}`, …).
    pub sms: String,
    /// When the email goes, after capture.
    #[serde(default = "default_email_after")]
    pub email_after: Duration,
    /// The email's subject template.
    pub subject: String,
    /// The email's HTML template. It must not use `{{coupon_code}}`: the plugin adds the
    /// coupon line itself, for big carts only.
    pub html: String,
    /// The coupon line added to a big cart's email, in the email's language; it shows the
    /// code with `{{coupon_code}}` (e.g. `"Use o cupom {{coupon_code}} ao finalizar."`).
    pub coupon_line: String,
    /// Carts priced strictly over this many cents get the coupon.
    #[serde(default = "default_coupon_over_cents")]
    pub coupon_over_cents: u64,
}

fn default_sms_after() -> Duration {
    Duration::from_mins(15)
}
fn default_email_after() -> Duration {
    Duration::from_hours(4)
}
fn default_coupon_over_cents() -> u64 {
    20_000
}

/// What the plugin remembers about a lead between events. This strategy needs nothing: its
/// two timers carry the plan, and the host tells it whether the lead bought.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct State {}

/// Timer tags: each timer says what it is for.
const SMS_TIMER: &str = "sms";
const EMAIL_TIMER: &str = "email";

struct SmsFirst;

impl Plugin for SmsFirst {
    type Config = Config;
    type State = State;

    fn info() -> PluginInfo {
        funnel_sdk::info(
            "sms-first",
            "0.1.0",
            "An SMS first for leads with a phone, then one email; the coupon only for big carts",
            // Undeclared capabilities are refused by the host: declare all four we use.
            &[Capability::Sms, Capability::Email, Capability::Timers, Capability::Coupons],
        )
    }

    /// Rules beyond the config's shape, each reported at its field.
    fn check(config: &Config, binding: &BindingContext) -> Result<Vec<ConfigNote>, Vec<ConfigNote>> {
        let mut errors = Vec::new();
        for (field, template) in [("sms", &config.sms), ("subject", &config.subject), ("html", &config.html)] {
            if template.trim().is_empty() {
                errors.push(note(field, "must not be empty"));
            } else if funnel_sdk::coupon::uses_coupon(template) {
                errors.push(note(field, "must not use {{coupon_code}}: the plugin adds the coupon for big carts"));
            }
        }
        if let Some(problem) = funnel_sdk::coupon::line_problem(&config.coupon_line) {
            errors.push(note("coupon_line", problem));
        }
        if config.email_after <= config.sms_after {
            errors.push(note(
                "email_after",
                format!("must be after sms_after ({}), got {}", config.sms_after, config.email_after),
            ));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        // Not an error: the producer may want the same strategy on a binding with no coupon.
        Ok(match funnel_sdk::coupon::binding_problem(binding) {
            Some(problem) => {
                vec![note("", format!("no coupon on this binding ({problem}): every email goes without one"))]
            }
            None => Vec::new(),
        })
    }

    fn summary(config: &Config) -> String {
        format!(
            "SMS after {} to leads with a phone, then one email after {}; coupon for carts over {}",
            config.sms_after,
            config.email_after,
            reais(config.coupon_over_cents)
        )
    }

    fn handle(call: Call<'_, Config>, _state: &mut State) -> Result<Next, String> {
        let (config, lead) = (call.config, call.lead);
        match call.event {
            Event::Captured => {
                if lead.purchased || lead.suppressed {
                    return Ok(Next::End);
                }
                if lead.phone.is_some() {
                    host::schedule(config.sms_after, SMS_TIMER).map_err(|e| format!("schedule the SMS: {e}"))?;
                }
                host::schedule(config.email_after, EMAIL_TIMER).map_err(|e| format!("schedule the email: {e}"))?;
                Ok(Next::Continue)
            }
            Event::Timer(timer) if timer.tag == SMS_TIMER => {
                if !lead.purchased {
                    send_sms(config);
                }
                Ok(Next::Continue)
            }
            Event::Timer(timer) if timer.tag == EMAIL_TIMER => {
                if !lead.purchased {
                    send_email(config, lead)?;
                }
                // The email is the last step.
                Ok(Next::End)
            }
            Event::Purchased(_) | Event::Unsubscribed | Event::Bounced(_) => Ok(Next::End),
            // A stray timer, an update, a click: nothing changes the plan.
            _ => Ok(Next::Continue),
        }
    }
}

/// The SMS. A refusal (the phone was suppressed meanwhile) is logged, not an error: retrying
/// the event would not change the host's answer.
fn send_sms(config: &Config) {
    match host::send_sms(&config.sms, "sms-1", MessageKind::Recovery) {
        Ok(_) => {}
        Err(HostError::Suppressed | HostError::NoRecipient) => {
            host::log(LogLevel::Info, "no SMS: no deliverable phone")
        }
        Err(e) => host::log(LogLevel::Warn, &format!("no SMS: {e}")),
    }
}

/// The email, with the producer's coupon line only for a cart over the threshold on a binding
/// with a coupon.
fn send_email(config: &Config, lead: &Lead) -> Result<(), String> {
    let mut email = Email::new(&config.subject, &config.html, "email-1");
    if big_cart(config, lead) && host::coupon().is_some() {
        funnel_sdk::coupon::add_line(&mut email.html, None, &config.coupon_line);
    }
    match host::send_email(&email) {
        Ok(_) | Err(HostError::Suppressed) => Ok(()),
        Err(e) => Err(format!("send the email: {e}")),
    }
}

/// Whether the cart is priced strictly over `coupon_over_cents` (no price: not big).
fn big_cart(config: &Config, lead: &Lead) -> bool {
    lead.price.as_ref().is_some_and(|p| u64::try_from(p.amount_cents).is_ok_and(|c| c > config.coupon_over_cents))
}

/// Cents as a person in Brazil writes them: `20000` → `R$ 200,00`, `123456` → `R$ 1.234,56`.
fn reais(cents: u64) -> String {
    let whole = (cents / 100).to_string();
    let mut grouped = String::new();
    for (i, digit) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            grouped.push('.');
        }
        grouped.push(digit);
    }
    format!("R$ {grouped},{:02}", cents % 100)
}

funnel_sdk::export_plugin!(SmsFirst);

#[cfg(test)]
mod tests {
    use super::*;
    use funnel_sdk::{Money, Scope};

    fn config(json: &str) -> Result<Config, Vec<ConfigNote>> {
        funnel_sdk::parse(json)
    }

    fn binding(coupon: bool) -> BindingContext {
        BindingContext {
            scope: Scope { product_id: Some("p1".into()), plan_id: Some("q1".into()) },
            coupon: coupon.then(|| funnel_sdk::Coupon { code: "VOLTA10".into(), discount_percent: 10 }),
        }
    }

    const VALID: &str =
        r#"{"sms": "Oi", "subject": "Volta", "html": "<p>Volta</p>", "coupon_line": "Use o cupom {{coupon_code}}."}"#;

    #[test]
    fn defaults_fill_the_timing_and_threshold() {
        let c = config(VALID).expect("valid");
        assert_eq!(
            (c.sms_after, c.email_after, c.coupon_over_cents),
            (Duration::from_mins(15), Duration::from_hours(4), 20_000)
        );
        assert_eq!(
            SmsFirst::summary(&c),
            "SMS after 15m to leads with a phone, then one email after 4h; coupon for carts over R$ 200,00"
        );
    }

    #[test]
    fn an_email_not_after_the_sms_is_refused_at_email_after() {
        let c = config(
            r#"{"sms": "Oi", "subject": "Volta", "html": "x", "coupon_line": "{{coupon_code}}", "sms_after": "1h", "email_after": "30m"}"#,
        )
        .expect("parses");
        let errors = SmsFirst::check(&c, &binding(true)).expect_err("refused");
        assert_eq!(errors[0].path, "email_after");
        assert!(errors[0].message.contains("after sms_after (1h)"), "{}", errors[0].message);
    }

    #[test]
    fn templates_may_not_hand_out_the_coupon_themselves() {
        let c = config(
            r#"{"sms": "{{coupon_code}}", "subject": "Volta", "html": "<p>{{coupon_code}}</p>", "coupon_line": "Use o cupom."}"#,
        )
        .expect("parses");
        let paths: Vec<_> =
            SmsFirst::check(&c, &binding(true)).expect_err("refused").into_iter().map(|n| n.path).collect();
        assert_eq!(paths, ["sms", "html", "coupon_line"]);
    }

    #[test]
    fn unknown_fields_and_bad_durations_name_their_path() {
        assert_eq!(
            config(r#"{"sms": "a", "subject": "b", "html": "c", "coupon_line": "d", "smsafter": "1h"}"#).unwrap_err()
                [0]
            .path,
            "smsafter"
        );
        assert_eq!(
            config(r#"{"sms": "a", "subject": "b", "html": "c", "coupon_line": "d", "sms_after": "20"}"#).unwrap_err()
                [0]
            .path,
            "sms_after"
        );
    }

    #[test]
    fn a_binding_without_coupon_is_accepted_with_a_note() {
        let notes = SmsFirst::check(&config(VALID).expect("valid"), &binding(false)).expect("accepted");
        assert!(notes[0].message.contains("every email goes without one"), "{}", notes[0].message);
    }

    #[test]
    fn money_reads_as_in_brazil() {
        assert_eq!(reais(0), "R$ 0,00");
        assert_eq!(reais(20_000), "R$ 200,00");
        assert_eq!(reais(123_456), "R$ 1.234,56");
        assert_eq!(reais(100_000_000), "R$ 1.000.000,00");
    }

    #[test]
    fn big_cart_is_strictly_over_the_threshold() {
        let c = config(VALID).expect("valid");
        let lead = |cents: Option<i64>| Lead {
            id: "l1".into(),
            email: "ana@example.com".into(),
            name: None,
            first_name: None,
            phone: None,
            product_id: None,
            plan_id: None,
            price: cents.map(|amount_cents| Money { amount_cents, currency: "BRL".into() }),
            captured_at_ms: 0,
            purchased: false,
            suppressed: false,
        };
        assert!(big_cart(&c, &lead(Some(20_001))));
        assert!(!big_cart(&c, &lead(Some(20_000))));
        assert!(!big_cart(&c, &lead(Some(-5))));
        assert!(!big_cart(&c, &lead(None)));
    }
}
