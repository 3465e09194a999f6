//! AVX-512 VNNI tier: int8 dot products through `vpdpbusd` (u8 × s8, activations flipped to u8
//! by xor 0x80 with −128·Σw folded into the bias at pack time).

pub(crate) mod add;
pub(crate) mod add16;
pub(crate) mod depthwise;
pub(crate) mod depthwise_group;
pub(crate) mod float;
mod float_lanes;
pub(crate) mod gemm;
pub(crate) mod gemm_pairs;
pub(crate) mod im2col;
pub(crate) mod mean;
pub(crate) mod pad;
pub(crate) mod pool;
pub(crate) mod probe;
pub(crate) mod requant;
pub(crate) mod resize;

/// Panics unless this CPU runs the AVX-512 VNNI tier; every safe wrapper calls it first.
#[inline]
pub(crate) fn assert_supported() {
    assert!(
        crate::Tier::Avx512Vnni.is_supported(),
        "AVX-512 VNNI kernels called on a CPU without AVX-512 VNNI"
    );
}
