//! Quantize (f32 → int8) and dequantize (int8 → f32).

use crate::quant::{dequantize_i8, quantize_f32};

/// `out = clamp(round(x / scale) + zp)`.
pub(crate) fn quantize(input: &[f32], scale: f32, zero_point: i32, output: &mut [i8]) {
    assert_eq!(input.len(), output.len(), "quantize: lengths differ");
    for (o, &x) in output.iter_mut().zip(input) {
        *o = quantize_f32(x, scale, zero_point);
    }
}

/// `out = scale · (q − zp)`.
pub(crate) fn dequantize(input: &[i8], scale: f32, zero_point: i32, output: &mut [f32]) {
    assert_eq!(input.len(), output.len(), "dequantize: lengths differ");
    for (o, &q) in output.iter_mut().zip(input) {
        *o = dequantize_i8(q, scale, zero_point);
    }
}
