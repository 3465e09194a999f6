//! The AVX2 tier's f32 convolution and depthwise kernels: [`crate::float_blocked`]'s portable
//! bodies (chunks of up to 16 channels) compiled with AVX2 enabled (no FMA, which would change
//! the rounding), behind safe wrappers that check the CPU first. The AVX-512 tier has explicit
//! kernels (`avx512vnni::float`).

use crate::float::{PackedConvF32, PackedDepthwiseF32};
use crate::float_blocked;

/// # Safety
/// The CPU supports AVX2.
#[target_feature(enable = "avx2")]
unsafe fn conv2d_body(p: &PackedConvF32, input: &[f32], output: &mut [f32]) {
    float_blocked::conv2d::<16>(p, input, output)
}

/// # Safety
/// The CPU supports AVX2.
#[target_feature(enable = "avx2")]
unsafe fn depthwise_body(p: &PackedDepthwiseF32, input: &[f32], output: &mut [f32]) {
    float_blocked::depthwise::<16>(p, input, output)
}

/// F32 convolution, AVX2 tier.
pub(crate) fn conv2d(p: &PackedConvF32, input: &[f32], output: &mut [f32]) {
    super::assert_supported();
    // SAFETY: the CPU runs the AVX2 tier (asserted).
    unsafe { conv2d_body(p, input, output) }
}

/// F32 depthwise convolution, AVX2 tier.
pub(crate) fn depthwise(p: &PackedDepthwiseF32, input: &[f32], output: &mut [f32]) {
    super::assert_supported();
    // SAFETY: the CPU runs the AVX2 tier (asserted).
    unsafe { depthwise_body(p, input, output) }
}
