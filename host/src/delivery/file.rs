//! The default transport when no SMTP server or SMS gateway is configured: each message is
//! written as a file under a directory (`./outbox/` by default): emails as `.eml` files a mail
//! client opens, SMS as `.sms.json`. The file name is the message id, so a retry overwrites
//! rather than duplicates.

use std::path::PathBuf;

use lettre::message::Mailbox;

use super::{SendError, Transport, email};
use crate::store::outbox::OutboxMessage;

/// Writes messages as files.
#[derive(Debug, Clone)]
pub struct FileTransport {
    dir: PathBuf,
    from: Mailbox,
    public_url: String,
}

impl FileTransport {
    /// Files under `dir`; `from` must be an address (`Name <a@b.c>` or `a@b.c`).
    pub fn new(dir: PathBuf, from: &str, public_url: String) -> Result<Self, String> {
        let from: Mailbox = from.parse().map_err(|e| format!("FUNNEL_FROM {from:?} is not an address: {e}"))?;
        Ok(FileTransport { dir, from, public_url })
    }
}

#[async_trait::async_trait]
impl Transport for FileTransport {
    async fn send(&self, m: &OutboxMessage) -> Result<(), SendError> {
        let temporary =
            |e: std::io::Error| SendError::Temporary(format!("cannot write to {}: {e}", self.dir.display()));
        tokio::fs::create_dir_all(&self.dir).await.map_err(temporary)?;
        let (name, content) = if m.channel == crate::domain::Channel::Sms {
            let body = serde_json::json!({"to": m.recipient, "body": m.text, "reference": m.id}).to_string();
            (format!("{}.sms.json", m.id), body)
        } else {
            let message = email::build(m, &self.from, &self.public_url)?;
            (format!("{}.eml", m.id), String::from_utf8_lossy(&message.formatted()).into_owned())
        };
        let tmp = self.dir.join(format!(".{name}.tmp"));
        tokio::fs::write(&tmp, content).await.map_err(temporary)?;
        tokio::fs::rename(&tmp, self.dir.join(name)).await.map_err(temporary)?;
        Ok(())
    }
}
