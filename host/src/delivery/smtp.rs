//! Email over SMTP or SMTPS with lettre (`FUNNEL_SMTP_URL`, e.g. `smtp://user:pass@host:587?tls=required`
//! or `smtps://host`), with a connection pool. A 5xx answer is permanent (the address bounces
//! and is suppressed); a 4xx, a refused connection or a timeout is temporary (retried).

use std::time::Duration;

use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::{SendError, Transport, email};
use crate::store::outbox::OutboxMessage;

/// Sends outbox emails to an SMTP server.
pub struct SmtpTransport {
    mailer: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    public_url: String,
}

impl SmtpTransport {
    /// A transport for `url`, sending as `from`.
    pub fn new(url: &str, from: &str, public_url: String) -> Result<Self, String> {
        let mailer = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| format!("FUNNEL_SMTP_URL {url:?} is not usable: {e}"))?
            .timeout(Some(Duration::from_secs(15)))
            .build();
        let from: Mailbox = from.parse().map_err(|e| format!("FUNNEL_FROM {from:?} is not an address: {e}"))?;
        Ok(SmtpTransport { mailer, from, public_url })
    }
}

#[async_trait::async_trait]
impl Transport for SmtpTransport {
    async fn send(&self, m: &OutboxMessage) -> Result<(), SendError> {
        let message = email::build(m, &self.from, &self.public_url)?;
        match self.mailer.send(message).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(SendError::Permanent(e.to_string())),
            Err(e) => Err(SendError::Temporary(e.to_string())),
        }
    }
}
