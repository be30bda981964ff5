//! The rules a flow must follow beyond its shape, each problem reported with its path:
//! one action per step, known targets, email steps behind click/open conditions, every step
//! reachable, and no loop that could run without passing a `wait`.

use std::collections::{BTreeMap, BTreeSet};

use funnel_sdk::{ConfigNote, Duration, note};

use crate::config::{CompoundCondition, Condition, END, FlowConfig, Step};

/// Where each step may go next (`end` excluded).
pub fn successors(step: &Step) -> Vec<&str> {
    [&step.next, &step.then, &step.otherwise].into_iter().flatten().map(String::as_str).filter(|s| *s != END).collect()
}

/// Names of the actions a step has.
fn actions(step: &Step) -> Vec<&'static str> {
    let mut found = Vec::new();
    if step.wait.is_some() {
        found.push("wait");
    }
    if step.email.is_some() {
        found.push("email");
    }
    if step.sms.is_some() {
        found.push("sms");
    }
    if step.condition.is_some() {
        found.push("if");
    }
    if step.list.is_some() {
        found.push("list");
    }
    if step.end.is_some() {
        found.push("end");
    }
    found
}

/// Check a parsed flow. `coupon_ok` tells whether the binding can carry a coupon, and if not why.
pub fn check(flow: &FlowConfig, coupon_problem: Option<&str>) -> Vec<ConfigNote> {
    let mut errors = Vec::new();
    let steps = &flow.steps;
    let target_ok = |id: &str| id == END || steps.contains_key(id);
    match &flow.start {
        None => errors.push(note("start", "missing: name the first step")),
        Some(s) if !steps.contains_key(s) => errors.push(note("start", format!("unknown step {s:?}"))),
        Some(_) => {}
    }
    for (field, value) in
        [("on_purchase", &flow.on_purchase), ("on_click", &flow.on_click), ("on_unsubscribe", &flow.on_unsubscribe)]
    {
        if let Some(id) = value
            && !target_ok(id)
        {
            errors.push(note(field, format!("unknown step {id:?}")));
        }
    }
    if steps.contains_key(END) {
        errors.push(note(format!("steps.{END}"), "\"end\" is reserved: it ends the run; rename this step"));
    }
    for (id, step) in steps {
        let path = format!("steps.{id}");
        let found = actions(step);
        let messaging = step.email.is_some() && step.sms.is_some() && found.len() == 2;
        if found.is_empty() || (found.len() > 1 && !messaging) {
            errors.push(note(
                &path,
                format!(
                    "a step has exactly one action (email and sms may go together); found {}",
                    if found.is_empty() { "none".to_string() } else { found.join(", ") }
                ),
            ));
            continue;
        }
        let is_if = step.condition.is_some();
        let is_end = step.end.is_some();
        if is_if {
            for (field, value) in [("then", &step.then), ("else", &step.otherwise)] {
                if value.is_none() {
                    errors.push(note(format!("{path}.{field}"), "missing: an if step names where to go"));
                }
            }
            if step.next.is_some() {
                errors.push(note(format!("{path}.next"), "an if step goes on by then/else, not next"));
            }
        } else if !is_end {
            if step.next.is_none() {
                errors.push(note(format!("{path}.next"), "missing: name the next step, or \"end\""));
            }
            if step.then.is_some() || step.otherwise.is_some() {
                errors.push(note(&path, "then/else belong to an if step"));
            }
        } else if step.end == Some(false) {
            errors.push(note(format!("{path}.end"), "write \"end\": true, or remove the step"));
        }
        for (field, value) in [("next", &step.next), ("then", &step.then), ("else", &step.otherwise)] {
            if let Some(target) = value
                && !target_ok(target)
            {
                errors.push(note(format!("{path}.{field}"), format!("unknown step {target:?}")));
            }
        }
        if let Some(wait) = step.wait
            && wait == Duration::default()
        {
            errors.push(note(format!("{path}.wait"), "must be longer than 0"));
        }
        if let Some(email) = &step.email {
            if email.subject.trim().is_empty() {
                errors.push(note(format!("{path}.email.subject"), "must not be empty"));
            }
            if email.html.trim().is_empty() {
                errors.push(note(format!("{path}.email.html"), "must not be empty"));
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
            let count = usize::from(list.add.is_some())
                + usize::from(list.remove.is_some())
                + usize::from(list.move_to.is_some());
            if count != 1 {
                errors.push(note(format!("{path}.list"), "use exactly one of add, remove or move"));
            }
        }
        if let Some(condition) = &step.condition {
            check_condition(condition, &format!("{path}.if"), steps, &mut errors);
        }
    }
    if errors.is_empty() {
        unreachable_steps(flow, &mut errors);
        loops_without_wait(steps, &mut errors);
    }
    errors
}

fn check_condition(condition: &Condition, path: &str, steps: &BTreeMap<String, Step>, errors: &mut Vec<ConfigNote>) {
    let email_step = |id: &str| steps.get(id).is_some_and(|s| s.email.is_some());
    match condition {
        Condition::Named(name) if name == "purchased" || name == "clicked_any" => {}
        Condition::Named(name) => errors.push(note(path, format!("unknown condition {name:?}: use \"purchased\", \"clicked_any\", or an object like {{\"clicked\": STEP}}"))),
        Condition::Compound(c) => match c {
            CompoundCondition::Clicked(id) | CompoundCondition::Opened(id) => {
                let field = if matches!(c, CompoundCondition::Clicked(_)) { "clicked" } else { "opened" };
                if !email_step(id) {
                    errors.push(note(format!("{path}.{field}"), format!("{id:?} is not an email step")));
                }
            }
            CompoundCondition::InList(name) => {
                if name.trim().is_empty() {
                    errors.push(note(format!("{path}.in_list"), "must name a list"));
                }
            }
            CompoundCondition::All(items) | CompoundCondition::Any(items) => {
                let field = if matches!(c, CompoundCondition::All(_)) { "all" } else { "any" };
                if items.is_empty() {
                    errors.push(note(format!("{path}.{field}"), "must list at least one condition"));
                }
                for (i, item) in items.iter().enumerate() {
                    check_condition(item, &format!("{path}.{field}[{i}]"), steps, errors);
                }
            }
            CompoundCondition::Not(inner) => check_condition(inner, &format!("{path}.not"), steps, errors),
        },
    }
}

fn unreachable_steps(flow: &FlowConfig, errors: &mut Vec<ConfigNote>) {
    let mut seen = BTreeSet::new();
    let mut stack: Vec<&str> = [&flow.start, &flow.on_purchase, &flow.on_click, &flow.on_unsubscribe]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect();
    while let Some(id) = stack.pop() {
        if id == END || !seen.insert(id) {
            continue;
        }
        if let Some(step) = flow.steps.get(id) {
            stack.extend(successors(step));
        }
    }
    for id in flow.steps.keys() {
        if !seen.contains(id.as_str()) {
            errors
                .push(note(format!("steps.{id}"), "unreachable from start (or on_purchase, on_click, on_unsubscribe)"));
        }
    }
}

/// A cycle among steps that are not waits would spin without end within one event.
fn loops_without_wait(steps: &BTreeMap<String, Step>, errors: &mut Vec<ConfigNote>) {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Visiting,
        Done,
    }
    fn visit<'a>(
        id: &'a str,
        steps: &'a BTreeMap<String, Step>,
        marks: &mut BTreeMap<&'a str, Mark>,
        path: &mut Vec<&'a str>,
        errors: &mut Vec<ConfigNote>,
    ) {
        let Some(step) = steps.get(id) else { return };
        if step.wait.is_some() {
            return; // a wait breaks any loop through it
        }
        match marks.get(id) {
            Some(Mark::Done) => return,
            Some(Mark::Visiting) => {
                let start = path.iter().position(|p| *p == id).unwrap_or(0);
                let mut cycle: Vec<&str> = path[start..].to_vec();
                cycle.push(id);
                let from = path.last().copied().unwrap_or(id);
                let field =
                    steps.get(from).map(|s| if s.condition.is_some() { "if" } else { "next" }).unwrap_or("next");
                errors.push(note(format!("steps.{from}.{field}"), format!("loop {} never waits", cycle.join(" -> "))));
                return;
            }
            None => {}
        }
        marks.insert(id, Mark::Visiting);
        path.push(id);
        for next in successors(step) {
            visit(next, steps, marks, path, errors);
        }
        path.pop();
        marks.insert(id, Mark::Done);
    }
    let mut marks = BTreeMap::new();
    for id in steps.keys() {
        visit(id, steps, &mut marks, &mut Vec::new(), errors);
    }
}
