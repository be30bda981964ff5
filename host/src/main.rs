//! The `funnel` command line. Each subcommand lives in `funnel_host::cli`.

fn main() -> std::process::ExitCode {
    funnel_host::cli::main()
}
