//! Resize (nearest, bilinear) with TFLite's `align_corners` / `half_pixel_centers` mapping.
//!
//! Bilinear int8 interpolates in f32 and rounds half away from zero (TFLite's float-weight
//! reference form, not its 10-bit fixed-point `ResizeBilinearInteger`).

use core::ops::Range;

use crate::params::ResizeOptions;

fn scale(input: usize, output: usize, align: bool) -> f32 {
    if align && output > 1 {
        (input - 1) as f32 / (output - 1) as f32
    } else {
        input as f32 / output as f32
    }
}

/// TFLite's `GetNearestNeighbor`.
fn nearest_index(out: usize, input: usize, output: usize, o: ResizeOptions) -> usize {
    let s = scale(input, output, o.align_corners);
    let offset = if o.half_pixel_centers { 0.5 } else { 0.0 };
    let v = (out as f32 + offset) * s;
    let i = if o.align_corners {
        v.round() as i64
    } else {
        v.floor() as i64
    };
    i.clamp(0, input as i64 - 1) as usize
}

/// TFLite's `ComputeInterpolationValues`: (position, lower, upper).
fn interp(out: usize, input: usize, output: usize, o: ResizeOptions) -> (f32, usize, usize) {
    let s = scale(input, output, o.align_corners);
    let v = if o.half_pixel_centers {
        (out as f32 + 0.5) * s - 0.5
    } else {
        out as f32 * s
    };
    let lo = (v.floor() as i64).max(0) as usize;
    let hi = (v.ceil() as i64).min(input as i64 - 1).max(0) as usize;
    (v, lo.min(input - 1), hi)
}

fn check<T>(input: &[T], in_shape: [usize; 4], out_h: usize, out_w: usize, output: &[T]) {
    assert_eq!(
        input.len(),
        in_shape.iter().product::<usize>(),
        "resize: input length"
    );
    assert_eq!(
        output.len(),
        in_shape[0] * out_h * out_w * in_shape[3],
        "resize: output length"
    );
    assert!(in_shape[1] > 0 && in_shape[2] > 0, "resize: empty input");
}

/// Nearest-neighbour resize of `[n, h, w, c]` to `[n, out_h, out_w, c]`, any element type.
pub(crate) fn resize_nearest<T: Copy>(
    input: &[T],
    in_shape: [usize; 4],
    out_h: usize,
    out_w: usize,
    o: ResizeOptions,
    output: &mut [T],
) {
    check(input, in_shape, out_h, out_w, output);
    let [n, h, w, c] = in_shape;
    for b in 0..n {
        for oy in 0..out_h {
            let iy = nearest_index(oy, h, out_h, o);
            for ox in 0..out_w {
                let ix = nearest_index(ox, w, out_w, o);
                let src = ((b * h + iy) * w + ix) * c;
                let dst = ((b * out_h + oy) * out_w + ox) * c;
                output[dst..dst + c].copy_from_slice(&input[src..src + c]);
            }
        }
    }
}

/// The weights of an output pixel's four source pixels: rows `y0 = 1 − dy`, `y1 = dy`,
/// columns `x0 = 1 − dx`, `x1 = dx`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Weights {
    pub y0: f32,
    pub y1: f32,
    pub x0: f32,
    pub x1: f32,
}

impl Weights {
    /// One element from its four sources (see [`Corners`]): `a·y0·x0 + b·y1·x0 + c·y0·x1 +
    /// d·y1·x1`, every product and sum in this order (left to right). The SIMD tiers repeat
    /// exactly these operations lane by lane, so they are bit-exact with this.
    #[inline]
    pub(crate) fn blend(self, a: f32, b: f32, c: f32, d: f32) -> f32 {
        a * self.y0 * self.x0
            + b * self.y1 * self.x0
            + c * self.y0 * self.x1
            + d * self.y1 * self.x1
    }
}

/// An output pixel's four source pixels, `c` elements each: (y0, x0), (y1, x0), (y0, x1),
/// (y1, x1).
pub(crate) type Corners<'a, T> = [&'a [T]; 4];

/// Rounds half away from zero and saturates to int8 (TFLite's float-weight bilinear form).
#[inline]
pub(crate) fn round_i8(v: f32) -> i8 {
    v.round().clamp(-128.0, 127.0) as i8
}

/// The bilinear resize's walk over output rows `rows` (of all images' `n · out_h` rows,
/// image-major; `output` holds exactly those rows): checks the shapes, then hands every output
/// pixel's corners, weights and `c` output elements to `pixel` (the per-tier channel loop).
#[allow(clippy::too_many_arguments)]
pub(crate) fn bilinear_pixels<T: Copy>(
    input: &[T],
    in_shape: [usize; 4],
    out_h: usize,
    out_w: usize,
    o: ResizeOptions,
    rows: Range<usize>,
    output: &mut [T],
    mut pixel: impl FnMut(Corners<'_, T>, Weights, &mut [T]),
) {
    let [n, h, w, c] = in_shape;
    assert_eq!(
        input.len(),
        in_shape.iter().product::<usize>(),
        "resize: input length"
    );
    assert!(h > 0 && w > 0, "resize: empty input");
    assert!(
        rows.start <= rows.end && rows.end <= n * out_h,
        "resize: rows {rows:?} of {}",
        n * out_h
    );
    assert_eq!(
        output.len(),
        rows.len() * out_w * c,
        "resize: output length"
    );
    if c == 0 {
        return;
    }
    let px = |b: usize, yy: usize, xx: usize| &input[((b * h + yy) * w + xx) * c..][..c];
    let mut dst = output.chunks_exact_mut(c);
    for row in rows {
        let (b, oy) = (row / out_h, row % out_h);
        let (y, y0, y1) = interp(oy, h, out_h, o);
        let dy = y - y0 as f32;
        for ox in 0..out_w {
            let (x, x0, x1) = interp(ox, w, out_w, o);
            let dx = x - x0 as f32;
            let weights = Weights {
                y0: 1.0 - dy,
                y1: dy,
                x0: 1.0 - dx,
                x1: dx,
            };
            let corners = [px(b, y0, x0), px(b, y1, x0), px(b, y0, x1), px(b, y1, x1)];
            let out = dst.next().expect("resize: output length checked");
            pixel(corners, weights, out);
        }
    }
}

/// Bilinear resize, f32: output rows `rows` ([`bilinear_pixels`]).
pub(crate) fn resize_bilinear_f32(
    input: &[f32],
    in_shape: [usize; 4],
    out_h: usize,
    out_w: usize,
    o: ResizeOptions,
    rows: Range<usize>,
    output: &mut [f32],
) {
    bilinear_pixels(
        input,
        in_shape,
        out_h,
        out_w,
        o,
        rows,
        output,
        |k, w, dst| {
            for (ch, d) in dst.iter_mut().enumerate() {
                *d = w.blend(k[0][ch], k[1][ch], k[2][ch], k[3][ch]);
            }
        },
    );
}

/// Bilinear resize, int8 (same scale and zero point in and out): output rows `rows`
/// ([`bilinear_pixels`]).
pub(crate) fn resize_bilinear_i8(
    input: &[i8],
    in_shape: [usize; 4],
    out_h: usize,
    out_w: usize,
    o: ResizeOptions,
    rows: Range<usize>,
    output: &mut [i8],
) {
    bilinear_pixels(
        input,
        in_shape,
        out_h,
        out_w,
        o,
        rows,
        output,
        |k, w, dst| {
            for (ch, d) in dst.iter_mut().enumerate() {
                let at = |i: usize| f32::from(k[i][ch]);
                *d = round_i8(w.blend(at(0), at(1), at(2), at(3)));
            }
        },
    );
}
