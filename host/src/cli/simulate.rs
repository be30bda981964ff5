//! `funnel simulate`: see what a plugin would do to one lead over days, in a second.
//!
//! Failures speak up: every failed or parked invocation and every capability call refused as
//! the plugin's mistake is printed on stderr, and the exit status is
//! [`EXIT_PLUGIN_FAILED`](funnel_sdk::wire::EXIT_PLUGIN_FAILED) unless `--allow-failures`.
//! `--write-expected` saves the output as a scenario's expected timeline (a folder of
//! scenarios at once).

use std::io::Write;
use std::path::{Path, PathBuf};

use funnel_sdk::wire::{Line, LineKind, Scenario};

use super::{CliError, UsageError};
use crate::sim::{self, PluginSource, SimulateInput};

#[derive(clap::Args, Debug)]
pub(super) struct SimulateArgs {
    /// A built-in plugin name (four-emails, flow) or the path of a .wasm component
    /// (`funnel plugin build` prints it).
    #[arg(long)]
    plugin: String,
    /// The binding's config (JSON file).
    #[arg(long)]
    config: PathBuf,
    /// The scenario (JSON file): the lead, events and how long to run. With --write-expected,
    /// also a folder: every *.json in it.
    #[arg(long)]
    scenario: PathBuf,
    /// Also print timers, plugin logs and other details.
    #[arg(long)]
    verbose: bool,
    /// Show each email's rendered text (`body`), as the person would read it.
    #[arg(long)]
    show_body: bool,
    /// Exit 0 even when the plugin failed (the failures are still printed).
    #[arg(long)]
    allow_failures: bool,
    /// Write the output as the expected timeline: a .jsonl file for one scenario, a folder
    /// (NAME.jsonl per scenario NAME.json) for a folder of scenarios.
    #[arg(long, value_name = "PATH")]
    write_expected: Option<PathBuf>,
    /// `json` (one object a line) or `table` (for a person).
    #[arg(long, default_value = "json", value_parser = ["json", "table"])]
    format: String,
    /// Keep compiled components here between runs [default: ~/.cache/funnel/components].
    #[arg(long, env = "FUNNEL_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
}

/// The per-user compile cache: simulate runs from anywhere, so not a folder of the cwd.
fn default_cache_dir() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache/funnel/components"))
}

fn read(path: &Path, what: &str) -> Result<String, UsageError> {
    std::fs::read_to_string(path)
        .map_err(|e| UsageError(format!("cannot read the {what} file {}: {e}", path.display())))
}

fn plugin_source(plugin: &str) -> Result<PluginSource, UsageError> {
    let builtins = crate::guests::builtin_names_listed();
    if crate::guests::builtin(plugin).is_some() {
        Ok(PluginSource::Builtin(plugin.to_string()))
    } else if plugin.ends_with(".wasm") || Path::new(plugin).exists() {
        let bytes = std::fs::read(plugin).map_err(|e| {
            UsageError(format!(
                "plugin: cannot read {plugin}: {e}; build it with `funnel plugin build` (it prints the path), \
                 or pass a built-in name ({builtins})"
            ))
        })?;
        Ok(PluginSource::Component(bytes))
    } else {
        Err(UsageError(format!(
            "plugin: {plugin:?} is neither a built-in ({builtins}) nor a .wasm file: `funnel plugin build` prints \
             the path of yours"
        )))
    }
}

pub(super) fn run(args: SimulateArgs) -> Result<(), CliError> {
    let plugin = plugin_source(&args.plugin)?;
    let config_json = read(&args.config, "config")?;
    let runs = scenario_files(&args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| UsageError(format!("cannot start: {e}")))?;
    let mut failures = 0;
    for (scenario_path, expected_path) in runs {
        let scenario = Scenario::parse(&read(&scenario_path, "scenario")?)
            .map_err(|e| UsageError(format!("scenario: {}{e}", name_if(expected_path.is_some(), &scenario_path))))?;
        let input = SimulateInput {
            plugin: plugin.clone(),
            config_json: config_json.clone(),
            scenario,
            verbose: args.verbose,
            show_body: args.show_body,
            cache_dir: args.cache_dir.clone().or_else(default_cache_dir),
        };
        let lines = runtime.block_on(sim::run(input)).map_err(|e| UsageError(e.to_string()))?;
        let failed: Vec<&Line> = lines.iter().filter(|l| l.is_failure()).collect();
        for line in &failed {
            eprintln!(
                "funnel: {}the plugin failed at {}: {} {}",
                name_if(expected_path.is_some(), &scenario_path),
                clock(line.at_s),
                line.kind,
                line.detail.as_deref().unwrap_or("")
            );
        }
        failures += failed.len();
        match expected_path {
            Some(path) if failed.is_empty() || args.allow_failures => write_expected(&path, &lines)?,
            Some(path) => eprintln!("funnel: {} not written: the plugin failed", path.display()),
            None => {
                // Writes fail only when the reader went away (`| head`): stop quietly then.
                let mut out = std::io::stdout().lock();
                let _ = print_lines(&mut out, &lines, args.format == "table");
            }
        }
    }
    if failures > 0 && !args.allow_failures {
        return Err(CliError::PluginFailed(format!(
            "{failures} plugin failure(s), listed above; fix the plugin, or pass --allow-failures to look at \
             the timeline anyway"
        )));
    }
    Ok(())
}

/// `NAME.json: ` when several scenarios run, so each message says which.
fn name_if(several: bool, scenario: &Path) -> String {
    match (several, scenario.file_name()) {
        (true, Some(name)) => format!("{}: ", name.to_string_lossy()),
        _ => String::new(),
    }
}

/// The scenarios to run, each with the expected file to write (with `--write-expected`).
fn scenario_files(args: &SimulateArgs) -> Result<Vec<(PathBuf, Option<PathBuf>)>, UsageError> {
    if !args.scenario.is_dir() {
        return Ok(vec![(args.scenario.clone(), args.write_expected.clone())]);
    }
    let Some(expected_dir) = &args.write_expected else {
        return Err(UsageError(format!(
            "scenario: {} is a folder: pass one scenario file, or --write-expected DIR to run them all",
            args.scenario.display()
        )));
    };
    let mut scenarios: Vec<PathBuf> = std::fs::read_dir(&args.scenario)
        .map_err(|e| UsageError(format!("cannot list {}: {e}", args.scenario.display())))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    scenarios.sort();
    if scenarios.is_empty() {
        return Err(UsageError(format!("scenario: no *.json in {}", args.scenario.display())));
    }
    Ok(scenarios
        .into_iter()
        .map(|path| {
            let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            let expected = expected_dir.join(format!("{stem}.jsonl"));
            (path, Some(expected))
        })
        .collect())
}

/// Write `lines` as an expected timeline, saying on stderr whether it changed.
fn write_expected(path: &Path, lines: &[Line]) -> Result<(), UsageError> {
    let mut text = Vec::new();
    print_lines(&mut text, lines, false).map_err(|e| UsageError(format!("cannot format the timeline: {e}")))?;
    let before = std::fs::read(path).ok();
    if before.as_deref() == Some(text.as_slice()) {
        eprintln!("funnel: {} unchanged", path.display());
        return Ok(());
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| UsageError(format!("cannot create {}: {e}", parent.display())))?;
    }
    std::fs::write(path, &text).map_err(|e| UsageError(format!("cannot write {}: {e}", path.display())))?;
    eprintln!("funnel: wrote {}", path.display());
    Ok(())
}

/// `5h00m00s`.
fn clock(at_s: i64) -> String {
    format!("{}h{:02}m{:02}s", at_s / 3600, at_s % 3600 / 60, at_s % 60)
}

fn print_lines(out: &mut impl Write, lines: &[Line], table: bool) -> std::io::Result<()> {
    if !table {
        for line in lines {
            serde_json::to_writer(&mut *out, line)?;
            writeln!(out)?;
        }
        return out.flush();
    }
    writeln!(out, "{:>10}  {:<11}  {:<16}  DETAIL", "AT", "KIND", "TAG")?;
    for line in lines {
        let detail = match line.kind {
            LineKind::Email => line.subject.as_deref(),
            LineKind::Sms => line.body.as_deref(),
            LineKind::ListAdd | LineKind::ListRemove => line.list.as_deref(),
            LineKind::Dropped => line.reason.as_deref(),
            _ => line.detail.as_deref(),
        };
        let coupon = line.coupon.as_deref().map(|c| format!("  [coupon {c}]")).unwrap_or_default();
        writeln!(
            out,
            "{:>10}  {:<11}  {:<16}  {}{coupon}",
            clock(line.at_s),
            line.kind.as_str(),
            line.tag.as_deref().unwrap_or(""),
            detail.unwrap_or("")
        )?;
        // The email's rendered text under its subject, indented (`--show-body`).
        if let (LineKind::Email, Some(body)) = (line.kind, &line.body) {
            for text in body.lines() {
                writeln!(out, "{:>10}  {:<11}  {:<16}  | {text}", "", "", "")?;
            }
        }
    }
    out.flush()
}
