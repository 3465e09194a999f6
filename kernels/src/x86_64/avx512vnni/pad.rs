//! Int8 pad: each output pixel is filled and its input pixel (if any) copied in with masked
//! 64-byte stores, so the channel padding that residual blocks use (24 → 28 channels, say)
//! costs three vector operations a pixel instead of two short `memcpy` calls.

use core::arch::x86_64::*;

/// Bit-exact with the reference `generic::layout::pad`: `shape` padded by
/// `pads[axis] = (before, after)` with `value`.
pub(crate) fn pad_i8(
    input: &[i8],
    shape: [usize; 4],
    pads: [(usize, usize); 4],
    value: i8,
    out: &mut [i8],
) {
    super::assert_supported();
    let os = crate::generic::layout::padded_shape(input.len(), shape, pads, out.len());
    // SAFETY: the CPU supports AVX-512 F/BW (asserted above); lengths asserted.
    unsafe { fill(input, shape, pads, os, value, out) }
}

#[target_feature(enable = "avx512f,avx512bw")]
fn fill(
    input: &[i8],
    shape: [usize; 4],
    pads: [(usize, usize); 4],
    os: [usize; 4],
    value: i8,
    out: &mut [i8],
) {
    let v = _mm512_set1_epi8(value);
    let (c, oc, before) = (shape[3], os[3], pads[3].0);
    let inside = |i: usize, axis: usize| i.checked_sub(pads[axis].0).filter(|&x| x < shape[axis]);
    let mut pixels = out.chunks_exact_mut(oc);
    for n in 0..os[0] {
        for h in 0..os[1] {
            let row = inside(n, 0).zip(inside(h, 1));
            for (w, dst) in (0..os[2]).zip(pixels.by_ref()) {
                let Some(src) = row
                    .zip(inside(w, 2))
                    .map(|((n, h), w)| ((n * shape[1] + h) * shape[2] + w) * c)
                else {
                    store(dst, None, v);
                    continue;
                };
                let src = &input[src..src + c];
                if before == 0 && oc <= 64 {
                    // One masked load over the fill value and one store: the usual channel
                    // padding (24 → 28 channels, say).
                    // SAFETY: the masks select src's c bytes and dst's oc bytes.
                    unsafe {
                        let x = _mm512_mask_loadu_epi8(v, mask_of(c), src.as_ptr());
                        _mm512_mask_storeu_epi8(dst.as_mut_ptr(), mask_of(oc), x);
                    }
                } else {
                    store(dst, None, v);
                    store(&mut dst[before..before + c], Some(src), v);
                }
            }
        }
    }
}

/// Writes `dst` from `src` (same length) or, without one, with `v`'s bytes; 64 bytes at a
/// time, the last piece through a mask.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
fn store(dst: &mut [i8], src: Option<&[i8]>, v: __m512i) {
    let n = dst.len();
    let mut i = 0;
    while i < n {
        let left = n - i;
        let mask = mask_of(left);
        // SAFETY: the mask selects bytes i..min(i + 64, n), inside `dst` and (when given)
        // inside `src`, which has dst's length; masked-off bytes are neither read nor written.
        unsafe {
            let x = match src {
                Some(s) => _mm512_maskz_loadu_epi8(mask, s.as_ptr().add(i)),
                None => v,
            };
            _mm512_mask_storeu_epi8(dst.as_mut_ptr().add(i), mask, x);
        }
        i += 64;
    }
}

/// The first `min(n, 64)` bytes.
#[inline]
fn mask_of(n: usize) -> __mmask64 {
    if n >= 64 { !0 } else { (1u64 << n) - 1 }
}
