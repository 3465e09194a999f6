//! Quantized element-wise add and mul parameters (TFLite's int8 `Add`/`Mul` preparation).
//!
//! Both inputs and the output have the same shape (broadcasting is the planner's job or a
//! later addition).

use crate::quant::{Requant, quantize_multiplier};

/// TFLite's left shift for int8 add: inputs are scaled to 2^20 before rescaling.
pub const ADD_LEFT_SHIFT: i32 = 20;

/// Prepared int8 add: `out = requant(in1·s1 + in2·s2)` with TFLite's fixed-point scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddQuant {
    pub(crate) in1_zp: i32,
    pub(crate) in2_zp: i32,
    pub(crate) out_zp: i32,
    pub(crate) in1: Requant,
    pub(crate) in2: Requant,
    pub(crate) out: Requant,
    pub(crate) act_min: i32,
    pub(crate) act_max: i32,
}

impl AddQuant {
    /// Prepares an add of two int8 tensors (`scale`, `zero point` each) into an int8 output
    /// clamped to `act_min..=act_max`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        in1_scale: f32,
        in1_zp: i32,
        in2_scale: f32,
        in2_zp: i32,
        out_scale: f32,
        out_zp: i32,
        act_min: i32,
        act_max: i32,
    ) -> Self {
        assert!(act_min <= act_max, "add: empty activation range");
        let twice_max = 2.0 * (in1_scale.max(in2_scale) as f64);
        AddQuant {
            in1_zp,
            in2_zp,
            out_zp,
            in1: quantize_multiplier(in1_scale as f64 / twice_max),
            in2: quantize_multiplier(in2_scale as f64 / twice_max),
            out: quantize_multiplier(
                twice_max / ((1i64 << ADD_LEFT_SHIFT) as f64 * out_scale as f64),
            ),
            act_min,
            act_max,
        }
    }

    /// Adds one pair of values (the scalar reference).
    #[inline]
    pub fn apply(&self, a: i8, b: i8) -> i8 {
        let x = (a as i32 - self.in1_zp) << ADD_LEFT_SHIFT;
        let y = (b as i32 - self.in2_zp) << ADD_LEFT_SHIFT;
        let sum = self.in1.apply(x).wrapping_add(self.in2.apply(y));
        let v = self.out.apply(sum).wrapping_add(self.out_zp);
        v.clamp(self.act_min, self.act_max) as i8
    }
}

/// Prepared int8 add with 16-bit multipliers (the model format's `"arithmetic": "int16"`):
/// `acc = a·m1 + b·m2 + bias` in 32 bits, `out = clamp((acc >> shift) + out_zp)`, where `bias`
/// folds the input zero points and the rounding (`2^(shift−1)`, ties upward).
///
/// `m1 = round(s1/s_o · 2^shift)` and `m2` likewise, with `shift` the largest in `8..=30` that
/// keeps both within `i16`. No step can overflow: `|a·m1| < 2^22` and `|bias| < 2^30`. With
/// `shift ≥ 8` the multipliers' rounding moves a result by at most `255 · 2^−shift ≤ 1/2`
/// step, so the output is within one step of the exact real sum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Add16Quant {
    pub(crate) m1: i16,
    pub(crate) m2: i16,
    pub(crate) bias: i32,
    pub(crate) shift: u32,
    pub(crate) out_zp: i32,
    pub(crate) act_min: i32,
    pub(crate) act_max: i32,
}

/// Largest right shift of [`Add16Quant`] (keeps `2^(shift−1)` and the bias inside `i32`).
const ADD16_MAX_SHIFT: u32 = 30;
/// Smallest right shift of [`Add16Quant`] (bounds the multipliers' rounding error).
const ADD16_MIN_SHIFT: u32 = 8;

impl Add16Quant {
    /// Prepares the add, or `None` when a scale ratio `s1/s_o` or `s2/s_o` is 128 or more
    /// (beyond `32767 / 2^8`), a scale is not a positive finite number, or an input zero point
    /// is outside int8: then only [`AddQuant`] can do it.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        in1_scale: f32,
        in1_zp: i32,
        in2_scale: f32,
        in2_zp: i32,
        out_scale: f32,
        out_zp: i32,
        act_min: i32,
        act_max: i32,
    ) -> Option<Self> {
        assert!(act_min <= act_max, "add: empty activation range");
        let ok = |s: f32| s.is_finite() && s > 0.0;
        let zp_ok = |z: i32| (-128..=127).contains(&z);
        if !(ok(in1_scale) && ok(in2_scale) && ok(out_scale) && zp_ok(in1_zp) && zp_ok(in2_zp)) {
            return None;
        }
        let r1 = in1_scale as f64 / out_scale as f64;
        let r2 = in2_scale as f64 / out_scale as f64;
        let top = r1.max(r2);
        let fits = |shift: u32| (top * (1u64 << shift) as f64).round() <= i16::MAX as f64;
        let shift = (ADD16_MIN_SHIFT..=ADD16_MAX_SHIFT)
            .rev()
            .find(|&s| fits(s))?;
        let scale = (1u64 << shift) as f64;
        let m1 = (r1 * scale).round() as i32;
        let m2 = (r2 * scale).round() as i32;
        let half = 1i32 << (shift - 1);
        Some(Add16Quant {
            m1: m1 as i16,
            m2: m2 as i16,
            bias: half - in1_zp * m1 - in2_zp * m2,
            shift,
            out_zp,
            act_min,
            act_max,
        })
    }

    /// `(m1, m2, shift)`.
    pub fn multipliers(&self) -> (i16, i16, u32) {
        (self.m1, self.m2, self.shift)
    }

    /// The same add with its operands exchanged: `swapped().apply(b, a) == apply(a, b)`
    /// (the bias holds both zero points' terms, so only the multipliers trade places).
    pub fn swapped(&self) -> Self {
        Add16Quant {
            m1: self.m2,
            m2: self.m1,
            ..*self
        }
    }

    /// Adds one pair of values (the scalar reference).
    #[inline]
    pub fn apply(&self, a: i8, b: i8) -> i8 {
        let acc = a as i32 * self.m1 as i32 + b as i32 * self.m2 as i32 + self.bias;
        let v = (acc >> self.shift) + self.out_zp;
        v.clamp(self.act_min, self.act_max) as i8
    }
}

/// The second operand of an add (int8, or f32 with `T = f32`) stored with fewer channels
/// than the output: channels `b_channels..channels` of every pixel read as `fill`. This is a
/// channel pad (zeros after the channels, as residual blocks that widen use it) fused into
/// the add that consumes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelPadded<T = i8> {
    /// Channels of the output and of the first operand.
    pub channels: usize,
    /// Channels of the second operand (at most `channels`).
    pub b_channels: usize,
    /// The value of the missing channels (the pad's value: the operand's zero point, or the
    /// f32 pad's constant).
    pub fill: T,
}

impl<T> ChannelPadded<T> {
    /// Panics unless `a`, `b` and `out` hold the same whole number of pixels.
    pub(crate) fn check(&self, a: usize, b: usize, out: usize) {
        assert!(
            self.b_channels > 0 && self.b_channels <= self.channels,
            "add: second operand needs 1 to `channels` channels"
        );
        assert!(
            a == out && a.is_multiple_of(self.channels),
            "add: first operand and output lengths"
        );
        assert_eq!(
            b,
            out / self.channels * self.b_channels,
            "add: second operand length"
        );
    }
}

/// Prepared int8 mul: `out = requant((in1 − zp1)·(in2 − zp2) · s1·s2/s_out)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MulQuant {
    pub(crate) in1_zp: i32,
    pub(crate) in2_zp: i32,
    pub(crate) out_zp: i32,
    pub(crate) out: Requant,
    pub(crate) act_min: i32,
    pub(crate) act_max: i32,
}

impl MulQuant {
    /// Prepares a mul of two int8 tensors into an int8 output.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        in1_scale: f32,
        in1_zp: i32,
        in2_scale: f32,
        in2_zp: i32,
        out_scale: f32,
        out_zp: i32,
        act_min: i32,
        act_max: i32,
    ) -> Self {
        assert!(act_min <= act_max, "mul: empty activation range");
        let real = in1_scale as f64 * in2_scale as f64 / out_scale as f64;
        MulQuant {
            in1_zp,
            in2_zp,
            out_zp,
            out: quantize_multiplier(real),
            act_min,
            act_max,
        }
    }

    /// Multiplies one pair of values (the scalar reference).
    #[inline]
    pub fn apply(&self, a: i8, b: i8) -> i8 {
        let prod = (a as i32 - self.in1_zp) * (b as i32 - self.in2_zp);
        let v = self.out.apply(prod).wrapping_add(self.out_zp);
        v.clamp(self.act_min, self.act_max) as i8
    }
}
