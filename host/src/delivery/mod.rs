//! Delivery: workers claim due outbox rows and hand them to a transport, after the rules the
//! host enforces at send time whatever the plugin did: nothing to a suppressed address, and a
//! `recovery` message is dropped (with the reason, in the timeline) once the lead has bought.
//!
//! ## Layout
//! - [`template`]: rendering of subjects and bodies.
//! - [`rate`]: the global and per-producer send rate caps.
//! - [`email`]: the MIME message of an email (Message-ID, unsubscribe headers, two parts).
//! - [`file`]: the default transport, one file per message under `./outbox/`.
//! - [`smtp`]: email over SMTP/SMTPS with lettre.
//! - [`sms`]: SMS through an HTTP gateway (JSON or Twilio-style form).
//! - [`hold`]: the send window and the contact frequency cap, checked when a message is claimed.

pub mod email;
pub mod file;
pub mod hold;
pub mod rate;
pub mod sms;
pub mod smtp;
pub mod template;

use std::sync::Arc;

use crate::clock::Clock;
use crate::domain::{Channel, MessageKind};
use crate::store::outbox::{OutboxMessage, Outcome};
use crate::store::{Database, StoreError};

/// Why a transport could not send.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth retrying later (SMTP 4xx, connection refused, timeout).
    #[error("temporary failure: {0}")]
    Temporary(String),
    /// Will never work (SMTP 5xx: the address does not exist).
    #[error("permanent failure: {0}")]
    Permanent(String),
}

/// How long each network step of a send may take before the attempt fails as temporary
/// (and is retried with the outbox's backoff): a server that accepts and never speaks must
/// cost one attempt, never a stalled worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadlines {
    /// Opening the TCP connection (and, for HTTP, the TLS handshake).
    pub connect: std::time::Duration,
    /// Each step after it: the greeting, each SMTP command, the DATA transfer, an HTTP request.
    pub step: std::time::Duration,
}

impl Default for Deadlines {
    fn default() -> Self {
        Deadlines { connect: std::time::Duration::from_secs(10), step: std::time::Duration::from_secs(30) }
    }
}

/// Something that sends a message: an SMTP server, an SMS gateway, files, or nothing.
#[async_trait::async_trait]
pub trait Transport: Send + Sync {
    async fn send(&self, message: &OutboxMessage) -> Result<(), SendError>;
}

/// A transport that sends nothing (for `funnel simulate`): the timeline still records what
/// would have gone out.
#[derive(Debug, Default)]
pub struct Discard;

#[async_trait::async_trait]
impl Transport for Discard {
    async fn send(&self, _message: &OutboxMessage) -> Result<(), SendError> {
        Ok(())
    }
}

/// The reason the host refuses to send `message`, if it does.
pub fn send_time_veto(message: &OutboxMessage) -> Option<&'static str> {
    if message.suppressed {
        return Some("suppressed");
    }
    if message.kind == MessageKind::Recovery && message.lead_purchased {
        return Some("purchased");
    }
    None
}

/// How long a claim on outbox messages holds them before another worker may take them over.
const CLAIM_LEASE_MS: i64 = 60_000;

/// Claims due messages and sends them.
pub struct Deliverer {
    store: Database,
    email: Arc<dyn Transport>,
    sms: Arc<dyn Transport>,
    clock: Arc<dyn Clock>,
    max_attempts: i64,
    rate: std::sync::Mutex<rate::RateCaps>,
    /// Set by [`Deliverer::stop`]: claim nothing more, give back what is not sent yet.
    stopping: std::sync::atomic::AtomicBool,
}

impl Deliverer {
    pub fn new(store: Database, email: Arc<dyn Transport>, sms: Arc<dyn Transport>, clock: Arc<dyn Clock>) -> Self {
        Deliverer {
            store,
            email,
            sms,
            clock,
            max_attempts: 8,
            rate: std::sync::Mutex::new(rate::RateCaps::default()),
            stopping: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Cap sends per minute, overall and per producer (`None`: no cap).
    pub fn with_rate_caps(self, global_per_minute: Option<u32>, producer_per_minute: Option<u32>) -> Self {
        Deliverer { rate: std::sync::Mutex::new(rate::RateCaps::new(global_per_minute, producer_per_minute)), ..self }
    }

    /// Stop claiming (for shutdown): a running [`deliver_due`](Self::deliver_due) finishes
    /// the send in progress and gives the rest of its batch back to the outbox.
    pub fn stop(&self) {
        self.stopping.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Send what is due now; returns how many messages were handled.
    pub async fn deliver_due(&self) -> Result<usize, StoreError> {
        let mut handled = 0;
        while !self.stopping.load(std::sync::atomic::Ordering::SeqCst) {
            let claimed_at = self.clock.now_ms();
            let batch = self.store.claim_messages(claimed_at, CLAIM_LEASE_MS, 50).await?;
            if batch.is_empty() {
                return Ok(handled);
            }
            for message in batch {
                if self.stopping.load(std::sync::atomic::Ordering::SeqCst) {
                    // Shutting down: back to the outbox, due now, for the next start.
                    self.store.release_message(&message, self.clock.now_ms()).await?;
                    continue;
                }
                // Sends are bounded by their deadlines but a batch's can add up past the lease:
                // past half of it, renew the claim before sending, and skip a message another
                // worker has taken over (it sends it; sending here too would be a duplicate).
                let now = self.clock.now_ms();
                if now - claimed_at > CLAIM_LEASE_MS / 2
                    && !self.store.renew_message_claim(&message, now + CLAIM_LEASE_MS).await?
                {
                    tracing::warn!(message = %message.id, "delivery claim taken over by another worker; not sent here");
                    continue;
                }
                let outcome = self.deliver(&message).await;
                match &outcome {
                    Outcome::Sent => crate::metrics::MESSAGES_SENT.inc(),
                    Outcome::Dropped(_) => crate::metrics::MESSAGES_DROPPED.inc(),
                    Outcome::Bounced(_) => crate::metrics::MESSAGES_BOUNCED.inc(),
                    Outcome::Retry { .. } => crate::metrics::MESSAGES_RETRIED.inc(),
                    Outcome::Held(_) => crate::metrics::MESSAGES_HELD.inc(),
                    Outcome::Failed(_) | Outcome::Deferred { .. } => {}
                }
                if !self.store.finish_message(&message, &outcome, self.clock.now_ms()).await? {
                    tracing::warn!(message = %message.id, "delivery claim taken over while sending; outcome not recorded");
                }
                handled += 1;
            }
        }
        Ok(handled)
    }

    async fn deliver(&self, message: &OutboxMessage) -> Outcome {
        if let Some(reason) = send_time_veto(message) {
            return Outcome::Dropped(reason.to_string());
        }
        let now = self.clock.now_ms();
        if let Some(held) = hold::check(&self.store, message, now).await {
            return held;
        }
        let wait_until = self.rate.lock().map(|mut caps| caps.admit(&message.producer_id, now)).unwrap_or(None);
        if let Some(at) = wait_until {
            return Outcome::Deferred { at };
        }
        let transport = match message.channel {
            Channel::Sms => &self.sms,
            Channel::Email => &self.email,
        };
        match transport.send(message).await {
            Ok(()) => Outcome::Sent,
            Err(SendError::Permanent(why)) => Outcome::Bounced(why),
            Err(SendError::Temporary(why)) if message.attempts + 1 >= self.max_attempts => Outcome::Failed(why),
            Err(SendError::Temporary(why)) => {
                // 30 s, 1 min, 2 min, … capped at an hour.
                let backoff = (30_000i64 << message.attempts.clamp(0, 7)).min(3_600_000);
                Outcome::Retry { at: self.clock.now_ms() + backoff, error: why }
            }
        }
    }
}
