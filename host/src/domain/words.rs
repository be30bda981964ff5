//! The enums the store keeps as words: what a message is ([`Channel`], [`MessageKind`]) and
//! where it is in its life ([`MessageStatus`]), where a lead is ([`LeadStatus`]), where an
//! event is ([`EventStatus`]), whether a lead's run still takes events ([`RunStatus`]) and where
//! an uploaded component is in its check ([`PluginStatus`]), and where a webhook delivery stands
//! ([`DeliveryStatus`]). The store writes `as_str()` and parses the word back on read; a
//! word this build does not know is an error naming the row (see
//! `store::StoreError::UnknownValue`), never a guess.

/// An enum stored as one lowercase word: `as_str` for writing, `parse` for reading back.
macro_rules! stored_words {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $word:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $word)] $variant),+
        }

        impl $name {
            /// The word stored and shown for it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $word),+
                }
            }

            /// The value a stored word names; `None` for a word this build does not know.
            pub fn parse(word: &str) -> Option<Self> {
                match word {
                    $($word => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub(crate) use stored_words;

stored_words! {
    /// How a message reaches the person.
    Channel {
        Email = "email",
        Sms = "sms",
    }
}

stored_words! {
    /// What a message is for: a `recovery` message is dropped at send time when the lead has
    /// bought; a `transactional` one (a thank-you) still goes.
    MessageKind {
        Recovery = "recovery",
        Transactional = "transactional",
    }
}

stored_words! {
    /// Where a message is in its life.
    MessageStatus {
        /// Waiting for delivery (or for its next attempt).
        Queued = "queued",
        /// Claimed by a deliverer, which is sending it now.
        Sending = "sending",
        /// Handed to the email server or SMS gateway.
        Sent = "sent",
        /// Not sent on purpose (the lead bought, or the address is suppressed).
        Dropped = "dropped",
        /// Refused permanently by the receiving server.
        Bounced = "bounced",
        /// Gave up after retries.
        Failed = "failed",
    }
}

stored_words! {
    /// Where a lead is, as "my leads" shows it.
    LeadStatus {
        /// Captured; no recovery message sent yet.
        Open = "open",
        /// A recovery message was sent; not bought yet.
        Recovering = "recovering",
        /// Bought after a recovery message was sent (the sale counts as recovered).
        Recovered = "recovered",
        /// Bought without a recovery message.
        Purchased = "purchased",
        /// The order was refunded.
        Refunded = "refunded",
        /// The person unsubscribed before buying.
        Unsubscribed = "unsubscribed",
        /// Its events were stopped by a plugin limit; an operator looks at it.
        Parked = "parked",
    }
}

stored_words! {
    /// Where a lead's event is.
    EventStatus {
        /// Waiting for (or between tries of) its lead's plugin.
        Pending = "pending",
        /// Handled: its effects are committed.
        Done = "done",
        /// Not for a plugin: the lead had no active run when it arrived (or it changed nothing).
        Skipped = "skipped",
        /// Parked after its retries: the lead needs a person.
        Failed = "failed",
    }
}

stored_words! {
    /// Whether a lead's run (its one binding for life) still takes events.
    RunStatus {
        /// Its plugin is told about the lead's events.
        Active = "active",
        /// The plugin ended it (`done`): later events are skipped and its timers are gone.
        Ended = "ended",
    }
}

stored_words! {
    /// Where an uploaded component is in its check.
    PluginStatus {
        /// Stored, still being compiled and checked in the background.
        Compiling = "compiling",
        /// Checked: it can be bound and serve leads.
        Ready = "ready",
        /// Refused by the check (see the reason); it serves nothing.
        Failed = "failed",
    }
}

stored_words! {
    /// Where an outgoing webhook delivery stands.
    DeliveryStatus {
        /// Waiting for (or between) attempts.
        Pending = "pending",
        /// The receiver answered 2xx.
        Delivered = "delivered",
        /// Given up after its attempts.
        Failed = "failed",
    }
}

impl EventStatus {
    /// How an event arrives: pending for a lead whose run is active, skipped otherwise. The
    /// one place this is decided (set-based timer firing writes the same two words in SQL).
    pub fn arriving(run_active: bool) -> EventStatus {
        if run_active { EventStatus::Pending } else { EventStatus::Skipped }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_word_parses_back_to_its_value_and_nothing_else_parses() {
        for status in [
            MessageStatus::Queued,
            MessageStatus::Sending,
            MessageStatus::Sent,
            MessageStatus::Dropped,
            MessageStatus::Bounced,
            MessageStatus::Failed,
        ] {
            assert_eq!(MessageStatus::parse(status.as_str()), Some(status));
            assert_eq!(serde_json::to_value(status).ok(), Some(serde_json::json!(status.as_str())));
        }
        assert_eq!(Channel::parse("sms"), Some(Channel::Sms));
        assert_eq!(Channel::parse("SMS"), None, "stored words are exact");
        assert_eq!(MessageKind::parse("promo"), None);
        for status in [RunStatus::Active, RunStatus::Ended] {
            assert_eq!(RunStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(RunStatus::parse("paused"), None);
    }
}
