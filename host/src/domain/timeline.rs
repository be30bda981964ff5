//! What a lead's timeline says happened: one [`TimelineNote`] variant per kind, with its fields.
//! The store keeps the kind as a word ([`TimelineKind`]) and the fields as JSON, written and
//! read through this one serde definition; [`TimelineNote::from_stored`] also reads the prose
//! details builds before 0.11 wrote for the kinds that were not JSON yet.
//!
//! `detail_text` is the detail as `GET /v1/leads/{id}` and `funnel simulate --verbose` have
//! always shown it (JSON for message entries, a sentence for the others): typing the entries
//! changes nothing a user sees.

use serde::{Deserialize, Serialize};

use super::Channel;
use super::coupon::CouponSource;
use super::window::HoldReason;
use super::words::stored_words;

stored_words! {
    /// What kind of thing a timeline entry records (the `kind` column).
    TimelineKind {
        /// An email was handed to the email server.
        Email = "email",
        /// An SMS was handed to the gateway.
        Sms = "sms",
        /// A message was not sent on purpose (the lead bought, the address is suppressed).
        Dropped = "dropped",
        /// A message waits for the lead's send window or the contact cap.
        Deferred = "deferred",
        /// A message was refused permanently by the receiving server.
        Bounced = "bounced",
        /// A message gave up after its retries.
        SendFailed = "send_failed",
        /// The plugin put the lead's address on a list.
        ListAdd = "list_add",
        /// The plugin took the lead's address off a list.
        ListRemove = "list_remove",
        /// The host refused a call of the plugin (its mistake, said as such).
        Refused = "refused",
        /// A line the plugin logged (or printed).
        Log = "log",
        /// The plugin set a timer.
        TimerSet = "timer_set",
        /// The plugin ended the lead's run.
        RunEnded = "run_ended",
        /// An invocation failed; the event is tried again.
        Retry = "retry",
        /// An invocation failed for the last time; the event is parked.
        Failed = "failed",
        /// The lead was given a unique coupon.
        CouponAssigned = "coupon_assigned",
        /// The lead got a variant at an A/B split step.
        Variant = "variant",
        /// The person unsubscribed.
        Unsubscribed = "unsubscribed",
    }
}

stored_words! {
    /// How bad a plugin's log line is.
    LogLevel {
        Debug = "debug",
        Info = "info",
        Warn = "warn",
        Error = "error",
    }
}

/// A message's entry: what was (or was not) sent. The field order is the JSON's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageNote {
    pub message_id: String,
    pub channel: Channel,
    pub tag: String,
    pub subject: Option<String>,
    /// An SMS's text (an email's body is in the outbox, not the timeline).
    pub body: Option<String>,
    pub coupon: Option<String>,
    /// Why it was dropped, bounced or failed.
    pub reason: Option<String>,
}

/// A held message's entry: until when, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldNote {
    pub message_id: String,
    pub channel: Channel,
    pub tag: String,
    pub reason: HoldReason,
    /// Unix milliseconds.
    pub until: i64,
    /// `until` in the lead's local time, when a send window gives the zone.
    pub until_local: Option<String>,
}

/// One timeline entry's content: a variant per [`TimelineKind`]. Stored as the kind's word and
/// the variant's fields as a JSON object (serde's adjacent tagging: `kind` / `detail`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum TimelineNote {
    Email(MessageNote),
    Sms(MessageNote),
    Dropped(MessageNote),
    Deferred(HoldNote),
    Bounced(MessageNote),
    SendFailed(MessageNote),
    ListAdd { list: String },
    ListRemove { list: String },
    Refused { reason: String },
    Log { level: LogLevel, source: String, text: String },
    TimerSet { tag: String, after_s: u64 },
    RunEnded {},
    Retry { event: String, attempt: i64, retry_in_s: i64, error: String },
    Failed { event: String, attempts: i64, error: String },
    CouponAssigned { code: String, discount_percent: u8, source: CouponSource },
    Variant { step: String, variant: String },
    Unsubscribed { email: String },
}

/// A stored detail that fits neither its kind's JSON nor the prose older builds wrote for it.
#[derive(Debug, thiserror::Error)]
#[error("a {kind} entry's detail {detail:?} is neither its JSON nor its older prose")]
pub struct UnreadableDetail {
    pub kind: TimelineKind,
    pub detail: String,
}

const RUN_ENDED: &str = "the strategy finished with this lead";

impl TimelineNote {
    /// Its kind (the `kind` column's word).
    pub fn kind(&self) -> TimelineKind {
        match self {
            TimelineNote::Email(_) => TimelineKind::Email,
            TimelineNote::Sms(_) => TimelineKind::Sms,
            TimelineNote::Dropped(_) => TimelineKind::Dropped,
            TimelineNote::Deferred(_) => TimelineKind::Deferred,
            TimelineNote::Bounced(_) => TimelineKind::Bounced,
            TimelineNote::SendFailed(_) => TimelineKind::SendFailed,
            TimelineNote::ListAdd { .. } => TimelineKind::ListAdd,
            TimelineNote::ListRemove { .. } => TimelineKind::ListRemove,
            TimelineNote::Refused { .. } => TimelineKind::Refused,
            TimelineNote::Log { .. } => TimelineKind::Log,
            TimelineNote::TimerSet { .. } => TimelineKind::TimerSet,
            TimelineNote::RunEnded {} => TimelineKind::RunEnded,
            TimelineNote::Retry { .. } => TimelineKind::Retry,
            TimelineNote::Failed { .. } => TimelineKind::Failed,
            TimelineNote::CouponAssigned { .. } => TimelineKind::CouponAssigned,
            TimelineNote::Variant { .. } => TimelineKind::Variant,
            TimelineNote::Unsubscribed { .. } => TimelineKind::Unsubscribed,
        }
    }

    /// The `detail` column: the variant's fields as a JSON object.
    pub fn to_stored(&self) -> String {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(mut tagged)) => {
                tagged.remove("detail").map(|d| d.to_string()).unwrap_or_else(|| "{}".into())
            }
            // Every variant serializes to an object: its fields are strings and numbers.
            _ => "{}".into(),
        }
    }

    /// The note a stored `kind` and `detail` hold: the JSON this build writes, or the prose an
    /// older build wrote for the kinds that were not JSON yet.
    pub fn from_stored(kind: TimelineKind, detail: &str) -> Result<TimelineNote, UnreadableDetail> {
        let json = serde_json::from_str::<serde_json::Value>(detail).ok().filter(|d| d.is_object());
        if let Some(detail) = json {
            let tagged = serde_json::json!({ "kind": kind.as_str(), "detail": detail });
            if let Ok(note) = serde_json::from_value(tagged) {
                return Ok(note);
            }
        }
        from_prose(kind, detail).ok_or_else(|| UnreadableDetail { kind, detail: detail.to_string() })
    }

    /// The message a message entry is about (email, SMS, dropped, deferred, bounced, failed).
    pub fn message_id(&self) -> Option<&str> {
        match self {
            TimelineNote::Email(m)
            | TimelineNote::Sms(m)
            | TimelineNote::Dropped(m)
            | TimelineNote::Bounced(m)
            | TimelineNote::SendFailed(m) => Some(&m.message_id),
            TimelineNote::Deferred(h) => Some(&h.message_id),
            _ => None,
        }
    }

    /// The detail as users have always read it: the JSON of a message entry, the sentence of
    /// the others (the API's `detail`, `funnel simulate`'s `detail`).
    pub fn detail_text(&self) -> String {
        match self {
            TimelineNote::Email(_)
            | TimelineNote::Sms(_)
            | TimelineNote::Dropped(_)
            | TimelineNote::Deferred(_)
            | TimelineNote::Bounced(_)
            | TimelineNote::SendFailed(_) => self.to_stored(),
            TimelineNote::ListAdd { list } | TimelineNote::ListRemove { list } => list.clone(),
            TimelineNote::Refused { reason } => reason.clone(),
            TimelineNote::Log { level, source, text } => format!("[{level}] {source}: {text}"),
            TimelineNote::TimerSet { tag, after_s } => format!("{tag} due in {after_s} s"),
            TimelineNote::RunEnded {} => RUN_ENDED.to_string(),
            TimelineNote::Retry { event, attempt, retry_in_s, error } => {
                format!("{event} event failed (attempt {attempt}), retrying in {retry_in_s} s: {error}")
            }
            TimelineNote::Failed { event, attempts, error } => {
                format!("{event} event parked as failed after {attempts} attempts: {error}")
            }
            TimelineNote::CouponAssigned { code, discount_percent, source } => {
                format!("unique coupon {code} ({discount_percent}% off) from the {source}")
            }
            TimelineNote::Variant { step, variant } => format!("split {step}: variant {variant}"),
            TimelineNote::Unsubscribed { email } => email.clone(),
        }
    }
}

/// The note of a detail in the prose older builds wrote (the inverse of `detail_text` for the
/// kinds that were not JSON). Message entries were JSON already: no prose to read.
fn from_prose(kind: TimelineKind, text: &str) -> Option<TimelineNote> {
    let owned = |s: &str| s.to_string();
    Some(match kind {
        TimelineKind::ListAdd => TimelineNote::ListAdd { list: owned(text) },
        TimelineKind::ListRemove => TimelineNote::ListRemove { list: owned(text) },
        TimelineKind::Refused => TimelineNote::Refused { reason: owned(text) },
        TimelineKind::Unsubscribed => TimelineNote::Unsubscribed { email: owned(text) },
        TimelineKind::RunEnded => TimelineNote::RunEnded {},
        TimelineKind::Log => {
            let (level, rest) = text.strip_prefix('[')?.split_once("] ")?;
            let (source, text) = rest.split_once(": ")?;
            TimelineNote::Log { level: LogLevel::parse(level)?, source: owned(source), text: owned(text) }
        }
        TimelineKind::TimerSet => {
            let (tag, after) = text.rsplit_once(" due in ")?;
            TimelineNote::TimerSet { tag: owned(tag), after_s: after.strip_suffix(" s")?.parse().ok()? }
        }
        TimelineKind::Retry => {
            let (event, rest) = text.split_once(" event failed (attempt ")?;
            let (attempt, rest) = rest.split_once("), retrying in ")?;
            let (retry_in_s, error) = rest.split_once(" s: ")?;
            TimelineNote::Retry {
                event: owned(event),
                attempt: attempt.parse().ok()?,
                retry_in_s: retry_in_s.parse().ok()?,
                error: owned(error),
            }
        }
        TimelineKind::Failed => {
            let (event, rest) = text.split_once(" event parked as failed after ")?;
            let (attempts, error) = rest.split_once(" attempts: ")?;
            TimelineNote::Failed { event: owned(event), attempts: attempts.parse().ok()?, error: owned(error) }
        }
        TimelineKind::CouponAssigned => {
            let (code, rest) = text.strip_prefix("unique coupon ")?.split_once(" (")?;
            let (percent, source) = rest.split_once("% off) from the ")?;
            TimelineNote::CouponAssigned {
                code: owned(code),
                discount_percent: percent.parse().ok()?,
                source: CouponSource::parse(source)?,
            }
        }
        TimelineKind::Variant => {
            let (step, variant) = text.strip_prefix("split ")?.split_once(": variant ")?;
            TimelineNote::Variant { step: owned(step), variant: owned(variant) }
        }
        TimelineKind::Email
        | TimelineKind::Sms
        | TimelineKind::Dropped
        | TimelineKind::Deferred
        | TimelineKind::Bounced
        | TimelineKind::SendFailed => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_kind() -> Vec<TimelineNote> {
        let message = MessageNote {
            message_id: "m1".into(),
            channel: Channel::Sms,
            tag: "sms-1".into(),
            subject: None,
            body: Some("Oi".into()),
            coupon: Some("VOLTA10".into()),
            reason: None,
        };
        vec![
            TimelineNote::Email(MessageNote { channel: Channel::Email, subject: Some("Hi".into()), ..message.clone() }),
            TimelineNote::Sms(message.clone()),
            TimelineNote::Dropped(MessageNote { reason: Some("purchased".into()), ..message.clone() }),
            TimelineNote::Deferred(HoldNote {
                message_id: "m1".into(),
                channel: Channel::Email,
                tag: "email-1".into(),
                reason: HoldReason::SendWindow,
                until: 1_000,
                until_local: Some("2026-03-07 09:00 (America/Sao_Paulo)".into()),
            }),
            TimelineNote::Bounced(MessageNote { reason: Some("550 no such user".into()), ..message.clone() }),
            TimelineNote::SendFailed(message),
            TimelineNote::ListAdd { list: "buyers".into() },
            TimelineNote::ListRemove { list: "buyers".into() },
            TimelineNote::Refused { reason: "send-email: a subject is required".into() },
            TimelineNote::Log { level: LogLevel::Info, source: "plugin".into(), text: "event=captured: ok".into() },
            TimelineNote::TimerSet { tag: "first reminder".into(), after_s: 3600 },
            TimelineNote::RunEnded {},
            TimelineNote::Retry { event: "captured".into(), attempt: 2, retry_in_s: 2, error: "trap: s: x".into() },
            TimelineNote::Failed { event: "timer".into(), attempts: 5, error: "out of fuel".into() },
            TimelineNote::CouponAssigned { code: "AB-12".into(), discount_percent: 15, source: CouponSource::Pool },
            TimelineNote::Variant { step: "first".into(), variant: "b".into() },
            TimelineNote::Unsubscribed { email: "ana@example.com".into() },
        ]
    }

    #[test]
    fn every_note_reads_back_from_what_is_stored() {
        for note in every_kind() {
            let stored = note.to_stored();
            assert!(stored.starts_with('{'), "{stored}");
            assert_eq!(TimelineNote::from_stored(note.kind(), &stored).ok(), Some(note.clone()), "{stored}");
        }
    }

    #[test]
    fn the_prose_of_older_builds_reads_as_the_same_note() {
        for note in every_kind() {
            // Message entries were JSON already: their old detail is what is stored now.
            let old = note.detail_text();
            assert_eq!(TimelineNote::from_stored(note.kind(), &old).ok(), Some(note.clone()), "{old}");
        }
        let old_json_sms = r#"{"body":"Oi","channel":"sms","coupon":null,"message_id":"m9","reason":null,
                               "subject":null,"tag":"sms-1"}"#;
        let note = TimelineNote::from_stored(TimelineKind::Sms, old_json_sms).expect("an older build's sms entry");
        assert_eq!(note.message_id(), Some("m9"));
    }

    #[test]
    fn a_detail_that_fits_neither_shape_is_an_error() {
        for (kind, detail) in [
            (TimelineKind::Email, "sent"),
            (TimelineKind::TimerSet, "soon"),
            (TimelineKind::Log, "[loud] plugin: x"),
            (TimelineKind::CouponAssigned, "unique coupon X (15% off) from the sky"),
        ] {
            let err = TimelineNote::from_stored(kind, detail).expect_err(detail);
            assert_eq!(err.kind, kind);
        }
    }
}
