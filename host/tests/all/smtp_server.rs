//! A real SMTP server on loopback for tests (mailin-embedded), recording what it receives,
//! with switches to refuse mail temporarily (451) or permanently (550).

use std::net::{IpAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use mailin_embedded::response::{INTERNAL_ERROR, NO_MAILBOX, OK};
use mailin_embedded::{Handler, Response, Server};

/// What the server received and how it should answer.
#[derive(Default)]
pub struct Mailbox {
    pub messages: Mutex<Vec<String>>,
    /// Answer 451 to this many RCPT commands before accepting.
    pub refuse_temporarily: AtomicUsize,
    /// Answer 550 to these recipients.
    pub unknown: Mutex<Vec<String>>,
}

impl Mailbox {
    pub fn received(&self) -> Vec<String> {
        self.messages.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

#[derive(Clone)]
struct Recorder {
    mailbox: Arc<Mailbox>,
    data: Vec<u8>,
}

impl Handler for Recorder {
    fn helo(&mut self, _ip: IpAddr, _domain: &str) -> Response {
        OK
    }

    fn rcpt(&mut self, to: &str) -> Response {
        if self.mailbox.unknown.lock().map(|u| u.iter().any(|a| to.contains(a.as_str()))).unwrap_or(false) {
            return NO_MAILBOX;
        }
        let refused = self.mailbox.refuse_temporarily.load(Ordering::SeqCst);
        if refused > 0 {
            self.mailbox.refuse_temporarily.store(refused - 1, Ordering::SeqCst);
            return INTERNAL_ERROR;
        }
        OK
    }

    fn data_start(&mut self, _domain: &str, _from: &str, _is8bit: bool, _to: &[String]) -> Response {
        self.data.clear();
        OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        if let Ok(mut messages) = self.mailbox.messages.lock() {
            messages.push(String::from_utf8_lossy(&self.data).into_owned());
        }
        OK
    }
}

/// Start a server on `listener` (port 0 for any); returns its mailbox. It runs until the test
/// process ends.
pub fn start_on(listener: TcpListener) -> Arc<Mailbox> {
    let mailbox = Arc::new(Mailbox::default());
    let handler = Recorder { mailbox: mailbox.clone(), data: Vec::new() };
    std::thread::spawn(move || {
        let mut server = Server::new(handler);
        server.with_name("test.smtp").with_num_threads(4).with_tcp_listener(listener);
        let _ = server.serve();
    });
    mailbox
}

/// Start a server on a free loopback port; returns its URL and mailbox.
pub fn start() -> (String, Arc<Mailbox>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    (format!("smtp://127.0.0.1:{port}"), start_on(listener))
}
