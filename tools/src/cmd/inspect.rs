//! `outpost inspect`.

use crate::exit::CmdResult;

/// Arguments of `outpost inspect`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The model file (.safetensors in Outpost format v1).
    pub model: std::path::PathBuf,
}

/// Run the command.
pub fn run(_args: Args) -> CmdResult {
    Ok(())
}
