//! The default transport when no SMTP server or SMS gateway is configured: each message is
//! written as a file under a directory (`./outbox/` by default): emails as `.eml` files a mail
//! client opens, SMS as `.sms.json`. The file name is the message id, so a retry overwrites
//! rather than duplicates.

use std::path::PathBuf;

use super::{SendError, Transport};
use crate::store::outbox::OutboxMessage;

/// Writes messages as files.
#[derive(Debug, Clone)]
pub struct FileTransport {
    dir: PathBuf,
    from: String,
    public_url: String,
}

impl FileTransport {
    pub fn new(dir: PathBuf, from: String, public_url: String) -> Self {
        FileTransport { dir, from, public_url }
    }

    fn email_bytes(&self, m: &OutboxMessage) -> String {
        let boundary = format!("funnel-{}", m.id);
        let unsubscribe = format!("{}/u/{}", self.public_url.trim_end_matches('/'), m.unsubscribe_token);
        format!(
            "Message-ID: <{id}@funnel>\r\nFrom: {from}\r\nTo: <{to}>\r\nSubject: {subject}\r\nMIME-Version: 1.0\r\n\
             List-Unsubscribe: <{unsubscribe}>\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n\
             Content-Type: multipart/alternative; boundary=\"{boundary}\"\r\n\r\n\
             --{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n\
             --{boundary}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n--{boundary}--\r\n",
            id = m.id,
            from = self.from,
            to = m.recipient,
            subject = m.subject.as_deref().unwrap_or_default(),
            text = m.text.as_deref().unwrap_or_default(),
            html = m.html.as_deref().unwrap_or_default(),
        )
    }
}

#[async_trait::async_trait]
impl Transport for FileTransport {
    async fn send(&self, m: &OutboxMessage) -> Result<(), SendError> {
        let temporary =
            |e: std::io::Error| SendError::Temporary(format!("cannot write to {}: {e}", self.dir.display()));
        tokio::fs::create_dir_all(&self.dir).await.map_err(temporary)?;
        let (name, content) = if m.channel == "sms" {
            let body = serde_json::json!({"to": m.recipient, "body": m.text, "reference": m.id}).to_string();
            (format!("{}.sms.json", m.id), body)
        } else {
            (format!("{}.eml", m.id), self.email_bytes(m))
        };
        let tmp = self.dir.join(format!(".{name}.tmp"));
        tokio::fs::write(&tmp, content).await.map_err(temporary)?;
        tokio::fs::rename(&tmp, self.dir.join(name)).await.map_err(temporary)?;
        Ok(())
    }
}
