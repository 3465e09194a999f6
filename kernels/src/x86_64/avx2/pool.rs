//! Int8 max pool: each output pixel's window reduced with `vpmaxsb`, 32 channels at a time
//! (16 when there are fewer than 32). A channel count that is not a multiple of the width
//! ends with one vector overlapping the previous one: the maximum is per channel, so channels
//! computed twice get the same value.

use core::arch::x86_64::*;

use crate::params::PoolParams;

/// Bit-exact with the reference `generic::pool::max_pool_i8`: the maximum over the window's
/// valid (unpadded) cells, then the activation clamp; no valid cell gives `act_min`.
pub(crate) fn max_pool_i8(d: &PoolParams, input: &[i8], output: &mut [i8]) {
    super::assert_supported();
    let c = d.channels;
    d.check_lengths(input.len(), output.len());
    let (lo, hi) = (
        d.act_min.clamp(-128, 127) as i8,
        d.act_max.clamp(-128, 127) as i8,
    );
    // Channels handled by vectors: all of them from 16 on, none below.
    let vectorized = if c >= 16 { c } else { 0 };
    for b in 0..d.batch {
        for oy in 0..d.out_h {
            // Valid window rows: iy = oy·stride + ky − pad_top in [0, in_h).
            let y0 = (oy * d.stride_h) as isize - d.pad_top as isize;
            let rows =
                (y0.max(0) as usize)..((y0 + d.k_h as isize).clamp(0, d.in_h as isize) as usize);
            for ox in 0..d.out_w {
                let x0 = (ox * d.stride_w) as isize - d.pad_left as isize;
                let cols = (x0.max(0) as usize)
                    ..((x0 + d.k_w as isize).clamp(0, d.in_w as isize) as usize);
                let at = ((b * d.out_h + oy) * d.out_w + ox) * c;
                let out = &mut output[at..at + c];
                let cell = |iy: usize, ix: usize| ((b * d.in_h + iy) * d.in_w + ix) * c;
                if vectorized > 0 {
                    // SAFETY: AVX2 is available (asserted); every cell offset plus c lies in
                    // `input` (rows/cols are clamped to the image), `out` holds c ≥ 16.
                    unsafe { max_vectors(input, out, &rows, &cols, &cell, lo, hi) };
                }
                for (ch, o) in out.iter_mut().enumerate().skip(vectorized) {
                    let mut m = i8::MIN;
                    for iy in rows.clone() {
                        for ix in cols.clone() {
                            m = m.max(input[cell(iy, ix) + ch]);
                        }
                    }
                    *o = m.clamp(lo, hi);
                }
            }
        }
    }
}

/// All channels (`out.len()`, at least 16) of one output pixel.
///
/// # Safety
/// AVX2 available; `cell(iy, ix) + out.len() <= input.len()` for every row and column given,
/// and `out.len() >= 16`.
#[target_feature(enable = "avx2")]
unsafe fn max_vectors(
    input: &[i8],
    out: &mut [i8],
    rows: &core::ops::Range<usize>,
    cols: &core::ops::Range<usize>,
    cell: &impl Fn(usize, usize) -> usize,
    lo: i8,
    hi: i8,
) {
    let c = out.len();
    // The window's cells, channel `ch` on: slices of c − ch bytes.
    let cells = |ch: usize| {
        rows.clone().flat_map(move |iy| {
            cols.clone()
                .map(move |ix| input[cell(iy, ix) + ch..][..c - ch].as_ptr())
        })
    };
    if c >= 32 {
        let (vlo, vhi) = (_mm256_set1_epi8(lo), _mm256_set1_epi8(hi));
        let mut ch = 0;
        loop {
            let at = ch.min(c - 32);
            let mut m = _mm256_set1_epi8(i8::MIN);
            for p in cells(at) {
                // SAFETY: `p` starts a slice of c − at ≥ 32 bytes.
                m = _mm256_max_epi8(m, unsafe { _mm256_loadu_si256(p.cast()) });
            }
            let v = _mm256_min_epi8(_mm256_max_epi8(m, vlo), vhi);
            // SAFETY: out[at..] holds c − at ≥ 32 bytes.
            unsafe { _mm256_storeu_si256(out[at..].as_mut_ptr().cast(), v) };
            if at + 32 == c {
                break;
            }
            ch += 32;
        }
    } else {
        let (vlo, vhi) = (_mm_set1_epi8(lo), _mm_set1_epi8(hi));
        for at in [0, c - 16] {
            let mut m = _mm_set1_epi8(i8::MIN);
            for p in cells(at) {
                // SAFETY: `p` starts a slice of c − at ≥ 16 bytes.
                m = _mm_max_epi8(m, unsafe { _mm_loadu_si128(p.cast()) });
            }
            let v = _mm_min_epi8(_mm_max_epi8(m, vlo), vhi);
            // SAFETY: out[at..] holds c − at ≥ 16 bytes.
            unsafe { _mm_storeu_si128(out[at..].as_mut_ptr().cast(), v) };
        }
    }
}
