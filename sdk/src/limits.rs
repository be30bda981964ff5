//! What the host accepts in a message, defined once for both sides of the host/guest line: the
//! host's `send-email` and `send-sms` refuse with these words (`invalid("subject must be one
//! line")`), and a plugin that checks a config against them at binding time says the same thing
//! at the field (`emails[0].subject: must be one line`), so a producer learns it before a lead,
//! not from a failed send twenty minutes after one.

/// A message tag (`email-1`, a flow step id): 1 to this many bytes.
pub const MAX_TAG_BYTES: usize = 100;
/// An email subject: one line of 1 to this many bytes (RFC 5322's line limit).
pub const MAX_SUBJECT_BYTES: usize = 998;
/// An email's HTML or text body, at most this many bytes.
pub const MAX_EMAIL_BODY_BYTES: usize = 512 * 1024;
/// An SMS body, at most this many bytes (ten concatenated segments).
pub const MAX_SMS_BYTES: usize = 1600;

/// What is wrong with a subject, if anything.
///
/// ```
/// use funnel_sdk::limits::subject_problem;
/// assert_eq!(subject_problem("Oi"), None);
/// assert_eq!(subject_problem("a\nb").as_deref(), Some("must be one line"));
/// assert_eq!(subject_problem(&"x".repeat(999)).as_deref(), Some("must be at most 998 bytes (got 999)"));
/// ```
pub fn subject_problem(subject: &str) -> Option<String> {
    if subject.trim().is_empty() {
        Some("must not be empty".into())
    } else if subject.contains(['\r', '\n']) {
        Some("must be one line".into())
    } else if subject.contains(char::is_control) {
        Some(CONTROL.into())
    } else {
        too_long(subject, MAX_SUBJECT_BYTES)
    }
}

/// What is wrong with an email's HTML body, if anything.
///
/// ```
/// assert_eq!(funnel_sdk::limits::html_problem(" ").as_deref(), Some("must not be empty"));
/// ```
pub fn html_problem(html: &str) -> Option<String> {
    if html.trim().is_empty() { Some("must not be empty".into()) } else { body_problem(html, MAX_EMAIL_BODY_BYTES) }
}

/// What is wrong with an email's text body, if anything (it may be empty: the host then
/// derives one from the HTML).
///
/// ```
/// assert_eq!(funnel_sdk::limits::text_problem(""), None);
/// ```
pub fn text_problem(text: &str) -> Option<String> {
    body_problem(text, MAX_EMAIL_BODY_BYTES)
}

/// What is wrong with an SMS body, if anything.
///
/// ```
/// assert_eq!(funnel_sdk::limits::sms_problem(&"x".repeat(1601)).as_deref(), Some("must be at most 1600 bytes (got 1601)"));
/// ```
pub fn sms_problem(body: &str) -> Option<String> {
    if body.trim().is_empty() { Some("must not be empty".into()) } else { body_problem(body, MAX_SMS_BYTES) }
}

/// What is wrong with a message tag, if anything.
///
/// ```
/// assert_eq!(funnel_sdk::limits::tag_problem("").as_deref(), Some("must be 1 to 100 bytes (got 0)"));
/// ```
pub fn tag_problem(tag: &str) -> Option<String> {
    if tag.contains(char::is_control) {
        return Some(CONTROL.into());
    }
    (tag.is_empty() || tag.len() > MAX_TAG_BYTES)
        .then(|| format!("must be 1 to {MAX_TAG_BYTES} bytes (got {})", tag.len()))
}

/// Control characters have no place in a message (and a NUL cannot even be stored).
const CONTROL: &str = "must not contain control characters";

/// A body may hold tab and line breaks, no other control character, and is bounded.
///
/// ```
/// assert_eq!(funnel_sdk::limits::sms_problem("a\u{0}b").as_deref(), Some("must not contain control characters other than tab and line breaks"));
/// assert_eq!(funnel_sdk::limits::sms_problem("a\r\n\tb"), None);
/// ```
fn body_problem(text: &str, max: usize) -> Option<String> {
    let forbidden = |c: char| (c.is_ascii_control() && !matches!(c, '\t' | '\n' | '\r')) || c == '\u{7f}';
    if text.contains(forbidden) {
        return Some(format!("{CONTROL} other than tab and line breaks"));
    }
    too_long(text, max)
}

fn too_long(text: &str, max: usize) -> Option<String> {
    (text.len() > max).then(|| format!("must be at most {max} bytes (got {})", text.len()))
}
