//! The domain: the types every module speaks — the store, the dispatcher, delivery, the API and
//! the console — so that a value is checked once, where it enters, and nowhere else.
//!
//! ## Layout
//! - [`event`]: platform events (`checkout.updated`, `order.paid`, …), the checkout they are
//!   about, and the events a lead's plugin is told about.
//! - [`email`]: [`EmailAddress`], a bare address normalized once where it enters.
//! - [`words`]: the enums the store keeps as words (a message's channel, kind and status, a
//!   lead's status, an event's status, a run's status), parsed back on read.
//! - [`text`]: which control characters a field may hold.
//! - [`timeline`]: what a lead's timeline says happened, a typed note per kind, stored as JSON.
//! - [`window`]: send windows (quiet hours) and IANA time zones.
//! - [`coupon`]: unique coupon codes: pool codes and the patterns that generate them.
//! - [`scope`]: [`Scope`], which checkouts a binding serves (a plan never without its product).
//! - [`split`]: which variant of an A/B split a lead gets (a stable hash of lead and step).

pub mod coupon;
pub(crate) mod email;
pub(crate) mod event;
pub mod scope;
pub mod split;
pub mod text;
pub mod timeline;
pub mod window;
pub(crate) mod words;

pub use email::EmailAddress;
pub use event::{Checkout, LeadEvent, PlatformEvent, PlatformEventType, Price};
pub use scope::Scope;
pub use timeline::{TimelineKind, TimelineNote};
pub use window::{SendWindow, TimeZone};
pub use words::{
    Channel, DeliveryStatus, EventStatus, LeadStatus, MessageKind, MessageStatus, PluginStatus, RunStatus,
};
