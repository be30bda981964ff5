//! Test a plugin crate through the real runtime on a virtual clock (native targets only).
//!
//! [`Component::build`] compiles your crate to a `wasm32-wasip2` component, and
//! [`Component::simulate`] runs it with `funnel simulate`: the same sandbox, store, dispatcher,
//! durable timers and send-time rules as `funnel serve`, on an in-memory database and a virtual
//! clock, sending nothing. A three-day scenario takes about a second, and what you assert on is
//! exactly what the host would do. Use it from your crate's `tests/`:
//!
//! ```no_run
//! use funnel_sdk::testing::{Component, Scenario};
//!
//! let plugin = Component::build(env!("CARGO_MANIFEST_DIR")).expect("the plugin builds");
//! let config = r#"{"after": "20m", "subject": "Back?", "html": "<p>Hi {{first_name}}</p>"}"#;
//! let scenario = Scenario::new("ana@example.com").name("Ana Souza").price_cents(9700, "BRL").until("72h");
//! let timeline = plugin.simulate(config, &scenario).expect("the simulation runs");
//! assert_eq!(timeline.emails().count(), 1);
//! assert_eq!(timeline.entries()[0].at_s, 20 * 60);
//! ```
//!
//! ## Where the `funnel` binary comes from
//! `FUNNEL_BIN` if set (a project made by `funnel plugin new` sets it in `.cargo/config.toml`),
//! else a `funnel` built beside your tests (`target/debug/funnel`, as in funnel's own
//! workspace), else `funnel` on `PATH`.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Deserialize;
use serde_json::{Value, json};

/// Why a test could not build or simulate the plugin. Each says what to fix.
#[derive(Debug)]
pub enum TestError {
    /// `cargo build` of the plugin failed.
    Build {
        /// The end of what cargo printed.
        output: String,
    },
    /// No `funnel` binary was found.
    NoFunnel,
    /// `funnel simulate` refused the plugin, config or scenario (exit 2) or failed.
    Simulate {
        /// Its exit status (`None`: killed by a signal).
        status: Option<i32>,
        /// Its error line.
        stderr: String,
    },
    /// Reading or writing a file, or starting a process, failed.
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// `funnel simulate` printed a line that is not a timeline entry.
    Output {
        /// The line.
        line: String,
        /// Why it did not parse.
        error: String,
    },
}

impl fmt::Display for TestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TestError::Build { output } => write!(f, "the plugin did not build for wasm32-wasip2:\n{output}"),
            TestError::NoFunnel => write!(
                f,
                "no funnel binary: set FUNNEL_BIN=/path/to/funnel, or put funnel on PATH \
                 (cargo install --path host in funnel's repository)"
            ),
            TestError::Simulate { status, stderr } => {
                let status = status.map_or("a signal".to_string(), |code| code.to_string());
                write!(f, "funnel simulate exited with {status}: {}", stderr.trim())
            }
            TestError::Io { what, source } => write!(f, "{what}: {source}"),
            TestError::Output { line, error } => write!(f, "funnel simulate printed {line:?}: {error}"),
        }
    }
}

impl std::error::Error for TestError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TestError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

fn io_error(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> TestError {
    let what = what.into();
    move |source| TestError::Io { what, source }
}

/// A compiled plugin component on disk.
#[derive(Clone, Debug)]
pub struct Component {
    path: PathBuf,
}

impl Component {
    /// Build the plugin crate whose `Cargo.toml` is in `manifest_dir` (pass
    /// `env!("CARGO_MANIFEST_DIR")`) with `cargo build --release --target wasm32-wasip2`.
    ///
    /// The build goes to `plugin-builds/` in your target directory, beside (not inside) the
    /// build of the running tests, so it never waits on their lock and stays warm between runs.
    ///
    /// ```no_run
    /// let plugin = funnel_sdk::testing::Component::build(env!("CARGO_MANIFEST_DIR"))?;
    /// println!("built {}", plugin.path().display());
    /// # Ok::<(), funnel_sdk::testing::TestError>(())
    /// ```
    pub fn build(manifest_dir: impl AsRef<Path>) -> Result<Component, TestError> {
        let manifest = manifest_dir.as_ref().join("Cargo.toml");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
        let output = Command::new(cargo)
            .args(["build", "--release", "--target", "wasm32-wasip2", "--message-format", "json-render-diagnostics"])
            .arg("--manifest-path")
            .arg(&manifest)
            .arg("--target-dir")
            .arg(plugin_target_dir())
            .output()
            .map_err(io_error("could not start cargo"))?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !output.status.success() {
            return Err(TestError::Build { output: tail(&stderr, 40) });
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        let wasm = stdout
            .lines()
            .filter_map(|line| serde_json::from_str::<Artifact>(line).ok())
            .filter(|a| a.reason == "compiler-artifact" && Path::new(&a.manifest_path) == manifest)
            .flat_map(|a| a.filenames)
            .find(|file| file.ends_with(".wasm"));
        match wasm {
            Some(path) => Ok(Component { path: PathBuf::from(path) }),
            None => Err(TestError::Build {
                output: format!(
                    "cargo built no .wasm for {}: is the crate type `cdylib` ([lib] crate-type = [\"cdylib\", \"rlib\"])?",
                    manifest.display()
                ),
            }),
        }
    }

    /// A component that is already built (a `.wasm` file).
    ///
    /// ```
    /// let plugin = funnel_sdk::testing::Component::from_file("target/wasm32-wasip2/release/my_plugin.wasm");
    /// assert!(plugin.path().ends_with("my_plugin.wasm"));
    /// ```
    pub fn from_file(path: impl Into<PathBuf>) -> Component {
        Component { path: path.into() }
    }

    /// Where the component is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Run `scenario` against this plugin with `config_json` (the binding's config), through
    /// `funnel simulate`. An invalid config or scenario is an error carrying funnel's message.
    ///
    /// ```no_run
    /// use funnel_sdk::testing::{Component, Scenario};
    /// let plugin = Component::from_file("plugin.wasm");
    /// let bought = Scenario::new("ana@example.com").price_cents(29700, "BRL").order_paid_at("1h").until("3d");
    /// let timeline = plugin.simulate(&std::fs::read_to_string("config.json").unwrap(), &bought)?;
    /// assert!(timeline.entries().iter().all(|e| e.at_s <= 3600));
    /// # Ok::<(), funnel_sdk::testing::TestError>(())
    /// ```
    pub fn simulate(&self, config_json: &str, scenario: &Scenario) -> Result<Timeline, TestError> {
        self.simulate_files(config_json, &scenario.to_json(), &[])
    }

    /// Like [`simulate`](Self::simulate) with `--verbose`: the timeline also holds timers and
    /// plugin logs (entries with `detail`).
    pub fn simulate_verbose(&self, config_json: &str, scenario: &Scenario) -> Result<Timeline, TestError> {
        self.simulate_files(config_json, &scenario.to_json(), &["--verbose"])
    }

    /// Run a scenario written as JSON (the `funnel simulate` scenario file format).
    ///
    /// ```no_run
    /// let plugin = funnel_sdk::testing::Component::from_file("plugin.wasm");
    /// let scenario = std::fs::read_to_string("scenarios/buys.json").unwrap();
    /// let timeline = plugin.simulate_json(&std::fs::read_to_string("config.json").unwrap(), &scenario)?;
    /// println!("{}", timeline.to_jsonl());
    /// # Ok::<(), funnel_sdk::testing::TestError>(())
    /// ```
    pub fn simulate_json(&self, config_json: &str, scenario_json: &str) -> Result<Timeline, TestError> {
        self.simulate_files(config_json, scenario_json, &[])
    }

    fn simulate_files(&self, config_json: &str, scenario_json: &str, flags: &[&str]) -> Result<Timeline, TestError> {
        let funnel = funnel_binary().ok_or(TestError::NoFunnel)?;
        let dir = ScratchDir::new()?;
        let config_path = dir.write("config.json", config_json)?;
        let scenario_path = dir.write("scenario.json", scenario_json)?;
        let output = Command::new(&funnel)
            .arg("simulate")
            .arg("--plugin")
            .arg(&self.path)
            .arg("--config")
            .arg(&config_path)
            .arg("--scenario")
            .arg(&scenario_path)
            .args(flags)
            .output()
            .map_err(io_error(format!("could not start {}", funnel.display())))?;
        if !output.status.success() {
            return Err(TestError::Simulate {
                status: output.status.code(),
                stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            });
        }
        Timeline::parse(&String::from_utf8_lossy(&output.stdout))
    }
}

#[derive(Deserialize)]
struct Artifact {
    reason: String,
    #[serde(default)]
    manifest_path: String,
    #[serde(default)]
    filenames: Vec<String>,
}

/// `plugin-builds/` in the target directory of the running test.
fn plugin_target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir).join("plugin-builds");
    }
    // A test runs from `<target>/<profile>/deps/`.
    match std::env::current_exe().ok().and_then(|exe| exe.ancestors().nth(3).map(Path::to_path_buf)) {
        Some(target) => target.join("plugin-builds"),
        None => PathBuf::from("target").join("plugin-builds"),
    }
}

fn funnel_binary() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os("FUNNEL_BIN") {
        return Some(PathBuf::from(bin));
    }
    let name = format!("funnel{}", std::env::consts::EXE_SUFFIX);
    // `<target>/<profile>/deps/<test>` → `<target>/<profile>/funnel`
    let beside = std::env::current_exe().ok().and_then(|exe| exe.ancestors().nth(2).map(|p| p.join(&name)));
    if let Some(bin) = beside.filter(|p| p.is_file()) {
        return Some(bin);
    }
    std::env::split_paths(&std::env::var_os("PATH")?).map(|dir| dir.join(&name)).find(|p| p.is_file())
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A temporary directory removed on drop.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new() -> Result<Self, TestError> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("funnel-sdk-test-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(io_error(format!("could not create {}", dir.display())))?;
        Ok(ScratchDir(dir))
    }

    fn write(&self, name: &str, contents: &str) -> Result<PathBuf, TestError> {
        let path = self.0.join(name);
        std::fs::write(&path, contents).map_err(io_error(format!("could not write {}", path.display())))?;
        Ok(path)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One lead's story for [`Component::simulate`]: who the lead is, the binding it falls under,
/// what happens when (times after capture, like `"3h"`), and how long to watch.
///
/// ```
/// use funnel_sdk::testing::Scenario;
/// let scenario = Scenario::new("ana@example.com")
///     .name("Ana Souza")
///     .phone("+5511999990000")
///     .product("p1", "q1")
///     .coupon("VOLTA10", 10)
///     .price_cents(29700, "BRL")
///     .click_at("3h", 1)
///     .order_paid_at("26h")
///     .until("96h");
/// let json: serde_json::Value = serde_json::from_str(&scenario.to_json()).unwrap();
/// assert_eq!(json["binding"]["coupon"]["code"], "VOLTA10");
/// assert_eq!(json["events"][1]["type"], "order.paid");
/// ```
#[derive(Clone, Debug)]
pub struct Scenario {
    lead: serde_json::Map<String, Value>,
    binding: Option<serde_json::Map<String, Value>>,
    events: Vec<Value>,
    until: String,
}

impl Scenario {
    /// A lead with this email, captured at time 0, watched for 72 hours, under a
    /// producer-wide binding.
    pub fn new(email: &str) -> Self {
        let mut lead = serde_json::Map::new();
        lead.insert("email".into(), json!(email));
        Scenario { lead, binding: None, events: Vec::new(), until: "72h".into() }
    }

    /// The buyer's full name.
    pub fn name(mut self, name: &str) -> Self {
        self.lead.insert("name".into(), json!(name));
        self
    }

    /// The buyer's phone (E.164).
    pub fn phone(mut self, phone: &str) -> Self {
        self.lead.insert("phone".into(), json!(phone));
        self
    }

    /// The cart's price in minor units (cents) and its currency.
    pub fn price_cents(mut self, amount_cents: i64, currency: &str) -> Self {
        self.lead.insert("price".into(), json!({"amount_cents": amount_cents, "currency": currency}));
        self
    }

    /// The checkout names this product and plan, and the binding is the one for them.
    pub fn product(mut self, product_id: &str, plan_id: &str) -> Self {
        self.lead.insert("product_id".into(), json!(product_id));
        self.lead.insert("plan_id".into(), json!(plan_id));
        let binding = self.binding.get_or_insert_with(serde_json::Map::new);
        binding.insert("product_id".into(), json!(product_id));
        binding.insert("plan_id".into(), json!(plan_id));
        self
    }

    /// The producer registered this coupon for the binding's product and plan (call
    /// [`product`](Self::product) too: coupons exist only there).
    pub fn coupon(mut self, code: &str, discount_percent: u8) -> Self {
        let binding = self.binding.get_or_insert_with(serde_json::Map::new);
        binding.insert("coupon".into(), json!({"code": code, "discount_percent": discount_percent}));
        self
    }

    /// The order is paid at `at` after capture.
    pub fn order_paid_at(self, at: &str) -> Self {
        self.event(at, "order.paid", None)
    }

    /// The order is refunded at `at`.
    pub fn order_refunded_at(self, at: &str) -> Self {
        self.event(at, "order.refunded", None)
    }

    /// The checkout is updated again at `at`.
    pub fn updated_at(self, at: &str) -> Self {
        self.event(at, "checkout.updated", None)
    }

    /// The buyer clicks a link in the `message`-th sent message (from 1) at `at`.
    pub fn click_at(self, at: &str, message: usize) -> Self {
        self.event(at, "click", Some(message))
    }

    /// The buyer opens the `message`-th sent message (from 1) at `at`.
    pub fn open_at(self, at: &str, message: usize) -> Self {
        self.event(at, "open", Some(message))
    }

    /// The buyer unsubscribes at `at`.
    pub fn unsubscribe_at(self, at: &str) -> Self {
        self.event(at, "unsubscribe", None)
    }

    /// Watch the lead until `until` after capture (default `"72h"`).
    pub fn until(mut self, until: &str) -> Self {
        self.until = until.to_string();
        self
    }

    fn event(mut self, at: &str, kind: &str, message: Option<usize>) -> Self {
        let mut event = json!({"at": at, "type": kind});
        if let Some(n) = message {
            event["message"] = json!(n);
        }
        self.events.push(event);
        self
    }

    /// The scenario in `funnel simulate`'s file format.
    pub fn to_json(&self) -> String {
        let mut scenario = json!({"lead": self.lead, "events": self.events, "until": self.until});
        if let Some(binding) = &self.binding {
            scenario["binding"] = Value::Object(binding.clone());
        }
        scenario.to_string()
    }
}

/// What the host did for the lead, in time order: one entry per email, SMS, list change and
/// dropped message (and, verbose, timers and logs).
#[derive(Clone, Debug, PartialEq)]
pub struct Timeline {
    lines: Vec<String>,
    entries: Vec<Entry>,
}

/// One line of a [`Timeline`]. Fields a kind does not have are `None`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Entry {
    /// Seconds after capture.
    pub at_s: i64,
    /// `email`, `sms`, `list_add`, `list_remove`, `dropped` (verbose: `timer_set`, `log`, …).
    pub kind: String,
    /// The message's tag.
    #[serde(default)]
    pub tag: Option<String>,
    /// An email's rendered subject.
    #[serde(default)]
    pub subject: Option<String>,
    /// An SMS's rendered body.
    #[serde(default)]
    pub body: Option<String>,
    /// The coupon code the message carries.
    #[serde(default)]
    pub coupon: Option<String>,
    /// The list of a list change.
    #[serde(default)]
    pub list: Option<String>,
    /// Why a message was dropped (`purchased`, `suppressed`, …).
    #[serde(default)]
    pub reason: Option<String>,
    /// What a verbose-only entry says.
    #[serde(default)]
    pub detail: Option<String>,
}

impl Timeline {
    /// Parse `funnel simulate` output (one JSON object a line).
    ///
    /// ```
    /// let out = r#"{"at_s":900,"kind":"sms","tag":"sms-1","body":"Oi","coupon":null}"#;
    /// let timeline = funnel_sdk::testing::Timeline::parse(out).unwrap();
    /// assert_eq!(timeline.sms().next().unwrap().body.as_deref(), Some("Oi"));
    /// ```
    pub fn parse(output: &str) -> Result<Timeline, TestError> {
        let mut lines = Vec::new();
        let mut entries = Vec::new();
        for line in output.lines().filter(|l| !l.trim().is_empty()) {
            let bad = |e: serde_json::Error| TestError::Output { line: line.to_string(), error: e.to_string() };
            let value: Value = serde_json::from_str(line).map_err(bad)?;
            entries.push(Entry::deserialize(&value).map_err(bad)?);
            lines.push(line.trim().to_string());
        }
        Ok(Timeline { lines, entries })
    }

    /// Every entry, in time order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The emails sent.
    pub fn emails(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(|e| e.kind == "email")
    }

    /// The SMS sent.
    pub fn sms(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(|e| e.kind == "sms")
    }

    /// The output as `funnel simulate` printed it, one JSON object a line: compare it with an
    /// expected timeline checked in beside your scenarios.
    ///
    /// ```
    /// let out = "{\"at_s\":900,\"kind\":\"sms\",\"tag\":\"sms-1\",\"body\":\"Oi\",\"coupon\":null}\n";
    /// assert_eq!(funnel_sdk::testing::Timeline::parse(out).unwrap().to_jsonl(), out);
    /// ```
    pub fn to_jsonl(&self) -> String {
        self.lines.iter().map(|line| format!("{line}\n")).collect()
    }
}
