//! `funnel plugin new NAME [--lang rust|python|js]`: scaffold a plugin project that builds as
//! it is and passes its own test.
//!
//! The project starts from the `sms-first` example strategy (an SMS first for leads with a
//! phone, then one email with the coupon only for big carts), with its config, scenarios and
//! expected timelines beside it, so the first `cargo test` (or `python3 -m unittest`, or
//! `npm test`) already runs the plugin through the real runtime. The files are compiled into
//! this binary from `examples/`, so the scaffold is always the example CI just checked.

use std::path::{Path, PathBuf};

use super::UsageError;

#[derive(clap::Args, Debug)]
pub(super) struct NewArgs {
    /// The plugin's name: lower-case letters, digits and dashes, starting with a letter.
    name: String,
    /// The language of the project.
    #[arg(long, value_enum, default_value_t = Lang::Rust)]
    lang: Lang,
    /// Where to create the project (default: ./NAME). It must not exist or be empty.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The funnel SDK crate a Rust project depends on (default: the SDK of the source tree
    /// this funnel was built from).
    #[arg(long, env = "FUNNEL_SDK_PATH")]
    sdk: Option<PathBuf>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Lang {
    Rust,
    Python,
    Js,
}

/// The strategy's data, shared by both languages: config, scenarios and expected timelines.
const STRATEGY: &[(&str, &str)] = &[
    ("config.json", include_str!("../../../examples/sms-first/config.json")),
    (
        "scenarios/big-cart-with-phone.json",
        include_str!("../../../examples/sms-first/scenarios/big-cart-with-phone.json"),
    ),
    (
        "scenarios/buys-after-the-sms.json",
        include_str!("../../../examples/sms-first/scenarios/buys-after-the-sms.json"),
    ),
    (
        "scenarios/small-cart-no-phone.json",
        include_str!("../../../examples/sms-first/scenarios/small-cart-no-phone.json"),
    ),
    (
        "expected/big-cart-with-phone.jsonl",
        include_str!("../../../examples/sms-first/expected/big-cart-with-phone.jsonl"),
    ),
    (
        "expected/buys-after-the-sms.jsonl",
        include_str!("../../../examples/sms-first/expected/buys-after-the-sms.jsonl"),
    ),
    (
        "expected/small-cart-no-phone.jsonl",
        include_str!("../../../examples/sms-first/expected/small-cart-no-phone.jsonl"),
    ),
];

const RUST_LIB: &str = include_str!("../../../examples/rust-plugin/src/lib.rs");
const RUST_TEST: &str = include_str!("../../../examples/rust-plugin/tests/timeline.rs");
const RUST_TOOLCHAIN: &str = include_str!("../../../rust-toolchain.toml");
// The versions funnel itself was tested with; cargo trims what the plugin does not use.
const CARGO_LOCK: &str = include_str!("../../../Cargo.lock");

const PYTHON_APP: &str = include_str!("../../../examples/python-plugin/app.py");
const PYTHON_BUILD: &str = include_str!("../../../examples/python-plugin/build.sh");
const PYTHON_TEST: &str = include_str!("../../../examples/python-plugin/test_plugin.py");
const JS_PLUGIN: &str = include_str!("../../../examples/js-plugin/plugin.js");
const JS_STRATEGY: &str = include_str!("../../../examples/js-plugin/strategy.js");
const JS_BUILD: &str = include_str!("../../../examples/js-plugin/build.mjs");
const JS_PACKAGE: &str = include_str!("../../../examples/js-plugin/package.json");
const JS_CONFIG: &str = include_str!("../../../examples/js-plugin/jsconfig.json");
const JS_TOOLCHAIN: &str = include_str!("../../../examples/js-plugin/toolchain/package.json");
const JS_TOOLCHAIN_LOCK: &str = include_str!("../../../examples/js-plugin/toolchain/package-lock.json");
const JS_TEST_STRATEGY: &str = include_str!("../../../examples/js-plugin/test/strategy.test.js");
const JS_TEST_TIMELINE: &str = include_str!("../../../examples/js-plugin/test/timeline.test.js");
const WIT: &str = include_str!("../../../wit/funnel.wit");
/// The reference page for plugin authors, shipped with every scaffold.
const REFERENCE: &str = include_str!("../../../examples/plugin-authors.md");

pub(super) fn run(args: NewArgs) -> Result<(), UsageError> {
    check_name(&args.name)?;
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from(&args.name));
    if std::fs::read_dir(&dir).is_ok_and(|mut entries| entries.next().is_some()) {
        return Err(UsageError(format!(
            "{} already exists and is not empty: choose another name or pass --dir",
            dir.display()
        )));
    }
    let funnel = std::env::current_exe()
        .map_err(|e| UsageError(format!("cannot find this funnel binary's path ({e}): set FUNNEL_BIN yourself")))?;
    let mut files = match args.lang {
        Lang::Rust => rust_files(&args.name, &sdk_path(args.sdk.as_deref())?, &funnel),
        Lang::Python => python_files(&args.name),
        Lang::Js => js_files(&args.name, &funnel),
    };
    files.push(("PLUGIN-AUTHORS.md".to_string(), REFERENCE.to_string()));
    for (path, contents) in &files {
        write(&dir.join(path), contents)?;
    }
    if args.lang == Lang::Python {
        make_executable(&dir.join("build.sh"))?;
    }
    print_next_steps(&args, &dir, &funnel);
    Ok(())
}

/// A name that is a valid crate name, file name and plugin name alike.
fn check_name(name: &str) -> Result<(), UsageError> {
    let ok = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(UsageError(format!(
            "{name:?} is not a plugin name: use lower-case letters, digits and dashes, starting with a letter (e.g. my-strategy)"
        )))
    }
}

fn sdk_path(given: Option<&Path>) -> Result<PathBuf, UsageError> {
    let sdk = match given {
        Some(path) => path.to_path_buf(),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk"),
    };
    let sdk = sdk.canonicalize().map_err(|_| {
        UsageError(format!(
            "the funnel SDK is not at {}: pass --sdk PATH/TO/funnel/sdk (the sdk folder of funnel's source)",
            sdk.display()
        ))
    })?;
    if !sdk.join("Cargo.toml").is_file() {
        return Err(UsageError(format!("{} has no Cargo.toml: pass --sdk PATH/TO/funnel/sdk", sdk.display())));
    }
    Ok(sdk)
}

/// The example's sources, renamed, with the strategy files beside them instead of in
/// `../sms-first`.
fn rust_files(name: &str, sdk: &Path, funnel: &Path) -> Vec<(String, String)> {
    let lib = RUST_LIB
        .replacen(
            "//! `sms-first`: a producer's own recovery strategy",
            &format!("//! `{name}`: a recovery strategy"),
            1,
        )
        .replace("\"sms-first\"", &format!("{name:?}"))
        .replace("../sms-first/", "")
        .replace("examples/sms-first/config.json", "config.json")
        .replace("see `examples/sms-first/README.md`", "see README.md");
    let manifest = format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
rust-version = "1.95"
publish = false

[lib]
# `cdylib` is the component; `rlib` lets the tests link the crate natively.
crate-type = ["cdylib", "rlib"]

[dependencies]
funnel-sdk = {{ path = {sdk:?} }}
serde = {{ version = "1", features = ["derive"] }}

# A project of its own, even inside another cargo workspace.
[workspace]

# Small components: `funnel_sdk::testing` builds with `--release`.
[profile.release]
opt-level = "s"
strip = true
panic = "abort"
"#,
        sdk = sdk.display().to_string(),
    );
    let cargo_config = format!(
        "# The funnel binary the tests simulate with (funnel_sdk::testing); FUNNEL_BIN in your\n\
         # environment wins.\n[env]\nFUNNEL_BIN = {:?}\n",
        funnel.display().to_string()
    );
    let mut files = vec![
        ("Cargo.toml".to_string(), manifest),
        ("Cargo.lock".to_string(), CARGO_LOCK.to_string()),
        ("rust-toolchain.toml".to_string(), RUST_TOOLCHAIN.to_string()),
        (".cargo/config.toml".to_string(), cargo_config),
        (".gitignore".to_string(), "/target\n".to_string()),
        ("src/lib.rs".to_string(), lib),
        ("tests/timeline.rs".to_string(), RUST_TEST.to_string()),
        ("README.md".to_string(), readme(name, Lang::Rust)),
    ];
    files.extend(STRATEGY.iter().map(|(path, contents)| (path.to_string(), contents.to_string())));
    files
}

fn python_files(name: &str) -> Vec<(String, String)> {
    let module = name.replace('-', "_");
    let rename = |text: &str| text.replace("sms-first-py", name).replace("sms_first_py", &module);
    let mut files = vec![
        ("app.py".to_string(), rename(PYTHON_APP)),
        ("build.sh".to_string(), rename(PYTHON_BUILD)),
        ("test_plugin.py".to_string(), rename(PYTHON_TEST)),
        ("wit/funnel.wit".to_string(), WIT.to_string()),
        (".gitignore".to_string(), "/build\n__pycache__/\n".to_string()),
        ("README.md".to_string(), readme(name, Lang::Python)),
    ];
    files.extend(STRATEGY.iter().map(|(path, contents)| (path.to_string(), contents.to_string())));
    files
}

fn js_files(name: &str, funnel: &Path) -> Vec<(String, String)> {
    let module = name.replace('-', "_");
    let rename = |text: &str| text.replace("sms-first-js", name).replace("sms_first_js", &module);
    // The tests find this funnel through package.json's config (FUNNEL_BIN still wins).
    let package = match serde_json::from_str::<serde_json::Value>(JS_PACKAGE) {
        Ok(mut package) => {
            package["name"] = name.into();
            package["config"] = serde_json::json!({ "funnel_bin": funnel.display().to_string() });
            serde_json::to_string_pretty(&package).unwrap_or_else(|_| rename(JS_PACKAGE)) + "\n"
        }
        Err(_) => rename(JS_PACKAGE),
    };
    let mut files = vec![
        ("plugin.js".to_string(), rename(JS_PLUGIN)),
        ("strategy.js".to_string(), rename(JS_STRATEGY)),
        ("build.mjs".to_string(), rename(JS_BUILD)),
        ("package.json".to_string(), package),
        ("jsconfig.json".to_string(), JS_CONFIG.to_string()),
        ("toolchain/package.json".to_string(), JS_TOOLCHAIN.to_string()),
        ("toolchain/package-lock.json".to_string(), JS_TOOLCHAIN_LOCK.to_string()),
        ("test/strategy.test.js".to_string(), rename(JS_TEST_STRATEGY)),
        ("test/timeline.test.js".to_string(), JS_TEST_TIMELINE.to_string()),
        ("wit/funnel.wit".to_string(), WIT.to_string()),
        (".gitignore".to_string(), "build/\ntypes/\nnode_modules/\n".to_string()),
        ("README.md".to_string(), readme(name, Lang::Js)),
    ];
    files.extend(STRATEGY.iter().map(|(path, contents)| (path.to_string(), contents.to_string())));
    files
}

fn readme(name: &str, lang: Lang) -> String {
    let (test, bless) = match lang {
        Lang::Rust => ("cargo test", "FUNNEL_BLESS=1 cargo test"),
        Lang::Python => ("FUNNEL_BIN=$(command -v funnel) python3 -m unittest", "FUNNEL_BLESS=1 python3 -m unittest"),
        Lang::Js => ("npm test", "FUNNEL_BLESS=1 npm test"),
    };
    let toolchain = match lang {
        Lang::Rust => "The build is `cargo build --release --target wasm32-wasip2`, into `plugin-builds/` of your\n\
                       target directory (the same build `cargo test` makes).\n"
            .to_string(),
        Lang::Python => {
            "The build installs componentize-py 0.25.1 from PyPI into `~/.cache/funnel` the first time.\n".to_string()
        }
        Lang::Js => "The build installs its toolchain (`toolchain/package-lock.json`: componentize-qjs, jco's WIT\n\
                     bindgen) with npm into `~/.cache/funnel` the first time, and writes `types/` (TypeScript\n\
                     declarations of the WIT) for your editor; `npm run types` writes them alone.\n"
            .to_string(),
    };
    format!(
        "# {name}\n\n\
         A funnel recovery strategy, started from the `sms-first` example: an SMS first for leads\n\
         with a phone, then one email, with the coupon only for carts over `coupon_over_cents`.\n\
         Change it to yours; `scenarios/` and `expected/` are what the test checks.\n\n\
         ```sh\n\
         funnel plugin build         # builds the component and prints its path\n\
         {test}          # every scenario through the real runtime, on a virtual clock\n\
         funnel simulate --plugin \"$(funnel plugin build)\" --config config.json \\\n    \
             --scenario scenarios/big-cart-with-phone.json --format table --show-body\n\
         funnel plugin check \"$(funnel plugin build)\"\n\
         funnel plugin push \"$(funnel plugin build)\" --server http://localhost:8080 --key $FUNNEL_KEY\n\
         ```\n\n\
         {toolchain}\n\
         After changing the strategy, look at the new timelines and accept them as the expected ones\n\
         with `{bless}` (or `funnel simulate --plugin \"$(funnel plugin build)\" --config config.json\n\
         --scenario scenarios --write-expected expected`); a test that fails shows a line diff of\n\
         every scenario that differs.\n\n\
         Everything a plugin author needs to know (scenario format, event fields, capabilities and\n\
         their errors, limits, coupons): [PLUGIN-AUTHORS.md](PLUGIN-AUTHORS.md).\n"
    )
}

fn write(path: &Path, contents: &str) -> Result<(), UsageError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| UsageError(format!("cannot create {}: {e}", parent.display())))?;
    }
    std::fs::write(path, contents).map_err(|e| UsageError(format!("cannot write {}: {e}", path.display())))
}

#[cfg(unix)]
fn make_executable(path: &Path) -> Result<(), UsageError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| UsageError(format!("cannot make {} executable: {e}", path.display())))
}

#[cfg(not(unix))]
fn make_executable(_path: &Path) -> Result<(), UsageError> {
    Ok(())
}

fn print_next_steps(args: &NewArgs, dir: &Path, funnel: &Path) {
    let dir = dir.display();
    match args.lang {
        Lang::Rust => println!("created {dir}: a Rust plugin\nnext: cd {dir} && cargo test"),
        Lang::Python => println!(
            "created {dir}: a Python plugin\nnext: cd {dir} && FUNNEL_BIN={} python3 -m unittest",
            funnel.display()
        ),
        Lang::Js => println!("created {dir}: a JavaScript plugin\nnext: cd {dir} && npm test"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_be_crate_and_file_safe() {
        for good in ["a", "my-strategy", "sms2"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "My", "1st", "-x", "x-", "a_b", "a b", "../x", &"a".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_rust_scaffold_is_renamed_and_reads_its_strategy_beside_it() {
        let files = rust_files("my-strategy", Path::new("/sdk"), Path::new("/bin/funnel"));
        let lib = &files.iter().find(|(p, _)| p == "src/lib.rs").expect("lib.rs").1;
        assert!(lib.contains("\"my-strategy\"") && !lib.contains("\"sms-first\""));
        assert!(!lib.contains("../sms-first"));
        let manifest = &files.iter().find(|(p, _)| p == "Cargo.toml").expect("Cargo.toml").1;
        assert!(manifest.contains("name = \"my-strategy\"") && manifest.contains("path = \"/sdk\""));
        assert!(files.iter().any(|(p, _)| p == "expected/big-cart-with-phone.jsonl"));
    }
}
