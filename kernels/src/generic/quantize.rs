//! Quantize (f32 → int8) and dequantize (int8 → f32).

use crate::quant::{Requant, dequantize_i8, quantize_f32};

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

/// Int8 → int8 with a new scale and zero point (TFLite's `Requantize`):
/// `clamp(requant(q − in_zp) + out_zp)`, `requant = quantize_multiplier(in_scale / out_scale)`.
pub(crate) fn requantize(
    input: &[i8],
    in_zp: i32,
    requant: Requant,
    out_zp: i32,
    output: &mut [i8],
) {
    assert_eq!(input.len(), output.len(), "requantize: lengths differ");
    for (o, &q) in output.iter_mut().zip(input) {
        *o = (requant.apply(q as i32 - in_zp) + out_zp).clamp(-128, 127) as i8;
    }
}

/// Int8 → uint8 with a new scale and zero point (TFLite's `Requantize` into `uint8`):
/// `clamp(requant(q − in_zp) + out_zp, 0, 255)`.
pub(crate) fn requantize_u8(
    input: &[i8],
    in_zp: i32,
    requant: Requant,
    out_zp: i32,
    output: &mut [u8],
) {
    assert_eq!(input.len(), output.len(), "requantize: lengths differ");
    for (o, &q) in output.iter_mut().zip(input) {
        *o = (requant.apply(q as i32 - in_zp) + out_zp).clamp(0, 255) as u8;
    }
}
