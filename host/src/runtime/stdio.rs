//! The invocation's log: plugin `log` calls and the guest's stdout/stderr land in one buffer
//! capped at `Limits::log_bytes` and `Limits::log_lines` (each line is a timeline row, so an
//! empty one counts too). Past a cap lines are dropped, and one marker line at the end says how
//! many; writes never fail, so a chatty guest is never broken by its own printing.

use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

use super::wit::LogLevel;

/// One line of a plugin's log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    pub level: LogLevel,
    /// `plugin` (a `log` call), `stdout`, `stderr` or `host`.
    pub source: &'static str,
    pub text: String,
}

/// Shared, capped log buffer of one invocation.
#[derive(Clone)]
pub(crate) struct LogBuffer(Arc<Mutex<LogInner>>);

struct LogInner {
    lines: Vec<LogLine>,
    bytes: usize,
    cap: usize,
    max_lines: usize,
    /// Lines dropped since a cap was reached (then every later line is dropped too, so the
    /// log keeps its order).
    dropped: usize,
}

impl LogBuffer {
    pub(crate) fn new(cap: usize, max_lines: usize) -> Self {
        LogBuffer(Arc::new(Mutex::new(LogInner { lines: Vec::new(), bytes: 0, cap, max_lines, dropped: 0 })))
    }

    fn lock(&self) -> MutexGuard<'_, LogInner> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Append one line, or count it as dropped once a cap is reached.
    pub(crate) fn push(&self, level: LogLevel, source: &'static str, text: &str) {
        let mut inner = self.lock();
        if inner.dropped > 0 || inner.lines.len() >= inner.max_lines || inner.bytes + text.len() > inner.cap {
            inner.dropped += 1;
            return;
        }
        inner.bytes += text.len();
        // A NUL cannot be stored in PostgreSQL text: the line is kept, the character replaced.
        let text = crate::domain::text::sanitize(text).into_owned();
        inner.lines.push(LogLine { level, source, text });
    }

    /// Take the lines out, with a marker line last when some were dropped.
    pub(crate) fn take(&self) -> Vec<LogLine> {
        let mut inner = self.lock();
        let mut lines = std::mem::take(&mut inner.lines);
        if inner.dropped > 0 {
            let text = format!(
                "log truncated: {} log lines dropped (more than {} lines or {} bytes in one invocation)",
                inner.dropped, inner.max_lines, inner.cap
            );
            lines.push(LogLine { level: LogLevel::Warn, source: "host", text });
            inner.dropped = 0;
        }
        lines
    }
}

/// stdout or stderr of the guest, feeding the [`LogBuffer`].
pub(crate) struct GuestOutput {
    pub(crate) log: LogBuffer,
    pub(crate) source: &'static str,
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(GuestOutputStream { log: self.log.clone(), source: self.source })
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(tokio::io::sink())
    }
}

struct GuestOutputStream {
    log: LogBuffer,
    source: &'static str,
}

#[async_trait::async_trait]
impl OutputStream for GuestOutputStream {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        let text = String::from_utf8_lossy(&bytes);
        let level = if self.source == "stderr" { LogLevel::Warn } else { LogLevel::Info };
        for line in text.lines().filter(|l| !l.is_empty()) {
            self.log.push(level, self.source, line);
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(64 * 1024)
    }
}

#[async_trait::async_trait]
impl Pollable for GuestOutputStream {
    async fn ready(&mut self) {}
}
