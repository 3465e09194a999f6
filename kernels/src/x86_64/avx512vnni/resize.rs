//! Bilinear resize, 16 channels per vector: the reference's f32 products and sums lane by
//! lane ([`Weights::blend`]), int8 rounded half away from zero and saturated as
//! [`round_i8`] does. Bit-exact with the generic tier.

use core::arch::x86_64::*;
use core::ops::Range;

use crate::generic::resize::{Corners, Weights, bilinear_pixels};
use crate::params::ResizeOptions;

/// Bilinear resize, int8 (same quantization in and out): output rows `rows`
/// ([`bilinear_pixels`]).
pub(crate) fn resize_bilinear_i8(
    input: &[i8],
    in_shape: [usize; 4],
    out_h: usize,
    out_w: usize,
    o: ResizeOptions,
    rows: Range<usize>,
    output: &mut [i8],
) {
    super::assert_supported();
    bilinear_pixels(
        input,
        in_shape,
        out_h,
        out_w,
        o,
        rows,
        output,
        |k, w, dst| {
            // SAFETY: the CPU supports AVX-512 F/BW/VL (asserted above).
            unsafe { pixel_i8(k, w, dst) }
        },
    );
}

/// Bilinear resize, f32: output rows `rows` ([`bilinear_pixels`]).
pub(crate) fn resize_bilinear_f32(
    input: &[f32],
    in_shape: [usize; 4],
    out_h: usize,
    out_w: usize,
    o: ResizeOptions,
    rows: Range<usize>,
    output: &mut [f32],
) {
    super::assert_supported();
    bilinear_pixels(
        input,
        in_shape,
        out_h,
        out_w,
        o,
        rows,
        output,
        |k, w, dst| {
            // SAFETY: the CPU supports AVX-512 F (asserted above).
            unsafe { pixel_f32(k, w, dst) }
        },
    );
}

/// The broadcast weights.
#[derive(Clone, Copy)]
struct Lanes {
    y0: __m512,
    y1: __m512,
    x0: __m512,
    x1: __m512,
}

impl Lanes {
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn new(w: Weights) -> Self {
        Lanes {
            y0: _mm512_set1_ps(w.y0),
            y1: _mm512_set1_ps(w.y1),
            x0: _mm512_set1_ps(w.x0),
            x1: _mm512_set1_ps(w.x1),
        }
    }

    /// [`Weights::blend`] on 16 lanes, the same operations in the same order.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn blend(self, v: [__m512; 4]) -> __m512 {
        let t = |x: __m512, wy: __m512, wx: __m512| _mm512_mul_ps(_mm512_mul_ps(x, wy), wx);
        let s = _mm512_add_ps(t(v[0], self.y0, self.x0), t(v[1], self.y1, self.x0));
        let s = _mm512_add_ps(s, t(v[2], self.y0, self.x1));
        _mm512_add_ps(s, t(v[3], self.y1, self.x1))
    }
}

/// `v` rounded half away from zero (`f32::round`): the truncation, plus ±1 where the
/// dropped fraction (exact: `v − trunc(v)`) is at least one half.
#[inline]
#[target_feature(enable = "avx512f")]
fn round_away(v: __m512) -> __m512 {
    let t = _mm512_roundscale_ps::<{ _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC }>(v);
    let frac = _mm512_abs_ps(_mm512_sub_ps(v, t));
    let half = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(frac, _mm512_set1_ps(0.5));
    let sign = _mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32(i32::MIN));
    let one = _mm512_castsi512_ps(_mm512_or_si512(sign, _mm512_set1_epi32(0x3F80_0000)));
    _mm512_mask_add_ps(t, half, t, one)
}

/// One output pixel, int8.
///
/// # Safety
/// The CPU supports AVX-512 F/BW/VL.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn pixel_i8(k: Corners<'_, i8>, w: Weights, dst: &mut [i8]) {
    let c = dst.len();
    assert!(k.iter().all(|s| s.len() == c), "resize: corner length");
    let lanes = Lanes::new(w);
    let mut ch = 0;
    while ch < c {
        let n = (c - ch).min(16);
        let mask: __mmask16 = if n == 16 { !0 } else { (1 << n) - 1 };
        let v: [__m512; 4] = core::array::from_fn(|i| {
            // SAFETY: the mask keeps the load inside the corner's c elements (length asserted).
            let b = unsafe { _mm_maskz_loadu_epi8(mask, k[i].as_ptr().add(ch)) };
            _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(b))
        });
        // Integral after rounding, so the truncating conversion is exact; the narrowing
        // saturates to int8 as `round_i8`'s clamp does.
        let r = _mm512_cvttps_epi32(round_away(lanes.blend(v)));
        let bytes = _mm512_cvtsepi32_epi8(r);
        // SAFETY: elements ch..ch + n of dst exist (n ≤ c − ch); the mask stops there.
        unsafe {
            if n == 16 {
                _mm_storeu_si128(dst.as_mut_ptr().add(ch).cast(), bytes);
            } else {
                _mm_mask_storeu_epi8(dst.as_mut_ptr().add(ch), mask, bytes);
            }
        }
        ch += 16;
    }
}

/// One output pixel, f32.
///
/// # Safety
/// The CPU supports AVX-512 F.
#[target_feature(enable = "avx512f")]
unsafe fn pixel_f32(k: Corners<'_, f32>, w: Weights, dst: &mut [f32]) {
    let c = dst.len();
    assert!(k.iter().all(|s| s.len() == c), "resize: corner length");
    let lanes = Lanes::new(w);
    let mut ch = 0;
    while ch < c {
        let n = (c - ch).min(16);
        let mask: __mmask16 = if n == 16 { !0 } else { (1 << n) - 1 };
        // SAFETY: the mask keeps each load inside the corner's c elements (length asserted).
        let v: [__m512; 4] =
            core::array::from_fn(|i| unsafe { _mm512_maskz_loadu_ps(mask, k[i].as_ptr().add(ch)) });
        // SAFETY: elements ch..ch + n of dst exist; the mask stops there.
        unsafe { _mm512_mask_storeu_ps(dst.as_mut_ptr().add(ch), mask, lanes.blend(v)) };
        ch += 16;
    }
}
