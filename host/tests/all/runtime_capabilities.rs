//! A round trip of every capability through the compiled test guest: what it records, what
//! the read-only capabilities answer, and the host-side refusals.

use funnel_host::runtime::wit::{Channel, Coupon, Event, MessageKind, MessageStatus, SentMessage, TimerFired};
use funnel_host::runtime::{Effect, Failure, HandleContext};

use crate::support::{invocation, runtime, test_guest};

fn context() -> HandleContext {
    HandleContext {
        lists: vec!["existing".into()],
        coupon: Some(Coupon { code: "VOLTA10".into(), discount_percent: 10 }),
        messages: vec![SentMessage {
            id: "m0".into(),
            tag: "earlier".into(),
            channel: Channel::Email,
            kind: MessageKind::Recovery,
            status: MessageStatus::Sent,
            queued_at_ms: 1,
            clicked: true,
            opened: false,
        }],
        has_phone: true,
        email_suppressed: false,
        phone_suppressed: false,
        send_window: None,
        pending_timers: 0,
        ..HandleContext::default()
    }
}

#[test]
fn every_capability_round_trips() {
    let runtime = runtime();
    let plugin = test_guest(&runtime);
    let outcome = plugin.handle(&invocation("roundtrip", Event::Captured), context()).expect("roundtrip works");

    let effects = &outcome.effects;
    assert_eq!(effects.len(), 8, "{effects:#?}");
    let Effect::Email(email) = &effects[0] else { panic!("first effect is the email: {effects:?}") };
    assert_eq!(email.subject, "Hi {{first_name}}", "templates are recorded unrendered");
    assert_eq!(email.text.as_deref(), Some("Back: {{checkout_url}}"));
    assert_eq!((email.tag.as_str(), email.kind), ("rt-email", MessageKind::Recovery));
    let Effect::Sms(sms) = &effects[1] else { panic!("then the SMS: {effects:?}") };
    assert_eq!((sms.tag.as_str(), sms.kind), ("rt-sms", MessageKind::Transactional));
    let Effect::Schedule { after_ms, tag, .. } = &effects[2] else { panic!("then a timer: {effects:?}") };
    assert_eq!((*after_ms, tag.as_str()), (20 * 60 * 1000, "rt-timer"));
    let Effect::Schedule { id: cancelled_id, .. } = &effects[3] else { panic!("a second timer") };
    assert_eq!(effects[4], Effect::Cancel { id: cancelled_id.clone() });
    assert_eq!(effects[5], Effect::ListAdd { name: "vip".into() });
    assert_eq!(effects[6], Effect::ListAdd { name: "temp".into() });
    assert_eq!(effects[7], Effect::ListRemove { name: "temp".into() });

    let logs: Vec<&str> = outcome.logs.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(logs[0], "event=captured now=1700000000000 lead=lead-1 email=ana@example.com");
    let report = logs[1];
    assert!(report.contains(&format!("email={}", email.id)), "send-email returned the recorded id: {report}");
    assert!(report.contains("sms=ok"), "{report}");
    assert!(report.contains(r#"lists=["existing", "vip"]"#), "lists() sees this invocation's changes: {report}");
    assert!(report.contains(r#"coupon=Some("VOLTA10:10")"#), "{report}");
    assert!(
        report.contains(r#"messages=["earlier:MessageStatus::Sent:true", "rt-email:MessageStatus::Queued:false", "rt-sms:MessageStatus::Queued:false"]"#),
        "messages() includes earlier and just-queued messages: {report}"
    );
    assert_eq!(logs[2], "hello from stdout", "stdout lands in the log");
    assert_eq!(outcome.state.as_deref(), Some(br#"{"events":1}"#.as_slice()));
    assert!(outcome.fuel_used > 0);
}

#[test]
fn timer_events_reach_the_plugin_with_tag_and_lateness() {
    let runtime = runtime();
    let plugin = test_guest(&runtime);
    let event = Event::Timer(TimerFired { id: "t1".into(), tag: "email-2".into(), late_ms: 1500 });
    let outcome = plugin.handle(&invocation("roundtrip", event), context()).expect("works");
    assert!(outcome.logs[0].text.starts_with("event=timer:email-2:1500 "), "{:?}", outcome.logs[0]);
}

#[test]
fn state_is_handed_back_on_the_next_event() {
    let runtime = runtime();
    let plugin = test_guest(&runtime);
    let mut inv = invocation("count", Event::Updated);
    inv.state = Some(br#"{"events":41}"#.to_vec());
    let outcome = plugin.handle(&inv, HandleContext::default()).expect("works");
    assert_eq!(outcome.state.as_deref(), Some(br#"{"events":42}"#.as_slice()));
}

#[test]
fn a_lead_without_phone_gets_no_sms() {
    let runtime = runtime();
    let plugin = test_guest(&runtime);
    let ctx = HandleContext { has_phone: false, ..context() };
    let outcome = plugin.handle(&invocation("roundtrip", Event::Captured), ctx).expect("works");
    assert!(outcome.logs[1].text.contains("sms=HostError::NoRecipient"), "{:?}", outcome.logs[1]);
    assert!(!outcome.effects.iter().any(|e| matches!(e, Effect::Sms(_))), "no SMS recorded");
}

#[test]
fn a_suppressed_address_is_refused_by_the_host() {
    let runtime = runtime();
    let plugin = test_guest(&runtime);
    let ctx = HandleContext { email_suppressed: true, ..context() };
    let err = plugin.handle(&invocation("roundtrip", Event::Captured), ctx).expect_err("the guest gives up");
    match err.failure {
        Failure::Rejected(message) => assert!(message.contains("Suppressed"), "{message}"),
        other => panic!("{other:?}"),
    }
}

/// A store stand-in for `unique-coupon` and `choose-variant` that takes `wait` to answer.
struct SlowServices {
    wait: std::time::Duration,
    recorded: Option<String>,
}

impl funnel_host::runtime::LeadServices for SlowServices {
    fn unique_coupon(&self) -> Result<Coupon, funnel_host::runtime::UniqueCouponRefusal> {
        std::thread::sleep(self.wait);
        Ok(Coupon { code: "ANA-7Q2X".into(), discount_percent: 15 })
    }
    fn recorded_variant(&self, _step: &str) -> Result<Option<String>, String> {
        std::thread::sleep(self.wait);
        Ok(self.recorded.clone())
    }
}

fn with_services(services: SlowServices) -> HandleContext {
    HandleContext {
        lead_id: "lead-1".into(),
        services: Some(funnel_host::runtime::Services(std::sync::Arc::new(services))),
        ..context()
    }
}

fn logged(outcome: &funnel_host::runtime::HandleOutcome) -> Vec<String> {
    outcome.logs.iter().map(|l| l.text.clone()).collect()
}

#[test]
fn unique_coupon_and_choose_variant_answer_once_per_call_and_record_the_variant_once() {
    let runtime = runtime();
    let plugin = test_guest(&runtime);
    // Each store call takes 300 ms, four of them: far past the test's 500 ms wall-clock limit,
    // which counts the plugin's own time only.
    let services = SlowServices { wait: std::time::Duration::from_millis(300), recorded: None };
    let outcome =
        plugin.handle(&invocation("unique-and-split", Event::Captured), with_services(services)).expect("runs");
    let logs = logged(&outcome);
    assert_eq!(logs[0], r#"unique=Ok("ANA-7Q2X/15")"#);
    assert_eq!(logs[2], r#"unique=Ok("ANA-7Q2X/15")"#, "the same code, without asking the store again");
    use funnel_host::domain::split::{Variant, choose};
    let both = [Variant { name: "a".into(), weight: 1 }, Variant { name: "b".into(), weight: 1 }];
    let chosen = choose("lead-1", "s", &both).expect("chosen");
    assert_eq!(logs[1], format!(r#"split=Ok("{}")"#, chosen.name), "the host's chooser decides");
    assert_eq!(logs[3], logs[1], "the same answer twice");
    assert!(
        logs[4].starts_with("bad-split=Err(") && logs[4].contains("Invalid(") && logs[4].contains("add up to 0"),
        "{}",
        logs[4]
    );
    let variants: Vec<&Effect> = outcome.effects.iter().filter(|e| matches!(e, Effect::Variant { .. })).collect();
    assert_eq!(variants, [&Effect::Variant { step: "s".into(), variant: chosen.name.clone() }], "recorded once");
    let given = outcome.unique_coupon.as_ref().map(|c| (c.code.as_str(), c.discount_percent));
    assert_eq!(given, Some(("ANA-7Q2X", 15)), "the messages of this call render it");
    assert_eq!(outcome.refusals.len(), 1, "the unusable split is the plugin's mistake: {:?}", outcome.refusals);

    // A variant recorded by an earlier event wins (and is not recorded again).
    let services = SlowServices { wait: std::time::Duration::ZERO, recorded: Some("b".into()) };
    let outcome =
        plugin.handle(&invocation("unique-and-split", Event::Captured), with_services(services)).expect("runs");
    assert_eq!(logged(&outcome)[1], r#"split=Ok("b")"#);
    assert!(!outcome.effects.iter().any(|e| matches!(e, Effect::Variant { .. })));

    // Outside the engine (no store): no unique coupon, said as `invalid` but not as a mistake.
    let outcome = plugin.handle(&invocation("unique-and-split", Event::Captured), context()).expect("runs");
    assert!(
        logged(&outcome)[0].starts_with("unique=Err(") && logged(&outcome)[0].contains("Invalid("),
        "{:?}",
        logged(&outcome)
    );
    assert_eq!(outcome.refusals.len(), 1, "only the bad split: {:?}", outcome.refusals);
}
