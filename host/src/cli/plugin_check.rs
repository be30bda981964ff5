//! `funnel plugin check FILE.wasm`: the upload validation, offline.

use std::path::PathBuf;

use super::UsageError;
use crate::runtime::{Runtime, RuntimeConfig};

#[derive(clap::Args, Debug)]
pub(super) struct CheckArgs {
    /// The component to check (built for wasm32-wasip2).
    file: PathBuf,
}

pub(super) fn run(args: CheckArgs) -> Result<(), UsageError> {
    let bytes = std::fs::read(&args.file)
        .map_err(|e| UsageError(format!("cannot read {}: {e}; pass the path of a .wasm file", args.file.display())))?;
    let runtime = Runtime::new(RuntimeConfig::default()).map_err(|e| UsageError(e.to_string()))?;
    let plugin = runtime
        .validate_upload(&bytes)
        .map_err(|e| UsageError(format!("{} is not a usable plugin: {e}", args.file.display())))?;
    let info = &plugin.info;
    let capabilities: Vec<&str> = info.capabilities.iter().map(|c| crate::runtime::wit::capability_name(*c)).collect();
    // Finding 2 of issue 17: a forgotten capability must not pass silently.
    let undeclared = plugin.undeclared_imports();
    for (function, capability) in &undeclared {
        eprintln!(
            "funnel: warning: {} imports {function} without declaring the {} capability in describe(): a call to it \
             would be refused (not-declared); if the plugin calls {function}, declare the capability",
            args.file.display(),
            crate::runtime::wit::capability_name(*capability)
        );
    }
    println!(
        "{}",
        serde_json::json!({
            "name": info.name,
            "version": info.version,
            "description": info.description,
            "capabilities": capabilities,
            "undeclared_imports": undeclared.iter().map(|(function, _)| function.as_str()).collect::<Vec<_>>(),
            "sha256": plugin.sha256,
            "bytes": bytes.len(),
        })
    );
    Ok(())
}
