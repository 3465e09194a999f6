//! The kernel table: one set of entry points chosen once at start-up.
//!
//! | op | generic | avx2 | avx512vnni |
//! |---|---|---|---|
//! | conv2d int8 (incl. pointwise, groups) | reference loop | im2col + `vpmaddwd` GEMM, tiles of 6 rows × 16 channels | im2col + `vpdpbusd` GEMM; few input channels (kernel rows ≤ 64 bytes): GEMM straight from a padded input copy; 17–24 output channels: 16-row tiles pairing rows in the last block |
//! | conv2d int8 then int16 add (residual; a method, not an entry) | conv, then add in place | conv, then add in place | pointwise with > 32 output channels: the add in the GEMM epilogue; else conv, then add in place |
//! | fully connected int8 | reference loop | GEMM | GEMM |
//! | depthwise int8 | reference loop | `vpmaddwd` (multiplier 1, ≤ 64 taps; else generic), tap addresses moving on by one stride per pixel inside the row | `vpdpbusd` (same limits; 3×3 with dilation 1 and horizontal stride ≤ 2 slides interleaved input columns along the row, a last chunk of ≤ 32 / ≤ 16 / ≤ 8 channels computing 2 / 4 / 8 pixels per vector) |
//! | add int8 (TFLite arithmetic) | reference | 8 lanes | 16 lanes |
//! | add int8 (16-bit multipliers) | reference | `vpmaddwd`, 32 lanes | `vpdpwssd`, 32 lanes |
//! | the same, second operand channel-padded (a pad fused into the add) | reference | runs of pixels padded on the stack, then the flat add | `vpdpwssd`, per pixel, missing channels through the load mask |
//! | max pool int8 | reference | `vpmaxsb`, 32 channels | `vpmaxsb`, 64 channels, masked |
//! | pad int8 | reference | → generic | masked 64-byte stores per pixel |
//! | global mean int8 | reference | sums 32 channels at a time (`vpmovsxbd`), reference requantization | 64 channels at a time (masked `vpmovsxbd`), 16-lane requantization |
//! | conv2d f32 (groups 1; also fully connected) and depthwise f32 (multiplier 1) | reference loop | convolution: explicit (`conv_f32`), 6 (4, 1 at the edges) pixels × 16 or 8 channels, the accumulators in registers, a kernel row's taps as one run where adjacent, one fused multiply-add per tap; depthwise: explicit, 4 pixels × 16 or 8 channels with the accumulators in registers, the last chunk through lane masks, fused multiply-adds | 8 (4, 1 at the edges) pixels × 32, 24, 16 or 8 channels (zmm and ymm lanes, `float_lanes`), input values broadcast in the multiplies' memory operands, a kernel row's taps as one run where adjacent |
//! | bilinear resize int8 and f32 (the f32 blend of four pixels; int8 rounded half away from zero) | reference | 8 channels per vector, the last `c mod 8` by the reference | 16 channels per vector, masked |
//! | add f32 (plain and channel-padded, fused clamp) | reference | the reference's loops compiled for AVX2 (8 lanes) | the AVX2 entries |
//! | everything else (mul, average pool, LUT ops, softmax, concat, pad (f32), transpose, slice, nearest resize (copies), quantize, requantize, the other f32 ops) | reference | → generic | → generic |
//!
//! The last row's entries are the generic functions on every tier: they are memory-bound or
//! rare in the target models, so SIMD brings little; a tier can take one over later by turning
//! the method into a table entry. Every SIMD int8 entry is tested bit-exact against generic,
//! and so are the f32 convolution and resize entries: they sum in the reference's order
//! (`kernels/tests/float_ops.rs`, `kernels/tests/other_ops.rs`). The AVX2 and AVX-512 tiers'
//! f32 convolutions fuse each tap's multiply-add (`Tier::fuses_f32_multiply_add`) and equal
//! the fused scalar reference (`KernelTable::reference_for`) bit for bit, every tier within
//! the stated error budget of an f64 reference.

use core::ops::Range;

use crate::conv::PackedConv;
use crate::conv_add::Residual;
use crate::conv_add_f32::ResidualF32;
use crate::depthwise::PackedDepthwise;
use crate::elementwise::{Add16Quant, AddQuant, ChannelPadded, MulQuant};
use crate::fc::PackedFc;
use crate::float::{PackedConvF32, PackedDepthwiseF32, PackedFcF32};
use crate::generic;
use crate::lut::Lut;
use crate::params::{PoolParams, ResizeOptions};
use crate::quant::Requant;
use crate::tier::{Tier, TierError};

type ConvFn = fn(&PackedConv, &[i8], &mut [i8], &mut [u8]);
type DepthwiseFn = fn(&PackedDepthwise, &[i8], &mut [i8], &mut [u8]);
type AddFn = fn(&AddQuant, &[i8], &[i8], &mut [i8]);
type Add16Fn = fn(&Add16Quant, &[i8], &[i8], &mut [i8]);
type Add16PaddedFn = fn(&Add16Quant, &ChannelPadded, &[i8], &[i8], &mut [i8]);
type PoolFn = fn(&PoolParams, &[i8], &mut [i8]);
type PoolF32Fn = fn(&PoolParams, &[f32], &mut [f32]);
type AddF32Fn = fn(&[f32], &[f32], &mut [f32], (f32, f32));
type AddF32PaddedFn = fn(&ChannelPadded<f32>, &[f32], &[f32], &mut [f32], (f32, f32));
type PadFn = fn(&[i8], [usize; 4], [(usize, usize); 4], i8, &mut [i8]);
type ConvF32Fn = fn(&PackedConvF32, &[f32], &mut [f32]);
type ConvAddF32Fn = fn(&PackedConvF32, &[f32], &ResidualF32<'_>, &mut [f32]);
type DepthwiseF32Fn = fn(&PackedDepthwiseF32, &[f32], &mut [f32]);
type ResizeFn<T> = fn(&[T], [usize; 4], usize, usize, ResizeOptions, Range<usize>, &mut [T]);

/// Kernel entry points for one [`Tier`].
///
/// Packed operands ([`PackedConv`], [`PackedDepthwise`], [`PackedFc`]) are built for a tier
/// and must be run by a table of the same tier (checked, panics otherwise).
#[derive(Debug, Clone, Copy)]
pub struct KernelTable {
    tier: Tier,
    conv2d_i8: ConvFn,
    depthwise_i8: DepthwiseFn,
    add_i8: AddFn,
    add16_i8: Add16Fn,
    add16_i8_padded: Add16PaddedFn,
    max_pool_i8: PoolFn,
    max_pool_f32: PoolF32Fn,
    add_f32: AddF32Fn,
    add_f32_padded: AddF32PaddedFn,
    pad_i8: PadFn,
    mean_chunk: generic::pool::MeanChunk,
    conv2d_f32: ConvF32Fn,
    conv2d_add_f32: ConvAddF32Fn,
    depthwise_f32: DepthwiseF32Fn,
    resize_bilinear_i8: ResizeFn<i8>,
    resize_bilinear_f32: ResizeFn<f32>,
}

#[cfg(target_arch = "x86_64")]
fn conv_gemm(p: &PackedConv, input: &[i8], output: &mut [i8], scratch: &mut [u8]) {
    p.run_gemm(input, output, scratch);
}

#[cfg(target_arch = "x86_64")]
fn depthwise_avx2(p: &PackedDepthwise, input: &[i8], output: &mut [i8], scratch: &mut [u8]) {
    if p.simd {
        crate::x86_64::avx2::depthwise::run(p, input, output, scratch)
    } else {
        generic::depthwise::depthwise_i8(p, input, output, scratch)
    }
}

#[cfg(target_arch = "x86_64")]
fn depthwise_vnni(p: &PackedDepthwise, input: &[i8], output: &mut [i8], scratch: &mut [u8]) {
    if p.simd {
        crate::x86_64::avx512vnni::depthwise::run(p, input, output, scratch)
    } else {
        generic::depthwise::depthwise_i8(p, input, output, scratch)
    }
}

impl KernelTable {
    /// The table of `tier`, or an error if this CPU cannot run it.
    pub fn for_tier(tier: Tier) -> Result<KernelTable, TierError> {
        if !tier.is_supported() {
            return Err(TierError::Unsupported(tier));
        }
        Ok(match tier {
            Tier::Generic => KernelTable {
                tier,
                conv2d_i8: generic::conv::conv2d_i8,
                depthwise_i8: generic::depthwise::depthwise_i8,
                add_i8: generic::elementwise::add_i8,
                add16_i8: generic::elementwise::add16_i8,
                add16_i8_padded: generic::elementwise::add16_i8_padded,
                max_pool_i8: generic::pool::max_pool_i8,
                max_pool_f32: generic::pool::max_pool_f32,
                add_f32: generic::elementwise::add_f32,
                add_f32_padded: generic::elementwise::add_f32_padded,
                pad_i8: generic::layout::pad::<i8>,
                mean_chunk: generic::pool::mean_chunk,
                conv2d_f32: generic::conv::conv2d_f32,
                conv2d_add_f32: crate::conv_add_f32::conv2d_add_f32,
                depthwise_f32: generic::depthwise::depthwise_f32,
                resize_bilinear_i8: generic::resize::resize_bilinear_i8,
                resize_bilinear_f32: generic::resize::resize_bilinear_f32,
            },
            #[cfg(target_arch = "x86_64")]
            Tier::Avx2 => KernelTable {
                tier,
                conv2d_i8: conv_gemm,
                depthwise_i8: depthwise_avx2,
                add_i8: crate::x86_64::avx2::add::add,
                add16_i8: crate::x86_64::avx2::add16::add16,
                add16_i8_padded: crate::x86_64::avx2::add16::add16_padded,
                max_pool_i8: crate::x86_64::avx2::pool::max_pool_i8,
                max_pool_f32: crate::x86_64::avx2::pool_f32::max_pool_f32,
                add_f32: crate::x86_64::avx2::add_f32::add_f32,
                add_f32_padded: crate::x86_64::avx2::add_f32::add_f32_padded,
                pad_i8: generic::layout::pad::<i8>,
                mean_chunk: crate::x86_64::avx2::mean::mean_chunk,
                conv2d_f32: crate::x86_64::avx2::conv_f32::conv2d,
                conv2d_add_f32: crate::x86_64::avx2::conv_f32::conv2d_add,
                depthwise_f32: crate::x86_64::avx2::float::depthwise,
                resize_bilinear_i8: crate::x86_64::avx2::resize::resize_bilinear_i8,
                resize_bilinear_f32: crate::x86_64::avx2::resize::resize_bilinear_f32,
            },
            #[cfg(target_arch = "x86_64")]
            Tier::Avx512Vnni => KernelTable {
                tier,
                conv2d_i8: conv_gemm,
                depthwise_i8: depthwise_vnni,
                add_i8: crate::x86_64::avx512vnni::add::add,
                add16_i8: crate::x86_64::avx512vnni::add16::add16,
                add16_i8_padded: crate::x86_64::avx512vnni::add16::add16_padded,
                max_pool_i8: crate::x86_64::avx512vnni::pool::max_pool_i8,
                // The AVX2 kernel (every AVX-512 VNNI CPU runs AVX2); no 16-lane form yet.
                max_pool_f32: crate::x86_64::avx2::pool_f32::max_pool_f32,
                // The AVX2 loops, as for the pool.
                add_f32: crate::x86_64::avx2::add_f32::add_f32,
                add_f32_padded: crate::x86_64::avx2::add_f32::add_f32_padded,
                pad_i8: crate::x86_64::avx512vnni::pad::pad_i8,
                mean_chunk: crate::x86_64::avx512vnni::mean::mean_chunk,
                conv2d_f32: crate::x86_64::avx512vnni::float::conv2d,
                conv2d_add_f32: crate::x86_64::avx512vnni::float::conv2d_add,
                depthwise_f32: crate::x86_64::avx512vnni::float::depthwise,
                resize_bilinear_i8: crate::x86_64::avx512vnni::resize::resize_bilinear_i8,
                resize_bilinear_f32: crate::x86_64::avx512vnni::resize::resize_bilinear_f32,
            },
            #[cfg(not(target_arch = "x86_64"))]
            _ => return Err(TierError::Unsupported(tier)),
        })
    }

    /// The scalar table whose results a tier's equal bit for bit: the generic tier's, with
    /// the f32 convolution and depthwise entries fused (`f32::mul_add` per tap, in the same
    /// order) where the tier fuses them ([`Tier::fuses_f32_multiply_add`]). Its `tier()` is
    /// [`Tier::Generic`].
    pub fn reference_for(tier: Tier) -> KernelTable {
        let mut t = KernelTable::for_tier(Tier::Generic).expect("the generic tier runs anywhere");
        if tier.fuses_f32_multiply_add() {
            t.conv2d_f32 = generic::conv::conv2d_f32_fused;
            t.conv2d_add_f32 = crate::conv_add_f32::conv2d_add_f32_fused;
            t.depthwise_f32 = generic::depthwise::depthwise_f32_fused;
        }
        t
    }

    /// The best table for this CPU, or the one forced by `OUTPOST_KERNELS`.
    pub fn from_env() -> Result<KernelTable, TierError> {
        let t = Tier::from_env()?;
        log::debug!("kernel tier: {t}");
        KernelTable::for_tier(t)
    }

    /// The tier of this table.
    pub fn tier(&self) -> Tier {
        self.tier
    }

    fn check_tier(&self, packed: Tier, op: &str) {
        assert_eq!(
            packed, self.tier,
            "{op}: operand packed for tier {packed} run on a {} table",
            self.tier
        );
    }

    // ---- int8, per-tier ----

    /// Int8 convolution (any kernel, stride, dilation, padding, groups; pointwise as GEMM).
    /// `input` and `output` are NHWC; `scratch` holds [`PackedConv::scratch_bytes`].
    pub fn conv2d_i8(&self, p: &PackedConv, input: &[i8], output: &mut [i8], scratch: &mut [u8]) {
        self.check_tier(p.tier, "conv2d");
        (self.conv2d_i8)(p, input, output, scratch)
    }

    /// Int8 convolution, its output then added to a skip operand ([`Residual`]):
    /// `output = conv(input) ⊕ skip`, bit-exact with [`KernelTable::conv2d_i8`] then
    /// [`KernelTable::add16_i8_padded`]. In one pass where [`PackedConv::fuses_add`];
    /// otherwise the convolution, then the add in place (scalar).
    pub fn conv2d_add16_i8(
        &self,
        p: &PackedConv,
        input: &[i8],
        residual: &Residual<'_>,
        output: &mut [i8],
        scratch: &mut [u8],
    ) {
        self.check_tier(p.tier, "conv2d");
        p.check_residual(residual, output);
        #[cfg(target_arch = "x86_64")]
        if p.fuses_add() {
            crate::conv_add::fused(p, input, residual, output, scratch);
            return;
        }
        (self.conv2d_i8)(p, input, output, scratch);
        let r = residual;
        generic::elementwise::add16_i8_padded_in_place(&r.add, &r.pad, output, r.skip);
    }

    /// Int8 depthwise convolution; `scratch` holds [`PackedDepthwise::scratch_bytes`].
    pub fn depthwise_i8(
        &self,
        p: &PackedDepthwise,
        input: &[i8],
        output: &mut [i8],
        scratch: &mut [u8],
    ) {
        self.check_tier(p.tier, "depthwise");
        (self.depthwise_i8)(p, input, output, scratch)
    }

    /// Int8 fully connected `[batch, in] → [batch, out]`; `scratch` holds
    /// [`PackedFc::scratch_bytes`].
    pub fn fully_connected_i8(
        &self,
        p: &PackedFc,
        input: &[i8],
        output: &mut [i8],
        scratch: &mut [u8],
    ) {
        self.check_tier(p.conv.tier, "fully_connected");
        (self.conv2d_i8)(&p.conv, input, output, scratch)
    }

    /// Int8 element-wise add (same shapes), TFLite's left-shift-20 scheme.
    pub fn add_i8(&self, q: &AddQuant, a: &[i8], b: &[i8], output: &mut [i8]) {
        (self.add_i8)(q, a, b, output)
    }

    /// Int8 element-wise add (same shapes) with 16-bit multipliers ([`Add16Quant`]).
    pub fn add16_i8(&self, q: &Add16Quant, a: &[i8], b: &[i8], output: &mut [i8]) {
        (self.add16_i8)(q, a, b, output)
    }

    /// Int8 add with 16-bit multipliers of `a` and `b` channel-padded as `pad` says:
    /// `a ⊕ pad(b)`, the pad never written out.
    pub fn add16_i8_padded(
        &self,
        q: &Add16Quant,
        pad: &ChannelPadded,
        a: &[i8],
        b: &[i8],
        output: &mut [i8],
    ) {
        (self.add16_i8_padded)(q, pad, a, b, output)
    }

    // ---- int8, generic on every tier ----

    /// Int8 element-wise mul (same shapes).
    pub fn mul_i8(&self, q: &MulQuant, a: &[i8], b: &[i8], output: &mut [i8]) {
        generic::elementwise::mul_i8(q, a, b, output)
    }

    /// Int8 max pool (output keeps the input quantization).
    pub fn max_pool_i8(&self, p: &PoolParams, input: &[i8], output: &mut [i8]) {
        (self.max_pool_i8)(p, input, output)
    }

    /// Int8 average pool (output keeps the input quantization).
    pub fn avg_pool_i8(&self, p: &PoolParams, input: &[i8], output: &mut [i8]) {
        generic::pool::avg_pool_i8(p, input, output)
    }

    /// Int8 mean over the `pixels` of `[batch, pixels, channels]`; build `requant` with
    /// `quantize_multiplier(in_scale / (out_scale · pixels))`.
    #[allow(clippy::too_many_arguments)]
    pub fn global_mean_i8(
        &self,
        input: &[i8],
        batch: usize,
        pixels: usize,
        channels: usize,
        in_zp: i32,
        requant: Requant,
        out_zp: i32,
        output: &mut [i8],
    ) {
        generic::pool::global_mean_i8_with(
            self.mean_chunk,
            input,
            batch,
            pixels,
            channels,
            in_zp,
            requant,
            out_zp,
            output,
        )
    }

    /// Int8 table lookup (logistic, tanh, hardswish: see [`Lut`]).
    pub fn lut_i8(&self, lut: &Lut, input: &[i8], output: &mut [i8]) {
        generic::lut::lut_i8(lut, input, output)
    }

    /// Int8 softmax over rows of `depth`.
    #[allow(clippy::too_many_arguments)]
    pub fn softmax_i8(
        &self,
        input: &[i8],
        depth: usize,
        beta: f32,
        in_scale: f32,
        out_scale: f32,
        out_zp: i32,
        output: &mut [i8],
    ) {
        generic::softmax::softmax_i8(input, depth, beta, in_scale, out_scale, out_zp, output)
    }

    /// Bilinear resize of int8 `[n, h, w, c]` (quantization unchanged).
    pub fn resize_bilinear_i8(
        &self,
        input: &[i8],
        in_shape: [usize; 4],
        out_h: usize,
        out_w: usize,
        o: ResizeOptions,
        output: &mut [i8],
    ) {
        let rows = 0..in_shape[0] * out_h;
        (self.resize_bilinear_i8)(input, in_shape, out_h, out_w, o, rows, output)
    }

    /// Output rows `rows` of [`KernelTable::resize_bilinear_i8`], counted over all images
    /// (`0..n · out_h`, image-major); `output` holds just those rows. Bit-exact with the
    /// same rows of the whole resize (a thread's slice).
    #[allow(clippy::too_many_arguments)]
    pub fn resize_bilinear_i8_rows(
        &self,
        input: &[i8],
        in_shape: [usize; 4],
        out_h: usize,
        out_w: usize,
        o: ResizeOptions,
        rows: Range<usize>,
        output: &mut [i8],
    ) {
        (self.resize_bilinear_i8)(input, in_shape, out_h, out_w, o, rows, output)
    }

    /// Quantizes f32 to int8.
    pub fn quantize(&self, input: &[f32], scale: f32, zero_point: i32, output: &mut [i8]) {
        generic::quantize::quantize(input, scale, zero_point, output)
    }

    /// Int8 → int8 with a new scale and zero point; build `requant` with
    /// `quantize_multiplier(in_scale / out_scale)`.
    pub fn requantize_i8(
        &self,
        input: &[i8],
        in_zp: i32,
        requant: Requant,
        out_zp: i32,
        output: &mut [i8],
    ) {
        generic::quantize::requantize(input, in_zp, requant, out_zp, output)
    }

    /// Int8 → uint8 with a new scale and zero point; build `requant` with
    /// `quantize_multiplier(in_scale / out_scale)`.
    pub fn requantize_u8(
        &self,
        input: &[i8],
        in_zp: i32,
        requant: Requant,
        out_zp: i32,
        output: &mut [u8],
    ) {
        generic::quantize::requantize_u8(input, in_zp, requant, out_zp, output)
    }

    /// Dequantizes int8 to f32.
    pub fn dequantize(&self, input: &[i8], scale: f32, zero_point: i32, output: &mut [f32]) {
        generic::quantize::dequantize(input, scale, zero_point, output)
    }

    // ---- any element type ----

    /// Concatenates inputs viewed as `[outer, inner_i]` along their inner axis.
    pub fn concat<T: Copy>(&self, inputs: &[&[T]], outer: usize, output: &mut [T]) {
        generic::layout::concat(inputs, outer, output)
    }

    /// Pads a 4-D int8 tensor with `value` (its zero point).
    pub fn pad_i8(
        &self,
        input: &[i8],
        shape: [usize; 4],
        pads: [(usize, usize); 4],
        value: i8,
        output: &mut [i8],
    ) {
        (self.pad_i8)(input, shape, pads, value, output)
    }

    /// Pads a 4-D tensor with `value` (any element type; int8 has [`KernelTable::pad_i8`]).
    pub fn pad<T: Copy>(
        &self,
        input: &[T],
        shape: [usize; 4],
        pads: [(usize, usize); 4],
        value: T,
        output: &mut [T],
    ) {
        generic::layout::pad(input, shape, pads, value, output)
    }

    /// Transposes a tensor of rank ≤ 4: output axis `i` is input axis `perm[i]`.
    pub fn transpose<T: Copy>(
        &self,
        input: &[T],
        shape: &[usize],
        perm: &[usize],
        output: &mut [T],
    ) {
        generic::layout::transpose(input, shape, perm, output)
    }

    /// Strided window of a tensor of up to 4 dimensions (`begin`, output `size`, `stride`
    /// per axis).
    pub fn slice<T: Copy>(
        &self,
        input: &[T],
        shape: &[usize],
        begin: &[usize],
        size: &[usize],
        stride: &[usize],
        output: &mut [T],
    ) {
        generic::layout::slice(input, shape, begin, size, stride, output)
    }

    /// Nearest-neighbour resize of `[n, h, w, c]`.
    pub fn resize_nearest<T: Copy>(
        &self,
        input: &[T],
        in_shape: [usize; 4],
        out_h: usize,
        out_w: usize,
        o: ResizeOptions,
        output: &mut [T],
    ) {
        generic::resize::resize_nearest(input, in_shape, out_h, out_w, o, output)
    }

    // ---- f32 ----

    /// F32 convolution.
    pub fn conv2d_f32(&self, p: &PackedConvF32, input: &[f32], output: &mut [f32]) {
        (self.conv2d_f32)(p, input, output)
    }

    /// F32 convolution, its output then added to a skip operand ([`ResidualF32`]): bit for
    /// bit [`KernelTable::conv2d_f32`] then [`KernelTable::add_f32_padded`] (the
    /// convolution's output the first operand), without writing the convolution's output
    /// out and reading it back on the SIMD tiers.
    pub fn conv2d_add_f32(
        &self,
        p: &PackedConvF32,
        input: &[f32],
        residual: &ResidualF32<'_>,
        output: &mut [f32],
    ) {
        (self.conv2d_add_f32)(p, input, residual, output)
    }

    /// F32 depthwise convolution.
    pub fn depthwise_f32(&self, p: &PackedDepthwiseF32, input: &[f32], output: &mut [f32]) {
        (self.depthwise_f32)(p, input, output)
    }

    /// F32 fully connected.
    pub fn fully_connected_f32(&self, p: &PackedFcF32, input: &[f32], output: &mut [f32]) {
        (self.conv2d_f32)(&p.conv, input, output)
    }

    /// F32 add with a clamp range.
    pub fn add_f32(&self, a: &[f32], b: &[f32], output: &mut [f32], act: (f32, f32)) {
        (self.add_f32)(a, b, output, act)
    }

    /// F32 add with a clamp range, the second operand channel-padded.
    pub fn add_f32_padded(
        &self,
        pad: &ChannelPadded<f32>,
        a: &[f32],
        b: &[f32],
        output: &mut [f32],
        act: (f32, f32),
    ) {
        (self.add_f32_padded)(pad, a, b, output, act)
    }

    /// F32 mul with a clamp range.
    pub fn mul_f32(&self, a: &[f32], b: &[f32], output: &mut [f32], act: (f32, f32)) {
        generic::elementwise::mul_f32(a, b, output, act)
    }

    /// F32 max pool.
    pub fn max_pool_f32(&self, p: &PoolParams, input: &[f32], output: &mut [f32]) {
        (self.max_pool_f32)(p, input, output)
    }

    /// F32 average pool.
    pub fn avg_pool_f32(&self, p: &PoolParams, input: &[f32], output: &mut [f32]) {
        generic::pool::avg_pool_f32(p, input, output)
    }

    /// F32 mean over the `pixels` of `[batch, pixels, channels]`.
    pub fn global_mean_f32(
        &self,
        input: &[f32],
        batch: usize,
        pixels: usize,
        channels: usize,
        output: &mut [f32],
    ) {
        generic::pool::global_mean_f32(input, batch, pixels, channels, output)
    }

    /// F32 softmax over rows of `depth`.
    pub fn softmax_f32(&self, input: &[f32], depth: usize, beta: f32, output: &mut [f32]) {
        generic::softmax::softmax_f32(input, depth, beta, output)
    }

    /// F32 element-wise function (`crate::lut::logistic`, `f32::tanh`, `crate::lut::hardswish`).
    pub fn map_f32(&self, input: &[f32], output: &mut [f32], f: fn(f32) -> f32) {
        generic::lut::map_f32(input, output, f)
    }

    /// Bilinear resize of f32 `[n, h, w, c]`.
    pub fn resize_bilinear_f32(
        &self,
        input: &[f32],
        in_shape: [usize; 4],
        out_h: usize,
        out_w: usize,
        o: ResizeOptions,
        output: &mut [f32],
    ) {
        let rows = 0..in_shape[0] * out_h;
        (self.resize_bilinear_f32)(input, in_shape, out_h, out_w, o, rows, output)
    }

    /// Output rows `rows` of [`KernelTable::resize_bilinear_f32`], counted over all images
    /// (`0..n · out_h`, image-major); `output` holds just those rows. Bit-exact with the
    /// same rows of the whole resize (a thread's slice).
    #[allow(clippy::too_many_arguments)]
    pub fn resize_bilinear_f32_rows(
        &self,
        input: &[f32],
        in_shape: [usize; 4],
        out_h: usize,
        out_w: usize,
        o: ResizeOptions,
        rows: Range<usize>,
        output: &mut [f32],
    ) {
        (self.resize_bilinear_f32)(input, in_shape, out_h, out_w, o, rows, output)
    }
}
