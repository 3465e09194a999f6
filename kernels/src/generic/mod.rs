//! Portable scalar kernels: the reference every SIMD tier is tested bit-exact against, and
//! the only implementation of ops where SIMD brings little (layout, pooling, lookup tables,
//! softmax, float ops).

pub(crate) mod conv;
pub(crate) mod depthwise;
pub(crate) mod elementwise;
pub(crate) mod layout;
pub(crate) mod lut;
pub(crate) mod pool;
pub(crate) mod quantize;
pub(crate) mod resize;
pub(crate) mod softmax;
