//! `funnel serve`: the server. This landing loads the built-in plugins through the sandbox and
//! reports them; the HTTP API, store and delivery arrive with the engine.

use super::UsageError;
use crate::guests;
use crate::runtime::{Runtime, RuntimeConfig};

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "FUNNEL_LISTEN", default_value = "127.0.0.1:8080")]
    listen: String,
}

pub fn run(args: ServeArgs) -> Result<(), UsageError> {
    let runtime = Runtime::new(RuntimeConfig::default()).map_err(|e| UsageError(e.to_string()))?;
    for name in guests::BUILTIN_NAMES {
        let bytes = guests::builtin(name).ok_or_else(|| UsageError(format!("built-in {name} missing")))?;
        match runtime.load(bytes) {
            Ok(plugin) => println!("built-in plugin {} loaded ({} bytes)", plugin.label(), bytes.len()),
            Err(e) => println!("built-in plugin {name} failed to load: {e}"),
        }
    }
    println!("the HTTP API is not part of this build yet; {} is where it will listen", args.listen);
    Ok(())
}
