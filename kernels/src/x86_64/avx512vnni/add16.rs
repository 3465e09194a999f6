//! Int8 add with 16-bit multipliers ([`Add16Quant`]), 32 lanes at a time: inputs widened to
//! i16 and interleaved in pairs, one `vpdpwssd` (bias + a·m1 + b·m2) per 16 outputs, one
//! arithmetic shift, narrowed with saturation; the tail through masked loads and stores.

use core::arch::x86_64::*;

use crate::elementwise::Add16Quant;

/// `out[i] = a[i] ⊕ b[i]`, bit-exact with [`Add16Quant::apply`].
pub(crate) fn add16(q: &Add16Quant, a: &[i8], b: &[i8], out: &mut [i8]) {
    super::assert_supported();
    assert!(
        a.len() == out.len() && b.len() == out.len(),
        "add: lengths differ"
    );
    // SAFETY: AVX-512 VNNI is available (asserted); all three slices have out.len() elements.
    unsafe { add16_impl(q, a.as_ptr(), b.as_ptr(), out.as_mut_ptr(), out.len()) }
}

/// # Safety
/// AVX-512 F/BW/VL/VNNI available; `a`, `b` readable and `out` writable for `n` bytes.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn add16_impl(q: &Add16Quant, a: *const i8, b: *const i8, out: *mut i8, n: usize) {
    // Each i32 lane of `mults` holds the pair (m1, m2) that `vpdpwssd` applies to (a, b).
    let mults = _mm512_set1_epi32((q.m1 as u16 as i32) | ((q.m2 as i32) << 16));
    let bias = _mm512_set1_epi32(q.bias);
    let shift = _mm_cvtsi32_si128(q.shift as i32);
    let zp = _mm512_set1_epi16(q.out_zp as i16);
    let (lo, hi) = (
        _mm256_set1_epi8(q.act_min as i8),
        _mm256_set1_epi8(q.act_max as i8),
    );
    let mut i = 0;
    while i < n {
        let left = n - i;
        let mask: __mmask32 = if left >= 32 {
            u32::MAX
        } else {
            (1u32 << left) - 1
        };
        // SAFETY: the mask keeps the loads inside the n elements.
        let (x, y) = unsafe {
            (
                _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(mask, a.add(i))),
                _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(mask, b.add(i))),
            )
        };
        // The unpacks pair a and b within each 128-bit lane (elements 0–3 of the lane, then
        // 4–7); `vpackssdw` undoes exactly that interleave, so the results come out in order.
        let s0 = _mm512_dpwssd_epi32(bias, _mm512_unpacklo_epi16(x, y), mults);
        let s1 = _mm512_dpwssd_epi32(bias, _mm512_unpackhi_epi16(x, y), mults);
        let s0 = _mm512_sra_epi32(s0, shift);
        let s1 = _mm512_sra_epi32(s1, shift);
        let r = _mm512_adds_epi16(_mm512_packs_epi32(s0, s1), zp);
        let v = _mm512_cvtsepi16_epi8(r);
        let v = _mm256_min_epi8(_mm256_max_epi8(v, lo), hi);
        // SAFETY: the mask keeps the store inside the n elements.
        unsafe { _mm256_mask_storeu_epi8(out.add(i), mask, v) };
        i += 32;
    }
}
