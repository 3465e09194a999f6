//! Int8 max pool on 64 channels at a time: masked loads (masked-off lanes read as −128)
//! reduced with `vpmaxsb`, then the clamp and one masked store per output pixel, so any
//! channel count runs without a scalar tail. The window's valid cells are addressed from its
//! first one, with no per-cell bounds branch (the masked loads never touch a byte outside the
//! cell).

use core::arch::x86_64::*;

use crate::params::PoolParams;

/// Bit-exact with the reference `generic::pool::max_pool_i8`: the maximum over the window's
/// valid (unpadded) cells, then the activation clamp; no valid cell gives `act_min`.
pub(crate) fn max_pool_i8(d: &PoolParams, input: &[i8], output: &mut [i8]) {
    super::assert_supported();
    d.check_lengths(input.len(), output.len());
    // SAFETY: the CPU supports AVX-512 F/BW (asserted above); lengths asserted.
    unsafe { pool(d, input, output) }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
fn pool(d: &PoolParams, input: &[i8], output: &mut [i8]) {
    let c = d.channels;
    let lo = _mm512_set1_epi8(d.act_min.clamp(-128, 127) as i8);
    let hi = _mm512_set1_epi8(d.act_max.clamp(-128, 127) as i8);
    let min = _mm512_set1_epi8(i8::MIN);
    for b in 0..d.batch {
        for oy in 0..d.out_h {
            let rows = d.window_rows(oy);
            let (y_lo, y_hi) = (rows.start, rows.end);
            for ox in 0..d.out_w {
                let cols = d.window_cols(ox);
                let (x_lo, x_hi) = (cols.start, cols.end);
                let at = ((b * d.out_h + oy) * d.out_w + ox) * c;
                let out = &mut output[at..at + c];
                // The window's first valid cell; rows `y_hi − y_lo`, cells `x_hi − x_lo`.
                let first = ((b * d.in_h + y_lo) * d.in_w + x_lo) * c;
                let (row_step, cells) = (d.in_w * c, x_hi.saturating_sub(x_lo));
                if c <= 32 {
                    // Half vectors: a 64-byte load at a 28-byte pixel would cross a cache line
                    // every time.
                    let mask: __mmask32 = if c >= 32 { !0 } else { (1u32 << c) - 1 };
                    let min = _mm256_set1_epi8(i8::MIN);
                    let mut m = min;
                    for r in 0..y_hi.saturating_sub(y_lo) {
                        for x in 0..cells {
                            let at = first + r * row_step + x * c;
                            debug_assert!(at + c <= input.len());
                            // SAFETY: cell (y_lo + r, x_lo + x) is valid, so its c channels
                            // lie inside `input`; the mask selects exactly those.
                            let v = unsafe {
                                _mm256_mask_loadu_epi8(min, mask, input.as_ptr().add(at))
                            };
                            m = _mm256_max_epi8(m, v);
                        }
                    }
                    let v = _mm256_min_epi8(
                        _mm256_max_epi8(m, _mm512_castsi512_si256(lo)),
                        _mm512_castsi512_si256(hi),
                    );
                    // SAFETY: the mask selects out[..c].
                    unsafe { _mm256_mask_storeu_epi8(out.as_mut_ptr(), mask, v) };
                    continue;
                }
                for ch in (0..c).step_by(64) {
                    let left = c - ch;
                    let mask: __mmask64 = if left >= 64 { !0 } else { (1u64 << left) - 1 };
                    let mut m = min;
                    for r in 0..y_hi.saturating_sub(y_lo) {
                        for x in 0..cells {
                            let at = first + r * row_step + x * c + ch;
                            debug_assert!(at + left <= input.len());
                            // SAFETY: cell (y_lo + r, x_lo + x) is valid, so its channels
                            // ch..c lie inside `input`; the mask selects exactly those
                            // (masked-off lanes read as −128 and are never stored).
                            let v = unsafe {
                                _mm512_mask_loadu_epi8(min, mask, input.as_ptr().add(at))
                            };
                            m = _mm512_max_epi8(m, v);
                        }
                    }
                    let v = _mm512_min_epi8(_mm512_max_epi8(m, lo), hi);
                    // SAFETY: the mask selects out[ch..c], inside `out`.
                    unsafe { _mm512_mask_storeu_epi8(out[ch..].as_mut_ptr(), mask, v) };
                }
            }
        }
    }
}
