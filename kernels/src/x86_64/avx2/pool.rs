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
    // A window inside the image: its cells' offsets from its first cell, computed once.
    let cells = d.k_h * d.k_w;
    let mut rel = [0usize; MAX_CELLS];
    if cells <= MAX_CELLS {
        for (j, r) in rel.iter_mut().take(cells).enumerate() {
            *r = ((j / d.k_w) * d.in_w + j % d.k_w) * c;
        }
    }
    let rel = &rel[..cells.min(MAX_CELLS)];
    for b in 0..d.batch {
        for oy in 0..d.out_h {
            let rows = d.window_rows(oy);
            for ox in 0..d.out_w {
                let cols = d.window_cols(ox);
                let at = ((b * d.out_h + oy) * d.out_w + ox) * c;
                let out = &mut output[at..at + c];
                let cell = |iy: usize, ix: usize| ((b * d.in_h + iy) * d.in_w + ix) * c;
                if vectorized > 0 && rel.len() == cells && rows.len() * cols.len() == cells {
                    let base = cell(rows.start, cols.start);
                    // The window's last cell is its farthest.
                    assert!(base + rel[cells - 1] + c <= input.len(), "max pool: window");
                    // SAFETY: AVX2 is available (asserted); every offset plus c lies in
                    // `input` (asserted for the farthest), `out` holds c ≥ 16.
                    unsafe { max_gathered(input, base, rel, out, lo, hi, true) };
                } else if vectorized > 0 {
                    // SAFETY: AVX2 is available (asserted); `out` holds c ≥ 16.
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

/// Window cells gathered at a time (5 × 5); larger windows run in groups of this many.
const MAX_CELLS: usize = 25;

/// All channels (`out.len()`, at least 16) of one output pixel: the window's cell offsets
/// gathered (and checked) once, in groups of [`MAX_CELLS`], for all channel vectors.
///
/// # Safety
/// AVX2 available; `out.len() >= 16`.
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
    let mut cells = rows
        .clone()
        .flat_map(|iy| cols.clone().map(move |ix| cell(iy, ix)));
    let mut offs = [0usize; MAX_CELLS];
    let mut first = true;
    loop {
        let mut n = 0;
        for (o, at) in offs.iter_mut().zip(cells.by_ref()) {
            assert!(at + c <= input.len(), "max pool: cell outside the input");
            *o = at;
            n += 1;
        }
        if n == 0 && !first {
            return;
        }
        // SAFETY: AVX2 (contract); every offset plus c lies in `input` (asserted).
        unsafe { max_gathered(input, 0, &offs[..n], out, lo, hi, first) };
        first = false;
    }
}

/// The maximum over the cells at `base + offs` in `input` (with `out`'s values too unless `first`:
/// a later group of a large window; the clamp commutes with it), clamped, into `out`: raw
/// loads, no per-cell iteration or bounds checks inside the channel loop (2 × 2 at
/// BlazeFace's 28 channels: an iterator per channel vector spent ≈ 80 cycles a pixel). No
/// cells and `first`: every channel is `act_min`, as in the reference.
///
/// # Safety
/// AVX2 available; `base + off + out.len() <= input.len()` for every offset; `out.len() >= 16`.
#[target_feature(enable = "avx2")]
unsafe fn max_gathered(
    input: &[i8],
    base: usize,
    offs: &[usize],
    out: &mut [i8],
    lo: i8,
    hi: i8,
    first: bool,
) {
    let c = out.len();
    // SAFETY: `base` plus any offset lies inside `input` (contract).
    let (src, dst) = (unsafe { input.as_ptr().add(base) }, out.as_mut_ptr());
    if c >= 32 {
        let (vlo, vhi) = (_mm256_set1_epi8(lo), _mm256_set1_epi8(hi));
        let mut ch = 0;
        loop {
            let at = ch.min(c - 32);
            let mut m = if first {
                _mm256_set1_epi8(i8::MIN)
            } else {
                // SAFETY: at + 32 ≤ c = out.len().
                unsafe { _mm256_loadu_si256(dst.add(at).cast()) }
            };
            for &o in offs {
                // SAFETY: base + o + at + 32 ≤ base + o + c ≤ input.len() (contract).
                m = _mm256_max_epi8(m, unsafe { _mm256_loadu_si256(src.add(o + at).cast()) });
            }
            let v = _mm256_min_epi8(_mm256_max_epi8(m, vlo), vhi);
            // SAFETY: at + 32 ≤ c = out.len().
            unsafe { _mm256_storeu_si256(dst.add(at).cast(), v) };
            if at + 32 == c {
                break;
            }
            ch += 32;
        }
    } else {
        let (vlo, vhi) = (_mm_set1_epi8(lo), _mm_set1_epi8(hi));
        for at in [0, c - 16] {
            let mut m = if first {
                _mm_set1_epi8(i8::MIN)
            } else {
                // SAFETY: at + 16 ≤ c = out.len().
                unsafe { _mm_loadu_si128(dst.add(at).cast()) }
            };
            for &o in offs {
                // SAFETY: base + o + at + 16 ≤ base + o + c ≤ input.len() (contract, c ≥ 16).
                m = _mm_max_epi8(m, unsafe { _mm_loadu_si128(src.add(o + at).cast()) });
            }
            let v = _mm_min_epi8(_mm_max_epi8(m, vlo), vhi);
            // SAFETY: at + 16 ≤ c = out.len().
            unsafe { _mm_storeu_si128(dst.add(at).cast(), v) };
        }
    }
}
