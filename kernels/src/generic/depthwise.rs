//! Reference depthwise convolution (TFLite `DepthwiseConvPerChannel`), int8 and f32.

use crate::depthwise::PackedDepthwise;
use crate::float::PackedDepthwiseF32;
use crate::params::DepthwiseParams;
use crate::quant::requantize_f32;

/// Visits the valid taps of output pixel (`b`, `oy`, `ox`): `f(input_pixel_offset, tap)`.
#[inline]
fn for_each_tap(
    d: &DepthwiseParams,
    b: usize,
    oy: usize,
    ox: usize,
    mut f: impl FnMut(usize, usize),
) {
    for ky in 0..d.k_h {
        let iy = (oy * d.stride_h + ky * d.dilation_h) as isize - d.pad_top as isize;
        if iy < 0 || iy as usize >= d.in_h {
            continue;
        }
        for kx in 0..d.k_w {
            let ix = (ox * d.stride_w + kx * d.dilation_w) as isize - d.pad_left as isize;
            if ix < 0 || ix as usize >= d.in_w {
                continue;
            }
            f(
                ((b * d.in_h + iy as usize) * d.in_w + ix as usize) * d.in_c,
                ky * d.k_w + kx,
            );
        }
    }
}

/// Int8 depthwise convolution, scalar reference (any multiplier, kernel, stride, dilation).
pub(crate) fn depthwise_i8(
    p: &PackedDepthwise,
    input: &[i8],
    output: &mut [i8],
    _scratch: &mut [u8],
) {
    let d = &p.params;
    assert_eq!(input.len(), d.input_len(), "depthwise: input length");
    assert_eq!(output.len(), d.output_len(), "depthwise: output length");
    let oc_n = d.out_c();
    for b in 0..d.batch {
        for oy in 0..d.out_h {
            for ox in 0..d.out_w {
                let out = &mut output[((b * d.out_h + oy) * d.out_w + ox) * oc_n..][..oc_n];
                for (oc, o) in out.iter_mut().enumerate() {
                    let ic = oc / d.multiplier;
                    let mut acc = 0i32;
                    for_each_tap(d, b, oy, ox, |src, tap| {
                        let x = input[src + ic] as i32 - d.input_zp;
                        acc = acc.wrapping_add(x.wrapping_mul(p.weights[tap * oc_n + oc] as i32));
                    });
                    acc = acc.wrapping_add(p.bias[oc]);
                    let r = p.requant[oc];
                    let v = if d.requant_f32 {
                        requantize_f32(acc, r.scale_f32(), d.output_zp, d.act_min, d.act_max)
                    } else if p.quant.ties_up {
                        r.apply_upward(acc).wrapping_add(d.output_zp)
                    } else {
                        r.apply(acc).wrapping_add(d.output_zp)
                    };
                    *o = v.clamp(d.act_min, d.act_max) as i8;
                }
            }
        }
    }
}

/// F32 depthwise convolution (a multiply then an add per tap).
pub(crate) fn depthwise_f32(p: &PackedDepthwiseF32, input: &[f32], output: &mut [f32]) {
    depthwise_f32_in::<false>(p, input, output)
}

/// [`depthwise_f32`] with a fused multiply-add per tap (`f32::mul_add`, one rounding), the
/// reference of the tiers that fuse them (`Tier::fuses_f32_multiply_add`).
#[inline]
pub(crate) fn depthwise_f32_fused(p: &PackedDepthwiseF32, input: &[f32], output: &mut [f32]) {
    depthwise_f32_in::<true>(p, input, output)
}

/// F32 depthwise convolution; `FUSED`: `acc = x·w + acc` rounded once.
#[inline]
fn depthwise_f32_in<const FUSED: bool>(p: &PackedDepthwiseF32, input: &[f32], output: &mut [f32]) {
    let d = &p.params;
    assert_eq!(input.len(), d.input_len(), "depthwise: input length");
    assert_eq!(output.len(), d.output_len(), "depthwise: output length");
    let oc_n = d.out_c();
    for b in 0..d.batch {
        for oy in 0..d.out_h {
            for ox in 0..d.out_w {
                let out = &mut output[((b * d.out_h + oy) * d.out_w + ox) * oc_n..][..oc_n];
                for (oc, o) in out.iter_mut().enumerate() {
                    let ic = oc / d.multiplier;
                    let mut acc = p.bias[oc];
                    for_each_tap(d, b, oy, ox, |src, tap| {
                        let (x, w) = (input[src + ic], p.weights[tap * oc_n + oc]);
                        acc = if FUSED {
                            x.mul_add(w, acc)
                        } else {
                            acc + x * w
                        };
                    });
                    *o = acc.clamp(p.act.0, p.act.1);
                }
            }
        }
    }
}
