//! Lane-wise TFLite requantization on 16 × i32 (`MultiplyByQuantizedMultiplier`, + zero point,
//! clamp), bit-exact with [`crate::quant::multiply_by_quantized_multiplier`] (or its `_upward`
//! form when the channels round ties upward, [`ChannelQuant::ties_up`]); and the `f32` form,
//! bit-exact with [`crate::quant::requantize_f32`]. [`LaneRequant`] lets a kernel take the
//! form once per call.

use core::arch::x86_64::*;

use crate::gemm::ChannelQuant;
use crate::quant::Requant;

/// Per-lane requantization parameters (see [`ChannelQuant`] for the derived ones).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rq16 {
    pub mult: __m512i,
    pub mult_odd: __m512i,
    pub lshift: __m512i,
    pub rshift: __m512i,
    pub rmask: __m512i,
    pub rhalf: __m512i,
}

impl Rq16 {
    /// Loads channels `at..at + 16` of `q`.
    ///
    /// # Safety
    /// `at + 16 <= q.mult.len()` (the arrays are padded to multiples of 16).
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub unsafe fn load(q: &ChannelQuant, at: usize) -> Self {
        debug_assert!(at + 16 <= q.mult.len());
        // SAFETY: the caller guarantees 16 entries from `at`.
        Self::from_arrays(q, |v| unsafe {
            _mm512_loadu_si512(v.as_ptr().add(at).cast())
        })
    }

    /// Each field from its per-channel array of `q` through `ld`.
    #[inline]
    fn from_arrays(q: &ChannelQuant, ld: impl Fn(&[i32]) -> __m512i) -> Self {
        Rq16 {
            mult: ld(&q.mult),
            mult_odd: ld(&q.mult_odd),
            lshift: ld(&q.lshift),
            rshift: ld(&q.rshift),
            rmask: ld(&q.rmask),
            rhalf: ld(&q.rhalf),
        }
    }

    /// Loads lanes `at..at + 16 / P` of `q` repeated `P` times ([`bcast_lanes`]): the
    /// depthwise rows that put `P` pixels in one vector.
    ///
    /// # Safety
    /// `at + 16 / P <= q.mult.len()`; `P` is 2 or 4.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub unsafe fn load_repeated<const P: usize>(q: &ChannelQuant, at: usize) -> Self {
        debug_assert!(at + 16 / P <= q.mult.len());
        // SAFETY: the caller guarantees 16 / P entries from `at`.
        Self::from_arrays(q, |v| unsafe {
            bcast_lanes::<P>(v.as_ptr().add(at).cast())
        })
    }

    /// One multiplier for all lanes.
    #[target_feature(enable = "avx512f")]
    pub fn splat(r: Requant) -> Self {
        let rmask = ((1i64 << r.right_shift()) - 1) as i32;
        Rq16 {
            mult: _mm512_set1_epi32(r.multiplier()),
            mult_odd: _mm512_set1_epi32(r.multiplier()),
            lshift: _mm512_set1_epi32(r.left_shift()),
            rshift: _mm512_set1_epi32(r.right_shift()),
            rmask: _mm512_set1_epi32(rmask),
            rhalf: _mm512_set1_epi32(rmask >> 1),
        }
    }
}

/// Output zero point and clamp range, broadcast.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Out16 {
    pub zp: __m512i,
    pub min: __m512i,
    pub max: __m512i,
}

impl Out16 {
    #[target_feature(enable = "avx512f")]
    pub fn new(o: crate::gemm::OutputQuant) -> Self {
        Out16 {
            zp: _mm512_set1_epi32(o.zp),
            min: _mm512_set1_epi32(o.min),
            max: _mm512_set1_epi32(o.max),
        }
    }
}

/// `MultiplyByQuantizedMultiplier` per lane. The multiplier is never `i32::MIN` (see
/// [`crate::quant::Requant`]), so the saturating case of the high multiply cannot occur.
/// `UP`: ties of the final shift round upward ([`ChannelQuant::ties_up`]) instead of away from
/// zero. A const parameter rather than a mask register: the extra AND in the depthwise row
/// loop cost 40–60 % there (code size and inlining; see BENCHMARKS.md).
#[inline]
#[target_feature(enable = "avx512f")]
pub(crate) fn mbqm16<const UP: bool>(acc: __m512i, q: Rq16) -> __m512i {
    let x = _mm512_sllv_epi32(acc, q.lshift);
    let round = _mm512_set1_epi64(1 << 30);
    // round(x·m / 2^31) = (x·m + 2^30) >> 31 (exact for the non-saturating case).
    let even = _mm512_mul_epi32(x, q.mult);
    let odd = _mm512_mul_epi32(_mm512_srli_epi64(x, 32), q.mult_odd);
    let even = _mm512_srli_epi64(_mm512_add_epi64(even, round), 31);
    let odd = _mm512_slli_epi64(_mm512_add_epi64(odd, round), 1);
    let high = _mm512_mask_blend_epi32(0xAAAA, even, odd);
    // RoundingDivideByPOT: round up when the remainder exceeds half (half + 1 if negative).
    let one = _mm512_set1_epi32(1);
    let rem = _mm512_and_si512(high, q.rmask);
    let thr = if UP {
        q.rhalf
    } else {
        // Negative values need a remainder above half + 1 (ties away from zero).
        _mm512_sub_epi32(q.rhalf, _mm512_srai_epi32(high, 31))
    };
    let shifted = _mm512_srav_epi32(high, q.rshift);
    let up = _mm512_cmpgt_epi32_mask(rem, thr);
    _mm512_mask_add_epi32(shifted, up, shifted, one)
}

/// Requantizes, adds the output zero point and clamps.
#[inline]
#[target_feature(enable = "avx512f")]
pub(crate) fn finish16(acc: __m512i, q: Rq16, o: Out16) -> __m512i {
    let v = _mm512_add_epi32(mbqm16::<false>(acc, q), o.zp);
    _mm512_min_epi32(_mm512_max_epi32(v, o.min), o.max)
}

/// [`mbqm16`] for channels with no left shift and a right shift ≥ 1
/// ([`ChannelQuant::fast`]), in one 64-bit rounding step per lane:
/// `floor((x·m + 2^30 + 2^(s−1)·2^31 − [x·m + 2^30 < 0]·2^31) / 2^(31+s))`, which equals
/// TFLite's `RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x, m), s)` (the first
/// step's floor folds into the second's). 12 instructions instead of 15. `FULL`: as for
/// [`Rq16F32`], the output range is all of int8 ([`LaneRequant::FULL_RANGE`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rq16Fast<const FULL: bool = false> {
    pub mult: __m512i,
    pub mult_odd: __m512i,
    pub add_even: __m512i,
    pub add_odd: __m512i,
    pub shift_even: __m512i,
    pub shift_odd: __m512i,
}

impl<const FULL: bool> Rq16Fast<FULL> {
    /// Loads channels `at..at + 16` of `q` (which must be `fast`).
    ///
    /// # Safety
    /// `at + 16 <= q.mult.len()`, `at` even, and `q.fast`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub unsafe fn load(q: &ChannelQuant, at: usize) -> Self {
        debug_assert!(q.fast && at + 16 <= q.mult.len() && at.is_multiple_of(2));
        // SAFETY: the caller guarantees 16 entries from `at` (8 pairs from `at / 2`).
        unsafe {
            Rq16Fast {
                mult: _mm512_loadu_si512(q.mult.as_ptr().add(at).cast()),
                mult_odd: _mm512_loadu_si512(q.mult_odd.as_ptr().add(at).cast()),
                add_even: _mm512_loadu_si512(q.add_even.as_ptr().add(at / 2).cast()),
                add_odd: _mm512_loadu_si512(q.add_odd.as_ptr().add(at / 2).cast()),
                shift_even: _mm512_loadu_si512(q.shift_even.as_ptr().add(at / 2).cast()),
                shift_odd: _mm512_loadu_si512(q.shift_odd.as_ptr().add(at / 2).cast()),
            }
        }
    }

    /// Loads lanes `at..at + 16 / P` of `q` (which must be `fast`) repeated `P` times, as
    /// [`Rq16::load_repeated`].
    ///
    /// # Safety
    /// `at + 16 / P <= q.mult.len()`, `at` even, `P` is 2 or 4, and `q.fast`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub unsafe fn load_repeated<const P: usize>(q: &ChannelQuant, at: usize) -> Self {
        debug_assert!(q.fast && at + 16 / P <= q.mult.len() && at.is_multiple_of(2));
        // SAFETY: the caller guarantees 16 / P entries from `at` (8 / P pairs from `at / 2`).
        unsafe {
            Rq16Fast {
                mult: bcast_lanes::<P>(q.mult.as_ptr().add(at).cast()),
                mult_odd: bcast_lanes::<P>(q.mult_odd.as_ptr().add(at).cast()),
                add_even: bcast_lanes::<P>(q.add_even.as_ptr().add(at / 2).cast()),
                add_odd: bcast_lanes::<P>(q.add_odd.as_ptr().add(at / 2).cast()),
                shift_even: bcast_lanes::<P>(q.shift_even.as_ptr().add(at / 2).cast()),
                shift_odd: bcast_lanes::<P>(q.shift_odd.as_ptr().add(at / 2).cast()),
            }
        }
    }
}

/// The first `64 / P` bytes at `src` repeated `P` times (`P` = 2: 256 bits twice; 4: 128 bits
/// four times).
///
/// # Safety
/// `64 / P` bytes are readable at `src`; `P` is 2 or 4.
#[inline]
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn bcast_lanes<const P: usize>(src: *const u8) -> __m512i {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        match P {
            2 => _mm512_broadcast_i64x4(_mm256_loadu_si256(src.cast())),
            4 => _mm512_broadcast_i32x4(_mm_loadu_si128(src.cast())),
            _ => unreachable!("{P} pixels per vector"),
        }
    }
}

/// The fast form of [`mbqm16`] (see [`Rq16Fast`]). `UP`: ties of the final shift round upward
/// ([`ChannelQuant::ties_up`]), so the `− 2^31` correction of negative products is skipped.
#[inline]
#[target_feature(enable = "avx512f")]
pub(crate) fn mbqm16_fast<const UP: bool, const FULL: bool>(
    x: __m512i,
    q: Rq16Fast<FULL>,
) -> __m512i {
    let even = _mm512_mul_epi32(x, q.mult);
    let odd = _mm512_mul_epi32(_mm512_srli_epi64(x, 32), q.mult_odd);
    let mut ue = _mm512_add_epi64(even, q.add_even);
    let mut uo = _mm512_add_epi64(odd, q.add_odd);
    if !UP {
        let lim = _mm512_set1_epi64(-(1 << 30));
        let two31 = _mm512_set1_epi64(1 << 31);
        ue = _mm512_mask_sub_epi64(ue, _mm512_cmplt_epi64_mask(even, lim), ue, two31);
        uo = _mm512_mask_sub_epi64(uo, _mm512_cmplt_epi64_mask(odd, lim), uo, two31);
    }
    let re = _mm512_srav_epi64(ue, q.shift_even);
    let ro = _mm512_srav_epi64(uo, q.shift_odd);
    _mm512_mask_blend_epi32(0xAAAA, re, ro)
}

/// The `f32` requantization ([`ChannelQuant::f32_range`]): per-lane scales and the range
/// `[min − zp, max − zp]`. `HI = false` where no product can reach the `i32` range
/// ([`ChannelQuant::f32_bounded`]): the narrowing paths then skip the upper clamp too
/// ([`LaneRequant::apply_narrowed`]). `FULL`: the output's clamp range is all of int8
/// ([`crate::gemm::OutputQuant::full_range`]), so the narrowing paths skip the byte clamp
/// ([`LaneRequant::FULL_RANGE`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rq16F32<const HI: bool = true, const FULL: bool = false> {
    pub scale: __m512,
    pub lo: __m512,
    pub hi: __m512,
}

impl<const HI: bool, const FULL: bool> Rq16F32<HI, FULL> {
    /// Loads channels `at..at + 16` of `q` (which must be in `f32` form).
    ///
    /// # Safety
    /// `at + 16 <= q.scale.len()` and `q.f32_range` is set.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub unsafe fn load(q: &ChannelQuant, at: usize) -> Self {
        debug_assert!(at + 16 <= q.scale.len());
        // SAFETY: the caller guarantees 16 entries from `at`.
        let scale = unsafe { _mm512_loadu_ps(q.scale.as_ptr().add(at)) };
        Self::with_scale(q, scale)
    }

    /// Loads lanes `at..at + 16 / P` of `q` repeated `P` times, as [`Rq16::load_repeated`].
    ///
    /// # Safety
    /// `at + 16 / P <= q.scale.len()`, `P` is 2 or 4, and `q.f32_range` is set.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub unsafe fn load_repeated<const P: usize>(q: &ChannelQuant, at: usize) -> Self {
        debug_assert!(at + 16 / P <= q.scale.len());
        // SAFETY: the caller guarantees 16 / P entries from `at`.
        let scale =
            unsafe { _mm512_castsi512_ps(bcast_lanes::<P>(q.scale.as_ptr().add(at).cast())) };
        Self::with_scale(q, scale)
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    fn with_scale(q: &ChannelQuant, scale: __m512) -> Self {
        let [lo, hi] = q.f32_range.unwrap_or([0.0; 2]);
        debug_assert!(q.f32_range.is_some());
        Rq16F32 {
            scale,
            lo: _mm512_set1_ps(lo),
            hi: _mm512_set1_ps(hi),
        }
    }
}

/// [`crate::quant::requantize_f32`] per lane, before the zero point: `cvtdq2ps`, `mulps`,
/// clamp, `cvtps2dq` rounding ties to even.
#[inline]
#[target_feature(enable = "avx512f")]
pub(crate) fn requant16_f32<const HI: bool, const FULL: bool>(
    acc: __m512i,
    q: Rq16F32<HI, FULL>,
) -> __m512i {
    let x = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), q.scale);
    let x = _mm512_min_ps(_mm512_max_ps(x, q.lo), q.hi);
    _mm512_cvt_roundps_epi32::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(x)
}

/// [`requant16_f32`] without the lower clamp, for a saturating narrowing followed by the
/// clamp to the output's minimum ([`LaneRequant::apply_narrowed`]): a product below `lo`
/// converts to an integer below `lo` (or to `i32::MIN` past the `i32` range), which the
/// narrowing and the clamp map to the minimum as the reference's clamp does. The upper clamp
/// stays where a product may reach 2^31 (`HI`): `cvtps2dq` turns a positive overflow into
/// `i32::MIN` too.
#[inline]
#[target_feature(enable = "avx512f")]
pub(crate) fn requant16_f32_narrowed<const HI: bool, const FULL: bool>(
    acc: __m512i,
    q: Rq16F32<HI, FULL>,
) -> __m512i {
    let x = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), q.scale);
    // Without HI every product lies below 2^30 in magnitude (plan time bound), so the
    // conversion cannot overflow and the narrowing saturates it as the clamp would.
    let x = if HI { _mm512_min_ps(x, q.hi) } else { x };
    _mm512_cvt_roundps_epi32::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(x)
}

/// A requantization form, [`Rq16`] (any channels), [`Rq16Fast`] (`ChannelQuant::fast`) or
/// [`Rq16F32`] (`ChannelQuant::f32_range`), chosen once per call so that the pixel loops
/// carry no branch.
pub(crate) trait LaneRequant: Copy {
    /// The output's clamp range is all of int8: after [`LaneRequant::apply_narrowed`] the
    /// saturating narrowing (`vpackssdw`, zero point added saturating, `vpacksswb`) already
    /// gives `clamp(v + zp, −128, 127)`, so the byte clamp is skipped. Chosen at dispatch
    /// (never with a residual add, whose own range is clamped).
    const FULL_RANGE: bool = false;

    /// Lanes `at..at + 16` of `q`.
    ///
    /// # Safety
    /// As the loaders' `load`; the CPU supports AVX-512 F.
    unsafe fn load(q: &ChannelQuant, at: usize) -> Self;

    /// Lanes `at..at + 16 / P` of `q` repeated `P` times.
    ///
    /// # Safety
    /// As the loaders' `load_repeated`; the CPU supports AVX-512 F.
    unsafe fn load_repeated<const P: usize>(q: &ChannelQuant, at: usize) -> Self;

    /// The requantized lanes before the zero point (`UP`: the fixed-point forms' ties round
    /// upward; the `f32` form ignores it).
    ///
    /// # Safety
    /// The CPU supports AVX-512 F.
    unsafe fn apply<const UP: bool>(self, acc: __m512i) -> __m512i;

    /// [`LaneRequant::apply`] for a result that is narrowed with signed saturation
    /// (`vpackssdw`, + zero point saturating, `vpacksswb`) and then clamped to at least the
    /// output's minimum: lanes that would lie below that minimum may come out as any value
    /// below it (the `f32` form skips its lower clamp).
    ///
    /// # Safety
    /// The CPU supports AVX-512 F.
    #[inline]
    unsafe fn apply_narrowed<const UP: bool>(self, acc: __m512i) -> __m512i {
        // SAFETY: forwarded from this function's contract.
        unsafe { self.apply::<UP>(acc) }
    }
}

impl LaneRequant for Rq16 {
    #[inline]
    unsafe fn load(q: &ChannelQuant, at: usize) -> Self {
        // SAFETY: forwarded from this function's contract.
        unsafe { Rq16::load(q, at) }
    }

    #[inline]
    unsafe fn load_repeated<const P: usize>(q: &ChannelQuant, at: usize) -> Self {
        // SAFETY: forwarded from this function's contract.
        unsafe { Rq16::load_repeated::<P>(q, at) }
    }

    #[inline]
    unsafe fn apply<const UP: bool>(self, acc: __m512i) -> __m512i {
        // SAFETY: forwarded from this function's contract.
        unsafe { mbqm16::<UP>(acc, self) }
    }
}

impl<const FULL: bool> LaneRequant for Rq16Fast<FULL> {
    const FULL_RANGE: bool = FULL;

    #[inline]
    unsafe fn load(q: &ChannelQuant, at: usize) -> Self {
        // SAFETY: forwarded from this function's contract.
        unsafe { Rq16Fast::load(q, at) }
    }

    #[inline]
    unsafe fn load_repeated<const P: usize>(q: &ChannelQuant, at: usize) -> Self {
        // SAFETY: forwarded from this function's contract.
        unsafe { Rq16Fast::load_repeated::<P>(q, at) }
    }

    #[inline]
    unsafe fn apply<const UP: bool>(self, acc: __m512i) -> __m512i {
        // SAFETY: forwarded from this function's contract.
        unsafe { mbqm16_fast::<UP, FULL>(acc, self) }
    }
}

impl<const HI: bool, const FULL: bool> LaneRequant for Rq16F32<HI, FULL> {
    const FULL_RANGE: bool = FULL;

    #[inline]
    unsafe fn load(q: &ChannelQuant, at: usize) -> Self {
        // SAFETY: forwarded from this function's contract.
        unsafe { Rq16F32::load(q, at) }
    }

    #[inline]
    unsafe fn load_repeated<const P: usize>(q: &ChannelQuant, at: usize) -> Self {
        // SAFETY: forwarded from this function's contract.
        unsafe { Rq16F32::load_repeated::<P>(q, at) }
    }

    #[inline]
    unsafe fn apply<const UP: bool>(self, acc: __m512i) -> __m512i {
        // SAFETY: forwarded from this function's contract.
        unsafe { requant16_f32(acc, self) }
    }

    #[inline]
    unsafe fn apply_narrowed<const UP: bool>(self, acc: __m512i) -> __m512i {
        // SAFETY: forwarded from this function's contract.
        unsafe { requant16_f32_narrowed(acc, self) }
    }
}

/// Requantizes with `R`, adds the output zero point and clamps ([`finish16`] for any form).
#[inline]
#[target_feature(enable = "avx512f")]
pub(crate) fn finish16_with<R: LaneRequant, const UP: bool>(
    acc: __m512i,
    q: R,
    o: Out16,
) -> __m512i {
    // SAFETY: AVX-512 F is enabled on this function.
    let v = _mm512_add_epi32(unsafe { q.apply::<UP>(acc) }, o.zp);
    _mm512_min_epi32(_mm512_max_epi32(v, o.min), o.max)
}
