//! The domain: the types every module speaks — the store, the dispatcher, delivery, the API and
//! the console — so that a value is checked once, where it enters, and nowhere else.
//!
//! ## Layout
//! - [`event`]: platform events (`checkout.updated`, `order.paid`, …), the checkout they are
//!   about, and the events a lead's plugin is told about.
//! - [`email`]: [`EmailAddress`], a bare address normalized once where it enters.
//! - [`message`]: a message's channel, kind and status, and a lead's status, stored as words
//!   and parsed back.
//! - [`text`]: which control characters a field may hold.
//! - [`window`]: send windows (quiet hours) and IANA time zones.
//! - [`coupon`]: unique coupon codes: pool codes and the patterns that generate them.
//! - [`split`]: which variant of an A/B split a lead gets (a stable hash of lead and step).

pub mod coupon;
pub mod email;
pub mod event;
pub mod message;
pub mod split;
pub mod text;
pub mod window;

pub use email::EmailAddress;
pub use event::{Checkout, LeadEvent, PlatformEvent, PlatformEventType, Price};
pub use message::{Channel, LeadStatus, MessageKind, MessageStatus};
pub use window::{SendWindow, TimeZone};
