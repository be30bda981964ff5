//! The capabilities the host gives a plugin, for the lead being handled and nothing else.
//!
//! Every call only *records* an effect: the host commits all of them together with the new
//! state when `handle` returns `Ok`, and discards them all when it returns `Err` or traps.
//! A capability the plugin did not declare in [`crate::Plugin::info`] is refused with
//! [`HostError::NotDeclared`].

use crate::bindings::funnel::plugin::host as raw;
use crate::{Coupon, Duration, HostError, LogLevel, MessageKind, SentMessage, WeightedVariant};

/// An email to queue for the lead. Subject and bodies are templates the host renders:
/// `{{name}}`, `{{first_name}}`, `{{product}}`, `{{checkout_url}}`, `{{coupon_code}}`,
/// `{{unsubscribe_url}}`.
///
/// ```no_run
/// use funnel_sdk::{host::{self, Email}, MessageKind};
/// # fn handle() -> Result<(), funnel_sdk::HostError> {
/// let mut thanks = Email::new("Obrigado, {{first_name}}!", "<p>Seu acesso chega em instantes.</p>", "thanks");
/// thanks.kind = MessageKind::Transactional; // still goes after the purchase
/// host::send_email(&thanks)?;
/// # Ok(()) }
/// ```
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
    ///
    /// ```
    /// let email = funnel_sdk::host::Email::new("Volta, {{first_name}}", "<p>{{checkout_url}}</p>", "email-1");
    /// assert_eq!(email.kind, funnel_sdk::MessageKind::Recovery);
    /// assert!(email.text.is_none());
    /// ```
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
///
/// ```no_run
/// # fn handle() -> Result<(), funnel_sdk::HostError> {
/// let email = funnel_sdk::host::Email::new("{{first_name}}, seu pedido", "<p>{{checkout_url}}</p>", "email-1");
/// match funnel_sdk::host::send_email(&email) {
///     Ok(id) => funnel_sdk::host::log(funnel_sdk::LogLevel::Info, &format!("queued {id}")),
///     Err(funnel_sdk::HostError::Suppressed) => {} // unsubscribed: nothing to do
///     Err(e) => return Err(e),
/// }
/// # Ok(()) }
/// ```
pub fn send_email(email: &Email) -> Result<String, HostError> {
    raw::send_email(&email.subject, &email.html, email.text.as_deref(), &email.tag, email.kind)
}

/// Queue an SMS to the lead's phone; returns the message's id.
///
/// ```no_run
/// # fn handle() -> Result<(), funnel_sdk::HostError> {
/// use funnel_sdk::{host, HostError, MessageKind};
/// match host::send_sms("{{first_name}}, seu carrinho: {{checkout_url}}", "sms-1", MessageKind::Recovery) {
///     Ok(_) | Err(HostError::NoRecipient) => {} // no phone: skip the SMS
///     Err(e) => return Err(e),
/// }
/// # Ok(()) }
/// ```
pub fn send_sms(body: &str, tag: &str, kind: MessageKind) -> Result<String, HostError> {
    raw::send_sms(body, tag, kind)
}

/// Ask for a `timer` event after `after`; returns the timer's id.
///
/// ```no_run
/// # fn handle() -> Result<(), funnel_sdk::HostError> {
/// use funnel_sdk::{host, Duration};
/// host::schedule(Duration::from_mins(20), "email-1")?; // `handle` gets Event::Timer tagged "email-1"
/// # Ok(()) }
/// ```
pub fn schedule(after: Duration, tag: &str) -> Result<String, HostError> {
    raw::schedule(after.as_millis(), tag)
}

/// Cancel one pending timer of this lead.
///
/// ```no_run
/// # fn handle() -> Result<(), funnel_sdk::HostError> {
/// let reminder = funnel_sdk::host::schedule(funnel_sdk::Duration::from_hours(5), "reminder")?;
/// // … later, e.g. when the lead clicked:
/// funnel_sdk::host::cancel(&reminder);
/// # Ok(()) }
/// ```
pub fn cancel(timer_id: &str) {
    raw::cancel(timer_id)
}

/// Cancel every pending timer of this lead.
///
/// ```no_run
/// # fn handle() -> Result<(), funnel_sdk::HostError> {
/// // The buyer changed the cart: start the plan over.
/// funnel_sdk::host::cancel_all();
/// funnel_sdk::host::schedule(funnel_sdk::Duration::from_mins(20), "email-1")?;
/// # Ok(()) }
/// ```
pub fn cancel_all() {
    raw::cancel_all()
}

/// Put the lead's contact on a list.
///
/// ```no_run
/// # fn handle() -> Result<(), funnel_sdk::HostError> {
/// funnel_sdk::host::add_to_list("inactive")?;
/// assert!(funnel_sdk::host::lists().contains(&"inactive".to_string()));
/// # Ok(()) }
/// ```
pub fn add_to_list(name: &str) -> Result<(), HostError> {
    raw::add_to_list(name)
}

/// Take the lead's contact off a list.
///
/// ```no_run
/// # fn handle() -> Result<(), funnel_sdk::HostError> {
/// funnel_sdk::host::remove_from_list("abandoned")?; // not being on it is fine
/// # Ok(()) }
/// ```
pub fn remove_from_list(name: &str) -> Result<(), HostError> {
    raw::remove_from_list(name)
}

/// The lists the lead's contact is on now.
///
/// ```no_run
/// # fn handle() -> Result<(), funnel_sdk::HostError> {
/// if !funnel_sdk::host::lists().iter().any(|l| l == "customers") {
///     funnel_sdk::host::add_to_list("prospects")?;
/// }
/// # Ok(()) }
/// ```
pub fn lists() -> Vec<String> {
    raw::lists()
}

/// The binding's coupon, if it names a product and plan and one is registered.
///
/// ```no_run
/// # fn handle() -> Result<(), funnel_sdk::HostError> {
/// let subject = match funnel_sdk::host::coupon() {
///     Some(c) => format!("{}% off with {}", c.discount_percent, c.code),
///     None => "Your cart is waiting".to_string(),
/// };
/// # let _ = subject;
/// # Ok(()) }
/// ```
pub fn coupon() -> Option<Coupon> {
    raw::coupon()
}

/// Since 0.2.0. A coupon code for this lead alone, from the pool or pattern the producer
/// registered for the binding's product and plan; the same code on every call, in every event.
/// The emails and SMS of this `handle` call render `{{coupon_code}}` as it. Needs the
/// [`Capability::Coupons`](crate::Capability::Coupons) capability.
///
/// - [`HostError::LimitReached`]: the pool is used up (the message says which): fall back to
///   [`coupon`] or send without one.
/// - [`HostError::Invalid`]: the scope has no pool or pattern: [`coupon`] is the coupon.
///
/// ```no_run
/// # fn handle() -> Result<(), funnel_sdk::HostError> {
/// use funnel_sdk::{host, HostError, LogLevel};
/// let code = match host::unique_coupon() {
///     Ok(mine) => Some(mine.code),
///     Err(HostError::LimitReached(why)) => {
///         host::log(LogLevel::Warn, &format!("no unique coupon: {why}"));
///         host::coupon().map(|c| c.code)
///     }
///     Err(_) => host::coupon().map(|c| c.code), // no pool or pattern: the static code
/// };
/// # let _ = code;
/// # Ok(()) }
/// ```
pub fn unique_coupon() -> Result<Coupon, HostError> {
    raw::unique_coupon()
}

/// Since 0.2.0. The lead's variant at A/B split `step`: one of `variants` (name, weight),
/// chosen by the host from a stable hash of the lead's id and `step` in proportion to the
/// weights, the same on every call, and recorded (the lead's timeline, `GET /v1/stats` by
/// variant). [`HostError::Invalid`] for an unusable list (empty, more than 32, duplicate or
/// empty names, a weight over 10,000, weights adding up to 0).
///
/// ```no_run
/// # fn handle() -> Result<(), funnel_sdk::HostError> {
/// use funnel_sdk::host;
/// let subject = match host::choose_variant("subject-test", &[("short", 50), ("long", 50)])?.as_str() {
///     "short" => "Volte!",
///     _ => "Seu carrinho ainda está aqui, com tudo o que você escolheu",
/// };
/// # let _ = subject;
/// # Ok(()) }
/// ```
pub fn choose_variant(step: &str, variants: &[(&str, u32)]) -> Result<String, HostError> {
    let variants: Vec<WeightedVariant> =
        variants.iter().map(|(name, weight)| WeightedVariant { name: name.to_string(), weight: *weight }).collect();
    raw::choose_variant(step, &variants)
}

/// The messages sent to this lead so far, oldest first.
///
/// ```no_run
/// # fn handle() -> Result<(), funnel_sdk::HostError> {
/// use funnel_sdk::{host, MessageStatus};
/// let clicked_first = host::messages().first().is_some_and(|m| m.clicked && m.status == MessageStatus::Sent);
/// # let _ = clicked_first;
/// # Ok(()) }
/// ```
pub fn messages() -> Vec<SentMessage> {
    raw::messages()
}

/// Write a line to the lead's timeline log.
///
/// ```no_run
/// funnel_sdk::host::log(funnel_sdk::LogLevel::Info, "cart under R$ 20,00: no email");
/// ```
pub fn log(level: LogLevel, text: &str) {
    raw::log(level, text)
}

/// When a recovery message sent at `at_ms` (Unix ms, like [`crate::Call::now_ms`]) would really
/// go out: the host holds recovery messages due outside the binding's send window (in the
/// lead's own time zone when the platform sent one) until it opens. `at_ms` itself when there
/// is no window or it is open then. Since contract 0.2.0.
///
/// ```no_run
/// # fn handle(now_ms: i64) {
/// let goes_at = funnel_sdk::host::send_window_opens(now_ms);
/// if goes_at > now_ms {
///     funnel_sdk::host::log(funnel_sdk::LogLevel::Info, "held until the send window opens");
/// }
/// # }
/// ```
pub fn send_window_opens(at_ms: i64) -> i64 {
    raw::send_window_opens(at_ms)
}
