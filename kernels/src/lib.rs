//! Outpost compute kernels: int8 (TFLite quantization) and f32 operators on NHWC slices.
//!
//! # Model
//! * Kernels never allocate: outputs and scratch are caller-given slices. Everything derived
//!   from weights (packed layouts, per-channel multipliers, zero-point-folded biases) is built
//!   once at plan time by a `Packed*::new` constructor that returns an owned struct, which
//!   also reports the scratch it needs (`scratch_bytes`).
//! * Arithmetic is TFLite's: int8 asymmetric activations (per-tensor scale/zero point), int8
//!   symmetric per-output-channel weights, int32 bias, requantization with
//!   [`quantize_multiplier`] / [`multiply_by_quantized_multiplier`], then the output zero point
//!   and the fused-activation clamp ([`Activation::range_i8`]).
//! * Three [`Tier`]s: `generic` (scalar reference), `avx2`, `avx512vnni`. Every int8 kernel of
//!   every tier is bit-exact with `generic` (property-tested). One [`KernelTable`] is chosen at
//!   start-up ([`KernelTable::from_env`]: the best tier, or the one named by
//!   `OUTPOST_KERNELS=generic|avx2|avx512vnni`, an error if unknown or unsupported);
//!   [`KernelTable::for_tier`] builds any supported tier explicitly.
//!
//! # Entry points
//! | prepare (plan time) | run (per frame, on a [`KernelTable`]) |
//! |---|---|
//! | [`PackedConv::new`]`(tier, &Conv2dParams, OHWI weights, bias, in_scale, w_scales, out_scale)` | `conv2d_i8(&packed, in, out, scratch)` |
//! | [`PackedDepthwise::new`]`(tier, &DepthwiseParams, [1,kh,kw,C·m] weights, …)` | `depthwise_i8` |
//! | [`PackedFc::new`]`(tier, &FcParams, [out,in] weights, …)` | `fully_connected_i8` |
//! | [`AddQuant::new`], [`MulQuant::new`] | `add_i8`, `mul_i8` |
//! | [`Lut::logistic`], [`Lut::tanh`], [`Lut::hardswish`], [`Lut::new`] | `lut_i8` |
//! | [`PoolParams`] | `max_pool_i8`, `avg_pool_i8`, `global_mean_i8` (+ f32) |
//! | — | `softmax_i8`, `quantize`, `dequantize`, `requantize_i8`, `concat`, `pad`, `transpose`, `resize_nearest`, `resize_bilinear_{i8,f32}` |
//! | [`PackedConvF32`], [`PackedDepthwiseF32`], [`PackedFcF32`] (f16 weights widened by `from_f16`) | `conv2d_f32`, `depthwise_f32`, `fully_connected_f32`, `add_f32`, `mul_f32`, `map_f32`, `softmax_f32` |
//! | [`ChannelPadded`]`<f32>` (a channel pad folded into an add) | `add_f32_padded` |
//!
//! Convolutions, depthwise convolutions and pools cut into row slices for threads:
//! `PackedConv::rows`, `PackedDepthwise::rows`, `PackedConvF32::rows`,
//! `PackedDepthwiseF32::rows`, `PoolParams::rows` (each bit-exact with the whole).
//!
//! Reshape needs no kernel. Which tier implements what is tabled in the [`table`] module docs.
//! Also: [`cpu_features`] (this CPU as an `outpost_hal::CpuFeatures`), [`Tier::best_for`],
//! [`probe_int8_peak`] and [`probe_avx2_int8_peak`] (time the core's `vpdpbusd` and
//! `vpmaddwd` peaks, for benchmarks).
//!
//! # Contracts and limits
//! * Slice lengths and shapes are checked with `assert!` on every call (a panic names the op
//!   and the mismatch); a packed operand must be run by a table of the tier it was packed for.
//! * Weights are OHWI for convolutions, `[1, k_h, k_w, C·m]` for depthwise, `[out, in]` for
//!   fully connected (TFLite conventions); bias is int32, one per output channel or `None`.
//! * Bit-exact with TFLite's reference kernels: conv, depthwise, fully connected, add (left
//!   shift 20), mul, max/avg pool, quantize, dequantize, concat/pad/transpose, nearest resize.
//!   Not bit-exact (documented per function): int8 softmax (f32 inside), int8 bilinear resize
//!   (f32 weights), LUT ops (TFLite's `LUTPopulate` form, not the fixed-point logistic/tanh
//!   reference), global mean (one multiplier `in_scale / (out_scale · pixels)`).
//! * Add and mul take equal shapes (no broadcasting); int8 concat/pad/resize keep the input's
//!   quantization (the planner inserts a requantize where TFLite would rescale).
//! * The SIMD depthwise kernels take depth multiplier 1 and at most [`MAX_SIMD_TAPS`] taps;
//!   other depthwise shapes run the scalar reference on every tier.
//!
//! # Layout of the source
//! `quant` (requantization), `params` (shapes), `conv`/`depthwise`/`fc`/`gemm`/`elementwise`/
//! `lut`/`float` (plan-time preparation), `generic/` (scalar reference per op family),
//! `x86_64/{avx2,avx512vnni}/` (SIMD kernels; an `aarch64/` tier slots in beside them), `table`.
//!
//! # Example
//! ```
//! use outpost_kernels::{Conv2dParams, KernelTable, PackedConv, Tier};
//! let table = KernelTable::for_tier(Tier::best()).unwrap();
//! let mut p = Conv2dParams::simple(4, 4, 3, 8, 1, 1); // 4×4×3 → 4×4×8, 1×1
//! p.input_zp = -5;
//! let weights = vec![1i8; p.weight_len()];
//! let conv = PackedConv::new(table.tier(), &p, &weights, None, 0.02, &[0.01], 0.05);
//! let input = vec![10i8; p.input_len()];
//! let mut output = vec![0i8; p.output_len()];
//! let mut scratch = vec![0u8; conv.scratch_bytes()];
//! table.conv2d_i8(&conv, &input, &mut output, &mut scratch);
//! // acc = 3·(10 + 5)·1 = 45; 45 · 0.02·0.01/0.05 = 0.18 → 0.
//! assert!(output.iter().all(|&o| o == 0));
//! ```

mod conv;
mod conv_add;
mod conv_add_f32;
mod depthwise;
mod elementwise;
mod fc;
mod float;
mod float_window;
mod gemm;
mod generic;
mod lines;
mod lut;
mod params;
mod quant;
pub mod table;
mod tier;
#[cfg(target_arch = "x86_64")]
mod x86_64;

pub use conv::{IM2COL_ROWS, PackedConv};
pub use conv_add::{FUSED_ADD_MIN_CHANNELS, Residual};
pub use conv_add_f32::ResidualF32;
pub use depthwise::{MAX_SIMD_TAPS, PackedDepthwise};
pub use elementwise::{ADD_LEFT_SHIFT, Add16Quant, AddQuant, ChannelPadded, MulQuant};
pub use fc::PackedFc;
pub use float::{PackedConvF32, PackedDepthwiseF32, PackedFcF32, f16_to_f32, widen_f16};
pub use lines::Lines;
pub use lut::{Lut, hardswish, logistic};
pub use params::{
    Activation, Conv2dParams, DepthwiseParams, FcParams, MAX_POOL_WINDOW, PoolParams,
    ResizeOptions, conv_output_size,
};
pub use quant::{
    Requant, conv_multiplier, dequantize_i8, multiply_by_quantized_multiplier, quantize_f32,
    quantize_multiplier, requantize_f32, rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
};
pub use table::KernelTable;

/// Runs a fixed amount of register-only `vpdpbusd zmm` work and returns the int8 operations
/// it did (1 MAC = 2 ops), or `None` without AVX-512 VNNI. Time the call to measure the int8
/// peak of the core as it is now (a busy SMT sibling halves it); benches report kernel
/// throughput against it.
pub fn probe_int8_peak(iters: usize) -> Option<u64> {
    #[cfg(target_arch = "x86_64")]
    if Tier::Avx512Vnni.is_supported() {
        return Some(x86_64::avx512vnni::probe::peak(iters));
    }
    let _ = iters;
    None
}

/// As [`probe_int8_peak`] for the AVX2 tier's arithmetic: register-only `vpmaddwd ymm` (16
/// i16 multiply-accumulates each) and `vpaddd`, as its GEMM runs them; `None` without AVX2.
/// On a CPU without AVX-512 VNNI this is the int8 peak the best tier can reach.
pub fn probe_avx2_int8_peak(iters: usize) -> Option<u64> {
    #[cfg(target_arch = "x86_64")]
    if Tier::Avx2.is_supported() {
        return Some(x86_64::avx2::probe::peak(iters));
    }
    let _ = iters;
    None
}
pub use tier::{TIER_ENV_VAR, Tier, TierError, cpu_features};

/// `n` deterministic pseudo-random int8 values (xorshift; each seed its own sequence): the
/// operands of the kernel benches and of fixed-shape tests, the same on every machine.
pub fn pseudo_random_i8(n: usize, seed: u32) -> Vec<i8> {
    let mut s = seed.wrapping_mul(2_654_435_761) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s >> 24) as u8 as i8
        })
        .collect()
}
