//! Running `funnel simulate`'s engine in-process for plugin tests.

use funnel_host::sim::{self, PluginSource, SimError, SimulateInput};
use funnel_sdk::wire::Scenario;
use serde_json::Value;

/// Simulate a built-in plugin; the scenario and config are JSON values, and so are the lines
/// (as `funnel simulate` prints them).
pub(crate) async fn simulate(plugin: &str, config: &Value, scenario: &Value) -> Result<Vec<Value>, SimError> {
    simulate_source(PluginSource::Builtin(plugin.into()), config, scenario).await
}

/// Simulate any plugin: a built-in name or a component's bytes.
pub(crate) async fn simulate_source(
    plugin: PluginSource,
    config: &Value,
    scenario: &Value,
) -> Result<Vec<Value>, SimError> {
    let scenario = Scenario::parse(&scenario.to_string()).map_err(|e| SimError::Scenario(e.to_string()))?;
    let lines = sim::run(SimulateInput {
        plugin,
        config_json: config.to_string(),
        scenario,
        verbose: false,
        show_body: false,
        cache_dir: Some(crate::support::compile_cache_dir()),
    })
    .await?;
    Ok(lines.iter().map(|line| serde_json::to_value(line).expect("a line is JSON")).collect())
}

/// `(at_s, kind, tag)` of each output line, the compact view most assertions want.
pub(crate) fn timeline(lines: &[Value]) -> Vec<(i64, String, String)> {
    lines
        .iter()
        .map(|l| {
            let tag = l["tag"].as_str().or(l["list"].as_str()).unwrap_or("").to_string();
            (l["at_s"].as_i64().unwrap_or(-1), l["kind"].as_str().unwrap_or("").to_string(), tag)
        })
        .collect()
}

pub(crate) fn t(at_s: i64, kind: &str, tag: &str) -> (i64, String, String) {
    (at_s, kind.to_string(), tag.to_string())
}
