//! Element-wise add and mul, int8 (TFLite reference arithmetic) and f32.

use crate::elementwise::{Add16Quant, AddQuant, ChannelPadded, MulQuant};

fn check(a: usize, b: usize, out: usize) {
    assert!(
        a == out && b == out,
        "element-wise op: lengths {a}, {b} and output {out} differ"
    );
}

/// Int8 add.
pub(crate) fn add_i8(q: &AddQuant, a: &[i8], b: &[i8], out: &mut [i8]) {
    check(a.len(), b.len(), out.len());
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        *o = q.apply(x, y);
    }
}

/// Int8 add, 16-bit multipliers ([`Add16Quant`]).
pub(crate) fn add16_i8(q: &Add16Quant, a: &[i8], b: &[i8], out: &mut [i8]) {
    check(a.len(), b.len(), out.len());
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        *o = q.apply(x, y);
    }
}

/// Int8 add (16-bit multipliers) of `a` and a channel-padded `b`.
pub(crate) fn add16_i8_padded(
    q: &Add16Quant,
    pad: &ChannelPadded,
    a: &[i8],
    b: &[i8],
    out: &mut [i8],
) {
    pad.check(a.len(), b.len(), out.len());
    let pixels = out
        .chunks_exact_mut(pad.channels)
        .zip(a.chunks_exact(pad.channels));
    for ((o, x), y) in pixels.zip(b.chunks_exact(pad.b_channels)) {
        for (ch, (o, &x)) in o.iter_mut().zip(x).enumerate() {
            let y = if ch < pad.b_channels { y[ch] } else { pad.fill };
            *o = q.apply(x, y);
        }
    }
}

/// `out = out ⊕ pad(b)` in place: the second half of a convolution with its residual add.
pub(crate) fn add16_i8_padded_in_place(
    q: &Add16Quant,
    pad: &ChannelPadded,
    out: &mut [i8],
    b: &[i8],
) {
    pad.check(out.len(), b.len(), out.len());
    for (o, y) in out
        .chunks_exact_mut(pad.channels)
        .zip(b.chunks_exact(pad.b_channels))
    {
        for (ch, o) in o.iter_mut().enumerate() {
            let y = if ch < pad.b_channels { y[ch] } else { pad.fill };
            *o = q.apply(*o, y);
        }
    }
}

/// Int8 mul.
pub(crate) fn mul_i8(q: &MulQuant, a: &[i8], b: &[i8], out: &mut [i8]) {
    check(a.len(), b.len(), out.len());
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        *o = q.apply(x, y);
    }
}

/// F32 add with a clamp.
#[inline(always)] // into the AVX2 tier's copy (`x86_64::avx2::add_f32`)
pub(crate) fn add_f32(a: &[f32], b: &[f32], out: &mut [f32], act: (f32, f32)) {
    check(a.len(), b.len(), out.len());
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        *o = (x + y).clamp(act.0, act.1);
    }
}

/// F32 add with a clamp, the second operand channel-padded (`pad.fill` for its missing
/// channels). Either operand order of the graph's add: IEEE addition is commutative bit for
/// bit, but for which NaN's payload survives, which Rust leaves unspecified anyway.
#[inline(always)] // as `add_f32`
pub(crate) fn add_f32_padded(
    pad: &ChannelPadded<f32>,
    a: &[f32],
    b: &[f32],
    out: &mut [f32],
    act: (f32, f32),
) {
    pad.check(a.len(), b.len(), out.len());
    let pixels = out
        .chunks_exact_mut(pad.channels)
        .zip(a.chunks_exact(pad.channels));
    for ((o, x), y) in pixels.zip(b.chunks_exact(pad.b_channels)) {
        let (o_b, o_fill) = o.split_at_mut(pad.b_channels);
        let (x_b, x_fill) = x.split_at(pad.b_channels);
        for ((o, &x), &y) in o_b.iter_mut().zip(x_b).zip(y) {
            *o = (x + y).clamp(act.0, act.1);
        }
        for (o, &x) in o_fill.iter_mut().zip(x_fill) {
            *o = (x + pad.fill).clamp(act.0, act.1);
        }
    }
}

/// F32 mul with a clamp.
pub(crate) fn mul_f32(a: &[f32], b: &[f32], out: &mut [f32], act: (f32, f32)) {
    check(a.len(), b.len(), out.len());
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        *o = (x * y).clamp(act.0, act.1);
    }
}
