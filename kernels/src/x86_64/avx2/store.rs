//! Stores of the first `n` bytes (or floats) of a vector, for the channel tails of the
//! kernels' outputs: without a call (a copy through a stack buffer was a `memcpy` call per
//! row or pixel).

use core::arch::x86_64::*;

/// Stores the first `n` (at most 16) bytes of `bytes` at `dst`: one 16-byte store, or up to
/// four stores of 8, 4, 2 and 1 bytes (the branches depend on `n` only, which a kernel keeps
/// for a whole call).
///
/// # Safety
/// `dst` is writable for `n` bytes.
#[inline]
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn store_first(dst: *mut i8, n: usize, bytes: __m128i) {
    debug_assert!(n <= 16);
    if n >= 16 {
        // SAFETY: 16 writable bytes (contract).
        return unsafe { _mm_storeu_si128(dst.cast(), bytes) };
    }
    let (mut v, mut d) = (bytes, dst);
    // SAFETY: each store writes the next 8, 4, 2 or 1 of the `n` writable bytes (contract):
    // the parts sum to `n`.
    unsafe {
        if n & 8 != 0 {
            _mm_storel_epi64(d.cast(), v);
            (v, d) = (_mm_srli_si128(v, 8), d.add(8));
        }
        if n & 4 != 0 {
            d.cast::<i32>().write_unaligned(_mm_cvtsi128_si32(v));
            (v, d) = (_mm_srli_si128(v, 4), d.add(4));
        }
        if n & 2 != 0 {
            d.cast::<i16>().write_unaligned(_mm_cvtsi128_si32(v) as i16);
            (v, d) = (_mm_srli_si128(v, 2), d.add(2));
        }
        if n & 1 != 0 {
            d.write(_mm_cvtsi128_si32(v) as i8);
        }
    }
}

/// Stores the first `n` (at most 8) floats of `v` at `dst`: one 32-byte store, or up to three
/// stores of 4, 2 and 1 floats (bits moved as they are: NaN payloads and −0.0 kept).
///
/// # Safety
/// `dst` is writable for `n` floats.
#[inline]
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn store_first_ps(dst: *mut f32, n: usize, v: __m256) {
    debug_assert!(n <= 8);
    if n >= 8 {
        // SAFETY: 8 writable floats (contract).
        return unsafe { _mm256_storeu_ps(dst, v) };
    }
    let (mut x, mut d) = (_mm256_castps256_ps128(v), dst);
    // SAFETY: each store writes the next 4, 2 or 1 of the `n` writable floats (contract).
    unsafe {
        if n & 4 != 0 {
            _mm_storeu_ps(d, x);
            (x, d) = (_mm256_extractf128_ps(v, 1), d.add(4));
        }
        if n & 2 != 0 {
            _mm_storel_epi64(d.cast(), _mm_castps_si128(x));
            (x, d) = (_mm_movehl_ps(x, x), d.add(2));
        }
        if n & 1 != 0 {
            _mm_store_ss(d, x);
        }
    }
}
