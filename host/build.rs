//! Builds the guest crates of the workspace (the built-in plugins under `plugins/` and, with
//! the `test-guests` feature the tests turn on, the test guests under `tests/guests/`) to
//! `wasm32-wasip2` components and writes `$OUT_DIR/guests.rs`, which embeds them and lists the
//! built-ins (the one table of their names), so `cargo build` / `cargo test` on a fresh clone
//! needs nothing else.
//!
//! The nested cargo gets its own target dir (the outer build holds the lock on the main one)
//! and a cleaned environment: `cargo clippy` sets `RUSTC_WORKSPACE_WRAPPER`, which must not
//! lint the guests, and the outer `CARGO_ENCODED_RUSTFLAGS` are for the host target.
//!
//! The pinned toolchain may be installed without the `wasm32-wasip2` standard library, and
//! rustup does not add a target by itself when `RUSTUP_AUTO_INSTALL=0`: then this script adds
//! it with `rustup target add` (once, saying so), so `cargo test --workspace` works on a fresh
//! machine as the README says.
//!
//! It also sets the `funnel_postgres` cfg when PostgreSQL is configured for the tests (see
//! `postgres_tests_cfg`).

use std::path::{Path, PathBuf};
use std::process::Command;

/// What a guest is for.
#[derive(PartialEq)]
enum Role {
    /// A plugin every producer can bind by its package name.
    Builtin,
    /// A hostile or broken guest the tests run; embedded only with the `test-guests` feature.
    Test,
}

/// (constant name, package, output file stem, role)
const GUESTS: &[(&str, &str, &str, Role)] = &[
    ("FOUR_EMAILS", "four-emails", "four_emails", Role::Builtin),
    ("FLOW", "flow", "flow", Role::Builtin),
    ("TEST_GUEST", "test-guest", "test_guest", Role::Test),
    ("SLOW_DESCRIBE", "slow-describe", "slow_describe", Role::Test),
    ("WRONG_WORLD", "wrong-world", "wrong_world", Role::Test),
];

const TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest_dir.parent().expect("host/ lives inside the workspace").to_path_buf();
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    // Relative to host/, not absolute: the build-script unit is shared by every checkout that
    // uses the same target dir, and absolute paths would keep watching another checkout.
    for watched in ["wit", "sdk", "plugins", "tests/guests", "Cargo.lock", "Cargo.toml"] {
        println!("cargo:rerun-if-changed=../{watched}");
    }
    println!("cargo:rerun-if-changed=build.rs");
    postgres_tests_cfg();

    ensure_wasm_target();
    let with_tests = std::env::var_os("CARGO_FEATURE_TEST_GUESTS").is_some();
    let guests: Vec<_> = GUESTS.iter().filter(|(.., role)| with_tests || *role == Role::Builtin).collect();
    let target_dir = guest_target_dir(&out_dir, &root);
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root)
        .args(["build", "--locked", "--profile", "guest", "--target", TARGET, "--target-dir"])
        .arg(&target_dir);
    for (_, package, _, _) in &guests {
        cmd.args(["-p", package]);
    }
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_WRAPPER",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_PRIMARY_PACKAGE",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd.status().expect("could not run cargo to build the wasm guests");
    if !status.success() {
        panic!(
            "building the wasm guests failed (see above). If the error is about a missing target, run: rustup target add {TARGET}"
        );
    }

    let mut code = String::new();
    for (constant, package, stem, role) in &guests {
        let wasm = target_dir.join(TARGET).join("guest").join(format!("{stem}.wasm"));
        assert!(wasm.exists(), "guest {package} was built but {} is missing", wasm.display());
        if *role == Role::Test {
            code.push_str("#[doc(hidden)]\n");
        }
        code.push_str(&format!(
            "/// The `{package}` component ({} bytes).\npub const {constant}: &[u8] = include_bytes!({:?});\n",
            std::fs::metadata(&wasm).map(|m| m.len()).unwrap_or(0),
            wasm.display().to_string()
        ));
    }
    code.push_str("/// The built-in plugins: the name a binding uses and the component.\npub const BUILTINS: &[(&str, &[u8])] = &[\n");
    for (constant, package, ..) in guests.iter().filter(|(.., role)| *role == Role::Builtin) {
        code.push_str(&format!("    ({package:?}, {constant}),\n"));
    }
    code.push_str("];\n");
    std::fs::write(out_dir.join("guests.rs"), code).expect("could not write guests.rs");
}

/// Add the wasm target to the toolchain building us when its standard library is missing.
fn ensure_wasm_target() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let Some(sysroot) = sysroot else { return };
    let target_lib = sysroot.join("lib/rustlib").join(TARGET).join("lib");
    // Run again if the target is removed later (a warm target dir would otherwise skip this
    // script and leave tests that build plugins at run time without the target).
    println!("cargo:rerun-if-changed={}", target_lib.display());
    if target_lib.is_dir() {
        return;
    }
    let mut rustup = Command::new("rustup");
    rustup.args(["target", "add", TARGET]);
    // The toolchain this build runs on (rust-toolchain.toml's), not rustup's default.
    if let Ok(toolchain) = std::env::var("RUSTUP_TOOLCHAIN") {
        rustup.args(["--toolchain", &toolchain]);
    }
    println!(
        "cargo:warning=the {TARGET} target was missing from this toolchain; adding it with `rustup target add {TARGET}` (once)"
    );
    match rustup.status() {
        Ok(status) if status.success() => {}
        Ok(status) => panic!("`rustup target add {TARGET}` failed ({status}); run it by hand, then build again"),
        Err(e) => panic!(
            "the {TARGET} standard library is missing from {} and rustup cannot be run ({e}): install the target for this toolchain",
            sysroot.display()
        ),
    }
}

/// `<target>/wasm-guests/<checkout>`: outside OUT_DIR so that debug, release, test and clippy
/// builds of the host share one guest build instead of each compiling the guests again; one
/// folder per checkout, so two checkouts sharing a target dir never embed each other's guests.
fn guest_target_dir(out_dir: &Path, root: &Path) -> PathBuf {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut hasher = DefaultHasher::new();
    root.hash(&mut hasher);
    let checkout = format!("{:016x}", hasher.finish());
    // OUT_DIR is <target>/<profile>/build/<pkg>-<hash>/out (or with a <triple>/ level more).
    out_dir
        .ancestors()
        .find(|p| p.file_name().is_some_and(|n| n == "build"))
        .and_then(|build| build.parent())
        .and_then(|profile| profile.parent())
        .map(|target| target.join("wasm-guests").join(&checkout))
        .unwrap_or_else(|| out_dir.join("wasm-guests"))
}

/// `funnel_postgres` when the test database is configured (or required, as in CI): the host's
/// test binary runs its PostgreSQL tests then, and reports them as ignored otherwise, so a
/// skipped PostgreSQL half shows in the test summary instead of passing silently.
fn postgres_tests_cfg() {
    println!("cargo::rustc-check-cfg=cfg(funnel_postgres)");
    let mut configured = false;
    for var in ["FUNNEL_TEST_POSTGRES_URL", "FUNNEL_REQUIRE_POSTGRES"] {
        println!("cargo:rerun-if-env-changed={var}");
        configured |= std::env::var_os(var).is_some_and(|v| !v.is_empty());
    }
    if configured {
        println!("cargo:rustc-cfg=funnel_postgres");
    }
}
