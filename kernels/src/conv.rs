//! 2-D convolution (any kernel, stride, dilation, padding, groups) prepared for one tier.
//!
//! The scalar tier runs TFLite's reference loop directly. The SIMD tiers run a pointwise
//! convolution as one GEMM over pixels, and anything else as im2col (blocks of
//! [`IM2COL_ROWS`] output pixels into scratch, padding filled with the input zero point) then
//! GEMM, per group.

use crate::gemm::{OutputQuant, PackedGemm};
use crate::params::Conv2dParams;
use crate::quant::{Requant, conv_multiplier};
use crate::tier::Tier;

/// Output pixels per im2col block.
pub const IM2COL_ROWS: usize = 96;

/// Convolution weights, bias and requantization prepared for one tier.
#[derive(Debug, Clone)]
pub struct PackedConv {
    pub(crate) params: Conv2dParams,
    pub(crate) tier: Tier,
    /// Raw OHWI weights (scalar tier).
    pub(crate) weights: Vec<i8>,
    pub(crate) bias: Vec<i32>,
    pub(crate) requant: Vec<Requant>,
    /// One packed GEMM per group (SIMD tiers).
    pub(crate) groups: Vec<PackedGemm>,
}

impl PackedConv {
    /// Prepares a convolution for `tier`.
    ///
    /// `weights` are OHWI (`[out_c, k_h, k_w, in_c / groups]`), `bias` has `out_c` entries,
    /// `weight_scales` one (per tensor) or `out_c` (per channel) entries.
    ///
    /// # Panics
    /// On inconsistent shapes or a tier this CPU does not support.
    pub fn new(
        tier: Tier,
        params: &Conv2dParams,
        weights: &[i8],
        bias: Option<&[i32]>,
        input_scale: f32,
        weight_scales: &[f32],
        output_scale: f32,
    ) -> Self {
        params.check();
        let oc = params.out_c;
        assert!(
            weight_scales.len() == 1 || weight_scales.len() == oc,
            "conv2d: need 1 or out_c weight scales"
        );
        let requant: Vec<Requant> = (0..oc)
            .map(|i| {
                conv_multiplier(
                    input_scale,
                    weight_scales[i.min(weight_scales.len() - 1)],
                    output_scale,
                )
            })
            .collect();
        Self::with_requant(tier, params, weights, bias, &requant)
    }

    /// Prepares a convolution from precomputed per-channel multipliers (`out_c` entries).
    pub fn with_requant(
        tier: Tier,
        params: &Conv2dParams,
        weights: &[i8],
        bias: Option<&[i32]>,
        requant: &[Requant],
    ) -> Self {
        params.check();
        assert!(
            tier.is_supported(),
            "conv2d: tier {tier} not supported on this CPU"
        );
        assert_eq!(weights.len(), params.weight_len(), "conv2d: weight length");
        assert_eq!(
            requant.len(),
            params.out_c,
            "conv2d: one multiplier per output channel"
        );
        let bias: Vec<i32> = match bias {
            Some(b) => {
                assert_eq!(b.len(), params.out_c, "conv2d: bias length");
                b.to_vec()
            }
            None => vec![0; params.out_c],
        };
        let out = OutputQuant {
            zp: params.output_zp,
            min: params.act_min,
            max: params.act_max,
        };
        let (ocg, k) = (
            params.out_c_per_group(),
            params.k_h * params.k_w * params.in_c_per_group(),
        );
        let groups = if tier == Tier::Generic {
            Vec::new()
        } else {
            (0..params.groups)
                .map(|g| {
                    let ch = g * ocg..(g + 1) * ocg;
                    PackedGemm::new(
                        tier,
                        ocg,
                        k,
                        &weights[ch.start * k..ch.end * k],
                        Some(&bias[ch.clone()]),
                        &requant[ch],
                        params.input_zp,
                        out,
                    )
                })
                .collect()
        };
        PackedConv {
            params: *params,
            tier,
            weights: weights.to_vec(),
            bias,
            requant: requant.to_vec(),
            groups,
        }
    }

    /// The parameters this was packed for.
    pub fn params(&self) -> &Conv2dParams {
        &self.params
    }

    /// The tier this was packed for.
    pub fn tier(&self) -> Tier {
        self.tier
    }

    /// Scratch bytes a call needs.
    pub fn scratch_bytes(&self) -> usize {
        let Some(g) = self.groups.first() else {
            return 0;
        };
        let col = if self.params.is_pointwise() {
            0
        } else {
            IM2COL_ROWS * g.k
        };
        col + g.scratch_bytes()
    }

    /// The SIMD tiers' driver: GEMM directly, or im2col blocks then GEMM.
    pub(crate) fn run_gemm(&self, input: &[i8], output: &mut [i8], scratch: &mut [u8]) {
        let d = &self.params;
        assert_eq!(input.len(), d.input_len(), "conv2d: input length");
        assert_eq!(output.len(), d.output_len(), "conv2d: output length");
        assert!(
            scratch.len() >= self.scratch_bytes(),
            "conv2d: scratch too short"
        );
        if d.is_pointwise() {
            self.groups[0].run(
                input,
                d.in_c,
                d.batch * d.in_h * d.in_w,
                output,
                d.out_c,
                scratch,
            );
            return;
        }
        let k = self.groups[0].k;
        let pixels = d.out_h * d.out_w;
        let ocg = d.out_c_per_group();
        #[cfg(target_arch = "x86_64")]
        if self.tier == Tier::Avx512Vnni {
            // im2col writes the GEMM's operand form directly (flipped to u8, rows padded to a
            // multiple of 4 bytes): IM2COL_ROWS · k4 <= IM2COL_ROWS · k + the GEMM's scratch.
            let k4 = k.div_ceil(4) * 4;
            let col = &mut scratch[..IM2COL_ROWS * k4];
            for b in 0..d.batch {
                for (g, packed) in self.groups.iter().enumerate() {
                    let mut start = 0;
                    while start < pixels {
                        let rows = (pixels - start).min(IM2COL_ROWS);
                        im2col_flipped(d, input, b, g, start, rows, k4, col);
                        let out = &mut output[(b * pixels + start) * d.out_c + g * ocg..];
                        crate::x86_64::avx512vnni::gemm::gemm_flipped(
                            packed,
                            &col[..rows * k4],
                            rows,
                            out,
                            d.out_c,
                        );
                        start += rows;
                    }
                }
            }
            return;
        }
        let (col, rest) = scratch.split_at_mut(IM2COL_ROWS * k);
        for b in 0..d.batch {
            for (g, packed) in self.groups.iter().enumerate() {
                let mut start = 0;
                while start < pixels {
                    let rows = (pixels - start).min(IM2COL_ROWS);
                    im2col(d, input, b, g, start, rows, col);
                    let out = &mut output[(b * pixels + start) * d.out_c + g * ocg..];
                    packed.run(&col[..rows * k], k, rows, out, d.out_c, rest);
                    start += rows;
                }
            }
        }
    }
}

/// Writes the receptive fields of output pixels `start..start + rows` of image `b`, group `g`,
/// as rows of `k_h · k_w · in_c/groups` bytes; padding is the input zero point.
fn im2col(
    d: &Conv2dParams,
    input: &[i8],
    b: usize,
    g: usize,
    start: usize,
    rows: usize,
    col: &mut [u8],
) {
    let icg = d.in_c_per_group();
    let k = d.k_h * d.k_w * icg;
    let zp = d.input_zp as i8 as u8;
    for r in 0..rows {
        let (oy, ox) = ((start + r) / d.out_w, (start + r) % d.out_w);
        let dst_row = &mut col[r * k..(r + 1) * k];
        for ky in 0..d.k_h {
            let iy = (oy * d.stride_h + ky * d.dilation_h) as isize - d.pad_top as isize;
            for kx in 0..d.k_w {
                let ix = (ox * d.stride_w + kx * d.dilation_w) as isize - d.pad_left as isize;
                let dst = &mut dst_row[(ky * d.k_w + kx) * icg..][..icg];
                if iy < 0 || iy as usize >= d.in_h || ix < 0 || ix as usize >= d.in_w {
                    dst.fill(zp);
                } else {
                    let src =
                        ((b * d.in_h + iy as usize) * d.in_w + ix as usize) * d.in_c + g * icg;
                    for (o, &x) in dst.iter_mut().zip(&input[src..src + icg]) {
                        *o = x as u8;
                    }
                }
            }
        }
    }
}

/// [`im2col`] in the AVX-512 VNNI GEMM's operand form: every byte flipped to u8 (`x ^ 0x80`),
/// rows of `k4` bytes (`k` rounded up to 4; bytes `k..k4` are left as they are, their packed
/// weights being zero). With dilation 1 the `k_w · icg`
/// bytes of one kernel row are copied as one run when they lie inside the input.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
fn im2col_flipped(
    d: &Conv2dParams,
    input: &[i8],
    b: usize,
    g: usize,
    start: usize,
    rows: usize,
    k4: usize,
    col: &mut [u8],
) {
    let icg = d.in_c_per_group();
    let run = d.k_w * icg;
    let zp = d.input_zp as i8 as u8 ^ 0x80;
    let flip = |dst: &mut [u8], src: &[i8]| {
        for (o, &x) in dst.iter_mut().zip(src) {
            *o = x as u8 ^ 0x80;
        }
    };
    let (mut oy, mut ox) = (start / d.out_w, start % d.out_w);
    for dst_row in col[..rows * k4].chunks_exact_mut(k4) {
        let ix0 = (ox * d.stride_w) as isize - d.pad_left as isize;
        let inside_x = ix0 >= 0 && ix0 as usize + (d.k_w - 1) * d.dilation_w < d.in_w;
        for ky in 0..d.k_h {
            let iy = (oy * d.stride_h + ky * d.dilation_h) as isize - d.pad_top as isize;
            let dst = &mut dst_row[ky * run..(ky + 1) * run];
            if iy < 0 || iy as usize >= d.in_h {
                dst.fill(zp);
                continue;
            }
            let row = (b * d.in_h + iy as usize) * d.in_w;
            if inside_x && d.dilation_w == 1 && icg == d.in_c {
                let src = (row + ix0 as usize) * d.in_c;
                flip(dst, &input[src..src + run]);
                continue;
            }
            for (kx, tap) in dst.chunks_exact_mut(icg).enumerate() {
                let ix = ix0 + (kx * d.dilation_w) as isize;
                if ix < 0 || ix as usize >= d.in_w {
                    tap.fill(zp);
                } else {
                    let src = (row + ix as usize) * d.in_c + g * icg;
                    flip(tap, &input[src..src + icg]);
                }
            }
        }
        ox += 1;
        if ox == d.out_w {
            ox = 0;
            oy += 1;
        }
    }
}
