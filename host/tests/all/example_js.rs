//! `examples/js-plugin`: the `sms-first` strategy written in JavaScript, built to a component
//! with componentize-qjs by its own `build.mjs` (which installs its pinned toolchain with npm
//! the first time, into ~/.cache/funnel) and run through the real `funnel simulate`. Its
//! timelines must equal `examples/sms-first/expected/`, the contract the Rust and Python twins
//! are held to as well.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the host crate is in the repository").to_path_buf()
}

/// The component, built once per test binary by the example's own build script.
fn component() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("js-plugin").join("sms_first_js.wasm");
        let script = repo().join("examples/js-plugin/build.mjs");
        let run = Command::new("node").arg(&script).arg(&out).output().expect("node runs");
        assert!(
            run.status.success(),
            "{} failed ({}): it needs node and npm, and the npm registry the first time\n--- stderr ---\n{}",
            script.display(),
            run.status,
            String::from_utf8_lossy(&run.stderr)
        );
        let printed = String::from_utf8_lossy(&run.stdout).trim().to_string();
        assert_eq!(Path::new(&printed), out, "build.mjs prints where the component is");
        out
    })
}

fn simulate(config: &Path, scenario: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_funnel"))
        .arg("simulate")
        .arg("--plugin")
        .arg(component())
        .arg("--config")
        .arg(config)
        .arg("--scenario")
        .arg(scenario)
        .output()
        .expect("funnel runs")
}

fn sms_first() -> PathBuf {
    repo().join("examples/sms-first")
}

fn scenarios() -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(sms_first().join("scenarios"))
        .expect("examples/sms-first/scenarios")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    found.sort();
    assert!(!found.is_empty(), "no scenarios in examples/sms-first/scenarios");
    found
}

#[test]
fn js_plugin_prints_the_expected_timeline_of_every_scenario() {
    let config = sms_first().join("config.json");
    for scenario in scenarios() {
        let stem = scenario.file_stem().expect("stem").to_string_lossy().to_string();
        let expected_path = sms_first().join("expected").join(format!("{stem}.jsonl"));
        let expected =
            std::fs::read_to_string(&expected_path).unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()));
        let out = simulate(&config, &scenario);
        assert!(out.status.success(), "{stem}: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout), expected, "{stem}: byte for byte, as the Rust twin prints it");
    }
}

#[test]
fn js_plugin_refuses_an_email_before_the_sms_at_email_after() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sms_first().join("config.json")).expect("config.json"))
            .expect("config.json is JSON");
    config["sms_after"] = "15m".into();
    config["email_after"] = "10m".into();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, config.to_string()).expect("write");
    let out = simulate(&bad, &scenarios()[0]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("config: email_after: must be after sms_after (15m), got 10m"), "{stderr}");
}

#[test]
fn js_plugin_declares_what_it_uses() {
    let out = Command::new(env!("CARGO_BIN_EXE_funnel"))
        .args(["plugin", "check"])
        .arg(component())
        .output()
        .expect("funnel runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(info["name"], "sms-first-js");
    assert_eq!(info["capabilities"], serde_json::json!(["email", "sms", "timers", "coupons"]));
    // A JavaScript component imports the whole host interface: check lists what is undeclared.
    assert_eq!(info["undeclared_imports"], serde_json::json!(["add-to-list", "remove-from-list"]));
    let warning = String::from_utf8_lossy(&out.stderr);
    assert!(warning.contains("imports add-to-list without declaring the lists capability"), "{warning}");
}

/// Finding 2 of issue 17: a plugin that forgot to declare `sms` no longer loses its SMS
/// silently. The same strategy with `sms` left out of `describe()`, built like the example:
/// `plugin check` warns, and `simulate` prints the refused call and exits 3.
#[test]
fn a_forgotten_capability_is_caught_loudly() {
    let dir = tempfile::tempdir().expect("tmp");
    let project = dir.path().join("forgetful");
    for file in ["plugin.js", "build.mjs", "toolchain/package.json", "toolchain/package-lock.json", "package.json"] {
        let to = project.join(file);
        std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
        std::fs::copy(repo().join("examples/js-plugin").join(file), &to).expect("copy");
    }
    std::fs::create_dir_all(project.join("wit")).expect("mkdir");
    std::fs::copy(repo().join("wit/funnel.wit"), project.join("wit/funnel.wit")).expect("copy");
    let strategy = std::fs::read_to_string(repo().join("examples/js-plugin/strategy.js")).expect("strategy.js");
    let forgetful = strategy
        .replace("capabilities: ['email', 'sms', 'timers', 'coupons']", "capabilities: ['email', 'timers', 'coupons']");
    assert_ne!(forgetful, strategy, "the capability list is where the test expects it");
    std::fs::write(project.join("strategy.js"), forgetful).expect("write");

    let build = Command::new(env!("CARGO_BIN_EXE_funnel"))
        .args(["plugin", "build", "--dir"])
        .arg(&project)
        .output()
        .expect("funnel runs");
    assert!(build.status.success(), "{}", String::from_utf8_lossy(&build.stderr));
    let wasm = String::from_utf8_lossy(&build.stdout).trim().to_string();
    let check = Command::new(env!("CARGO_BIN_EXE_funnel")).args(["plugin", "check", &wasm]).output().expect("runs");
    assert!(String::from_utf8_lossy(&check.stderr).contains("imports send-sms without declaring the sms capability"));

    let out = Command::new(env!("CARGO_BIN_EXE_funnel"))
        .args(["simulate", "--plugin", &wasm, "--config"])
        .arg(sms_first().join("config.json"))
        .arg("--scenario")
        .arg(sms_first().join("scenarios/big-cart-with-phone.json"))
        .output()
        .expect("funnel runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(funnel_sdk::wire::EXIT_PLUGIN_FAILED), "{stderr}");
    // This strategy rejects the event on an unexpected refusal, so the failure carries it; a
    // plugin that logs and goes on gets a `refused` line instead (both exit 3).
    assert!(
        stderr.contains("the plugin failed at 0h15m00s") && stderr.contains(r#"{"tag":"not-declared","val":"sms"}"#),
        "{stderr}"
    );
}
