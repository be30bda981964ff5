//! Native tests: config loading and validation (every error with its path, the reference
//! example passing) and the run's decisions on a fake [`World`].

use funnel_sdk::host::Email;
use funnel_sdk::{BindingContext, Coupon, Duration, Event, LogLevel, MessageKind, Scope, TimerFired};

use crate::config::{self, Condition, FlowConfig, RawConfig};
use crate::run::{self, Outcome, Seen, State, UniqueCoupon, World};

const REFERENCE: &str = include_str!("../../../examples/flows/getall-abandoned-cart.json");

fn raw(json: &str) -> RawConfig {
    funnel_sdk::parse(json).unwrap_or_else(|e| panic!("not JSON: {e:?}"))
}

fn flow(json: &str) -> FlowConfig {
    config::load(&raw(json)).unwrap_or_else(|e| panic!("{e:?}"))
}

fn binding(product: Option<&str>, plan: Option<&str>, coupon: bool) -> BindingContext {
    BindingContext {
        scope: Scope { product_id: product.map(str::to_string), plan_id: plan.map(str::to_string) },
        coupon: coupon.then(|| Coupon { code: "VOLTA10".into(), discount_percent: 10 }),
    }
}

/// `path: message` of every error for a binding of all products.
fn errors(json: &str) -> Vec<String> {
    errors_for(json, &binding(None, None, false))
}

fn errors_for(json: &str, binding: &BindingContext) -> Vec<String> {
    match crate::check(&raw(json), binding) {
        Ok(_) => Vec::new(),
        Err(notes) => notes.iter().map(|n| format!("{}: {}", n.path, n.message)).collect(),
    }
}

/// A one-step flow whose start step is `step` (JSON), for rules about a single step.
fn one_step(step: &str) -> String {
    format!(r#"{{"start": "a", "steps": {{"a": {step}}}}}"#)
}

// ---------------------------------------------------------------- validation

#[test]
fn the_reference_funnel_is_valid_and_summarized() {
    let report = crate::check(&raw(REFERENCE), &binding(None, None, false));
    let remarks = report.unwrap_or_else(|e| panic!("{e:?}"));
    assert!(remarks.is_empty(), "valid, with no remarks: {remarks:?}");
    assert_eq!(crate::summary(&flow(REFERENCE)), "9 steps, starts at wait_10m, sends 3 emails and 1 SMS");
}

#[test]
fn the_reference_funnel_uses_the_templates_and_a_transactional_thank_you() {
    let f = flow(REFERENCE);
    let thanks = f.steps.get("thanks").and_then(|s| s.email.as_ref()).expect("thanks email");
    assert_eq!(thanks.kind, config::Kind::Transactional);
    assert_eq!(f.steps.get("thanks").and_then(|s| s.sms.as_ref()).map(|s| s.kind), Some(config::Kind::Transactional));
    for id in ["no_payment", "problems"] {
        let email = f.steps.get(id).and_then(|s| s.email.as_ref()).expect("email step");
        assert!(email.html.contains("{{checkout_url}}") && email.html.contains("{{first_name}}"), "{id}");
        assert!(email.text.as_deref().is_some_and(|t| t.contains("{{checkout_url}}")), "{id} has a text body");
        assert_eq!(email.kind, config::Kind::Recovery);
    }
}

#[test]
fn summary_counts_what_is_there() {
    let f = flow(&one_step(r#"{"end": true}"#));
    assert_eq!(crate::summary(&f), "1 step, starts at a, sends no messages");
    let f = flow(
        r#"{"start": "a", "steps": {"a": {"sms": {"body": "hi"}, "next": "b"}, "b": {"email": {"subject": "s", "html": "h"}, "next": "end"}}}"#,
    );
    assert_eq!(crate::summary(&f), "2 steps, starts at a, sends 1 email and 1 SMS");
}

#[test]
fn start_missing_or_unknown() {
    assert_eq!(errors(r#"{"steps": {"a": {"end": true}}}"#), ["start: missing: name the first step"]);
    assert_eq!(errors(r#"{"start": "b", "steps": {"a": {"end": true}}}"#), [r#"start: unknown step "b""#]);
}

#[test]
fn unknown_targets_anywhere() {
    assert_eq!(errors(&one_step(r#"{"wait": "1m", "next": "nope"}"#)), [r#"steps.a.next: unknown step "nope""#]);
    assert_eq!(
        errors(&one_step(r#"{"if": "purchased", "then": "nope", "else": "nada"}"#)),
        [r#"steps.a.then: unknown step "nope""#, r#"steps.a.else: unknown step "nada""#]
    );
    assert_eq!(
        errors(
            r#"{"start": "a", "on_purchase": "thx", "on_click": "end", "steps": {"a": {"wait": "1m", "next": "end"}}}"#
        ),
        [r#"on_purchase: unknown step "thx""#]
    );
}

#[test]
fn unreachable_steps_are_named() {
    assert_eq!(
        errors(r#"{"start": "a", "steps": {"a": {"wait": "1m", "next": "end"}, "orphan": {"end": true}}}"#),
        ["steps.orphan: unreachable from start (or on_purchase, on_click, on_unsubscribe)"]
    );
    // Jump targets count as entries.
    assert_eq!(
        errors(
            r#"{"start": "a", "on_unsubscribe": "bye", "steps": {"a": {"wait": "1m", "next": "end"}, "bye": {"end": true}}}"#
        ),
        Vec::<String>::new()
    );
}

#[test]
fn a_step_has_exactly_one_action() {
    assert_eq!(
        errors(&one_step(r#"{"wait": "1m", "list": {"add": "x"}, "next": "end"}"#)),
        ["steps.a: a step has exactly one action (email and sms may go together); found wait, list"]
    );
    assert_eq!(
        errors(&one_step(r#"{"next": "end"}"#)),
        ["steps.a: a step has exactly one action (email and sms may go together); found none"]
    );
    let both = r#"{"email": {"subject": "s", "html": "h"}, "sms": {"body": "b"}, "next": "end"}"#;
    assert_eq!(errors(&one_step(both)), Vec::<String>::new());
}

#[test]
fn a_loop_without_a_wait_is_refused_at_a_step_in_it() {
    assert_eq!(
        errors(
            r#"{"start": "a", "steps": {"a": {"list": {"add": "x"}, "next": "b"}, "b": {"list": {"add": "y"}, "next": "a"}}}"#
        ),
        ["steps.b.next: loop a -> b -> a never waits"]
    );
    assert_eq!(
        errors(
            r#"{"start": "a", "steps": {"a": {"list": {"add": "x"}, "next": "b"}, "b": {"if": "purchased", "then": "end", "else": "a"}}}"#
        ),
        ["steps.b.else: loop a -> b -> a never waits"]
    );
    assert_eq!(
        errors(&one_step(r#"{"if": "clicked_any", "then": "a", "else": "end"}"#)),
        ["steps.a.then: loop a -> a never waits"]
    );
}

#[test]
fn a_loop_through_a_wait_is_fine() {
    let e = errors(
        r#"{"start": "a", "steps": {"a": {"wait": "1h", "next": "b"}, "b": {"if": "purchased", "then": "end", "else": "a"}}}"#,
    );
    assert_eq!(e, Vec::<String>::new());
}

#[test]
fn click_and_open_conditions_must_name_an_email_step() {
    assert_eq!(
        errors(&one_step(r#"{"if": {"clicked": "nope"}, "then": "end", "else": "end"}"#)),
        [r#"steps.a.if.clicked: "nope" is not an email step"#]
    );
    assert_eq!(
        errors(&one_step(r#"{"if": {"all": ["purchased", {"not": {"opened": "a"}}]}, "then": "end", "else": "end"}"#)),
        [r#"steps.a.if.all[1].not.opened: "a" is not an email step"#]
    );
    // An SMS-only step sends no email to click in.
    let json = r#"{"start": "s", "steps": {"s": {"sms": {"body": "b"}, "next": "c"},
                   "c": {"if": {"any": [{"clicked": "s"}]}, "then": "end", "else": "end"}}}"#;
    assert_eq!(errors(json), [r#"steps.c.if.any[0].clicked: "s" is not an email step"#]);
}

#[test]
fn conditions_that_do_not_parse_say_where() {
    assert_eq!(
        errors(&one_step(r#"{"if": {"all": ["purchased", "bought"]}, "then": "end", "else": "end"}"#))[0],
        r#"steps.a.if.all[1]: unknown condition "bought": use "purchased", "clicked_any", or one of {"clicked": STEP}, {"opened": STEP}, {"in_list": NAME}, {"all": [...]}, {"any": [...]}, {"not": ...}"#
    );
    assert_eq!(
        errors(&one_step(r#"{"if": {"clicked": "x", "opened": "y"}, "then": "end", "else": "end"}"#)),
        ["steps.a.if: a condition object has exactly one key; found clicked, opened"]
    );
    assert_eq!(
        errors(&one_step(r#"{"if": {"any": []}, "then": "end", "else": "end"}"#)),
        ["steps.a.if.any: must list at least one condition"]
    );
    assert_eq!(
        errors(&one_step(r#"{"if": {"in_list": 3}, "then": "end", "else": "end"}"#)),
        ["steps.a.if.in_list: must be a list name (a string)"]
    );
    assert_eq!(
        errors(&one_step(r#"{"if": "clicked", "then": "end", "else": "end"}"#)),
        [r#"steps.a.if: "clicked" needs an argument: {"clicked": ...}"#]
    );
}

#[test]
fn missing_next_then_or_else() {
    assert_eq!(
        errors(&one_step(r#"{"list": {"add": "x"}}"#)),
        [r#"steps.a.next: missing: name the next step, or "end""#]
    );
    assert_eq!(
        errors(&one_step(r#"{"if": "purchased", "then": "end"}"#)),
        [r#"steps.a.else: missing: name the step to go to, or "end""#]
    );
    assert_eq!(
        errors(&one_step(r#"{"if": "purchased", "then": "end", "else": "end", "next": "end"}"#)),
        ["steps.a.next: an if step goes on by then/else, not next"]
    );
    assert_eq!(
        errors(&one_step(r#"{"end": true, "next": "end"}"#)),
        ["steps.a.next: an end step goes nowhere: remove this"]
    );
}

#[test]
fn empty_texts_and_a_zero_wait() {
    assert_eq!(
        errors(&one_step(r#"{"email": {"subject": " ", "html": ""}, "sms": {"body": ""}, "next": "end"}"#)),
        [
            "steps.a.email.subject: must not be empty",
            "steps.a.email.html: must not be empty",
            "steps.a.sms.body: must not be empty"
        ]
    );
    assert_eq!(errors(&one_step(r#"{"wait": "0m", "next": "end"}"#)), ["steps.a.wait: must be longer than 0"]);
}

#[test]
fn end_is_a_reserved_step_id() {
    let e = errors(r#"{"start": "a", "steps": {"a": {"wait": "1m", "next": "end"}, "end": {"end": true}}}"#);
    assert_eq!(e, [r#"steps.end: "end" is reserved (as a target it ends the run): rename this step"#]);
}

#[test]
fn list_actions_take_exactly_one_operation() {
    assert_eq!(
        errors(&one_step(r#"{"list": {"add": "x", "remove": "y"}, "next": "end"}"#)),
        ["steps.a.list: use exactly one of add, remove or move"]
    );
    assert_eq!(
        errors(&one_step(r#"{"list": {"move": {"to": ""}}, "next": "end"}"#)),
        ["steps.a.list.move.to: must name a list"]
    );
    assert_eq!(
        errors(&one_step(r#"{"list": {"move": {"from": "a", "to": "b"}}, "next": "end"}"#)),
        Vec::<String>::new()
    );
}

#[test]
fn unknown_fields_and_bad_values_are_errors_with_paths() {
    let e = errors(r#"{"start": "a", "steps": {"a": {"end": true}}, "on_buy": "a"}"#);
    assert_eq!(
        e,
        [
            "on_buy: unknown field \"on_buy\", expected one of start, on_purchase, on_click, on_unsubscribe, coupon_line, steps"
        ]
    );
    let e = errors(&one_step(r#"{"wiat": "1m", "next": "end"}"#));
    assert_eq!(e.len(), 1);
    assert!(e[0].starts_with("steps.a.wiat: unknown field `wiat`"), "{e:?}");
    let e = errors(&one_step(r#"{"email": {"subject": "s", "html": "h", "kind": "promo"}, "next": "end"}"#));
    assert!(e[0].starts_with("steps.a.email.kind: unknown variant `promo`"), "{e:?}");
    let e = errors(&one_step(r#"{"wait": "10 minutes", "next": "end"}"#));
    assert!(e[0].starts_with(r#"steps.a.wait: invalid duration "10 minutes""#), "{e:?}");
    assert_eq!(errors("[]"), [r#": a flow config is a JSON object with "start" and "steps""#]);
    assert_eq!(errors(r#"{"start": "a"}"#), ["steps: missing: a flow needs its steps, by id"]);
}

#[test]
fn every_problem_is_reported_at_once() {
    // Two steps that do not load, a bad target, a zero wait, an orphan and a loop elsewhere:
    // all reported, and the steps behind a broken one are not called unreachable.
    let json = r#"{"start": "a", "steps": {
        "a": {"wait": "soon", "next": "b"},
        "b": {"email": {"subject": "s", "html": "h", "colour": "red"}, "next": "c"},
        "c": {"wait": "0s", "next": "d"},
        "d": {"list": {"add": "x"}, "next": "nope"},
        "orphan": {"list": {"add": "y"}, "next": "orphan2"},
        "orphan2": {"if": "purchased", "then": "end", "else": "orphan"}}}"#;
    assert_eq!(
        errors(json),
        [
            r#"steps.a.wait: invalid duration "soon": use a whole number followed by s, m, h or d, like "20m", "5h" or "1h30m""#,
            "steps.b.email.colour: unknown field `colour`, expected one of `subject`, `html`, `text`, `kind`, `coupon`",
            "steps.c.wait: must be longer than 0",
            r#"steps.d.next: unknown step "nope""#,
            "steps.orphan: unreachable from start (or on_purchase, on_click, on_unsubscribe)",
            "steps.orphan2: unreachable from start (or on_purchase, on_click, on_unsubscribe)",
            "steps.orphan2.else: loop orphan -> orphan2 -> orphan never waits",
        ]
    );
}

#[test]
fn coupons_need_a_product_a_plan_and_a_registered_coupon() {
    let json = one_step(r#"{"email": {"subject": "s", "html": "h", "coupon": true}, "next": "end"}"#);
    let e = errors_for(&json, &binding(Some("p1"), None, false));
    assert_eq!(e, ["steps.a.email.coupon: coupons need a binding whose scope names a product and a plan"]);
    let e = errors_for(&json, &binding(Some("p1"), Some("plan1"), false));
    assert_eq!(e, ["steps.a.email.coupon: no coupon is registered for this product and plan: register one first"]);
    let e = errors_for(&json, &binding(Some("p1"), Some("plan1"), true));
    assert_eq!(e, Vec::<String>::new(), "without coupon_line the code alone goes in: no word of ours");
    let with_line = json.replacen('{', r#"{"coupon_line": "Use o cupom {{coupon_code}}.", "#, 1);
    assert_eq!(errors_for(&with_line, &binding(Some("p1"), Some("plan1"), true)), Vec::<String>::new());
}

#[test]
fn a_recovery_message_after_a_purchase_gets_a_remark() {
    let json = r#"{"start": "a", "on_purchase": "thanks", "steps": {"a": {"wait": "1h", "next": "end"},
                   "thanks": {"email": {"subject": "Thanks", "html": "<p>Thanks</p>"}, "next": "end"}}}"#;
    let remarks = crate::check(&raw(json), &binding(None, None, false)).expect("valid");
    assert_eq!(remarks.len(), 1);
    assert_eq!(remarks[0].path, "steps.thanks.email.kind");
}

#[test]
fn conditions_load_into_their_tree() {
    let f = flow(&one_step(
        r#"{"if": {"any": ["purchased", {"not": {"in_list": "vip"}}, "clicked_any"]}, "then": "end", "else": "end"}"#,
    ));
    assert_eq!(
        f.steps.get("a").and_then(|s| s.condition.clone()),
        Some(Condition::Any(vec![
            Condition::Purchased,
            Condition::Not(Box::new(Condition::InList("vip".into()))),
            Condition::ClickedAny
        ]))
    );
}

// ---------------------------------------------------------------- the run

/// A host in memory: what the lead did, and a record of every effect.
#[derive(Default)]
struct Fake {
    purchased: bool,
    messages: Vec<Seen>,
    lists: Vec<String>,
    coupon: bool,
    /// What `unique-coupon` answers (`NoSource` when unset).
    unique: Option<UniqueCoupon>,
    /// The variant the host picks at every split (the first when unset).
    variant: Option<String>,
    refuse_email: bool,
    timers: usize,
    emails: Vec<Email>,
    did: Vec<String>,
    logs: Vec<(LogLevel, String)>,
}

impl Fake {
    fn click(&mut self, tag: &str) {
        for m in self.messages.iter_mut().filter(|m| m.tag == tag) {
            m.clicked = true;
        }
    }
    /// Drain the effects so far.
    fn take(&mut self) -> Vec<String> {
        std::mem::take(&mut self.did)
    }
}

fn kind_name(kind: MessageKind) -> &'static str {
    match kind {
        MessageKind::Recovery => "Recovery",
        MessageKind::Transactional => "Transactional",
    }
}

impl World for Fake {
    fn purchased(&self) -> bool {
        self.purchased
    }
    fn messages(&self) -> Vec<Seen> {
        self.messages.clone()
    }
    fn lists(&self) -> Vec<String> {
        self.lists.clone()
    }
    fn has_coupon(&self) -> bool {
        self.coupon
    }
    fn unique_coupon(&mut self) -> UniqueCoupon {
        self.unique.clone().unwrap_or(UniqueCoupon::NoSource)
    }
    fn choose_variant(&mut self, step: &str, variants: &[crate::config::SplitVariant]) -> Result<String, String> {
        let chosen = self.variant.clone().or_else(|| variants.first().map(|v| v.name.clone())).ok_or("no variants")?;
        self.did.push(format!("split {step} {chosen}"));
        Ok(chosen)
    }
    fn send_email(&mut self, email: &Email) -> Result<(), String> {
        if self.refuse_email {
            return Err("suppressed".into());
        }
        self.did.push(format!("email {} {}", email.tag, kind_name(email.kind)));
        self.messages.push(Seen { tag: email.tag.clone(), clicked: false, opened: false });
        self.emails.push(email.clone());
        Ok(())
    }
    fn send_sms(&mut self, _body: &str, tag: &str, kind: MessageKind) -> Result<(), String> {
        self.did.push(format!("sms {tag} {}", kind_name(kind)));
        self.messages.push(Seen { tag: tag.into(), clicked: false, opened: false });
        Ok(())
    }
    fn schedule(&mut self, after: Duration, tag: &str) -> Result<String, String> {
        self.timers += 1;
        self.did.push(format!("wait {tag} {after}"));
        Ok(format!("t{}", self.timers))
    }
    fn cancel(&mut self, timer_id: &str) {
        self.did.push(format!("cancel {timer_id}"));
    }
    fn add_to_list(&mut self, name: &str) -> Result<(), String> {
        self.did.push(format!("add {name}"));
        if !self.lists.iter().any(|l| l == name) {
            self.lists.push(name.into());
        }
        Ok(())
    }
    fn remove_from_list(&mut self, name: &str) -> Result<(), String> {
        self.did.push(format!("remove {name}"));
        self.lists.retain(|l| l != name);
        Ok(())
    }
    fn log(&mut self, level: LogLevel, text: &str) {
        self.logs.push((level, text.to_string()));
    }
}

/// A lead going through one flow on a fake host.
struct Run {
    flow: FlowConfig,
    state: State,
    world: Fake,
}

impl Run {
    fn new(json: &str) -> Self {
        Run { flow: flow(json), state: State::default(), world: Fake::default() }
    }
    fn event(&mut self, event: Event) -> Result<Outcome, String> {
        let outcome = run::on_event(&self.flow, &event, &mut self.state, &mut self.world);
        // The host keeps state as JSON between events: make the run go through that too.
        let stored = serde_json::to_vec(&self.state).expect("state serializes");
        self.state = serde_json::from_slice(&stored).expect("state parses");
        outcome
    }
    /// The pending timer fires.
    fn fire(&mut self) -> Result<Outcome, String> {
        let id = self.state.timer.clone().expect("a pending timer");
        let tag = self.state.waiting_at.clone().unwrap_or_default();
        self.event(Event::Timer(TimerFired { id, tag, late_ms: 0 }))
    }
}

#[test]
fn never_clicks_nor_buys_gets_the_second_reminder_then_moves_to_inactive() {
    let mut run = Run::new(REFERENCE);
    run.world.lists = vec!["leads".into(), "inactive".into()];
    assert_eq!(run.event(Event::Captured), Ok(Outcome::Waiting));
    assert_eq!(run.world.take(), ["wait wait_10m 10m"]);
    assert_eq!(run.fire(), Ok(Outcome::Waiting));
    assert_eq!(run.world.take(), ["email no_payment Recovery", "wait wait_1d 1d"]);
    assert_eq!(run.fire(), Ok(Outcome::Waiting));
    assert_eq!(run.world.take(), ["email problems Recovery", "wait wait_1h 1h"]);
    assert_eq!(run.fire(), Ok(Outcome::Ended));
    assert_eq!(run.world.take(), ["remove leads", "add inactive"], "a move without from leaves every other list");
    assert_eq!(run.world.lists, ["inactive"]);
}

#[test]
fn clicks_the_first_email_skips_the_second_and_buys() {
    let mut run = Run::new(REFERENCE);
    run.event(Event::Captured).expect("starts");
    run.fire().expect("first email");
    run.world.click("no_payment");
    // A click with no on_click only changes what conditions see.
    assert_eq!(run.event(Event::Clicked("m1".into())), Ok(Outcome::Waiting));
    run.world.take();
    assert_eq!(run.fire(), Ok(Outcome::Waiting));
    assert_eq!(run.world.take(), ["wait wait_1h 1h"]);
    run.world.purchased = true;
    // Bought just as the last wait ends: `if purchased` leads to the thank-you.
    assert_eq!(run.fire(), Ok(Outcome::Ended));
    assert_eq!(run.world.take(), ["email thanks Transactional", "sms thanks Transactional"]);
}

#[test]
fn a_purchase_jumps_at_once_cancelling_the_wait() {
    let mut run = Run::new(REFERENCE);
    run.event(Event::Captured).expect("starts");
    run.world.take();
    run.world.purchased = true;
    assert_eq!(run.event(Event::Purchased(None)), Ok(Outcome::Ended));
    assert_eq!(run.world.take(), ["cancel t1", "email thanks Transactional", "sms thanks Transactional"]);
}

#[test]
fn a_purchase_without_on_purchase_keeps_waiting_and_conditions_see_it() {
    let json = r#"{"start": "w", "steps": {"w": {"wait": "1h", "next": "b"},
                   "b": {"if": "purchased", "then": "yes", "else": "end"}, "yes": {"list": {"add": "buyers"}, "next": "end"}}}"#;
    let mut run = Run::new(json);
    run.event(Event::Captured).expect("starts");
    run.world.purchased = true;
    assert_eq!(run.event(Event::Purchased(None)), Ok(Outcome::Waiting));
    assert_eq!(run.state.timer.as_deref(), Some("t1"), "the wait goes on");
    assert_eq!(run.fire(), Ok(Outcome::Ended));
    assert_eq!(run.world.take(), ["wait w 1h", "add buyers"]);
}

#[test]
fn on_purchase_and_on_click_jump_once_per_run() {
    let json = r#"{"start": "w", "on_purchase": "thx", "on_click": "hot", "steps": {
        "w": {"wait": "1d", "next": "end"},
        "hot": {"wait": "2h", "next": "nudge"},
        "nudge": {"email": {"subject": "Still there?", "html": "<p>{{checkout_url}}</p>"}, "next": "end"},
        "thx": {"email": {"subject": "Thanks", "html": "<p>Thanks</p>", "kind": "transactional"}, "next": "later"},
        "later": {"wait": "7d", "next": "end"}}}"#;
    let mut run = Run::new(json);
    run.event(Event::Captured).expect("starts");
    assert_eq!(run.event(Event::Clicked("m1".into())), Ok(Outcome::Waiting));
    assert_eq!(run.event(Event::Clicked("m1".into())), Ok(Outcome::Waiting));
    assert_eq!(run.world.take(), ["wait w 1d", "cancel t1", "wait hot 2h"], "the second click changes nothing");
    assert_eq!(run.event(Event::Purchased(None)), Ok(Outcome::Waiting));
    assert_eq!(run.event(Event::Purchased(None)), Ok(Outcome::Waiting));
    assert_eq!(run.world.take(), ["cancel t2", "email thx Transactional", "wait later 7d"], "one thank-you");
}

#[test]
fn a_stale_timer_is_ignored() {
    let mut run = Run::new(REFERENCE);
    run.event(Event::Captured).expect("starts");
    run.world.take();
    let stale = Event::Timer(TimerFired { id: "t0".into(), tag: "wait_10m".into(), late_ms: 5 });
    assert_eq!(run.event(stale), Ok(Outcome::Waiting));
    assert_eq!(run.world.take(), Vec::<String>::new());
    assert_eq!(run.state.timer.as_deref(), Some("t1"));
}

#[test]
fn unsubscribe_ends_the_run_unless_handled() {
    let mut run = Run::new(REFERENCE);
    run.event(Event::Captured).expect("starts");
    assert_eq!(run.event(Event::Unsubscribed), Ok(Outcome::Ended));

    let json = r#"{"start": "w", "on_unsubscribe": "gone", "steps": {"w": {"wait": "1d", "next": "end"},
                   "gone": {"list": {"move": {"from": "leads", "to": "unsubscribed"}}, "next": "end"}}}"#;
    let mut run = Run::new(json);
    run.world.lists = vec!["leads".into(), "vip".into()];
    run.event(Event::Captured).expect("starts");
    run.world.take();
    assert_eq!(run.event(Event::Unsubscribed), Ok(Outcome::Ended));
    assert_eq!(run.world.take(), ["cancel t1", "remove leads", "add unsubscribed"]);
    assert_eq!(run.world.lists, ["vip", "unsubscribed"], "a move with from leaves only that list");
}

#[test]
fn a_bounce_ends_and_other_events_change_nothing() {
    let mut run = Run::new(REFERENCE);
    run.event(Event::Captured).expect("starts");
    let before = run.state.clone();
    for event in [Event::Updated, Event::Refunded, Event::Opened("m1".into()), Event::Captured] {
        assert_eq!(run.event(event), Ok(Outcome::Waiting));
    }
    assert_eq!(run.state, before);
    assert_eq!(run.world.take(), ["wait wait_10m 10m"], "a second capture does not start a second run");
    assert_eq!(run.event(Event::Bounced("m1".into())), Ok(Outcome::Ended));
}

#[test]
fn a_refused_email_is_logged_and_the_flow_goes_on() {
    let mut run = Run::new(REFERENCE);
    run.world.refuse_email = true;
    run.event(Event::Captured).expect("starts");
    assert_eq!(run.fire(), Ok(Outcome::Waiting));
    assert_eq!(run.world.take(), ["wait wait_10m 10m", "wait wait_1d 1d"]);
    assert!(
        run.world
            .logs
            .iter()
            .any(|(level, text)| *level == LogLevel::Warn && text == "step no_payment: email not queued: suppressed")
    );
}

#[test]
fn the_coupon_line_is_added_only_when_needed() {
    let json = r#"{"start": "a", "coupon_line": "Use o cupom {{coupon_code}}.", "steps": {
        "a": {"email": {"subject": "s", "html": "<p>Hi</p>", "text": "Hi", "coupon": true}, "next": "b"},
        "b": {"email": {"subject": "s", "html": "<p>Code {{coupon_code}}</p>", "coupon": true}, "next": "c"},
        "c": {"email": {"subject": "s", "html": "<p>Plain</p>"}, "next": "end"}}}"#;
    let mut run = Run::new(json);
    run.world.coupon = true;
    assert_eq!(run.event(Event::Captured), Ok(Outcome::Ended));
    let emails = &run.world.emails;
    assert_eq!(emails[0].html, "<p>Hi</p><p>Use o cupom {{coupon_code}}.</p>");
    assert_eq!(emails[0].text.as_deref(), Some("Hi\n\nUse o cupom {{coupon_code}}."));
    assert_eq!(emails[1].html, "<p>Code {{coupon_code}}</p>");
    assert_eq!(emails[2].html, "<p>Plain</p>");

    // The coupon went away after validation: no line with an empty code.
    let mut run = Run::new(json);
    run.event(Event::Captured).expect("runs");
    assert_eq!(run.world.emails[0].html, "<p>Hi</p>");
    assert!(run.world.logs.iter().any(|(_, text)| text.contains("no coupon any more")));
}

#[test]
fn conditions_read_messages_lists_and_purchase() {
    let mut world = Fake {
        messages: vec![
            Seen { tag: "e1".into(), clicked: false, opened: true },
            Seen { tag: "e2".into(), clicked: true, opened: false },
        ],
        lists: vec!["vip".into()],
        ..Fake::default()
    };
    let holds = |c: Condition, w: &Fake| run::holds(&c, w);
    assert!(holds(Condition::Opened("e1".into()), &world));
    assert!(!holds(Condition::Clicked("e1".into()), &world));
    assert!(holds(Condition::Clicked("e2".into()), &world));
    assert!(!holds(Condition::Opened("e3".into()), &world));
    assert!(holds(Condition::ClickedAny, &world));
    assert!(holds(Condition::InList("vip".into()), &world));
    assert!(!holds(Condition::Purchased, &world));
    assert!(holds(Condition::Not(Box::new(Condition::Purchased)), &world));
    assert!(!holds(Condition::All(vec![Condition::ClickedAny, Condition::Purchased]), &world));
    assert!(holds(Condition::Any(vec![Condition::Purchased, Condition::InList("vip".into())]), &world));
    world.purchased = true;
    world.messages[1].clicked = false;
    assert!(holds(Condition::All(vec![Condition::Purchased, Condition::Not(Box::new(Condition::ClickedAny))]), &world));
}

#[test]
fn a_loop_that_skipped_validation_is_stopped_with_an_error() {
    let json = r#"{"start": "a", "steps": {"a": {"list": {"add": "x"}, "next": "b"}, "b": {"list": {"remove": "x"}, "next": "a"}}}"#;
    let mut run = Run::new(json);
    let err = run.event(Event::Captured).expect_err("runaway");
    assert!(err.contains("more than 1000 steps") && err.contains("loops without a wait"), "{err}");
}

#[test]
fn a_timer_for_a_step_gone_from_the_config_ends_the_run() {
    let mut run = Run::new(REFERENCE);
    run.event(Event::Captured).expect("starts");
    run.flow.steps.remove("wait_10m");
    assert_eq!(run.fire(), Ok(Outcome::Ended));
}

#[test]
fn state_stored_by_the_first_version_still_loads() {
    let old: State = serde_json::from_str(r#"{"waiting_at": "wait_1d", "timer": "t9"}"#).expect("loads");
    assert_eq!(old.timer.as_deref(), Some("t9"));
    assert!(!old.purchase_handled && !old.click_handled);
    // And the flags stay out of the stored JSON until they are set.
    assert_eq!(serde_json::to_string(&old).expect("serializes"), r#"{"waiting_at":"wait_1d","timer":"t9"}"#);
}

// ---------------------------------------------------------------- A/B splits and unique coupons

const SPLIT: &str = r#"{"start": "s", "steps": {
    "s": {"split": {"variants": [{"name": "short", "weight": 50, "next": "a"}, {"name": "long", "weight": 50, "next": "b"}]}},
    "a": {"email": {"subject": "A", "html": "<p>a</p>"}, "next": "end"},
    "b": {"email": {"subject": "B", "html": "<p>b</p>"}, "next": "end"}}}"#;

#[test]
fn a_split_is_valid_and_goes_where_the_host_chose() {
    assert_eq!(errors(SPLIT), Vec::<String>::new());
    let mut run = Run::new(SPLIT);
    run.world.variant = Some("long".into());
    assert_eq!(run.event(Event::Captured), Ok(Outcome::Ended));
    assert_eq!(run.world.take(), ["split s long", "email b Recovery"]);
    assert!(run.world.logs.iter().any(|(_, t)| t == "step s: variant long, going to b"));
}

#[test]
fn a_split_the_host_answers_with_a_stranger_fails_the_event() {
    let mut run = Run::new(SPLIT);
    run.world.variant = Some("other".into());
    let err = run.event(Event::Captured).expect_err("fails");
    assert!(err.contains("not a variant"), "{err}");
}

#[test]
fn split_rules_are_reported_at_their_paths() {
    let split = |variants: &str| {
        format!(r#"{{"start": "s", "steps": {{"s": {{"split": {{"variants": {variants}}}}}, "a": {{"end": true}}}}}}"#)
    };
    assert_eq!(
        errors(&split(r#"[{"name": "x", "weight": 1, "next": "a"}]"#)),
        ["steps.s.split.variants: a split has 2 to 8 variants (got 1)"]
    );
    let nine: Vec<String> = (0..9).map(|i| format!(r#"{{"name": "v{i}", "weight": 1, "next": "a"}}"#)).collect();
    assert_eq!(
        errors(&split(&format!("[{}]", nine.join(",")))),
        ["steps.s.split.variants: a split has 2 to 8 variants (got 9)"]
    );
    let long = "x".repeat(41);
    assert_eq!(
        errors(&split(&format!(
            r#"[{{"name": "x", "weight": 0, "next": "a"}}, {{"name": "x", "weight": 0, "next": "nowhere"}},
                {{"name": "{long}", "weight": 10001, "next": "end"}}, {{"name": "", "weight": 0, "next": "a"}}]"#
        ))),
        [
            "steps.s.split.variants[1].next: unknown step \"nowhere\"",
            "steps.s.split.variants[1].name: \"x\" is already the name of variants[0]",
            "steps.s.split.variants[2].name: a variant name is 1 to 40 characters, no control characters",
            "steps.s.split.variants[2].weight: must be 0 to 10000 (got 10001)",
            "steps.s.split.variants[3].name: a variant name is 1 to 40 characters, no control characters",
        ]
    );
    assert_eq!(
        errors(&split(r#"[{"name": "x", "weight": 0, "next": "a"}, {"name": "y", "weight": 0, "next": "a"}]"#)),
        ["steps.s.split.variants: the weights add up to 0: give at least one variant a positive weight"]
    );
    let e = errors(&split(r#"[{"name": "x", "weight": -1, "next": "a"}, {"name": "y", "weight": 1, "next": "a"}]"#));
    assert!(e.len() == 1 && e[0].starts_with("steps.s.split.variants[0].weight: "), "{e:?}");
    let e = errors(&split(r#"[{"name": "x", "weight": 1}, {"name": "y", "weight": 1, "next": "a"}]"#));
    assert!(e.len() == 1 && e[0].starts_with("steps.s.split.variants[0]: missing field `next`"), "{e:?}");
    let with_next = r#"{"start": "s", "steps": {"s": {"split": {"variants": [{"name": "x", "weight": 1, "next": "a"}, {"name": "y", "weight": 1, "next": "a"}]}, "next": "a"}, "a": {"end": true}}}"#;
    assert_eq!(errors(with_next), ["steps.s.next: a split goes on by each variant's next: remove this"]);
    let with_email =
        r#"{"start": "s", "steps": {"s": {"email": {"subject": "s", "html": "h"}, "split": {"variants": []}}}}"#;
    assert_eq!(
        errors(with_email),
        ["steps.s: a step has exactly one action (email and sms may go together); found email, split"]
    );
}

#[test]
fn a_loop_through_a_split_without_a_wait_is_refused_at_the_variant() {
    let json = r#"{"start": "s", "steps": {"s": {"split": {"variants": [{"name": "x", "weight": 1, "next": "a"}, {"name": "y", "weight": 1, "next": "s"}]}}, "a": {"end": true}}}"#;
    assert_eq!(errors(json), ["steps.s.split.variants[1].next: loop s -> s never waits"]);
}

#[test]
fn a_coupon_email_uses_the_leads_unique_code_then_the_static_one() {
    let json = r#"{"start": "a", "coupon_line": "Cupom: {{coupon_code}}", "steps": {"a": {"email": {"subject": "s", "html": "<p>Hi</p>", "coupon": true}, "next": "end"}}}"#;
    // A unique code: the line is added (the host renders the lead's code).
    let mut run = Run::new(json);
    run.world.unique = Some(run::UniqueCoupon::Given);
    run.event(Event::Captured).expect("runs");
    assert_eq!(run.world.emails[0].html, "<p>Hi</p><p>Cupom: {{coupon_code}}</p>");
    // The pool is used up and a static coupon exists: that one, and the plugin says so.
    let mut run = Run::new(json);
    run.world.unique =
        Some(run::UniqueCoupon::Refused("the coupon pool for product \"p\" plan \"q\" is used up".into()));
    run.world.coupon = true;
    run.event(Event::Captured).expect("runs");
    assert_eq!(run.world.emails[0].html, "<p>Hi</p><p>Cupom: {{coupon_code}}</p>");
    assert!(
        run.world
            .logs
            .iter()
            .any(|(l, t)| *l == LogLevel::Warn && t.contains("is used up") && t.ends_with("the static coupon instead"))
    );
    // Used up and nothing else: sent without the line.
    let mut run = Run::new(json);
    run.world.unique = Some(run::UniqueCoupon::Refused("used up".into()));
    run.event(Event::Captured).expect("runs");
    assert_eq!(run.world.emails[0].html, "<p>Hi</p>");
    assert!(run.world.logs.iter().any(|(_, t)| t == "step a: no unique coupon (used up): no coupon"));
}
