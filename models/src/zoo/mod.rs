//! Built-in architectures with synthetic weights, for speed work and examples.

pub mod mobilenet_v2;
mod rng;

pub use mobilenet_v2::{MobileNetV2, synth_mobilenet_v2};
