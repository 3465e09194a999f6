//! The `--requantization` flag of `outpost convert` and `outpost synth`.

use outpost_models::graph::op::Requantization;

/// How int8 convolutions requantize (the model format's `"requantization"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RequantArg {
    /// In f32, ties to even (XNNPACK's form): a third of the vector instructions.
    F32,
    /// TFLite's Q31 multiplier and rounding shift.
    Tflite,
}

impl From<RequantArg> for Requantization {
    fn from(a: RequantArg) -> Self {
        match a {
            RequantArg::F32 => Requantization::F32,
            RequantArg::Tflite => Requantization::Tflite,
        }
    }
}
