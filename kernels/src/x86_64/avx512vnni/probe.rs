//! A throughput probe: the `vpdpbusd zmm` peak of the core it runs on.

use core::arch::x86_64::*;

/// Runs `iters` × 24 independent `vpdpbusd zmm` (register operands only) and returns the
/// number of int8 operations done (1 MAC = 2 ops); time it to get the core's int8 peak.
pub(crate) fn peak(iters: usize) -> u64 {
    super::assert_supported();
    // SAFETY: AVX-512 VNNI is available (asserted above).
    core::hint::black_box(unsafe { chains(iters) });
    (iters * 24 * 64 * 2) as u64
}

/// # Safety
/// AVX-512 F and VNNI available.
#[target_feature(enable = "avx512f,avx512vnni")]
unsafe fn chains(iters: usize) -> __m512i {
    let mut acc = [_mm512_set1_epi32(1); 24];
    let (a, b) = (
        _mm512_set1_epi32(0x0101_0101),
        _mm512_set1_epi32(0x0202_0202),
    );
    for _ in 0..iters {
        for x in acc.iter_mut() {
            *x = _mm512_dpbusd_epi32(*x, a, b);
        }
    }
    acc.iter()
        .fold(_mm512_setzero_si512(), |s, &x| _mm512_add_epi32(s, x))
}
