//! `funnel simulate`: see what a plugin would do to one lead over days, in a second.

use std::io::Write;
use std::path::PathBuf;

use super::UsageError;
use crate::sim::{self, PluginSource, SimulateInput};

#[derive(clap::Args, Debug)]
pub struct SimulateArgs {
    /// A built-in plugin name (four-emails, flow) or the path of a .wasm component.
    #[arg(long)]
    plugin: String,
    /// The binding's config (JSON file).
    #[arg(long)]
    config: PathBuf,
    /// The scenario (JSON file): the lead, events and how long to run.
    #[arg(long)]
    scenario: PathBuf,
    /// Also print timers, plugin logs and failures.
    #[arg(long)]
    verbose: bool,
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

fn read(path: &PathBuf, what: &str) -> Result<String, UsageError> {
    std::fs::read_to_string(path)
        .map_err(|e| UsageError(format!("cannot read the {what} file {}: {e}", path.display())))
}

pub fn run(args: SimulateArgs) -> Result<(), UsageError> {
    let plugin = if crate::guests::builtin(&args.plugin).is_some() {
        PluginSource::Builtin(args.plugin.clone())
    } else if args.plugin.ends_with(".wasm") || std::path::Path::new(&args.plugin).exists() {
        PluginSource::Component(std::fs::read(&args.plugin).map_err(|e| {
            UsageError(format!(
                "plugin: cannot read {}: {e}; pass a built-in name ({}) or a .wasm path",
                args.plugin,
                crate::guests::BUILTIN_NAMES.join(", ")
            ))
        })?)
    } else {
        return Err(UsageError(format!(
            "plugin: {:?} is neither a built-in ({}) nor a .wasm file",
            args.plugin,
            crate::guests::BUILTIN_NAMES.join(", ")
        )));
    };
    let config_json = read(&args.config, "config")?;
    let scenario =
        sim::scenario::parse(&read(&args.scenario, "scenario")?).map_err(|e| UsageError(format!("scenario: {e}")))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| UsageError(format!("cannot start: {e}")))?;
    let lines = runtime
        .block_on(sim::run(SimulateInput {
            plugin,
            config_json,
            scenario,
            verbose: args.verbose,
            cache_dir: args.cache_dir.or_else(default_cache_dir),
        }))
        .map_err(|e| UsageError(e.to_string()))?;
    // Writes fail only when the reader went away (`| head`): stop quietly then.
    let mut out = std::io::stdout().lock();
    let _ = print_lines(&mut out, &lines, args.format == "table");
    Ok(())
}

fn print_lines(out: &mut impl Write, lines: &[serde_json::Value], table: bool) -> std::io::Result<()> {
    if table {
        writeln!(out, "{:>10}  {:<11}  {:<16}  DETAIL", "AT", "KIND", "TAG")?;
        for line in lines {
            let at = line["at_s"].as_i64().unwrap_or(0);
            let detail = ["subject", "body", "list", "reason", "detail"]
                .iter()
                .find_map(|k| line[*k].as_str().map(str::to_string))
                .unwrap_or_default();
            let coupon = line["coupon"].as_str().map(|c| format!("  [coupon {c}]")).unwrap_or_default();
            writeln!(
                out,
                "{:>10}  {:<11}  {:<16}  {detail}{coupon}",
                format!("{}h{:02}m{:02}s", at / 3600, at % 3600 / 60, at % 60),
                line["kind"].as_str().unwrap_or(""),
                line["tag"].as_str().unwrap_or("")
            )?;
        }
    } else {
        for line in lines {
            writeln!(out, "{line}")?;
        }
    }
    out.flush()
}
