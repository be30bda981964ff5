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
    let bad_window = write(
        dir.path(),
        "bad-window.json",
        r#"{"binding": {"send_window": {"start": "08:00", "end": "21:00", "timezone": "Mars/Olympus"}},
            "lead": {"email": "ana@example.com"}, "until": "1h"}"#,
    );
    let bad_start = write(
        dir.path(),
        "bad-start.json",
        r#"{"start": "tomorrow", "lead": {"email": "ana@example.com"}, "until": "1h"}"#,
    );
    let cases: [(&[&str], &str); 7] = [
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
            &["--plugin", "four-emails", "--scenario", bad_window.to_str().unwrap()],
            "scenario: binding.send_window.timezone: \"Mars/Olympus\" is not an IANA time zone name",
        ),
        (
            &["--plugin", "four-emails", "--scenario", bad_start.to_str().unwrap()],
            "scenario: start: \"tomorrow\" is not an RFC 3339 instant",
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

/// Finding 1 of issue 17: a panicking plugin no longer looks like a quiet one. `simulate`
/// prints the failure on stderr and exits 3; the table shows it; `--allow-failures` exits 0.
#[test]
fn simulate_speaks_up_when_the_plugin_fails() {
    let dir = tempfile::tempdir().expect("tmp");
    let wasm = dir.path().join("guest.wasm");
    std::fs::write(&wasm, funnel_host::guests::TEST_GUEST).expect("write");
    let cfg = write(dir.path(), "cfg.json", r#"{"mode": "panic"}"#);
    let scn = write(dir.path(), "scn.json", r#"{"lead": {"email": "ana@example.com"}, "until": "1h"}"#);
    let args = [
        "simulate",
        "--plugin",
        wasm.to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
        "--scenario",
        scn.to_str().unwrap(),
    ];
    let out = funnel(&args);
    assert_eq!(out.status.code(), Some(funnel_sdk::wire::EXIT_PLUGIN_FAILED), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("the plugin failed at 0h00m00s: retry") && err.contains("panics on purpose"), "{err}");
    assert!(err.contains("the plugin failed at 0h00m01s: failed"), "{err}");
    assert!(err.contains("--allow-failures"), "says how to look anyway: {err}");
    // Parked on the second identical failure, not after five.
    let lines: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("json")).collect();
    let kinds: Vec<&str> = lines.iter().filter_map(|l| l["kind"].as_str()).collect();
    assert_eq!(kinds, ["retry", "failed"], "{lines:?}");

    let table = funnel(&[&args[..], &["--format", "table", "--allow-failures"]].concat());
    assert_eq!(table.status.code(), Some(0), "{}", stderr(&table));
    let text = String::from_utf8_lossy(&table.stdout).to_string();
    assert!(text.lines().nth(1).is_some_and(|l| l.contains("retry") && l.contains("panics on purpose")), "{text}");
}

/// Finding 8: the preview shows each message's text, so the coupon line and empty fields are
/// seen; a lead without a name gets no dangling comma.
#[test]
fn simulate_shows_bodies_and_leaves_no_dangling_punctuation() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = write(
        dir.path(),
        "cfg.json",
        r#"{"emails": [{"after": "20m", "subject": "{{first_name}}, seu pedido está esperando",
                        "html": "<p>Oi {{first_name}}, faltou pouco! <a href=\"{{checkout_url}}\">Finalize</a></p>"}]}"#,
    );
    let scn = write(
        dir.path(),
        "scn.json",
        r#"{"lead": {"email": "ana@example.com", "price": {"amount_cents": 9700, "currency": "BRL"}}, "until": "1h"}"#,
    );
    let args = [
        "simulate",
        "--plugin",
        "four-emails",
        "--config",
        cfg.to_str().unwrap(),
        "--scenario",
        scn.to_str().unwrap(),
        "--show-body",
    ];
    let out = funnel(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one line");
    assert_eq!(line["subject"], "Seu pedido está esperando");
    assert_eq!(line["body"], "Oi, faltou pouco! Finalize (https://funnel.example/r/email-1)");
    let table = funnel(&[&args[..], &["--format", "table"]].concat());
    assert!(String::from_utf8_lossy(&table.stdout).contains("| Oi, faltou pouco!"), "{}", stderr(&table));
}

/// Bless mode on the command line: a folder of scenarios writes a folder of expected timelines.
#[test]
fn simulate_writes_expected_timelines() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = write(dir.path(), "cfg.json", CONFIG);
    std::fs::create_dir(dir.path().join("scenarios")).expect("mkdir");
    write(&dir.path().join("scenarios"), "buys.json", SCENARIO);
    let expected = dir.path().join("expected");
    let scenarios = dir.path().join("scenarios");
    let args = [
        "simulate",
        "--plugin",
        "four-emails",
        "--config",
        cfg.to_str().unwrap(),
        "--scenario",
        scenarios.to_str().unwrap(),
        "--write-expected",
        expected.to_str().unwrap(),
    ];
    let out = funnel(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("wrote"), "{}", stderr(&out));
    let written = std::fs::read_to_string(expected.join("buys.jsonl")).expect("written");
    assert_eq!(written.lines().count(), 2, "{written}");
    let again = funnel(&args);
    assert!(stderr(&again).contains("unchanged"), "{}", stderr(&again));
    let single = funnel(&args[..8]);
    assert_eq!(single.status.code(), Some(2), "a folder needs --write-expected: {}", stderr(&single));
}

/// Finding 6: a server that already has other bytes under the name and version answers 409;
/// `push` says what to do. (A one-shot HTTP server on loopback plays that server.)
#[test]
fn push_says_to_bump_the_version_on_a_conflict() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        let mut request = Vec::new();
        let mut buf = [0u8; 65536];
        // Read the headers and the whole body (Content-Length) before answering.
        loop {
            let n = stream.read(&mut buf).expect("read");
            request.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&request);
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text
                    .lines()
                    .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length: ").map(|v| v.trim().to_string()))
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or(0);
                if request.len() >= end + 4 + length {
                    break;
                }
            }
            if n == 0 {
                break;
            }
        }
        let body = r#"{"type":"about:blank","title":"Conflict","status":409,"detail":"flow-copy@1.0.0 is already uploaded with other bytes"}"#;
        let response = format!(
            "HTTP/1.1 409 Conflict\r\ncontent-type: application/problem+json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(response.as_bytes()).expect("write");
    });
    let dir = tempfile::tempdir().expect("tmp");
    let wasm = dir.path().join("flow.wasm");
    std::fs::write(&wasm, funnel_host::guests::FLOW).expect("write");
    let out =
        funnel(&["plugin", "push", wasm.to_str().unwrap(), "--server", &format!("http://{addr}"), "--key", "fk_test"]);
    server.join().expect("server");
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("already uploaded with other bytes") && err.contains("bump the version"), "{err}");
    assert!(err.contains("re-bind it with PUT /v1/bindings"), "{err}");
}

/// The runtime's bounds for uploads and plugins are `serve` settings: one set in the
/// environment takes effect, and a value that would refuse every upload is refused at start.
#[tokio::test]
async fn serve_takes_the_plugin_bounds_from_its_settings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite:{}", dir.path().join("funnel.db").display());
    let serve = crate::process::spawn_with(&url, dir.path(), &[("FUNNEL_MAX_PLUGINS_PER_PRODUCER", "1")]);
    let producer = serve.create_producer().await;
    let key = producer["api_key"].as_str().expect("key");
    let guest = funnel_host::guests::TEST_GUEST;
    assert_eq!(serve.send(reqwest::Method::POST, "/v1/plugins?version=1", key, guest).await.0, 201);
    let (status, problem) = serve.send(reqwest::Method::POST, "/v1/plugins?version=2", key, guest).await;
    assert_eq!(status, 409, "a quota of one: {problem}");

    for (setting, value) in [
        ("FUNNEL_MAX_CONCURRENT_UPLOADS", "0"),
        ("FUNNEL_MAX_LOADED_PLUGINS", "0"),
        ("FUNNEL_UPLOAD_TIMEOUT_SECS", "0"),
        ("FUNNEL_MAX_PLUGINS_PER_PRODUCER", "lots"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_funnel"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .current_dir(dir.path())
            .env("FUNNEL_DATABASE_URL", &url)
            .env(setting, value)
            .output()
            .expect("funnel runs");
        assert_eq!(out.status.code(), Some(2), "{setting}={value}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(&setting.to_lowercase().replace("funnel_", "").replace('_', "-")),
            "{}",
            stderr(&out)
        );
    }
}
