//! The policy's rules as pure functions: config shape, validation with field paths, the
//! schedule (which emails are enabled), eligibility and the email each step sends.

use funnel_sdk::host::Email;
use funnel_sdk::{ConfigNote, Duration, MessageKind, note};
use serde::{Deserialize, Serialize};

/// The first email waits at least this long after capture.
pub const FIRST_MIN: Duration = Duration::from_mins(20);
/// Each next email waits at least this long after the previous one.
pub const GAP_MIN: Duration = Duration::from_hours(5);
/// Every email must go out within this window after capture.
pub const WINDOW: Duration = Duration::from_hours(72);
/// At most this many emails.
pub const MAX_EMAILS: usize = 4;

/// The binding's config (the public contract).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Only carts priced over this many cents are eligible.
    #[serde(default = "default_min_price")]
    pub min_price_cents: i64,
    pub emails: Vec<EmailConfig>,
}

fn default_min_price() -> i64 {
    2000
}

/// One email of the sequence.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// After capture (first email) or after the previous email.
    pub after: Duration,
    pub subject: String,
    pub html: String,
    #[serde(default)]
    pub text: Option<String>,
    /// Carry the binding's coupon.
    #[serde(default)]
    pub coupon: bool,
}

/// What the plugin remembers about a lead: the index of the next email to send.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    pub next: usize,
}

/// The line added to an email with `coupon: true` that does not mention the coupon itself.
pub const COUPON_LINE_HTML: &str = "<p>Use the coupon <strong>{{coupon_code}}</strong> at checkout.</p>";
const COUPON_LINE_TEXT: &str = "Use the coupon {{coupon_code}} at checkout.";

/// The tag of email `index` (0-based): `email-1` … `email-4`.
pub fn tag(index: usize) -> String {
    format!("email-{}", index + 1)
}

/// The index back from a tag.
pub fn index_of_tag(tag: &str) -> Option<usize> {
    tag.strip_prefix("email-")?.parse::<usize>().ok()?.checked_sub(1)
}

/// Only carts priced strictly over the minimum; no price, not eligible.
pub fn eligible(price_cents: Option<i64>, min_price_cents: i64) -> bool {
    price_cents.is_some_and(|p| p > min_price_cents)
}

/// When each email goes out after capture (planned), cumulative.
pub fn offsets(config: &Config) -> Vec<Duration> {
    let mut at = Duration::default();
    config
        .emails
        .iter()
        .map(|e| {
            at = at.saturating_add(e.after);
            at
        })
        .collect()
}

/// Whether email `index` falls within the window.
pub fn enabled(config: &Config, index: usize) -> bool {
    offsets(config).get(index).is_some_and(|at| *at <= WINDOW)
}

/// The next enabled email after `index`.
pub fn next_enabled(config: &Config, index: usize) -> Option<usize> {
    let next = index + 1;
    (next < config.emails.len() && enabled(config, next)).then_some(next)
}

/// The email `index` sends.
pub fn email(config: &Config, index: usize) -> Email {
    let c = &config.emails[index];
    let mut html = c.html.clone();
    let mut text = c.text.clone();
    if c.coupon && !mentions_coupon(&c.html) {
        html.push_str(COUPON_LINE_HTML);
        if let Some(t) = &mut text {
            t.push_str("\n\n");
            t.push_str(COUPON_LINE_TEXT);
        }
    }
    Email { subject: c.subject.clone(), html, text, tag: tag(index), kind: MessageKind::Recovery }
}

fn mentions_coupon(template: &str) -> bool {
    template.contains("coupon_code")
}

/// Validate a config: remarks (disabled emails) or every problem found, each with its path.
pub fn check(
    config: &Config,
    scope_names_product_and_plan: bool,
    coupon_registered: bool,
) -> Result<Vec<ConfigNote>, Vec<ConfigNote>> {
    let mut errors = Vec::new();
    let mut notes = Vec::new();
    let n = config.emails.len();
    if n == 0 {
        errors.push(note("emails", "at least 1 email"));
    }
    if n > MAX_EMAILS {
        errors.push(note("emails", format!("at most {MAX_EMAILS} emails (got {n})")));
    }
    if config.min_price_cents < 0 {
        errors.push(note("min_price_cents", format!("must be 0 or more (got {})", config.min_price_cents)));
    }
    for (i, e) in config.emails.iter().enumerate() {
        let path = format!("emails[{i}]");
        if i == 0 && e.after < FIRST_MIN {
            errors.push(note(
                format!("{path}.after"),
                format!("the first email must wait at least 20 minutes (got {})", e.after),
            ));
        }
        if i > 0 && e.after < GAP_MIN {
            errors.push(note(
                format!("{path}.after"),
                format!("each email must wait at least 5 hours after the previous one (got {})", e.after),
            ));
        }
        if e.subject.trim().is_empty() {
            errors.push(note(format!("{path}.subject"), "must not be empty"));
        }
        if e.html.trim().is_empty() {
            errors.push(note(format!("{path}.html"), "must not be empty"));
        }
        if e.coupon {
            if !scope_names_product_and_plan {
                errors.push(note(format!("{path}.coupon"), "coupons need a binding with a product and a plan"));
            } else if !coupon_registered {
                errors.push(note(
                    format!("{path}.coupon"),
                    "no coupon is registered for this product and plan: register one with POST /v1/coupons first",
                ));
            }
        } else {
            for (field, value) in [("subject", Some(&e.subject)), ("html", Some(&e.html)), ("text", e.text.as_ref())] {
                if value.is_some_and(|v| mentions_coupon(v)) {
                    errors.push(note(
                        format!("{path}.{field}"),
                        "uses {{coupon_code}} but this email has no coupon: set \"coupon\": true",
                    ));
                }
            }
        }
    }
    for (i, at) in offsets(config).iter().enumerate() {
        if *at > WINDOW {
            notes.push(note(
                format!("emails[{i}]"),
                format!("disabled: it would go out at {at}, past the 72-hour window"),
            ));
        }
    }
    if errors.is_empty() { Ok(notes) } else { Err(errors) }
}

/// One line for the producer.
pub fn summary(config: &Config) -> String {
    let offsets = offsets(config);
    let enabled: Vec<String> = offsets.iter().filter(|at| **at <= WINDOW).map(|at| at.to_string()).collect();
    let disabled = offsets.len() - enabled.len();
    let mut s = format!(
        "{} email{}: at {} after capture",
        enabled.len(),
        if enabled.len() == 1 { "" } else { "s" },
        enabled.join(", ")
    );
    if disabled > 0 {
        s.push_str(&format!("; {disabled} disabled (past 72 h)"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(afters: &[&str]) -> Config {
        let emails: Vec<serde_json::Value> =
            afters.iter().map(|a| serde_json::json!({"after": a, "subject": "s", "html": "<p>h</p>"})).collect();
        funnel_sdk::parse(&serde_json::json!({ "emails": emails }).to_string()).expect("parses")
    }

    fn errors(c: &Config) -> Vec<String> {
        check(c, true, true).err().unwrap_or_default().iter().map(|n| format!("{}: {}", n.path, n.message)).collect()
    }

    #[test]
    fn first_email_waits_at_least_20_minutes() {
        assert!(errors(&config(&["20m"])).is_empty());
        assert_eq!(
            errors(&config(&["19m59s"])),
            ["emails[0].after: the first email must wait at least 20 minutes (got 19m59s)"]
        );
        assert_eq!(
            errors(&config(&["10m"])),
            ["emails[0].after: the first email must wait at least 20 minutes (got 10m)"]
        );
    }

    #[test]
    fn next_emails_wait_at_least_5_hours() {
        assert!(errors(&config(&["20m", "5h"])).is_empty());
        assert_eq!(
            errors(&config(&["20m", "4h59m"])),
            ["emails[1].after: each email must wait at least 5 hours after the previous one (got 4h59m)"]
        );
    }

    #[test]
    fn one_to_four_emails() {
        assert_eq!(errors(&config(&[])), ["emails: at least 1 email"]);
        assert!(errors(&config(&["20m", "5h", "5h", "5h"])).is_empty());
        assert_eq!(errors(&config(&["20m", "5h", "5h", "5h", "5h"])), ["emails: at most 4 emails (got 5)"]);
    }

    #[test]
    fn exactly_72_hours_is_allowed_one_minute_more_is_disabled() {
        let at_72 = config(&["20m", "71h40m"]);
        assert!(check(&at_72, false, false).expect("valid").is_empty());
        assert!(enabled(&at_72, 1));
        let past = config(&["20m", "71h41m"]);
        let notes = check(&past, false, false).expect("still valid");
        assert_eq!(notes.len(), 1);
        assert_eq!(notes[0].path, "emails[1]");
        assert_eq!(notes[0].message, "disabled: it would go out at 3d1m, past the 72-hour window");
        assert!(!enabled(&past, 1));
        assert_eq!(next_enabled(&past, 0), None);
        assert_eq!(summary(&past), "1 email: at 20m after capture; 1 disabled (past 72 h)");
    }

    #[test]
    fn price_must_be_strictly_over_the_minimum() {
        assert!(!eligible(Some(2000), 2000));
        assert!(eligible(Some(2001), 2000));
        assert!(!eligible(None, 2000));
        assert!(eligible(Some(1), 0));
    }

    #[test]
    fn coupons_need_product_and_plan_and_a_registered_coupon() {
        let c: Config = funnel_sdk::parse(
            r#"{"emails": [{"after": "20m", "subject": "s", "html": "<p>h</p>"},
                           {"after": "5h", "subject": "s", "html": "<p>h</p>", "coupon": true}]}"#,
        )
        .expect("parses");
        assert!(check(&c, true, true).is_ok());
        let no_scope = check(&c, false, false).unwrap_err();
        assert_eq!(
            (no_scope[0].path.as_str(), no_scope[0].message.as_str()),
            ("emails[1].coupon", "coupons need a binding with a product and a plan")
        );
        let no_coupon = check(&c, true, false).unwrap_err();
        assert!(no_coupon[0].message.contains("POST /v1/coupons"), "{:?}", no_coupon[0]);
        let sent = email(&c, 1);
        assert!(sent.html.ends_with(COUPON_LINE_HTML), "the coupon line is added: {}", sent.html);
        assert_eq!(email(&c, 0).html, "<p>h</p>");
    }

    #[test]
    fn coupon_code_without_coupon_is_an_error_at_the_field() {
        let c: Config =
            funnel_sdk::parse(r#"{"emails": [{"after": "20m", "subject": "s", "html": "<p>{{coupon_code}}</p>"}]}"#)
                .expect("parses");
        assert_eq!(
            errors(&c),
            ["emails[0].html: uses {{coupon_code}} but this email has no coupon: set \"coupon\": true"]
        );
    }

    #[test]
    fn unknown_fields_and_bad_durations_name_their_path() {
        let err = funnel_sdk::parse::<Config>(
            r#"{"emails": [{"after": "20m", "subject": "s", "html": "h", "cupon": true}]}"#,
        )
        .unwrap_err();
        assert_eq!(err[0].path, "emails[0].cupon");
        assert!(err[0].message.contains("cupon"), "{}", err[0].message);
        let err =
            funnel_sdk::parse::<Config>(r#"{"emails": [{"after": "soon", "subject": "s", "html": "h"}]}"#).unwrap_err();
        assert_eq!(err[0].path, "emails[0].after");
    }

    #[test]
    fn tags_round_trip() {
        assert_eq!(tag(0), "email-1");
        assert_eq!(index_of_tag("email-4"), Some(3));
        assert_eq!(index_of_tag("email-0"), None);
        assert_eq!(index_of_tag("other"), None);
    }
}
