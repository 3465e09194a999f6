//! `outpost`: the Outpost command-line tool.

mod cmd;
mod exit;

use clap::{Parser, Subcommand};

/// Outpost: an int8 inference runtime for edge appliances.
///
/// Run `outpost <COMMAND> --help` for the details of each command.
#[derive(Debug, Parser)]
#[command(name = "outpost", version, about, long_about = None, propagate_version = true)]
struct Cli {
    /// Log verbosity (also settable with RUST_LOG): error, warn, info, debug, trace.
    #[arg(long, global = true, default_value = "warn")]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show what a model file contains: version, provenance, inputs, outputs, ops, MACs, memory.
    Inspect(cmd::inspect::Args),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    env_logger::Builder::new().parse_filters(&cli.log).parse_default_env().init();
    let result = match cli.command {
        Command::Inspect(args) => cmd::inspect::run(args),
    };
    exit::finish(result)
}
