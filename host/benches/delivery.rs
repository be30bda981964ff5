//! Emails per second delivered to a real SMTP server on loopback (mailin-embedded) through the
//! SMTP transport and its connection pool, one sender and sixteen at once.
//! Run with `cargo bench -p funnel-host --bench delivery`; prints one JSON object a line.

use std::sync::Arc;
use std::time::Instant;

use funnel_host::delivery::Transport;
use funnel_host::delivery::smtp::SmtpTransport;

#[path = "support/smtp_sink.rs"]
mod smtp_sink;

fn main() {
    let sink = smtp_sink::SmtpSink::start();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    runtime.block_on(async {
        let smtp = Arc::new(
            SmtpTransport::new(&sink.url, "Loja <loja@example.com>", "https://funnel.test".into()).expect("transport"),
        );
        for (senders, total) in [(1usize, 200usize), (16, 2000)] {
            let started = Instant::now();
            let before = sink.received();
            let mut tasks = Vec::new();
            for s in 0..senders {
                let smtp = smtp.clone();
                tasks.push(tokio::spawn(async move {
                    for i in (s..total).step_by(senders) {
                        smtp.send(&smtp_sink::sample_message(i)).await.expect("sent");
                    }
                }));
            }
            for t in tasks {
                t.await.expect("task");
            }
            let rate = total as f64 / started.elapsed().as_secs_f64();
            assert_eq!(sink.received() - before, total);
            println!(
                r#"{{"bench":"delivery","metric":"emails_per_s_{senders}_senders","value":{rate:.0},"unit":"1/s"}}"#
            );
        }
    });
}
