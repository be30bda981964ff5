//! The shape of a flow config (the public contract) and loading it from JSON.
//!
//! A flow is steps by id, a `start`, and optional jumps on purchase, click and unsubscribe.
//! Loading goes step by step rather than through one `serde` pass so that a producer sees every
//! broken step at once, each problem with its path (`steps.no_payment.email.kind`), instead of
//! only the first one serde trips on. The graph rules (targets, reachability, loops) live in
//! [`crate::validate`].

use std::collections::BTreeMap;

use funnel_sdk::{ConfigNote, Duration, note};
use serde::Deserialize;
use serde_json::{Map, Value};

/// The pseudo-step that ends the run; usable as `next`, `then`, `else` or a jump target.
pub const END: &str = "end";

/// The config exactly as the producer wrote it. The plugin's `Config` is raw JSON so that
/// `validate-config` can report every problem, not just the first serde meets; [`load`] turns
/// it into a [`FlowConfig`].
#[derive(Debug, Clone, Deserialize)]
#[serde(transparent)]
pub struct RawConfig(pub Value);

/// A whole flow, loaded.
#[derive(Debug, Clone, Default)]
pub struct FlowConfig {
    pub start: Option<String>,
    pub on_purchase: Option<String>,
    pub on_click: Option<String>,
    pub on_unsubscribe: Option<String>,
    /// The line added to a coupon email that does not show `{{coupon_code}}` itself, in the
    /// emails' language.
    pub coupon_line: Option<String>,
    pub steps: BTreeMap<String, Step>,
}

/// One step: exactly one action (email and sms may stand together) and where to go next.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Step {
    pub wait: Option<Duration>,
    pub email: Option<EmailAction>,
    pub sms: Option<SmsAction>,
    pub condition: Option<Condition>,
    pub then: Option<String>,
    pub otherwise: Option<String>,
    pub list: Option<ListAction>,
    pub end: Option<bool>,
    pub next: Option<String>,
    /// An A/B split: the host puts each lead in one variant (by weight, stable per lead) and
    /// the walk goes on at that variant's `next`.
    pub split: Option<Split>,
    /// The step did not load (its problem is already reported). It keeps only the targets that
    /// could be read, so reachability does not cascade into noise about the steps after it.
    pub broken: bool,
}

/// Whether the host may drop the message once the lead has bought.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    #[default]
    Recovery,
    Transactional,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailAction {
    pub subject: String,
    pub html: String,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub kind: Kind,
    /// Offer the binding's coupon (`{{coupon_code}}`).
    #[serde(default)]
    pub coupon: bool,
}

/// `{"split": {"variants": [{"name", "weight", "next"}, ...]}}`: 2 to 8 variants with unique
/// names, weights 0 to 10,000 (a positive sum), each going on to a step.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Split {
    pub variants: Vec<SplitVariant>,
}

/// One variant of a split.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitVariant {
    /// Names the variant in the timeline and in stats by variant.
    pub name: String,
    /// Its share of the leads (relative to the others').
    pub weight: u32,
    /// The step its leads go on to (or `end`).
    pub next: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsAction {
    pub body: String,
    #[serde(default)]
    pub kind: Kind,
}

/// `{"add": NAME}`, `{"remove": NAME}` or `{"move": {"from"?: NAME, "to": NAME}}`; validation
/// checks that exactly one is present.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListAction {
    pub add: Option<String>,
    pub remove: Option<String>,
    #[serde(rename = "move")]
    pub move_to: Option<MoveAction>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MoveAction {
    /// Without `from`, the lead leaves every other list.
    pub from: Option<String>,
    pub to: String,
}

/// A branch condition, evaluated when the walk reaches the `if` step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// `"purchased"`: the lead has bought.
    Purchased,
    /// `"clicked_any"`: a tracked link in any message was clicked.
    ClickedAny,
    /// `{"clicked": STEP}`: a tracked link in the message that email step sent was clicked.
    Clicked(String),
    /// `{"opened": STEP}`: the message that email step sent was opened.
    Opened(String),
    /// `{"in_list": NAME}`: the lead's contact is on that list.
    InList(String),
    /// `{"all": [...]}`
    All(Vec<Condition>),
    /// `{"any": [...]}`
    Any(Vec<Condition>),
    /// `{"not": C}`
    Not(Box<Condition>),
}

/// A step as serde reads it; the condition stays raw JSON because [`parse_condition`] reports
/// its problems with precise paths (serde's untagged enums only say "did not match").
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StepShape {
    wait: Option<Duration>,
    email: Option<EmailAction>,
    sms: Option<SmsAction>,
    #[serde(rename = "if")]
    condition: Option<Value>,
    then: Option<String>,
    #[serde(rename = "else")]
    otherwise: Option<String>,
    list: Option<ListAction>,
    end: Option<bool>,
    next: Option<String>,
    split: Option<Split>,
}

const TOP_FIELDS: &[&str] = &["start", "on_purchase", "on_click", "on_unsubscribe", "coupon_line", "steps"];

/// Load a config, or every shape problem found (each with its path).
pub fn load(raw: &RawConfig) -> Result<FlowConfig, Vec<ConfigNote>> {
    let (flow, problems) = load_lenient(raw);
    if problems.is_empty() { Ok(flow) } else { Err(problems) }
}

/// Load what can be loaded and list the problems. Broken steps are kept (marked `broken`) so
/// the graph rules can still run over the rest and report their own problems alongside.
pub fn load_lenient(raw: &RawConfig) -> (FlowConfig, Vec<ConfigNote>) {
    let mut problems = Vec::new();
    let mut flow = FlowConfig::default();
    let Some(top) = raw.0.as_object() else {
        problems.push(note("", "a flow config is a JSON object with \"start\" and \"steps\""));
        return (flow, problems);
    };
    for key in top.keys() {
        if !TOP_FIELDS.contains(&key.as_str()) {
            problems.push(note(key, format!("unknown field {key:?}, expected one of {}", TOP_FIELDS.join(", "))));
        }
    }
    flow.start = step_id(top, "start", &mut problems);
    flow.on_purchase = step_id(top, "on_purchase", &mut problems);
    flow.on_click = step_id(top, "on_click", &mut problems);
    flow.on_unsubscribe = step_id(top, "on_unsubscribe", &mut problems);
    match top.get("coupon_line") {
        None | Some(Value::Null) => {}
        Some(Value::String(line)) => match funnel_sdk::coupon::line_problem(line) {
            Some(problem) => problems.push(note("coupon_line", problem)),
            None => flow.coupon_line = Some(line.clone()),
        },
        Some(_) => problems.push(note("coupon_line", "must be a string that shows {{coupon_code}}")),
    }
    match top.get("steps") {
        None | Some(Value::Null) => problems.push(note("steps", "missing: a flow needs its steps, by id")),
        Some(Value::Object(steps)) => {
            for (id, value) in steps {
                flow.steps.insert(id.clone(), load_step(id, value, &mut problems));
            }
        }
        Some(_) => problems.push(note("steps", "must be an object of steps by id")),
    }
    (flow, problems)
}

/// An optional top-level step id (`null` counts as absent).
fn step_id(top: &Map<String, Value>, field: &str, problems: &mut Vec<ConfigNote>) -> Option<String> {
    match top.get(field) {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) => Some(id.clone()),
        Some(_) => {
            problems.push(note(field, "must be a step id (a string)"));
            None
        }
    }
}

fn load_step(id: &str, value: &Value, problems: &mut Vec<ConfigNote>) -> Step {
    let path = format!("steps.{id}");
    let broken = |problems: &mut Vec<ConfigNote>, notes: Vec<ConfigNote>| {
        for n in notes {
            let at = if n.path.is_empty() { path.clone() } else { format!("{path}.{}", n.path) };
            problems.push(note(at, n.message));
        }
        // Keep whatever targets are readable so the steps after this one stay reachable.
        let target = |field: &str| value.get(field).and_then(Value::as_str).map(str::to_string);
        // A split's readable targets too: a broken split must not make its branches unreachable.
        let split =
            value.get("split").and_then(|s| s.get("variants")).and_then(Value::as_array).map(|variants| Split {
                variants: variants
                    .iter()
                    .filter_map(|v| {
                        let next = v.get("next")?.as_str()?.to_string();
                        Some(SplitVariant { name: String::new(), weight: 0, next })
                    })
                    .collect(),
            });
        Step {
            next: target("next"),
            then: target("then"),
            otherwise: target("else"),
            split,
            broken: true,
            ..Step::default()
        }
    };
    if !value.is_object() {
        let msg = "a step is an object with one action, like {\"wait\": \"10m\", \"next\": \"...\"}";
        return broken(problems, vec![note("", msg)]);
    }
    // Re-serializing one step is cheap and gives serde's messages with paths inside the step.
    let shape: StepShape = match funnel_sdk::parse(&value.to_string()) {
        Ok(shape) => shape,
        Err(notes) => return broken(problems, notes),
    };
    let condition = match &shape.condition {
        None => None,
        Some(raw) => {
            let before = problems.len();
            let condition = parse_condition(raw, &format!("{path}.if"), problems);
            if problems.len() != before {
                return broken(problems, Vec::new());
            }
            condition
        }
    };
    Step {
        wait: shape.wait,
        email: shape.email,
        sms: shape.sms,
        condition,
        then: shape.then,
        otherwise: shape.otherwise,
        list: shape.list,
        end: shape.end,
        next: shape.next,
        split: shape.split,
        broken: false,
    }
}

const CONDITION_HELP: &str = "use \"purchased\", \"clicked_any\", or one of {\"clicked\": STEP}, {\"opened\": STEP}, \
                              {\"in_list\": NAME}, {\"all\": [...]}, {\"any\": [...]}, {\"not\": ...}";

/// Parse a condition, reporting every problem in it at its own path (`steps.x.if.all[1]`).
/// Whether a named step is an email step is a graph rule, checked in [`crate::validate`].
pub fn parse_condition(value: &Value, path: &str, problems: &mut Vec<ConfigNote>) -> Option<Condition> {
    match value {
        Value::String(name) => match name.as_str() {
            "purchased" => Some(Condition::Purchased),
            "clicked_any" => Some(Condition::ClickedAny),
            "clicked" | "opened" | "in_list" => {
                problems.push(note(path, format!("{name:?} needs an argument: {{{name:?}: ...}}")));
                None
            }
            _ => {
                problems.push(note(path, format!("unknown condition {name:?}: {CONDITION_HELP}")));
                None
            }
        },
        Value::Object(map) if map.len() == 1 => {
            let (key, arg) = map.iter().next()?;
            let at = format!("{path}.{key}");
            let name = |problems: &mut Vec<ConfigNote>, what: &str| match arg.as_str() {
                Some(s) => Some(s.to_string()),
                None => {
                    problems.push(note(&at, format!("must be {what} (a string)")));
                    None
                }
            };
            match key.as_str() {
                "clicked" => name(problems, "a step id").map(Condition::Clicked),
                "opened" => name(problems, "a step id").map(Condition::Opened),
                "in_list" => name(problems, "a list name").map(Condition::InList),
                "all" | "any" => {
                    let Some(items) = arg.as_array() else {
                        problems.push(note(&at, "must be a list of conditions"));
                        return None;
                    };
                    if items.is_empty() {
                        problems.push(note(&at, "must list at least one condition"));
                    }
                    let parsed: Vec<Option<Condition>> = items
                        .iter()
                        .enumerate()
                        .map(|(i, item)| parse_condition(item, &format!("{at}[{i}]"), problems))
                        .collect();
                    let parsed: Option<Vec<Condition>> = parsed.into_iter().collect();
                    match (parsed, key.as_str()) {
                        (Some(items), "all") => Some(Condition::All(items)),
                        (Some(items), _) => Some(Condition::Any(items)),
                        (None, _) => None,
                    }
                }
                "not" => parse_condition(arg, &at, problems).map(|c| Condition::Not(Box::new(c))),
                _ => {
                    problems.push(note(path, format!("unknown condition {key:?}: {CONDITION_HELP}")));
                    None
                }
            }
        }
        Value::Object(map) => {
            let keys: Vec<&str> = map.keys().map(String::as_str).collect();
            let found = if keys.is_empty() { "none".to_string() } else { keys.join(", ") };
            problems.push(note(path, format!("a condition object has exactly one key; found {found}")));
            None
        }
        _ => {
            problems.push(note(path, format!("a condition is a string or an object: {CONDITION_HELP}")));
            None
        }
    }
}
