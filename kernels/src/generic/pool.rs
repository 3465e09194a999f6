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

/// F32 max pool: `fold(−∞, f32::max)` over the valid cells in order, per channel.
pub(crate) fn max_pool_f32(d: &PoolParams, input: &[f32], output: &mut [f32]) {
    pool_f32(d, input, output, f32::NEG_INFINITY, f32::max, |m, _| m);
}

/// F32 average pool (padding excluded from the count): the sum over the valid cells in order,
/// divided by their count.
pub(crate) fn avg_pool_f32(d: &PoolParams, input: &[f32], output: &mut [f32]) {
    pool_f32(
        d,
        input,
        output,
        -0.0, // as `Iterator::sum` starts: a sum of −0.0 cells stays −0.0
        |s, x| s + x,
        |s, n| s / n.max(1) as f32,
    );
}

/// For every output pixel: `o = init`, then `o = step(o, x)` for each valid cell in order,
/// then `o = finish(o, cells)`, per channel. The channels are the inner loop, so the compiler
/// vectorizes it; each channel's fold is the same sequence as one channel at a time.
fn pool_f32(
    d: &PoolParams,
    input: &[f32],
    output: &mut [f32],
    init: f32,
    step: impl Fn(f32, f32) -> f32,
    finish: impl Fn(f32, usize) -> f32,
) {
    check(d, input, output);
    let c = d.channels;
    for b in 0..d.batch {
        for oy in 0..d.out_h {
            for ox in 0..d.out_w {
                let out = &mut output[((b * d.out_h + oy) * d.out_w + ox) * c..][..c];
                out.fill(init);
                let mut cells = 0;
                for_each_cell(d, b, oy, ox, |off| {
                    for (o, &x) in out.iter_mut().zip(&input[off..off + c]) {
                        *o = step(*o, x);
                    }
                    cells += 1;
                });
                for o in out.iter_mut() {
                    *o = finish(*o, cells);
                }
            }
        }
    }
}

/// Channels per call of a [`MeanChunk`] function.
pub(crate) const MEAN_CHUNK: usize = 128;

/// The global mean's output arithmetic: `requant(Σx − zp_total) + out_zp`, clamped to int8.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MeanQuant {
    /// `pixels · in_zp` (wrapping): Σ(x − zp) = Σx − pixels·zp.
    pub zp_total: i32,
    pub requant: Requant,
    pub out_zp: i32,
}

impl MeanQuant {
    /// The outputs of channel sums `sums` (the reference arithmetic).
    pub(crate) fn finish(&self, sums: &[i32], out: &mut [i8]) {
        for (o, &s) in out.iter_mut().zip(sums) {
            let sum = s.wrapping_sub(self.zp_total);
            *o = (self.requant.apply(sum) + self.out_zp).clamp(-128, 127) as i8;
        }
    }
}

/// Writes `out[i]`, the mean of channel `c0 + i` over every pixel of `image` (`[pixels,
/// channels]`), for `i < out.len()` (at most [`MEAN_CHUNK`]). One per tier: [`mean_chunk`]
/// here, SIMD forms in the x86_64 tiers, all equal to it.
pub(crate) type MeanChunk =
    fn(image: &[i8], channels: usize, c0: usize, q: &MeanQuant, out: &mut [i8]);

/// Panics unless `image` is whole pixels of `channels` and `c0 .. c0 + n` (at most
/// [`MEAN_CHUNK`]) lies inside a pixel: what every [`MeanChunk`] relies on.
pub(crate) fn check_mean_chunk(image: &[i8], channels: usize, c0: usize, n: usize) {
    assert!(
        channels > 0
            && image.len().is_multiple_of(channels)
            && n <= MEAN_CHUNK
            && c0 + n <= channels,
        "mean: channel range"
    );
}

/// Adds to `sums[i]` channel `c0 + i` of every pixel of `image`, wrapping like
/// `i32::wrapping_add`: pixel by pixel over contiguous channel runs (which the compiler
/// vectorizes) instead of one strided column per channel.
pub(crate) fn mean_sums(image: &[i8], channels: usize, c0: usize, sums: &mut [i32]) {
    let n = sums.len();
    for px in image.chunks_exact(channels) {
        for (s, &x) in sums.iter_mut().zip(&px[c0..c0 + n]) {
            *s = s.wrapping_add(x as i32);
        }
    }
}

/// The reference [`MeanChunk`].
pub(crate) fn mean_chunk(image: &[i8], channels: usize, c0: usize, q: &MeanQuant, out: &mut [i8]) {
    let mut sums = [0i32; MEAN_CHUNK];
    let sums = &mut sums[..out.len()];
    mean_sums(image, channels, c0, sums);
    q.finish(sums, out);
}

/// Int8 mean over H and W of `[batch, pixels, channels]`:
/// `requant(Σ(x − in_zp)) + out_zp` with `requant = in_scale / (out_scale · pixels)`, in
/// chunks of channels through `chunk` (a tier's [`MeanChunk`]).
#[allow(clippy::too_many_arguments)]
pub(crate) fn global_mean_i8_with(
    chunk: MeanChunk,
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
    let q = MeanQuant {
        zp_total: in_zp.wrapping_mul(pixels as i32),
        requant,
        out_zp,
    };
    for b in 0..batch {
        let image = &input[b * pixels * channels..][..pixels * channels];
        for c0 in (0..channels).step_by(MEAN_CHUNK) {
            let n = MEAN_CHUNK.min(channels - c0);
            chunk(
                image,
                channels,
                c0,
                &q,
                &mut output[b * channels + c0..][..n],
            );
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
