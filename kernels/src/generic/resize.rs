//! Resize (nearest, bilinear) with TFLite's `align_corners` / `half_pixel_centers` mapping.
//!
//! Bilinear int8 interpolates in f32 and rounds half away from zero (TFLite's float-weight
//! reference form, not its 10-bit fixed-point `ResizeBilinearInteger`).

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

#[allow(clippy::too_many_arguments)]
/// Bilinear resize; `load`/`store` convert elements to and from f32.
fn bilinear<T: Copy>(
    input: &[T],
    in_shape: [usize; 4],
    out_h: usize,
    out_w: usize,
    o: ResizeOptions,
    output: &mut [T],
    load: impl Fn(T) -> f32,
    store: impl Fn(f32) -> T,
) {
    check(input, in_shape, out_h, out_w, output);
    let [n, h, w, c] = in_shape;
    for b in 0..n {
        for oy in 0..out_h {
            let (y, y0, y1) = interp(oy, h, out_h, o);
            let dy = y - y0 as f32;
            for ox in 0..out_w {
                let (x, x0, x1) = interp(ox, w, out_w, o);
                let dx = x - x0 as f32;
                let at =
                    |yy: usize, xx: usize, ch: usize| load(input[((b * h + yy) * w + xx) * c + ch]);
                let dst = ((b * out_h + oy) * out_w + ox) * c;
                for ch in 0..c {
                    let v = at(y0, x0, ch) * (1.0 - dy) * (1.0 - dx)
                        + at(y1, x0, ch) * dy * (1.0 - dx)
                        + at(y0, x1, ch) * (1.0 - dy) * dx
                        + at(y1, x1, ch) * dy * dx;
                    output[dst + ch] = store(v);
                }
            }
        }
    }
}

/// Bilinear resize, f32.
pub(crate) fn resize_bilinear_f32(
    input: &[f32],
    in_shape: [usize; 4],
    out_h: usize,
    out_w: usize,
    o: ResizeOptions,
    output: &mut [f32],
) {
    bilinear(input, in_shape, out_h, out_w, o, output, |x| x, |v| v);
}

/// Bilinear resize, int8 (same scale and zero point in and out).
pub(crate) fn resize_bilinear_i8(
    input: &[i8],
    in_shape: [usize; 4],
    out_h: usize,
    out_w: usize,
    o: ResizeOptions,
    output: &mut [i8],
) {
    bilinear(
        input,
        in_shape,
        out_h,
        out_w,
        o,
        output,
        |x| x as f32,
        |v| v.round().clamp(-128.0, 127.0) as i8,
    );
}
