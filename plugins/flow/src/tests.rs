//! Native tests of validation and of the walk, on a fake world.

use funnel_sdk::host::Email;
use funnel_sdk::{Duration, MessageKind};

use crate::config::FlowConfig;
use crate::run::{self, Outcome, State, World};
use crate::validate;

const REFERENCE: &str = include_str!("../../../examples/flows/getall-abandoned-cart.json");

fn parse(json: &str) -> FlowConfig {
    funnel_sdk::parse(json).unwrap_or_else(|e| panic!("{e:?}"))
}

fn errors(json: &str) -> Vec<String> {
    validate::check(&parse(json), None).iter().map(|n| format!("{}: {}", n.path, n.message)).collect()
}

#[derive(Default)]
struct Fake {
    purchased: bool,
    messages: Vec<(String, bool, bool)>,
    lists: Vec<String>,
    did: Vec<String>,
}

impl World for Fake {
    fn purchased(&self) -> bool {
        self.purchased
    }
    fn messages(&self) -> Vec<(String, bool, bool)> {
        self.messages.clone()
    }
    fn lists(&self) -> Vec<String> {
        self.lists.clone()
    }
    fn send_email(&mut self, email: Email) -> Result<(), String> {
        self.did.push(format!("email {} {:?}", email.tag, email.kind));
        self.messages.push((email.tag, false, false));
        Ok(())
    }
    fn send_sms(&mut self, _body: &str, tag: &str, kind: MessageKind) -> Result<(), String> {
        self.did.push(format!("sms {tag} {kind:?}"));
        Ok(())
    }
    fn schedule(&mut self, after: Duration, tag: &str) -> Result<String, String> {
        self.did.push(format!("wait {tag} {after}"));
        Ok(format!("timer-{tag}"))
    }
    fn cancel_all(&mut self) {
        self.did.push("cancel".into());
    }
    fn add_to_list(&mut self, name: &str) -> Result<(), String> {
        self.did.push(format!("add {name}"));
        self.lists.push(name.into());
        Ok(())
    }
    fn remove_from_list(&mut self, name: &str) -> Result<(), String> {
        self.did.push(format!("remove {name}"));
        self.lists.retain(|l| l != name);
        Ok(())
    }
    fn log(&mut self, _text: &str) {}
}

#[test]
fn the_reference_funnel_is_valid() {
    assert_eq!(errors(REFERENCE), Vec::<String>::new());
    assert_eq!(crate::summary(&parse(REFERENCE)), "9 steps, starts at wait_10m, sends 3 emails and 1 SMS");
}

#[test]
fn never_clicks_nor_buys_gets_the_second_reminder_then_moves_to_inactive() {
    let flow = parse(REFERENCE);
    let mut world = Fake { lists: vec!["leads".into()], ..Fake::default() };
    let mut state = State::default();
    assert_eq!(run::walk(&flow, "wait_10m", &mut state, &mut world), Ok(Outcome::Waiting));
    assert_eq!(run::walk(&flow, "no_payment", &mut state, &mut world), Ok(Outcome::Waiting));
    assert_eq!(run::walk(&flow, "clicked", &mut state, &mut world), Ok(Outcome::Waiting));
    assert_eq!(run::walk(&flow, "bought", &mut state, &mut world), Ok(Outcome::Ended));
    assert_eq!(
        world.did,
        [
            "wait wait_10m 10m",
            "email no_payment MessageKind::Recovery",
            "wait wait_1d 1d",
            "email problems MessageKind::Recovery",
            "wait wait_1h 1h",
            "remove leads",
            "add inactive"
        ]
    );
}

#[test]
fn clicked_then_bought_gets_thanks_without_second_reminder() {
    let flow = parse(REFERENCE);
    let mut world = Fake { messages: vec![("no_payment".into(), true, false)], purchased: true, ..Fake::default() };
    let mut state = State::default();
    assert_eq!(run::walk(&flow, "clicked", &mut state, &mut world), Ok(Outcome::Waiting));
    assert_eq!(run::walk(&flow, "bought", &mut state, &mut world), Ok(Outcome::Ended));
    assert_eq!(
        world.did,
        ["wait wait_1h 1h", "email thanks MessageKind::Transactional", "sms thanks MessageKind::Transactional"]
    );
}

#[test]
fn a_purchase_jumps_at_once_cancelling_the_wait() {
    let flow = parse(REFERENCE);
    let mut world = Fake::default();
    let mut state = State::default();
    run::walk(&flow, "wait_10m", &mut state, &mut world).expect("walks");
    assert_eq!(run::jump(&flow, "thanks", &mut state, &mut world), Ok(Outcome::Ended));
    assert_eq!(
        world.did,
        [
            "wait wait_10m 10m",
            "cancel",
            "email thanks MessageKind::Transactional",
            "sms thanks MessageKind::Transactional"
        ]
    );
}

#[test]
fn each_config_error_names_its_path() {
    let e = errors(r#"{"steps": {"a": {"end": true}}}"#);
    assert!(e.contains(&"start: missing: name the first step".to_string()), "{e:?}");
    let e = errors(r#"{"start": "a", "steps": {"a": {"wait": "1m", "next": "nope"}}}"#);
    assert_eq!(e, [r#"steps.a.next: unknown step "nope""#]);
    let e = errors(r#"{"start": "a", "steps": {"a": {"if": {"clicked": "nope"}, "then": "end", "else": "end"}}}"#);
    assert_eq!(e, [r#"steps.a.if.clicked: "nope" is not an email step"#]);
    let e = errors(r#"{"start": "a", "steps": {"a": {"wait": "1m", "next": "end"}, "orphan": {"end": true}}}"#);
    assert_eq!(e, ["steps.orphan: unreachable from start (or on_purchase, on_click, on_unsubscribe)"]);
    let e = errors(r#"{"start": "a", "steps": {"a": {"wait": "1m", "list": {"add": "x"}, "next": "end"}}}"#);
    assert_eq!(e, ["steps.a: a step has exactly one action (email and sms may go together); found wait, list"]);
    let e = errors(
        r#"{"start": "a", "steps": {"a": {"list": {"add": "x"}, "next": "b"}, "b": {"if": "purchased", "then": "end", "else": "a"}}}"#,
    );
    assert_eq!(e, ["steps.b.if: loop a -> b -> a never waits"]);
    let e = errors(r#"{"start": "a", "steps": {"a": {"wait": "0s", "next": "end"}}}"#);
    assert_eq!(e, ["steps.a.wait: must be longer than 0"]);
    let e = errors(r#"{"start": "a", "steps": {"a": {"list": {"add": "x"}}}}"#);
    assert_eq!(e, [r#"steps.a.next: missing: name the next step, or "end""#]);
    let e =
        errors(r#"{"start": "a", "steps": {"a": {"if": {"all": [{"opened": "a"}]}, "then": "end", "else": "end"}}}"#);
    assert_eq!(e, [r#"steps.a.if.all[0].opened: "a" is not an email step"#]);
}

#[test]
fn a_loop_through_a_wait_is_fine() {
    let e = errors(
        r#"{"start": "a", "steps": {"a": {"wait": "1h", "next": "b"}, "b": {"if": "purchased", "then": "end", "else": "a"}}}"#,
    );
    assert_eq!(e, Vec::<String>::new());
}

#[test]
fn coupons_need_product_plan_and_coupon() {
    let flow = parse(
        r#"{"start": "a", "steps": {"a": {"email": {"subject": "s", "html": "h", "coupon": true}, "next": "end"}}}"#,
    );
    let e = validate::check(&flow, Some("coupons need a binding with a product and a plan"));
    assert_eq!(e[0].path, "steps.a.email.coupon");
    assert!(validate::check(&flow, None).is_empty());
}
