//! The event types a webhook may subscribe to, stored and sent by their dotted names.

use std::fmt;
use std::str::FromStr;

/// What an endpoint can hear about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WebhookEvent {
    /// A lead bought after a recovery message was delivered (the stats' "recovered").
    LeadRecovered,
    /// A lead bought (recovered or not): its first `order.paid`.
    LeadPurchased,
    /// A message was handed to the mail server or SMS gateway.
    MessageSent,
    /// A message was refused for good (the address is now suppressed).
    MessageBounced,
    /// A person unsubscribed (from a link in a message).
    ContactUnsubscribed,
    /// A coupon code was given to a lead.
    CouponAssigned,
}

impl WebhookEvent {
    /// Every event type, in the order the API documents them.
    pub const ALL: [WebhookEvent; 6] = [
        WebhookEvent::LeadRecovered,
        WebhookEvent::LeadPurchased,
        WebhookEvent::MessageSent,
        WebhookEvent::MessageBounced,
        WebhookEvent::ContactUnsubscribed,
        WebhookEvent::CouponAssigned,
    ];

    /// The dotted name (`lead.recovered`).
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookEvent::LeadRecovered => "lead.recovered",
            WebhookEvent::LeadPurchased => "lead.purchased",
            WebhookEvent::MessageSent => "message.sent",
            WebhookEvent::MessageBounced => "message.bounced",
            WebhookEvent::ContactUnsubscribed => "contact.unsubscribed",
            WebhookEvent::CouponAssigned => "coupon.assigned",
        }
    }
}

impl fmt::Display for WebhookEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An event type name that is not one of [`WebhookEvent::ALL`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown event type {0:?}")]
pub struct UnknownEvent(pub String);

impl FromStr for WebhookEvent {
    type Err = UnknownEvent;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        WebhookEvent::ALL.into_iter().find(|e| e.as_str() == s).ok_or_else(|| UnknownEvent(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::WebhookEvent;

    #[test]
    fn names_round_trip() {
        for e in WebhookEvent::ALL {
            assert_eq!(e.as_str().parse::<WebhookEvent>(), Ok(e));
        }
        assert!("lead.Recovered".parse::<WebhookEvent>().is_err());
    }
}
