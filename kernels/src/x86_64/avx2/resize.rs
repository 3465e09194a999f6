//! Bilinear resize, 8 channels per vector: the reference's f32 products and sums lane by
//! lane ([`Weights::blend`]), int8 rounded half away from zero and saturated as
//! [`round_i8`] does; the last `c mod 8` channels by the reference itself. Bit-exact with the
//! generic tier.

use core::arch::x86_64::*;
use core::ops::Range;

use crate::generic::resize::{Corners, Weights, bilinear_pixels, round_i8};
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
            // SAFETY: the CPU supports AVX2 (asserted above).
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
            // SAFETY: the CPU supports AVX2 (asserted above).
            unsafe { pixel_f32(k, w, dst) }
        },
    );
}

/// The broadcast weights.
#[derive(Clone, Copy)]
struct Lanes {
    y0: __m256,
    y1: __m256,
    x0: __m256,
    x1: __m256,
}

impl Lanes {
    #[inline]
    #[target_feature(enable = "avx2")]
    fn new(w: Weights) -> Self {
        Lanes {
            y0: _mm256_set1_ps(w.y0),
            y1: _mm256_set1_ps(w.y1),
            x0: _mm256_set1_ps(w.x0),
            x1: _mm256_set1_ps(w.x1),
        }
    }

    /// [`Weights::blend`] on 8 lanes, the same operations in the same order.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn blend(self, v: [__m256; 4]) -> __m256 {
        let t = |x: __m256, wy: __m256, wx: __m256| _mm256_mul_ps(_mm256_mul_ps(x, wy), wx);
        let s = _mm256_add_ps(t(v[0], self.y0, self.x0), t(v[1], self.y1, self.x0));
        let s = _mm256_add_ps(s, t(v[2], self.y0, self.x1));
        _mm256_add_ps(s, t(v[3], self.y1, self.x1))
    }
}

/// `v` rounded half away from zero (`f32::round`): the truncation, plus ±1 where the
/// dropped fraction (exact: `v − trunc(v)`) is at least one half.
#[inline]
#[target_feature(enable = "avx2")]
fn round_away(v: __m256) -> __m256 {
    let t = _mm256_round_ps::<{ _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC }>(v);
    let sign = _mm256_set1_ps(-0.0);
    let frac = _mm256_andnot_ps(sign, _mm256_sub_ps(v, t));
    let half = _mm256_cmp_ps::<_CMP_GE_OQ>(frac, _mm256_set1_ps(0.5));
    let one = _mm256_or_ps(_mm256_and_ps(v, sign), _mm256_set1_ps(1.0));
    _mm256_add_ps(t, _mm256_and_ps(half, one))
}

/// One output pixel, int8.
///
/// # Safety
/// The CPU supports AVX2.
#[target_feature(enable = "avx2")]
unsafe fn pixel_i8(k: Corners<'_, i8>, w: Weights, dst: &mut [i8]) {
    let c = dst.len();
    assert!(k.iter().all(|s| s.len() == c), "resize: corner length");
    let lanes = Lanes::new(w);
    let mut ch = 0;
    while ch + 8 <= c {
        let v: [__m256; 4] = core::array::from_fn(|i| {
            // SAFETY: elements ch..ch + 8 of the corner exist (length asserted, ch + 8 ≤ c).
            let b = unsafe { _mm_loadl_epi64(k[i].as_ptr().add(ch).cast()) };
            _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(b))
        });
        // Integral after rounding, so the truncating conversion is exact; the packs saturate
        // to int8 as `round_i8`'s clamp does.
        let r = _mm256_cvttps_epi32(round_away(lanes.blend(v)));
        let words = _mm_packs_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256::<1>(r));
        let bytes = _mm_packs_epi16(words, words);
        // SAFETY: elements ch..ch + 8 of dst exist.
        unsafe { _mm_storel_epi64(dst.as_mut_ptr().add(ch).cast(), bytes) };
        ch += 8;
    }
    for (i, d) in dst.iter_mut().enumerate().skip(ch) {
        let at = |j: usize| f32::from(k[j][i]);
        *d = round_i8(w.blend(at(0), at(1), at(2), at(3)));
    }
}

/// One output pixel, f32.
///
/// # Safety
/// The CPU supports AVX2.
#[target_feature(enable = "avx2")]
unsafe fn pixel_f32(k: Corners<'_, f32>, w: Weights, dst: &mut [f32]) {
    let c = dst.len();
    assert!(k.iter().all(|s| s.len() == c), "resize: corner length");
    let lanes = Lanes::new(w);
    let mut ch = 0;
    while ch + 8 <= c {
        // SAFETY: elements ch..ch + 8 of each corner exist (length asserted, ch + 8 ≤ c).
        let v: [__m256; 4] =
            core::array::from_fn(|i| unsafe { _mm256_loadu_ps(k[i].as_ptr().add(ch)) });
        // SAFETY: elements ch..ch + 8 of dst exist.
        unsafe { _mm256_storeu_ps(dst.as_mut_ptr().add(ch), lanes.blend(v)) };
        ch += 8;
    }
    for (i, d) in dst.iter_mut().enumerate().skip(ch) {
        *d = w.blend(k[0][i], k[1][i], k[2][i], k[3][i]);
    }
}
