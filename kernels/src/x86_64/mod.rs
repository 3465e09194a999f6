//! x86-64 SIMD tiers. Each tier module holds small `#[target_feature]` kernels behind safe
//! wrappers; a wrapper asserts the CPU supports its tier before entering `unsafe` code.

pub(crate) mod avx2;
pub(crate) mod avx512vnni;
