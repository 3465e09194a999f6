//! `outpost synth`: write a real architecture with synthetic weights.

use std::path::PathBuf;

use outpost_models::zoo::{MobileNetV2, synth_mobilenet_v2};

use super::requant_arg::RequantArg;
use crate::exit::{CmdResult, Failure};
use crate::fmt::bytes;

/// Architectures `synth` can write.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Arch {
    /// MobileNetV2 (inverted residuals, depthwise 3×3, ReLU6), ImageNet classifier.
    #[value(name = "mobilenet_v2")]
    MobilenetV2,
}

/// Arguments of `outpost synth`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "The weights are random (deterministic): use the file to measure speed and memory, not accuracy.\n\nExample:\n  outpost synth mobilenet_v2 --int8 -o mnv2.safetensors && outpost bench --model mnv2.safetensors"
)]
pub struct Args {
    /// The architecture.
    pub arch: Arch,
    /// Width multiplier (0.35, 0.5, 0.75, 1.0, 1.3, 1.4 are the published ones).
    #[arg(long, default_value_t = 1.0)]
    pub width: f32,
    /// Input height and width in pixels.
    #[arg(long, default_value_t = 224)]
    pub size: usize,
    /// Quantize to int8 (TFLite scheme); without it the model is float32.
    #[arg(long)]
    pub int8: bool,
    /// Number of output classes.
    #[arg(long, default_value_t = 1000)]
    pub classes: usize,
    /// How the int8 convolutions requantize: `f32` (what Outpost's quantizer writes) or
    /// `tflite` (TFLite's fixed point form, as imported int8 models have).
    #[arg(long, value_enum, default_value = "f32")]
    pub requantization: RequantArg,
    /// Where to write the model.
    #[arg(short, long)]
    pub output: PathBuf,
}

/// Run the command.
pub fn run(args: Args) -> CmdResult {
    if !(args.width.is_finite() && (0.1..=4.0).contains(&args.width)) {
        return Err(Failure::input(format!(
            "--width {} is out of range: use 0.1 to 4.0",
            args.width
        )));
    }
    if !(32..=1024).contains(&args.size) {
        return Err(Failure::input(format!(
            "--size {} is out of range: use 32 to 1024 pixels",
            args.size
        )));
    }
    if args.classes == 0 || args.classes > 100_000 {
        return Err(Failure::input("--classes must be 1 to 100000"));
    }
    let cfg = MobileNetV2 {
        width: args.width,
        size: args.size,
        int8: args.int8,
        classes: args.classes,
        requantization: args.requantization.into(),
    };
    let builder = match args.arch {
        Arch::MobilenetV2 => synth_mobilenet_v2(&cfg),
    }
    .map_err(|e| Failure::other(format!("cannot build the model: {e}")))?;
    builder.write(&args.output).map_err(|e| {
        Failure::input(format!(
            "{e} (check that the directory exists and is writable)"
        ))
    })?;
    let size = std::fs::metadata(&args.output)
        .map(|m| m.len())
        .unwrap_or(0);
    println!("wrote {} ({})", args.output.display(), bytes(size));
    Ok(())
}
