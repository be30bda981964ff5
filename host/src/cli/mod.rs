//! The `funnel` command line: argument parsing and one module per subcommand. Errors a user
//! can fix print one line on stderr and exit with status 2; a plugin that failed under
//! `funnel simulate` exits with 3.
//!
//! ## Layout
//! - `serve`: the server.
//! - `simulate`: one lead on a virtual clock.
//! - `plugin_new`, `plugin_build`, `plugin_check`, `plugin_push`: a plugin's life, from a
//!   scaffold to a server.

mod plugin_build;
mod plugin_check;
mod plugin_new;
mod plugin_push;
mod serve;
mod simulate;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// funnel: abandoned-checkout recovery with sandboxed WebAssembly strategies.
#[derive(Parser, Debug)]
#[command(name = "funnel", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once at start-up: the size difference between variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server.
    Serve(serve::ServeArgs),
    /// Show what a plugin would do to one lead, on a virtual clock; nothing is sent.
    Simulate(simulate::SimulateArgs),
    /// Work with plugin components.
    #[command(subcommand)]
    Plugin(PluginCommand),
}

#[derive(Subcommand, Debug)]
enum PluginCommand {
    /// Create a plugin project (Rust, Python or JavaScript) that builds as it is and passes its own test.
    New(plugin_new::NewArgs),
    /// Build the plugin project here (or --dir) into a component and print its path.
    Build(plugin_build::BuildArgs),
    /// Validate a component offline, as an upload would, and print what it declares.
    Check(plugin_check::CheckArgs),
    /// Upload a component to a funnel server.
    Push(plugin_push::PushArgs),
}

/// A failure the user can act on: printed as one line, exit status 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// How a subcommand failed, and so its exit status.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad input or a failure the user can act on: exit 2.
    #[error(transparent)]
    Usage(#[from] UsageError),
    /// The plugin failed while `simulate` ran it: exit 3 (`funnel_sdk::wire::EXIT_PLUGIN_FAILED`).
    #[error("{0}")]
    PluginFailed(String),
}

/// Parse arguments, run the subcommand, map errors to exit codes.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args).map_err(CliError::from),
        Command::Simulate(args) => simulate::run(args),
        Command::Plugin(PluginCommand::New(args)) => plugin_new::run(args).map_err(CliError::from),
        Command::Plugin(PluginCommand::Build(args)) => plugin_build::run(args).map_err(CliError::from),
        Command::Plugin(PluginCommand::Check(args)) => plugin_check::run(args).map_err(CliError::from),
        Command::Plugin(PluginCommand::Push(args)) => plugin_push::run(args).map_err(CliError::from),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("funnel: {e}");
            let status = match e {
                CliError::Usage(_) => 2,
                CliError::PluginFailed(_) => funnel_sdk::wire::EXIT_PLUGIN_FAILED,
            };
            ExitCode::from(u8::try_from(status).unwrap_or(1))
        }
    }
}
