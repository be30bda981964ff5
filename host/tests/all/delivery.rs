//! Delivery through a real SMTP server on loopback, on both databases: retries after 4xx and
//! while the server is down, giving up after the last attempt, 5xx bounces and suppression,
//! send-time suppression and purchase rules, rate caps, and the same Message-ID across
//! attempts. The server records every RCPT, so "not sent" means "never tried".

use std::sync::Arc;

use funnel_host::delivery::smtp::SmtpTransport;
use funnel_host::domain::TimelineKind;
use funnel_host::domain::{Channel, MessageKind, MessageStatus, PlatformEventType};

use crate::db::{Db, TestDb, on_both};
use crate::harness::{Harness, T0, lead_id};
use crate::smtp_server;

/// An SMTP transport to the test server at `url`.
fn smtp(url: &str) -> Arc<SmtpTransport> {
    Arc::new(SmtpTransport::new(url, "Loja <loja@example.com>", "https://funnel.test".into()).expect("smtp transport"))
}

/// A fresh database and an engine sending email to the SMTP server at `url`, the test guest
/// bound in roundtrip mode (a recovery email, a transactional SMS and a 20-minute timer per
/// event).
async fn harness_with_smtp(db: Db, url: &str) -> (TestDb, Harness) {
    let (test_db, store) = TestDb::with_store(db).await;
    let h = Harness::with_email(store, T0, smtp(url)).await;
    h.bind_test_guest("roundtrip", None, None).await;
    (test_db, h)
}

on_both!(a_temporary_refusal_is_retried_and_delivered_once);
async fn a_temporary_refusal_is_retried_and_delivered_once(db: Db) {
    let (url, mailbox) = smtp_server::start();
    mailbox.refuse_temporarily.store(1, std::sync::atomic::Ordering::SeqCst);
    let (_db, h) = harness_with_smtp(db, &url).await;
    let lead = lead_id(&h.post("e1", PlatformEventType::CheckoutUpdated, "ana", None).await);
    h.settle().await;
    assert_eq!((mailbox.rcpts().len(), mailbox.received().len()), (1, 0), "{db:?}: 451 the first time");
    h.at(29_999).await;
    assert_eq!(mailbox.rcpts().len(), 1, "{db:?}: not retried before 30 s");
    h.at(30_000).await;
    let received = mailbox.received();
    assert_eq!((mailbox.rcpts().len(), received.len()), (2, 1), "{db:?}: delivered once, by the retry at 30 s");
    let email = h.message(&lead, "email").await;
    assert_eq!(email.status, MessageStatus::Sent, "{db:?}");
    assert!(received[0].contains(&format!("Message-ID: <{}@funnel>", email.id)), "{}", received[0]);
    assert!(received[0].contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"));
    assert!(received[0].contains("Subject: Hi Ana"), "{}", received[0]);
}

on_both!(a_permanent_refusal_bounces_and_suppresses);
async fn a_permanent_refusal_bounces_and_suppresses(db: Db) {
    let (url, mailbox) = smtp_server::start();
    mailbox.refuse("ghost@example.com");
    let (_db, h) = harness_with_smtp(db, &url).await;
    let lead = lead_id(&h.post("e1", PlatformEventType::CheckoutUpdated, "ghost", None).await);
    h.settle().await;
    assert_eq!(h.message(&lead, "email").await.status, MessageStatus::Bounced, "{db:?}");
    assert_eq!(mailbox.rcpts(), ["ghost@example.com"], "{db:?}: one try");
    let snapshot = h.engine.store.lead_snapshot(&lead).await.expect("lead");
    assert!(snapshot.email_suppressed, "{db:?}: the address is suppressed");
    assert!(h.timeline(&lead).await.iter().any(|e| e.kind() == TimelineKind::Bounced), "{db:?}");
    // The plugin's next email (its 20-minute timer) is refused by the host: the capability
    // answers `suppressed`, so nothing is queued and the server is never asked again.
    h.at(20 * 60_000).await;
    assert_eq!(mailbox.rcpts().len(), 1, "{db:?}: the host never tried the bounced address again");
    let emails = h.messages(&lead).await.into_iter().filter(|m| m.channel == Channel::Email).count();
    assert_eq!(emails, 1, "{db:?}: no second email was queued");
    let timeline = h.timeline(&lead).await;
    assert!(
        timeline.iter().any(|e| e.kind() == TimelineKind::Retry && e.detail().contains("Suppressed")),
        "{db:?}: the refusal is in the timeline: {timeline:#?}"
    );
}

on_both!(a_message_queued_before_an_unsubscribe_is_dropped_at_send_time);
async fn a_message_queued_before_an_unsubscribe_is_dropped_at_send_time(db: Db) {
    let (url, mailbox) = smtp_server::start();
    let (_db, h) = harness_with_smtp(db, &url).await;
    let lead = lead_id(&h.post("e1", PlatformEventType::CheckoutUpdated, "ana", None).await);
    // The plugin queues its email while the address is fine; the person unsubscribes before
    // delivery (the one-click link of an earlier message). The host checks again at send time.
    h.engine.dispatcher.drain().await.expect("drain");
    assert_eq!(h.message(&lead, "email").await.status, MessageStatus::Queued, "{db:?}");
    h.engine.store.unsubscribe_lead(&lead, T0).await.expect("unsubscribe");
    h.engine.deliverer.deliver_due().await.expect("deliver");
    assert!(mailbox.rcpts().is_empty(), "{db:?}: the server was never asked");
    assert_eq!(h.message(&lead, "email").await.status, MessageStatus::Dropped, "{db:?}");
    let dropped =
        h.timeline(&lead).await.into_iter().find(|e| e.kind() == TimelineKind::Dropped).expect("in the timeline");
    assert!(dropped.detail().contains("\"reason\":\"suppressed\""), "{db:?}: {}", dropped.detail());
    assert_eq!(h.message(&lead, "sms").await.status, MessageStatus::Sent, "{db:?}: the phone was not unsubscribed");
}

on_both!(a_server_that_is_down_then_up_gets_the_message);
async fn a_server_that_is_down_then_up_gets_the_message(db: Db) {
    // The port is held (bound, not listening) so no other test takes it while it is down.
    let reserved = smtp_server::Reserved::new();
    let (_db, h) = harness_with_smtp(db, &reserved.url).await;
    let lead = lead_id(&h.post("e1", PlatformEventType::CheckoutUpdated, "ana", None).await);
    h.settle().await;
    assert_eq!(
        h.message(&lead, "email").await.status,
        MessageStatus::Queued,
        "{db:?}: connection refused: queued for a retry"
    );
    let mailbox = reserved.start();
    h.at(30_000).await;
    assert_eq!(mailbox.received().len(), 1, "{db:?}");
    assert_eq!(h.message(&lead, "email").await.status, MessageStatus::Sent, "{db:?}");
}

on_both!(delivery_gives_up_after_its_last_attempt);
async fn delivery_gives_up_after_its_last_attempt(db: Db) {
    let (url, mailbox) = smtp_server::start();
    mailbox.refuse_temporarily.store(1000, std::sync::atomic::Ordering::SeqCst);
    let (_db, store) = TestDb::with_store(db).await;
    let h = Harness::with_email(store, T0, smtp(&url)).await;
    // One email at 20 minutes and nothing else, so every RCPT is an attempt of that email.
    let config =
        serde_json::json!({"emails": [{"after": "20m", "subject": "Volte", "html": "<p>{{checkout_url}}</p>"}]});
    h.bind_builtin("four-emails", &config, None, None).await;
    let lead = lead_id(&h.post("e1", PlatformEventType::CheckoutUpdated, "ana", None).await);
    h.settle().await;
    // Eight attempts, 30 s, 1, 2, 4, 8, 16 and 32 min apart; each exactly when due.
    let first = 20 * 60_000;
    let mut at = first;
    for (attempt, gap_s) in [0, 30, 60, 120, 240, 480, 960, 1920].into_iter().enumerate() {
        at += gap_s * 1000;
        h.at(at - 1).await;
        assert_eq!(mailbox.rcpts().len(), attempt, "{db:?}: attempt {} not before {} ms", attempt + 1, at - first);
        h.at(at).await;
        assert_eq!(mailbox.rcpts().len(), attempt + 1, "{db:?}: attempt {} at {} ms", attempt + 1, at - first);
    }
    assert_eq!(h.message(&lead, "email").await.status, MessageStatus::Failed, "{db:?}: given up after the eighth");
    let failed =
        h.timeline(&lead).await.into_iter().find(|e| e.kind() == TimelineKind::SendFailed).expect("in the timeline");
    assert!(failed.detail().contains("451"), "{db:?}: the last error is kept: {}", failed.detail());
    h.at(at + 24 * 3_600_000).await;
    assert_eq!(mailbox.rcpts().len(), 8, "{db:?}: never tried again");
    assert!(mailbox.received().is_empty(), "{db:?}");
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
                record.lock().expect("the SMS gateway's log").push(body);
                axum::http::StatusCode::from_u16(status).unwrap_or(axum::http::StatusCode::OK)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/send", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

async fn harness_with_sms(db: Db, url: &str, format: funnel_host::delivery::sms::SmsFormat) -> (TestDb, Harness) {
    let (test_db, store) = TestDb::with_store(db).await;
    let sms = funnel_host::delivery::sms::SmsGateway::new(url, format, "Loja").expect("gateway");
    let h = Harness::with_transports(store, T0, Arc::new(funnel_host::delivery::Discard), Arc::new(sms)).await;
    h.bind_test_guest("roundtrip", None, None).await;
    (test_db, h)
}

on_both!(an_sms_gateway_receives_the_rendered_body);
async fn an_sms_gateway_receives_the_rendered_body(db: Db) {
    let (url, seen) = sms_gateway(200).await;
    let (_db, h) = harness_with_sms(db, &url, funnel_host::delivery::sms::SmsFormat::Json).await;
    let lead = lead_id(&h.post("e1", PlatformEventType::CheckoutUpdated, "ana", None).await);
    h.settle().await;
    let requests = seen.lock().expect("lock").clone();
    assert_eq!(requests.len(), 1, "{db:?}: {requests:?}");
    let body: serde_json::Value = serde_json::from_str(&requests[0]).expect("json");
    let sms_id = h.message(&lead, "sms").await.id;
    assert_eq!(body, serde_json::json!({"to": "+5511999990000", "body": "Hi Ana", "reference": sms_id}), "{db:?}");
}

on_both!(a_twilio_style_gateway_gets_a_form_and_a_4xx_is_permanent);
async fn a_twilio_style_gateway_gets_a_form_and_a_4xx_is_permanent(db: Db) {
    let (url, seen) = sms_gateway(400).await;
    let (_db, h) = harness_with_sms(db, &url, funnel_host::delivery::sms::SmsFormat::Twilio).await;
    let lead = lead_id(&h.post("e1", PlatformEventType::CheckoutUpdated, "ana", None).await);
    h.settle().await;
    assert_eq!(seen.lock().expect("lock").clone(), ["To=%2B5511999990000&From=Loja&Body=Hi+Ana"], "{db:?}");
    assert_eq!(h.message(&lead, "sms").await.status, MessageStatus::Bounced, "{db:?}");
}

on_both!(a_crash_between_claim_and_send_delivers_later_with_the_same_message_id);
async fn a_crash_between_claim_and_send_delivers_later_with_the_same_message_id(db: Db) {
    let (url, mailbox) = smtp_server::start();
    let (_db, h) = harness_with_smtp(db, &url).await;
    let lead = lead_id(&h.post("e1", PlatformEventType::CheckoutUpdated, "ana", None).await);
    // Handle the event but do not deliver: a worker claims the message, then dies.
    h.engine.scheduler.tick().await.expect("tick");
    h.engine.dispatcher.drain().await.expect("drain");
    let claimed = h.engine.store.claim_messages(h.clock_now(), 60_000, 10).await.expect("claim");
    let email = claimed.iter().find(|m| m.channel == Channel::Email).expect("the email was claimed").clone();
    drop(claimed);
    // Another worker: nothing while the dead one's lease runs, the message once it expires.
    h.at(59_999).await;
    assert!(mailbox.rcpts().is_empty(), "{db:?}: the lease is honoured");
    h.at(60_000).await;
    let received = mailbox.received();
    assert_eq!((mailbox.rcpts().len(), received.len()), (1, 1), "{db:?}");
    assert!(received[0].contains(&format!("Message-ID: <{}@funnel>", email.id)), "same Message-ID: {}", received[0]);
    assert_eq!(h.message(&lead, "email").await.status, MessageStatus::Sent, "{db:?}");
}

on_both!(the_per_producer_rate_cap_defers_without_losing_anything);
async fn the_per_producer_rate_cap_defers_without_losing_anything(db: Db) {
    let (url, mailbox) = smtp_server::start();
    let (_db, mut h) = harness_with_smtp(db, &url).await;
    h.engine.deliverer = funnel_host::delivery::Deliverer::new(
        h.engine.store.clone(),
        smtp(&url),
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
    async fn sent(h: &Harness, leads: &[String]) -> usize {
        let mut n = 0;
        for lead in leads {
            n += h.messages(lead).await.iter().filter(|m| m.status == MessageStatus::Sent).count();
        }
        n
    }
    h.settle().await;
    assert_eq!(sent(&h, &leads).await, 1, "{db:?}: one message in the first minute");
    for minute in 1..=5 {
        h.at(minute * 60_000 - 1).await;
        assert_eq!(sent(&h, &leads).await, minute as usize, "{db:?}: still {minute} just before minute {minute}");
        h.at(minute * 60_000).await;
        assert_eq!(sent(&h, &leads).await, minute as usize + 1, "{db:?}: one more at minute {minute}");
    }
    h.at(10 * 60_000).await;
    assert_eq!(sent(&h, &leads).await, 6, "{db:?}: every message went out, none lost");
    assert_eq!(mailbox.received().len(), 3, "{db:?}: all three emails reached the SMTP server");
}

on_both!(a_purchase_between_queue_and_send_drops_recovery_but_not_transactional);
async fn a_purchase_between_queue_and_send_drops_recovery_but_not_transactional(db: Db) {
    let (url, mailbox) = smtp_server::start();
    let (sms_url, sms_seen) = sms_gateway(200).await;
    let (_db, store) = TestDb::with_store(db).await;
    let sms =
        funnel_host::delivery::sms::SmsGateway::new(&sms_url, funnel_host::delivery::sms::SmsFormat::Json, "Loja")
            .expect("sms");
    let h = Harness::with_transports(store, T0, smtp(&url), Arc::new(sms)).await;
    h.bind_test_guest("roundtrip", None, None).await;
    let lead = lead_id(&h.post("e1", PlatformEventType::CheckoutUpdated, "ana", None).await);
    // The plugin queues a recovery email and a transactional SMS; the buyer pays before delivery.
    h.engine.dispatcher.drain().await.expect("drain");
    h.post("e2", PlatformEventType::OrderPaid, "ana", None).await;
    h.engine.deliverer.deliver_due().await.expect("deliver");
    assert_eq!(h.message(&lead, "email").await.status, MessageStatus::Dropped, "{db:?}");
    assert!(mailbox.rcpts().is_empty(), "{db:?}: the recovery email never reached the server");
    assert_eq!(sms_seen.lock().expect("lock").len(), 1, "{db:?}: the transactional SMS still went");
    let dropped = h
        .timeline(&lead)
        .await
        .into_iter()
        .find(|e| e.kind() == TimelineKind::Dropped)
        .expect("visible in the timeline");
    assert!(dropped.detail().contains("\"reason\":\"purchased\""), "{db:?}: {}", dropped.detail());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(funnel_postgres), ignore = "PostgreSQL is not configured: set FUNNEL_TEST_POSTGRES_URL")]
async fn two_deliverers_on_postgres_send_each_message_once() {
    let (url, mailbox) = smtp_server::start();
    let (sms_url, sms_seen) = sms_gateway(200).await;
    let sms = || {
        Arc::new(
            funnel_host::delivery::sms::SmsGateway::new(&sms_url, funnel_host::delivery::sms::SmsFormat::Json, "Loja")
                .expect("sms"),
        )
    };
    let test_db = TestDb::new(Db::Postgres).await;
    let a = Harness::with_transports(test_db.store().await, T0, smtp(&url), sms()).await;
    let b = Harness::attach_with(test_db.store().await, T0, smtp(&url), sms()).await;
    a.bind_test_guest("roundtrip", None, None).await;
    let leads = 150;
    for i in 0..leads {
        a.post(&format!("e{i}"), PlatformEventType::CheckoutUpdated, &format!("lead{i}"), None).await;
    }
    a.engine.dispatcher.drain().await.expect("drain");
    assert_eq!(a.engine.store.outbox_depth().await.expect("depth"), 2 * leads, "an email and an SMS a lead");
    // Both claim from the same outbox at once, 50 rows a claim.
    let (da, db) = tokio::join!(a.engine.deliverer.deliver_due(), b.engine.deliverer.deliver_due());
    let (na, nb) = (da.expect("a delivers"), db.expect("b delivers"));
    assert_eq!(na + nb, 2 * leads as usize, "each message handled once (a {na}, b {nb})");
    assert!(na > 0 && nb > 0, "both deliverers took a share (a {na}, b {nb})");
    let ids: std::collections::HashSet<String> = mailbox
        .received()
        .iter()
        .filter_map(|m| m.lines().find_map(|l| l.strip_prefix("Message-ID: ")).map(str::to_string))
        .collect();
    assert_eq!((mailbox.received().len(), ids.len()), (leads as usize, leads as usize), "each email once");
    let sms_refs: std::collections::HashSet<String> = sms_seen
        .lock()
        .expect("lock")
        .iter()
        .map(|body| serde_json::from_str::<serde_json::Value>(body).expect("json")["reference"].to_string())
        .collect();
    assert_eq!(
        (sms_seen.lock().expect("lock").len(), sms_refs.len()),
        (leads as usize, leads as usize),
        "each SMS once"
    );
    assert_eq!(a.engine.store.outbox_depth().await.expect("depth"), 0, "nothing left behind");
}

/// An outbox message to `recipient` as the transports see it (no store needed).
fn outbox_message(channel: Channel, recipient: &str) -> funnel_host::store::outbox::OutboxMessage {
    funnel_host::store::outbox::OutboxMessage {
        id: "m1".into(),
        producer_id: "p1".into(),
        lead_id: "l1".into(),
        channel,
        kind: MessageKind::Recovery,
        tag: "t".into(),
        recipient: recipient.into(),
        subject: Some("Oi".into()),
        html: Some("<p>Oi</p>".into()),
        text: Some("Oi".into()),
        coupon: None,
        unsubscribe_token: "u1".into(),
        attempts: 0,
        queued_at: 0,
        lead_purchased: false,
        suppressed: false,
        claim: String::new(),
        send_window: None,
        contact: recipient.into(),
    }
}

/// Deadlines small enough for a test: 2 s to connect, 300 ms a step.
fn test_deadlines() -> funnel_host::delivery::Deadlines {
    funnel_host::delivery::Deadlines {
        connect: std::time::Duration::from_secs(2),
        step: std::time::Duration::from_millis(300),
    }
}

/// Run a send with a generous outer bound: without deadlines of its own, a send to a silent
/// server never ends, and the test fails here instead of hanging.
async fn send_bounded(
    transport: &dyn funnel_host::delivery::Transport,
    message: &funnel_host::store::outbox::OutboxMessage,
) -> Result<(), funnel_host::delivery::SendError> {
    tokio::time::timeout(std::time::Duration::from_secs(60), transport.send(message))
        .await
        .expect("the send gave up on its own, at its deadline (not after 60 s)")
}

#[tokio::test]
async fn an_smtp_server_that_never_greets_fails_the_send_at_its_deadline() {
    let (url, accepted) = smtp_server::silent("smtp");
    let transport = SmtpTransport::new(&url, "Loja <loja@example.com>", "https://funnel.test".into())
        .expect("smtp transport")
        .with_deadlines(test_deadlines());
    let result = send_bounded(&transport, &outbox_message(Channel::Email, "ana@example.com")).await;
    match result {
        Err(funnel_host::delivery::SendError::Temporary(why)) => {
            assert!(why.contains("timed out") && why.contains("greeting"), "names the step: {why}")
        }
        other => panic!("a temporary failure (retried with backoff), not {other:?}"),
    }
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1, "it did connect");
}

#[tokio::test]
async fn an_sms_gateway_that_never_answers_fails_the_send_at_its_deadline() {
    let (url, _accepted) = smtp_server::silent("http");
    let gateway =
        funnel_host::delivery::sms::SmsGateway::new(&url, funnel_host::delivery::sms::SmsFormat::Json, "Loja")
            .expect("gateway")
            .with_deadlines(test_deadlines());
    let result = send_bounded(&gateway, &outbox_message(Channel::Sms, "+5511999990000")).await;
    match result {
        Err(funnel_host::delivery::SendError::Temporary(why)) => assert!(why.contains("timed out"), "{why}"),
        other => panic!("a temporary failure (retried with backoff), not {other:?}"),
    }
}

on_both!(a_send_that_times_out_is_a_failed_attempt_retried_with_backoff);
async fn a_send_that_times_out_is_a_failed_attempt_retried_with_backoff(db: Db) {
    let (url, accepted) = smtp_server::silent("smtp");
    let (_test_db, store) = TestDb::with_store(db).await;
    let transport = SmtpTransport::new(&url, "Loja <loja@example.com>", "https://funnel.test".into())
        .expect("smtp transport")
        .with_deadlines(test_deadlines());
    let h = Harness::with_email(store, T0, Arc::new(transport)).await;
    h.bind_test_guest("roundtrip", None, None).await;
    let lead = lead_id(&h.post("e1", PlatformEventType::CheckoutUpdated, "ana", None).await);
    tokio::time::timeout(std::time::Duration::from_secs(60), h.settle()).await.expect("settle ends");
    assert_eq!(h.message(&lead, "email").await.status, MessageStatus::Queued, "{db:?}: waiting for its retry");
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1, "{db:?}: one attempt");
    // The retry comes with the usual backoff (30 s after the first attempt), and times out too.
    h.at(29_999).await;
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1, "{db:?}: not before 30 s");
    h.at(30_000).await;
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 2, "{db:?}: retried at 30 s");
}
