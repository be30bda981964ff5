//! Test a plugin crate through the real runtime on a virtual clock (native targets only).
//!
//! [`Component::build`] builds your crate to a component with `funnel plugin build`, and
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
//! let timeline = plugin.simulate(config, &scenario).expect("the simulation runs and the plugin never fails");
//! assert_eq!(timeline.emails().count(), 1);
//! assert_eq!(timeline.entries()[0].at_s, 20 * 60);
//! ```
//!
//! A plugin that traps, returns an error or makes a capability call the host refuses as a
//! mistake (one not declared in `describe`) makes [`Component::simulate`] return
//! [`TestError::PluginFailed`], so a test cannot pass over a panic.
//!
//! Expected timelines are files: [`Component::check_scenarios`] runs every `scenarios/*.json`
//! of a folder and compares each with `expected/NAME.jsonl`, reporting a line diff for every
//! scenario that differs; `FUNNEL_BLESS=1 cargo test` writes the new timelines instead.
//!
//! ## Where the `funnel` binary comes from
//! `FUNNEL_BIN` if set (a project made by `funnel plugin new` sets it in `.cargo/config.toml`),
//! else a `funnel` built beside your tests (`target/debug/funnel`, as in funnel's own
//! workspace), else `funnel` on `PATH`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::Duration;
use crate::wire::{self, Line, LineKind};

/// Set to `1` to write the timelines [`Component::check_scenarios`] gets as the expected ones.
pub const BLESS_VAR: &str = "FUNNEL_BLESS";

/// Why a test could not build or simulate the plugin, or what the plugin did wrong. Each says
/// what to fix.
#[derive(Debug)]
pub enum TestError {
    /// `funnel plugin build` failed.
    Build {
        /// The end of what the build printed.
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
    /// The plugin failed while the scenario ran: an invocation trapped or returned an error
    /// (retried, then parked), or the host refused a capability call as a mistake.
    PluginFailed {
        /// The whole timeline; [`Timeline::failures`] are the lines that say what failed.
        timeline: Timeline,
    },
    /// A scenario built with [`Scenario`] is not valid (a bad duration, a click on message 0…).
    Scenario(String),
    /// Timelines differ from the expected ones.
    Mismatch {
        /// One line diff per scenario that differs.
        diffs: Vec<ScenarioDiff>,
        /// How many scenarios were compared.
        scenarios: usize,
    },
    /// Reading or writing a file, or starting a process, failed.
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// `funnel simulate` printed a line that is not a timeline line.
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
            TestError::Build { output } => write!(f, "funnel plugin build failed:\n{output}"),
            TestError::NoFunnel => write!(
                f,
                "no funnel binary: set FUNNEL_BIN=/path/to/funnel, or put funnel on PATH \
                 (cargo install --path host in funnel's repository)"
            ),
            TestError::Simulate { status, stderr } => {
                let status = status.map_or("a signal".to_string(), |code| code.to_string());
                write!(f, "funnel simulate exited with {status}: {}", stderr.trim())
            }
            TestError::PluginFailed { timeline } => {
                writeln!(f, "the plugin failed while the scenario ran:")?;
                for line in timeline.failures() {
                    writeln!(f, "  at {}: {} {}", clock(line.at_s), line.kind, line.detail.as_deref().unwrap_or(""))?;
                }
                write!(f, "(use Component::simulate_with(.., Options {{ allow_failures: true, .. }}) to look at them)")
            }
            TestError::Scenario(problem) => write!(f, "the scenario is not valid: {problem}"),
            TestError::Mismatch { diffs, scenarios } => {
                writeln!(
                    f,
                    "{} of {scenarios} scenarios differ from their expected timeline \
                     (- expected, + got; `{BLESS_VAR}=1 cargo test` accepts the new ones):",
                    diffs.len()
                )?;
                for diff in diffs {
                    write!(f, "{diff}")?;
                }
                Ok(())
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

/// `5h00m00s`: a time after capture as the table of `funnel simulate` writes it.
fn clock(at_s: i64) -> String {
    format!("{}h{:02}m{:02}s", at_s / 3600, at_s % 3600 / 60, at_s % 60)
}

/// How to run a simulation beyond the scenario and config.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Also timers, logs and the like (`--verbose`).
    pub verbose: bool,
    /// Emails carry their rendered text in `body` (`--show-body`).
    pub show_body: bool,
    /// Return the timeline even when the plugin failed; [`Timeline::failures`] lists what did.
    pub allow_failures: bool,
}

/// A compiled plugin component on disk.
#[derive(Clone, Debug)]
pub struct Component {
    path: PathBuf,
}

impl Component {
    /// Build the plugin crate whose `Cargo.toml` is in `manifest_dir` (pass
    /// `env!("CARGO_MANIFEST_DIR")`) with `funnel plugin build`: a release build for
    /// `wasm32-wasip2` into `plugin-builds/` of your target directory, beside (not inside) the
    /// build of the running tests, so it never waits on their lock and stays warm between runs.
    /// It is the same build, and the same path, as `funnel plugin build` on the command line.
    ///
    /// ```no_run
    /// let plugin = funnel_sdk::testing::Component::build(env!("CARGO_MANIFEST_DIR"))?;
    /// println!("built {}", plugin.path().display());
    /// # Ok::<(), funnel_sdk::testing::TestError>(())
    /// ```
    pub fn build(manifest_dir: impl AsRef<Path>) -> Result<Component, TestError> {
        let funnel = funnel_binary().ok_or(TestError::NoFunnel)?;
        let output = Command::new(&funnel)
            .args(["plugin", "build", "--dir"])
            .arg(manifest_dir.as_ref())
            .output()
            .map_err(io_error(format!("could not start {}", funnel.display())))?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !output.status.success() {
            return Err(TestError::Build { output: tail(&stderr, 40) });
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        match stdout.lines().rev().find(|line| !line.trim().is_empty()) {
            Some(path) => Ok(Component { path: PathBuf::from(path.trim()) }),
            None => Err(TestError::Build { output: "funnel plugin build printed no path".into() }),
        }
    }

    /// A component that is already built (a `.wasm` file).
    ///
    /// ```
    /// let plugin = funnel_sdk::testing::Component::from_file("build/my_plugin.wasm");
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
    /// `funnel simulate`. An invalid config or scenario is an error carrying funnel's message,
    /// and so is a plugin that failed while the scenario ran ([`TestError::PluginFailed`]).
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
        self.simulate_with(config_json, &scenario.to_json()?, Options::default())
    }

    /// Like [`simulate`](Self::simulate) with `--verbose`: the timeline also holds timers and
    /// plugin logs (entries with `detail`).
    pub fn simulate_verbose(&self, config_json: &str, scenario: &Scenario) -> Result<Timeline, TestError> {
        self.simulate_with(config_json, &scenario.to_json()?, Options { verbose: true, ..Options::default() })
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
        self.simulate_with(config_json, scenario_json, Options::default())
    }

    /// Run a scenario written as JSON with [`Options`]: show email bodies, verbose lines, or
    /// keep a failing plugin's timeline to look at its [`failures`](Timeline::failures).
    ///
    /// ```no_run
    /// use funnel_sdk::testing::{Component, Options};
    /// let plugin = Component::from_file("plugin.wasm");
    /// let scenario = std::fs::read_to_string("scenarios/buys.json").unwrap();
    /// let options = Options { show_body: true, ..Options::default() };
    /// let timeline = plugin.simulate_with(&std::fs::read_to_string("config.json").unwrap(), &scenario, options)?;
    /// assert!(timeline.emails().all(|email| email.body.is_some()));
    /// # Ok::<(), funnel_sdk::testing::TestError>(())
    /// ```
    pub fn simulate_with(
        &self,
        config_json: &str,
        scenario_json: &str,
        options: Options,
    ) -> Result<Timeline, TestError> {
        let funnel = funnel_binary().ok_or(TestError::NoFunnel)?;
        let dir = ScratchDir::new()?;
        let config_path = dir.write("config.json", config_json)?;
        let scenario_path = dir.write("scenario.json", scenario_json)?;
        let mut command = Command::new(&funnel);
        command
            .arg("simulate")
            .arg("--plugin")
            .arg(&self.path)
            .arg("--config")
            .arg(&config_path)
            .arg("--scenario")
            .arg(&scenario_path)
            // Failures are read from the timeline, not from the exit status.
            .arg("--allow-failures");
        if options.verbose {
            command.arg("--verbose");
        }
        if options.show_body {
            command.arg("--show-body");
        }
        let output = command.output().map_err(io_error(format!("could not start {}", funnel.display())))?;
        if !output.status.success() {
            return Err(TestError::Simulate {
                status: output.status.code(),
                stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            });
        }
        let timeline = Timeline::parse(&String::from_utf8_lossy(&output.stdout))?;
        if !options.allow_failures && timeline.failures().next().is_some() {
            return Err(TestError::PluginFailed { timeline });
        }
        Ok(timeline)
    }

    /// Run every scenario of a strategy folder and compare each timeline with the expected
    /// one: `dir/config.json`, `dir/scenarios/NAME.json`, `dir/expected/NAME.jsonl`. Every
    /// scenario runs; the error lists a line diff for each that differs (or has no expected
    /// file yet). With `FUNNEL_BLESS=1` in the environment it writes the timelines it got as
    /// the expected ones instead, and says which it changed.
    ///
    /// ```no_run
    /// let plugin = funnel_sdk::testing::Component::build(env!("CARGO_MANIFEST_DIR"))?;
    /// plugin.check_scenarios(env!("CARGO_MANIFEST_DIR"))?;
    /// # Ok::<(), funnel_sdk::testing::TestError>(())
    /// ```
    pub fn check_scenarios(&self, dir: impl AsRef<Path>) -> Result<(), TestError> {
        let dir = dir.as_ref();
        let read =
            |path: &Path| std::fs::read_to_string(path).map_err(io_error(format!("cannot read {}", path.display())));
        let config = read(&dir.join("config.json"))?;
        let scenarios_dir = dir.join("scenarios");
        let mut scenarios: Vec<PathBuf> = std::fs::read_dir(&scenarios_dir)
            .map_err(io_error(format!("cannot list {}", scenarios_dir.display())))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
            .collect();
        scenarios.sort();
        if scenarios.is_empty() {
            return Err(TestError::Scenario(format!("no scenarios (*.json) in {}", scenarios_dir.display())));
        }
        let bless = std::env::var(BLESS_VAR).is_ok_and(|v| v == "1");
        let mut diffs = Vec::new();
        for scenario in &scenarios {
            let stem = scenario.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            let expected_path = dir.join("expected").join(format!("{stem}.jsonl"));
            let got = self.simulate_json(&config, &read(scenario)?)?.to_jsonl();
            let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
            if got == expected {
                continue;
            }
            if bless {
                if let Some(parent) = expected_path.parent() {
                    std::fs::create_dir_all(parent).map_err(io_error(format!("cannot create {}", parent.display())))?;
                }
                std::fs::write(&expected_path, &got)
                    .map_err(io_error(format!("cannot write {}", expected_path.display())))?;
                eprintln!("{BLESS_VAR}: wrote {}", expected_path.display());
            } else {
                diffs.push(ScenarioDiff::new(&stem, &expected, &got));
            }
        }
        if diffs.is_empty() { Ok(()) } else { Err(TestError::Mismatch { diffs, scenarios: scenarios.len() }) }
    }
}

/// How one scenario's timeline differs from its expected file: a line diff.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioDiff {
    /// The scenario's name (its file stem).
    pub scenario: String,
    /// The diff, one entry per line: `' '` same, `'-'` expected only, `'+'` got only.
    pub lines: Vec<(char, String)>,
}

impl ScenarioDiff {
    /// The line diff of `expected` against `got` (longest common subsequence of lines).
    ///
    /// ```
    /// let diff = funnel_sdk::testing::ScenarioDiff::new("buys", "a\nb\nc\n", "a\nx\nc\n");
    /// assert_eq!(diff.to_string(), "--- expected/buys.jsonl\n+++ funnel simulate scenarios/buys.json\n a\n-b\n+x\n c\n");
    /// ```
    pub fn new(scenario: &str, expected: &str, got: &str) -> ScenarioDiff {
        let a: Vec<&str> = expected.lines().collect();
        let b: Vec<&str> = got.lines().collect();
        // lcs[i][j]: length of the longest common subsequence of a[i..] and b[j..].
        let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
        for i in (0..a.len()).rev() {
            for j in (0..b.len()).rev() {
                lcs[i][j] = if a[i] == b[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
            }
        }
        let (mut i, mut j, mut lines) = (0, 0, Vec::new());
        while i < a.len() || j < b.len() {
            if i < a.len() && j < b.len() && a[i] == b[j] {
                lines.push((' ', a[i].to_string()));
                (i, j) = (i + 1, j + 1);
            } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
                lines.push(('-', a[i].to_string()));
                i += 1;
            } else {
                lines.push(('+', b[j].to_string()));
                j += 1;
            }
        }
        ScenarioDiff { scenario: scenario.to_string(), lines }
    }
}

impl fmt::Display for ScenarioDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "--- expected/{}.jsonl", self.scenario)?;
        writeln!(f, "+++ funnel simulate scenarios/{}.json", self.scenario)?;
        for (mark, line) in &self.lines {
            writeln!(f, "{mark}{line}")?;
        }
        Ok(())
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
/// what happens when (times after capture, like `"3h"`), and how long to watch. It builds a
/// [`wire::Scenario`], the very type `funnel simulate` reads.
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
/// let json: serde_json::Value = serde_json::from_str(&scenario.to_json().unwrap()).unwrap();
/// assert_eq!(json["binding"]["coupon"]["code"], "VOLTA10");
/// assert_eq!(json["events"][1]["type"], "order.paid");
/// assert!(Scenario::new("ana@example.com").until("soon").to_json().is_err());
/// ```
#[derive(Clone, Debug)]
pub struct Scenario {
    scenario: wire::Scenario,
    /// The first builder argument that was not valid (a duration that does not parse).
    invalid: Option<String>,
}

impl Scenario {
    /// A lead with this email, captured at time 0, watched for 72 hours, under a
    /// producer-wide binding.
    pub fn new(email: &str) -> Self {
        let lead = wire::ScenarioLead { email: email.to_string(), ..wire::ScenarioLead::default() };
        let scenario =
            wire::Scenario { start: None, binding: None, lead, events: Vec::new(), until: Duration::from_hours(72) };
        Scenario { scenario, invalid: None }
    }

    /// The buyer's full name.
    pub fn name(mut self, name: &str) -> Self {
        self.scenario.lead.name = Some(name.to_string());
        self
    }

    /// The buyer's phone (E.164).
    pub fn phone(mut self, phone: &str) -> Self {
        self.scenario.lead.phone = Some(phone.to_string());
        self
    }

    /// The cart's price in minor units (cents) and its currency.
    pub fn price_cents(mut self, amount_cents: i64, currency: &str) -> Self {
        self.scenario.lead.price = Some(wire::Price { amount_cents, currency: currency.to_string() });
        self
    }

    /// The checkout names this product and plan, and the binding is the one for them.
    pub fn product(mut self, product_id: &str, plan_id: &str) -> Self {
        self.scenario.lead.product_id = Some(product_id.to_string());
        self.scenario.lead.plan_id = Some(plan_id.to_string());
        let binding = self.scenario.binding.get_or_insert_with(wire::ScenarioBinding::default);
        binding.product_id = Some(product_id.to_string());
        binding.plan_id = Some(plan_id.to_string());
        self
    }

    /// The producer registered this coupon for the binding's product and plan (call
    /// [`product`](Self::product) too: coupons exist only there).
    pub fn coupon(mut self, code: &str, discount_percent: u8) -> Self {
        let binding = self.scenario.binding.get_or_insert_with(wire::ScenarioBinding::default);
        binding.coupon = Some(wire::ScenarioCoupon { code: code.to_string(), discount_percent });
        self
    }

    /// The lead is captured at this instant (RFC 3339, e.g. `2026-03-06T23:10:00-03:00`) instead
    /// of 2026-01-01T00:00:00Z: with a send window, the hour of day decides when messages go.
    pub fn start(mut self, rfc3339: &str) -> Self {
        self.scenario.start = Some(rfc3339.to_string());
        self
    }

    /// The binding's send window: recovery messages wait for `start`–`end` (local `HH:MM`) on
    /// `days` (`mon` … `sun`; every day when empty) in `timezone` (IANA), or in the lead's own
    /// zone ([`timezone`](Self::timezone)).
    ///
    /// ```
    /// use funnel_sdk::testing::Scenario;
    /// let s = Scenario::new("ana@example.com")
    ///     .start("2026-03-06T22:50:00-03:00")
    ///     .send_window("08:00", "21:00", &[], "America/Sao_Paulo")
    ///     .timezone("Europe/Warsaw");
    /// assert_eq!(s.as_wire().lead.timezone.as_deref(), Some("Europe/Warsaw"));
    /// ```
    pub fn send_window(mut self, start: &str, end: &str, days: &[&str], timezone: &str) -> Self {
        let binding = self.scenario.binding.get_or_insert_with(wire::ScenarioBinding::default);
        binding.send_window = Some(wire::SendWindow {
            start: start.to_string(),
            end: end.to_string(),
            days: (!days.is_empty()).then(|| days.iter().map(|d| d.to_string()).collect()),
            timezone: timezone.to_string(),
        });
        self
    }

    /// The producer registered a pool of unique codes for the binding's product and plan
    /// (call [`product`](Self::product) too); `unique-coupon` gives them out in order, and an
    /// empty pool answers `limit-reached`.
    pub fn coupon_pool(mut self, codes: &[&str], discount_percent: u8) -> Self {
        let binding = self.scenario.binding.get_or_insert_with(wire::ScenarioBinding::default);
        binding.unique_coupons = Some(wire::ScenarioUniqueCoupons {
            codes: Some(codes.iter().map(|c| c.to_string()).collect()),
            pattern: None,
            discount_percent,
        });
        self
    }

    /// The buyer's own IANA time zone (the platform's `checkout.timezone`): the send window
    /// applies in it.
    pub fn timezone(mut self, timezone: &str) -> Self {
        self.scenario.lead.timezone = Some(timezone.to_string());
        self
    }

    /// The producer registered a pattern of unique codes (e.g. `VOLTA-{A6}`) for the binding's
    /// product and plan (call [`product`](Self::product) too). Its codes are random: compare
    /// timelines that show them by shape, not text.
    pub fn coupon_pattern(mut self, pattern: &str, discount_percent: u8) -> Self {
        let binding = self.scenario.binding.get_or_insert_with(wire::ScenarioBinding::default);
        binding.unique_coupons =
            Some(wire::ScenarioUniqueCoupons { codes: None, pattern: Some(pattern.to_string()), discount_percent });
        self
    }

    /// The order is paid at `at` after capture.
    pub fn order_paid_at(self, at: &str) -> Self {
        self.event(at, wire::ScenarioEventKind::OrderPaid, None)
    }

    /// The order is refunded at `at`.
    pub fn order_refunded_at(self, at: &str) -> Self {
        self.event(at, wire::ScenarioEventKind::OrderRefunded, None)
    }

    /// The checkout is updated again at `at`.
    pub fn updated_at(self, at: &str) -> Self {
        self.event(at, wire::ScenarioEventKind::CheckoutUpdated, None)
    }

    /// The buyer clicks a link in the `message`-th sent message (from 1) at `at`.
    pub fn click_at(self, at: &str, message: usize) -> Self {
        self.event(at, wire::ScenarioEventKind::Click, Some(message))
    }

    /// The buyer opens the `message`-th sent message (from 1) at `at`.
    pub fn open_at(self, at: &str, message: usize) -> Self {
        self.event(at, wire::ScenarioEventKind::Open, Some(message))
    }

    /// The buyer unsubscribes at `at`.
    pub fn unsubscribe_at(self, at: &str) -> Self {
        self.event(at, wire::ScenarioEventKind::Unsubscribe, None)
    }

    /// Watch the lead until `until` after capture (default `"72h"`).
    pub fn until(mut self, until: &str) -> Self {
        if let Some(until) = self.duration("until", until) {
            self.scenario.until = until;
        }
        self
    }

    fn duration(&mut self, what: &str, text: &str) -> Option<Duration> {
        match text.parse::<Duration>() {
            Ok(d) => Some(d),
            Err(e) => {
                self.invalid.get_or_insert_with(|| format!("{what}: {e}"));
                None
            }
        }
    }

    fn event(mut self, at: &str, kind: wire::ScenarioEventKind, message: Option<usize>) -> Self {
        let index = self.scenario.events.len();
        if let Some(at) = self.duration(&format!("events[{index}].at"), at) {
            self.scenario.events.push(wire::ScenarioEvent { at, kind, message });
        }
        self
    }

    /// The scenario as `funnel simulate` reads it.
    pub fn as_wire(&self) -> &wire::Scenario {
        &self.scenario
    }

    /// The scenario in `funnel simulate`'s file format, or what is wrong with it.
    pub fn to_json(&self) -> Result<String, TestError> {
        if let Some(problem) = &self.invalid {
            return Err(TestError::Scenario(problem.clone()));
        }
        self.scenario.check().map_err(|e| TestError::Scenario(e.to_string()))?;
        serde_json::to_string(&self.scenario).map_err(|e| TestError::Scenario(e.to_string()))
    }
}

/// What the host did for the lead, in time order: one entry per email, SMS, list change,
/// dropped message and plugin failure (and, verbose, timers and logs).
#[derive(Clone, Debug, PartialEq)]
pub struct Timeline {
    entries: Vec<Entry>,
}

/// One line of a [`Timeline`]: the line `funnel simulate` prints ([`wire::Line`]).
pub type Entry = Line;

impl Timeline {
    /// Parse `funnel simulate` output (one JSON object a line).
    ///
    /// ```
    /// let out = r#"{"at_s":900,"kind":"sms","tag":"sms-1","body":"Oi","coupon":null}"#;
    /// let timeline = funnel_sdk::testing::Timeline::parse(out).unwrap();
    /// assert_eq!(timeline.sms().next().unwrap().body.as_deref(), Some("Oi"));
    /// ```
    pub fn parse(output: &str) -> Result<Timeline, TestError> {
        let entries = output
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|line| {
                serde_json::from_str::<Line>(line)
                    .map_err(|e| TestError::Output { line: line.to_string(), error: e.to_string() })
            })
            .collect::<Result<_, _>>()?;
        Ok(Timeline { entries })
    }

    /// Every entry, in time order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The emails sent.
    pub fn emails(&self) -> impl Iterator<Item = &Entry> {
        self.of(LineKind::Email)
    }

    /// The SMS sent.
    pub fn sms(&self) -> impl Iterator<Item = &Entry> {
        self.of(LineKind::Sms)
    }

    /// The entries of one kind.
    pub fn of(&self, kind: LineKind) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(move |e| e.kind == kind)
    }

    /// What failed: invocations that trapped or returned an error (retried or parked) and
    /// capability calls the host refused as a mistake, each with its `detail`.
    ///
    /// ```
    /// let out = r#"{"at_s":900,"kind":"failed","detail":"plugin x@1 trapped: panicked"}"#;
    /// let timeline = funnel_sdk::testing::Timeline::parse(out).unwrap();
    /// assert!(timeline.failures().next().unwrap().detail.as_deref().unwrap().contains("panicked"));
    /// ```
    pub fn failures(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(|e| e.is_failure())
    }

    /// The timeline as `funnel simulate` prints it, one JSON object a line: compare it with an
    /// expected timeline checked in beside your scenarios.
    ///
    /// ```
    /// let out = "{\"at_s\":900,\"body\":\"Oi\",\"coupon\":null,\"kind\":\"sms\",\"tag\":\"sms-1\"}\n";
    /// assert_eq!(funnel_sdk::testing::Timeline::parse(out).unwrap().to_jsonl(), out);
    /// ```
    pub fn to_jsonl(&self) -> String {
        self.entries
            .iter()
            .map(|line| serde_json::to_string(line).map(|json| json + "\n").unwrap_or_default())
            .collect()
    }
}
