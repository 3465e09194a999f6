//! A throughput probe: the AVX2 tier's int8 multiply-accumulate peak on the core it runs on,
//! as its GEMM computes (`vpmaddwd ymm` on i16 operands, then `vpaddd` into i32).

use core::arch::x86_64::*;

/// Runs `iters` × 12 independent `vpmaddwd ymm` + `vpaddd ymm` pairs (register operands only)
/// and returns the number of int8 operations they stand for (16 MACs per `vpmaddwd`, 1 MAC =
/// 2 ops); time it to get the core's AVX2 int8 peak.
pub(crate) fn peak(iters: usize) -> u64 {
    super::assert_supported();
    // SAFETY: AVX2 is available (asserted above).
    core::hint::black_box(unsafe { chains(iters) });
    (iters * 12 * 16 * 2) as u64
}

/// # Safety
/// AVX2 available.
#[target_feature(enable = "avx2")]
unsafe fn chains(iters: usize) -> __m256i {
    let mut acc = [_mm256_set1_epi32(1); 12];
    let w: [__m256i; 12] = core::array::from_fn(|i| _mm256_set1_epi16(i as i16 - 6));
    let (mut a, step) = (_mm256_set1_epi16(3), _mm256_set1_epi16(1));
    for _ in 0..iters {
        // `a` changes every step (as the GEMM's broadcast A does), so no product is
        // loop-invariant.
        for (x, w) in acc.iter_mut().zip(&w) {
            *x = _mm256_add_epi32(*x, _mm256_madd_epi16(a, *w));
        }
        a = _mm256_add_epi16(a, step);
    }
    acc.iter()
        .fold(_mm256_setzero_si256(), |s, &x| _mm256_add_epi32(s, x))
}
