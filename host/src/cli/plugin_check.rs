//! `funnel plugin check FILE.wasm`: the upload validation, offline.

use std::path::PathBuf;

use super::UsageError;
use crate::runtime::{Runtime, RuntimeConfig};

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// The component to check (built for wasm32-wasip2).
    file: PathBuf,
}

pub fn run(args: CheckArgs) -> Result<(), UsageError> {
    let bytes = std::fs::read(&args.file)
        .map_err(|e| UsageError(format!("cannot read {}: {e}; pass the path of a .wasm file", args.file.display())))?;
    let runtime = Runtime::new(RuntimeConfig::default()).map_err(|e| UsageError(e.to_string()))?;
    let plugin = runtime
        .validate_upload(&bytes)
        .map_err(|e| UsageError(format!("{} is not a usable plugin: {e}", args.file.display())))?;
    let info = &plugin.info;
    let capabilities: Vec<&str> = info.capabilities.iter().map(|c| crate::runtime::wit::capability_name(*c)).collect();
    println!(
        "{}",
        serde_json::json!({
            "name": info.name,
            "version": info.version,
            "description": info.description,
            "capabilities": capabilities,
            "sha256": plugin.sha256,
            "bytes": bytes.len(),
        })
    );
    Ok(())
}
