//! Lane-wise TFLite requantization on 8 × i32, bit-exact with
//! [`crate::quant::multiply_by_quantized_multiplier`] (or its `_upward` form when the channels
//! round ties upward, [`ChannelQuant::ties_up`]), and the `f32` form
//! ([`crate::quant::requantize_f32`], [`Rq8F32`]); [`Rq8Fast`] is the fixed point form in one
//! rounding step where the channels allow it. The GEMM and the depthwise rows take the
//! form once per call ([`LaneRequant8`]) and narrow their results together ([`Narrow8`]).

use core::arch::x86_64::*;

use crate::gemm::{ChannelQuant, OutputQuant};
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
    pub fn new(o: OutputQuant) -> Self {
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

/// Requantizes (fixed point), adds the output zero point and clamps.
#[inline]
#[target_feature(enable = "avx2")]
pub(crate) fn finish8(acc: __m256i, q: Rq8, o: Out8) -> __m256i {
    let v = _mm256_add_epi32(mbqm8(acc, q), o.zp);
    _mm256_min_epi32(_mm256_max_epi32(v, o.min), o.max)
}

/// [`mbqm8`] in one 64-bit rounding step per lane, for [`ChannelQuant::fast`] channels (no
/// left shift, right shift `s ≥ 1`), as the AVX-512 tier's `Rq16Fast`:
/// `floor((x·m + 2^30 + (2^(s−1) − c)·2^31) / 2^(31+s))` with `c = [x·m + 2^30 < 0]`, which
/// equals TFLite's `RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x, m), s)`; `UP`:
/// ties of the final shift round upward ([`ChannelQuant::ties_up`]), `c = 0`. AVX2 has no
/// 64-bit arithmetic shift, so the sums carry 2^62 more (`|x·m| < 2^62` keeps them
/// non-negative), shift logically (`vpsrlvq`), and the 2^62's share of the quotient,
/// `2^(31−s)`, comes off in 32 bits. 9 instructions per 8 lanes (11 without `UP`: the
/// product's sign picks the addend) against [`mbqm8`]'s 16.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rq8Fast<const UP: bool> {
    mult: __m256i,
    mult_odd: __m256i,
    add_even: __m256i,
    add_odd: __m256i,
    /// The addends with the `− 2^31` of `c = 1` (unused with `UP`).
    add_even_neg: __m256i,
    add_odd_neg: __m256i,
    /// 64-bit logical shifts: `31 + s` (even lanes: result in the low half), `s − 1` (odd
    /// lanes: result in the high half).
    shift_even: __m256i,
    shift_odd: __m256i,
    offset: __m256i,
}

impl<const UP: bool> LaneRequant8 for Rq8Fast<UP> {
    #[inline]
    unsafe fn load(q: &ChannelQuant, at: usize) -> Self {
        debug_assert!(q.fast && q.f32_range.is_none() && q.ties_up == UP);
        debug_assert!(
            q.offset.len() == q.mult.len(),
            "derive_logical() not called"
        );
        debug_assert!(at + 8 <= q.mult.len() && at.is_multiple_of(2));
        let ld = |p: *const i32| {
            // SAFETY: the caller guarantees 8 lanes from `at` (4 pairs from `at / 2`) and AVX2.
            unsafe { _mm256_loadu_si256(p.cast()) }
        };
        let ld64 = |v: &[i64]| ld(v.as_ptr().wrapping_add(at / 2).cast());
        // SAFETY: AVX2 (contract).
        let zero = unsafe { _mm256_setzero_si256() };
        Rq8Fast {
            mult: ld(q.mult.as_ptr().wrapping_add(at)),
            mult_odd: ld(q.mult_odd.as_ptr().wrapping_add(at)),
            add_even: ld64(&q.add_even_u),
            add_odd: ld64(&q.add_odd_u),
            // Read only with ties away from zero (`c` may be 1).
            add_even_neg: if UP { zero } else { ld64(&q.add_even_u_neg) },
            add_odd_neg: if UP { zero } else { ld64(&q.add_odd_u_neg) },
            shift_even: ld64(&q.shift_even),
            shift_odd: ld64(&q.shift_odd),
            offset: ld(q.offset.as_ptr().wrapping_add(at)),
        }
    }

    #[inline]
    unsafe fn apply_narrowed(self, acc: __m256i) -> __m256i {
        // SAFETY: forwarded from this function's contract.
        unsafe { mbqm8_fast::<UP>(acc, self) }
    }

    #[inline]
    unsafe fn join_low(self, hi: Self) -> Self {
        // SAFETY: the CPU supports AVX2 (contract).
        let j = |a, b| unsafe { join_low(a, b) };
        Rq8Fast {
            mult: j(self.mult, hi.mult),
            mult_odd: j(self.mult_odd, hi.mult_odd),
            add_even: j(self.add_even, hi.add_even),
            add_odd: j(self.add_odd, hi.add_odd),
            add_even_neg: j(self.add_even_neg, hi.add_even_neg),
            add_odd_neg: j(self.add_odd_neg, hi.add_odd_neg),
            shift_even: j(self.shift_even, hi.shift_even),
            shift_odd: j(self.shift_odd, hi.shift_odd),
            offset: j(self.offset, hi.offset),
        }
    }
}

/// See [`Rq8Fast`].
#[inline]
#[target_feature(enable = "avx2")]
fn mbqm8_fast<const UP: bool>(x: __m256i, q: Rq8Fast<UP>) -> __m256i {
    let even = _mm256_mul_epi32(x, q.mult);
    let odd = _mm256_mul_epi32(_mm256_srli_epi64(x, 32), q.mult_odd);
    let (add_even, add_odd) = if UP {
        (q.add_even, q.add_odd)
    } else {
        // c = 1 where x·m < −2^30. Taking c = [x·m < 0] instead (the product's sign bit,
        // which `vblendvpd` reads) changes nothing: for −2^30 ≤ x·m < 0 the sum is
        // 2^62 + x·m + 2^30 + 2^(30+s) − c·2^31, inside [2^62, 2^62 + 2^(31+s)) with either
        // c when s ≥ 1, so the quotient is 2^(31−s) (0 after the offset) both ways.
        let pick = |pos: __m256i, neg: __m256i, prod: __m256i| {
            _mm256_castpd_si256(_mm256_blendv_pd(
                _mm256_castsi256_pd(pos),
                _mm256_castsi256_pd(neg),
                _mm256_castsi256_pd(prod),
            ))
        };
        (
            pick(q.add_even, q.add_even_neg, even),
            pick(q.add_odd, q.add_odd_neg, odd),
        )
    };
    let re = _mm256_srlv_epi64(_mm256_add_epi64(even, add_even), q.shift_even);
    let ro = _mm256_srlv_epi64(_mm256_add_epi64(odd, add_odd), q.shift_odd);
    _mm256_sub_epi32(_mm256_blend_epi32(re, ro, 0b1010_1010), q.offset)
}

/// The `f32` requantization ([`ChannelQuant::f32_range`]) of 8 lanes: their scales and the
/// upper end of the range, `max − zp`. `HI = false` where no product can reach the `i32`
/// range ([`ChannelQuant::f32_bounded`]): the upper clamp is skipped too.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rq8F32<const HI: bool> {
    pub scale: __m256,
    pub hi: __m256,
}

/// A requantization form, [`Rq8`] (TFLite's fixed point), [`Rq8Fast`] (the same in one
/// rounding step, wherever [`ChannelQuant::fast`]) or [`Rq8F32`], chosen
/// once per call so that the kernels' loops carry no branch and keep only the constants the
/// form uses.
pub(crate) trait LaneRequant8: Copy {
    /// Lanes `at..at + 8` of `q` (which must be in this form).
    ///
    /// # Safety
    /// `at + 8 <= q.mult.len()`, `at` even; the CPU supports AVX2.
    unsafe fn load(q: &ChannelQuant, at: usize) -> Self;

    /// The requantized lanes before the zero point, for [`Narrow8`]: lanes that would lie
    /// below the output's minimum may come out as any value below it (the `f32` form skips
    /// its lower clamp, which the saturating narrowing and the byte clamp stand in for).
    ///
    /// # Safety
    /// The CPU supports AVX2.
    unsafe fn apply_narrowed(self, acc: __m256i) -> __m256i;

    /// The low 128-bit halves of `self` and `hi` as one set of 8 lanes (`self`'s lanes 0–3,
    /// then `hi`'s): the depthwise kernels' half chunks, whose 8 channels sit in lanes 0–3 of
    /// the two accumulator orders ([`crate::PackedDepthwise`]).
    ///
    /// # Safety
    /// The CPU supports AVX2.
    unsafe fn join_low(self, hi: Self) -> Self;
}

/// `a`'s low 128 bits, then `b`'s.
#[inline]
#[target_feature(enable = "avx2")]
pub(crate) fn join_low(a: __m256i, b: __m256i) -> __m256i {
    _mm256_permute2x128_si256(a, b, 0x20)
}

impl LaneRequant8 for Rq8 {
    #[inline]
    unsafe fn load(q: &ChannelQuant, at: usize) -> Self {
        debug_assert!(q.f32_range.is_none());
        // SAFETY: forwarded from this function's contract.
        unsafe { Rq8::load(q, at) }
    }

    #[inline]
    unsafe fn apply_narrowed(self, acc: __m256i) -> __m256i {
        // SAFETY: forwarded from this function's contract.
        unsafe { mbqm8(acc, self) }
    }

    #[inline]
    unsafe fn join_low(self, hi: Self) -> Self {
        // SAFETY: the CPU supports AVX2 (contract).
        let j = |a, b| unsafe { join_low(a, b) };
        Rq8 {
            mult: j(self.mult, hi.mult),
            mult_odd: j(self.mult_odd, hi.mult_odd),
            lshift: j(self.lshift, hi.lshift),
            rshift: j(self.rshift, hi.rshift),
            rmask: j(self.rmask, hi.rmask),
            rhalf: j(self.rhalf, hi.rhalf),
            tie: self.tie,
        }
    }
}

impl<const HI: bool> LaneRequant8 for Rq8F32<HI> {
    #[inline]
    unsafe fn load(q: &ChannelQuant, at: usize) -> Self {
        let [_, hi] = q.f32_range.unwrap_or([0.0; 2]);
        debug_assert!(q.f32_range.is_some() && (HI || q.f32_bounded));
        // SAFETY: the caller guarantees 8 entries from `at` (`scale` has `mult`'s length) and
        // AVX2.
        unsafe {
            Rq8F32 {
                scale: _mm256_loadu_ps(q.scale.as_ptr().add(at)),
                hi: _mm256_set1_ps(hi),
            }
        }
    }

    #[inline]
    unsafe fn apply_narrowed(self, acc: __m256i) -> __m256i {
        // SAFETY: forwarded from this function's contract.
        unsafe { requant8_f32_narrowed::<HI>(acc, self) }
    }

    #[inline]
    unsafe fn join_low(self, hi: Self) -> Self {
        // SAFETY: the CPU supports AVX2 (contract).
        let scale = unsafe {
            _mm256_castsi256_ps(join_low(
                _mm256_castps_si256(self.scale),
                _mm256_castps_si256(hi.scale),
            ))
        };
        Rq8F32 { scale, hi: self.hi }
    }
}

/// [`crate::quant::requantize_f32`] before the zero point and without the lower clamp:
/// `cvtdq2ps`, `mulps`, the upper clamp where a product may reach 2^31 (`HI`; `cvtps2dq`
/// turns an overflow into `i32::MIN`), `cvtps2dq` rounding ties to even (MXCSR's default,
/// which Rust never changes). A product below the range converts to an integer below it (or
/// to `i32::MIN`), which [`Narrow8`] maps to the minimum as the reference's clamp does.
#[inline]
#[target_feature(enable = "avx2")]
fn requant8_f32_narrowed<const HI: bool>(acc: __m256i, q: Rq8F32<HI>) -> __m256i {
    let x = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), q.scale);
    let x = if HI { _mm256_min_ps(x, q.hi) } else { x };
    _mm256_cvtps_epi32(x)
}

/// Narrowing of requantized lanes ([`LaneRequant8::apply_narrowed`]) to int8: `vpackssdw`,
/// the output zero point added saturating in i16, `vpacksswb`, the clamp on bytes. Equal to
/// TFLite's `clamp(v + zp, min, max)` because every saturation step lies outside the int8
/// range.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Narrow8 {
    zp: __m256i,
    min: __m256i,
    max: __m256i,
}

impl Narrow8 {
    #[target_feature(enable = "avx2")]
    pub fn new(o: OutputQuant) -> Self {
        Narrow8 {
            zp: _mm256_set1_epi16(o.zp as i16),
            min: _mm256_set1_epi8(o.min as i8),
            max: _mm256_set1_epi8(o.max as i8),
        }
    }

    /// Two runs of 16 channels (`a`, `b`: channels 0–7 and 8–15 each) as 32 bytes: `a`'s in
    /// the low 16, `b`'s in the high 16 (one lane permutation undoes the packs' interleave).
    #[inline]
    #[target_feature(enable = "avx2")]
    pub fn two_runs(self, a: [__m256i; 2], b: [__m256i; 2], full: bool) -> __m256i {
        let wa = _mm256_adds_epi16(_mm256_packs_epi32(a[0], a[1]), self.zp);
        let wb = _mm256_adds_epi16(_mm256_packs_epi32(b[0], b[1]), self.zp);
        // Dwords: a0–3 a8–11 b0–3 b8–11 | a4–7 a12–15 b4–7 b12–15.
        let bytes = _mm256_packs_epi16(wa, wb);
        let bytes = _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        // With the output's range all of int8 the saturating packs are the whole clamp.
        if full { bytes } else { self.clamp(bytes) }
    }

    /// 8 channels as the low 8 bytes.
    #[inline]
    #[target_feature(enable = "avx2")]
    pub fn one_block(self, v: __m256i) -> __m128i {
        let w = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
        let w = _mm_adds_epi16(w, _mm256_castsi256_si128(self.zp));
        _mm256_castsi256_si128(self.clamp(_mm256_castsi128_si256(_mm_packs_epi16(w, w))))
    }

    /// The clamp to `[min, max]` on bytes.
    #[inline]
    #[target_feature(enable = "avx2")]
    pub fn clamp(self, bytes: __m256i) -> __m256i {
        _mm256_min_epi8(_mm256_max_epi8(bytes, self.min), self.max)
    }

    /// 16 channels in the depthwise accumulators' order (channels 0–3 and 8–11 in `v[0]`,
    /// 4–7 and 12–15 in `v[1]`, [`crate::PackedDepthwise`]) as 16 bytes in channel order.
    #[inline]
    #[target_feature(enable = "avx2")]
    pub fn depthwise_pair(self, v: [__m256i; 2], full: bool) -> __m128i {
        let words = _mm256_adds_epi16(_mm256_packs_epi32(v[0], v[1]), self.zp);
        let bytes = _mm256_permute4x64_epi64(_mm256_packs_epi16(words, words), 0b00_00_10_00);
        // With the output's range all of int8 the saturating packs are the whole clamp.
        _mm256_castsi256_si128(if full { bytes } else { self.clamp(bytes) })
    }
}

/// Packs 8 i32 (already in the int8 range) into the low 8 bytes of an `__m128i`.
#[inline]
#[target_feature(enable = "avx2")]
pub(crate) fn pack8(v: __m256i) -> __m128i {
    let w = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    _mm_packs_epi16(w, w)
}
