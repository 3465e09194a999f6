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
        let (col, rest) = scratch.split_at_mut(IM2COL_ROWS * k);
        let pixels = d.out_h * d.out_w;
        let ocg = d.out_c_per_group();
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
