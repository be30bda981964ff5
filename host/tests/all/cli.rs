//! The `funnel` binary as a person runs it: `simulate` and `plugin check`, their output and
//! their one-line errors with exit status 2.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn funnel(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_funnel")).args(args).output().expect("funnel runs")
}

fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).expect("write");
    path
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

const SCENARIO: &str = r#"{"binding": {"product_id": "p1", "plan_id": "q1", "coupon": {"code": "VOLTA10", "discount_percent": 10}},
  "lead": {"email": "ana@example.com", "name": "Ana Souza", "phone": "+5511999990000", "product_id": "p1", "plan_id": "q1",
           "price": {"amount_cents": 9700, "currency": "BRL"}},
  "events": [{"at": "26h", "type": "order.paid"}, {"at": "3h", "type": "click", "message": 1}],
  "until": "96h"}"#;

const CONFIG: &str = r#"{"emails": [
  {"after": "20m", "subject": "{{first_name}}, seu pedido está esperando", "html": "<p>Volte: {{checkout_url}}</p>"},
  {"after": "5h", "subject": "Um cupom para você", "html": "<p>Use {{coupon_code}}</p>", "coupon": true},
  {"after": "24h", "subject": "Última chance", "html": "<p>{{checkout_url}}</p>"}]}"#;

#[test]
fn simulate_prints_the_timeline_and_is_repeatable() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = write(dir.path(), "cfg.json", CONFIG);
    let scn = write(dir.path(), "scn.json", SCENARIO);
    let args =
        ["simulate", "--plugin", "four-emails", "--config", cfg.to_str().unwrap(), "--scenario", scn.to_str().unwrap()];
    let out = funnel(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let lines: Vec<serde_json::Value> =
        text.lines().map(|l| serde_json::from_str(l).expect("one JSON object a line")).collect();
    assert_eq!(lines.len(), 2, "email 3 would go at 29h20m, after the purchase at 26h: {text}");
    assert_eq!(
        lines[0],
        serde_json::json!({"at_s": 1200, "kind": "email", "tag": "email-1", "subject": "Ana, seu pedido está esperando", "coupon": null})
    );
    assert_eq!(lines[1]["coupon"], "VOLTA10");
    assert_eq!(funnel(&args).stdout, out.stdout, "the same scenario prints the same output");

    let table = funnel(&[&args[..], &["--format", "table"]].concat());
    let table = String::from_utf8_lossy(&table.stdout).to_string();
    assert!(table.contains("0h20m00s") && table.contains("[coupon VOLTA10]"), "{table}");
}

#[test]
fn simulate_refuses_bad_input_with_one_line_and_exit_2() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = write(dir.path(), "cfg.json", CONFIG);
    let scn = write(dir.path(), "scn.json", SCENARIO);
    let bad_cfg = write(dir.path(), "bad.json", r#"{"emails": [{"after": "10m", "subject": "s", "html": "h"}]}"#);
    let bad_scn = write(dir.path(), "bad-scn.json", r#"{"lead": {"email": "ana@example.com"}, "until": "soon"}"#);
    let garbage = write(dir.path(), "garbage.wasm", "not wasm");
    let cases: [(&[&str], &str); 5] = [
        (&["--plugin", "nope"], "plugin: \"nope\" is neither a built-in"),
        (&["--plugin", garbage.to_str().unwrap()], "plugin: this is not WebAssembly"),
        (
            &["--plugin", "four-emails", "--config", bad_cfg.to_str().unwrap()],
            "config: emails[0].after: the first email must wait at least 20 minutes (got 10m)",
        ),
        (
            &["--plugin", "four-emails", "--scenario", bad_scn.to_str().unwrap()],
            "scenario: until: invalid duration \"soon\"",
        ),
        (
            &["--plugin", "four-emails", "--config", "/nonexistent.json"],
            "cannot read the config file /nonexistent.json",
        ),
    ];
    for (overrides, expected) in cases {
        let mut args = vec![
            "simulate",
            "--plugin",
            "four-emails",
            "--config",
            cfg.to_str().unwrap(),
            "--scenario",
            scn.to_str().unwrap(),
        ];
        for pair in overrides.chunks(2) {
            let i = args.iter().position(|a| *a == pair[0]).expect("known flag");
            args[i + 1] = pair[1];
        }
        let out = funnel(&args);
        assert_eq!(out.status.code(), Some(2), "{overrides:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(err.contains(expected), "{overrides:?}: expected {expected:?} in {err:?}");
    }
}

#[test]
fn plugin_check_prints_what_a_component_declares() {
    let dir = tempfile::tempdir().expect("tmp");
    let wasm = write(dir.path(), "flow.wasm", "");
    std::fs::write(&wasm, funnel_host::guests::FLOW).expect("write");
    let out = funnel(&["plugin", "check", wasm.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(info["name"], "flow");
    assert_eq!(info["capabilities"], serde_json::json!(["email", "sms", "timers", "lists", "coupons"]));
    let out = funnel(&["plugin", "check", "/nonexistent.wasm"]);
    assert_eq!(out.status.code(), Some(2));
}
