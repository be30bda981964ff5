//! Running a flow for one lead: what each event does ([`on_event`]) and walking the steps from
//! one point until a `wait` (a timer) or the end ([`walk`]).
//!
//! Everything the run needs from outside goes through [`World`], so the same decisions run on
//! the host's capabilities in wasm and on a fake in native tests (the `host::*` imports only
//! exist inside a component).

use funnel_sdk::host::Email;
use funnel_sdk::{Duration, Event, LogLevel, MessageKind};
use serde::{Deserialize, Serialize};

use crate::config::{Condition, END, EmailAction, FlowConfig, Kind, ListAction, SplitVariant, Step};

/// Steps one event may walk before the run is stopped as runaway. Validation rejects loops
/// without a wait, so this only trips on a config that skipped validation.
pub const MAX_STEPS_PER_EVENT: usize = 1000;

/// A message the lead was sent, as conditions see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// The step id that sent it.
    pub tag: String,
    pub clicked: bool,
    pub opened: bool,
}

/// What a run needs from the host, for the lead being handled.
pub trait World {
    /// Whether the lead has bought (and not been refunded).
    fn purchased(&self) -> bool;
    /// The messages sent so far, including those queued in this event.
    fn messages(&self) -> Vec<Seen>;
    /// The lists the lead's contact is on now.
    fn lists(&self) -> Vec<String>;
    /// Whether the binding has a coupon to render as `{{coupon_code}}`.
    fn has_coupon(&self) -> bool;
    /// Ask the host for the lead's unique coupon (then `{{coupon_code}}` renders it in the
    /// messages of this event).
    fn unique_coupon(&mut self) -> UniqueCoupon;
    /// The lead's variant at split step `step` (the host's choice, stable per lead).
    fn choose_variant(&mut self, step: &str, variants: &[SplitVariant]) -> Result<String, String>;
    fn send_email(&mut self, email: &Email) -> Result<(), String>;
    fn send_sms(&mut self, body: &str, tag: &str, kind: MessageKind) -> Result<(), String>;
    /// Ask for a timer; returns its id.
    fn schedule(&mut self, after: Duration, tag: &str) -> Result<String, String>;
    fn cancel(&mut self, timer_id: &str);
    fn add_to_list(&mut self, name: &str) -> Result<(), String>;
    fn remove_from_list(&mut self, name: &str) -> Result<(), String>;
    fn log(&mut self, level: LogLevel, text: &str);
}

/// What `unique-coupon` answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UniqueCoupon {
    /// The lead has its own code.
    Given,
    /// The scope has no pool or pattern: the static coupon, if any, is the coupon.
    NoSource,
    /// No code for this lead (the pool is used up): why.
    Refused(String),
}

/// Where a lead is in its flow, kept by the host between events (as JSON: new fields must have
/// serde defaults so states stored by an older version still load).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// The `wait` step the lead is in, if any.
    pub waiting_at: Option<String>,
    /// The timer that ends that wait; any other timer that fires is stale.
    pub timer: Option<String>,
    /// `on_purchase` already jumped: a second `order.paid` must not send a second thank-you.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub purchase_handled: bool,
    /// `on_click` already jumped: every further click would restart the branch.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub click_handled: bool,
}

/// Whether the run goes on after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Keep the run; the lead waits for a timer or another event.
    Waiting,
    /// The run is over (the host cancels any pending timer).
    Ended,
}

/// Handle one event of the lead.
pub fn on_event(
    flow: &FlowConfig,
    event: &Event,
    state: &mut State,
    world: &mut impl World,
) -> Result<Outcome, String> {
    match event {
        Event::Captured => {
            if let Some(at) = &state.waiting_at {
                // Already running: a repeated capture must not start a second run in parallel.
                world.log(LogLevel::Warn, &format!("captured again while waiting at {at}: ignored"));
                return Ok(Outcome::Waiting);
            }
            let start = flow.start.as_deref().ok_or("the flow has no start step")?;
            walk(flow, start, state, world)
        }
        Event::Timer(timer) => {
            if state.timer.as_deref() != Some(timer.id.as_str()) {
                // A wait a jump left behind (cancel raced with the timer) or a duplicate.
                world.log(
                    LogLevel::Debug,
                    &format!("timer {} ({}) is not the pending one: ignored", timer.id, timer.tag),
                );
                return Ok(Outcome::Waiting);
            }
            state.timer = None;
            let at = state.waiting_at.take().unwrap_or_default();
            match flow.steps.get(&at).and_then(|step| step.next.as_deref()) {
                Some(next) => walk(flow, next, state, world),
                None => {
                    // Only possible when the binding's config changed under a waiting lead.
                    world.log(LogLevel::Warn, &format!("wait step {at:?} is gone from the flow: ending the run"));
                    Ok(Outcome::Ended)
                }
            }
        }
        Event::Purchased(_) => match flow.on_purchase.as_deref() {
            Some(target) if !state.purchase_handled => {
                state.purchase_handled = true;
                world.log(LogLevel::Info, &format!("purchased: jumping to {target}"));
                jump(flow, target, state, world)
            }
            // No handler: keep waiting; `if: purchased` will see it, and the host drops
            // recovery messages to a buyer anyway.
            _ => Ok(Outcome::Waiting),
        },
        Event::Clicked(_) => match flow.on_click.as_deref() {
            Some(target) if !state.click_handled => {
                state.click_handled = true;
                world.log(LogLevel::Info, &format!("clicked: jumping to {target}"));
                jump(flow, target, state, world)
            }
            _ => Ok(Outcome::Waiting),
        },
        Event::Unsubscribed => match flow.on_unsubscribe.as_deref() {
            Some(target) => {
                world.log(LogLevel::Info, &format!("unsubscribed: jumping to {target}"));
                jump(flow, target, state, world)
            }
            // Nothing more can reach them: the run has nothing left to do.
            None => Ok(Outcome::Ended),
        },
        Event::Bounced(_) => Ok(Outcome::Ended),
        Event::Updated | Event::Refunded | Event::Opened(_) => Ok(Outcome::Waiting),
    }
}

/// Jump to `target` at once (on purchase, click or unsubscribe), cancelling the pending wait.
pub fn jump(flow: &FlowConfig, target: &str, state: &mut State, world: &mut impl World) -> Result<Outcome, String> {
    if let Some(timer) = state.timer.take() {
        world.cancel(&timer);
    }
    walk(flow, target, state, world)
}

/// Run from step `from` until a wait or the end.
pub fn walk(flow: &FlowConfig, from: &str, state: &mut State, world: &mut impl World) -> Result<Outcome, String> {
    state.waiting_at = None;
    state.timer = None;
    let mut current = from.to_string();
    for _ in 0..MAX_STEPS_PER_EVENT {
        if current == END {
            return Ok(Outcome::Ended);
        }
        let step = flow.steps.get(&current).ok_or_else(|| format!("step {current:?} is not in the flow"))?;
        match run_step(&current, step, flow.coupon_line.as_deref(), world)? {
            Then::Wait(after) => {
                state.timer = Some(world.schedule(after, &current)?);
                state.waiting_at = Some(current);
                return Ok(Outcome::Waiting);
            }
            Then::End => return Ok(Outcome::Ended),
            Then::Go(next) => current = next,
        }
    }
    Err(format!(
        "walked more than {MAX_STEPS_PER_EVENT} steps in one event (last at {current:?}): the flow loops without a wait"
    ))
}

/// What comes after a step.
enum Then {
    Wait(Duration),
    End,
    Go(String),
}

/// Do one step's action and say where to go.
fn run_step(id: &str, step: &Step, coupon_line: Option<&str>, world: &mut impl World) -> Result<Then, String> {
    if let Some(after) = step.wait {
        return Ok(Then::Wait(after));
    }
    if step.end.is_some() {
        return Ok(Then::End);
    }
    if let Some(split) = &step.split {
        // The host's choice is final for the lead; one it cannot make fails the event (the
        // config was validated, so only a host problem gets here), retried, then parked.
        let chosen = world.choose_variant(id, &split.variants).map_err(|e| format!("step {id}: {e}"))?;
        let next = split
            .variants
            .iter()
            .find(|v| v.name == chosen)
            .map(|v| v.next.clone())
            .ok_or_else(|| format!("step {id}: the host chose {chosen:?}, which is not a variant"))?;
        world.log(LogLevel::Info, &format!("step {id}: variant {chosen}, going to {next}"));
        return Ok(Then::Go(next));
    }
    // A refused send or list change (suppressed, no phone, a cap) is final for this message
    // but not for the flow: retrying the event would not change the answer.
    if let Some(email) = &step.email {
        // Ask the host only when needed: most emails carry no coupon. The lead's own code
        // first (a pool or pattern on the scope), else the static one.
        let has_coupon = email.coupon
            && match world.unique_coupon() {
                UniqueCoupon::Given => true,
                UniqueCoupon::NoSource => world.has_coupon(),
                UniqueCoupon::Refused(why) => {
                    let fallback = world.has_coupon();
                    let instead = if fallback { "the static coupon instead" } else { "no coupon" };
                    world.log(LogLevel::Warn, &format!("step {id}: no unique coupon ({why}): {instead}"));
                    fallback
                }
            };
        let (message, warning) = compose_email(id, email, has_coupon.then_some(coupon_line));
        if let Some(warning) = warning {
            world.log(LogLevel::Warn, &warning);
        }
        if let Err(e) = world.send_email(&message) {
            world.log(LogLevel::Warn, &format!("step {id}: email not queued: {e}"));
        }
    }
    if let Some(sms) = &step.sms
        && let Err(e) = world.send_sms(&sms.body, id, kind(sms.kind))
    {
        world.log(LogLevel::Warn, &format!("step {id}: sms not queued: {e}"));
    }
    if let Some(list) = &step.list {
        for e in change_lists(list, world) {
            world.log(LogLevel::Warn, &format!("step {id}: {e}"));
        }
    }
    let next = match &step.condition {
        Some(condition) => {
            let holds = holds(condition, world);
            let next = if holds { &step.then } else { &step.otherwise };
            let shown = next.as_deref().unwrap_or("?");
            world.log(LogLevel::Debug, &format!("step {id}: condition is {holds}, going to {shown}"));
            next
        }
        None => &step.next,
    };
    next.clone().map(Then::Go).ok_or_else(|| format!("step {id:?} has nowhere to go"))
}

fn kind(k: Kind) -> MessageKind {
    match k {
        Kind::Recovery => MessageKind::Recovery,
        Kind::Transactional => MessageKind::Transactional,
    }
}

/// The email an email step sends (tagged with the step id), and a warning when it asks for a
/// coupon the binding no longer has. `coupon` is `None` without a coupon on the binding, else
/// the producer's coupon line, if the config has one (the code alone when it has none).
pub fn compose_email(id: &str, email: &EmailAction, coupon: Option<Option<&str>>) -> (Email, Option<String>) {
    let mut html = email.html.clone();
    let mut text = email.text.clone();
    let mut warning = None;
    if email.coupon {
        if let Some(line) = coupon {
            let line = line.unwrap_or(funnel_sdk::coupon::DEFAULT_LINE);
            funnel_sdk::coupon::add_line(&mut html, text.as_mut(), line);
        } else {
            // Validation saw a coupon; it was removed since. Better no line than an empty code.
            warning = Some(format!("step {id}: the binding has no coupon any more: sent without the coupon line"));
        }
    }
    let message = Email { subject: email.subject.clone(), html, text, tag: id.to_string(), kind: kind(email.kind) };
    (message, warning)
}

/// Apply a list action; the problems met, if any.
fn change_lists(list: &ListAction, world: &mut impl World) -> Vec<String> {
    let mut leave: Vec<String> = list.remove.iter().cloned().collect();
    if let Some(m) = &list.move_to {
        match &m.from {
            Some(from) => leave.push(from.clone()),
            // Without `from`, a move means "this list only": leave every other one.
            None => leave.extend(world.lists().into_iter().filter(|l| *l != m.to)),
        }
    }
    let join = list.add.iter().chain(list.move_to.as_ref().map(|m| &m.to));
    let mut problems = Vec::new();
    for name in &leave {
        if let Err(e) = world.remove_from_list(name) {
            problems.push(format!("could not leave list {name:?}: {e}"));
        }
    }
    for name in join {
        if let Err(e) = world.add_to_list(name) {
            problems.push(format!("could not join list {name:?}: {e}"));
        }
    }
    problems
}

/// Evaluate a condition against what the host knows now.
pub fn holds(condition: &Condition, world: &impl World) -> bool {
    match condition {
        Condition::Purchased => world.purchased(),
        Condition::ClickedAny => world.messages().iter().any(|m| m.clicked),
        Condition::Clicked(step) => world.messages().iter().any(|m| m.tag == *step && m.clicked),
        Condition::Opened(step) => world.messages().iter().any(|m| m.tag == *step && m.opened),
        Condition::InList(name) => world.lists().contains(name),
        Condition::All(items) => items.iter().all(|c| holds(c, world)),
        Condition::Any(items) => items.iter().any(|c| holds(c, world)),
        Condition::Not(inner) => !holds(inner, world),
    }
}
