//! The AVX2 tier's f32 depthwise kernel (the convolution is [`super::conv_f32`]), behind a
//! safe wrapper that checks the CPU first, and the lane helpers both share. Tiles of up to
//! 16 channels (two 8-lane registers) of [`PIXELS`] neighbouring output pixels, the
//! accumulators in registers (compiled from the portable form, a 16-channel tile kept its
//! accumulators on the stack: an extra load and store per multiply-add), the last chunk of
//! channels loaded through lane masks. Every lane sums its bias, then the taps in order, one
//! fused multiply-add per tap, and clamps as `f32::clamp`: bit for bit the fused scalar
//! reference (`generic::depthwise::depthwise_f32_fused`), within budget of an f64 reference.

use core::arch::x86_64::*;

use crate::float::PackedDepthwiseF32;
use crate::float_window::{PIXELS, TapGeometry, Tiles};
use crate::generic;

/// Channels of a depthwise tile: two 8-lane registers.
const CH: usize = 16;

/// F32 depthwise convolution (multiplier 1; others run the reference), AVX2 tier.
pub(crate) fn depthwise(p: &PackedDepthwiseF32, input: &[f32], output: &mut [f32]) {
    super::assert_supported();
    let d = &p.params;
    if d.multiplier != 1 {
        // SAFETY: AVX2 and FMA asserted.
        return unsafe { multiplied(p, input, output) };
    }
    assert_eq!(input.len(), d.input_len(), "depthwise: input length");
    assert_eq!(output.len(), d.output_len(), "depthwise: output length");
    // SAFETY: AVX2 and FMA asserted; the lengths too.
    unsafe { depthwise_tiles(p, TapGeometry::from(d), input, output) }
}

/// Every tile of a depthwise convolution, one function with the tile kernels inlined (a call
/// per tile and chunk cost as much as a 3 × 3 tile's arithmetic).
///
/// # Safety
/// The CPU supports AVX2 and FMA; `input` and `output` have the lengths of `p`'s parameters;
/// the channel multiplier is 1.
#[target_feature(enable = "avx2,fma")]
unsafe fn depthwise_tiles(
    p: &PackedDepthwiseF32,
    g: TapGeometry,
    input: &[f32],
    output: &mut [f32],
) {
    let c = g.in_c;
    // Stride 2 stays per pixel and tap: its columns reach fewer pixels each (`outpost bench
    // --profile`: BlazeFace's stride-2 layers 1.3–1.5× slower in columns).
    let columns = g.dilation_w == 1 && g.stride_w == 1 && matches!(g.k_w, 3 | 5);
    let tiles = if columns {
        Tiles::blocks_of(g, COLUMNS)
    } else {
        Tiles::new(g)
    };
    for t in tiles {
        let out = &mut output[t.pixel * c..][..t.pixels * c];
        if t.pixels == COLUMNS {
            for c0 in (0..c).step_by(8) {
                let o = out.as_mut_ptr();
                // SAFETY: AVX2 and FMA (this function's contract); `out` holds the tile's
                // pixels, every tap of whose windows lies inside the row (asserted per kernel
                // row); the loads and stores are masked or cut to the channels < c.
                unsafe {
                    match (g.k_w, c - c0 >= 8) {
                        (3, true) => dw_columns::<3, false>(p, g, input, t.at, c0, o),
                        (3, false) => dw_columns::<3, true>(p, g, input, t.at, c0, o),
                        (_, true) => dw_columns::<5, false>(p, g, input, t.at, c0, o),
                        (_, false) => dw_columns::<5, true>(p, g, input, t.at, c0, o),
                    }
                }
            }
            continue;
        }
        for c0 in (0..c).step_by(CH) {
            let o = out.as_mut_ptr();
            let n = (c - c0).min(CH);
            // SAFETY: AVX2+FMA (fn contract); `out` holds the tile; each load is masked to
            // channels < c of a tap's weights or of a pixel inside the input (blocks: every
            // tap inside the row; single pixels check each); the stores stop at c.
            unsafe {
                match (t.pixels == PIXELS, n) {
                    (true, CH) => dw_tile::<PIXELS, 2, false>(p, g, input, t.at, c0, o),
                    (true, 8) => dw_tile::<PIXELS, 1, false>(p, g, input, t.at, c0, o),
                    (true, 9..) => dw_tile::<PIXELS, 2, true>(p, g, input, t.at, c0, o),
                    (true, _) => dw_tile::<PIXELS, 1, true>(p, g, input, t.at, c0, o),
                    (false, CH) => dw_tile::<1, 2, false>(p, g, input, t.at, c0, o),
                    (false, 8) => dw_tile::<1, 1, false>(p, g, input, t.at, c0, o),
                    (false, 9..) => dw_tile::<1, 2, true>(p, g, input, t.at, c0, o),
                    (false, _) => dw_tile::<1, 1, true>(p, g, input, t.at, c0, o),
                }
            }
        }
    }
}

/// A depthwise convolution with a channel multiplier: the fused reference compiled with FMA.
///
/// # Safety
/// The CPU supports AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn multiplied(p: &PackedDepthwiseF32, input: &[f32], output: &mut [f32]) {
    generic::depthwise::depthwise_f32_fused(p, input, output)
}

/// `R` registers of lane masks (`vmaskmovps` form: sign bit set) for the first `n` lanes.
#[inline]
#[target_feature(enable = "avx2")]
pub(super) fn lane_masks<const R: usize>(n: usize) -> [__m256i; R] {
    let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    core::array::from_fn(|r| {
        let left = _mm256_set1_epi32(n.saturating_sub(8 * r).min(8) as i32);
        _mm256_cmpgt_epi32(left, lanes)
    })
}

/// `R` registers from `src`: whole registers, or (`PART`) the lanes of `m`, the others zero
/// (masked-off lanes are not read).
///
/// # Safety
/// The CPU supports AVX2; `8·R` floats (`PART`: the masked ones) are readable at `src`.
#[inline]
#[target_feature(enable = "avx2")]
pub(super) unsafe fn load<const R: usize, const PART: bool>(
    src: *const f32,
    m: &[__m256i; R],
) -> [__m256; R] {
    // SAFETY: forwarded from this function's contract.
    core::array::from_fn(|r| unsafe {
        if PART {
            _mm256_maskload_ps(src.add(8 * r), m[r])
        } else {
            _mm256_loadu_ps(src.add(8 * r))
        }
    })
}

/// Output pixels of a row that [`dw_columns`] computes together.
const COLUMNS: usize = 8;

/// Channels `c0..c0 + 8` (`PART`: fewer, up to c) of output pixels `ox..ox + COLUMNS` of a
/// depthwise convolution with a `K`-wide kernel, horizontal stride 1 and dilation 1, every
/// tap inside the row. Per kernel row the `COLUMNS + K − 1` input columns the tile reads are
/// loaded once each and multiplied into every pixel they reach (column `j` is tap `kx` of
/// pixel `j − kx`), not once per pixel and tap: for each pixel `j` grows with `kx`, so its
/// taps are still summed in order. Eight accumulators, `K` weight registers.
///
/// # Safety
/// The CPU supports AVX2 and FMA; `out` holds the tile's `COLUMNS` pixels of `c` channels;
/// every tap of their windows lies inside the row; `PART` unless 8 channels are left.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn dw_columns<const K: usize, const PART: bool>(
    p: &PackedDepthwiseF32,
    g: TapGeometry,
    input: &[f32],
    [b, oy, ox]: [usize; 3],
    c0: usize,
    out: *mut f32,
) {
    let c = g.in_c;
    let n = (c - c0).min(8);
    debug_assert!(PART != (n == 8) && g.k_w == K && g.stride_w == 1 && g.dilation_w == 1);
    let m = lane_masks::<1>(n);
    // SAFETY: the bias holds c floats; the mask (or 8 exact channels) stops there.
    let mut acc = [unsafe { load::<1, PART>(p.bias[c0..].as_ptr(), &m) }; COLUMNS];
    for ky in 0..g.k_h {
        let Some(iy) = g.row(oy, ky) else { continue };
        let at = ((b * g.in_h + iy) * g.in_w + ox - g.pad_left) * c + c0;
        let cols = COLUMNS + K - 1;
        assert!(
            at + (cols - 1) * c + n <= input.len(),
            "depthwise f32: window"
        );
        let w0 = ky * K * c + c0;
        assert!(
            w0 + (K - 1) * c + n <= p.weights.len(),
            "depthwise f32: weights"
        );
        // SAFETY: tap kx's weights hold channels c0..c0 + n (asserted); the mask stops there.
        let w: [__m256; K] = core::array::from_fn(|kx| unsafe {
            load::<1, PART>(p.weights[w0 + kx * c..].as_ptr(), &m)[0]
        });
        let x = input[at..].as_ptr();
        for j in 0..cols {
            // SAFETY: column j's channels c0..c0 + n lie inside `input` (asserted).
            let v = unsafe { load::<1, PART>(x.add(j * c), &m)[0] };
            for (kx, w) in w.iter().enumerate() {
                if j >= kx && j - kx < COLUMNS {
                    let a = &mut acc[j - kx][0];
                    *a = _mm256_fmadd_ps(v, *w, *a);
                }
            }
        }
    }
    // SAFETY: pixel q of `out` holds c floats, so channels c0..c0 + n.
    unsafe { store_tile::<COLUMNS, 1, PART>(&acc, out, c, c0, n, p.act) }
}

/// Channels `c0..c0 + 8·R` (`PART`: fewer, up to c) of output pixels `ox..ox + P` of a
/// depthwise convolution (`P` = 1: any window, taps outside the input skipped; `P` > 1:
/// every tap inside the row), the accumulators in registers.
///
/// # Safety
/// The CPU supports AVX2 and FMA; as the call in [`depthwise`]; `PART` unless 8·R channels
/// are left.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn dw_tile<const P: usize, const R: usize, const PART: bool>(
    p: &PackedDepthwiseF32,
    g: TapGeometry,
    input: &[f32],
    px: [usize; 3],
    c0: usize,
    out: *mut f32,
) {
    let c = g.in_c;
    let n = (c - c0).min(8 * R);
    debug_assert!(PART != (n == 8 * R));
    let m = lane_masks::<R>(n);
    // SAFETY: the bias holds c floats; the masks (or 8·R exact channels) stop there.
    let mut acc = [unsafe { load::<R, PART>(p.bias[c0..].as_ptr(), &m) }; P];
    // Pixel q's channels start `q·step` floats after pixel 0's.
    let step = g.stride_w * c;
    for ky in 0..g.k_h {
        for kx in 0..g.k_w {
            let Some(at) = g.tap_at(px, ky, kx, P > 1) else {
                continue;
            };
            let at = at + c0;
            assert!(
                at + (P - 1) * step + n <= input.len(),
                "depthwise f32: window"
            );
            let x = input[at..].as_ptr();
            // SAFETY: the tap's weights hold channels c0..c0 + n, pixel q's too (asserted);
            // the masks (or exact chunks) stop there.
            unsafe {
                let w = load::<R, PART>(p.weights[(ky * g.k_w + kx) * c + c0..].as_ptr(), &m);
                for (q, a) in acc.iter_mut().enumerate() {
                    let x = load::<R, PART>(x.add(q * step), &m);
                    for k in 0..R {
                        a[k] = _mm256_fmadd_ps(x[k], w[k], a[k]);
                    }
                }
            }
        }
    }
    // SAFETY: pixel q of `out` holds c floats, so channels c0..c0 + n.
    unsafe { store_tile::<P, R, PART>(&acc, out, c, c0, n, p.act) }
}

/// Clamps `P` pixels' accumulators of `8·R` channels (`PART`: the first `n`) into channels
/// `c0..` of pixels `stride` floats apart from `out` on, as `f32::clamp` per lane.
///
/// # Safety
/// The CPU supports AVX2; pixel q's channels `c0..c0 + n` (`n = 8·R` unless `PART`) lie at
/// `out + q·stride` and are writable.
#[inline]
#[target_feature(enable = "avx2")]
pub(super) unsafe fn store_tile<const P: usize, const R: usize, const PART: bool>(
    acc: &[[__m256; R]; P],
    out: *mut f32,
    stride: usize,
    c0: usize,
    n: usize,
    (lo, hi): (f32, f32),
) {
    let (lo, hi) = (_mm256_set1_ps(lo), _mm256_set1_ps(hi));
    for (q, a) in acc.iter().enumerate() {
        // `f32::clamp` per lane: NaN stays NaN (`vmaxps` returns its second operand when
        // either is NaN), −0.0 stays −0.0.
        let v: [__m256; R] = core::array::from_fn(|k| _mm256_min_ps(hi, _mm256_max_ps(lo, a[k])));
        // SAFETY: pixel q's channels c0..c0 + n are writable (this function's contract).
        unsafe {
            let o = out.add(q * stride + c0);
            if PART {
                // Whole registers, then the rest in 4-, 2- and 1-float stores (`vmaskmovps`
                // stores are slow on AMD cores; a copy through a buffer was a `memcpy` call).
                for (k, v) in v.iter().enumerate() {
                    super::store::store_first_ps(o.add(8 * k), n.saturating_sub(8 * k).min(8), *v);
                }
            } else {
                for (k, v) in v.iter().enumerate() {
                    _mm256_storeu_ps(o.add(8 * k), *v);
                }
            }
        }
    }
}
