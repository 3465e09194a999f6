//! F32 max pool: each output pixel's valid window cells gathered once, then reduced with
//! `vmaxps`, 8 channels at a time; a channel count that is not a multiple of 8 ends with one
//! vector overlapping the previous one (the fold is per channel, so channels computed twice
//! get the same value).

use core::arch::x86_64::*;

use crate::params::{MAX_POOL_WINDOW, PoolParams};

/// Bit for bit the reference `generic::pool::max_pool_f32`, `fold(−∞, f32::max)` over the
/// valid cells in order: on x86, `f32::max(o, x)` is `isnan(o) ? x : vmaxps(x, o)` (LLVM's
/// `maxnum`), and `o` starts at −∞ and never becomes NaN (`vmaxps` returns its second
/// operand, `o`, when `x` is NaN or both are zeros), so `o = vmaxps(x, o)` is the same fold:
/// NaN cells skipped, a tie of zeros keeping the earlier cell's sign, no cell giving −∞.
pub(crate) fn max_pool_f32(d: &PoolParams, input: &[f32], output: &mut [f32]) {
    super::assert_supported();
    d.check_lengths(input.len(), output.len());
    assert!(
        d.k_h * d.k_w <= MAX_POOL_WINDOW,
        "pool: window larger than {MAX_POOL_WINDOW} cells"
    );
    // SAFETY: AVX2 is available (asserted).
    unsafe { pool(d, input, output) }
}

/// # Safety
/// AVX2 is available.
#[target_feature(enable = "avx2")]
fn pool(d: &PoolParams, input: &[f32], output: &mut [f32]) {
    let c = d.channels;
    let mut offs = [0usize; MAX_POOL_WINDOW];
    for b in 0..d.batch {
        for oy in 0..d.out_h {
            let rows = d.window_rows(oy);
            for ox in 0..d.out_w {
                let cols = d.window_cols(ox);
                let mut n = 0;
                for iy in rows.clone() {
                    for ix in cols.clone() {
                        let at = ((b * d.in_h + iy) * d.in_w + ix) * c;
                        assert!(at + c <= input.len(), "max pool: cell outside the input");
                        offs[n] = at;
                        n += 1;
                    }
                }
                let cells = &offs[..n];
                let out = &mut output[((b * d.out_h + oy) * d.out_w + ox) * c..][..c];
                if c >= 8 {
                    // SAFETY: AVX2 (contract); every cell's c floats lie in `input`
                    // (asserted); `out` holds c ≥ 8.
                    unsafe { max_vectors(input, cells, out) };
                } else {
                    for (ch, o) in out.iter_mut().enumerate() {
                        *o = cells
                            .iter()
                            .fold(f32::NEG_INFINITY, |m, &at| m.max(input[at + ch]));
                    }
                }
            }
        }
    }
}

/// `out[ch] = fold(−∞, vmaxps)` over `input[cell + ch]` for the cells in order, 8 channels a
/// vector, the last vector ending at `out.len()`.
///
/// # Safety
/// AVX2 is available; `cell + out.len() <= input.len()` for every cell; `out.len() >= 8`.
#[target_feature(enable = "avx2")]
unsafe fn max_vectors(input: &[f32], cells: &[usize], out: &mut [f32]) {
    let c = out.len();
    let (src, dst) = (input.as_ptr(), out.as_mut_ptr());
    let mut ch = 0;
    loop {
        let at = ch.min(c - 8);
        let mut m = _mm256_set1_ps(f32::NEG_INFINITY);
        for &cell in cells {
            // SAFETY: cell + at + 8 ≤ cell + c ≤ input.len() (contract).
            m = _mm256_max_ps(unsafe { _mm256_loadu_ps(src.add(cell + at)) }, m);
        }
        // SAFETY: at + 8 ≤ c = out.len().
        unsafe { _mm256_storeu_ps(dst.add(at), m) };
        if at + 8 == c {
            return;
        }
        ch += 8;
    }
}
