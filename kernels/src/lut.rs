//! 256-entry lookup tables for int8 unary ops (logistic, tanh, hardswish, or any function),
//! built at plan time exactly as TFLite's `LUTPopulate`.

/// An int8 → int8 lookup table.
#[derive(Clone, PartialEq, Eq)]
pub struct Lut {
    pub(crate) table: [i8; 256],
}

impl core::fmt::Debug for Lut {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Lut").finish_non_exhaustive()
    }
}

impl Lut {
    /// Tabulates `f` between the given input and output quantizations (f32 arithmetic, as
    /// TFLite: dequantize, transform, `round(y / out_scale) + out_zp`, clamp).
    pub fn new(
        in_scale: f32,
        in_zp: i32,
        out_scale: f32,
        out_zp: i32,
        f: impl Fn(f32) -> f32,
    ) -> Self {
        let inv = 1.0 / out_scale;
        let mut table = [0i8; 256];
        for v in -128i32..=127 {
            let y = f(in_scale * (v - in_zp) as f32);
            let q = ((y * inv).round() + out_zp as f32) as i32;
            table[v as i8 as u8 as usize] = q.clamp(-128, 127) as i8;
        }
        Lut { table }
    }

    /// Logistic (sigmoid); TFLite's int8 output is scale 1/256, zero point −128.
    pub fn logistic(in_scale: f32, in_zp: i32, out_scale: f32, out_zp: i32) -> Self {
        Self::new(in_scale, in_zp, out_scale, out_zp, |x| {
            1.0 / (1.0 + (-x).exp())
        })
    }

    /// Tanh; TFLite's int8 output is scale 1/128, zero point 0.
    pub fn tanh(in_scale: f32, in_zp: i32, out_scale: f32, out_zp: i32) -> Self {
        Self::new(in_scale, in_zp, out_scale, out_zp, f32::tanh)
    }

    /// Hardswish `x · relu6(x + 3) / 6`.
    pub fn hardswish(in_scale: f32, in_zp: i32, out_scale: f32, out_zp: i32) -> Self {
        Self::new(in_scale, in_zp, out_scale, out_zp, hardswish)
    }

    /// Looks one value up.
    #[inline]
    pub fn get(&self, x: i8) -> i8 {
        self.table[x as u8 as usize]
    }
}

/// `x · relu6(x + 3) / 6`.
pub fn hardswish(x: f32) -> f32 {
    x * (x + 3.0).clamp(0.0, 6.0) / 6.0
}

/// `1 / (1 + e^−x)`.
pub fn logistic(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}
