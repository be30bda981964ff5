//! Walking a flow: from a step, run actions back to back until a `wait` (a timer) or the end.
//! Everything the walk needs from outside goes through [`World`], so the same code runs on the
//! host capabilities in wasm and on a fake in native tests.

use funnel_sdk::{Duration, MessageKind, host::Email};
use serde::{Deserialize, Serialize};

use crate::config::{CompoundCondition, Condition, END, FlowConfig, Kind};

/// Steps one event may walk before the run is stopped as runaway (validation makes loops
/// without a wait impossible; this is the belt to its braces).
pub const MAX_STEPS_PER_EVENT: usize = 1000;

/// What the walk needs from the host.
pub trait World {
    fn purchased(&self) -> bool;
    /// (tag, clicked, opened) of every message sent so far.
    fn messages(&self) -> Vec<(String, bool, bool)>;
    fn lists(&self) -> Vec<String>;
    fn send_email(&mut self, email: Email) -> Result<(), String>;
    fn send_sms(&mut self, body: &str, tag: &str, kind: MessageKind) -> Result<(), String>;
    fn schedule(&mut self, after: Duration, tag: &str) -> Result<String, String>;
    fn cancel_all(&mut self);
    fn add_to_list(&mut self, name: &str) -> Result<(), String>;
    fn remove_from_list(&mut self, name: &str) -> Result<(), String>;
    fn log(&mut self, text: &str);
}

/// Where a lead is in its flow.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// The `wait` step the lead is in, if any.
    pub waiting_at: Option<String>,
    /// The timer that ends that wait.
    pub timer: Option<String>,
}

/// Whether the run goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Waiting,
    Ended,
}

fn kind(k: Kind) -> MessageKind {
    match k {
        Kind::Recovery => MessageKind::Recovery,
        Kind::Transactional => MessageKind::Transactional,
    }
}

/// The line added to an email with `coupon: true` whose html does not mention the coupon.
pub const COUPON_LINE_HTML: &str = "<p>Use the coupon <strong>{{coupon_code}}</strong> at checkout.</p>";

/// Run from `start` until a wait or the end.
pub fn walk(flow: &FlowConfig, start: &str, state: &mut State, world: &mut impl World) -> Result<Outcome, String> {
    let mut current = start.to_string();
    state.waiting_at = None;
    state.timer = None;
    for _ in 0..MAX_STEPS_PER_EVENT {
        if current == END {
            return Ok(Outcome::Ended);
        }
        let step = flow.steps.get(&current).ok_or_else(|| format!("unknown step {current:?}"))?;
        if let Some(wait) = step.wait {
            state.timer = Some(world.schedule(wait, &current)?);
            state.waiting_at = Some(current);
            return Ok(Outcome::Waiting);
        }
        if step.end.is_some() {
            return Ok(Outcome::Ended);
        }
        if let Some(email) = &step.email {
            let mut html = email.html.clone();
            if email.coupon && !html.contains("coupon_code") {
                html.push_str(COUPON_LINE_HTML);
            }
            let message = Email {
                subject: email.subject.clone(),
                html,
                text: email.text.clone(),
                tag: current.clone(),
                kind: kind(email.kind),
            };
            // A refused send (suppressed, no address) does not stop the flow.
            if let Err(e) = world.send_email(message) {
                world.log(&format!("step {current}: email not queued: {e}"));
            }
        }
        if let Some(sms) = &step.sms
            && let Err(e) = world.send_sms(&sms.body, &current, kind(sms.kind))
        {
            world.log(&format!("step {current}: sms not queued: {e}"));
        }
        if let Some(list) = &step.list {
            if let Some(name) = &list.add {
                world.add_to_list(name)?;
            }
            if let Some(name) = &list.remove {
                world.remove_from_list(name)?;
            }
            if let Some(m) = &list.move_to {
                let from: Vec<String> = match &m.from {
                    Some(from) => vec![from.clone()],
                    None => world.lists().into_iter().filter(|l| *l != m.to).collect(),
                };
                for name in from {
                    world.remove_from_list(&name)?;
                }
                world.add_to_list(&m.to)?;
            }
        }
        let next = match &step.condition {
            Some(condition) => {
                if holds(condition, world) {
                    step.then.clone()
                } else {
                    step.otherwise.clone()
                }
            }
            None => step.next.clone(),
        };
        current = next.ok_or_else(|| format!("step {current:?} has nowhere to go"))?;
    }
    Err(format!("more than {MAX_STEPS_PER_EVENT} steps in one event: the flow loops without waiting"))
}

/// Evaluate a condition.
pub fn holds(condition: &Condition, world: &impl World) -> bool {
    match condition {
        Condition::Named(name) if name == "purchased" => world.purchased(),
        Condition::Named(name) if name == "clicked_any" => world.messages().iter().any(|(_, clicked, _)| *clicked),
        Condition::Named(_) => false,
        Condition::Compound(c) => match c {
            CompoundCondition::Clicked(step) => {
                world.messages().iter().any(|(tag, clicked, _)| tag == step && *clicked)
            }
            CompoundCondition::Opened(step) => world.messages().iter().any(|(tag, _, opened)| tag == step && *opened),
            CompoundCondition::InList(name) => world.lists().contains(name),
            CompoundCondition::All(items) => items.iter().all(|c| holds(c, world)),
            CompoundCondition::Any(items) => items.iter().any(|c| holds(c, world)),
            CompoundCondition::Not(inner) => !holds(inner, world),
        },
    }
}

/// Jump to `target` at once (on purchase, click or unsubscribe): cancel the pending wait.
pub fn jump(flow: &FlowConfig, target: &str, state: &mut State, world: &mut impl World) -> Result<Outcome, String> {
    if state.timer.is_some() {
        world.cancel_all();
    }
    walk(flow, target, state, world)
}
