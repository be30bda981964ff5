//! Outgoing webhooks: a producer's endpoints hear about what happened to its leads
//! (`lead.recovered`, `message.sent`, …), signed with the `Funnel-Signature` scheme the
//! platform uses to sign to us, from an outbox written in the same transaction as the change
//! it reports ([`crate::store::webhooks`]), retried with backoff for a day.
//!
//! ## Layout
//! - [`event`]: the event types an endpoint may subscribe to, parsed once.
//! - [`target`]: an endpoint's URL, checked when it is registered and again, address by
//!   address, when it is called (the SSRF guard, and a resolver that connects only to the
//!   addresses it checked, so a DNS answer that changes in between cannot slip through).
//! - [`sender`]: the worker that claims due deliveries under a lease and POSTs them, a bounded
//!   number at a time and at most one per endpoint, each under deadlines.

pub(crate) mod event;
pub(crate) mod sender;
pub mod target;

pub use event::WebhookEvent;
pub use sender::{SenderSettings, WebhookSender};
pub use target::TargetPolicy;
