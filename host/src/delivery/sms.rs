//! SMS through an HTTP gateway (`FUNNEL_SMS_URL`). Two request shapes: `json` posts
//! `{"to", "body", "reference"}` (the reference is the outbox id, stable across retries, so a
//! gateway can dedupe); `twilio` posts the form `To`, `From`, `Body`. A 2xx is sent; a 4xx
//! other than 429 is permanent; 429, 5xx and network errors are temporary.

use super::{Deadlines, SendError, Transport};
use crate::store::outbox::OutboxMessage;

/// The request shape a gateway expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SmsFormat {
    Json,
    Twilio,
}

/// Sends outbox SMS to an HTTP gateway.
pub struct SmsGateway {
    client: reqwest::Client,
    url: String,
    format: SmsFormat,
    from: String,
    deadlines: Deadlines,
}

impl SmsGateway {
    pub fn new(url: &str, format: SmsFormat, from: &str) -> Result<Self, String> {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(format!("FUNNEL_SMS_URL {url:?} must be an http(s) URL"));
        }
        let deadlines = Deadlines::default();
        let client = client(deadlines)?;
        Ok(SmsGateway { client, url: url.to_string(), format, from: from.to_string(), deadlines })
    }
}

/// An HTTP client whose every request is bounded by `deadlines` (connecting, then the whole
/// request and its answer).
fn client(deadlines: Deadlines) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .connect_timeout(deadlines.connect)
        .timeout(deadlines.connect + deadlines.step)
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

impl SmsGateway {
    /// Use `deadlines` for every request.
    pub fn with_deadlines(self, deadlines: Deadlines) -> Self {
        match client(deadlines) {
            Ok(client) => SmsGateway { client, deadlines, ..self },
            Err(e) => {
                tracing::warn!(error = %e, "keeping the SMS gateway's default deadlines");
                self
            }
        }
    }
}

#[async_trait::async_trait]
impl Transport for SmsGateway {
    async fn send(&self, m: &OutboxMessage) -> Result<(), SendError> {
        let body = m.text.clone().unwrap_or_default();
        let request = match self.format {
            SmsFormat::Json => self
                .client
                .post(&self.url)
                .json(&serde_json::json!({"to": m.recipient, "body": body, "reference": m.id})),
            SmsFormat::Twilio => {
                let form =
                    format!("To={}&From={}&Body={}", urlencode(&m.recipient), urlencode(&self.from), urlencode(&body));
                self.client.post(&self.url).header("content-type", "application/x-www-form-urlencoded").body(form)
            }
        };
        let response = request.send().await.map_err(|e| {
            if e.is_timeout() {
                let limit = self.deadlines.connect + self.deadlines.step;
                SendError::Temporary(format!("SMS gateway timed out (after at most {limit:?}): {e}"))
            } else {
                SendError::Temporary(format!("SMS gateway unreachable: {e}"))
            }
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        // Under the client's timeout too.
        let text = response.text().await.unwrap_or_default();
        let why = format!("SMS gateway answered {status}: {}", text.chars().take(200).collect::<String>());
        if status.is_client_error() && status.as_u16() != 429 {
            Err(SendError::Permanent(why))
        } else {
            Err(SendError::Temporary(why))
        }
    }
}

/// Percent-encoding for form values.
fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            b' ' => "+".to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
