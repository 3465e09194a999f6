//! The f32 adds (plain, and with a channel-padded second operand, fused clamp) for the AVX2
//! tier: the scalar reference's loops compiled with AVX2 enabled, so that they run 8 lanes a
//! vector instead of baseline x86-64's 4. The same scalar operations on each element (an
//! IEEE add, then `f32::clamp`), so bit for bit the reference.

use crate::elementwise::ChannelPadded;
use crate::generic;

/// F32 add with a clamp range, AVX2 tier.
pub(crate) fn add_f32(a: &[f32], b: &[f32], output: &mut [f32], act: (f32, f32)) {
    super::assert_supported();
    // SAFETY: the CPU runs the AVX2 tier (asserted).
    unsafe { add_body(a, b, output, act) }
}

/// F32 add with a clamp range, the second operand channel-padded, AVX2 tier.
pub(crate) fn add_f32_padded(
    pad: &ChannelPadded<f32>,
    a: &[f32],
    b: &[f32],
    output: &mut [f32],
    act: (f32, f32),
) {
    super::assert_supported();
    // SAFETY: the CPU runs the AVX2 tier (asserted).
    unsafe { padded_body(pad, a, b, output, act) }
}

/// # Safety
/// The CPU supports AVX2.
#[target_feature(enable = "avx2")]
unsafe fn add_body(a: &[f32], b: &[f32], output: &mut [f32], act: (f32, f32)) {
    generic::elementwise::add_f32(a, b, output, act)
}

/// # Safety
/// The CPU supports AVX2.
#[target_feature(enable = "avx2")]
unsafe fn padded_body(
    pad: &ChannelPadded<f32>,
    a: &[f32],
    b: &[f32],
    output: &mut [f32],
    act: (f32, f32),
) {
    generic::elementwise::add_f32_padded(pad, a, b, output, act)
}
