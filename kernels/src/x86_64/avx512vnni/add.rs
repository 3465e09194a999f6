//! Int8 add (TFLite fixed-point scheme), 16 lanes at a time.

use core::arch::x86_64::*;

use super::requant::{Out16, Rq16, finish16, mbqm16};
use crate::elementwise::{ADD_LEFT_SHIFT, AddQuant};
use crate::gemm::OutputQuant;

/// `out[i] = a[i] ⊕ b[i]`, bit-exact with [`AddQuant::apply`].
pub(crate) fn add(q: &AddQuant, a: &[i8], b: &[i8], out: &mut [i8]) {
    super::assert_supported();
    assert!(
        a.len() == out.len() && b.len() == out.len(),
        "add: lengths differ"
    );
    // SAFETY: AVX-512 is available (asserted); all three slices have out.len() elements.
    unsafe { add_impl(q, a.as_ptr(), b.as_ptr(), out.as_mut_ptr(), out.len()) }
}

/// # Safety
/// AVX-512 F/BW/VL available; `a`, `b` readable and `out` writable for `n` bytes.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn add_impl(q: &AddQuant, a: *const i8, b: *const i8, out: *mut i8, n: usize) {
    let (r1, r2, ro) = (Rq16::splat(q.in1), Rq16::splat(q.in2), Rq16::splat(q.out));
    let o = Out16::new(OutputQuant {
        zp: q.out_zp,
        min: q.act_min,
        max: q.act_max,
    });
    let (zp1, zp2) = (_mm512_set1_epi32(q.in1_zp), _mm512_set1_epi32(q.in2_zp));
    let mut i = 0;
    while i < n {
        let left = n - i;
        let mask: __mmask16 = if left >= 16 {
            0xFFFF
        } else {
            (1u16 << left) - 1
        };
        // SAFETY: the mask keeps the loads inside the n elements.
        let (x, y) = unsafe {
            (
                _mm_maskz_loadu_epi8(mask, a.add(i)),
                _mm_maskz_loadu_epi8(mask, b.add(i)),
            )
        };
        let x = _mm512_slli_epi32(
            _mm512_sub_epi32(_mm512_cvtepi8_epi32(x), zp1),
            ADD_LEFT_SHIFT as u32,
        );
        let y = _mm512_slli_epi32(
            _mm512_sub_epi32(_mm512_cvtepi8_epi32(y), zp2),
            ADD_LEFT_SHIFT as u32,
        );
        let sum = _mm512_add_epi32(mbqm16::<false>(x, r1), mbqm16::<false>(y, r2));
        let v = _mm512_cvtsepi32_epi8(finish16(sum, ro, o));
        // SAFETY: the mask keeps the store inside the n elements.
        unsafe { _mm_mask_storeu_epi8(out.add(i), mask, v) };
        i += 16;
    }
}
