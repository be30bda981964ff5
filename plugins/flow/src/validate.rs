//! The rules a loaded flow must follow beyond its shape, every problem reported with its path:
//! one action per step, the fields each action needs, known targets, email steps behind
//! click/open conditions, coupons the binding can carry, every step reachable, and no loop
//! that could run without passing a `wait`.

use std::collections::{BTreeMap, BTreeSet};

use funnel_sdk::{ConfigNote, Duration, note};

use crate::config::{Condition, END, FlowConfig, Kind, ListAction, Split, Step};

/// Where each step may go next (`end` excluded).
pub fn successors(step: &Step) -> Vec<&str> {
    let variants = step.split.iter().flat_map(|s| s.variants.iter().map(|v| v.next.as_str()));
    [&step.next, &step.then, &step.otherwise]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .chain(variants)
        .filter(|s| *s != END)
        .collect()
}

/// Most variants a split may have.
pub const MAX_VARIANTS: usize = 8;
/// The longest variant name, in characters.
pub const MAX_VARIANT_NAME: usize = 40;
/// The largest weight.
pub const MAX_WEIGHT: u32 = 10_000;

/// Names of the actions a step has, in the order the error message lists them.
fn actions(step: &Step) -> Vec<&'static str> {
    [
        ("wait", step.wait.is_some()),
        ("email", step.email.is_some()),
        ("sms", step.sms.is_some()),
        ("if", step.condition.is_some()),
        ("list", step.list.is_some()),
        ("end", step.end.is_some()),
        ("split", step.split.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, present)| present.then_some(name))
    .collect()
}

/// The jumps that enter the flow besides `start`, by field name.
fn jumps(flow: &FlowConfig) -> [(&'static str, Option<&str>); 3] {
    [
        ("on_purchase", flow.on_purchase.as_deref()),
        ("on_click", flow.on_click.as_deref()),
        ("on_unsubscribe", flow.on_unsubscribe.as_deref()),
    ]
}

/// Check a loaded flow: the errors, all of them. `coupon_problem` says why the binding cannot
/// carry a coupon, if it cannot.
pub fn check(flow: &FlowConfig, coupon_problem: Option<&str>) -> Vec<ConfigNote> {
    let mut errors = Vec::new();
    let steps = &flow.steps;
    let start_ok = match &flow.start {
        None => {
            errors.push(note("start", "missing: name the first step"));
            false
        }
        Some(s) if !steps.contains_key(s) => {
            errors.push(note("start", format!("unknown step {s:?}")));
            false
        }
        Some(_) => true,
    };
    for (field, target) in jumps(flow) {
        if let Some(id) = target
            && id != END
            && !steps.contains_key(id)
        {
            errors.push(note(field, format!("unknown step {id:?}")));
        }
    }
    for (id, step) in steps {
        check_step(id, step, steps, coupon_problem, &mut errors);
    }
    // Without a known start every step would look unreachable: that is one problem, not many.
    if start_ok {
        unreachable_steps(flow, &mut errors);
    }
    loops_without_wait(steps, &mut errors);
    errors
}

fn check_step(
    id: &str,
    step: &Step,
    steps: &BTreeMap<String, Step>,
    coupon_problem: Option<&str>,
    errors: &mut Vec<ConfigNote>,
) {
    let path = format!("steps.{id}");
    if id == END {
        errors.push(note(&path, "\"end\" is reserved (as a target it ends the run): rename this step"));
    } else if id.trim().is_empty() {
        errors.push(note(&path, "a step id must not be empty"));
    }
    // Targets are checked even on a broken step: they are independent of what broke it.
    for (field, value) in [("next", &step.next), ("then", &step.then), ("else", &step.otherwise)] {
        if let Some(target) = value
            && target != END
            && !steps.contains_key(target)
        {
            errors.push(note(format!("{path}.{field}"), format!("unknown step {target:?}")));
        }
    }
    for (i, variant) in step.split.iter().flat_map(|s| s.variants.iter()).enumerate() {
        if variant.next != END && !steps.contains_key(&variant.next) {
            errors.push(note(format!("{path}.split.variants[{i}].next"), format!("unknown step {:?}", variant.next)));
        }
    }
    if step.broken {
        return; // its shape problem is already reported
    }
    let found = actions(step);
    let messages_only = found.iter().all(|a| *a == "email" || *a == "sms");
    if found.is_empty() || (found.len() > 1 && !messages_only) {
        let found = if found.is_empty() { "none".to_string() } else { found.join(", ") };
        errors
            .push(note(&path, format!("a step has exactly one action (email and sms may go together); found {found}")));
        return; // which of next/then/else it needs depends on the action
    }
    if step.condition.is_some() {
        for (field, value) in [("then", &step.then), ("else", &step.otherwise)] {
            if value.is_none() {
                errors.push(note(format!("{path}.{field}"), "missing: name the step to go to, or \"end\""));
            }
        }
        if step.next.is_some() {
            errors.push(note(format!("{path}.next"), "an if step goes on by then/else, not next"));
        }
    } else if let Some(split) = &step.split {
        for (field, value) in [("next", &step.next), ("then", &step.then), ("else", &step.otherwise)] {
            if value.is_some() {
                errors.push(note(format!("{path}.{field}"), "a split goes on by each variant's next: remove this"));
            }
        }
        check_split(&path, split, errors);
    } else if step.end.is_some() {
        if step.end == Some(false) {
            errors.push(note(format!("{path}.end"), "write \"end\": true, or remove the step"));
        }
        for (field, value) in [("next", &step.next), ("then", &step.then), ("else", &step.otherwise)] {
            if value.is_some() {
                errors.push(note(format!("{path}.{field}"), "an end step goes nowhere: remove this"));
            }
        }
    } else {
        if step.next.is_none() {
            errors.push(note(format!("{path}.next"), "missing: name the next step, or \"end\""));
        }
        for (field, value) in [("then", &step.then), ("else", &step.otherwise)] {
            if value.is_some() {
                errors.push(note(format!("{path}.{field}"), "only an if step has then/else: use next"));
            }
        }
    }
    if step.wait == Some(Duration::default()) {
        errors.push(note(format!("{path}.wait"), "must be longer than 0"));
    }
    if let Some(email) = &step.email {
        for (field, value) in [("subject", &email.subject), ("html", &email.html)] {
            if value.trim().is_empty() {
                errors.push(note(format!("{path}.email.{field}"), "must not be empty"));
            }
        }
        if email.text.as_deref().is_some_and(|t| t.trim().is_empty()) {
            errors.push(note(format!("{path}.email.text"), "must not be empty: remove it to derive it from html"));
        }
        if email.coupon
            && let Some(problem) = coupon_problem
        {
            errors.push(note(format!("{path}.email.coupon"), problem));
        }
    }
    if let Some(sms) = &step.sms
        && sms.body.trim().is_empty()
    {
        errors.push(note(format!("{path}.sms.body"), "must not be empty"));
    }
    if let Some(list) = &step.list {
        check_list(&path, list, errors);
    }
    if let Some(condition) = &step.condition {
        check_condition(condition, &format!("{path}.if"), steps, errors);
    }
}

fn check_split(path: &str, split: &Split, errors: &mut Vec<ConfigNote>) {
    let at = format!("{path}.split.variants");
    let n = split.variants.len();
    if !(2..=MAX_VARIANTS).contains(&n) {
        errors.push(note(&at, format!("a split has 2 to {MAX_VARIANTS} variants (got {n})")));
    }
    for (i, v) in split.variants.iter().enumerate() {
        let chars = v.name.chars().count();
        if v.name.trim().is_empty() || chars > MAX_VARIANT_NAME || v.name.chars().any(char::is_control) {
            errors.push(note(
                format!("{at}[{i}].name"),
                format!("a variant name is 1 to {MAX_VARIANT_NAME} characters, no control characters"),
            ));
        } else if let Some(first) = split.variants[..i].iter().position(|w| w.name == v.name) {
            errors.push(note(
                format!("{at}[{i}].name"),
                format!("{:?} is already the name of variants[{first}]", v.name),
            ));
        }
        if v.weight > MAX_WEIGHT {
            errors.push(note(format!("{at}[{i}].weight"), format!("must be 0 to {MAX_WEIGHT} (got {})", v.weight)));
        }
    }
    if n > 0 && split.variants.iter().all(|v| v.weight == 0) {
        errors.push(note(&at, "the weights add up to 0: give at least one variant a positive weight"));
    }
}

fn check_list(path: &str, list: &ListAction, errors: &mut Vec<ConfigNote>) {
    let ops = [list.add.is_some(), list.remove.is_some(), list.move_to.is_some()];
    if ops.iter().filter(|present| **present).count() != 1 {
        errors.push(note(format!("{path}.list"), "use exactly one of add, remove or move"));
    }
    let mut names = vec![("add", &list.add), ("remove", &list.remove)];
    if let Some(m) = &list.move_to {
        names.push(("move.from", &m.from));
        if m.to.trim().is_empty() {
            errors.push(note(format!("{path}.list.move.to"), "must name a list"));
        }
    }
    for (field, name) in names {
        if name.as_deref().is_some_and(|n| n.trim().is_empty()) {
            errors.push(note(format!("{path}.list.{field}"), "must name a list"));
        }
    }
}

/// Conditions about a message must name an email step: only those send the message they ask
/// about (the message's tag is the step id).
fn check_condition(condition: &Condition, path: &str, steps: &BTreeMap<String, Step>, errors: &mut Vec<ConfigNote>) {
    let email_step = |id: &str| steps.get(id).is_some_and(|s| s.email.is_some());
    match condition {
        Condition::Purchased | Condition::ClickedAny => {}
        Condition::Clicked(id) | Condition::Opened(id) => {
            let field = if matches!(condition, Condition::Clicked(_)) { "clicked" } else { "opened" };
            if !email_step(id) {
                errors.push(note(format!("{path}.{field}"), format!("{id:?} is not an email step")));
            }
        }
        Condition::InList(name) => {
            if name.trim().is_empty() {
                errors.push(note(format!("{path}.in_list"), "must name a list"));
            }
        }
        Condition::All(items) | Condition::Any(items) => {
            let field = if matches!(condition, Condition::All(_)) { "all" } else { "any" };
            for (i, item) in items.iter().enumerate() {
                check_condition(item, &format!("{path}.{field}[{i}]"), steps, errors);
            }
        }
        Condition::Not(inner) => check_condition(inner, &format!("{path}.not"), steps, errors),
    }
}

/// Steps reachable from `from` (jump targets and `end` included as given).
fn reachable<'a>(flow: &'a FlowConfig, from: impl IntoIterator<Item = &'a str>) -> BTreeSet<&'a str> {
    let mut seen = BTreeSet::new();
    let mut stack: Vec<&str> = from.into_iter().collect();
    while let Some(id) = stack.pop() {
        if id == END || !seen.insert(id) {
            continue;
        }
        if let Some(step) = flow.steps.get(id) {
            stack.extend(successors(step));
        }
    }
    seen
}

fn unreachable_steps(flow: &FlowConfig, errors: &mut Vec<ConfigNote>) {
    let entries = flow.start.as_deref().into_iter().chain(jumps(flow).into_iter().filter_map(|(_, t)| t));
    let seen = reachable(flow, entries);
    for id in flow.steps.keys() {
        // A step named "end" is never entered (the name ends the run); it is reported as reserved.
        if id != END && !seen.contains(id.as_str()) {
            errors
                .push(note(format!("steps.{id}"), "unreachable from start (or on_purchase, on_click, on_unsubscribe)"));
        }
    }
}

/// A cycle of steps none of which waits would spin without end within one event. Found by a
/// depth-first search that stops at waits; each back edge is one loop, reported at the field
/// that closes it.
fn loops_without_wait(steps: &BTreeMap<String, Step>, errors: &mut Vec<ConfigNote>) {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Visiting,
        Done,
    }
    struct Search<'a> {
        steps: &'a BTreeMap<String, Step>,
        marks: BTreeMap<&'a str, Mark>,
        path: Vec<&'a str>,
        errors: &'a mut Vec<ConfigNote>,
    }
    impl<'a> Search<'a> {
        fn visit(&mut self, id: &'a str) {
            let Some(step) = self.steps.get(id) else { return };
            // A wait breaks any loop through it; a broken step's actions are unknown, so it is
            // given the benefit of the doubt rather than blamed for a loop it may not have.
            if step.wait.is_some() || step.broken {
                return;
            }
            match self.marks.get(id) {
                Some(Mark::Done) => return,
                Some(Mark::Visiting) => {
                    self.report(id);
                    return;
                }
                None => {}
            }
            self.marks.insert(id, Mark::Visiting);
            self.path.push(id);
            for next in successors(step) {
                self.visit(next);
            }
            self.path.pop();
            self.marks.insert(id, Mark::Done);
        }

        /// `id` is on the current path: the loop runs from it to the path's end and back.
        fn report(&mut self, id: &'a str) {
            let start = self.path.iter().position(|p| *p == id).unwrap_or(0);
            let mut cycle: Vec<&str> = self.path[start..].to_vec();
            cycle.push(id);
            let from = self.path.last().copied().unwrap_or(id);
            // Name the field of the last step that leads back into the loop.
            let field = self
                .steps
                .get(from)
                .and_then(|s| {
                    let plain = [("next", &s.next), ("then", &s.then), ("else", &s.otherwise)]
                        .into_iter()
                        .find(|(_, target)| target.as_deref() == Some(id))
                        .map(|(field, _)| field.to_string());
                    plain.or_else(|| {
                        let variants = s.split.as_ref()?.variants.iter();
                        let i = variants.clone().position(|v| v.next == id)?;
                        Some(format!("split.variants[{i}].next"))
                    })
                })
                .unwrap_or_else(|| "next".to_string());
            self.errors.push(note(format!("steps.{from}.{field}"), format!("loop {} never waits", cycle.join(" -> "))));
        }
    }
    let mut search = Search { steps, marks: BTreeMap::new(), path: Vec::new(), errors };
    for id in steps.keys() {
        search.visit(id);
    }
}

/// Remarks on an accepted flow: things that work but are likely not what the producer meant.
pub fn remarks(flow: &FlowConfig) -> Vec<ConfigNote> {
    let mut notes = Vec::new();
    // Everything reached through on_purchase runs for a buyer, and the host drops a recovery
    // message to a buyer at send time: a thank-you must be transactional.
    let after_purchase = reachable(flow, flow.on_purchase.as_deref());
    for id in after_purchase {
        let Some(step) = flow.steps.get(id) else { continue };
        for (channel, kind) in
            [("email", step.email.as_ref().map(|e| e.kind)), ("sms", step.sms.as_ref().map(|s| s.kind))]
        {
            if kind == Some(Kind::Recovery) {
                notes.push(note(
                    format!("steps.{id}.{channel}.kind"),
                    "runs after a purchase (on_purchase), but a recovery message to a buyer is dropped: \
                     use \"kind\": \"transactional\"",
                ));
            }
        }
    }
    if flow.coupon_line.is_none() {
        for (id, step) in &flow.steps {
            if let Some(email) = step.email.as_ref().filter(|e| e.coupon)
                && funnel_sdk::coupon::needs_line(&email.html, email.text.as_deref())
            {
                notes.push(note(format!("steps.{id}.email.coupon"), funnel_sdk::coupon::DEFAULT_LINE_NOTE));
            }
        }
    }
    notes
}
