//! Lane-wise TFLite requantization on 8 × i32, bit-exact with
//! [`crate::quant::multiply_by_quantized_multiplier`] (or its `_upward` form when the channels
//! round ties upward, [`ChannelQuant::ties_up`]), or the `f32` form
//! ([`crate::quant::requantize_f32`]) when the channels take it.

use core::arch::x86_64::*;

use crate::gemm::ChannelQuant;
use crate::quant::Requant;

/// Per-lane requantization parameters (see [`ChannelQuant`] for the derived ones).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rq8 {
    pub mult: __m256i,
    pub mult_odd: __m256i,
    pub lshift: __m256i,
    pub rshift: __m256i,
    pub rmask: __m256i,
    pub rhalf: __m256i,
    /// All ones: ties of negative values round away from zero; zero: ties round upward.
    pub tie: __m256i,
    /// The `f32` form ([`ChannelQuant::f32_range`]): scales and the range `[lo, hi]`.
    pub f32: Option<[__m256; 3]>,
}

impl Rq8 {
    /// Loads channels `at..at + 8` of `q`.
    ///
    /// # Safety
    /// `at + 8 <= q.mult.len()` and `at` is even.
    #[inline]
    #[target_feature(enable = "avx2")]
    pub unsafe fn load(q: &ChannelQuant, at: usize) -> Self {
        debug_assert!(at + 8 <= q.mult.len() && at.is_multiple_of(2));
        let ld = |v: &[i32]| {
            // SAFETY: the caller guarantees 8 entries from `at`.
            unsafe { _mm256_loadu_si256(v.as_ptr().add(at).cast()) }
        };
        Rq8 {
            mult: ld(&q.mult),
            mult_odd: ld(&q.mult_odd),
            lshift: ld(&q.lshift),
            rshift: ld(&q.rshift),
            rmask: ld(&q.rmask),
            rhalf: ld(&q.rhalf),
            tie: _mm256_set1_epi32(if q.ties_up { 0 } else { -1 }),
            f32: q.f32_range.map(|[lo, hi]| {
                // SAFETY: the caller guarantees 8 entries from `at` (`scale` has `mult`'s length).
                let scale = unsafe { _mm256_loadu_ps(q.scale.as_ptr().add(at)) };
                [scale, _mm256_set1_ps(lo), _mm256_set1_ps(hi)]
            }),
        }
    }

    /// One multiplier for all lanes.
    #[target_feature(enable = "avx2")]
    pub fn splat(r: Requant) -> Self {
        let rmask = ((1i64 << r.right_shift()) - 1) as i32;
        Rq8 {
            mult: _mm256_set1_epi32(r.multiplier()),
            mult_odd: _mm256_set1_epi32(r.multiplier()),
            lshift: _mm256_set1_epi32(r.left_shift()),
            rshift: _mm256_set1_epi32(r.right_shift()),
            rmask: _mm256_set1_epi32(rmask),
            rhalf: _mm256_set1_epi32(rmask >> 1),
            tie: _mm256_set1_epi32(-1),
            f32: None,
        }
    }
}

/// Output zero point and clamp range, broadcast.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Out8 {
    pub zp: __m256i,
    pub min: __m256i,
    pub max: __m256i,
}

impl Out8 {
    #[target_feature(enable = "avx2")]
    pub fn new(o: crate::gemm::OutputQuant) -> Self {
        Out8 {
            zp: _mm256_set1_epi32(o.zp),
            min: _mm256_set1_epi32(o.min),
            max: _mm256_set1_epi32(o.max),
        }
    }
}

/// `MultiplyByQuantizedMultiplier` per lane (multiplier never `i32::MIN`).
#[inline]
#[target_feature(enable = "avx2")]
pub(crate) fn mbqm8(acc: __m256i, q: Rq8) -> __m256i {
    let x = _mm256_sllv_epi32(acc, q.lshift);
    let round = _mm256_set1_epi64x(1 << 30);
    let even = _mm256_mul_epi32(x, q.mult);
    let odd = _mm256_mul_epi32(_mm256_srli_epi64(x, 32), q.mult_odd);
    let even = _mm256_srli_epi64(_mm256_add_epi64(even, round), 31);
    let odd = _mm256_slli_epi64(_mm256_add_epi64(odd, round), 1);
    let high = _mm256_blend_epi32(even, odd, 0b1010_1010);
    let rem = _mm256_and_si256(high, q.rmask);
    let neg = _mm256_and_si256(_mm256_srai_epi32(high, 31), q.tie);
    let thr = _mm256_sub_epi32(q.rhalf, neg);
    let shifted = _mm256_srav_epi32(high, q.rshift);
    // cmpgt yields −1 where the remainder exceeds the threshold: subtracting rounds up.
    _mm256_sub_epi32(shifted, _mm256_cmpgt_epi32(rem, thr))
}

/// Requantizes, adds the output zero point and clamps.
#[inline]
#[target_feature(enable = "avx2")]
pub(crate) fn finish8(acc: __m256i, q: Rq8, o: Out8) -> __m256i {
    let y = match q.f32 {
        // `cvtps2dq` rounds ties to even (MXCSR's default, which Rust never changes).
        Some([scale, lo, hi]) => _mm256_cvtps_epi32(_mm256_min_ps(
            _mm256_max_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(acc), scale), lo),
            hi,
        )),
        None => mbqm8(acc, q),
    };
    let v = _mm256_add_epi32(y, o.zp);
    _mm256_min_epi32(_mm256_max_epi32(v, o.min), o.max)
}

/// Packs 8 i32 (already in the int8 range) into the low 8 bytes of an `__m128i`.
#[inline]
#[target_feature(enable = "avx2")]
pub(crate) fn pack8(v: __m256i) -> __m128i {
    let w = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    _mm_packs_epi16(w, w)
}
