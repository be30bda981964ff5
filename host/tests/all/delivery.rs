//! Delivery through a real SMTP server on loopback: retries after 4xx and while the server is
//! down, 5xx bounces and suppression, and the same Message-ID across attempts.

use std::sync::Arc;

use funnel_host::delivery::smtp::SmtpTransport;
use funnel_host::domain::PlatformEventType;

use crate::db::{Db, fresh_store};
use crate::harness::{Harness, T0, lead_id};
use crate::smtp_server;

async fn harness_with_smtp(url: &str) -> Option<Harness> {
    let store = fresh_store(Db::Sqlite).await?;
    let smtp =
        SmtpTransport::new(url, "Loja <loja@example.com>", "https://funnel.test".into()).expect("smtp transport");
    let h = Harness::with_email(store, T0, Arc::new(smtp)).await;
    h.bind_test_guest("roundtrip", None, None).await;
    Some(h)
}

fn outbox_status(h: &Harness, lead: &str) -> impl std::future::Future<Output = Vec<(String, String)>> {
    let store = h.engine.store.clone();
    let lead = lead.to_string();
    async move {
        store
            .lead_snapshot(&lead)
            .await
            .expect("lead")
            .messages
            .into_iter()
            .filter(|m| m.channel == "email")
            .map(|m| (m.id, m.status))
            .collect()
    }
}

#[tokio::test]
async fn a_temporary_refusal_is_retried_and_delivered_once() {
    let (url, mailbox) = smtp_server::start();
    mailbox.refuse_temporarily.store(1, std::sync::atomic::Ordering::SeqCst);
    let Some(h) = harness_with_smtp(&url).await else { return };
    let lead = lead_id(&h.post("e1", PlatformEventType::CheckoutUpdated, "ana", None).await);
    h.settle().await;
    assert_eq!(mailbox.received().len(), 0, "451 the first time");
    h.at(31_000).await;
    let received = mailbox.received();
    assert_eq!(received.len(), 1, "delivered once after the retry");
    let status = outbox_status(&h, &lead).await;
    assert_eq!(status[0].1, "sent");
    assert!(received[0].contains(&format!("Message-ID: <{}@funnel>", status[0].0)), "{}", received[0]);
    assert!(received[0].contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"));
    assert!(received[0].contains("Subject: Hi Ana"), "{}", received[0]);
}

#[tokio::test]
async fn a_permanent_refusal_bounces_and_suppresses() {
    let (url, mailbox) = smtp_server::start();
    mailbox.unknown.lock().expect("lock").push("ghost@example.com".into());
    let Some(h) = harness_with_smtp(&url).await else { return };
    let lead = lead_id(&h.post("e1", PlatformEventType::CheckoutUpdated, "ghost", None).await);
    h.settle().await;
    assert_eq!(outbox_status(&h, &lead).await[0].1, "bounced");
    let snapshot = h.engine.store.lead_snapshot(&lead).await.expect("lead");
    assert!(snapshot.email_suppressed, "the address is suppressed");
    // The plugin's next email (its 20-minute timer) is refused by the host before any send.
    h.at(20 * 60_000).await;
    assert_eq!(mailbox.received().len(), 0, "nothing was ever delivered to a bounced address");
    assert!(h.timeline(&lead).await.iter().any(|e| e.kind == "bounced"));
}

#[tokio::test]
async fn a_server_that_is_down_then_up_gets_the_message() {
    // Reserve a port, keep nothing listening on it, start the server there later.
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let Some(h) = harness_with_smtp(&format!("smtp://127.0.0.1:{port}")).await else { return };
    let lead = lead_id(&h.post("e1", PlatformEventType::CheckoutUpdated, "ana", None).await);
    h.settle().await;
    assert_eq!(outbox_status(&h, &lead).await[0].1, "queued", "connection refused: queued for a retry");
    let mailbox = smtp_server::start_on(std::net::TcpListener::bind(("127.0.0.1", port)).expect("rebind"));
    h.at(31_000).await;
    assert_eq!(mailbox.received().len(), 1);
    assert_eq!(outbox_status(&h, &lead).await[0].1, "sent");
}

/// A tiny SMS provider on loopback: records each request body, answers with `status`.
async fn sms_gateway(status: u16) -> (String, Arc<std::sync::Mutex<Vec<String>>>) {
    use axum::routing::post;
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    let app = axum::Router::new().route(
        "/send",
        post(move |body: String| {
            let record = record.clone();
            async move {
                if let Ok(mut seen) = record.lock() {
                    seen.push(body);
                }
                axum::http::StatusCode::from_u16(status).unwrap_or(axum::http::StatusCode::OK)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/send", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

async fn harness_with_sms(url: &str, format: funnel_host::delivery::sms::SmsFormat) -> Option<Harness> {
    let store = fresh_store(Db::Sqlite).await?;
    let sms = funnel_host::delivery::sms::SmsGateway::new(url, format, "Loja").expect("gateway");
    let h = Harness::with_transports(store, T0, Arc::new(funnel_host::delivery::Discard), Arc::new(sms)).await;
    h.bind_test_guest("roundtrip", None, None).await;
    Some(h)
}

#[tokio::test]
async fn an_sms_gateway_receives_the_rendered_body() {
    let (url, seen) = sms_gateway(200).await;
    let Some(h) = harness_with_sms(&url, funnel_host::delivery::sms::SmsFormat::Json).await else { return };
    let lead = lead_id(&h.post("e1", PlatformEventType::CheckoutUpdated, "ana", None).await);
    h.settle().await;
    let requests = seen.lock().expect("lock").clone();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let body: serde_json::Value = serde_json::from_str(&requests[0]).expect("json");
    let sms_id = h
        .engine
        .store
        .lead_snapshot(&lead)
        .await
        .expect("lead")
        .messages
        .into_iter()
        .find(|m| m.channel == "sms")
        .expect("sms")
        .id;
    assert_eq!(body, serde_json::json!({"to": "+5511999990000", "body": "Hi Ana", "reference": sms_id}));
}

#[tokio::test]
async fn a_twilio_style_gateway_gets_a_form_and_a_4xx_is_permanent() {
    let (url, seen) = sms_gateway(400).await;
    let Some(h) = harness_with_sms(&url, funnel_host::delivery::sms::SmsFormat::Twilio).await else { return };
    let lead = lead_id(&h.post("e1", PlatformEventType::CheckoutUpdated, "ana", None).await);
    h.settle().await;
    assert_eq!(seen.lock().expect("lock").clone(), ["To=%2B5511999990000&From=Loja&Body=Hi+Ana"]);
    let sms = h
        .engine
        .store
        .lead_snapshot(&lead)
        .await
        .expect("lead")
        .messages
        .into_iter()
        .find(|m| m.channel == "sms")
        .expect("sms");
    assert_eq!(sms.status, "bounced");
}

#[tokio::test]
async fn a_crash_between_claim_and_send_delivers_later_with_the_same_message_id() {
    let (url, mailbox) = smtp_server::start();
    let Some(h) = harness_with_smtp(&url).await else { return };
    let lead = lead_id(&h.post("e1", PlatformEventType::CheckoutUpdated, "ana", None).await);
    // Handle the event but do not deliver: a worker claims the message, then dies.
    h.engine.scheduler.tick().await.expect("tick");
    h.engine.dispatcher.drain().await.expect("drain");
    let claimed = h.engine.store.claim_messages(h.clock_now(), 60_000, 10).await.expect("claim");
    let email = claimed.iter().find(|m| m.channel == "email").expect("the email was claimed").clone();
    drop(claimed);
    // Another worker: nothing while the dead one's lease runs, the message once it expires.
    h.at(30_000).await;
    assert!(mailbox.received().is_empty(), "the lease is honoured");
    h.at(61_000).await;
    let received = mailbox.received();
    assert_eq!(received.len(), 1);
    assert!(received[0].contains(&format!("Message-ID: <{}@funnel>", email.id)), "same Message-ID: {}", received[0]);
    assert_eq!(outbox_status(&h, &lead).await[0].1, "sent");
}

#[tokio::test]
async fn the_per_producer_rate_cap_defers_without_losing_anything() {
    let (url, mailbox) = smtp_server::start();
    let Some(mut h) = harness_with_smtp(&url).await else { return };
    let smtp = SmtpTransport::new(&url, "Loja <loja@example.com>", "https://funnel.test".into()).expect("smtp");
    h.engine.deliverer = funnel_host::delivery::Deliverer::new(
        h.engine.store.clone(),
        Arc::new(smtp),
        Arc::new(funnel_host::delivery::Discard),
        h.clock.clone(),
    )
    .with_rate_caps(None, Some(1));
    let mut leads = Vec::new();
    for who in ["ana", "bia", "caio"] {
        leads.push(lead_id(&h.post(&format!("e-{who}"), PlatformEventType::CheckoutUpdated, who, None).await));
    }
    // Each lead gets an email and an SMS: six messages, one a minute, whichever channel comes
    // first (leads are handled concurrently, so the order of their messages is not fixed).
    let sent = |h: &Harness| {
        let (store, leads) = (h.engine.store.clone(), leads.clone());
        async move {
            let mut n = 0;
            for lead in &leads {
                n += store
                    .lead_snapshot(lead)
                    .await
                    .expect("lead")
                    .messages
                    .iter()
                    .filter(|m| m.status == "sent")
                    .count();
            }
            n
        }
    };
    h.settle().await;
    assert_eq!(sent(&h).await, 1, "one message in the first minute");
    h.at(60_000).await;
    assert_eq!(sent(&h).await, 2, "SMS and email share the cap: one more in the second minute");
    for minute in 2..=6 {
        h.at(minute * 60_000).await;
    }
    assert_eq!(sent(&h).await, 6, "every message went out eventually, one a minute");
    assert_eq!(mailbox.received().len(), 3, "all three emails reached the SMTP server");
}

#[tokio::test]
async fn a_purchase_between_queue_and_send_drops_recovery_but_not_transactional() {
    let (url, mailbox) = smtp_server::start();
    let (sms_url, sms_seen) = sms_gateway(200).await;
    let Some(store) = fresh_store(Db::Sqlite).await else { return };
    let smtp = SmtpTransport::new(&url, "Loja <loja@example.com>", "https://funnel.test".into()).expect("smtp");
    let sms =
        funnel_host::delivery::sms::SmsGateway::new(&sms_url, funnel_host::delivery::sms::SmsFormat::Json, "Loja")
            .expect("sms");
    let h = Harness::with_transports(store, T0, Arc::new(smtp), Arc::new(sms)).await;
    h.bind_test_guest("roundtrip", None, None).await;
    let lead = lead_id(&h.post("e1", PlatformEventType::CheckoutUpdated, "ana", None).await);
    // The plugin queues a recovery email and a transactional SMS; the buyer pays before delivery.
    h.engine.dispatcher.drain().await.expect("drain");
    h.post("e2", PlatformEventType::OrderPaid, "ana", None).await;
    h.engine.deliverer.deliver_due().await.expect("deliver");
    let snapshot = h.engine.store.lead_snapshot(&lead).await.expect("lead");
    let first_email = snapshot.messages.iter().find(|m| m.channel == "email").expect("email");
    assert_eq!(first_email.status, "dropped");
    assert!(mailbox.received().is_empty(), "the recovery email never reached the server");
    assert_eq!(sms_seen.lock().expect("lock").len(), 1, "the transactional SMS still went");
    let dropped = h.timeline(&lead).await.into_iter().find(|e| e.kind == "dropped").expect("visible in the timeline");
    assert!(dropped.detail.contains("\"reason\":\"purchased\""), "{}", dropped.detail);
}
