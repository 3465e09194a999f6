//! The f32 convolution blocked over output channels, in portable Rust for the compiler to
//! vectorize (the AVX2 tier compiles it with AVX2 enabled, `x86_64::avx2::float`; its
//! depthwise kernel is explicit there).
//!
//! Output channels are accumulated in chunks of up to `W` (16 on AVX2: two registers) for
//! [`PIXELS`] neighbouring output pixels of a row at once, eight independent accumulators: a
//! step multiplies one input value of each pixel by a contiguous row of weights (the weights
//! in `[tap][in][out]` order, [`PackedConvF32`]'s `weights_io`). Pixels whose window crosses
//! the left or right edge run one at a time. Every output still sums its bias, then the taps
//! in order (padding taps skipped), then the input channels in order, with a separate
//! multiply and add (Rust never contracts them into a fused multiply-add), so the results
//! equal the scalar reference's (`generic::conv::conv2d_f32`) bit for bit. Grouped
//! convolutions run the reference.
//!
//! The loops hold no closures but the array maps that slice the four pixels' inputs: a closure
//! is a function of its own, outside the tier's target features, and the tap iterators of a
//! first version were not inlined (11 ms instead of 1.8 for BlazeFace f32).

use crate::float::PackedConvF32;
use crate::float_window::{PIXELS, TapGeometry, Tiles};
use crate::generic;

/// Channels `0..n` in chunks of `W` (16, or 32 if a tier asks), then 16, 8, 4 and 1 as they fit: `$body`
/// with `$c0` the chunk's first channel and `$len` its width, a constant.
macro_rules! chunks {
    ($w:expr, $n:expr, |$c0:ident, $len:ident| $body:expr) => {{
        let n = $n;
        let mut $c0 = 0;
        while $c0 < n {
            let left = n - $c0;
            $c0 += if $w >= 32 && left >= 32 {
                const $len: usize = 32;
                $body;
                $len
            } else if left >= 16 {
                const $len: usize = 16;
                $body;
                $len
            } else if left >= 8 {
                const $len: usize = 8;
                $body;
                $len
            } else if left >= 4 {
                const $len: usize = 4;
                $body;
                $len
            } else {
                const $len: usize = 1;
                $body;
                $len
            };
        }
    }};
}

/// F32 convolution (groups 1; others run the reference), chunks of up to `W` channels.
#[inline(always)]
pub(crate) fn conv2d<const W: usize>(p: &PackedConvF32, input: &[f32], output: &mut [f32]) {
    let d = &p.params;
    if p.weights_io.is_empty() {
        return generic::conv::conv2d_f32(p, input, output);
    }
    assert_eq!(input.len(), d.input_len(), "conv2d: input length");
    assert_eq!(output.len(), d.output_len(), "conv2d: output length");
    let oc = d.out_c;
    let g = TapGeometry::from(d);
    // Whole kernel rows as one run where their taps are adjacent and there are several (a
    // separate instance: the pointwise loop is kept as it was compiled, 5 % faster).
    let whole = g.dilation_w == 1 && g.k_w > 1;
    for t in Tiles::new(g) {
        let out = &mut output[t.pixel * oc..][..t.pixels * oc];
        if t.pixels == PIXELS && whole {
            chunks!(W, oc, |c0, N| conv_block::<N, true>(
                p, g, input, t.at, c0, out
            ));
        } else if t.pixels == PIXELS {
            chunks!(W, oc, |c0, N| conv_block::<N, false>(
                p, g, input, t.at, c0, out
            ));
        } else {
            chunks!(W, oc, |c0, N| conv_chunk::<N>(p, g, input, t.at, c0, out));
        }
    }
}

/// Output channels `c0..c0 + N` of pixels `ox..ox + PIXELS` of a convolution, every
/// horizontal tap inside the row; `WHOLE`: each kernel row's taps as one run (dilation 1).
#[inline(always)]
fn conv_block<const N: usize, const WHOLE: bool>(
    p: &PackedConvF32,
    g: TapGeometry,
    input: &[f32],
    [b, oy, ox]: [usize; 3],
    c0: usize,
    out: &mut [f32],
) {
    let (ic, oc) = (g.in_c, p.params.out_c);
    let bias: [f32; N] = p.bias[c0..c0 + N].try_into().expect("N channels");
    let mut acc = [bias; PIXELS];
    // One run of input values per kernel row and pixel: the whole row's taps (`WHOLE`,
    // dilation 1: `k_w·in_c` consecutive floats, matching consecutive weight rows; a
    // 3-channel first layer then runs 15 values at a time, not 3), else one tap's `in_c`.
    let (runs, run) = if WHOLE { (1, g.k_w * ic) } else { (g.k_w, ic) };
    for ky in 0..g.k_h {
        let Some(iy) = g.row(oy, ky) else { continue };
        for r in 0..runs {
            let tap = ky * g.k_w + r;
            let ix = ox * g.stride_w + r * g.dilation_w - g.pad_left;
            let at = ((b * g.in_h + iy) * g.in_w + ix) * ic;
            let step = g.stride_w * ic;
            let x = [0, 1, 2, 3].map(|q| &input[at + q * step..][..run]);
            let w_tap = &p.weights_io[tap * ic * oc..][..run * oc];
            for i in 0..run {
                let w: &[f32; N] = w_tap[i * oc + c0..][..N].try_into().expect("N weights");
                // Loads (and their bounds checks) first, so that the arithmetic below is one
                // branch-free block the compiler turns into vector operations.
                let v = [x[0][i], x[1][i], x[2][i], x[3][i]];
                for q in 0..PIXELS {
                    for j in 0..N {
                        acc[q][j] += v[q] * w[j];
                    }
                }
            }
        }
    }
    store(&acc, out, oc, c0, p.act);
}

/// Output channels `c0..c0 + N` of one pixel of a convolution (any window).
#[inline(always)]
fn conv_chunk<const N: usize>(
    p: &PackedConvF32,
    g: TapGeometry,
    input: &[f32],
    [b, oy, ox]: [usize; 3],
    c0: usize,
    out: &mut [f32],
) {
    let (ic, oc) = (g.in_c, p.params.out_c);
    let mut acc: [f32; N] = p.bias[c0..c0 + N].try_into().expect("N channels");
    for ky in 0..g.k_h {
        let Some(iy) = g.row(oy, ky) else { continue };
        for kx in 0..g.k_w {
            let Some(ix) = g.column(ox, kx) else { continue };
            let tap = ky * g.k_w + kx;
            let src = ((b * g.in_h + iy) * g.in_w + ix) * ic;
            for (i, &x) in input[src..src + ic].iter().enumerate() {
                let w: &[f32; N] = p.weights_io[(tap * ic + i) * oc + c0..][..N]
                    .try_into()
                    .expect("N weights");
                for j in 0..N {
                    acc[j] += x * w[j];
                }
            }
        }
    }
    store(&[acc], out, 0, c0, p.act);
}

/// Clamps the accumulators of `P` pixels (`stride` floats apart in `out`) into channels
/// `c0..c0 + N` of each.
#[inline(always)]
fn store<const N: usize, const P: usize>(
    acc: &[[f32; N]; P],
    out: &mut [f32],
    stride: usize,
    c0: usize,
    (lo, hi): (f32, f32),
) {
    for (q, a) in acc.iter().enumerate() {
        for (o, &v) in out[q * stride + c0..][..N].iter_mut().zip(a) {
            *o = v.clamp(lo, hi);
        }
    }
}
