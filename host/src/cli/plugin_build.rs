//! `funnel plugin build [--dir DIR]`: build the plugin project in DIR (default: here) into a
//! component, whatever its language, and print the component's path on stdout (one line, so
//! `funnel simulate --plugin "$(funnel plugin build)"` works). The build's own progress goes
//! to stderr.
//!
//! - Rust (`Cargo.toml`): `cargo build --release --target wasm32-wasip2` into
//!   `plugin-builds/` of the project's target directory (the build `funnel_sdk::testing` makes,
//!   so `cargo test` and this command share one warm build); the target is added with rustup
//!   when the toolchain lacks it.
//! - Python (`build.sh`, componentize-py) and JavaScript (`build.mjs`, componentize-qjs): the
//!   project's own build script, which installs its toolchain under `~/.cache/funnel` the
//!   first time and prints where the component is.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::UsageError;

const TARGET: &str = "wasm32-wasip2";

#[derive(clap::Args, Debug)]
pub(super) struct BuildArgs {
    /// The plugin project (default: the current directory).
    #[arg(long, default_value = ".")]
    dir: PathBuf,
}

/// The language of a plugin project, told by the file that builds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Project {
    Rust,
    Python,
    JavaScript,
}

fn project(dir: &Path) -> Result<Project, UsageError> {
    if dir.join("Cargo.toml").is_file() {
        Ok(Project::Rust)
    } else if dir.join("build.mjs").is_file() {
        Ok(Project::JavaScript)
    } else if dir.join("build.sh").is_file() {
        Ok(Project::Python)
    } else {
        Err(UsageError(format!(
            "no plugin project in {}: expected Cargo.toml (Rust), build.sh (Python) or build.mjs (JavaScript); \
             `funnel plugin new NAME` makes one",
            dir.display()
        )))
    }
}

pub(super) fn run(args: BuildArgs) -> Result<(), UsageError> {
    let dir = args
        .dir
        .canonicalize()
        .map_err(|e| UsageError(format!("cannot open {}: {e}; pass --dir PROJECT", args.dir.display())))?;
    let wasm = match project(&dir)? {
        Project::Rust => build_rust(&dir)?,
        Project::Python => build_with_script(&dir, "bash", "build.sh", "python3 with venv and pip")?,
        Project::JavaScript => build_with_script(&dir, "node", "build.mjs", "node 18 or later and npm")?,
    };
    if !wasm.is_file() {
        return Err(UsageError(format!("the build reported {}, which is not a file", wasm.display())));
    }
    println!("{}", wasm.display());
    Ok(())
}

/// Run the project's own build script; its last line on stdout is the component's path.
fn build_with_script(dir: &Path, interpreter: &str, script: &str, needs: &str) -> Result<PathBuf, UsageError> {
    let output = Command::new(interpreter)
        .arg(dir.join(script))
        .current_dir(dir)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| UsageError(format!("cannot run {interpreter} {script}: {e}; it needs {needs}")))?;
    if !output.status.success() {
        return Err(UsageError(format!("{script} failed ({}); its errors are above", output.status)));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default().trim();
    if last.is_empty() {
        return Err(UsageError(format!("{script} printed no path: it should print where the component is")));
    }
    Ok(dir.join(last))
}

fn cargo() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"))
}

fn build_rust(dir: &Path) -> Result<PathBuf, UsageError> {
    let manifest = dir.join("Cargo.toml");
    add_target_if_missing(dir)?;
    let target_dir = target_directory(&manifest)?.join("plugin-builds");
    let output = Command::new(cargo())
        .args(["build", "--release", "--target", TARGET, "--message-format", "json-render-diagnostics"])
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target_dir)
        .current_dir(dir)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| UsageError(format!("cannot run cargo: {e}")))?;
    if !output.status.success() {
        return Err(UsageError(format!("cargo build failed ({}); its errors are above", output.status)));
    }
    #[derive(serde::Deserialize)]
    struct Artifact {
        reason: String,
        #[serde(default)]
        manifest_path: PathBuf,
        #[serde(default)]
        filenames: Vec<PathBuf>,
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<Artifact>(line).ok())
        .filter(|a| a.reason == "compiler-artifact" && a.manifest_path == manifest)
        .flat_map(|a| a.filenames)
        .find(|file| file.extension().is_some_and(|ext| ext == "wasm"))
        .ok_or_else(|| {
            UsageError(format!(
                "cargo built no .wasm for {}: the crate type must include cdylib ([lib] crate-type = [\"cdylib\", \"rlib\"])",
                manifest.display()
            ))
        })
}

/// The project's target directory as cargo sees it (workspace, `CARGO_TARGET_DIR`, config).
fn target_directory(manifest: &Path) -> Result<PathBuf, UsageError> {
    let output = Command::new(cargo())
        .args(["metadata", "--no-deps", "--format-version", "1", "--manifest-path"])
        .arg(manifest)
        .output()
        .map_err(|e| UsageError(format!("cannot run cargo: {e}")))?;
    if !output.status.success() {
        return Err(UsageError(format!(
            "cargo metadata failed for {}: {}",
            manifest.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    #[derive(serde::Deserialize)]
    struct Metadata {
        target_directory: PathBuf,
    }
    serde_json::from_slice::<Metadata>(&output.stdout)
        .map(|m| m.target_directory)
        .map_err(|e| UsageError(format!("cargo metadata printed something unexpected: {e}")))
}

/// A toolchain pinned by rust-toolchain.toml comes without the wasm target on a fresh machine
/// and rustup will not add it by itself there (`RUSTUP_AUTO_INSTALL=0`): add it, saying so.
fn add_target_if_missing(dir: &Path) -> Result<(), UsageError> {
    let sysroot = Command::new("rustc").args(["--print", "sysroot"]).current_dir(dir).output();
    let Ok(sysroot) = sysroot else { return Ok(()) };
    let sysroot = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim());
    if sysroot.as_os_str().is_empty() || sysroot.join("lib/rustlib").join(TARGET).is_dir() {
        return Ok(());
    }
    eprintln!(
        "funnel: the {TARGET} target is missing from this toolchain; adding it with `rustup target add {TARGET}`"
    );
    match Command::new("rustup").args(["target", "add", TARGET]).current_dir(dir).status() {
        Ok(status) if status.success() => Ok(()),
        _ => Err(UsageError(format!(
            "the {TARGET} target is missing: run `rustup target add {TARGET}`, then build again"
        ))),
    }
}
