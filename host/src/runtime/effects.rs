//! The effects a plugin records through its capability calls. Nothing here has happened yet:
//! the dispatcher commits them in one transaction with the plugin's new state, or drops them.

use super::wit::MessageKind;

/// An email the plugin queued (templates not rendered yet).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutgoingEmail {
    /// Host-assigned id, returned to the plugin.
    pub id: String,
    pub subject: String,
    pub html: String,
    pub text: Option<String>,
    pub tag: String,
    pub kind: MessageKind,
}

/// An SMS the plugin queued (template not rendered yet).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutgoingSms {
    /// Host-assigned id, returned to the plugin.
    pub id: String,
    pub body: String,
    pub tag: String,
    pub kind: MessageKind,
}

/// One recorded effect, in the order the plugin made it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    Email(OutgoingEmail),
    Sms(OutgoingSms),
    /// A timer to fire `after_ms` after the invocation's `now`.
    Schedule {
        id: String,
        after_ms: u64,
        tag: String,
    },
    /// Cancel one timer (scheduled earlier or in this invocation).
    Cancel {
        id: String,
    },
    /// Cancel every pending timer of the lead.
    CancelAll,
    ListAdd {
        name: String,
    },
    ListRemove {
        name: String,
    },
    /// The lead's variant at a split step (`choose-variant`), recorded once per lead and step.
    Variant {
        step: String,
        variant: String,
    },
}
