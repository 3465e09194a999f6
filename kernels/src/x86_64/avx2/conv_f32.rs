//! The AVX2 tier's f32 convolution (groups 1; grouped convolutions run the fused reference):
//! tiles of [`BLOCK`] neighbouring output pixels of a row (fewer where the row's edge is
//! near: [`PIXELS`], then single pixels) × 16 or 8 output channels (two or one 8-lane
//! registers), the accumulators in registers. A step loads one row of `[tap][in][out]`
//! weights (`PackedConvF32::weights_io`, padded so that a whole register past the last
//! channel stays inside; lanes past `out_c` are computed and never stored) and broadcasts one
//! input value per pixel. Every lane sums its bias, then the taps in order (padding taps
//! skipped), then the input channels in order, one fused multiply-add (`vfmadd231ps`) per
//! tap, and clamps as `f32::clamp`: bit for bit the fused scalar reference
//! (`generic::conv::conv2d_f32_fused`, `f32::mul_add` per tap), within the stated error
//! budget of an f64 reference like every tier (`kernels/tests/float_ops.rs`), and not bit for
//! bit the generic tier, which rounds the product and the sum apart.
//!
//! It replaced the portable blocked body compiled for AVX2 (4 pixels × 16, 8, 4 or 1
//! channels: a 28- or 42-channel layer ran 4- and 1-channel chunks; a separate `vmulps` and
//! `vaddps` per tap).

use core::arch::x86_64::*;

use super::float::{lane_masks, load, store_tile};
use crate::conv_add_f32::ResidualF32;
use crate::float::PackedConvF32;
use crate::float_window::{PIXELS, TapGeometry, Tiles};
use crate::generic;

/// Output pixels of a row computed together where their windows lie inside the row (12
/// accumulators at 16 channels, two weight registers and a broadcast: 15 of the 16).
const BLOCK: usize = 6;

/// Channels of a tile: two 8-lane registers.
const CH: usize = 16;

/// F32 convolution, AVX2 tier.
pub(crate) fn conv2d(p: &PackedConvF32, input: &[f32], output: &mut [f32]) {
    conv2d_with(p, input, None, output)
}

/// F32 convolution and its residual add ([`ResidualF32`]), AVX2 tier: each tile's pixels
/// get the skip added right after the tile is stored.
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
        // SAFETY: AVX2 and FMA asserted.
        return unsafe { grouped(p, input, r, output) };
    }
    p.check_tiled(input, output, CH);
    // SAFETY: AVX2 and FMA asserted; the lengths and the padding too.
    unsafe { conv_tiles(p, TapGeometry::from(d), input, r, output) }
}

/// Every tile of a convolution (with its residual add where `r` is one), one function with
/// the tile kernels inlined.
///
/// # Safety
/// The CPU supports AVX2 and FMA; `input` and `output` have the lengths of `p`'s parameters;
/// `weights_io` holds CH floats past its last row.
#[target_feature(enable = "avx2,fma")]
unsafe fn conv_tiles(
    p: &PackedConvF32,
    g: TapGeometry,
    input: &[f32],
    r: Option<&ResidualF32<'_>>,
    output: &mut [f32],
) {
    let oc = p.params.out_c;
    // The first pixel whose skip is not added yet.
    let mut pending = 0;
    for t in Tiles::blocks_of(g, BLOCK) {
        let out = &mut output[t.pixel * oc..][..t.pixels * oc];
        let o = out.as_mut_ptr();
        for c0 in (0..oc).step_by(CH) {
            let n = (oc - c0).min(CH);
            // SAFETY: AVX2+FMA (fn contract); the tile's windows lie in `input` (asserted per
            // run; single pixels check each tap); weights_io is padded by CH (asserted by the
            // caller); `out` holds the tile; bias loads and stores stop at out_c.
            unsafe {
                match (t.pixels, n) {
                    (BLOCK, CH) => conv_tile::<BLOCK, 2, false>(p, g, input, t.at, c0, o),
                    (BLOCK, 9..) => conv_tile::<BLOCK, 2, true>(p, g, input, t.at, c0, o),
                    (BLOCK, 8) => conv_tile::<BLOCK, 1, false>(p, g, input, t.at, c0, o),
                    (BLOCK, _) => conv_tile::<BLOCK, 1, true>(p, g, input, t.at, c0, o),
                    (PIXELS, CH) => conv_tile::<PIXELS, 2, false>(p, g, input, t.at, c0, o),
                    (PIXELS, 9..) => conv_tile::<PIXELS, 2, true>(p, g, input, t.at, c0, o),
                    (PIXELS, 8) => conv_tile::<PIXELS, 1, false>(p, g, input, t.at, c0, o),
                    (PIXELS, _) => conv_tile::<PIXELS, 1, true>(p, g, input, t.at, c0, o),
                    (_, CH) => conv_tile::<1, 2, false>(p, g, input, t.at, c0, o),
                    (_, 9..) => conv_tile::<1, 2, true>(p, g, input, t.at, c0, o),
                    (_, 8) => conv_tile::<1, 1, false>(p, g, input, t.at, c0, o),
                    (_, _) => conv_tile::<1, 1, true>(p, g, input, t.at, c0, o),
                }
            }
        }
        let end = t.pixel + t.pixels;
        if let Some(r) = r
            && (end - pending >= ADD_PIXELS || end * oc == output.len())
        {
            // SAFETY: AVX2 (this function's contract).
            unsafe { add_tile(r, &mut output[pending * oc..end * oc], pending) };
            pending = end;
        }
    }
}

/// Pixels whose residual add runs in one call (while they are still in L1): fewer calls
/// than one per tile.
const ADD_PIXELS: usize = 24;

/// The residual add of a run of tiles' pixels, out of line: inlined, it made the tile loops
/// slower for every convolution (the loop's code grows past what LLVM inlines the tile
/// kernels into).
///
/// # Safety
/// The CPU supports AVX2.
#[inline(never)]
#[target_feature(enable = "avx2")]
unsafe fn add_tile(r: &ResidualF32<'_>, out: &mut [f32], first: usize) {
    r.add_into(out, first)
}

/// A grouped convolution (and its residual add): the fused reference compiled with FMA (one
/// instruction per tap, not a `fmaf` call).
///
/// # Safety
/// The CPU supports AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
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

/// Channels `c0..c0 + 8·R` (`PART`: fewer, up to out_c) of output pixels `ox..ox + P` of a
/// convolution (`P` = 1: any window, taps outside the input skipped; `P` > 1: every tap
/// inside the row).
///
/// # Safety
/// The CPU supports AVX2 and FMA; as the call in [`conv2d`]; `PART` unless 8·R channels
/// are left.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn conv_tile<const P: usize, const R: usize, const PART: bool>(
    p: &PackedConvF32,
    g: TapGeometry,
    input: &[f32],
    px: [usize; 3],
    c0: usize,
    out: *mut f32,
) {
    let (ic, oc) = (g.in_c, p.params.out_c);
    let n = (oc - c0).min(8 * R);
    debug_assert!(PART != (n == 8 * R));
    let m = lane_masks::<R>(n);
    // SAFETY: the bias holds out_c floats; the masks (or 8·R exact channels) stop there.
    let mut acc = [unsafe { load::<R, PART>(p.bias[c0..].as_ptr(), &m) }; P];
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
                    let w: [__m256; R] =
                        core::array::from_fn(|k| _mm256_loadu_ps(w.add(i * oc + 8 * k)));
                    for (q, a) in acc.iter_mut().enumerate() {
                        let x = _mm256_broadcast_ss(&*x.add(q * step + i));
                        for k in 0..R {
                            a[k] = _mm256_fmadd_ps(x, w[k], a[k]);
                        }
                    }
                }
            }
        }
    }
    // SAFETY: pixel q of `out` holds out_c floats, so channels c0..c0 + n.
    unsafe { store_tile::<P, R, PART>(&acc, out, oc, c0, n, p.act) }
}
