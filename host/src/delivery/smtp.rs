//! Email over SMTP or SMTPS (`FUNNEL_SMTP_URL`). A 5xx answer is permanent (the address
//! bounces and is suppressed); a 4xx, a refused connection or a timeout is temporary (retried).
//!
//! `smtp://[user:pass@]host[:port][?tls=opportunistic|required]` goes through this module's own
//! pool of lettre connections on sockets with `TCP_NODELAY`: lettre's pooled transport leaves
//! Nagle's algorithm on, which costs ~40 ms a message (23/s a connection, measured by
//! `benches/delivery.rs`). `smtps://` (implicit TLS) uses lettre's transport as it is.

use std::time::Duration;

use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use tokio::sync::Mutex;

use super::{Deadlines, SendError, Transport, email};
use crate::store::outbox::OutboxMessage;

/// Idle connections kept for reuse.
const MAX_IDLE: usize = 16;

/// Sends outbox emails to an SMTP server.
pub struct SmtpTransport {
    mode: Mode,
    from: Mailbox,
    public_url: String,
    /// The URL it was made from, to rebuild lettre's transport with other deadlines.
    url: String,
}

enum Mode {
    Pooled(NoDelayPool),
    Lettre(AsyncSmtpTransport<Tokio1Executor>),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum StartTls {
    Never,
    Opportunistic,
    Required,
}

struct NoDelayPool {
    host: String,
    port: u16,
    starttls: StartTls,
    credentials: Option<Credentials>,
    idle: Mutex<Vec<AsyncSmtpConnection>>,
    deadlines: Deadlines,
}

impl SmtpTransport {
    /// A transport for `url`, sending as `from`.
    pub fn new(url: &str, from: &str, public_url: String) -> Result<Self, String> {
        let from: Mailbox = from.parse().map_err(|e| format!("FUNNEL_FROM {from:?} is not an address: {e}"))?;
        let bad = |why: String| format!("FUNNEL_SMTP_URL {url:?} is not usable: {why}");
        let parsed = url::Url::parse(url).map_err(|e| bad(e.to_string()))?;
        let mode = match parsed.scheme() {
            "smtp" => {
                let host = parsed.host_str().ok_or_else(|| bad("no host".into()))?.to_string();
                let starttls =
                    match parsed.query_pairs().find(|(k, _)| k == "tls").map(|(_, v)| v.into_owned()).as_deref() {
                        None | Some("none") => StartTls::Never,
                        Some("opportunistic") => StartTls::Opportunistic,
                        Some("required") => StartTls::Required,
                        Some(other) => return Err(bad(format!("tls={other}: use none, opportunistic or required"))),
                    };
                let credentials = (!parsed.username().is_empty()).then(|| {
                    Credentials::new(parsed.username().to_string(), parsed.password().unwrap_or_default().to_string())
                });
                Mode::Pooled(NoDelayPool {
                    host,
                    port: parsed.port().unwrap_or(25),
                    starttls,
                    credentials,
                    idle: Mutex::new(Vec::new()),
                    deadlines: Deadlines::default(),
                })
            }
            "smtps" => Mode::Lettre(lettre_transport(url, Deadlines::default()).map_err(bad)?),
            other => return Err(bad(format!("scheme {other}: use smtp:// or smtps://"))),
        };
        Ok(SmtpTransport { mode, from, public_url, url: url.to_string() })
    }
}

/// lettre's own transport for `smtps://`: its timeout applies to connecting and to each
/// command, so the longer of the two deadlines bounds every step.
fn lettre_transport(url: &str, deadlines: Deadlines) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    Ok(AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
        .map_err(|e| e.to_string())?
        .timeout(Some(deadlines.connect.max(deadlines.step)))
        .build())
}

impl SmtpTransport {
    /// Use `deadlines` for every network step of a send.
    pub fn with_deadlines(mut self, deadlines: Deadlines) -> Self {
        match &mut self.mode {
            Mode::Pooled(pool) => pool.deadlines = deadlines,
            Mode::Lettre(mailer) => {
                if let Ok(rebuilt) = lettre_transport(&self.url, deadlines) {
                    *mailer = rebuilt;
                }
            }
        }
        self
    }
}

fn classify(e: lettre::transport::smtp::Error) -> SendError {
    if e.is_permanent() { SendError::Permanent(e.to_string()) } else { SendError::Temporary(e.to_string()) }
}

impl NoDelayPool {
    /// Run one network `step` of a send under `limit`: past it, the attempt fails as
    /// temporary, naming the step and the server (and the connection is dropped).
    async fn step<T>(
        &self,
        limit: Duration,
        step: &str,
        work: impl Future<Output = Result<T, lettre::transport::smtp::Error>>,
    ) -> Result<T, SendError> {
        match tokio::time::timeout(limit, work).await {
            Ok(done) => done.map_err(classify),
            Err(_) => {
                Err(SendError::Temporary(format!("timed out after {limit:?} {step} {}:{}", self.host, self.port)))
            }
        }
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, SendError> {
        let temporary = |what: &str, e: &dyn std::fmt::Display| {
            SendError::Temporary(format!("{what} {}:{}: {e}", self.host, self.port))
        };
        let limit = self.deadlines.connect;
        let stream = tokio::time::timeout(limit, tokio::net::TcpStream::connect((self.host.as_str(), self.port)))
            .await
            .map_err(|_| temporary(&format!("timed out after {limit:?} connecting to"), &"no answer"))?
            .map_err(|e| temporary("cannot connect to", &e))?;
        stream.set_nodelay(true).map_err(|e| temporary("cannot set TCP_NODELAY on", &e))?;
        let client_id = ClientId::default();
        let step = self.deadlines.step;
        // Reads the greeting, then says EHLO.
        let mut conn = self
            .step(
                step,
                "waiting for the greeting of",
                AsyncSmtpConnection::connect_with_transport(Box::new(stream), &client_id),
            )
            .await?;
        let wants_tls = match self.starttls {
            StartTls::Never => false,
            StartTls::Opportunistic => conn.can_starttls(),
            StartTls::Required => true,
        };
        if wants_tls {
            let tls = TlsParameters::new(self.host.clone()).map_err(classify)?;
            self.step(step, "in STARTTLS with", conn.starttls(tls, &client_id)).await?;
        }
        if let Some(credentials) = &self.credentials {
            self.step(step, "authenticating to", conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials)).await?;
        }
        Ok(conn)
    }

    async fn send(&self, message: &lettre::Message) -> Result<(), SendError> {
        let reused = self.idle.lock().await.pop();
        let mut conn = match reused {
            Some(conn) if !conn.has_broken() => conn,
            _ => self.connect().await?,
        };
        // MAIL, RCPT and DATA with the message: one step, under one deadline.
        let formatted = message.formatted();
        let sent = self.step(self.deadlines.step, "sending the message to", conn.send(message.envelope(), &formatted));
        match sent.await {
            Ok(_) => {
                let mut idle = self.idle.lock().await;
                if idle.len() < MAX_IDLE {
                    idle.push(conn);
                }
                Ok(())
            }
            // A failed connection is dropped, never reused.
            Err(e) => Err(e),
        }
    }
}

#[async_trait::async_trait]
impl Transport for SmtpTransport {
    async fn send(&self, m: &OutboxMessage) -> Result<(), SendError> {
        let message = email::build(m, &self.from, &self.public_url)?;
        match &self.mode {
            Mode::Pooled(pool) => pool.send(&message).await,
            Mode::Lettre(mailer) => mailer.send(message).await.map(|_| ()).map_err(classify),
        }
    }
}
