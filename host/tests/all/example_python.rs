//! `examples/python-plugin`: the `sms-first` strategy written in Python with componentize-py,
//! built by its own `build.sh` (which installs componentize-py from PyPI the first time) and
//! run through the real `funnel simulate`. Its timelines must equal `examples/sms-first/expected/`,
//! the contract the Rust example is held to as well.

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
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("python-plugin").join("sms_first_py.wasm");
        let script = repo().join("examples/python-plugin/build.sh");
        let run = Command::new("bash").arg(&script).arg(&out).output().expect("bash runs");
        assert!(
            run.status.success(),
            "{} failed ({}): it needs python3 with venv and pip, and PyPI the first time\n--- stderr ---\n{}",
            script.display(),
            run.status,
            String::from_utf8_lossy(&run.stderr)
        );
        let printed = String::from_utf8_lossy(&run.stdout).trim().to_string();
        assert_eq!(Path::new(&printed), out, "build.sh prints where the component is");
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

fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("one JSON object a line"))
        .collect()
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
fn python_plugin_prints_the_expected_timeline_of_every_scenario() {
    let config = sms_first().join("config.json");
    for scenario in scenarios() {
        let stem = scenario.file_stem().expect("stem").to_string_lossy().to_string();
        let expected_path = sms_first().join("expected").join(format!("{stem}.jsonl"));
        let expected =
            std::fs::read_to_string(&expected_path).unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()));
        let out = simulate(&config, &scenario);
        assert!(out.status.success(), "{stem}: {}", String::from_utf8_lossy(&out.stderr));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(json_lines(&stdout), json_lines(&expected), "{stem}: funnel simulate printed\n{stdout}");
    }
}

#[test]
fn python_plugin_refuses_an_email_before_the_sms_at_email_after() {
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
    assert!(stderr.contains("config: email_after: "), "{stderr}");
}

#[test]
fn python_plugin_prints_the_same_timeline_twice() {
    let config = sms_first().join("config.json");
    let scenario = sms_first().join("scenarios/big-cart-with-phone.json");
    let first = simulate(&config, &scenario);
    let second = simulate(&config, &scenario);
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    assert_eq!(
        String::from_utf8_lossy(&first.stdout),
        String::from_utf8_lossy(&second.stdout),
        "the same scenario prints the same output"
    );
}
