//! The capabilities the host gives a plugin, for the lead being handled and nothing else.
//!
//! Every call only *records* an effect: the host commits all of them together with the new
//! state when `handle` returns `Ok`, and discards them all when it returns `Err` or traps.
//! A capability the plugin did not declare in [`crate::Plugin::info`] is refused with
//! [`HostError::NotDeclared`].

use crate::bindings::funnel::plugin::host as raw;
use crate::{Coupon, Duration, HostError, LogLevel, MessageKind, SentMessage};

/// An email to queue for the lead. Subject and bodies are templates the host renders:
/// `{{name}}`, `{{first_name}}`, `{{product}}`, `{{checkout_url}}`, `{{coupon_code}}`,
/// `{{unsubscribe_url}}`.
#[derive(Clone, Debug)]
pub struct Email {
    /// Subject template.
    pub subject: String,
    /// HTML body template.
    pub html: String,
    /// Plain-text body template; the host derives one from `html` when absent.
    pub text: Option<String>,
    /// Names the message in stats and the timeline, e.g. `email-1`.
    pub tag: String,
    /// `Recovery` (dropped if the lead bought meanwhile) or `Transactional`.
    pub kind: MessageKind,
}

impl Email {
    /// A `recovery` email with no plain-text template.
    pub fn new(subject: &str, html: &str, tag: &str) -> Self {
        Email {
            subject: subject.to_string(),
            html: html.to_string(),
            text: None,
            tag: tag.to_string(),
            kind: MessageKind::Recovery,
        }
    }
}

/// Queue an email to the lead; returns the message's id.
pub fn send_email(email: &Email) -> Result<String, HostError> {
    raw::send_email(&email.subject, &email.html, email.text.as_deref(), &email.tag, email.kind)
}

/// Queue an SMS to the lead's phone; returns the message's id.
pub fn send_sms(body: &str, tag: &str, kind: MessageKind) -> Result<String, HostError> {
    raw::send_sms(body, tag, kind)
}

/// Ask for a `timer` event after `after`; returns the timer's id.
pub fn schedule(after: Duration, tag: &str) -> Result<String, HostError> {
    raw::schedule(after.as_millis(), tag)
}

/// Cancel one pending timer of this lead.
pub fn cancel(timer_id: &str) {
    raw::cancel(timer_id)
}

/// Cancel every pending timer of this lead.
pub fn cancel_all() {
    raw::cancel_all()
}

/// Put the lead's contact on a list.
pub fn add_to_list(name: &str) -> Result<(), HostError> {
    raw::add_to_list(name)
}

/// Take the lead's contact off a list.
pub fn remove_from_list(name: &str) -> Result<(), HostError> {
    raw::remove_from_list(name)
}

/// The lists the lead's contact is on now.
pub fn lists() -> Vec<String> {
    raw::lists()
}

/// The binding's coupon, if it names a product and plan and one is registered.
pub fn coupon() -> Option<Coupon> {
    raw::coupon()
}

/// The messages sent to this lead so far, oldest first.
pub fn messages() -> Vec<SentMessage> {
    raw::messages()
}

/// Write a line to the lead's timeline log.
pub fn log(level: LogLevel, text: &str) {
    raw::log(level, text)
}
