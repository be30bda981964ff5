//! A real SMTP server on loopback (mailin-embedded) that counts the messages it accepts: what
//! the delivery figures of the benches are measured against.

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use funnel_host::store::outbox::OutboxMessage;
use mailin_embedded::response::OK;
use mailin_embedded::{Handler, Response, Server};

#[derive(Clone)]
struct Count(Arc<AtomicUsize>);

impl Handler for Count {
    fn data_end(&mut self) -> Response {
        self.0.fetch_add(1, Ordering::Relaxed);
        OK
    }
}

/// A running sink: its `smtp://` URL and how many messages it has accepted.
pub(crate) struct SmtpSink {
    pub url: String,
    received: Arc<AtomicUsize>,
}

impl SmtpSink {
    /// Start the server on a free loopback port (32 connection threads), for the life of the
    /// process.
    pub(crate) fn start() -> SmtpSink {
        let received = Arc::new(AtomicUsize::new(0));
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let handler = Count(received.clone());
        std::thread::spawn(move || {
            let mut server = Server::new(handler);
            server.with_num_threads(32).with_tcp_listener(listener);
            let _ = server.serve();
        });
        SmtpSink { url: format!("smtp://127.0.0.1:{port}"), received }
    }

    pub(crate) fn received(&self) -> usize {
        self.received.load(Ordering::Relaxed)
    }
}

/// A typical recovery email, the `i`th of a run.
pub(crate) fn sample_message(i: usize) -> OutboxMessage {
    OutboxMessage {
        id: format!("bench-{i}"),
        producer_id: "p".into(),
        lead_id: "l".into(),
        channel: funnel_host::domain::Channel::Email,
        kind: funnel_host::domain::MessageKind::Recovery,
        tag: "email-1".into(),
        recipient: format!("lead{i}@example.com"),
        subject: Some("Ana, seu pedido está esperando".into()),
        html: Some("<p>Oi Ana, <a href=\"https://funnel.test/r/0123456789abcdef\">volte</a></p>".into()),
        text: Some("Oi Ana, volte: https://funnel.test/r/0123456789abcdef".into()),
        coupon: None,
        unsubscribe_token: "fedcba9876543210".into(),
        attempts: 0,
        queued_at: 0,
        lead_purchased: false,
        suppressed: false,
        claim: String::new(),
        send_window: None,
        contact: format!("lead{i}@example.com"),
    }
}
