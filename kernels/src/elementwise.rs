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
