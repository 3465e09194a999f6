//! Int8 add (TFLite fixed-point scheme), 8 lanes at a time.

use core::arch::x86_64::*;

use super::requant::{Out8, Rq8, finish8, mbqm8, pack8};
use crate::elementwise::{ADD_LEFT_SHIFT, AddQuant};
use crate::gemm::OutputQuant;

/// `out[i] = a[i] ⊕ b[i]`, bit-exact with [`AddQuant::apply`].
pub(crate) fn add(q: &AddQuant, a: &[i8], b: &[i8], out: &mut [i8]) {
    super::assert_supported();
    assert!(
        a.len() == out.len() && b.len() == out.len(),
        "add: lengths differ"
    );
    let n8 = out.len() / 8 * 8;
    // SAFETY: AVX2 is available (asserted); the three slices hold n8 <= len elements.
    unsafe { add_impl(q, a.as_ptr(), b.as_ptr(), out.as_mut_ptr(), n8) };
    for i in n8..out.len() {
        out[i] = q.apply(a[i], b[i]);
    }
}

/// # Safety
/// AVX2 available; `a`, `b` readable and `out` writable for `n` bytes, `n` a multiple of 8.
#[target_feature(enable = "avx2,fma")]
unsafe fn add_impl(q: &AddQuant, a: *const i8, b: *const i8, out: *mut i8, n: usize) {
    let (r1, r2, ro) = (Rq8::splat(q.in1), Rq8::splat(q.in2), Rq8::splat(q.out));
    let o = Out8::new(OutputQuant {
        zp: q.out_zp,
        min: q.act_min,
        max: q.act_max,
    });
    let (zp1, zp2) = (_mm256_set1_epi32(q.in1_zp), _mm256_set1_epi32(q.in2_zp));
    let mut i = 0;
    while i < n {
        // SAFETY: i + 8 <= n.
        let (x, y) = unsafe {
            (
                _mm_loadl_epi64(a.add(i).cast()),
                _mm_loadl_epi64(b.add(i).cast()),
            )
        };
        let x = _mm256_slli_epi32(
            _mm256_sub_epi32(_mm256_cvtepi8_epi32(x), zp1),
            ADD_LEFT_SHIFT,
        );
        let y = _mm256_slli_epi32(
            _mm256_sub_epi32(_mm256_cvtepi8_epi32(y), zp2),
            ADD_LEFT_SHIFT,
        );
        let sum = _mm256_add_epi32(mbqm8(x, r1), mbqm8(y, r2));
        let v = pack8(finish8(sum, ro, o));
        // SAFETY: i + 8 <= n.
        unsafe { _mm_storel_epi64(out.add(i).cast(), v) };
        i += 8;
    }
}
