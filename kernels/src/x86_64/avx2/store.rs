//! Stores of the first `n` bytes of a vector, for the channel tails of the int8 kernels'
//! outputs: without a call (a copy through a stack buffer was a `memcpy` call per row).

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
