//! Platform events as the API receives them, and the events a lead's plugin is told about.

use serde::{Deserialize, Serialize};

use super::EmailAddress;

/// What the platform says happened (`type` in the HTTP body).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum PlatformEventType {
    #[serde(rename = "checkout.updated")]
    CheckoutUpdated,
    #[serde(rename = "order.paid")]
    OrderPaid,
    #[serde(rename = "order.refunded")]
    OrderRefunded,
}

/// A text field's schema pattern: one line, no control characters (`text::single_line_problem`).
/// Lengths in the schemas are the handlers' limits, counted in UTF-8 bytes.
pub(crate) use super::text::SINGLE_LINE;

/// A price in minor units.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Price {
    /// 0 to 10^11 (a billion in major units).
    #[schemars(range(min = 0, max = 100_000_000_000_i64))]
    pub amount_cents: i64,
    /// ISO 4217, upper case.
    #[schemars(regex(pattern = r"^[A-Z]{3}$"))]
    pub currency: String,
}

/// The checkout an event is about, as the platform sent it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Checkout {
    #[schemars(length(min = 1, max = 200), regex(pattern = SINGLE_LINE))]
    pub id: String,
    /// Checked and normalized as it is read (see [`EmailAddress`]).
    #[schemars(with = "Option<String>", extend("format" = "email", "maxLength" = 254))]
    pub email: Option<EmailAddress>,
    #[schemars(length(max = 200), regex(pattern = SINGLE_LINE))]
    pub name: Option<String>,
    #[schemars(length(max = 32), regex(pattern = SINGLE_LINE))]
    pub phone: Option<String>,
    #[schemars(length(max = 200), regex(pattern = SINGLE_LINE))]
    pub product_id: Option<String>,
    #[schemars(length(max = 200), regex(pattern = SINGLE_LINE))]
    pub plan_id: Option<String>,
    pub price: Option<Price>,
    /// An http(s) URL.
    #[schemars(length(max = 2048), regex(pattern = r"^https?://[^\u0000-\u001f\u007f-\u009f]*$"))]
    pub url: Option<String>,
    /// The buyer's IANA time zone: their send window is in it (it wins over the binding's).
    #[schemars(with = "Option<String>")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<super::TimeZone>,
}

/// A validated platform event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlatformEvent {
    pub id: String,
    pub kind: PlatformEventType,
    pub occurred_at_ms: i64,
    pub producer_id: String,
    pub checkout: Checkout,
}

/// What a lead's plugin is told, stored as the event row's payload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LeadEvent {
    Captured,
    Updated,
    Purchased { price: Option<Price> },
    Refunded,
    Clicked { message_id: String },
    Opened { message_id: String },
    Unsubscribed,
    Bounced { message_id: String },
    Timer { timer_id: String, tag: String, due_at: i64 },
}

impl LeadEvent {
    /// Short name for the timeline and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            LeadEvent::Captured => "captured",
            LeadEvent::Updated => "updated",
            LeadEvent::Purchased { .. } => "purchased",
            LeadEvent::Refunded => "refunded",
            LeadEvent::Clicked { .. } => "clicked",
            LeadEvent::Opened { .. } => "opened",
            LeadEvent::Unsubscribed => "unsubscribed",
            LeadEvent::Bounced { .. } => "bounced",
            LeadEvent::Timer { .. } => "timer",
        }
    }
}
