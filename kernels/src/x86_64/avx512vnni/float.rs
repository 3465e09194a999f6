//! F32 convolution (groups 1) and depthwise convolution (multiplier 1) with AVX-512: up to 32
//! output channels (tiles of [`float_lanes`](super::float_lanes) lanes) of up to eight
//! neighbouring output pixels at once, the accumulators in registers; the last chunk of
//! channels masked. Each lane sums its bias, then the taps in order, then the input channels
//! in order, one fused multiply-add (`vfmadd231ps`) per tap, and clamps with
//! `vmaxps`/`vminps` in the order that keeps NaN and −0.0 as `f32::clamp` does: bit for bit
//! the fused scalar reference (`generic::conv::conv2d_f32_fused`,
//! `generic::depthwise::depthwise_f32_fused`), which layers outside these forms run.

use core::arch::x86_64::*;

use super::float_lanes::{
    CH, chunk_width, clamp, fmadd_broadcast, fmadd_lanes, load_lanes, load_weights, masks,
    store_lanes,
};
use crate::conv_add_f32::ResidualF32;
use crate::float::{PackedConvF32, PackedDepthwiseF32};
use crate::float_window::{PIXELS, TapGeometry, Tiles};
use crate::generic;

/// Output pixels of a row computed together where their windows lie inside the row (16
/// accumulators at 32 channels); runs too short for it take [`PIXELS`], then single pixels.
const BLOCK: usize = 8;

/// F32 convolution, AVX-512.
pub(crate) fn conv2d(p: &PackedConvF32, input: &[f32], output: &mut [f32]) {
    conv2d_with(p, input, None, output)
}

/// F32 convolution and its residual add ([`ResidualF32`]), AVX-512: each tile's pixels get
/// the skip added right after the tile is stored.
pub(crate) fn conv2d_add(
    p: &PackedConvF32,
    input: &[f32],
    r: &ResidualF32<'_>,
    output: &mut [f32],
) {
    r.check(p, output);
    conv2d_with(p, input, Some(r), output)
}

fn conv2d_with(p: &PackedConvF32, input: &[f32], r: Option<&ResidualF32<'_>>, output: &mut [f32]) {
    super::assert_supported();
    let d = &p.params;
    if p.weights_io.is_empty() {
        // SAFETY: AVX-512 F (and with it FMA) asserted.
        return unsafe { grouped(p, input, r, output) };
    }
    p.check_tiled(input, output, CH);
    // SAFETY: AVX-512 F and VL asserted; the lengths and the padding too.
    unsafe { conv_tiles(p, TapGeometry::from(d), input, r, output) }
}

/// Every tile of a convolution (with its residual add where `r` is one), one function with
/// the tile kernels inlined (a call per tile from a function without the target features
/// cannot inline them).
///
/// # Safety
/// The CPU supports AVX-512 F and VL; `input` and `output` have the lengths of `p`'s
/// parameters; `weights_io` holds CH floats past its last row.
#[target_feature(enable = "avx512f,avx512vl,fma")]
unsafe fn conv_tiles(
    p: &PackedConvF32,
    g: TapGeometry,
    input: &[f32],
    r: Option<&ResidualF32<'_>>,
    output: &mut [f32],
) {
    let oc = p.params.out_c;
    for t in Tiles::blocks_of(g, BLOCK) {
        let out = &mut output[t.pixel * oc..][..t.pixels * oc];
        for c0 in (0..oc).step_by(CH) {
            // SAFETY: AVX-512 F and VL (fn contract); `out` holds the tile, whose windows lie
            // in `input` (blocks: every tap; single pixels check each); weights_io is padded
            // by CH (contract); the masks stop at out_c.
            unsafe {
                let o = out.as_mut_ptr();
                match t.pixels {
                    BLOCK => conv_tile_any::<BLOCK>(p, g, input, t.at, c0, o),
                    PIXELS => conv_tile_any::<PIXELS>(p, g, input, t.at, c0, o),
                    _ => conv_tile_any::<1>(p, g, input, t.at, c0, o),
                }
            }
        }
        if let Some(r) = r {
            r.add_into(out, t.pixel);
        }
    }
}

/// A grouped convolution (and its residual add): the fused reference compiled with FMA (one
/// instruction per tap, not a `fmaf` call).
///
/// # Safety
/// The CPU supports AVX-512 F and FMA.
#[target_feature(enable = "avx512f,fma")]
unsafe fn grouped(
    p: &PackedConvF32,
    input: &[f32],
    r: Option<&ResidualF32<'_>>,
    output: &mut [f32],
) {
    generic::conv::conv2d_f32_fused(p, input, output);
    if let Some(r) = r {
        r.add_into(output, 0);
    }
}

/// [`conv_tile`] at the width of the channels left from `c0` ([`chunk_width`]).
///
/// # Safety
/// As the call in [`conv2d`].
#[inline]
#[target_feature(enable = "avx512f,avx512vl,fma")]
unsafe fn conv_tile_any<const P: usize>(
    p: &PackedConvF32,
    g: TapGeometry,
    input: &[f32],
    at: [usize; 3],
    c0: usize,
    out: *mut f32,
) {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        match chunk_width(p.params.out_c - c0) {
            32 => conv_tile::<P, 32>(p, g, input, at, c0, out),
            24 => conv_tile::<P, 24>(p, g, input, at, c0, out),
            16 => conv_tile::<P, 16>(p, g, input, at, c0, out),
            _ => conv_tile::<P, 8>(p, g, input, at, c0, out),
        }
    }
}

/// Channels `c0..c0 + W` (masked to out_c; `W` from [`chunk_width`]) of output pixels
/// `ox..ox + P` (`P` = 1: any window, taps outside the input skipped; `P` > 1: every tap
/// inside the row).
///
/// # Safety
/// As the call in [`conv2d`].
#[inline]
#[target_feature(enable = "avx512f,avx512vl,fma")]
unsafe fn conv_tile<const P: usize, const W: usize>(
    p: &PackedConvF32,
    g: TapGeometry,
    input: &[f32],
    px: [usize; 3],
    c0: usize,
    out: *mut f32,
) {
    let (ic, oc) = (g.in_c, p.params.out_c);
    let m = masks(oc - c0);
    // SAFETY: the masks stop at out_c, the bias's length (wrapping: a masked-off register's
    // address is never read).
    let bias = unsafe {
        [
            _mm512_maskz_loadu_ps(m[0], p.bias.as_ptr().add(c0)),
            _mm512_maskz_loadu_ps(m[1], p.bias.as_ptr().wrapping_add(c0 + 16)),
        ]
    };
    let mut acc = [bias; P];
    // One run of input values per kernel row and pixel (`conv_runs`: the row's taps as one
    // run where the tile is a block and they are adjacent).
    let (runs, run) = g.conv_runs(P > 1);
    // Pixel q's run starts `q·step` floats after pixel 0's.
    let step = g.stride_w * ic;
    for ky in 0..g.k_h {
        for r in 0..runs {
            let Some(at) = g.run_start(px, [ky, r], P, run, input.len()) else {
                continue;
            };
            let x = input[at..].as_ptr();
            let w = p.weights_io[((ky * g.k_w + r) * ic) * oc + c0..].as_ptr();
            for i in 0..run {
                // SAFETY: row i of the run's weights starts inside weights_io, which holds CH
                // floats past its last row; pixel q's value i lies inside `input` (`run_start`).
                unsafe {
                    let w = load_weights::<W>(w.add(i * oc));
                    for (q, a) in acc.iter_mut().enumerate() {
                        *a = fmadd_broadcast::<W>(*a, x.add(q * step + i), w);
                    }
                }
            }
        }
    }
    let (lo, hi) = (_mm512_set1_ps(p.act.0), _mm512_set1_ps(p.act.1));
    let exact = oc - c0 == W || (oc - c0 > W && W == CH);
    for (q, a) in acc.iter().enumerate() {
        // SAFETY: pixel q of `out` holds out_c floats; the masks stop there.
        unsafe {
            let o = out.add(q * oc + c0);
            store_lanes::<W>(o, m, [clamp(a[0], lo, hi), clamp(a[1], lo, hi)], exact);
        }
    }
}

/// F32 depthwise convolution, AVX-512.
pub(crate) fn depthwise(p: &PackedDepthwiseF32, input: &[f32], output: &mut [f32]) {
    super::assert_supported();
    let d = &p.params;
    if d.multiplier != 1 {
        // SAFETY: AVX-512 F (and with it FMA) asserted.
        return unsafe { multiplied(p, input, output) };
    }
    assert_eq!(input.len(), d.input_len(), "depthwise: input length");
    assert_eq!(output.len(), d.output_len(), "depthwise: output length");
    // SAFETY: AVX-512 F and VL asserted; the lengths too.
    unsafe { depthwise_tiles(p, TapGeometry::from(d), input, output) }
}

/// Every tile of a depthwise convolution with multiplier 1, one function with the tile
/// kernels inlined.
///
/// # Safety
/// The CPU supports AVX-512 F and VL; `input` and `output` have the lengths of `p`'s
/// parameters.
#[target_feature(enable = "avx512f,avx512vl,fma")]
unsafe fn depthwise_tiles(
    p: &PackedDepthwiseF32,
    g: TapGeometry,
    input: &[f32],
    output: &mut [f32],
) {
    let c = g.in_c;
    for t in Tiles::blocks_of(g, BLOCK) {
        let out = &mut output[t.pixel * c..][..t.pixels * c];
        for c0 in (0..c).step_by(CH) {
            // SAFETY: as in conv_tiles; every load is masked to the channels < c of a pixel
            // inside the input or of a tap's weights.
            unsafe {
                let o = out.as_mut_ptr();
                match t.pixels {
                    BLOCK => dw_tile_any::<BLOCK>(p, g, input, t.at, c0, o),
                    PIXELS => dw_tile_any::<PIXELS>(p, g, input, t.at, c0, o),
                    _ => dw_tile_any::<1>(p, g, input, t.at, c0, o),
                }
            }
        }
    }
}

/// A depthwise convolution with a channel multiplier: the fused reference compiled with FMA.
///
/// # Safety
/// The CPU supports FMA.
#[target_feature(enable = "fma")]
unsafe fn multiplied(p: &PackedDepthwiseF32, input: &[f32], output: &mut [f32]) {
    generic::depthwise::depthwise_f32_fused(p, input, output)
}

/// [`dw_tile`] at the width of the channels left from `c0` ([`chunk_width`]).
///
/// # Safety
/// As the call in [`depthwise`].
#[inline]
#[target_feature(enable = "avx512f,avx512vl,fma")]
unsafe fn dw_tile_any<const P: usize>(
    p: &PackedDepthwiseF32,
    g: TapGeometry,
    input: &[f32],
    at: [usize; 3],
    c0: usize,
    out: *mut f32,
) {
    let w = chunk_width(g.in_c - c0);
    // SAFETY: forwarded from this function's contract.
    unsafe {
        match w {
            32 => dw_tile::<P, 32>(p, g, input, at, c0, out),
            24 => dw_tile::<P, 24>(p, g, input, at, c0, out),
            16 => dw_tile::<P, 16>(p, g, input, at, c0, out),
            _ => dw_tile::<P, 8>(p, g, input, at, c0, out),
        }
    }
}

/// Channels `c0..c0 + W` (masked to c) of output pixels `ox..ox + P`, as [`conv_tile`].
///
/// # Safety
/// As the call in [`depthwise`].
#[inline]
#[target_feature(enable = "avx512f,avx512vl,fma")]
unsafe fn dw_tile<const P: usize, const W: usize>(
    p: &PackedDepthwiseF32,
    g: TapGeometry,
    input: &[f32],
    px: [usize; 3],
    c0: usize,
    out: *mut f32,
) {
    let c = g.in_c;
    let m = masks(c - c0);
    // SAFETY: the masks stop at c, the bias's length.
    let mut acc = [unsafe { load_lanes::<W>(p.bias[c0..].as_ptr(), m) }; P];
    // Pixel q's channels start `q·step` floats after pixel 0's.
    let step = g.stride_w * c;
    for ky in 0..g.k_h {
        for kx in 0..g.k_w {
            let Some(at) = g.tap_at(px, ky, kx, P > 1) else {
                continue;
            };
            let at = at + c0;
            assert!(at + (P - 1) * step < input.len(), "depthwise f32: window");
            let x = input[at..].as_ptr();
            // SAFETY: the tap's weights hold the chunk's channels < c; pixel q's channels
            // from c0 lie inside `input` (the first asserted, every tap inside the row); the
            // masks stop at c.
            unsafe {
                let w = load_lanes::<W>(p.weights[(ky * g.k_w + kx) * c + c0..].as_ptr(), m);
                for (q, a) in acc.iter_mut().enumerate() {
                    let x = load_lanes::<W>(x.add(q * step), m);
                    *a = fmadd_lanes::<W>(*a, x, w);
                }
            }
        }
    }
    // SAFETY: forwarded: pixel q of `out` holds c floats.
    unsafe { dw_store::<P, W>(p, &acc, c0, out) }
}

/// Clamps and stores the accumulators of a depthwise tile.
///
/// # Safety
/// Pixel q < P of `out` holds c floats; the CPU has AVX-512 F and VL.
#[inline]
#[target_feature(enable = "avx512f,avx512vl,fma")]
unsafe fn dw_store<const P: usize, const W: usize>(
    p: &PackedDepthwiseF32,
    acc: &[[__m512; 2]; P],
    c0: usize,
    out: *mut f32,
) {
    let c = p.params.in_c;
    let m = masks(c - c0);
    let (lo, hi) = (_mm512_set1_ps(p.act.0), _mm512_set1_ps(p.act.1));
    let exact = c - c0 == W || (c - c0 > W && W == CH);
    for (q, a) in acc.iter().enumerate() {
        // SAFETY: pixel q of `out` holds c floats (contract); the masks stop there.
        unsafe {
            let o = out.add(q * c + c0);
            store_lanes::<W>(o, m, [clamp(a[0], lo, hi), clamp(a[1], lo, hi)], exact);
        }
    }
}
