//! The formats funnel's tools exchange, defined once for the host, this SDK and the command
//! line: the scenario file `funnel simulate` reads ([`Scenario`]), the lines it prints
//! ([`Line`]), and a config or scenario problem as one line of text ([`note_line`]).
//!
//! `funnel simulate` parses scenarios and prints lines with these types, and
//! [`testing`](crate::testing) builds scenarios and reads lines with them, so the two cannot
//! drift. The reference page for plugin authors (`examples/plugin-authors.md` in funnel's
//! repository) describes the same formats in prose.

use std::fmt;

use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize};

use crate::Duration;

/// A config or scenario problem as one line: `emails[0].after: must wait 20 minutes`, or just
/// the message when it is about the whole document (an empty path).
///
/// ```
/// assert_eq!(funnel_sdk::wire::note_line("until", "invalid duration"), "until: invalid duration");
/// assert_eq!(funnel_sdk::wire::note_line("", "not JSON"), "not JSON");
/// ```
pub fn note_line(path: &str, message: &str) -> String {
    if path.is_empty() { message.to_string() } else { format!("{path}: {message}") }
}

/// Several problems on one line, `; ` between them (how the command line reports them).
///
/// ```
/// let line = funnel_sdk::wire::notes_line([("a", "x"), ("", "y")]);
/// assert_eq!(line, "a: x; y");
/// ```
pub fn notes_line<'a>(notes: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    notes.into_iter().map(|(path, message)| note_line(path, message)).collect::<Vec<_>>().join("; ")
}

/// The scenario file of `funnel simulate`: one lead, the binding it falls under, what happens
/// to it and when (times after capture), and how long to watch.
///
/// ```
/// let scenario = funnel_sdk::wire::Scenario::parse(r#"{
///     "lead": {"email": "ana@example.com", "phone": "+5511999990000"},
///     "events": [{"at": "3h", "type": "click", "message": 1}, {"at": "26h", "type": "order.paid"}],
///     "until": "96h"}"#).unwrap();
/// assert_eq!(scenario.events[0].message, Some(1));
/// assert_eq!(scenario.until, funnel_sdk::Duration::from_hours(96));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// The instant the lead is captured (time 0), RFC 3339 (`2026-03-06T23:10:00-03:00`);
    /// 2026-01-01T00:00:00Z when absent. Matters with a send window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// The binding's scope and coupon; producer-wide (and without coupon) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binding: Option<ScenarioBinding>,
    /// The lead, captured at time 0.
    pub lead: ScenarioLead,
    /// What happens after capture, in any order (they run sorted by `at`, ties in file order).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<ScenarioEvent>,
    /// How long to simulate after capture.
    pub until: Duration,
}

/// The binding a scenario's lead falls under.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioBinding {
    /// The product the binding names, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_id: Option<String>,
    /// The plan the binding names, if any (with a product).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_id: Option<String>,
    /// The coupon registered for the product and plan (`POST /v1/coupons` on a server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coupon: Option<ScenarioCoupon>,
    /// The binding's send window (`PUT /v1/bindings`' `send_window` on a server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_window: Option<SendWindow>,
    /// Unique coupons registered for the product and plan (`POST /v1/coupons` with `codes`
    /// or `pattern`): what `unique-coupon` gives the lead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unique_coupons: Option<ScenarioUniqueCoupons>,
}

/// A binding's send window (quiet hours): recovery messages due outside it wait for its next
/// opening. The host checks the values (`funnel simulate` exits 2 naming a bad one).
///
/// ```
/// let w: funnel_sdk::wire::SendWindow = serde_json::from_str(
///     r#"{"start": "08:00", "end": "21:00", "days": ["mon", "tue"], "timezone": "America/Sao_Paulo"}"#).unwrap();
/// assert_eq!(w.days.as_ref().map(Vec::len), Some(2));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendWindow {
    /// Local opening time, `HH:MM`.
    pub start: String,
    /// Local closing time, `HH:MM` (`24:00` for midnight); earlier than `start`: overnight.
    pub end: String,
    /// The days the window opens on (`mon` … `sun`); every day when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<Vec<String>>,
    /// The IANA zone of the hours; the lead's own `timezone` wins over it.
    pub timezone: String,
}

/// A pool of codes (given out in order) or a pattern (a fresh random code; so a timeline
/// showing it differs between runs) for the binding's product and plan. Exactly one of
/// `codes` and `pattern`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioUniqueCoupons {
    /// The pool's codes; an empty list is a used-up pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codes: Option<Vec<String>>,
    /// A pattern such as `VOLTA-{A6}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// The discount, 1 to 100.
    pub discount_percent: u8,
}

/// A coupon registered for the binding's product and plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioCoupon {
    /// What `{{coupon_code}}` renders to.
    pub code: String,
    /// The discount, 1 to 100.
    pub discount_percent: u8,
}

/// The lead of a scenario: what the checkout platform sent about the buyer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioLead {
    /// The buyer's email address.
    pub email: String,
    /// The buyer's full name (`{{name}}`; its first word is `{{first_name}}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The buyer's phone; without one, SMS are refused with `no-recipient`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// The checkout's product.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_id: Option<String>,
    /// The checkout's plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_id: Option<String>,
    /// The cart's price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<Price>,
    /// The checkout page (`{{checkout_url}}` links to it through a tracked link).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The buyer's IANA time zone (`checkout.timezone`): a send window is in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
}

/// An amount in the currency's minor unit: R$ 97,00 is `{"amount_cents": 9700, "currency": "BRL"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// Minor units (cents).
    pub amount_cents: i64,
    /// ISO 4217 code.
    pub currency: String,
}

/// Something that happens to the lead `at` after capture.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioEvent {
    /// When, after capture.
    pub at: Duration,
    /// What.
    #[serde(rename = "type")]
    pub kind: ScenarioEventKind,
    /// For clicks and opens: which sent message, counting from 1 in the order they were sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<usize>,
}

/// What can happen to a scenario's lead.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScenarioEventKind {
    /// The buyer clicks a tracked link of a sent message (`message` says which).
    #[serde(rename = "click")]
    Click,
    /// The buyer opens a sent message (`message` says which).
    #[serde(rename = "open")]
    Open,
    /// The order is paid.
    #[serde(rename = "order.paid")]
    OrderPaid,
    /// The order is refunded.
    #[serde(rename = "order.refunded")]
    OrderRefunded,
    /// The buyer unsubscribes (one click on an unsubscribe link).
    #[serde(rename = "unsubscribe")]
    Unsubscribe,
    /// The platform sends the checkout again (an update).
    #[serde(rename = "checkout.updated")]
    CheckoutUpdated,
}

/// Why a scenario was refused: where, and what is wrong there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioError {
    /// The JSON path (`events[1].message`), empty for the whole file.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&note_line(&self.path, &self.message))
    }
}

impl std::error::Error for ScenarioError {}

impl Scenario {
    /// Parse a scenario file and check what its shape cannot say (a click names a sent
    /// message, events fall before `until`, a coupon needs a product and a plan).
    ///
    /// ```
    /// use funnel_sdk::wire::Scenario;
    /// let err = Scenario::parse(r#"{"lead": {"email": "ana@example.com"}, "until": "soon"}"#).unwrap_err();
    /// assert_eq!(err.path, "until");
    /// let err = Scenario::parse(r#"{"lead": {"email": "ana@example.com"},
    ///     "events": [{"at": "1h", "type": "click"}], "until": "2h"}"#).unwrap_err();
    /// assert_eq!(err.to_string(), "events[0].message: a click or open names the message it is about (1 = first sent)");
    /// ```
    pub fn parse(json: &str) -> Result<Scenario, ScenarioError> {
        let scenario: Scenario = crate::parse(json).map_err(|notes| match notes.into_iter().next() {
            Some(n) => ScenarioError { path: n.path, message: n.message },
            None => ScenarioError { path: String::new(), message: "not a scenario".into() },
        })?;
        scenario.check()?;
        Ok(scenario)
    }

    /// The checks of [`parse`](Self::parse) beyond the shape, for a scenario built in code.
    pub fn check(&self) -> Result<(), ScenarioError> {
        let err = |path: String, message: String| Err(ScenarioError { path, message });
        let email = self.lead.email.trim();
        if email.is_empty() || !email.contains('@') {
            return err("lead.email".into(), format!("{:?} is not an email address", self.lead.email));
        }
        for (i, event) in self.events.iter().enumerate() {
            let needs_message = matches!(event.kind, ScenarioEventKind::Click | ScenarioEventKind::Open);
            match (needs_message, event.message) {
                (true, None) => {
                    return err(
                        format!("events[{i}].message"),
                        "a click or open names the message it is about (1 = first sent)".into(),
                    );
                }
                (true, Some(0)) => return err(format!("events[{i}].message"), "messages count from 1".into()),
                (false, Some(_)) => {
                    return err(format!("events[{i}].message"), "only clicks and opens name a message".into());
                }
                _ => {}
            }
            if event.at > self.until {
                return err(format!("events[{i}].at"), format!("{} is after until ({})", event.at, self.until));
            }
        }
        if let Some(binding) = &self.binding
            && binding.coupon.is_some()
            && (binding.product_id.is_none() || binding.plan_id.is_none())
        {
            return err("binding.coupon".into(), "a coupon needs a binding with a product_id and a plan_id".into());
        }
        Ok(())
    }
}

/// One line `funnel simulate` prints: something the host did (or would do) for the lead, at
/// `at_s` seconds after capture. Fields a kind does not have are `None` and not printed.
///
/// Printed as one JSON object with its keys in alphabetical order; emails and SMS always carry
/// `coupon` (`null` without one), so a line reads the same on every run:
///
/// ```
/// use funnel_sdk::wire::{Line, LineKind};
/// let sms = Line { body: Some("Oi".into()), tag: Some("sms-1".into()), ..Line::new(900, LineKind::Sms) };
/// let json = serde_json::to_string(&sms).unwrap();
/// assert_eq!(json, r#"{"at_s":900,"body":"Oi","coupon":null,"kind":"sms","tag":"sms-1"}"#);
/// assert_eq!(serde_json::from_str::<Line>(&json).unwrap(), sms);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct Line {
    /// Seconds after capture.
    pub at_s: i64,
    /// What happened.
    pub kind: LineKind,
    /// The message's tag (emails, SMS, dropped messages).
    #[serde(default)]
    pub tag: Option<String>,
    /// An email's rendered subject.
    #[serde(default)]
    pub subject: Option<String>,
    /// An SMS's rendered body; an email's rendered text with `--show-body`.
    #[serde(default)]
    pub body: Option<String>,
    /// The coupon code the message carries.
    #[serde(default)]
    pub coupon: Option<String>,
    /// The list of a list change.
    #[serde(default)]
    pub list: Option<String>,
    /// Why a message was dropped (`purchased`, `suppressed`, `contact_cap`, …) or deferred
    /// (`send_window`, `contact_cap`).
    #[serde(default)]
    pub reason: Option<String>,
    /// What a failure, a refusal or a verbose-only line says.
    #[serde(default)]
    pub detail: Option<String>,
}

impl Line {
    /// A line of `kind` at `at_s` with no other field set.
    pub fn new(at_s: i64, kind: LineKind) -> Line {
        Line { at_s, kind, ..Line::default() }
    }

    /// Whether this line reports a plugin failure: an invocation that failed (retried or
    /// parked) or a capability call the host refused as a plugin mistake.
    ///
    /// ```
    /// use funnel_sdk::wire::{Line, LineKind};
    /// assert!(Line::new(0, LineKind::Failed).is_failure());
    /// assert!(!Line::new(0, LineKind::Email).is_failure());
    /// ```
    pub fn is_failure(&self) -> bool {
        self.kind.is_failure()
    }
}

impl Serialize for Line {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Alphabetical, as `funnel simulate` has always printed its lines; `coupon` is part of
        // every message line, even when null.
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("at_s", &self.at_s)?;
        if let Some(body) = &self.body {
            map.serialize_entry("body", body)?;
        }
        if matches!(self.kind, LineKind::Email | LineKind::Sms) {
            map.serialize_entry("coupon", &self.coupon)?;
        }
        if let Some(detail) = &self.detail {
            map.serialize_entry("detail", detail)?;
        }
        map.serialize_entry("kind", &self.kind)?;
        for (key, value) in
            [("list", &self.list), ("reason", &self.reason), ("subject", &self.subject), ("tag", &self.tag)]
        {
            if let Some(value) = value {
                map.serialize_entry(key, value)?;
            }
        }
        map.end()
    }
}

/// What a [`Line`] reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineKind {
    /// An email was sent.
    #[default]
    Email,
    /// An SMS was sent.
    Sms,
    /// The contact was put on a list.
    ListAdd,
    /// The contact was taken off a list.
    ListRemove,
    /// A queued message was not sent (`reason`).
    Dropped,
    /// A recovery message was held back (`reason`: `send_window` or `contact_cap`) until the
    /// time `detail` gives, in the lead's local time; it is sent then.
    Deferred,
    /// An invocation failed and will be retried (`detail` says how).
    Retry,
    /// An invocation failed for good and its event was parked (`detail` says how).
    Failed,
    /// The host refused a capability call as a plugin mistake: a capability not declared in
    /// `describe`, or an unusable argument (`detail` says which).
    Refused,
    /// Verbose: the plugin scheduled a timer.
    TimerSet,
    /// Verbose: a line the plugin logged (or printed).
    Log,
    /// Verbose: the plugin ended the lead's run.
    RunEnded,
    /// Verbose: a message bounced.
    Bounced,
    /// Verbose: a message could not be delivered after retries.
    SendFailed,
    /// Verbose: the person unsubscribed.
    Unsubscribed,
    /// A kind this version of the SDK does not know (printed by a newer `funnel`).
    #[serde(other)]
    Other,
}

impl LineKind {
    /// Whether lines of this kind report a plugin failure.
    pub fn is_failure(self) -> bool {
        matches!(self, LineKind::Retry | LineKind::Failed | LineKind::Refused)
    }

    /// Whether `funnel simulate` prints lines of this kind without `--verbose`.
    pub fn always_printed(self) -> bool {
        matches!(
            self,
            LineKind::Email
                | LineKind::Sms
                | LineKind::ListAdd
                | LineKind::ListRemove
                | LineKind::Dropped
                | LineKind::Deferred
                | LineKind::Retry
                | LineKind::Failed
                | LineKind::Refused
        )
    }

    /// The name as printed (`list_add`).
    pub fn as_str(self) -> &'static str {
        match self {
            LineKind::Email => "email",
            LineKind::Sms => "sms",
            LineKind::ListAdd => "list_add",
            LineKind::ListRemove => "list_remove",
            LineKind::Dropped => "dropped",
            LineKind::Deferred => "deferred",
            LineKind::Retry => "retry",
            LineKind::Failed => "failed",
            LineKind::Refused => "refused",
            LineKind::TimerSet => "timer_set",
            LineKind::Log => "log",
            LineKind::RunEnded => "run_ended",
            LineKind::Bounced => "bounced",
            LineKind::SendFailed => "send_failed",
            LineKind::Unsubscribed => "unsubscribed",
            LineKind::Other => "other",
        }
    }
}

impl fmt::Display for LineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The exit status of `funnel simulate` when the plugin failed (an invocation failed or a
/// capability call was refused as a mistake) and `--allow-failures` was not given. Bad input
/// (plugin, config, scenario) exits with 2.
pub const EXIT_PLUGIN_FAILED: i32 = 3;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_lines_print_as_they_always_have() {
        let email = Line {
            tag: Some("email-1".into()),
            subject: Some("Ana, oi".into()),
            coupon: Some("VOLTA10".into()),
            ..Line::new(14400, LineKind::Email)
        };
        assert_eq!(
            serde_json::to_string(&email).unwrap(),
            r#"{"at_s":14400,"coupon":"VOLTA10","kind":"email","subject":"Ana, oi","tag":"email-1"}"#
        );
        let list = Line { list: Some("inactive".into()), ..Line::new(60, LineKind::ListAdd) };
        assert_eq!(serde_json::to_string(&list).unwrap(), r#"{"at_s":60,"kind":"list_add","list":"inactive"}"#);
        let failed = Line { detail: Some("trapped".into()), ..Line::new(0, LineKind::Failed) };
        assert_eq!(serde_json::to_string(&failed).unwrap(), r#"{"at_s":0,"detail":"trapped","kind":"failed"}"#);
    }

    #[test]
    fn every_kind_reads_back_as_itself_and_unknown_kinds_are_other() {
        for kind in [
            LineKind::Email,
            LineKind::Sms,
            LineKind::ListAdd,
            LineKind::ListRemove,
            LineKind::Dropped,
            LineKind::Deferred,
            LineKind::Retry,
            LineKind::Failed,
            LineKind::Refused,
            LineKind::TimerSet,
            LineKind::Log,
            LineKind::RunEnded,
            LineKind::Bounced,
            LineKind::SendFailed,
            LineKind::Unsubscribed,
        ] {
            let json = serde_json::to_string(&Line::new(1, kind)).unwrap();
            assert!(json.contains(&format!("\"kind\":\"{kind}\"")), "{json}");
            assert_eq!(serde_json::from_str::<Line>(&json).unwrap().kind, kind);
        }
        let newer: Line = serde_json::from_str(r#"{"at_s":1,"kind":"teleported"}"#).unwrap();
        assert_eq!(newer.kind, LineKind::Other);
    }

    #[test]
    fn scenarios_round_trip_and_refuse_what_their_shape_cannot_say() {
        let json = r#"{"binding":{"product_id":"p1","plan_id":"q1","coupon":{"code":"VOLTA10","discount_percent":10}},"lead":{"email":"ana@example.com","price":{"amount_cents":9700,"currency":"BRL"}},"events":[{"at":"3h","type":"click","message":1}],"until":"4d"}"#;
        let scenario = Scenario::parse(json).unwrap();
        assert_eq!(serde_json::to_string(&scenario).unwrap(), json);
        for (bad, path) in [
            (r#"{"lead":{"email":"nope"},"until":"1h"}"#, "lead.email"),
            (r#"{"lead":{"email":"a@b.c"},"events":[{"at":"2h","type":"order.paid"}],"until":"1h"}"#, "events[0].at"),
            (
                r#"{"lead":{"email":"a@b.c"},"events":[{"at":"1h","type":"click","message":0}],"until":"2h"}"#,
                "events[0].message",
            ),
            (
                r#"{"lead":{"email":"a@b.c"},"events":[{"at":"1h","type":"order.paid","message":1}],"until":"2h"}"#,
                "events[0].message",
            ),
            (
                r#"{"binding":{"coupon":{"code":"X","discount_percent":5}},"lead":{"email":"a@b.c"},"until":"2h"}"#,
                "binding.coupon",
            ),
            (r#"{"lead":{"email":"a@b.c","fone":"1"},"until":"2h"}"#, "lead.fone"),
        ] {
            assert_eq!(Scenario::parse(bad).unwrap_err().path, path, "{bad}");
        }
    }
}
