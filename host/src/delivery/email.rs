//! The MIME message of an outbox email, shared by every email transport: a text part and an
//! HTML part, a `Message-ID` derived from the outbox id (stable across retries, so a receiver
//! can tell a resend), and the RFC 8058 one-click unsubscribe headers.

use lettre::Message;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};

use super::SendError;
use crate::store::outbox::OutboxMessage;

/// The stable Message-ID of an outbox row.
pub(crate) fn message_id(outbox_id: &str) -> String {
    format!("<{outbox_id}@funnel>")
}

/// Build the message for `m`, from `from`, with unsubscribe links under `public_url`.
pub(crate) fn build(m: &OutboxMessage, from: &Mailbox, public_url: &str) -> Result<Message, SendError> {
    let to: Mailbox = m
        .recipient
        .parse()
        .map_err(|e| SendError::Permanent(format!("recipient {:?} is not a valid address: {e}", m.recipient)))?;
    let unsubscribe = format!("{}/u/{}", public_url.trim_end_matches('/'), m.unsubscribe_token);
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(m.subject.clone().unwrap_or_default())
        .message_id(Some(message_id(&m.id)))
        .raw_header(HeaderValue::new(HeaderName::new_from_ascii_str("List-Unsubscribe"), format!("<{unsubscribe}>")))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
            "List-Unsubscribe=One-Click".to_string(),
        ))
        .multipart(MultiPart::alternative_plain_html(
            m.text.clone().unwrap_or_default(),
            m.html.clone().unwrap_or_default(),
        ))
        .map_err(|e| SendError::Permanent(format!("the message cannot be built: {e}")))
}
