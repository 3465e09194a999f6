//! Reference convolution (TFLite `ConvPerChannel`), int8 and f32.

use crate::conv::PackedConv;
use crate::float::PackedConvF32;
use crate::params::Conv2dParams;
use crate::quant::requantize_f32;

/// Visits the valid taps of output pixel (`b`, `oy`, `ox`): `f(input_offset, weight_offset)`
/// with offsets of the group's first channel.
#[inline]
fn for_each_tap(d: &Conv2dParams, b: usize, oy: usize, ox: usize, mut f: impl FnMut(usize, usize)) {
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
            let src = ((b * d.in_h + iy as usize) * d.in_w + ix as usize) * d.in_c;
            f(src, (ky * d.k_w + kx) * d.in_c_per_group());
        }
    }
}

/// Int8 convolution, scalar reference.
pub(crate) fn conv2d_i8(p: &PackedConv, input: &[i8], output: &mut [i8], _scratch: &mut [u8]) {
    let d = &p.params;
    assert_eq!(input.len(), d.input_len(), "conv2d: input length");
    assert_eq!(output.len(), d.output_len(), "conv2d: output length");
    let (icg, ocg) = (d.in_c_per_group(), d.out_c_per_group());
    let wlen = d.k_h * d.k_w * icg;
    for b in 0..d.batch {
        for oy in 0..d.out_h {
            for ox in 0..d.out_w {
                let out = &mut output[((b * d.out_h + oy) * d.out_w + ox) * d.out_c..][..d.out_c];
                for (oc, o) in out.iter_mut().enumerate() {
                    let g = oc / ocg;
                    let w = &p.weights[oc * wlen..(oc + 1) * wlen];
                    let mut acc = 0i32;
                    for_each_tap(d, b, oy, ox, |src, woff| {
                        let x = &input[src + g * icg..][..icg];
                        for (&xv, &wv) in x.iter().zip(&w[woff..woff + icg]) {
                            acc =
                                acc.wrapping_add((xv as i32 - d.input_zp).wrapping_mul(wv as i32));
                        }
                    });
                    acc = acc.wrapping_add(p.bias[oc]);
                    let r = p.requant[oc];
                    let v = if d.requant_f32 {
                        requantize_f32(acc, r.scale_f32(), d.output_zp, d.act_min, d.act_max)
                    } else {
                        r.apply(acc).wrapping_add(d.output_zp)
                    };
                    *o = v.clamp(d.act_min, d.act_max) as i8;
                }
            }
        }
    }
}

/// F32 convolution (f32 accumulation, taps in order, a multiply then an add per tap).
pub(crate) fn conv2d_f32(p: &PackedConvF32, input: &[f32], output: &mut [f32]) {
    conv2d_f32_in::<false>(p, input, output)
}

/// [`conv2d_f32`] with a fused multiply-add per tap (`f32::mul_add`, one rounding), the
/// reference of the tiers that fuse them (`Tier::fuses_f32_multiply_add`).
#[inline]
pub(crate) fn conv2d_f32_fused(p: &PackedConvF32, input: &[f32], output: &mut [f32]) {
    conv2d_f32_in::<true>(p, input, output)
}

/// F32 convolution; `FUSED`: `acc = x·w + acc` rounded once, else `acc + round(x·w)`.
#[inline]
fn conv2d_f32_in<const FUSED: bool>(p: &PackedConvF32, input: &[f32], output: &mut [f32]) {
    let d = &p.params;
    assert_eq!(input.len(), d.input_len(), "conv2d: input length");
    assert_eq!(output.len(), d.output_len(), "conv2d: output length");
    let (icg, ocg) = (d.in_c_per_group(), d.out_c_per_group());
    let wlen = d.k_h * d.k_w * icg;
    for b in 0..d.batch {
        for oy in 0..d.out_h {
            for ox in 0..d.out_w {
                let out = &mut output[((b * d.out_h + oy) * d.out_w + ox) * d.out_c..][..d.out_c];
                for (oc, o) in out.iter_mut().enumerate() {
                    let g = oc / ocg;
                    let w = &p.weights[oc * wlen..(oc + 1) * wlen];
                    let mut acc = p.bias[oc];
                    for_each_tap(d, b, oy, ox, |src, woff| {
                        let x = &input[src + g * icg..][..icg];
                        for (&xv, &wv) in x.iter().zip(&w[woff..woff + icg]) {
                            acc = if FUSED {
                                xv.mul_add(wv, acc)
                            } else {
                                acc + xv * wv
                            };
                        }
                    });
                    *o = acc.clamp(p.act.0, p.act.1);
                }
            }
        }
    }
}
