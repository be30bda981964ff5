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

    // `funnel plugin build` makes the build the test made (no rebuild) and prints its path,
    // which every other command takes.
    let build = Command::new(env!("CARGO_BIN_EXE_funnel"))
        .args(["plugin", "build"])
        .current_dir(&project)
        .env("CARGO_TARGET_DIR", scaffold_target_dir())
        .output()
        .expect("funnel runs");
    assert!(build.status.success(), "{}", text(&build.stderr));
    let wasm = text(&build.stdout).trim().to_string();
    assert_eq!(Path::new(&wasm), scaffold_target_dir().join("plugin-builds/wasm32-wasip2/release/my_strategy.wasm"));
    assert!(
        !text(&build.stderr).contains("Compiling my-strategy"),
        "already built by cargo test: {}",
        text(&build.stderr)
    );
    let check = funnel(&["plugin", "check", &wasm], dir.path());
    assert!(check.status.success(), "{}", text(&check.stderr));
    assert!(text(&check.stdout).contains("\"name\":\"my-strategy\""), "{}", text(&check.stdout));

    // Finding 5: without `export_plugin!` the component exports nothing; the host names the macro.
    let lib = project.join("src/lib.rs");
    let source = std::fs::read_to_string(&lib).expect("lib.rs");
    std::fs::write(&lib, source.replace("funnel_sdk::export_plugin!(SmsFirst);", "")).expect("write");
    let build = Command::new(env!("CARGO_BIN_EXE_funnel"))
        .args(["plugin", "build"])
        .current_dir(&project)
        .env("CARGO_TARGET_DIR", scaffold_target_dir())
        .output()
        .expect("funnel runs");
    if build.status.success() {
        let check = funnel(&["plugin", "check", text(&build.stdout).trim()], dir.path());
        assert_eq!(check.status.code(), Some(2), "{}", text(&check.stdout));
        assert!(text(&check.stderr).contains("funnel_sdk::export_plugin!(YourPlugin);"), "{}", text(&check.stderr));
    } else {
        assert!(text(&build.stderr).contains("export"), "{}", text(&build.stderr));
    }
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
    let build = funnel(&["plugin", "build", "--dir", project.to_str().expect("utf-8 path")], dir.path());
    assert!(build.status.success(), "{}", text(&build.stderr));
    assert_eq!(Path::new(text(&build.stdout).trim()), project.join("build/my_py_strategy.wasm"));
    let check = funnel(&["plugin", "check", text(&build.stdout).trim()], dir.path());
    assert!(check.status.success(), "{}", text(&check.stderr));
    assert!(text(&check.stdout).contains("\"name\":\"my-py-strategy\""), "{}", text(&check.stdout));
}

/// `funnel plugin new my-js --lang js && cd my-js && npm test`, as on a fresh machine with
/// node and npm: the test installs the pinned toolchain itself (once, into ~/.cache/funnel),
/// builds the component, runs the rules under node's test runner and every scenario through
/// this `funnel` (named in package.json by `plugin new`).
#[test]
fn a_new_js_plugin_builds_and_passes_its_own_test() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = funnel(&["plugin", "new", "my-js", "--lang", "js"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("cd my-js && npm test"), "{}", text(&out.stdout));
    let project = dir.path().join("my-js");
    assert!(project.join("wit/funnel.wit").is_file() && project.join("PLUGIN-AUTHORS.md").is_file());
    let strategy = std::fs::read_to_string(project.join("strategy.js")).expect("strategy.js");
    assert!(strategy.contains("'my-js'"), "the plugin is renamed");

    let test = Command::new("npm")
        .arg("test")
        .current_dir(&project)
        // package.json names this funnel; nothing from outside wins.
        .env_remove("FUNNEL_BIN")
        .output()
        .expect("npm runs");
    assert!(test.status.success(), "the scaffold's own test fails:\n{}\n{}", text(&test.stdout), text(&test.stderr));
    let report = text(&test.stdout);
    assert!(report.contains("every scenario prints its expected timeline") && report.contains("# fail 0"), "{report}");
    assert!(project.join("types/interfaces/funnel-plugin-host.d.ts").is_file(), "typed editor support");

    let build = funnel(&["plugin", "build"], &project);
    assert!(build.status.success(), "{}", text(&build.stderr));
    let check = funnel(&["plugin", "check", text(&build.stdout).trim()], &project);
    assert!(check.status.success(), "{}", text(&check.stderr));
    assert!(text(&check.stdout).contains("\"name\":\"my-js\""), "{}", text(&check.stdout));
}

#[test]
fn plugin_build_says_what_it_looks_for() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = funnel(&["plugin", "build"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("expected Cargo.toml (Rust), build.sh (Python) or build.mjs"),
        "{}",
        text(&out.stderr)
    );
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
