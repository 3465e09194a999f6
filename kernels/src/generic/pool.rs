//! Max/average pooling and global mean (int8 keep the input's quantization; f32).

use crate::params::{MAX_POOL_WINDOW, PoolParams};
use crate::quant::Requant;

/// Visits the valid window cells of output pixel (`b`, `oy`, `ox`): `f(input_pixel_offset)`.
fn for_each_cell(d: &PoolParams, b: usize, oy: usize, ox: usize, mut f: impl FnMut(usize)) {
    for ky in 0..d.k_h {
        let iy = (oy * d.stride_h + ky) as isize - d.pad_top as isize;
        if iy < 0 || iy as usize >= d.in_h {
            continue;
        }
        for kx in 0..d.k_w {
            let ix = (ox * d.stride_w + kx) as isize - d.pad_left as isize;
            if ix < 0 || ix as usize >= d.in_w {
                continue;
            }
            f(((b * d.in_h + iy as usize) * d.in_w + ix as usize) * d.channels);
        }
    }
}

fn check<T>(d: &PoolParams, input: &[T], output: &[T]) {
    d.check_lengths(input.len(), output.len());
}

/// Runs `reduce(cells, channel) -> value` for every output element.
fn pool<T: Copy>(
    d: &PoolParams,
    input: &[T],
    output: &mut [T],
    mut reduce: impl FnMut(&[usize], usize) -> T,
) {
    check(d, input, output);
    assert!(
        d.k_h * d.k_w <= MAX_POOL_WINDOW,
        "pool: window larger than {MAX_POOL_WINDOW} cells"
    );
    let mut buf = [0usize; MAX_POOL_WINDOW];
    for b in 0..d.batch {
        for oy in 0..d.out_h {
            for ox in 0..d.out_w {
                let mut n = 0;
                for_each_cell(d, b, oy, ox, |off| {
                    buf[n] = off;
                    n += 1;
                });
                let out =
                    &mut output[((b * d.out_h + oy) * d.out_w + ox) * d.channels..][..d.channels];
                for (c, o) in out.iter_mut().enumerate() {
                    *o = reduce(&buf[..n], c);
                }
            }
        }
    }
}

/// Int8 max pool (TFLite reference: max over valid cells, then the activation clamp).
pub(crate) fn max_pool_i8(d: &PoolParams, input: &[i8], output: &mut [i8]) {
    pool(d, input, output, |offs, c| {
        let m = offs
            .iter()
            .map(|&o| input[o + c] as i32)
            .max()
            .unwrap_or(d.act_min);
        m.clamp(d.act_min, d.act_max) as i8
    });
}

/// Int8 average pool (TFLite reference: sum of valid cells, divided rounding half away from
/// zero by their count).
pub(crate) fn avg_pool_i8(d: &PoolParams, input: &[i8], output: &mut [i8]) {
    pool(d, input, output, |offs, c| {
        let n = offs.len().max(1) as i32;
        let sum: i32 = offs.iter().map(|&o| input[o + c] as i32).sum();
        let avg = if sum > 0 {
            (sum + n / 2) / n
        } else {
            (sum - n / 2) / n
        };
        avg.clamp(d.act_min, d.act_max) as i8
    });
}

/// F32 max pool.
pub(crate) fn max_pool_f32(d: &PoolParams, input: &[f32], output: &mut [f32]) {
    pool(d, input, output, |offs, c| {
        offs.iter()
            .map(|&o| input[o + c])
            .fold(f32::NEG_INFINITY, f32::max)
    });
}

/// F32 average pool (padding excluded from the count).
pub(crate) fn avg_pool_f32(d: &PoolParams, input: &[f32], output: &mut [f32]) {
    pool(d, input, output, |offs, c| {
        offs.iter().map(|&o| input[o + c]).sum::<f32>() / offs.len().max(1) as f32
    });
}

/// Int8 mean over H and W of `[batch, pixels, channels]`:
/// `requant(Σ(x − in_zp)) + out_zp` with `requant = in_scale / (out_scale · pixels)`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn global_mean_i8(
    input: &[i8],
    batch: usize,
    pixels: usize,
    channels: usize,
    in_zp: i32,
    requant: Requant,
    out_zp: i32,
    output: &mut [i8],
) {
    assert_eq!(input.len(), batch * pixels * channels, "mean: input length");
    assert_eq!(output.len(), batch * channels, "mean: output length");
    // Channels in chunks summed pixel by pixel: contiguous rows, which the compiler
    // vectorizes, instead of one strided column per channel. Σ(x − zp) = Σx − pixels·zp.
    const CHUNK: usize = 128;
    let zp_total = in_zp.wrapping_mul(pixels as i32);
    for b in 0..batch {
        let image = &input[b * pixels * channels..][..pixels * channels];
        for c0 in (0..channels).step_by(CHUNK) {
            let n = CHUNK.min(channels - c0);
            let mut sums = [0i32; CHUNK];
            for px in image.chunks_exact(channels) {
                for (s, &x) in sums[..n].iter_mut().zip(&px[c0..c0 + n]) {
                    *s = s.wrapping_add(x as i32);
                }
            }
            for (o, &s) in output[b * channels + c0..][..n].iter_mut().zip(&sums[..n]) {
                let sum = s.wrapping_sub(zp_total);
                *o = (requant.apply(sum) + out_zp).clamp(-128, 127) as i8;
            }
        }
    }
}

/// F32 mean over H and W of `[batch, pixels, channels]`.
pub(crate) fn global_mean_f32(
    input: &[f32],
    batch: usize,
    pixels: usize,
    channels: usize,
    output: &mut [f32],
) {
    assert_eq!(input.len(), batch * pixels * channels, "mean: input length");
    assert_eq!(output.len(), batch * channels, "mean: output length");
    for b in 0..batch {
        for c in 0..channels {
            let sum: f32 = (0..pixels)
                .map(|p| input[(b * pixels + p) * channels + c])
                .sum();
            output[b * channels + c] = sum / pixels.max(1) as f32;
        }
    }
}
