//! Depthwise convolution: parameters packed once at plan time for the chosen tier.
//!
//! The SIMD tiers handle depth multiplier 1 and up to [`MAX_SIMD_TAPS`] kernel taps with one
//! row kernel specialised at compile time for 3×3 and 5×5 (any stride or dilation); other
//! shapes use the scalar reference. With dilation 1 and a horizontal stride of 1 or 2, 3×3
//! layers (both tiers) and 5×5 ones (AVX2) take column rows instead, which prepare each input
//! column once for the pixels that share it. Padded taps read a scratch row filled with the
//! input zero point, so every tap contributes `(x − zp)·w` exactly like the reference skips
//! them.

use crate::gemm::{ChannelQuant, OutputQuant};
use crate::params::{DepthwiseParams, RowGeometry, slice_rows};
use crate::quant::{Requant, conv_multiplier};
use crate::tier::Tier;

/// Largest `k_h · k_w` the SIMD depthwise kernels take.
pub const MAX_SIMD_TAPS: usize = 64;

/// Depthwise weights, bias and requantization prepared for one tier.
#[derive(Debug, Clone)]
pub struct PackedDepthwise {
    pub(crate) params: DepthwiseParams,
    pub(crate) tier: Tier,
    /// Raw `[k_h·k_w][out_c]` weights (scalar path and fallback).
    pub(crate) weights: Vec<i8>,
    pub(crate) bias: Vec<i32>,
    pub(crate) requant: Vec<Requant>,
    /// Whether the tier's SIMD kernel applies (multiplier 1, few enough taps).
    pub(crate) simd: bool,
    /// AVX-512 VNNI: `[c/64][ceil(taps/4)][4][16 lanes][4 taps]`; AVX2:
    /// `[c/16][ceil(taps/2)][2][8 lanes][2 taps]` (as i16 in `w16`).
    pub(crate) w8: Vec<i8>,
    pub(crate) w16: Vec<i16>,
    /// AVX-512 VNNI 3×3 with dilation 1 and horizontal stride 1 or 2: column quads
    /// `[c/64][kx][4][16 lanes][ky 0..3, 0]` (empty otherwise).
    pub(crate) w8_col: Vec<i8>,
    /// AVX2, the same layers and 5×5 ones (K×K): column pairs
    /// `[c/16][kx][(ky 0, 1), (ky 2, 3), …, last][2][8 lanes][2]`, `last` the last kernel row
    /// at columns kx and kx + 1 (0 past column K − 1) for even kx, unused for odd kx (empty
    /// otherwise).
    pub(crate) w16_col: Vec<i16>,
    /// Per-channel epilogue, permuted to the SIMD accumulator order.
    pub(crate) quant: ChannelQuant,
    pub(crate) out: OutputQuant,
}

impl PackedDepthwise {
    /// Prepares a depthwise convolution for `tier`.
    ///
    /// `weights` is `[1, k_h, k_w, in_c · multiplier]`, `weight_scales` has one entry (per
    /// tensor) or `out_c` entries (per channel).
    ///
    /// # Panics
    /// On inconsistent shapes or a tier this CPU does not support.
    pub fn new(
        tier: Tier,
        params: &DepthwiseParams,
        weights: &[i8],
        bias: Option<&[i32]>,
        input_scale: f32,
        weight_scales: &[f32],
        output_scale: f32,
    ) -> Self {
        params.check();
        assert!(
            tier.is_supported(),
            "depthwise: tier {tier} not supported on this CPU"
        );
        let c = params.out_c();
        let taps = params.k_h * params.k_w;
        assert_eq!(
            weights.len(),
            params.weight_len(),
            "depthwise: weight length"
        );
        assert!(
            weight_scales.len() == 1 || weight_scales.len() == c,
            "depthwise: need 1 or out_c weight scales"
        );
        let bias: Vec<i32> = match bias {
            Some(b) => {
                assert_eq!(b.len(), c, "depthwise: bias length");
                b.to_vec()
            }
            None => vec![0; c],
        };
        let requant: Vec<Requant> = (0..c)
            .map(|i| {
                conv_multiplier(
                    input_scale,
                    weight_scales[i.min(weight_scales.len() - 1)],
                    output_scale,
                )
            })
            .collect();
        let out = OutputQuant {
            zp: params.output_zp,
            min: params.act_min,
            max: params.act_max,
        };
        let f32_out = params.requant_f32.then_some(out);
        let simd = tier != Tier::Generic && params.multiplier == 1 && taps <= MAX_SIMD_TAPS;
        let w = |tap: usize, ch: usize| {
            if tap < taps && ch < c {
                weights[tap * c + ch]
            } else {
                0
            }
        };
        let mut w8 = Vec::new();
        let mut w16 = Vec::new();
        let mut w8_col = Vec::new();
        let mut w16_col = Vec::new();
        // Square kernels whose rows reuse input columns (AVX-512 VNNI: 3×3; AVX2: 3×3, 5×5).
        let columns = |sizes: &[usize]| {
            params.k_h == params.k_w
                && sizes.contains(&params.k_h)
                && params.dilation_h == 1
                && params.dilation_w == 1
                && params.stride_w <= 2
        };
        let mut quant =
            ChannelQuant::new(bias.iter().copied(), &requant, c.div_ceil(16) * 16, f32_out);
        if simd && tier == Tier::Avx512Vnni {
            let chunks = c.div_ceil(64);
            let quads = taps.div_ceil(4);
            // Lane d of accumulator j in chunk k holds channel 64k + 16(d/4) + 4j + d%4.
            let chan = |k: usize, j: usize, d: usize| 64 * k + 16 * (d / 4) + 4 * j + d % 4;
            w8 = vec![0i8; chunks * quads * 4 * 64];
            for k in 0..chunks {
                for q in 0..quads {
                    for j in 0..4 {
                        for d in 0..16 {
                            for t in 0..4 {
                                w8[((k * quads + q) * 4 + j) * 64 + d * 4 + t] =
                                    w(4 * q + t, chan(k, j, d));
                            }
                        }
                    }
                }
            }
            if columns(&[3]) {
                w8_col = vec![0i8; chunks * 3 * 4 * 64];
                for k in 0..chunks {
                    for kx in 0..3 {
                        for j in 0..4 {
                            for d in 0..16 {
                                for ky in 0..3 {
                                    w8_col[((k * 3 + kx) * 4 + j) * 64 + d * 4 + ky] =
                                        w(ky * 3 + kx, chan(k, j, d));
                                }
                            }
                        }
                    }
                }
            }
            let zp = params.input_zp + 128;
            let folded: Vec<i32> = (0..c)
                .map(|ch| {
                    bias[ch].wrapping_sub(zp.wrapping_mul((0..taps).map(|t| w(t, ch) as i32).sum()))
                })
                .collect();
            quant = ChannelQuant::new(folded.into_iter(), &requant, chunks * 64, f32_out);
            quant = quant.permuted(chunks * 64, |i| {
                let ch = chan(i / 64, (i % 64) / 16, i % 16);
                (ch < c).then_some(ch)
            });
            quant.bound_products(taps);
        } else if simd && tier == Tier::Avx2 {
            let chunks = c.div_ceil(16);
            let pairs = taps.div_ceil(2);
            // Lane e of half h in chunk k holds channel 16k + 8(e/4) + 4h + e%4.
            let chan = |k: usize, h: usize, e: usize| 16 * k + 8 * (e / 4) + 4 * h + e % 4;
            w16 = vec![0i16; chunks * pairs * 2 * 16];
            for k in 0..chunks {
                for p in 0..pairs {
                    for h in 0..2 {
                        for e in 0..8 {
                            for t in 0..2 {
                                w16[((k * pairs + p) * 2 + h) * 16 + e * 2 + t] =
                                    w(2 * p + t, chan(k, h, e)) as i16;
                            }
                        }
                    }
                }
            }
            if columns(&[3, 5]) {
                // `[c/16][kx][pair g][h][8][2]`: pair g < K / 2 holds kernel rows 2g and
                // 2g + 1 of column kx; the last pair (g = K / 2) holds the last kernel row at
                // columns kx and kx + 1 (0 past the last column) for even kx, and nothing (it
                // is not read) for odd kx: the column buffer pairs the last row across
                // neighbouring columns (`avx2::depthwise::row_columns`).
                let kk = params.k_h;
                let rows = kk.div_ceil(2);
                let last = kk - 1;
                w16_col = vec![0i16; chunks * kk * rows * 2 * 16];
                for k in 0..chunks {
                    for kx in 0..kk {
                        for g in 0..rows {
                            for h in 0..2 {
                                for e in 0..8 {
                                    for t in 0..2 {
                                        let (ky, x) = if 2 * g < last {
                                            (2 * g + t, kx)
                                        } else {
                                            (last, kx + t)
                                        };
                                        let at =
                                            ((((k * kk + kx) * rows + g) * 2 + h) * 8 + e) * 2 + t;
                                        if 2 * g == last && kx % 2 == 1 || x >= kk {
                                            continue;
                                        }
                                        w16_col[at] = w(ky * kk + x, chan(k, h, e)) as i16;
                                    }
                                }
                            }
                        }
                    }
                }
            }
            quant = ChannelQuant::new(bias.iter().copied(), &requant, chunks * 16, f32_out)
                .permuted(chunks * 16, |i| {
                    let ch = chan(i / 16, (i % 16) / 8, i % 8);
                    (ch < c).then_some(ch)
                });
            // The accumulators sum `(x − zp)·w`: |x − zp| ≤ 255, as the bound assumes.
            quant.bound_products(taps);
            // The fast form's AVX2 variant (`avx2::requant::Rq8Fast`) reads these.
            quant.derive_logical();
        }
        PackedDepthwise {
            w8_col,
            w16_col,
            params: *params,
            tier,
            weights: weights.to_vec(),
            bias,
            requant,
            simd,
            w8,
            w16,
            quant,
            out,
        }
    }

    /// The same depthwise convolution restricted to output rows `rows` of its one image, as
    /// [`crate::PackedConv::rows`] (a copy: depthwise weights are small).
    pub fn rows(
        &self,
        rows: std::ops::Range<usize>,
    ) -> Option<(PackedDepthwise, std::ops::Range<usize>)> {
        let d = &self.params;
        let (s, input_rows) = slice_rows(
            d.batch,
            d.in_h,
            d.out_h,
            RowGeometry {
                k: d.k_h,
                stride: d.stride_h,
                dilation: d.dilation_h,
                pad: d.pad_top,
            },
            rows,
        )?;
        let mut sliced = self.clone();
        sliced.params = DepthwiseParams {
            in_h: s.in_h,
            out_h: s.out_h,
            pad_top: s.pad,
            ..*d
        };
        Some((sliced, input_rows))
    }

    /// The parameters this was packed for.
    pub fn params(&self) -> &DepthwiseParams {
        &self.params
    }

    /// The tier this was packed for.
    pub fn tier(&self) -> Tier {
        self.tier
    }

    /// Round ties of the final shift upward (TFLite's optimized depthwise kernels,
    /// [`crate::quant::multiply_by_quantized_multiplier_upward`]) instead of away from zero.
    pub fn ties_upward(mut self, upward: bool) -> Self {
        self.quant.ties_up = upward;
        self
    }

    /// Whether ties of the final shift round upward.
    pub fn rounds_ties_upward(&self) -> bool {
        self.quant.ties_up
    }

    /// Scratch bytes a call needs (a row of input zero points for the SIMD tiers; AVX2's 3×3
    /// rows also keep their input columns there).
    pub fn scratch_bytes(&self) -> usize {
        // The channels' zero-point row, padded for the AVX2 tier's 16-byte loads.
        let zp_row = if self.simd { self.params.in_c + 16 } else { 0 };
        #[cfg(target_arch = "x86_64")]
        if !self.w16_col.is_empty() {
            return crate::x86_64::avx2::depthwise::columns_at(zp_row)
                + crate::x86_64::avx2::depthwise::columns_bytes(&self.params);
        }
        zp_row
    }

    /// For each kernel row `ky`, the input row offset of output row `oy` of image `b`, or
    /// `None` when that row is padding.
    pub(crate) fn row_offsets(&self, b: usize, oy: usize, rows: &mut [Option<usize>]) {
        let d = &self.params;
        for (ky, r) in rows.iter_mut().enumerate().take(d.k_h) {
            let iy = (oy * d.stride_h + ky * d.dilation_h) as isize - d.pad_top as isize;
            *r = (iy >= 0 && (iy as usize) < d.in_h)
                .then(|| ((b * d.in_h + iy as usize) * d.in_w) * d.in_c);
        }
    }
}

/// The input address of every tap of one output row's pixels, pixel after pixel, for the SIMD
/// depthwise rows: computed in full at the row's edges (a tap outside the input reads the
/// zero-point row), moved on by one stride for the pixels whose every tap column lies inside
/// the row (a tap of a padding row stays on the zero-point row).
pub(crate) struct TapWalk {
    /// Pixels `lo..hi` have every tap column inside the input row.
    lo: usize,
    hi: usize,
    /// Bytes each tap moves on per interior pixel.
    step: [usize; MAX_SIMD_TAPS],
}

impl TapWalk {
    /// For output row with input rows `rows` ([`PackedDepthwise::row_offsets`]).
    pub(crate) fn new(d: &DepthwiseParams, rows: &[Option<usize>; MAX_SIMD_TAPS]) -> Self {
        let reach = (d.k_w - 1) * d.dilation_w;
        let lo = d.pad_left.div_ceil(d.stride_w);
        let hi = if d.in_w + d.pad_left > reach {
            ((d.in_w + d.pad_left - reach - 1) / d.stride_w + 1).min(d.out_w)
        } else {
            0
        };
        let mut step = [0; MAX_SIMD_TAPS];
        for (t, s) in step.iter_mut().enumerate().take(d.k_h * d.k_w) {
            if rows[t / d.k_w].is_some() {
                *s = d.stride_w * d.in_c;
            }
        }
        TapWalk { lo, hi, step }
    }

    /// Sets `ptr` to the taps of pixel `ox`, given pixel `ox − 1`'s in it (any content for
    /// `ox` = 0: pixels are visited in order from 0).
    ///
    /// # Safety
    /// `input` is the start of the depthwise input (`rows` offsets lie in it, as
    /// [`PackedDepthwise::row_offsets`] gives them); `zp_row` is the zero-point row.
    #[inline]
    pub(crate) unsafe fn pixel(
        &self,
        d: &DepthwiseParams,
        rows: &[Option<usize>; MAX_SIMD_TAPS],
        ox: usize,
        input: *const i8,
        zp_row: *const i8,
        ptr: &mut [*const i8; MAX_SIMD_TAPS],
    ) {
        if ox > self.lo && ox < self.hi {
            for (p, &s) in ptr.iter_mut().zip(&self.step).take(d.k_h * d.k_w) {
                // Pixel ox's tap lies inside its input row (interior pixel), one stride after
                // pixel ox − 1's, or on the zero-point row (step 0).
                *p = p.wrapping_add(s);
            }
            return;
        }
        for ky in 0..d.k_h {
            for kx in 0..d.k_w {
                let ix = (ox * d.stride_w + kx * d.dilation_w) as isize - d.pad_left as isize;
                ptr[ky * d.k_w + kx] = match rows[ky] {
                    // SAFETY: ix < in_w, so the pixel lies inside the input row (contract).
                    Some(off) if ix >= 0 && (ix as usize) < d.in_w => unsafe {
                        input.add(off + ix as usize * d.in_c)
                    },
                    _ => zp_row,
                };
            }
        }
    }
}
