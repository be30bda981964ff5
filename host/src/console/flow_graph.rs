//! A `flow` config drawn as SVG on the server: steps as boxes in rows by distance from the
//! start, `next` arrows plain, `then`/`else` arrows labelled yes/no, a split's arrows labelled
//! with each variant's name and share, event exits ("on
//! purchase → thanks") as labelled tabs entering their target, jumps back up routed along the
//! right edge, and each box showing its live counts. The config is read leniently (the plugin's
//! `validate-config` is the judge of what is valid); a step it cannot read is still drawn.
//! Every text from the config is XML-escaped.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt::Write;

use serde_json::Value;

use super::i18n::Strings;
use crate::store::console::StepCounts;

const W: i64 = 250;
const H: i64 = 86;
const GAP_X: i64 = 36;
const GAP_Y: i64 = 64;
/// Room on the left for the event-exit tabs.
const LEFT: i64 = 150;
const TOP: i64 = 20;
/// The pseudo-step that ends a run.
const END: &str = "end";

/// What a step does, for its box.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Step {
    pub id: String,
    pub kind: &'static str,
    pub summary: String,
    /// Outgoing edges: (target, label kind).
    pub edges: Vec<(String, EdgeKind)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum EdgeKind {
    Next,
    Yes,
    No,
    /// A split's variant: its label (name and share of the leads).
    Variant(String),
}

/// A flow as drawn.
#[derive(Clone, Debug, Default)]
pub(crate) struct Graph {
    pub start: Option<String>,
    pub steps: BTreeMap<String, Step>,
    /// (event name, target step)
    pub exits: Vec<(&'static str, String)>,
}

fn short(text: &str, max: usize) -> String {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.chars().count() <= max {
        text
    } else {
        format!("{}…", text.chars().take(max.saturating_sub(1)).collect::<String>())
    }
}

fn condition_text(c: &Value) -> String {
    match c {
        Value::String(s) => s.clone(),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => format!("{k} {s}"),
                Value::Array(items) => {
                    format!("{k}({})", items.iter().map(condition_text).collect::<Vec<_>>().join(", "))
                }
                other => format!("{k} {}", condition_text(other)),
            })
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    }
}

/// Read a flow config as far as it can be read.
pub(crate) fn parse(config: &Value) -> Graph {
    let mut graph = Graph { start: config["start"].as_str().map(str::to_string), ..Graph::default() };
    for (event, field) in [("purchase", "on_purchase"), ("click", "on_click"), ("unsubscribe", "on_unsubscribe")] {
        if let Some(target) = config[field].as_str() {
            graph.exits.push((event, target.to_string()));
        }
    }
    let Some(steps) = config["steps"].as_object() else { return graph };
    for (id, s) in steps {
        let target = |f: &str| s[f].as_str().map(str::to_string);
        let mut edges = Vec::new();
        let (kind, summary) = if let Some(wait) = s.get("wait") {
            ("wait", format!("wait {}", wait.as_str().unwrap_or("?")))
        } else if s.get("if").is_some() {
            ("if", format!("if {}", condition_text(&s["if"])))
        } else if s.get("email").is_some() || s.get("sms").is_some() {
            let mut parts = Vec::new();
            if let Some(subject) = s["email"]["subject"].as_str() {
                parts.push(format!("email “{subject}”"));
            }
            if let Some(body) = s["sms"]["body"].as_str() {
                parts.push(format!("sms “{body}”"));
            }
            (if s.get("email").is_some() { "email" } else { "sms" }, parts.join(" + "))
        } else if let Some(list) = s.get("list") {
            let action = ["add", "remove"]
                .iter()
                .find_map(|a| list[*a].as_str().map(|n| format!("list: {a} {n}")))
                .or_else(|| list["move"]["to"].as_str().map(|n| format!("list: move to {n}")))
                .unwrap_or_else(|| "list".into());
            ("list", action)
        } else if let Some(variants) = s["split"]["variants"].as_array() {
            let total: u64 = variants.iter().filter_map(|v| v["weight"].as_u64()).sum();
            for v in variants {
                let name = v["name"].as_str().unwrap_or("?");
                let share = match (v["weight"].as_u64(), total) {
                    (Some(w), t) if t > 0 => format!("{}%", (w * 100 + t / 2) / t),
                    _ => "?".to_string(),
                };
                if let Some(next) = v["next"].as_str() {
                    edges.push((next.to_string(), EdgeKind::Variant(short(&format!("{name} {share}"), 18))));
                }
            }
            let names: Vec<&str> = variants.iter().filter_map(|v| v["name"].as_str()).collect();
            ("split", format!("A/B split: {}", names.join(" / ")))
        } else if s.get("end").is_some() {
            ("end", "end".into())
        } else if s.get("next").is_some() {
            ("goto", format!("go to {}", s["next"].as_str().unwrap_or("?")))
        } else {
            ("unknown", "?".into())
        };
        if let Some(t) = target("then") {
            edges.push((t, EdgeKind::Yes));
        }
        if let Some(t) = target("else") {
            edges.push((t, EdgeKind::No));
        }
        if let Some(t) = target("next") {
            edges.push((t, EdgeKind::Next));
        }
        graph.steps.insert(id.clone(), Step { id: id.clone(), kind, summary: short(&summary, 34), edges });
    }
    graph
}

/// Rows: steps by distance from the start (breadth first), steps the start does not reach
/// in a last row, in config order.
fn rows(graph: &Graph) -> Vec<Vec<String>> {
    let mut rank: HashMap<&str, usize> = HashMap::new();
    let mut queue = VecDeque::new();
    let mut order: Vec<&str> = Vec::new();
    let mut seeds: Vec<&str> = graph.start.iter().map(String::as_str).collect();
    // Exit targets start their own branches when nothing else leads there.
    seeds.extend(graph.exits.iter().map(|(_, t)| t.as_str()));
    for seed in seeds {
        if graph.steps.contains_key(seed) && !rank.contains_key(seed) {
            let r = if Some(seed) == graph.start.as_deref() { 0 } else { 1 };
            rank.insert(seed, r);
            order.push(seed);
            queue.push_back(seed);
        }
        while let Some(id) = queue.pop_front() {
            let r = rank[id];
            for (to, _) in &graph.steps[id].edges {
                if to != END && graph.steps.contains_key(to.as_str()) && !rank.contains_key(to.as_str()) {
                    rank.insert(to, r + 1);
                    order.push(to);
                    queue.push_back(to);
                }
            }
        }
    }
    let deepest = rank.values().copied().max().map_or(0, |m| m + 1);
    for id in graph.steps.keys() {
        if !rank.contains_key(id.as_str()) {
            rank.insert(id, deepest);
            order.push(id);
        }
    }
    let mut rows: Vec<Vec<String>> = vec![Vec::new(); rank.values().copied().max().map_or(0, |m| m + 1)];
    for id in order {
        rows[rank[id]].push(id.to_string());
    }
    rows.retain(|r| !r.is_empty());
    rows
}

pub(crate) fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The counts line of a step's box.
pub(crate) fn counts_text(t: &Strings, kind: &str, c: &StepCounts) -> String {
    match kind {
        "wait" => format!("{} {}", c.waiting, t.flow_waiting),
        "email" | "sms" => format!(
            "{} {} · {} {} · {} {}",
            c.sent, t.flow_sent, c.clicked, t.flow_clicked, c.recovered, t.flow_recovered
        ),
        _ if c.waiting > 0 => format!("{} {}", c.waiting, t.flow_waiting),
        _ => String::new(),
    }
}

/// The SVG of a flow: boxes, arrows, labels and counts. `broken` names steps with errors.
pub(crate) fn svg(
    graph: &Graph,
    counts: &HashMap<String, StepCounts>,
    broken: &HashSet<String>,
    t: &Strings,
) -> String {
    let rows = rows(graph);
    let widest = rows.iter().map(Vec::len).max().unwrap_or(1).max(1) as i64;
    let inner = widest * W + (widest - 1) * GAP_X;
    let width = LEFT + inner + 90;
    let height = TOP + rows.len().max(1) as i64 * (H + GAP_Y) + 10;
    let mut at: HashMap<&str, (i64, i64)> = HashMap::new();
    for (r, row) in rows.iter().enumerate() {
        let row_w = row.len() as i64 * W + (row.len() as i64 - 1) * GAP_X;
        let x0 = LEFT + (inner - row_w) / 2;
        for (i, id) in row.iter().enumerate() {
            at.insert(id, (x0 + i as i64 * (W + GAP_X), TOP + r as i64 * (H + GAP_Y)));
        }
    }
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="flow" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" aria-labelledby="flow-title"><title id="flow-title">{}</title>"#,
        esc(t.flow_drawing)
    );
    s.push_str(
        r#"<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" class="arrowhead"/></marker></defs>"#,
    );
    let mut labels = String::new();
    let mut back = 0;
    for step in graph.steps.values() {
        let Some(&(sx, sy)) = at.get(step.id.as_str()) else { continue };
        let n = step.edges.len() as i64;
        for (i, (to, kind)) in step.edges.iter().enumerate() {
            let label = match kind {
                EdgeKind::Yes => Some(t.flow_yes),
                EdgeKind::No => Some(t.flow_no),
                EdgeKind::Variant(name) => Some(name.as_str()),
                EdgeKind::Next => None,
            };
            let class = match kind {
                EdgeKind::Yes => "edge yes",
                EdgeKind::No => "edge no",
                EdgeKind::Variant(_) => "edge variant",
                EdgeKind::Next => "edge",
            };
            // Leave from spread points along the bottom so yes/no do not overlap.
            let ox = sx + W * (i as i64 + 1) / (n + 1);
            let oy = sy + H;
            if to == END || !at.contains_key(to.as_str()) {
                let (ex, ey) = (ox, oy + 26);
                let _ =
                    write!(s, r#"<path class="{class}" d="M{ox},{oy} L{ex},{}" marker-end="url(#arrow)"/>"#, ey - 8);
                let name = if to == END { t.flow_end.to_string() } else { format!("? {to}") };
                let _ = write!(
                    s,
                    r#"<circle class="end-dot" cx="{ex}" cy="{}" r="7"/><text class="end-label" x="{}" y="{}">{}</text>"#,
                    ey,
                    ex + 11,
                    ey + 4,
                    esc(&name)
                );
                if let Some(label) = label {
                    let _ = write!(labels, "{}", label_at(ox - 16, oy + 12, label, kind));
                }
                continue;
            }
            let (tx, ty) = at[to.as_str()];
            let (ix, iy) = (tx + W / 2, ty);
            if ty > sy {
                let mid = (oy + iy) / 2;
                let _ = write!(
                    s,
                    r#"<path class="{class}" d="M{ox},{oy} C{ox},{mid} {ix},{mid} {ix},{}" marker-end="url(#arrow)"/>"#,
                    iy - 2
                );
                if let Some(label) = label {
                    // A split's arrows may share a target: their labels sit where they leave.
                    let (lx, ly) =
                        if matches!(kind, EdgeKind::Variant(_)) { (ox, oy + 14) } else { ((ox + ix) / 2, mid) };
                    let _ = write!(labels, "{}", label_at(lx, ly, label, kind));
                }
            } else {
                // Back (or sideways): out of the right side, around, into the target's right.
                back += 1;
                let far = LEFT + inner + 20 + back * 12;
                let (fx, fy) = (sx + W, sy + H / 2);
                let (rx, ry) = (tx + W, ty + H / 2);
                let _ = write!(
                    s,
                    r#"<path class="{class} back" d="M{fx},{fy} L{far},{fy} L{far},{ry} L{},{ry}" marker-end="url(#arrow)"/>"#,
                    rx + 2
                );
                if let Some(label) = label {
                    let _ = write!(labels, "{}", label_at(far, (fy + ry) / 2, label, kind));
                }
            }
        }
    }
    // Event exits: a tab on the left pointing into the target.
    let mut per_target: HashMap<&str, i64> = HashMap::new();
    for (event, target) in &graph.exits {
        let Some(&(tx, ty)) = at.get(target.as_str()) else { continue };
        let k = per_target.entry(target).or_insert(0);
        let y = ty + 18 + *k * 26;
        *k += 1;
        let name = match *event {
            "purchase" => t.flow_on_purchase,
            "click" => t.flow_on_click,
            _ => t.flow_on_unsubscribe,
        };
        let tab_w = LEFT - 24;
        let tab_x = (tx - tab_w - 26).max(4);
        let _ = write!(
            s,
            r#"<g class="exit"><rect x="{tab_x}" y="{}" width="{tab_w}" height="22" rx="11"/><text x="{}" y="{}">{}</text><path class="edge exit-edge" d="M{},{y} L{},{y}" marker-end="url(#arrow)"/></g>"#,
            y - 11,
            tab_x + tab_w / 2,
            y + 4,
            esc(name),
            tab_x + tab_w,
            tx - 2
        );
    }
    for step in graph.steps.values() {
        let Some(&(x, y)) = at.get(step.id.as_str()) else { continue };
        let is_start = graph.start.as_deref() == Some(step.id.as_str());
        let class = format!(
            "step k-{}{}{}",
            step.kind,
            if broken.contains(&step.id) { " broken" } else { "" },
            if is_start { " start" } else { "" }
        );
        let c = counts.get(&step.id).copied().unwrap_or_default();
        let line = counts_text(t, step.kind, &c);
        let _ = write!(
            s,
            r#"<g class="{class}" data-step="{}"><rect x="{x}" y="{y}" width="{W}" height="{H}" rx="10"/><text class="step-id" x="{}" y="{}">{}{}</text><text class="step-summary" x="{}" y="{}">{}</text><text class="step-counts" x="{}" y="{}" data-counts="{}">{}</text></g>"#,
            esc(&step.id),
            x + 12,
            y + 22,
            if is_start { "▶ " } else { "" },
            esc(&short(&step.id, 26)),
            x + 12,
            y + 44,
            esc(&step.summary),
            x + 12,
            y + 70,
            esc(&format!("{},{},{},{}", c.waiting, c.sent, c.clicked, c.recovered)),
            esc(&line)
        );
    }
    s.push_str(&labels);
    s.push_str("</svg>");
    s
}

fn label_at(x: i64, y: i64, text: &str, kind: &EdgeKind) -> String {
    let class = match kind {
        EdgeKind::Yes => "label yes",
        EdgeKind::Variant(_) => "label variant",
        _ => "label no",
    };
    let w = 10 + 7 * text.chars().count() as i64;
    format!(
        r#"<g class="{class}"><rect x="{}" y="{}" width="{w}" height="18" rx="9"/><text x="{x}" y="{}">{}</text></g>"#,
        x - w / 2,
        y - 9,
        y + 4,
        esc(text)
    )
}

/// A flow config as JSON for the editor, in reading order: `start` and the exits first, then
/// the steps as drawn (from the start down), each with its action before where it goes next.
/// (serde_json's map keeps keys sorted, which would list steps alphabetically.)
pub(crate) fn pretty(config: &Value) -> String {
    let order: Vec<String> = match config["steps"].as_object() {
        Some(_) => rows(&parse(config)).into_iter().flatten().collect(),
        None => Vec::new(),
    };
    let mut out = String::new();
    write_pretty(config, &mut Vec::new(), &order, 0, &mut out);
    out
}

const TOP_ORDER: &[&str] = &["start", "on_purchase", "on_click", "on_unsubscribe", "steps"];
const STEP_ORDER: &[&str] = &["wait", "email", "sms", "if", "list", "split", "end", "then", "else", "next"];
const EMAIL_ORDER: &[&str] = &["subject", "html", "text", "body", "kind", "coupon"];

fn ordered_keys<'a>(map: &'a serde_json::Map<String, Value>, first: &[&str], steps: &'a [String]) -> Vec<&'a String> {
    let mut keys: Vec<&String> = Vec::with_capacity(map.len());
    for k in first.iter().map(|k| k.to_string()).chain(steps.iter().cloned()) {
        if let Some((key, _)) = map.get_key_value(&k)
            && !keys.contains(&key)
        {
            keys.push(key);
        }
    }
    for key in map.keys() {
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys
}

fn write_pretty(v: &Value, path: &mut Vec<String>, steps: &[String], depth: usize, out: &mut String) {
    let pad = "  ".repeat(depth);
    match v {
        Value::Object(map) if !map.is_empty() => {
            let keys = match (path.len(), path.first().map(String::as_str)) {
                (0, _) => ordered_keys(map, TOP_ORDER, &[]),
                (1, Some("steps")) => ordered_keys(map, &[], steps),
                (2, Some("steps")) => ordered_keys(map, STEP_ORDER, &[]),
                (3, Some("steps")) => ordered_keys(map, EMAIL_ORDER, &[]),
                _ => ordered_keys(map, &[], &[]),
            };
            out.push_str("{\n");
            for (i, key) in keys.iter().enumerate() {
                out.push_str(&pad);
                out.push_str("  ");
                out.push_str(&Value::String((*key).clone()).to_string());
                out.push_str(": ");
                path.push((*key).clone());
                write_pretty(&map[*key], path, steps, depth + 1, out);
                path.pop();
                if i + 1 < keys.len() {
                    out.push(',');
                }
                out.push('\n');
            }
            out.push_str(&pad);
            out.push('}');
        }
        Value::Array(items) if !items.is_empty() => {
            out.push_str("[\n");
            for (i, item) in items.iter().enumerate() {
                out.push_str(&pad);
                out.push_str("  ");
                write_pretty(item, path, steps, depth + 1, out);
                if i + 1 < items.len() {
                    out.push(',');
                }
                out.push('\n');
            }
            out.push_str(&pad);
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// The step a config error path is about (`steps.no_payment.email.subject` → `no_payment`).
pub(crate) fn step_of(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("config.").unwrap_or(path).strip_prefix("steps.")?;
    Some(rest.split(['.', '[']).next().unwrap_or(rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference() -> Value {
        serde_json::from_str(include_str!("../../../examples/flows/getall-abandoned-cart.json")).expect("example")
    }

    #[test]
    fn the_reference_funnel_draws_every_step_and_labels_its_branches() {
        let graph = parse(&reference());
        assert_eq!(graph.start.as_deref(), Some("wait_10m"));
        assert_eq!(graph.exits, vec![("purchase", "thanks".to_string())]);
        let mut counts = HashMap::new();
        counts.insert("wait_1d".to_string(), StepCounts { waiting: 3, ..StepCounts::default() });
        let t = super::super::i18n::Lang::En.strings();
        let svg = svg(&graph, &counts, &HashSet::new(), t);
        for id in ["wait_10m", "no_payment", "wait_1d", "clicked", "problems", "bought", "thanks", "inactive"] {
            assert!(svg.contains(&format!("data-step=\"{id}\"")), "{id} drawn");
        }
        assert!(svg.contains(">yes<") && svg.contains(">no<"), "branches labelled");
        assert!(svg.contains(">on purchase<"), "event exit labelled");
        assert!(svg.contains("3 waiting"), "counts shown");
        let clicked = &graph.steps["clicked"];
        assert_eq!(clicked.edges, vec![("wait_1h".into(), EdgeKind::Yes), ("problems".into(), EdgeKind::No)]);
    }

    #[test]
    fn a_split_draws_one_labelled_arrow_per_variant() {
        let config = serde_json::json!({"start": "s", "steps": {
            "s": {"split": {"variants": [{"name": "short", "weight": 1, "next": "a"}, {"name": "long", "weight": 3, "next": "end"}]}},
            "a": {"end": true}}});
        let graph = parse(&config);
        let split = &graph.steps["s"];
        assert_eq!((split.kind, split.summary.as_str()), ("split", "A/B split: short / long"));
        assert_eq!(
            split.edges,
            vec![
                ("a".into(), EdgeKind::Variant("short 25%".into())),
                ("end".into(), EdgeKind::Variant("long 75%".into()))
            ]
        );
        let svg = svg(&graph, &HashMap::new(), &HashSet::new(), super::super::i18n::Lang::En.strings());
        assert!(svg.contains(">short 25%<") && svg.contains(">long 75%<"), "{svg}");
        assert!(svg.contains("edge variant"));
    }

    #[test]
    fn config_text_is_escaped_in_the_drawing() {
        let config = serde_json::json!({"start": "<s>", "steps": {"<s>": {"email": {"subject": "<script>x</script>", "html": "h"}, "next": "end"}}});
        let svg = svg(&parse(&config), &HashMap::new(), &HashSet::new(), super::super::i18n::Lang::En.strings());
        assert!(!svg.contains("<script>") && !svg.contains("<s>"));
        assert!(svg.contains("&lt;script&gt;"));
    }

    #[test]
    fn the_editor_lists_steps_in_drawing_order_and_the_json_round_trips() {
        let config = reference();
        let text = pretty(&config);
        assert!(text.starts_with("{\n  \"start\": \"wait_10m\""), "{text}");
        let at = |step: &str| text.find(&format!("\"{step}\": {{")).expect(step);
        assert!(
            at("wait_10m") < at("no_payment") && at("no_payment") < at("wait_1d") && at("clicked") < at("inactive")
        );
        assert_eq!(serde_json::from_str::<Value>(&text).expect("valid JSON"), config);
    }

    #[test]
    fn error_paths_name_their_step() {
        assert_eq!(step_of("config.steps.no_payment.email.subject"), Some("no_payment"));
        assert_eq!(step_of("steps.a[0]"), Some("a"));
        assert_eq!(step_of("config.start"), None);
    }
}
