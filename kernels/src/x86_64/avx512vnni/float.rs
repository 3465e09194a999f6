//! F32 convolution (groups 1) and depthwise convolution (multiplier 1) with AVX-512: 32 output
//! channels (two registers) of up to four neighbouring output pixels at once, eight
//! accumulators in registers; the last chunk of channels masked. Each lane sums its bias, then
//! the taps in order, then the input channels in order, with `vmulps` and `vaddps` (no fused
//! multiply-add), and clamps with `vmaxps`/`vminps` in the order that keeps NaN and −0.0 as
//! `f32::clamp` does: bit for bit the scalar reference's (`generic::conv::conv2d_f32`,
//! `generic::depthwise::depthwise_f32`). Layers outside these forms run the reference.

use core::arch::x86_64::*;

use crate::float::{PackedConvF32, PackedDepthwiseF32};
use crate::float_window::{PIXELS, TapGeometry, Tiles};
use crate::generic;

/// Channels per chunk (two registers).
const CH: usize = 32;

/// The masks of a chunk's two registers for `left` channels from its start.
fn masks(left: usize) -> [__mmask16; 2] {
    let m = |n: usize| -> __mmask16 { if n >= 16 { 0xFFFF } else { (1u16 << n) - 1 } };
    [m(left.min(16)), m(left.saturating_sub(16))]
}

/// `clamp(v, lo, hi)` per lane as `f32::clamp` (NaN stays NaN: `vmaxps` returns its second
/// operand when either is NaN).
#[inline]
#[target_feature(enable = "avx512f")]
fn clamp(v: __m512, lo: __m512, hi: __m512) -> __m512 {
    _mm512_min_ps(hi, _mm512_max_ps(lo, v))
}

/// F32 convolution, AVX-512.
pub(crate) fn conv2d(p: &PackedConvF32, input: &[f32], output: &mut [f32]) {
    super::assert_supported();
    let d = &p.params;
    if p.weights_io.is_empty() {
        return generic::conv::conv2d_f32(p, input, output);
    }
    assert_eq!(input.len(), d.input_len(), "conv2d: input length");
    assert_eq!(output.len(), d.output_len(), "conv2d: output length");
    assert!(
        p.weights_io.len() >= d.weight_len() + CH,
        "conv2d f32: padded weights"
    );
    let g = TapGeometry::from(d);
    let oc = d.out_c;
    for t in Tiles::new(g) {
        let out = &mut output[t.pixel * oc..][..t.pixels * oc];
        for c0 in (0..oc).step_by(CH) {
            // SAFETY: AVX-512 F asserted; `out` holds the tile's pixels, whose windows lie in
            // `input` (blocks: every tap; single pixels check each); weights_io is padded by CH
            // (asserted); the masks stop at out_c.
            unsafe {
                if t.pixels == PIXELS {
                    conv_tile::<PIXELS>(p, g, input, t.at, c0, out.as_mut_ptr())
                } else {
                    conv_tile::<1>(p, g, input, t.at, c0, out.as_mut_ptr())
                }
            }
        }
    }
}

/// Channels `c0..c0 + CH` (masked to out_c) of output pixels `ox..ox + P` (`P` = 1: any
/// window, taps outside the input skipped; `P` > 1: every tap inside the row).
///
/// # Safety
/// As the call in [`conv2d`].
#[inline]
#[target_feature(enable = "avx512f")]
#[allow(clippy::needless_range_loop)] // `i` indexes the P input runs and the weight rows alike
unsafe fn conv_tile<const P: usize>(
    p: &PackedConvF32,
    g: TapGeometry,
    input: &[f32],
    [b, oy, ox]: [usize; 3],
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
    // One run of input values per kernel row and pixel: the whole row's taps where they are
    // adjacent (a block, dilation 1: `k_w·in_c` consecutive floats, matching consecutive
    // weight rows), else one tap's `in_c`.
    let whole_rows = P > 1 && g.dilation_w == 1;
    let (runs, run) = if whole_rows {
        (1, g.k_w * ic)
    } else {
        (g.k_w, ic)
    };
    for ky in 0..g.k_h {
        let Some(iy) = g.row(oy, ky) else { continue };
        for r in 0..runs {
            let ix = if P == 1 {
                let Some(ix) = g.column(ox, r) else { continue };
                ix
            } else {
                ox * g.stride_w + r * g.dilation_w - g.pad_left
            };
            let at = ((b * g.in_h + iy) * g.in_w + ix) * ic;
            let x: [&[f32]; P] =
                core::array::from_fn(|q| &input[at + q * g.stride_w * ic..][..run]);
            let w = p.weights_io[((ky * g.k_w + r) * ic) * oc + c0..].as_ptr();
            for i in 0..run {
                // SAFETY: row i of the run's weights starts inside weights_io, which holds CH
                // floats past its last row.
                let (w0, w1) = unsafe {
                    (
                        _mm512_loadu_ps(w.add(i * oc)),
                        _mm512_loadu_ps(w.add(i * oc + 16)),
                    )
                };
                for q in 0..P {
                    let v = _mm512_set1_ps(x[q][i]);
                    acc[q][0] = _mm512_add_ps(acc[q][0], _mm512_mul_ps(v, w0));
                    acc[q][1] = _mm512_add_ps(acc[q][1], _mm512_mul_ps(v, w1));
                }
            }
        }
    }
    let (lo, hi) = (_mm512_set1_ps(p.act.0), _mm512_set1_ps(p.act.1));
    for (q, a) in acc.iter().enumerate() {
        // SAFETY: pixel q of `out` holds out_c floats; the masks stop there.
        unsafe {
            let o = out.add(q * oc + c0);
            _mm512_mask_storeu_ps(o, m[0], clamp(a[0], lo, hi));
            _mm512_mask_storeu_ps(o.wrapping_add(16), m[1], clamp(a[1], lo, hi));
        }
    }
}

/// F32 depthwise convolution, AVX-512.
pub(crate) fn depthwise(p: &PackedDepthwiseF32, input: &[f32], output: &mut [f32]) {
    super::assert_supported();
    let d = &p.params;
    if d.multiplier != 1 {
        return generic::depthwise::depthwise_f32(p, input, output);
    }
    assert_eq!(input.len(), d.input_len(), "depthwise: input length");
    assert_eq!(output.len(), d.output_len(), "depthwise: output length");
    let g = TapGeometry::from(d);
    let c = d.in_c;
    for t in Tiles::new(g) {
        let out = &mut output[t.pixel * c..][..t.pixels * c];
        for c0 in (0..c).step_by(CH) {
            // SAFETY: as in conv2d; every load is masked to the channels < c of a pixel
            // inside the input or of a tap's weights.
            unsafe {
                if t.pixels == PIXELS {
                    dw_tile::<PIXELS>(p, g, input, t.at, c0, out.as_mut_ptr())
                } else {
                    dw_tile::<1>(p, g, input, t.at, c0, out.as_mut_ptr())
                }
            }
        }
    }
}

/// Channels `c0..c0 + CH` (masked to c) of output pixels `ox..ox + P`, as [`conv_tile`].
///
/// # Safety
/// As the call in [`depthwise`].
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn dw_tile<const P: usize>(
    p: &PackedDepthwiseF32,
    g: TapGeometry,
    input: &[f32],
    [b, oy, ox]: [usize; 3],
    c0: usize,
    out: *mut f32,
) {
    let c = g.in_c;
    let m = masks(c - c0);
    // Masked loads of `n` channels at `ptr` (wrapping: a masked-off register is never read).
    let load = |ptr: *const f32| -> [__m512; 2] {
        // SAFETY: the caller's pointers address the chunk's channels < c.
        unsafe {
            [
                _mm512_maskz_loadu_ps(m[0], ptr),
                _mm512_maskz_loadu_ps(m[1], ptr.wrapping_add(16)),
            ]
        }
    };
    let bias = load(p.bias[c0..].as_ptr());
    let mut acc = [bias; P];
    for ky in 0..g.k_h {
        let Some(iy) = g.row(oy, ky) else { continue };
        for kx in 0..g.k_w {
            let ix = if P == 1 {
                let Some(ix) = g.column(ox, kx) else { continue };
                ix
            } else {
                ox * g.stride_w + kx * g.dilation_w - g.pad_left
            };
            let w = load(p.weights[(ky * g.k_w + kx) * c + c0..].as_ptr());
            for (q, a) in acc.iter_mut().enumerate() {
                let at = ((b * g.in_h + iy) * g.in_w + ix + q * g.stride_w) * c + c0;
                let x = load(input[at..].as_ptr());
                a[0] = _mm512_add_ps(a[0], _mm512_mul_ps(x[0], w[0]));
                a[1] = _mm512_add_ps(a[1], _mm512_mul_ps(x[1], w[1]));
            }
        }
    }
    let (lo, hi) = (_mm512_set1_ps(p.act.0), _mm512_set1_ps(p.act.1));
    for (q, a) in acc.iter().enumerate() {
        // SAFETY: pixel q of `out` holds c floats; the masks stop there.
        unsafe {
            let o = out.add(q * c + c0);
            _mm512_mask_storeu_ps(o, m[0], clamp(a[0], lo, hi));
            _mm512_mask_storeu_ps(o.wrapping_add(16), m[1], clamp(a[1], lo, hi));
        }
    }
}
