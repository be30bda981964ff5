//! `funnel plugin new` as a plugin author uses it: the scaffold builds as it is and its own
//! test passes (a real nested `cargo test`, which builds the component and simulates it with
//! this very `funnel`), and bad names or an occupied directory get one line and exit 2.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn funnel(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_funnel")).args(args).current_dir(cwd).output().expect("funnel runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_string()
}

/// A target dir for scaffolded projects that outlives the test, so warm runs are quick.
fn scaffold_target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("scaffold-tests")
}

#[test]
fn a_new_rust_plugin_builds_and_passes_its_own_test() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = funnel(&["plugin", "new", "my-strategy"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("cd my-strategy && cargo test"), "{}", text(&out.stdout));
    let project = dir.path().join("my-strategy");
    let lib = std::fs::read_to_string(project.join("src/lib.rs")).expect("lib.rs");
    assert!(lib.contains("\"my-strategy\""), "the plugin is renamed");

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let test = Command::new(cargo)
        .arg("test")
        .current_dir(&project)
        .env("CARGO_TARGET_DIR", scaffold_target_dir())
        // The scaffold's `.cargo/config.toml` names this funnel; nothing from outside wins.
        .env_remove("FUNNEL_BIN")
        .output()
        .expect("cargo runs");
    assert!(test.status.success(), "the scaffold's own test fails:\n{}\n{}", text(&test.stdout), text(&test.stderr));
    let report = text(&test.stdout);
    assert!(report.contains("every_scenario_prints_its_expected_timeline"), "{report}");

    let wasm = scaffold_target_dir().join("plugin-builds/wasm32-wasip2/release/my_strategy.wasm");
    let check = funnel(&["plugin", "check", wasm.to_str().expect("utf-8 path")], dir.path());
    assert!(check.status.success(), "{}", text(&check.stderr));
    assert!(text(&check.stdout).contains("\"name\":\"my-strategy\""), "{}", text(&check.stdout));
}

#[test]
fn a_new_python_plugin_builds_and_passes_its_own_test() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = funnel(&["plugin", "new", "my-py-strategy", "--lang", "python"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let project = dir.path().join("my-py-strategy");
    assert!(project.join("wit/funnel.wit").is_file(), "the contract travels with the project");
    let app = std::fs::read_to_string(project.join("app.py")).expect("app.py");
    assert!(app.contains("\"my-py-strategy\""), "the plugin is renamed");

    // The project's own test: build.sh (componentize-py), then `funnel simulate` per scenario.
    let test = Command::new("python3")
        .args(["-m", "unittest", "-v"])
        .current_dir(&project)
        .env("FUNNEL_BIN", env!("CARGO_BIN_EXE_funnel"))
        .output()
        .expect("python3 runs");
    assert!(test.status.success(), "the scaffold's own test fails:\n{}\n{}", text(&test.stdout), text(&test.stderr));
    let wasm = project.join("build/my_py_strategy.wasm");
    let check = funnel(&["plugin", "check", wasm.to_str().expect("utf-8 path")], dir.path());
    assert!(check.status.success(), "{}", text(&check.stderr));
    assert!(text(&check.stdout).contains("\"name\":\"my-py-strategy\""), "{}", text(&check.stdout));
}

#[test]
fn plugin_new_refuses_a_bad_name_or_an_occupied_directory() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = funnel(&["plugin", "new", "My Strategy"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("is not a plugin name"), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr).lines().count(), 1);

    std::fs::create_dir(dir.path().join("taken")).expect("mkdir");
    std::fs::write(dir.path().join("taken/keep.txt"), "mine").expect("write");
    let out = funnel(&["plugin", "new", "taken"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("already exists and is not empty"), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(dir.path().join("taken/keep.txt")).expect("kept"), "mine", "nothing lost");

    let out = funnel(&["plugin", "new", "lost", "--sdk", "/nonexistent/sdk"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--sdk"), "{}", text(&out.stderr));
    assert!(!dir.path().join("lost").exists(), "nothing half-written");
}
