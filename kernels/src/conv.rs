//! 2-D convolution (any kernel, stride, dilation, padding, groups) prepared for one tier.
//!
//! The scalar tier runs TFLite's reference loop directly. The SIMD tiers run a pointwise
//! convolution as one GEMM over pixels, a convolution with short kernel rows (few input
//! channels, one group) as GEMMs reading a padded copy of its input in place ([`Implicit`]),
//! and anything else as im2col (blocks of [`IM2COL_ROWS`] output pixels into scratch, padding
//! filled with the input zero point) then GEMM, per group.

use std::ops::Range;
use std::sync::Arc;

use crate::gemm::{OutputQuant, PackedGemm};
use crate::params::{Conv2dParams, RowGeometry, slice_rows};
use crate::quant::{Requant, conv_multiplier};
use crate::tier::Tier;

/// Output pixels per im2col block.
pub const IM2COL_ROWS: usize = 96;

/// Convolution weights, bias and requantization prepared for one tier. Clones (and
/// [`PackedConv::rows`]) share the weights.
#[derive(Debug, Clone)]
pub struct PackedConv {
    pub(crate) params: Conv2dParams,
    pub(crate) tier: Tier,
    /// Raw OHWI weights (scalar tier).
    pub(crate) weights: Arc<[i8]>,
    pub(crate) bias: Arc<[i32]>,
    pub(crate) requant: Arc<[Requant]>,
    /// One packed GEMM per group (SIMD tiers).
    pub(crate) groups: Arc<[PackedGemm]>,
    /// The SIMD tiers read this convolution straight from its padded input (no im2col).
    pub(crate) implicit: Option<Implicit>,
}

/// The longest kernel row (`k_w · in_c` values, rounded up to a word) read straight from the
/// padded input; convolutions with longer rows (many input channels) use im2col, whose copies
/// are then long runs.
const IMPLICIT_MAX_RUN: usize = 64;

/// A convolution without im2col (SIMD tiers): the input is copied once into `hp` rows of `wp`
/// pixels, padded with its zero point, in the tier's GEMM operand form (VNNI: flipped to u8;
/// AVX2: `x − zp` widened to i16); output row `oy` is then a GEMM whose A rows start
/// `stride_w` pixels apart, each row read as `k_h` segments (one per kernel row, `dilation_h`
/// padded rows apart) of `run` values. `run` is `k_w · in_c` rounded up to the tier's word (4
/// values for VNNI, 2 for AVX2); the packed weights hold each kernel row's `k_w · in_c`
/// weights followed by zeros up to `run`, so the values read past a kernel row (the next
/// pixel's) count for nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Implicit {
    pub hp: usize,
    pub wp: usize,
    pub run: usize,
}

impl Implicit {
    /// The implicit form of `d` on `tier`, where it applies.
    fn plan(tier: Tier, d: &Conv2dParams) -> Option<Implicit> {
        let word = match tier {
            Tier::Avx512Vnni => 4,
            Tier::Avx2 => 2,
            Tier::Generic => return None,
        };
        let run = (d.k_w * d.in_c).div_ceil(word) * word;
        let applies =
            !d.is_pointwise() && d.groups == 1 && d.dilation_w == 1 && run <= IMPLICIT_MAX_RUN;
        applies.then(|| Implicit {
            hp: (d.out_h - 1) * d.stride_h + (d.k_h - 1) * d.dilation_h + 1,
            wp: (d.out_w - 1) * d.stride_w + d.k_w,
            run,
        })
    }

    /// Scratch bytes on `tier`: the padded input and a tail the last row's last word may
    /// read.
    fn scratch_bytes(&self, tier: Tier, d: &Conv2dParams) -> usize {
        let values = self.hp * self.wp * d.in_c + 4;
        if tier == Tier::Avx2 {
            2 * values
        } else {
            values
        }
    }

    /// OHWI weights with every kernel row widened from `k_w · in_c` to `run` values.
    fn widen(&self, d: &Conv2dParams, weights: &[i8]) -> Vec<i8> {
        let run = d.k_w * d.in_c;
        let mut w = vec![0i8; d.out_c * d.k_h * self.run];
        for (dst, src) in w.chunks_exact_mut(self.run).zip(weights.chunks_exact(run)) {
            dst[..run].copy_from_slice(src);
        }
        w
    }

    /// The GEMM's view of the padded input: rows `stride_w` pixels apart, one segment per
    /// kernel row (`bytes` per value: 1 for VNNI, 2 for AVX2).
    #[cfg(target_arch = "x86_64")]
    fn layout(&self, d: &Conv2dParams, bytes: usize) -> crate::gemm::ALayout {
        let row_bytes = self.wp * d.in_c * bytes;
        crate::gemm::ALayout {
            row: d.stride_w * d.in_c * bytes,
            segs: d.k_h,
            seg_words: self.run * bytes / 4,
            seg_stride: d.dilation_h * row_bytes,
        }
    }
}

/// Copies image `b` of `input` into `dst` as `hp` rows of `wp` pixels of `in_c` values of
/// `value_bytes` bytes, `pad_top` rows and `pad_left` columns of padding before it and padding
/// after, every padding byte (and `dst` past the rows) `fill`: the padded input an
/// [`Implicit`] convolution reads in place. `copy` writes one run of input pixels in the
/// tier's operand form.
///
/// # Panics
/// Unless `dst` holds the `hp · wp · in_c` values and `b` is an image of `input`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn pad_image(
    d: &Conv2dParams,
    input: &[i8],
    b: usize,
    (hp, wp): (usize, usize),
    value_bytes: usize,
    fill: u8,
    dst: &mut [u8],
    mut copy: impl FnMut(&mut [u8], &[i8]),
) {
    let c = d.in_c;
    let line = wp * c * value_bytes;
    assert!(dst.len() >= hp * line && b < d.batch, "pad: buffer");
    let left = d.pad_left.min(wp);
    let cols = d.in_w.min(wp - left);
    let (rows, slack) = dst.split_at_mut(hp * line);
    for (py, row) in rows.chunks_exact_mut(line).enumerate() {
        let iy = py as isize - d.pad_top as isize;
        if iy < 0 || iy as usize >= d.in_h {
            row.fill(fill);
            continue;
        }
        let src = (b * d.in_h + iy as usize) * d.in_w * c;
        let (before, rest) = row.split_at_mut(left * c * value_bytes);
        let (inside, after) = rest.split_at_mut(cols * c * value_bytes);
        before.fill(fill);
        copy(inside, &input[src..src + cols * c]);
        after.fill(fill);
    }
    slack.fill(fill);
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
        let implicit = Implicit::plan(tier, params);
        let rows = params.batch * params.out_h * params.out_w;
        let groups = if tier == Tier::Generic {
            Vec::new()
        } else if let Some(im) = implicit {
            vec![PackedGemm::new(
                tier,
                params.out_c,
                params.k_h * im.run,
                rows,
                &im.widen(params, weights),
                Some(&bias),
                requant,
                params.input_zp,
                out,
                params.requant_f32,
            )]
        } else {
            (0..params.groups)
                .map(|g| {
                    let ch = g * ocg..(g + 1) * ocg;
                    PackedGemm::new(
                        tier,
                        ocg,
                        k,
                        rows,
                        &weights[ch.start * k..ch.end * k],
                        Some(&bias[ch.clone()]),
                        &requant[ch],
                        params.input_zp,
                        out,
                        params.requant_f32,
                    )
                })
                .collect()
        };
        PackedConv {
            params: *params,
            tier,
            weights: weights.into(),
            bias: bias.into(),
            requant: requant.into(),
            groups: groups.into(),
            implicit,
        }
    }

    /// The same convolution restricted to output rows `rows` of its one image: a convolution
    /// of its own over the input rows those read (returned too), sharing the packed weights.
    /// Its results are those rows of the whole convolution's, bit for bit. `None` for a batch
    /// of more than one image or rows that read no input row (all padding).
    pub fn rows(&self, rows: Range<usize>) -> Option<(PackedConv, Range<usize>)> {
        let d = &self.params;
        let (params, input_rows) = slice_rows(
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
        let params = Conv2dParams {
            in_h: params.in_h,
            out_h: params.out_h,
            pad_top: params.pad,
            ..*d
        };
        let mut sliced = self.clone();
        sliced.implicit = Implicit::plan(self.tier, &params);
        debug_assert_eq!(
            sliced.implicit.map(|i| i.run),
            self.implicit.map(|i| i.run),
            "the packing does not depend on the rows"
        );
        sliced.params = params;
        Some((sliced, input_rows))
    }

    /// A pointwise convolution ([`Conv2dParams::is_pointwise`], one image) restricted to the
    /// output pixels `px` (row-major over the image): a convolution of its own over the same
    /// pixels of the input, seen as a column of `px.len()` pixels, sharing the packed weights.
    /// Unlike [`PackedConv::rows`] the cut may fall inside an image row. Its results are those
    /// pixels of the whole convolution's, bit for bit. `None` for any other convolution, or an
    /// empty or out-of-range `px`.
    pub fn pixels(&self, px: Range<usize>) -> Option<PackedConv> {
        let d = &self.params;
        if !d.is_pointwise() || d.batch != 1 || px.is_empty() || px.end > d.out_h * d.out_w {
            return None;
        }
        let params = Conv2dParams {
            in_h: px.len(),
            out_h: px.len(),
            in_w: 1,
            out_w: 1,
            ..*d
        };
        let mut sliced = self.clone();
        // Pointwise convolutions are never implicit (see `Implicit::plan`).
        debug_assert!(self.implicit.is_none() && Implicit::plan(self.tier, &params).is_none());
        sliced.params = params;
        Some(sliced)
    }

    /// A pointwise convolution of one group restricted to output channels `ch`: a convolution
    /// of its own with `ch.len()` output channels, packed anew from those channels' weights,
    /// biases and multipliers (its own copy of them). Its results are those channels of the
    /// whole convolution's, bit for bit. On the SIMD tiers, which read only the packed
    /// weights, it does not keep the raw ones (a classifier's slices then cost one copy of its
    /// weights, not two), so it cannot be cut again. `None` for any other convolution, an
    /// empty or out-of-range `ch`, or such a slice.
    pub fn out_channels(&self, ch: Range<usize>) -> Option<PackedConv> {
        let d = &self.params;
        let k = d.in_c;
        if !d.is_pointwise()
            || d.groups != 1
            || ch.is_empty()
            || ch.end > d.out_c
            || self.weights.len() != d.out_c * k
        {
            return None;
        }
        let params = Conv2dParams {
            out_c: ch.len(),
            ..*d
        };
        let mut sliced = Self::with_requant(
            self.tier,
            &params,
            &self.weights[ch.start * k..ch.end * k],
            Some(&self.bias[ch.clone()]),
            &self.requant[ch],
        );
        if self.tier != Tier::Generic {
            sliced.weights = Arc::from([]);
        }
        Some(sliced)
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
        if let Some(im) = self.implicit {
            return im.scratch_bytes(self.tier, &self.params);
        }
        if self.params.is_pointwise() {
            return g.scratch_bytes();
        }
        #[cfg(target_arch = "x86_64")]
        if self.tier == Tier::Avx2 {
            // Widened im2col rows only: the GEMM reads them as they are.
            return IM2COL_ROWS * crate::x86_64::avx2::gemm::row_bytes(g.k);
        }
        IM2COL_ROWS * g.k + g.scratch_bytes()
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
        let pixels = d.out_h * d.out_w;
        #[cfg(target_arch = "x86_64")]
        if let Some(im) = self.implicit {
            let padded = &mut scratch[..im.scratch_bytes(self.tier, d)];
            let wide = self.tier == Tier::Avx2;
            let bytes = if wide { 2 } else { 1 };
            let layout = im.layout(d, bytes);
            // Output row `oy` reads from padded row `oy · stride_h` on.
            let row_step = d.stride_h * im.wp * d.in_c * bytes;
            // The padding: the zero point, widened (to 0) or flipped as the tier's operands.
            let (zp, fill) = (
                d.input_zp as i16,
                if wide { 0 } else { d.input_zp as u8 ^ 0x80 },
            );
            if wide {
                crate::x86_64::avx2::assert_supported();
            } else {
                crate::x86_64::avx512vnni::assert_supported();
            }
            let copy = |dst: &mut [u8], src: &[i8]| {
                if wide {
                    // SAFETY: the CPU supports AVX2 (asserted above).
                    unsafe { crate::x86_64::avx2::im2col::widen(dst, src, zp) }
                } else {
                    // SAFETY: the CPU supports AVX-512 F/BW (asserted above).
                    unsafe { crate::x86_64::avx512vnni::im2col::flip_copy(dst, src) }
                }
            };
            for b in 0..d.batch {
                pad_image(d, input, b, (im.hp, im.wp), bytes, fill, padded, copy);
                for oy in 0..d.out_h {
                    let out = &mut output[(b * pixels + oy * d.out_w) * d.out_c..];
                    let a = &padded[oy * row_step..];
                    let g = &self.groups[0];
                    if wide {
                        crate::x86_64::avx2::gemm::gemm_strided(
                            g, a, layout, d.out_w, out, d.out_c,
                        );
                    } else {
                        crate::x86_64::avx512vnni::gemm::gemm_strided(
                            g, a, layout, d.out_w, out, d.out_c,
                        );
                    }
                }
            }
            return;
        }
        let k = self.groups[0].k;
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
                        crate::x86_64::avx512vnni::im2col::im2col_flipped(
                            d, input, b, g, start, rows, k4, col,
                        );
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
        #[cfg(target_arch = "x86_64")]
        if self.tier == Tier::Avx2 {
            // im2col writes the GEMM's widened rows (x − zp as i16) directly.
            use crate::x86_64::avx2::{gemm, im2col};
            let row_bytes = gemm::row_bytes(k);
            let col = &mut scratch[..IM2COL_ROWS * row_bytes];
            for b in 0..d.batch {
                for (g, packed) in self.groups.iter().enumerate() {
                    let mut start = 0;
                    while start < pixels {
                        let rows = (pixels - start).min(IM2COL_ROWS);
                        im2col::im2col_widened(d, input, b, g, start, rows, row_bytes, col);
                        let out = &mut output[(b * pixels + start) * d.out_c + g * ocg..];
                        gemm::gemm_widened(packed, &col[..rows * row_bytes], rows, out, d.out_c);
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
