//! The binding's config (the public contract producers write), its validation with a path on
//! every problem, and the one-line summary shown to the producer.

use funnel_sdk::host::Email;
use funnel_sdk::{BindingContext, ConfigNote, Duration, MessageKind, note};
use serde::Deserialize;

use crate::policy::{self, DEFAULT_MIN_PRICE_CENTS, FIRST_MIN, GAP_MIN, MAX_EMAILS, WINDOW};

/// The binding's config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Only carts priced strictly over this many cents are eligible.
    #[serde(default = "default_min_price")]
    pub min_price_cents: i64,
    /// 1 to 4 emails, in sending order.
    pub emails: Vec<EmailConfig>,
    /// The line added to a coupon email that does not show `{{coupon_code}}` itself, in the
    /// emails' language (e.g. `"Use o cupom {{coupon_code}} ao finalizar."`).
    #[serde(default)]
    pub coupon_line: Option<String>,
}

fn default_min_price() -> i64 {
    DEFAULT_MIN_PRICE_CENTS
}

/// One email of the sequence.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// For the first email, after capture; for the others, after the previous email.
    pub after: Duration,
    /// Subject template.
    pub subject: String,
    /// HTML body template.
    pub html: String,
    /// Plain-text body template; the host derives one from `html` when absent.
    #[serde(default)]
    pub text: Option<String>,
    /// Carry the binding's coupon.
    #[serde(default)]
    pub coupon: bool,
}

impl Config {
    /// When each email goes out, planned, counted from capture (cumulative `after`s).
    pub fn offsets(&self) -> Vec<Duration> {
        let mut at = Duration::default();
        self.emails
            .iter()
            .map(|e| {
                at = at.saturating_add(e.after);
                at
            })
            .collect()
    }

    /// Whether email `index` exists and its planned time is within the window. Times are
    /// cumulative, so once one is disabled every later one is too.
    pub fn enabled(&self, index: usize) -> bool {
        self.offsets().get(index).is_some_and(|at| *at <= WINDOW)
    }
}

impl EmailConfig {
    /// This email at position `index`, ready for `send-email`: tagged, `recovery`, an empty text dropped
    /// (the host derives one from the html), and the producer's coupon line added to each body
    /// that does not show the coupon yet when the email carries it (the code alone without a line).
    pub fn as_sent(&self, index: usize, coupon_line: Option<&str>) -> Email {
        let mut html = self.html.clone();
        let mut text = self.text.clone().filter(|t| !t.trim().is_empty());
        if self.coupon {
            let line = coupon_line.unwrap_or(funnel_sdk::coupon::DEFAULT_LINE);
            funnel_sdk::coupon::add_line(&mut html, text.as_mut(), line);
        }
        Email { subject: self.subject.clone(), html, text, tag: policy::tag(index), kind: MessageKind::Recovery }
    }
}

/// Validate a parsed config for a binding: `Ok` with remarks (the disabled emails), or `Err`
/// with every problem found, each naming its path.
pub fn check(config: &Config, binding: &BindingContext) -> Result<Vec<ConfigNote>, Vec<ConfigNote>> {
    let mut errors = Vec::new();
    let n = config.emails.len();
    if n == 0 {
        errors.push(note("emails", "at least 1 email"));
    }
    if n > MAX_EMAILS {
        errors.push(note("emails", format!("at most {MAX_EMAILS} emails (got {n})")));
    }
    if config.min_price_cents < 0 {
        errors.push(note("min_price_cents", format!("must be >= 0 (got {})", config.min_price_cents)));
    }
    if let Some(problem) = config.coupon_line.as_deref().and_then(funnel_sdk::coupon::line_problem) {
        errors.push(note("coupon_line", problem));
    }
    let coupon_problem = funnel_sdk::coupon::binding_problem(binding);
    for (i, e) in config.emails.iter().enumerate() {
        check_email(i, e, config.coupon_line.as_deref(), coupon_problem, &mut errors);
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let disabled = config.offsets().into_iter().enumerate().filter(|(_, at)| *at > WINDOW).map(|(i, at)| {
        note(
            format!("emails[{i}]"),
            format!("disabled: it would go out at {}, past the 72-hour window", policy::hours(at)),
        )
    });
    let code_alone = config
        .emails
        .iter()
        .enumerate()
        .filter(|(_, e)| {
            e.coupon && config.coupon_line.is_none() && funnel_sdk::coupon::needs_line(&e.html, e.text.as_deref())
        })
        .map(|(i, _)| note(format!("emails[{i}].coupon"), funnel_sdk::coupon::DEFAULT_LINE_NOTE));
    Ok(disabled.chain(code_alone).collect())
}

fn check_email(
    i: usize,
    e: &EmailConfig,
    coupon_line: Option<&str>,
    coupon_problem: Option<&str>,
    errors: &mut Vec<ConfigNote>,
) {
    let path = |field: &str| format!("emails[{i}].{field}");
    if i == 0 && e.after < FIRST_MIN {
        errors.push(note(path("after"), format!("the first email must wait at least 20 minutes (got {})", e.after)));
    }
    if i > 0 && e.after < GAP_MIN {
        errors.push(note(
            path("after"),
            format!("each email must wait at least 5 hours after the previous one (got {})", e.after),
        ));
    }
    // The host's own `send-email` limits, in its words, on the email as sent (coupon line
    // included): a producer learns at config time, not from a failed send after a lead.
    let sent = e.as_sent(i, coupon_line);
    let problems = [
        ("subject", funnel_sdk::limits::subject_problem(&sent.subject)),
        ("html", funnel_sdk::limits::html_problem(&sent.html)),
        ("text", sent.text.as_deref().and_then(funnel_sdk::limits::text_problem)),
    ];
    for (field, problem) in problems {
        if let Some(problem) = problem {
            errors.push(note(path(field), problem));
        }
    }
    if e.coupon {
        if let Some(problem) = coupon_problem {
            errors.push(note(path("coupon"), problem));
        }
    } else {
        // Without `coupon` the host would render `{{coupon_code}}` empty (or the binding's
        // coupon the producer did not mean to give away): say so now.
        for (field, template) in [("subject", Some(&e.subject)), ("html", Some(&e.html)), ("text", e.text.as_ref())] {
            if template.is_some_and(|t| policy::uses_coupon(t)) {
                errors
                    .push(note(path(field), "uses {{coupon_code}} but this email has no coupon: set \"coupon\": true"));
            }
        }
    }
}

/// One line for the producer, e.g. `3 emails: at 20m, 5h20m (coupon), 10h20m after capture;
/// 1 disabled (past 72h)`.
pub fn summary(config: &Config) -> String {
    let offsets = config.offsets();
    let enabled: Vec<String> = offsets
        .iter()
        .zip(&config.emails)
        .filter(|(at, _)| **at <= WINDOW)
        .map(|(at, e)| if e.coupon { format!("{} (coupon)", policy::hours(*at)) } else { policy::hours(*at) })
        .collect();
    let disabled = offsets.len() - enabled.len();
    let mut line = if enabled.is_empty() {
        "no email will go out".to_string()
    } else {
        format!(
            "{} email{}: at {} after capture",
            enabled.len(),
            if enabled.len() == 1 { "" } else { "s" },
            enabled.join(", ")
        )
    };
    if disabled > 0 {
        line.push_str(&format!("; {disabled} disabled (past 72h)"));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use funnel_sdk::{Coupon, Scope};
    use serde_json::{Value, json};

    fn parse(config: Value) -> Config {
        funnel_sdk::parse(&config.to_string()).expect("parses")
    }

    fn config(afters: &[&str]) -> Config {
        let emails: Vec<Value> =
            afters.iter().map(|a| json!({"after": a, "subject": "s", "html": "<p>h</p>"})).collect();
        parse(json!({ "emails": emails }))
    }

    /// A binding naming a product and a plan with a registered coupon.
    fn full_binding() -> BindingContext {
        binding(Some("p1"), Some("q1"), true)
    }

    fn binding(product: Option<&str>, plan: Option<&str>, coupon: bool) -> BindingContext {
        BindingContext {
            scope: Scope { product_id: product.map(str::to_string), plan_id: plan.map(str::to_string) },
            coupon: coupon.then(|| Coupon { code: "VOLTA10".into(), discount_percent: 10 }),
        }
    }

    fn lines(notes: &[ConfigNote]) -> Vec<String> {
        notes.iter().map(|n| format!("{}: {}", n.path, n.message)).collect()
    }

    fn errors_with(c: &Config, b: &BindingContext) -> Vec<String> {
        lines(&check(c, b).err().unwrap_or_default())
    }

    fn errors(c: &Config) -> Vec<String> {
        errors_with(c, &full_binding())
    }

    fn notes(c: &Config) -> Vec<String> {
        lines(&check(c, &full_binding()).expect("valid"))
    }

    #[test]
    fn first_email_waits_at_least_20_minutes() {
        assert!(errors(&config(&["20m"])).is_empty());
        assert!(errors(&config(&["1200s"])).is_empty());
        assert_eq!(
            errors(&config(&["19m59s"])),
            ["emails[0].after: the first email must wait at least 20 minutes (got 19m59s)"]
        );
        assert_eq!(
            errors(&config(&["10m"])),
            ["emails[0].after: the first email must wait at least 20 minutes (got 10m)"]
        );
        assert_eq!(
            errors(&config(&["0s"])),
            ["emails[0].after: the first email must wait at least 20 minutes (got 0s)"]
        );
    }

    #[test]
    fn each_next_email_waits_at_least_5_hours() {
        assert!(errors(&config(&["20m", "5h"])).is_empty());
        assert!(errors(&config(&["20m", "300m", "5h", "5h"])).is_empty());
        assert_eq!(
            errors(&config(&["20m", "4h59m"])),
            ["emails[1].after: each email must wait at least 5 hours after the previous one (got 4h59m)"]
        );
        assert_eq!(
            errors(&config(&["20m", "5h", "5h", "4h59m59s"])),
            ["emails[3].after: each email must wait at least 5 hours after the previous one (got 4h59m59s)"]
        );
        // 20 minutes is the first email's minimum only.
        assert_eq!(errors(&config(&["5h", "20m"])).len(), 1);
    }

    #[test]
    fn one_to_four_emails() {
        assert_eq!(errors(&config(&[])), ["emails: at least 1 email"]);
        assert!(errors(&config(&["20m"])).is_empty());
        assert!(errors(&config(&["20m", "5h", "5h", "5h"])).is_empty());
        assert_eq!(errors(&config(&["20m", "5h", "5h", "5h", "5h"])), ["emails: at most 4 emails (got 5)"]);
    }

    #[test]
    fn exactly_72_hours_is_allowed() {
        let c = config(&["20m", "71h40m"]);
        assert!(notes(&c).is_empty());
        assert_eq!(summary(&c), "2 emails: at 20m, 72h after capture");
        let c = config(&["20m", "5h", "5h", "61h40m"]);
        assert!(notes(&c).is_empty(), "cumulative: 20m + 5h + 5h + 61h40m = 72h");
    }

    #[test]
    fn one_minute_past_72_hours_is_disabled_not_refused() {
        let c = config(&["20m", "71h41m"]);
        assert_eq!(notes(&c), ["emails[1]: disabled: it would go out at 72h1m, past the 72-hour window"]);
        assert_eq!(summary(&c), "1 email: at 20m after capture; 1 disabled (past 72h)");
        let c = config(&["20m", "5h", "5h", "61h41m"]);
        assert_eq!(notes(&c), ["emails[3]: disabled: it would go out at 72h1m, past the 72-hour window"]);
    }

    #[test]
    fn a_disabled_email_disables_the_ones_after_it() {
        // Times are cumulative: email 3 at 72h20m is disabled, so email 4 (77h20m) is too.
        let c = config(&["20m", "5h", "67h", "5h"]);
        assert_eq!(
            notes(&c),
            [
                "emails[2]: disabled: it would go out at 72h20m, past the 72-hour window",
                "emails[3]: disabled: it would go out at 77h20m, past the 72-hour window",
            ]
        );
        assert_eq!(summary(&c), "2 emails: at 20m, 5h20m after capture; 2 disabled (past 72h)");
    }

    #[test]
    fn a_config_whose_every_email_is_disabled_is_accepted_and_says_so() {
        let c = config(&["74h"]);
        assert_eq!(notes(&c), ["emails[0]: disabled: it would go out at 74h, past the 72-hour window"]);
        assert_eq!(summary(&c), "no email will go out; 1 disabled (past 72h)");
    }

    #[test]
    fn the_summary_lists_planned_times_and_coupons() {
        let mut c = config(&["20m", "5h", "5h"]);
        c.emails[1].coupon = true;
        assert_eq!(summary(&c), "3 emails: at 20m, 5h20m (coupon), 10h20m after capture");
    }

    #[test]
    fn min_price_defaults_to_r20_and_cannot_be_negative() {
        assert_eq!(config(&["20m"]).min_price_cents, 2000);
        let c = parse(json!({"min_price_cents": 0, "emails": [{"after": "20m", "subject": "s", "html": "h"}]}));
        assert!(errors(&c).is_empty());
        let c = parse(json!({"min_price_cents": -1, "emails": [{"after": "20m", "subject": "s", "html": "h"}]}));
        assert_eq!(errors(&c), ["min_price_cents: must be >= 0 (got -1)"]);
    }

    #[test]
    fn every_problem_is_reported_not_just_the_first() {
        let c = parse(json!({"min_price_cents": -5, "emails": [
            {"after": "10m", "subject": " ", "html": ""},
            {"after": "1h", "subject": "s", "html": "{{coupon_code}}"},
            {"after": "5h", "subject": "s", "html": "h", "coupon": true},
            {"after": "5h", "subject": "a\nb", "html": "h"},
            {"after": "5h", "subject": "s", "html": "h"},
        ]}));
        assert_eq!(
            errors_with(&c, &binding(None, None, false)),
            [
                "emails: at most 4 emails (got 5)",
                "min_price_cents: must be >= 0 (got -5)",
                "emails[0].after: the first email must wait at least 20 minutes (got 10m)",
                "emails[0].subject: must not be empty",
                "emails[0].html: must not be empty",
                "emails[1].after: each email must wait at least 5 hours after the previous one (got 1h)",
                "emails[1].html: uses {{coupon_code}} but this email has no coupon: set \"coupon\": true",
                "emails[2].coupon: coupons need a binding with a product and a plan",
                "emails[3].subject: must be one line",
            ]
        );
    }

    fn with_coupon_on_third() -> Config {
        let mut c = config(&["20m", "5h", "5h"]);
        c.emails[2].coupon = true;
        c.coupon_line = Some("Use o cupom {{coupon_code}} ao finalizar.".into());
        c
    }

    #[test]
    fn a_coupon_email_that_does_not_show_the_code_gets_the_producers_line_or_the_code_alone() {
        let mut c = with_coupon_on_third();
        c.coupon_line = None;
        assert!(errors(&c).is_empty(), "a config without coupon_line still binds");
        let notes = check(&c, &full_binding()).expect("valid");
        assert!(
            notes.iter().any(|n| n.path == "emails[2].coupon" && n.message == funnel_sdk::coupon::DEFAULT_LINE_NOTE),
            "{notes:?}"
        );
        let sent = c.emails[2].as_sent(2, None);
        assert!(sent.html.ends_with("<p>{{coupon_code}}</p>"), "the code alone, no words of ours: {}", sent.html);
        c.emails[2].html = "<p>Use {{coupon_code}}</p>".into();
        assert!(errors(&c).is_empty(), "the email shows the code itself");
        assert!(check(&c, &full_binding()).expect("valid").is_empty(), "nothing to remark");
        c.coupon_line = Some("Use o cupom.".into());
        assert_eq!(errors(&c), ["coupon_line: must show the code with {{coupon_code}}"]);
    }

    #[test]
    fn coupons_need_a_product_and_a_plan() {
        let c = with_coupon_on_third();
        assert!(errors_with(&c, &full_binding()).is_empty());
        let want = ["emails[2].coupon: coupons need a binding with a product and a plan"];
        assert_eq!(errors_with(&c, &binding(None, None, false)), want, "all products");
        assert_eq!(errors_with(&c, &binding(Some("p1"), None, false)), want, "a product, no plan");
        assert_eq!(errors_with(&c, &binding(None, Some("q1"), false)), want, "a plan, no product");
    }

    #[test]
    fn coupons_need_a_registered_coupon() {
        assert_eq!(
            errors_with(&with_coupon_on_third(), &binding(Some("p1"), Some("q1"), false)),
            ["emails[2].coupon: no coupon is registered for this product and plan: register one with POST \
                 /v1/coupons first"]
        );
    }

    #[test]
    fn no_coupon_no_coupon_rules() {
        // Without `coupon: true` the scope does not matter.
        assert!(errors_with(&config(&["20m", "5h"]), &binding(None, None, false)).is_empty());
    }

    #[test]
    fn coupon_code_without_coupon_is_an_error_at_each_field() {
        let c = parse(json!({"emails": [
            {"after": "20m", "subject": "s", "html": "h"},
            {"after": "5h", "subject": "{{coupon_code}}", "html": "<p>{{ coupon_code }}</p>", "text": "{{coupon_code}}"},
        ]}));
        let rule = "uses {{coupon_code}} but this email has no coupon: set \"coupon\": true";
        assert_eq!(
            errors(&c),
            [
                format!("emails[1].subject: {rule}"),
                format!("emails[1].html: {rule}"),
                format!("emails[1].text: {rule}")
            ]
        );
        let c = parse(json!({"emails": [
            {"after": "20m", "subject": "{{coupon_code}}", "html": "<p>{{coupon_code}}</p>", "coupon": false},
        ]}));
        assert_eq!(errors(&c).len(), 2, "an explicit false is the same as absent");
        let c = parse(json!({"emails": [
            {"after": "20m", "subject": "{{coupon_code}}", "html": "<p>{{coupon_code}}</p>", "coupon": true},
        ]}));
        assert!(errors(&c).is_empty());
    }

    #[test]
    fn sizes_are_checked_as_sent() {
        use funnel_sdk::limits::{MAX_EMAIL_BODY_BYTES, MAX_SUBJECT_BYTES};
        let long = "x".repeat(MAX_SUBJECT_BYTES + 1);
        let c = parse(json!({"emails": [{"after": "20m", "subject": long, "html": "h"}]}));
        assert_eq!(errors(&c), ["emails[0].subject: must be at most 998 bytes (got 999)"]);
        // Fits on its own, but not with the coupon line added.
        let html = "x".repeat(MAX_EMAIL_BODY_BYTES - 10);
        let c = parse(json!({"coupon_line": "Use {{coupon_code}}.",
                             "emails": [{"after": "20m", "subject": "s", "html": html, "coupon": true}]}));
        assert_eq!(errors(&c).len(), 1);
        assert!(errors(&c)[0].starts_with("emails[0].html: must be at most 524288 bytes"), "{:?}", errors(&c));
    }

    #[test]
    fn shape_errors_name_their_path() {
        let err = funnel_sdk::parse::<Config>(
            r#"{"emails": [{"after": "20m", "subject": "s", "html": "h", "cupon": true}]}"#,
        )
        .unwrap_err();
        assert_eq!(err[0].path, "emails[0].cupon");
        assert!(err[0].message.contains("unknown field `cupon`"), "{}", err[0].message);
        let err = funnel_sdk::parse::<Config>(r#"{"emails": [], "min_price": 10}"#).unwrap_err();
        assert_eq!(err[0].path, "min_price");
        let err =
            funnel_sdk::parse::<Config>(r#"{"emails": [{"after": "soon", "subject": "s", "html": "h"}]}"#).unwrap_err();
        assert_eq!(err[0].path, "emails[0].after");
        let err = funnel_sdk::parse::<Config>(r#"{"emails": [{"after": "20m", "html": "h"}]}"#).unwrap_err();
        assert!(err[0].message.contains("missing field `subject`"), "{:?}", err[0]);
        let err = funnel_sdk::parse::<Config>(r#"{"min_price_cents": 2000}"#).unwrap_err();
        assert!(err[0].message.contains("missing field `emails`"), "{:?}", err[0]);
    }

    #[test]
    fn the_readme_example_is_valid() {
        let c: Config = funnel_sdk::parse(include_str!("../../../examples/four-emails/config.json")).expect("parses");
        assert!(notes(&c).is_empty());
        assert_eq!(summary(&c), "3 emails: at 20m, 5h20m (coupon), 29h20m after capture");
    }

    fn email_config(html: &str, text: Option<&str>, coupon: bool) -> EmailConfig {
        EmailConfig {
            after: Duration::from_mins(20),
            subject: "s".into(),
            html: html.into(),
            text: text.map(str::to_string),
            coupon,
        }
    }

    #[test]
    fn the_email_is_a_tagged_recovery_email() {
        let sent = email_config("<p>h</p>", Some("t"), false).as_sent(2, Some(LINE));
        assert_eq!((sent.subject.as_str(), sent.html.as_str(), sent.text.as_deref()), ("s", "<p>h</p>", Some("t")));
        assert_eq!(sent.tag, "email-3");
        assert_eq!(sent.kind, MessageKind::Recovery);
    }

    /// The producer's coupon line, in the emails' language.
    const LINE: &str = "Use o cupom {{coupon_code}} ao finalizar.";
    const LINE_HTML: &str = "<p>Use o cupom {{coupon_code}} ao finalizar.</p>";

    #[test]
    fn a_coupon_email_gets_the_producers_coupon_line_where_it_is_missing() {
        let sent = email_config("<p>h</p>", None, true).as_sent(0, Some(LINE));
        assert_eq!(sent.html, format!("<p>h</p>{LINE_HTML}"));
        assert_eq!(sent.text, None, "no text: the host derives it from the html, line included");

        let sent = email_config("<p>h</p>", Some("t"), true).as_sent(0, Some(LINE));
        assert_eq!(sent.text.as_deref(), Some("t\n\nUse o cupom {{coupon_code}} ao finalizar."));

        let sent = email_config("<p>{{ coupon_code }}</p>", Some("t"), true).as_sent(0, Some(LINE));
        assert_eq!(sent.html, "<p>{{ coupon_code }}</p>", "already used: left alone");
        assert!(sent.text.as_deref().is_some_and(|t| t.ends_with(LINE)), "the text still lacked it");

        let sent = email_config("<p>h</p>", Some("code: {{coupon_code}}"), true).as_sent(0, Some(LINE));
        assert!(sent.html.ends_with(LINE_HTML));
        assert_eq!(sent.text.as_deref(), Some("code: {{coupon_code}}"), "not added twice");

        let sent = email_config("<p>h</p>", None, true).as_sent(0, None);
        assert_eq!(sent.html, "<p>h</p><p>{{coupon_code}}</p>", "no line configured: the code alone, no words of ours");
    }

    #[test]
    fn an_empty_text_is_left_to_the_host() {
        assert_eq!(email_config("<p>h</p>", Some(" "), false).as_sent(0, Some(LINE)).text, None);
        assert_eq!(
            email_config("<p>h</p>", Some(""), true).as_sent(0, Some(LINE)).text,
            None,
            "not a text of only the coupon"
        );
    }
}
