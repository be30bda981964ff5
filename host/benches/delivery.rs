//! Emails per second delivered to a real SMTP server on loopback (mailin-embedded) through the
//! SMTP transport and its connection pool, one sender and sixteen at once.
//! Run with `cargo bench -p funnel-host --bench delivery`; prints one JSON object a line.

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use funnel_host::delivery::Transport;
use funnel_host::delivery::smtp::SmtpTransport;
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

fn message(i: usize) -> OutboxMessage {
    OutboxMessage {
        id: format!("bench-{i}"),
        producer_id: "p".into(),
        lead_id: "l".into(),
        channel: "email".into(),
        kind: "recovery".into(),
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
    }
}

fn main() {
    let received = Arc::new(AtomicUsize::new(0));
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let handler = Count(received.clone());
    std::thread::spawn(move || {
        let mut server = Server::new(handler);
        server.with_num_threads(32).with_tcp_listener(listener);
        let _ = server.serve();
    });
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    runtime.block_on(async {
        let smtp = Arc::new(
            SmtpTransport::new(
                &format!("smtp://127.0.0.1:{port}"),
                "Loja <loja@example.com>",
                "https://funnel.test".into(),
            )
            .expect("transport"),
        );
        for (senders, total) in [(1usize, 200usize), (16, 2000)] {
            let started = Instant::now();
            let before = received.load(Ordering::Relaxed);
            let mut tasks = Vec::new();
            for s in 0..senders {
                let smtp = smtp.clone();
                tasks.push(tokio::spawn(async move {
                    for i in (s..total).step_by(senders) {
                        smtp.send(&message(i)).await.expect("sent");
                    }
                }));
            }
            for t in tasks {
                t.await.expect("task");
            }
            let rate = total as f64 / started.elapsed().as_secs_f64();
            assert_eq!(received.load(Ordering::Relaxed) - before, total);
            println!(
                r#"{{"bench":"delivery","metric":"emails_per_s_{senders}_senders","value":{rate:.0},"unit":"1/s"}}"#
            );
        }
    });
}
