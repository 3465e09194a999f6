//! Fixed-point requantization, exactly as TFLite's reference kernels.
//!
//! [`quantize_multiplier`] is TFLite's `QuantizeMultiplier` (a real multiplier becomes a Q31
//! multiplier and a power-of-two shift); [`multiply_by_quantized_multiplier`] is TFLite's
//! `MultiplyByQuantizedMultiplier` (left shift, `SaturatingRoundingDoublingHighMul`, then
//! `RoundingDivideByPOT`). The SIMD tiers implement the same arithmetic lane-wise and are tested
//! bit-exact against these functions.

/// A real multiplier as a Q31 fixed-point multiplier and a power-of-two exponent.
///
/// `real ≈ multiplier / 2^31 · 2^shift`. `shift > 0` is a left shift. Built only by
/// [`quantize_multiplier`] (or [`Requant::ZERO`]), so `multiplier` is never `i32::MIN` and
/// `shift` lies in `-31..=30`, which the SIMD tiers rely on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requant {
    multiplier: i32,
    shift: i32,
}

impl Requant {
    /// The multiplier that maps everything to zero.
    pub const ZERO: Requant = Requant {
        multiplier: 0,
        shift: 0,
    };

    /// The Q31 multiplier (in `[2^30, 2^31)` or 0).
    pub fn multiplier(self) -> i32 {
        self.multiplier
    }

    /// The power-of-two exponent; positive means a left shift.
    pub fn shift(self) -> i32 {
        self.shift
    }

    /// Left shift applied before the high multiply (`max(shift, 0)`).
    pub fn left_shift(self) -> i32 {
        self.shift.max(0)
    }

    /// Rounding right shift applied after the high multiply (`max(-shift, 0)`).
    pub fn right_shift(self) -> i32 {
        (-self.shift).max(0)
    }

    /// Applies the multiplier to `x` ([`multiply_by_quantized_multiplier`]).
    #[inline]
    pub fn apply(self, x: i32) -> i32 {
        multiply_by_quantized_multiplier(x, self)
    }

    /// The multiplier as an `f32` (`multiplier · 2^(shift − 31)`, rounded once to nearest):
    /// the per-channel scale of [`requantize_f32`].
    pub fn scale_f32(self) -> f32 {
        (self.multiplier as f64 * 2f64.powi(self.shift - 31)) as f32
    }

    /// Applies the multiplier to `x` with the final shift's ties rounded upward
    /// ([`multiply_by_quantized_multiplier_upward`], TFLite's optimized depthwise kernels).
    #[inline]
    pub fn apply_upward(self, x: i32) -> i32 {
        multiply_by_quantized_multiplier_upward(x, self)
    }
}

/// `frexp` for finite positive `x`: `x = q · 2^e` with `q` in `[0.5, 1)`.
fn frexp(x: f64) -> (f64, i32) {
    let bits = x.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i32;
    if exp == 0 {
        // Subnormal: scale into the normal range first.
        let (q, e) = frexp(x * 2f64.powi(64));
        return (q, e - 64);
    }
    let q = f64::from_bits((bits & !(0x7ff << 52)) | (1022 << 52));
    (q, exp - 1022)
}

/// TFLite's `QuantizeMultiplier`: a non-negative real multiplier as Q31 multiplier + shift.
///
/// Multipliers below about 2^-31 flush to zero, as in TFLite. Multipliers of 2^30 or more
/// (never produced by real models) saturate to `shift = 30, multiplier = i32::MAX`, as TFLite
/// does when built with single rounding.
///
/// # Panics
/// If `real` is negative, NaN or infinite.
pub fn quantize_multiplier(real: f64) -> Requant {
    assert!(
        real.is_finite() && real >= 0.0,
        "requantization multiplier must be finite and >= 0, got {real}"
    );
    if real == 0.0 {
        return Requant::ZERO;
    }
    let (q, mut shift) = frexp(real);
    let mut q_fixed = (q * (1i64 << 31) as f64).round() as i64;
    debug_assert!(q_fixed <= 1i64 << 31);
    if q_fixed == 1i64 << 31 {
        q_fixed /= 2;
        shift += 1;
    }
    if shift < -31 {
        shift = 0;
        q_fixed = 0;
    }
    if shift > 30 {
        shift = 30;
        q_fixed = i32::MAX as i64;
    }
    Requant {
        multiplier: q_fixed as i32,
        shift,
    }
}

/// The requantization multiplier of a conv/FC output channel:
/// `input_scale · weight_scale / output_scale`, computed in `f64` as TFLite does.
pub fn conv_multiplier(input_scale: f32, weight_scale: f32, output_scale: f32) -> Requant {
    quantize_multiplier(input_scale as f64 * weight_scale as f64 / output_scale as f64)
}

/// gemmlowp's `SaturatingRoundingDoublingHighMul`: `round(a·b / 2^31)`, saturating the single
/// overflow case `a = b = i32::MIN`.
#[inline]
pub fn saturating_rounding_doubling_high_mul(a: i32, b: i32) -> i32 {
    if a == i32::MIN && b == i32::MIN {
        return i32::MAX;
    }
    let ab = a as i64 * b as i64;
    let nudge = if ab >= 0 {
        1i64 << 30
    } else {
        1 - (1i64 << 30)
    };
    ((ab + nudge) / (1i64 << 31)) as i32
}

/// gemmlowp's `RoundingDivideByPOT`: `x / 2^exponent` rounded to nearest, ties away from zero.
#[inline]
pub fn rounding_divide_by_pot(x: i32, exponent: i32) -> i32 {
    debug_assert!((0..=31).contains(&exponent));
    let mask = ((1i64 << exponent) - 1) as i32;
    let remainder = x & mask;
    let threshold = (mask >> 1) + i32::from(x < 0);
    (x >> exponent) + i32::from(remainder > threshold)
}

/// TFLite's `MultiplyByQuantizedMultiplier` (the double-rounding reference form).
///
/// The left shift wraps on overflow (TFLite leaves it undefined); the SIMD tiers wrap the same way.
#[inline]
pub fn multiply_by_quantized_multiplier(x: i32, r: Requant) -> i32 {
    let shifted = x.wrapping_mul(1i32 << r.left_shift());
    rounding_divide_by_pot(
        saturating_rounding_doubling_high_mul(shifted, r.multiplier),
        r.right_shift(),
    )
}

/// TFLite's optimized depthwise convolution output stage
/// (`DepthwiseConvRound<DepthwiseConvOutputRounding::kUpward>`): the same high multiply as
/// [`multiply_by_quantized_multiplier`], then a right shift that rounds ties **upward**
/// (`(h + 2^(s−1)) >> s`) instead of away from zero. It differs only on exact negative ties,
/// but that is enough to move a logit by one step: LiteRT's CPU kernels (without XNNPACK) use
/// it for every int8 depthwise convolution, so Outpost's depthwise kernels do too.
#[inline]
pub fn multiply_by_quantized_multiplier_upward(x: i32, r: Requant) -> i32 {
    let shifted = x.wrapping_mul(1i32 << r.left_shift());
    let high = saturating_rounding_doubling_high_mul(shifted, r.multiplier);
    let s = r.right_shift();
    if s == 0 {
        high
    } else {
        high.wrapping_add(1 << (s - 1)) >> s
    }
}

/// Outpost's `f32` requantization (the model format's `"requantization": "f32"`, what
/// XNNPACK does): `clamp(round_even(clamp(f32(acc) · scale, min − zp, max − zp)) + zp)`.
/// `acc` is rounded to `f32` once, the product once (IEEE single precision, no fused
/// multiply-add), and the result rounds ties to even: the SIMD tiers' `cvtdq2ps`, `mulps`,
/// `maxps`/`minps` and `cvtps2dq` give the same bits. The clamp to `[min − zp, max − zp]`
/// (integers, so it commutes with the rounding) comes before the conversion so that no
/// accumulator can overflow it. `scale` is [`Requant::scale_f32`]; it differs from TFLite's
/// fixed-point form by at most one step, on results within about 2^−20 of a tie.
#[inline]
pub fn requantize_f32(acc: i32, scale: f32, zp: i32, min: i32, max: i32) -> i32 {
    let x = (acc as f32 * scale)
        .max((min - zp) as f32)
        .min((max - zp) as f32);
    x.round_ties_even() as i32 + zp
}

/// Quantizes one real value: `round(x / scale) + zero_point`, clamped to int8 (TFLite's
/// `AffineQuantize`, with rounding half away from zero).
#[inline]
pub fn quantize_f32(x: f32, scale: f32, zero_point: i32) -> i8 {
    // `as i64` saturates (and maps NaN to 0); the add saturates too, so no input can overflow.
    let q = ((x / scale).round() as i64).saturating_add(i64::from(zero_point));
    q.clamp(-128, 127) as i8
}

/// Dequantizes one int8 value: `scale · (q − zero_point)`.
#[inline]
pub fn dequantize_i8(q: i8, scale: f32, zero_point: i32) -> f32 {
    scale * (q as i32 - zero_point) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f32_requantization_rounds_ties_to_even_and_clamps() {
        let r = quantize_multiplier(0.25);
        assert_eq!(r.scale_f32(), 0.25);
        let f = |acc| requantize_f32(acc, r.scale_f32(), -3, -128, 20);
        // 2/4 and 6/4 are ties: to even (0 and 2), then + zp.
        assert_eq!([f(2), f(6), f(-2), f(-6), f(5)], [-3, -1, -3, -5, -2]);
        // Far outside the range: clamped, no overflow.
        assert_eq!([f(i32::MAX), f(i32::MIN)], [20, -128]);
        // Within a step of TFLite's fixed point form on a scale that is not a power of two.
        let r = quantize_multiplier(0.0123);
        for acc in (-20_000..20_000).step_by(7) {
            let exact = r.apply(acc) - 3;
            let f = requantize_f32(acc, r.scale_f32(), -3, -128, 127);
            assert!(
                (f - exact.clamp(-128, 127)).abs() <= 1,
                "{acc}: {f} vs {exact}"
            );
        }
    }

    #[test]
    fn upward_rounding_differs_only_on_negative_ties() {
        // Multiplier 0.5 · 2^-2 = 1/8: even x halve exactly in the high multiply, then the
        // shift by 2 meets ties at x / 8 = ±0.5, ±1.5.
        let r = quantize_multiplier(0.125);
        assert_eq!((r.multiplier(), r.right_shift()), (1 << 30, 2));
        let cases = [
            (12, 2, 2),
            (4, 1, 1),
            (-4, -1, 0),
            (-12, -2, -1),
            (-14, -2, -2),
            (-10, -1, -1),
        ];
        for (x, away, up) in cases {
            assert_eq!(r.apply(x), away, "away from zero, x {x}");
            assert_eq!(r.apply_upward(x), up, "upward, x {x}");
        }
    }

    #[test]
    fn quantize_f32_saturates_at_the_extremes() {
        assert_eq!(quantize_f32(f32::MAX, 1e-30, i32::MAX), 127);
        assert_eq!(quantize_f32(f32::INFINITY, 1.0, 127), 127);
        assert_eq!(quantize_f32(f32::MIN, 1e-30, i32::MIN), -128);
        assert_eq!(quantize_f32(f32::NEG_INFINITY, 1.0, -128), -128);
        assert_eq!(quantize_f32(f32::NAN, 1.0, 3), 3);
        assert_eq!(quantize_f32(2.5, 1.0, 0), 3, "half away from zero");
        assert_eq!(quantize_f32(-2.5, 1.0, 0), -3, "half away from zero");
    }

    #[test]
    fn quantize_multiplier_matches_tflite() {
        // Values computed with TFLite's QuantizeMultiplier.
        assert_eq!(
            quantize_multiplier(0.5),
            Requant {
                multiplier: 1 << 30,
                shift: 0
            }
        );
        assert_eq!(
            quantize_multiplier(1.0),
            Requant {
                multiplier: 1 << 30,
                shift: 1
            }
        );
        assert_eq!(
            quantize_multiplier(0.25),
            Requant {
                multiplier: 1 << 30,
                shift: -1
            }
        );
        assert_eq!(
            quantize_multiplier(0.75),
            Requant {
                multiplier: 1_610_612_736,
                shift: 0
            }
        );
        assert_eq!(
            quantize_multiplier(3.0),
            Requant {
                multiplier: 1_610_612_736,
                shift: 2
            }
        );
        // 0.1 = 0.8 * 2^-3; round(0.8 * 2^31) = 1717986918.
        assert_eq!(
            quantize_multiplier(0.1),
            Requant {
                multiplier: 1_717_986_918,
                shift: -3
            }
        );
        // Just below 1.0 rounds up to 2^31 and is renormalised.
        assert_eq!(
            quantize_multiplier(1.0 - 1e-12),
            Requant {
                multiplier: 1 << 30,
                shift: 1
            }
        );
        assert_eq!(quantize_multiplier(0.0), Requant::ZERO);
        // Below 2^-32 flushes to zero.
        assert_eq!(quantize_multiplier(1e-11), Requant::ZERO);
        assert_eq!(
            quantize_multiplier(1e12),
            Requant {
                multiplier: i32::MAX,
                shift: 30
            }
        );
    }

    #[test]
    fn srdhm_and_rounding_shift() {
        assert_eq!(
            saturating_rounding_doubling_high_mul(i32::MIN, i32::MIN),
            i32::MAX
        );
        assert_eq!(
            saturating_rounding_doubling_high_mul(1 << 30, 1 << 30),
            1 << 29
        );
        // 3 * 2^30 / 2^31 = 1.5 -> 2; -1.5 -> -1: gemmlowp's nudge rounds ties upwards.
        assert_eq!(saturating_rounding_doubling_high_mul(3, 1 << 30), 2);
        assert_eq!(saturating_rounding_doubling_high_mul(-3, 1 << 30), -1);
        assert_eq!(saturating_rounding_doubling_high_mul(1, 1 << 30), 1);
        assert_eq!(saturating_rounding_doubling_high_mul(-1, 1 << 30), 0);
        assert_eq!(saturating_rounding_doubling_high_mul(-5, 1 << 30), -2);
        assert_eq!(rounding_divide_by_pot(5, 1), 3);
        assert_eq!(rounding_divide_by_pot(-5, 1), -3);
        assert_eq!(rounding_divide_by_pot(7, 2), 2);
        assert_eq!(rounding_divide_by_pot(-6, 2), -2);
        assert_eq!(rounding_divide_by_pot(-7, 2), -2);
        assert_eq!(rounding_divide_by_pot(i32::MIN, 31), -1);
        assert_eq!(rounding_divide_by_pot(100, 0), 100);
    }

    #[test]
    fn multiply_by_quantized_multiplier_hand_values() {
        // acc 1000 * 0.1: SRDHM(1000, 1717986918) = 800, /8 = 100.
        assert_eq!(
            multiply_by_quantized_multiplier(1000, quantize_multiplier(0.1)),
            100
        );
        assert_eq!(
            multiply_by_quantized_multiplier(-1000, quantize_multiplier(0.1)),
            -100
        );
        // 0.75 * 3 = 2.25 -> 2; 0.75 * 5 = 3.75 -> 4; 0.75 * 2 = 1.5 -> 2.
        assert_eq!(
            multiply_by_quantized_multiplier(3, quantize_multiplier(0.75)),
            2
        );
        assert_eq!(
            multiply_by_quantized_multiplier(5, quantize_multiplier(0.75)),
            4
        );
        assert_eq!(
            multiply_by_quantized_multiplier(2, quantize_multiplier(0.75)),
            2
        );
        // Multiplier > 1: 3.0 * 7 = 21.
        assert_eq!(
            multiply_by_quantized_multiplier(7, quantize_multiplier(3.0)),
            21
        );
        assert_eq!(
            multiply_by_quantized_multiplier(-7, quantize_multiplier(3.0)),
            -21
        );
        // A typical conv scale: 0.0235 * 0.00392 / 0.0471.
        let r = conv_multiplier(0.0235, 0.00392, 0.0471);
        let real = 0.0235f32 as f64 * 0.00392f32 as f64 / 0.0471f32 as f64;
        for acc in [-40000, -1234, -1, 0, 1, 999, 40000] {
            let got = multiply_by_quantized_multiplier(acc, r);
            assert!(
                (got as f64 - acc as f64 * real).abs() <= 0.5 + 1e-6,
                "{acc}: {got}"
            );
        }
    }

    #[test]
    fn quantize_roundtrip() {
        assert_eq!(quantize_f32(0.5, 0.25, -3), -1);
        assert_eq!(quantize_f32(100.0, 0.1, 0), 127);
        assert_eq!(quantize_f32(-0.125, 0.25, 0), -1);
        assert_eq!(dequantize_i8(-1, 0.25, -3), 0.5);
    }
}
