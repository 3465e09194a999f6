//! The int8 global mean's channel sums, 32 channels at a time in four i32 vectors (8-byte
//! loads widened with `vpmovsxbd`; channels past the last whole group of 8 in scalar code),
//! then the reference requantization per channel.

use core::arch::x86_64::*;

use crate::generic::pool::{MEAN_CHUNK, MeanQuant, check_mean_chunk, mean_sums};

/// The AVX2 `MeanChunk` (see `generic::pool::mean_chunk`), equal to it.
pub(crate) fn mean_chunk(image: &[i8], channels: usize, c0: usize, q: &MeanQuant, out: &mut [i8]) {
    super::assert_supported();
    check_mean_chunk(image, channels, c0, out.len());
    let mut sums = [0i32; MEAN_CHUNK];
    let sums = &mut sums[..out.len()];
    let whole = sums.len() / 8 * 8;
    let (vector, tail) = sums.split_at_mut(whole);
    for (k, part) in vector.chunks_mut(32).enumerate() {
        // SAFETY: the CPU supports AVX2 (asserted above); channels c0 + 32k .. + part lie
        // inside every pixel (asserted), `part` is whole groups of 8.
        unsafe { sums32(image, channels, c0 + 32 * k, part) };
    }
    mean_sums(image, channels, c0 + whole, tail);
    q.finish(sums, out);
}

/// Sums of channels `c0 .. c0 + part.len()` (a multiple of 8, at most 32) over every pixel,
/// added to `part`.
///
/// # Safety
/// The CPU supports AVX2; `c0 + part.len() <= channels`, `image` whole pixels.
#[target_feature(enable = "avx2")]
unsafe fn sums32(image: &[i8], channels: usize, c0: usize, part: &mut [i32]) {
    let groups = part.len() / 8;
    debug_assert!(part.len() == groups * 8 && groups <= 4 && c0 + part.len() <= channels);
    let mut acc = [_mm256_setzero_si256(); 4];
    for px in image.chunks_exact(channels) {
        let at = px[c0..].as_ptr();
        for (g, a) in acc.iter_mut().enumerate().take(groups) {
            // SAFETY: group g's 8 channels lie inside this pixel (g < groups).
            let v = unsafe { _mm_loadl_epi64(at.add(8 * g).cast()) };
            *a = _mm256_add_epi32(*a, _mm256_cvtepi8_epi32(v));
        }
    }
    let mut sums = [0i32; 32];
    for (g, a) in acc.iter().enumerate() {
        // SAFETY: `sums` has room for 8 lanes at 8·g.
        unsafe { _mm256_storeu_si256(sums.as_mut_ptr().add(8 * g).cast(), *a) };
    }
    for (s, o) in part.iter_mut().zip(sums) {
        *s = s.wrapping_add(o);
    }
}
