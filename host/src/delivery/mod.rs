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

pub(crate) mod email;
pub mod file;
pub(crate) mod hold;
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

/// Sends in flight at once by default (see [`Deliverer::set_concurrency`]): the SMTP
/// transport keeps 16 idle connections, and 16 senders reach its measured ceiling.
pub const DEFAULT_CONCURRENCY: usize = 16;

/// Outcomes recorded per transaction: sends finish one by one, their rows are written together.
const FINISH_BATCH: usize = 64;

/// Claims due messages and sends them, several at once.
pub struct Deliverer {
    send: Arc<SendSide>,
    /// Sends in flight at once (at least 1).
    concurrency: std::sync::atomic::AtomicUsize,
    /// Set by [`Deliverer::stop`]: claim nothing more, give back what is not sent yet.
    stopping: std::sync::atomic::AtomicBool,
}

/// What a send needs, shared by the sends in flight (and the store the deliverer claims and
/// finishes through).
struct SendSide {
    /// Claims and finishes; read by the send-time rules (the send window and the contact cap,
    /// `hold`).
    store: Database,
    email: Arc<dyn Transport>,
    sms: Arc<dyn Transport>,
    clock: Arc<dyn Clock>,
    max_attempts: i64,
    rate: std::sync::Mutex<rate::RateCaps>,
}

impl Deliverer {
    pub fn new(store: Database, email: Arc<dyn Transport>, sms: Arc<dyn Transport>, clock: Arc<dyn Clock>) -> Self {
        Deliverer {
            send: Arc::new(SendSide {
                store,
                email,
                sms,
                clock,
                max_attempts: 8,
                rate: std::sync::Mutex::new(rate::RateCaps::default()),
            }),
            concurrency: std::sync::atomic::AtomicUsize::new(DEFAULT_CONCURRENCY),
            stopping: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Cap sends per minute, overall and per producer (`None`: no cap).
    pub fn with_rate_caps(self, global_per_minute: Option<u32>, producer_per_minute: Option<u32>) -> Self {
        let send = SendSide {
            store: self.send.store.clone(),
            email: self.send.email.clone(),
            sms: self.send.sms.clone(),
            clock: self.send.clock.clone(),
            max_attempts: self.send.max_attempts,
            rate: std::sync::Mutex::new(rate::RateCaps::new(global_per_minute, producer_per_minute)),
        };
        Deliverer { send: Arc::new(send), ..self }
    }

    /// How many sends may be in flight at once (`serve --delivery-concurrency`; 0 counts as 1).
    /// Each keeps its own deadlines; messages of one lead still go one after the other.
    pub fn set_concurrency(&self, sends: usize) {
        self.concurrency.store(sends.max(1), std::sync::atomic::Ordering::SeqCst);
    }

    /// Stop claiming (for shutdown): a running [`deliver_due`](Self::deliver_due) finishes
    /// the sends in flight and gives the rest of what it claimed back to the outbox.
    pub fn stop(&self) {
        self.stopping.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    fn stopping(&self) -> bool {
        self.stopping.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Send what is due now, up to the concurrency at once; returns how many messages were
    /// handled. Claims a batch when sends run short of work; each message's outcome is
    /// recorded only under the claim it was sent under (in groups, one transaction each).
    pub async fn deliver_due(&self) -> Result<usize, StoreError> {
        let concurrency = self.concurrency.load(std::sync::atomic::Ordering::SeqCst).max(1);
        let claim_size = i64::try_from((2 * concurrency).max(50)).unwrap_or(50);
        let mut handled = 0;
        // Claimed and not started, with when they were claimed.
        let mut waiting: std::collections::VecDeque<(OutboxMessage, i64)> = std::collections::VecDeque::new();
        let mut in_flight: tokio::task::JoinSet<(OutboxMessage, Outcome)> = tokio::task::JoinSet::new();
        // Leads with a send in flight: their next message waits, so a lead's messages keep
        // their order.
        let mut busy: std::collections::HashSet<String> = std::collections::HashSet::new();
        let mut finished: Vec<(OutboxMessage, Outcome)> = Vec::new();
        let mut drained = false;
        loop {
            if self.stopping() {
                // Shutting down: what has not started goes back to the outbox, due now.
                for (message, _) in waiting.drain(..) {
                    self.send.store.release_message(&message, self.send.clock.now_ms()).await?;
                }
            } else if !drained && waiting.is_empty() && in_flight.len() < concurrency {
                let claimed_at = self.send.clock.now_ms();
                let batch = self.send.store.claim_messages(claimed_at, CLAIM_LEASE_MS, claim_size).await?;
                drained = batch.is_empty();
                waiting.extend(batch.into_iter().map(|m| (m, claimed_at)));
            }
            if in_flight.is_empty() {
                // Nothing in flight, no lead busy (one whose send panicked is free again).
                busy.clear();
            }
            while in_flight.len() < concurrency && !self.stopping() {
                let Some(index) = waiting.iter().position(|(m, _)| !busy.contains(&m.lead_id)) else { break };
                let Some((message, claimed_at)) = waiting.remove(index) else { break };
                // Sends are bounded by their deadlines but a message may wait for a slot past
                // half its lease: then renew the claim before sending, and skip a message
                // another worker has taken over (it sends it; sending here too would be a
                // duplicate).
                let now = self.send.clock.now_ms();
                if now - claimed_at > CLAIM_LEASE_MS / 2
                    && !self.send.store.renew_message_claim(&message, now + CLAIM_LEASE_MS).await?
                {
                    tracing::warn!(message = %message.id, "delivery claim taken over by another worker; not sent here");
                    continue;
                }
                busy.insert(message.lead_id.clone());
                let send = self.send.clone();
                in_flight.spawn(async move {
                    let outcome = send.deliver(&message).await;
                    (message, outcome)
                });
            }
            if in_flight.is_empty() && (waiting.is_empty() || self.stopping()) {
                if !(drained || self.stopping()) {
                    continue;
                }
                handled += self.finish(&mut finished).await?;
                return Ok(handled);
            }
            // Wait for one send, then take every other that is done too.
            let mut done = Vec::new();
            if let Some(joined) = in_flight.join_next().await {
                done.push(joined);
            }
            while let Some(joined) = in_flight.try_join_next() {
                done.push(joined);
            }
            for joined in done {
                match joined {
                    Ok((message, outcome)) => {
                        busy.remove(&message.lead_id);
                        finished.push((message, outcome));
                    }
                    // A send that panicked keeps its claim: the message is sent again when the
                    // lease runs out. Its lead stays busy for the rest of this step.
                    Err(e) => tracing::error!(error = %e, "a send panicked; the message waits for its lease"),
                }
            }
            if finished.len() >= FINISH_BATCH || in_flight.is_empty() {
                handled += self.finish(&mut finished).await?;
            }
        }
    }

    /// Record the outcomes in `finished` (one transaction), each only under its own claim.
    async fn finish(&self, finished: &mut Vec<(OutboxMessage, Outcome)>) -> Result<usize, StoreError> {
        if finished.is_empty() {
            return Ok(0);
        }
        for (_, outcome) in finished.iter() {
            match outcome {
                Outcome::Sent => crate::metrics::MESSAGES_SENT.inc(),
                Outcome::Dropped(_) => crate::metrics::MESSAGES_DROPPED.inc(),
                Outcome::Bounced(_) => crate::metrics::MESSAGES_BOUNCED.inc(),
                Outcome::Retry { .. } => crate::metrics::MESSAGES_RETRIED.inc(),
                Outcome::Held(_) => crate::metrics::MESSAGES_HELD.inc(),
                Outcome::Failed(_) | Outcome::Deferred { .. } => {}
            }
        }
        let recorded = self.send.store.finish_messages(finished, self.send.clock.now_ms()).await?;
        for ((message, _), recorded) in finished.iter().zip(recorded) {
            if !recorded {
                tracing::warn!(message = %message.id, "delivery claim taken over while sending; outcome not recorded");
            }
        }
        let count = finished.len();
        finished.clear();
        Ok(count)
    }
}

impl SendSide {
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
