//! A real SMTP server on loopback for tests (mailin-embedded), recording what it receives and
//! every recipient it was asked for, with switches to refuse mail temporarily (451) or
//! permanently (550). A server that died, or a handler that panicked, fails the next read of
//! its mailbox: "nothing received" must never mean "nothing was listening".

use std::net::{IpAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use mailin_embedded::response::{INTERNAL_ERROR, NO_MAILBOX, OK};
use mailin_embedded::{Handler, Response, Server};

/// What the server received and how it should answer.
#[derive(Default)]
pub(crate) struct Mailbox {
    messages: Mutex<Vec<String>>,
    /// Every RCPT TO the server was sent, refused or not.
    rcpts: Mutex<Vec<String>>,
    /// Answer 451 to this many RCPT commands before accepting.
    pub refuse_temporarily: AtomicUsize,
    /// Answer 550 to these recipients.
    unknown: Mutex<Vec<String>>,
    /// Why the server stopped, once it has (it never should while the test runs).
    died: Mutex<Option<String>>,
}

/// Lock a mailbox field; a poisoned lock means the server's handler panicked: fail the test.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|_| panic!("the test SMTP server's handler panicked"))
}

impl Mailbox {
    /// The messages received so far (their DATA).
    pub(crate) fn received(&self) -> Vec<String> {
        self.check_alive();
        lock(&self.messages).clone()
    }

    /// The recipients of every RCPT command so far, including refused ones: how many times
    /// the host tried to send.
    pub(crate) fn rcpts(&self) -> Vec<String> {
        self.check_alive();
        lock(&self.rcpts).clone()
    }

    /// Answer 550 to recipients containing `address`.
    pub(crate) fn refuse(&self, address: &str) {
        lock(&self.unknown).push(address.to_string());
    }

    fn check_alive(&self) {
        if let Some(why) = lock(&self.died).as_ref() {
            panic!("the test SMTP server is dead: {why}");
        }
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
        lock(&self.mailbox.rcpts).push(to.to_string());
        if lock(&self.mailbox.unknown).iter().any(|a| to.contains(a.as_str())) {
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
        lock(&self.mailbox.messages).push(String::from_utf8_lossy(&self.data).into_owned());
        OK
    }
}

/// Marks the mailbox's server dead when its thread ends, by a return or a panic.
struct Alive(Arc<Mailbox>, Option<String>);

impl Drop for Alive {
    fn drop(&mut self) {
        let why = self.1.take().unwrap_or_else(|| "its thread panicked".to_string());
        if let Ok(mut died) = self.0.died.lock() {
            *died = Some(why);
        }
    }
}

/// Start a server on `listener` (bound and listening); returns its mailbox. It runs until the
/// test process ends.
pub(crate) fn start_on(listener: TcpListener) -> Arc<Mailbox> {
    let mailbox = Arc::new(Mailbox::default());
    let handler = Recorder { mailbox: mailbox.clone(), data: Vec::new() };
    let alive = Alive(mailbox.clone(), None);
    std::thread::spawn(move || {
        let mut alive = alive;
        let mut server = Server::new(handler);
        // A thread per connection: two deliverers sending 16 at once each (the default
        // `--delivery-concurrency`) keep up to 32 connections open.
        server.with_name("test.smtp").with_num_threads(40).with_tcp_listener(listener);
        let result = server.serve();
        alive.1 = Some(format!("serve() returned {result:?}"));
    });
    mailbox
}

/// Start a server on a free loopback port; returns its URL and mailbox.
pub(crate) fn start() -> (String, Arc<Mailbox>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    (format!("smtp://127.0.0.1:{port}"), start_on(listener))
}

/// A loopback port held for a server that is not up yet: bound, so no other test can take it,
/// but not listening, so connections to it are refused. [`Reserved::start`] brings the
/// server up on it.
pub(crate) struct Reserved {
    socket: tokio::net::TcpSocket,
    pub url: String,
}

impl Reserved {
    pub(crate) fn new() -> Reserved {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.bind("127.0.0.1:0".parse().expect("address")).expect("bind");
        let port = socket.local_addr().expect("addr").port();
        Reserved { socket, url: format!("smtp://127.0.0.1:{port}") }
    }

    /// Listen on the held port and serve SMTP there.
    pub(crate) fn start(self) -> Arc<Mailbox> {
        let listener = self.socket.listen(64).expect("listen").into_std().expect("std listener");
        listener.set_nonblocking(false).expect("blocking");
        start_on(listener)
    }
}

/// A server that accepts connections and never says a word (no greeting, no answer): the
/// "slow server" every network step of delivery must have a deadline against. Returns its
/// URL (`scheme://127.0.0.1:port`) and how many connections it accepted so far. The
/// connections stay open until the test process ends.
pub(crate) fn silent(scheme: &str) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
            count.fetch_add(1, Ordering::SeqCst);
        }
    });
    (format!("{scheme}://127.0.0.1:{port}"), accepted)
}
