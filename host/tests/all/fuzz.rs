//! Fuzzing on stable Rust (proptest): random and mutated inputs at every edge a producer, a
//! platform or a plugin controls. Properties: nothing panics, HTTP never answers 5xx, and a
//! refusal is problem+json naming the field it is about.
//!
//! Each property runs `PROPTEST_CASES` cases (64 unless set; uploads a quarter of that, each
//! compiles a component) from a fixed seed (`PROPTEST_RNG_SEED` picks another: CI runs the same
//! cases every time, so a red run is a real one and never a roll of the dice) and writes `fuzz: <property>: <n> cases (<total> so far)` to stderr,
//! which `cargo test` shows even for passing tests. A failure prints the shrunk input; proptest
//! saves it under `proptest-regressions/` so the next run tries it first.
//!
//! - HTTP, through the real router on loopback over an engine on a virtual clock (SQLite):
//!   event bodies, batch bodies (mutated valid ones and raw bytes), both built-in plugins'
//!   configs (`PUT /v1/bindings`), uploaded bytes (random, and `TEST_GUEST` mutated).
//! - Pure: durations (`funnel_sdk::Duration`), templates (`delivery::template::render`),
//!   scenarios (`funnel_sdk::wire::Scenario`).
//! - Plugin effects: the test guest's `random-effects` mode makes random capability calls; run
//!   straight through the runtime, and through the whole engine (dispatch, timers, delivery).

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};

use funnel_host::clock::Clock;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};

use crate::api_server::{self, PLATFORM, Server, TapEvent};
use crate::db::{Db, TestDb};

/// Cases run by every property of this run so far.
static TOTAL: AtomicUsize = AtomicUsize::new(0);

/// Cases per property: `PROPTEST_CASES`, or 64.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64)
}

/// Run `test` on `cases` inputs of `strategy`; fail with the shrunk input; report the count.
fn fuzz<S: Strategy>(name: &str, cases: u32, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>) {
    let ran = AtomicUsize::new(0);
    let mut config = Config { cases, failure_persistence: None, ..Config::default() };
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        config.rng_seed = proptest::test_runner::RngSeed::Fixed(0x66_75_6e_6e_65_6c);
    }
    let mut runner = TestRunner::new(config);
    let result = runner.run(&strategy, |input| {
        ran.fetch_add(1, Ordering::Relaxed);
        test(input)
    });
    let ran = ran.load(Ordering::Relaxed);
    let total = TOTAL.fetch_add(ran, Ordering::Relaxed) + ran;
    // Straight to stderr, not eprintln!: the test harness captures only the print macros, and the
    // count is wanted on green runs too.
    let _ = writeln!(std::io::stderr(), "fuzz: {name}: {ran} cases ({total} so far)");
    if let Err(e) = result {
        panic!("fuzz {name}: {e}");
    }
}

/// A multi-threaded runtime for one property: the server's tasks run on it between cases.
fn tokio() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

// ---- inputs -------------------------------------------------------------------------------

/// Strings that matter at our edges: empty, long, control characters (NUL included), markup,
/// template syntax, multi-byte and right-to-left characters, email-looking and URL-looking text.
fn nasty_string() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just(String::new()),
        "[a-z]{1,8}",
        Just("\0".to_string()),
        Just("\r\n".to_string()),
        Just("\u{7f}\u{202e}".to_string()),
        Just("ç🙂".to_string()),
        Just("@".to_string()),
        Just("x<victim@example.com>".to_string()),
        Just("ana@example.com".to_string()),
        Just("{{first_name}}".to_string()),
        Just("{% for %}".to_string()),
        Just("<script>".to_string()),
        Just("https://".to_string()),
        Just("#1".to_string()),
        Just(" ".to_string()),
        "[0-9]{1,4}",
        any::<String>(),
    ];
    prop_oneof![
        8 => proptest::collection::vec(piece, 0..6).prop_map(|p| p.concat()),
        1 => (0usize..3000).prop_map(|n| "x".repeat(n)),
    ]
}

/// Any JSON value, nested a little.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("JSON has no NaN", |f| f.is_finite()).prop_map(Value::from),
        Just(json!(u64::MAX)),
        Just(json!(-1)),
        nasty_string().prop_map(Value::from),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..3).prop_map(Value::from),
            proptest::collection::btree_map(nasty_string(), inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// One change to a JSON document: at the node picked by `at` (a path of choices), replace it,
/// remove it from its parent, or add a key.
#[derive(Clone, Debug)]
enum Mutation {
    Replace(Vec<usize>, Value),
    Remove(Vec<usize>),
    AddKey(Vec<usize>, String, Value),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let at = proptest::collection::vec(any::<usize>(), 0..5);
    prop_oneof![
        4 => (at.clone(), json_value()).prop_map(|(a, v)| Mutation::Replace(a, v)),
        1 => at.clone().prop_map(Mutation::Remove),
        1 => (at, nasty_string(), json_value()).prop_map(|(a, k, v)| Mutation::AddKey(a, k, v)),
    ]
}

/// Follow `at` into `doc` (each choice picks a child, modulo their count) and apply `f` to the
/// parent and the key or index reached.
fn walk(doc: &mut Value, at: &[usize], f: &mut dyn FnMut(&mut Value, Option<ChildRef>)) {
    let children = match doc {
        Value::Object(m) => m.len(),
        Value::Array(a) => a.len(),
        _ => 0,
    };
    let Some((&choice, rest)) = at.split_first().filter(|_| children > 0) else {
        return f(doc, None);
    };
    let i = choice % children;
    let is_leafward = rest.is_empty()
        || match doc {
            Value::Object(m) => !matches!(m.values().nth(i), Some(Value::Object(_) | Value::Array(_))),
            Value::Array(a) => !matches!(a.get(i), Some(Value::Object(_) | Value::Array(_))),
            _ => true,
        };
    if is_leafward {
        let child = match doc {
            Value::Object(m) => ChildRef::Key(m.keys().nth(i).cloned().unwrap_or_default()),
            _ => ChildRef::Index(i),
        };
        return f(doc, Some(child));
    }
    let next = match doc {
        Value::Object(m) => m.values_mut().nth(i),
        Value::Array(a) => a.get_mut(i),
        _ => None,
    };
    if let Some(next) = next {
        walk(next, rest, f);
    }
}

enum ChildRef {
    Key(String),
    Index(usize),
}

fn apply(mut doc: Value, mutations: &[Mutation]) -> Value {
    for m in mutations {
        let at = match m {
            Mutation::Replace(at, _) | Mutation::Remove(at) | Mutation::AddKey(at, _, _) => at.clone(),
        };
        walk(&mut doc, &at, &mut |parent, child| match (m, child, parent) {
            (Mutation::Replace(_, v), Some(ChildRef::Key(k)), Value::Object(o)) => {
                o.insert(k, v.clone());
            }
            (Mutation::Replace(_, v), Some(ChildRef::Index(i)), Value::Array(a)) => a[i] = v.clone(),
            (Mutation::Replace(_, v), None, p) => *p = v.clone(),
            (Mutation::Remove(_), Some(ChildRef::Key(k)), Value::Object(o)) => {
                o.remove(&k);
            }
            (Mutation::Remove(_), Some(ChildRef::Index(i)), Value::Array(a)) => {
                a.remove(i);
            }
            (Mutation::AddKey(_, k, v), _, Value::Object(o)) => {
                o.insert(k.clone(), v.clone());
            }
            _ => {}
        });
    }
    doc
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    proptest::collection::vec(mutation(), 1..4)
}

// ---- the HTTP checks ------------------------------------------------------------------------

/// A response must not be a 5xx; a refusal must be problem+json and, when it is a 422 about the
/// body, name at least one field.
async fn check_answer(resp: reqwest::Response, input: &str) -> Result<(u16, Value), TestCaseError> {
    let status = resp.status().as_u16();
    let problem_json = resp.headers().get("content-type").is_some_and(|v| v.as_bytes() == b"application/problem+json");
    let text = resp.text().await.map_err(|e| TestCaseError::fail(format!("reading the answer: {e}")))?;
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    prop_assert!(status < 500, "answered {status} to {input}: {body}");
    if status >= 400 {
        prop_assert!(problem_json, "a {status} is problem+json: {body} (input {input})");
    }
    if status == 422 {
        let errors = body["errors"].as_array().cloned().unwrap_or_default();
        prop_assert!(!errors.is_empty(), "a 422 names its fields: {body} (input {input})");
        for e in errors {
            prop_assert!(
                e["path"].as_str().is_some_and(|p| !p.is_empty())
                    && e["message"].as_str().is_some_and(|m| !m.is_empty()),
                "each error names a field and says why: {body} (input {input})"
            );
        }
    }
    Ok((status, body))
}

async fn post(s: &Server, path: &str, token: &str, body: Vec<u8>) -> Result<(u16, Value), TestCaseError> {
    let shown = String::from_utf8_lossy(&body[..body.len().min(2000)]).into_owned();
    let resp = s
        .request(reqwest::Method::POST, path, Some(token))
        .body(body)
        .send()
        .await
        .map_err(|e| TestCaseError::fail(format!("request failed: {e}")))?;
    check_answer(resp, &shown).await
}

/// A server on SQLite with one producer: (keep-alive guard, server, producer id, key).
async fn server() -> (TestDb, Server, String, String) {
    server_on(Db::Sqlite).await
}

async fn server_on(kind: Db) -> (TestDb, Server, String, String) {
    let (db, store) = TestDb::with_store(kind).await;
    let s = api_server::start(store).await;
    let (producer, key) = s.producer().await;
    (db, s, producer, key)
}

// ---- properties ---------------------------------------------------------------------------

#[test]
fn fuzz_event_bodies_sqlite() {
    event_bodies(Db::Sqlite);
}

#[test]
#[cfg_attr(not(funnel_postgres), ignore = "PostgreSQL is not configured: set FUNNEL_TEST_POSTGRES_URL")]
fn fuzz_event_bodies_postgres() {
    event_bodies(Db::Postgres);
}

fn event_bodies(kind: Db) {
    let rt = tokio();
    let (_db, s, producer, _) = rt.block_on(server_on(kind));
    let n = AtomicUsize::new(0);
    let accepted = AtomicUsize::new(0);
    fuzz(&format!("event bodies ({kind:?})"), cases(), mutations(), |m| {
        let i = n.fetch_add(1, Ordering::Relaxed);
        let valid =
            api_server::event(&format!("fz-{i}"), &producer, "ana@example.com").tap_checkout(&format!("chk-{i}"));
        let body = apply(valid, &m).to_string().into_bytes();
        let (status, _) = rt.block_on(post(&s, "/v1/events", PLATFORM, body))?;
        if status == 202 {
            accepted.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    });
    let (accepted, all) = (accepted.into_inner(), n.into_inner());
    assert!(accepted > 0 && accepted < all, "the inputs reach both answers: {accepted} of {all} accepted");
}

#[test]
fn fuzz_raw_bodies() {
    let rt = tokio();
    let (_db, s, _, _) = rt.block_on(server());
    let strategy = (proptest::collection::vec(any::<u8>(), 0..300), any::<bool>());
    fuzz("raw bodies", cases(), strategy, |(raw, batch)| {
        let path = if batch { "/v1/events/batch" } else { "/v1/events" };
        rt.block_on(post(&s, path, PLATFORM, raw)).map(drop)
    });
}

#[test]
fn fuzz_batch_bodies() {
    let rt = tokio();
    let (_db, s, producer, _) = rt.block_on(server());
    let n = AtomicUsize::new(0);
    let strategy = (0usize..6, mutations(), any::<bool>());
    fuzz("batch bodies", cases(), strategy, |(size, m, mutate_whole)| {
        let i = n.fetch_add(1, Ordering::Relaxed);
        let events: Vec<Value> = (0..size)
            .map(|j| {
                api_server::event(&format!("fzb-{i}-{j}"), &producer, &format!("b{j}@example.com"))
                    .tap_checkout(&format!("chkb-{i}-{j}"))
            })
            .collect();
        let batch = json!({ "events": events });
        let body = if mutate_whole {
            apply(batch, &m)
        } else {
            // Mutate inside one event only, so the paths named carry an index.
            let mut batch = batch;
            if let Some(e) = batch["events"].as_array_mut().and_then(|a| a.first_mut()) {
                *e = apply(e.take(), &m);
            }
            batch
        };
        let (status, answer) = rt.block_on(post(&s, "/v1/events/batch", PLATFORM, body.to_string().into_bytes()))?;
        if status == 422 && !mutate_whole {
            let paths: Vec<&str> =
                answer["errors"].as_array().into_iter().flatten().filter_map(|e| e["path"].as_str()).collect();
            prop_assert!(paths.iter().all(|p| p.starts_with("events")), "paths name the event: {answer}");
        }
        Ok(())
    });
}

fn config_fuzz(name: &str, plugin: &str, config: Value) {
    let rt = tokio();
    let (_db, s, _, key) = rt.block_on(server());
    fuzz(name, cases(), mutations(), |m| {
        let binding = json!({"plugin": plugin, "config": apply(config.clone(), &m)});
        let body = binding.to_string();
        let resp = rt
            .block_on(s.request(reqwest::Method::PUT, "/v1/bindings", Some(&key)).body(body.clone()).send())
            .map_err(|e| TestCaseError::fail(format!("request failed: {e}")))?;
        rt.block_on(check_answer(resp, &body)).map(drop)
    });
}

fn example(path: &str) -> Value {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path);
    serde_json::from_str(&std::fs::read_to_string(&file).expect("example")).expect("example JSON")
}

#[test]
fn fuzz_four_emails_configs() {
    let mut config = example("examples/four-emails/config.json");
    // No coupons: the binding has no product and plan, and that refusal would hide the others.
    for email in config["emails"].as_array_mut().into_iter().flatten() {
        email.as_object_mut().map(|e| e.remove("coupon"));
    }
    config_fuzz("four-emails configs", "four-emails", config);
}

#[test]
fn fuzz_flow_configs() {
    config_fuzz("flow configs", "flow", example("examples/flows/getall-abandoned-cart.json"));
}

#[test]
fn fuzz_durations() {
    let text = prop_oneof!["[0-9]{0,25}[smhdx]?([0-9]{0,3}[smhd])?", "\\PC{0,12}", any::<String>(),];
    fuzz("durations", cases() * 4, text, |text| {
        if let Ok(d) = text.parse::<funnel_sdk::Duration>() {
            let shown = d.to_string();
            let again = shown.parse::<funnel_sdk::Duration>();
            prop_assert_eq!(again, Ok(d), "{:?} parsed, printed as {:?}", text, shown);
        }
        Ok(())
    });
}

#[test]
fn fuzz_templates() {
    use funnel_host::delivery::template::{Part, TemplateVars, render};
    let piece = prop_oneof![
        Just("{{"),
        Just("}}"),
        Just("{%"),
        Just("%}"),
        Just("{#"),
        Just("#}"),
        Just(" if "),
        Just(" for i in range(3) "),
        Just(" endfor "),
        Just(" endif "),
        Just("first_name"),
        Just("name"),
        Just("checkout_url"),
        Just("coupon_code"),
        Just(" | upper"),
        Just(" | length"),
        Just("'x'"),
        Just(" * 3"),
        Just(" ~ "),
        Just("("),
        Just(")"),
        Just("."),
        Just("[0]"),
        Just(","),
        Just("<p>"),
        Just("\0"),
        Just("ç🙂"),
        Just(" "),
        Just("\u{E000}"),
        Just("x"),
    ];
    let vars = (nasty_string(), nasty_string(), nasty_string()).prop_map(|(name, first_name, product)| TemplateVars {
        name,
        first_name,
        product,
        checkout_url: "https://funnel.test/r/abc".into(),
        coupon_code: "VOLTA10".into(),
        unsubscribe_url: "https://funnel.test/u/abc".into(),
    });
    let part = prop_oneof![Just(Part::Subject), Just(Part::Html), Just(Part::Text), Just(Part::Sms)];
    let strategy = (proptest::collection::vec(piece, 0..24), vars, part);
    fuzz("templates", cases() * 4, strategy, |(pieces, vars, part)| {
        // Err is a fine answer (a template that does not parse); a panic fails the property.
        let _ = render(part, &pieces.concat(), &vars);
        Ok(())
    });
}

#[test]
fn fuzz_scenarios() {
    let valid = json!({"lead": {"email": "jan@example.com", "name": "Jan", "phone": "+48600100200",
                                "price": {"amount_cents": 19900, "currency": "PLN"}, "product_id": "p", "plan_id": "q"},
                       "binding": {"product_id": "p", "plan_id": "q", "coupon": {"code": "VOLTA10", "discount_percent": 10}},
                       "events": [{"at": "1h", "type": "click", "message": 1}, {"at": "2h", "type": "purchase"}],
                       "until": "3d"});
    let strategy = prop_oneof![
        4 => mutations().prop_map(move |m| apply(valid.clone(), &m).to_string()),
        1 => any::<String>(),
    ];
    fuzz("scenarios", cases() * 4, strategy, |text| {
        if let Err(e) = funnel_sdk::wire::Scenario::parse(&text) {
            prop_assert!(!e.message.is_empty(), "a refusal says why: {e:?} for {text}");
        }
        Ok(())
    });
}

/// Found by `fuzz_plugin_effects_through_the_engine_sqlite` (a random seed: a plugin's 27 kB
/// one-line subject): minijinja 2.24's lexer adds 1 to a `u16` column when it reports a syntax
/// error past column 65535, which panics in a debug build (and wraps in release); the panic
/// escaped the dispatch task as an engine error ("dispatch task failed … attempt to add with
/// overflow") instead of failing that event. Fixed in `delivery::template`; this keeps it fixed.
#[test]
fn a_template_with_an_error_past_column_65535_is_an_error_not_a_panic() {
    use funnel_host::delivery::template::{Part, TemplateVars, render};
    // An unterminated string: a lexer error, reported at the (saturated) column 65535.
    let source = format!("{}{{{{ \"open", "x".repeat(70_000));
    let rendered = std::panic::catch_unwind(|| render(Part::Subject, &source, &TemplateVars::default()));
    assert!(matches!(rendered, Ok(Err(_))), "an error, not a panic");
}

/// One byte-level change to a component.
#[derive(Clone, Debug)]
enum ByteEdit {
    Flip(usize, u8),
    Truncate(usize),
    Splice(usize, Vec<u8>),
    Delete(usize, usize),
}

#[test]
fn fuzz_uploads() {
    let rt = tokio();
    let (_db, s, _, key) = rt.block_on(server());
    let edit = prop_oneof![
        6 => (any::<usize>(), 1u8..=255).prop_map(|(at, x)| ByteEdit::Flip(at, x)),
        1 => any::<usize>().prop_map(ByteEdit::Truncate),
        1 => (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..64)).prop_map(|(a, b)| ByteEdit::Splice(a, b)),
        1 => (any::<usize>(), 1usize..256).prop_map(|(a, n)| ByteEdit::Delete(a, n)),
    ];
    let strategy = prop_oneof![
        4 => proptest::collection::vec(edit, 1..6).prop_map(Ok),
        1 => proptest::collection::vec(any::<u8>(), 0..4096).prop_map(Err),
    ];
    let n = AtomicUsize::new(0);
    // Each case may compile a component: a quarter of the budget, at least 8.
    fuzz("uploads", (cases() / 4).max(8), strategy, |input| {
        let bytes = match input {
            Ok(edits) => {
                let mut bytes = funnel_host::guests::TEST_GUEST.to_vec();
                for e in edits {
                    let len = bytes.len().max(1);
                    match e {
                        ByteEdit::Flip(at, x) => bytes[at % len] ^= x,
                        ByteEdit::Truncate(at) => bytes.truncate(at % len),
                        ByteEdit::Splice(at, b) => {
                            let at = at % len;
                            bytes.splice(at..at, b);
                        }
                        ByteEdit::Delete(at, n) => {
                            let at = at % len;
                            bytes.drain(at..(at + n).min(bytes.len()));
                        }
                    }
                    if bytes.is_empty() {
                        break;
                    }
                }
                bytes
            }
            Err(random) => random,
        };
        // A fresh version each case: re-uploads of one name and version are another test's topic.
        let path = format!("/v1/plugins?name=fuzzed&version=0.0.{}", n.fetch_add(1, Ordering::Relaxed));
        rt.block_on(post(&s, &path, &key, bytes)).map(drop)
    });
}

#[test]
fn fuzz_plugin_effects_through_the_runtime() {
    use funnel_host::runtime::wit::Event;
    let runtime = crate::support::runtime();
    let plugin = crate::support::test_guest(&runtime);
    fuzz("plugin effects (runtime)", cases() * 2, any::<u64>(), |seed| {
        let mut invocation = crate::support::invocation("random-effects", Event::Captured);
        invocation.config_json = json!({"mode": "random-effects", "seed": seed}).to_string();
        // Ok, or a typed error naming the plugin and the limit: either is fine; a panic is not.
        let _ = plugin.handle(&invocation, funnel_host::runtime::HandleContext::default());
        Ok(())
    });
}

#[test]
fn fuzz_plugin_effects_through_the_engine_sqlite() {
    plugin_effects_through_the_engine(Db::Sqlite);
}

#[test]
#[cfg_attr(not(funnel_postgres), ignore = "PostgreSQL is not configured: set FUNNEL_TEST_POSTGRES_URL")]
fn fuzz_plugin_effects_through_the_engine_postgres() {
    plugin_effects_through_the_engine(Db::Postgres);
}

fn plugin_effects_through_the_engine(kind: Db) {
    let rt = tokio();
    let (_db, s, producer, key) = rt.block_on(server_on(kind));
    let (status, body) = rt.block_on(s.upload(&key, funnel_host::guests::TEST_GUEST.to_vec()));
    assert_eq!(status, 201, "{body}");
    let n = AtomicUsize::new(0);
    fuzz(
        &format!("plugin effects (engine, {kind:?})"),
        cases(),
        (any::<u64>(), 1i64..7_200_000),
        |(seed, later_ms)| {
            let i = n.fetch_add(1, Ordering::Relaxed);
            rt.block_on(async {
                let binding = json!({"plugin": "test-guest", "config": {"mode": "random-effects", "seed": seed}});
                let (status, body) = s.send(reqwest::Method::PUT, "/v1/bindings", Some(&key), Some(binding)).await;
                prop_assert_eq!(status, 200, "{}", body);
                let event = api_server::event(&format!("fze-{i}"), &producer, &format!("e{i}@example.com"))
                    .tap_checkout(&format!("chke-{i}"));
                let (status, accepted) = s.post_event(event).await;
                prop_assert_eq!(status, 202, "{}", accepted);
                // Handle the capture, then let time pass so the timers it set fire and their
                // messages are delivered: the engine must carry on whatever the plugin asked.
                s.engine.settle().await.map_err(|e| TestCaseError::fail(format!("engine error, seed {seed}: {e}")))?;
                s.clock.set(s.clock.now_ms() + later_ms);
                s.engine.settle().await.map_err(|e| TestCaseError::fail(format!("engine error, seed {seed}: {e}")))?;
                let lead = accepted["lead_id"].as_str().unwrap_or_default();
                let resp = s.request(reqwest::Method::GET, &format!("/v1/leads/{lead}"), Some(&key)).send().await;
                let resp = resp.map_err(|e| TestCaseError::fail(format!("request failed: {e}")))?;
                check_answer(resp, &format!("GET /v1/leads/{lead} after seed {seed}")).await.map(drop)
            })
        },
    );
}
