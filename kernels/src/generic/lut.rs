//! Table lookups and float unary functions.

use crate::lut::Lut;

/// Applies an int8 lookup table.
pub(crate) fn lut_i8(lut: &Lut, input: &[i8], output: &mut [i8]) {
    assert_eq!(input.len(), output.len(), "lut: lengths differ");
    for (o, &x) in output.iter_mut().zip(input) {
        *o = lut.get(x);
    }
}

/// Applies `f` element-wise (f32 logistic, tanh, hardswish…).
pub(crate) fn map_f32(input: &[f32], output: &mut [f32], f: fn(f32) -> f32) {
    assert_eq!(input.len(), output.len(), "unary: lengths differ");
    for (o, &x) in output.iter_mut().zip(input) {
        *o = f(x);
    }
}
