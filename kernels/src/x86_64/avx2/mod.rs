//! AVX2 tier: int8 dot products by widening to i16 and `vpmaddwd` (exact: `vpmaddubsw` would
//! saturate and break bit-exactness with the reference).

pub(crate) mod add;
pub(crate) mod add16;
pub(crate) mod add_f32;
pub(crate) mod conv_f32;
pub(crate) mod depthwise;
pub(crate) mod float;
pub(crate) mod gemm;
pub(crate) mod im2col;
pub(crate) mod mean;
pub(crate) mod pool;
pub(crate) mod pool_f32;
pub(crate) mod probe;
pub(crate) mod requant;
pub(crate) mod resize;
pub(crate) mod store;

/// Panics unless this CPU runs the AVX2 tier; every safe wrapper calls it first.
#[inline]
pub(crate) fn assert_supported() {
    assert!(
        crate::Tier::Avx2.is_supported(),
        "AVX2 kernels called on a CPU without AVX2/FMA"
    );
}
