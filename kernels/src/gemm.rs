//! Packed int8 GEMM operands for the SIMD tiers: `C[m][n] = requant(Σ_k A[m][k]·W[n][k] + bias[n])`.
//!
//! `A` is the activation matrix (pixels × input channels, or im2col rows), `W` the weights of
//! one convolution group in `[n][k]` order (OHWI rows). Packing happens once at plan time; the
//! scalar tier does not use this (its convolutions are the direct TFLite reference loops).

use crate::quant::Requant;
use crate::tier::Tier;

/// Per-output-channel epilogue data, padded with zeros to a multiple of 16 channels.
#[derive(Debug, Clone)]
pub(crate) struct ChannelQuant {
    /// Bias with the tier's zero-point folding applied.
    pub bias: Vec<i32>,
    /// Q31 multipliers.
    pub mult: Vec<i32>,
    /// Left shifts (`max(shift, 0)`).
    pub lshift: Vec<i32>,
    /// Right shifts (`max(-shift, 0)`).
    pub rshift: Vec<i32>,
    /// Derived: in even lanes the multiplier of the next (odd) lane, for the odd products.
    pub mult_odd: Vec<i32>,
    /// Derived: `2^rshift − 1`, the remainder mask of the rounding shift.
    pub rmask: Vec<i32>,
    /// Derived: `rmask >> 1`, the rounding threshold for non-negative values.
    pub rhalf: Vec<i32>,
    /// Round the final shift's ties upward (depthwise, [`Requant::apply_upward`]) instead of
    /// away from zero ([`Requant::apply`]).
    pub ties_up: bool,
    /// Derived: every channel has no left shift and a right shift ≥ 1 (multipliers < 0.5,
    /// the usual case), so the single-step 64-bit form below applies.
    pub fast: bool,
    /// Derived, fast form, per pair of lanes (even, odd): the 64-bit addend
    /// `2^30 + 2^(s−1)·2^31` of the even and of the odd lane.
    pub add_even: Vec<i64>,
    pub add_odd: Vec<i64>,
    /// Derived, fast form: 64-bit arithmetic shifts `31 + s` (even lane; result in the low
    /// half) and `s − 1` (odd lane; result in the high half).
    pub shift_even: Vec<i64>,
    pub shift_odd: Vec<i64>,
    /// Derived on request ([`ChannelQuant::derive_logical`]: the AVX2 packings alone read
    /// them), fast form for tiers without a 64-bit arithmetic shift: the addends
    /// plus 2^62, which keeps every sum non-negative for a logical shift, and the same with
    /// the `− 2^31` of negative products (`_neg`); `offset` is what the 2^62 adds to the
    /// quotient, `2^(31 − s)` per channel. Empty otherwise.
    pub add_even_u: Vec<i64>,
    pub add_odd_u: Vec<i64>,
    pub add_even_u_neg: Vec<i64>,
    pub add_odd_u_neg: Vec<i64>,
    pub offset: Vec<i32>,
    /// Per-channel `f32` scales ([`Requant::scale_f32`]; 0 in padding lanes).
    pub scale: Vec<f32>,
    /// `Some([min − zp, max − zp])` when the channels requantize in `f32`
    /// ([`crate::requantize_f32`]), which then replaces every form above.
    pub f32_range: Option<[f32; 2]>,
    /// Every `|accumulator × scale|` stays below 2^30 ([`ChannelQuant::bound_products`]):
    /// the `f32` form's conversion cannot overflow, so where the result is narrowed with
    /// saturation the upper clamp may be skipped.
    pub f32_bounded: bool,
}

impl ChannelQuant {
    /// Builds padded per-channel arrays; `bias[c]` is already folded by the caller. With
    /// `f32_out`, the channels requantize in `f32` into that output's range.
    pub fn new(
        bias: impl Iterator<Item = i32>,
        requant: &[Requant],
        padded: usize,
        f32_out: Option<OutputQuant>,
    ) -> Self {
        let z = vec![0; padded];
        let mut q = ChannelQuant {
            bias: z.clone(),
            mult: z.clone(),
            lshift: z.clone(),
            rshift: z.clone(),
            mult_odd: z.clone(),
            rmask: z.clone(),
            rhalf: z,
            ties_up: false,
            fast: false,
            add_even: Vec::new(),
            add_odd: Vec::new(),
            shift_even: Vec::new(),
            shift_odd: Vec::new(),
            add_even_u: Vec::new(),
            add_odd_u: Vec::new(),
            add_even_u_neg: Vec::new(),
            add_odd_u_neg: Vec::new(),
            offset: Vec::new(),
            scale: vec![0.0; padded],
            f32_range: f32_out.map(|o| [(o.min - o.zp) as f32, (o.max - o.zp) as f32]),
            f32_bounded: false,
        };
        for (c, (b, r)) in bias.zip(requant).enumerate() {
            q.bias[c] = b;
            q.scale[c] = r.scale_f32();
            q.mult[c] = r.multiplier();
            q.lshift[c] = r.left_shift();
            q.rshift[c] = r.right_shift();
        }
        q.derive();
        q
    }

    /// Sets [`ChannelQuant::f32_bounded`] from the reduction length `k` (multiply-accumulates
    /// per output): a kernel's accumulator is the bias (as folded here) plus `k` products of
    /// a u8 and an i8, so `|acc| ≤ |bias| + k·255·128`.
    pub fn bound_products(&mut self, k: usize) {
        let products = k as f64 * 255.0 * 128.0;
        self.f32_bounded = self.bias.iter().zip(&self.scale).all(|(&b, &s)| {
            (f64::from(b).abs() + products) * f64::from(s).abs() < (1u64 << 30) as f64
        });
    }

    /// Recomputes the derived arrays from `mult` and `rshift` (after any permutation).
    fn derive(&mut self) {
        let n = self.mult.len();
        let shifts: Vec<i32> = (0..n).map(|i| self.fast_rshift(i)).collect();
        let rs = |i: usize| shifts[i];
        self.fast = (0..n).all(|i| self.lshift[i] == 0 && rs(i) >= 1);
        let addend = |s: i32| (1i64 << 30) + (1i64 << (s - 1)) * (1i64 << 31);
        if self.fast {
            self.add_even = (0..n).step_by(2).map(|i| addend(rs(i))).collect();
            self.add_odd = (1..n).step_by(2).map(|i| addend(rs(i))).collect();
            self.shift_even = (0..n).step_by(2).map(|i| 31 + rs(i) as i64).collect();
            self.shift_odd = (1..n).step_by(2).map(|i| rs(i) as i64 - 1).collect();
        }
        self.mult_odd = (0..n)
            .map(|i| {
                if i % 2 == 0 && i + 1 < n {
                    self.mult[i + 1]
                } else {
                    0
                }
            })
            .collect();
        self.rmask = self
            .rshift
            .iter()
            .map(|&r| ((1i64 << r) - 1) as i32)
            .collect();
        self.rhalf = self.rmask.iter().map(|&m| m >> 1).collect();
    }

    /// Fills the logical-shift arrays of the fast form ([`ChannelQuant::add_even_u`] …,
    /// [`ChannelQuant::offset`]) from the derived ones; nothing unless [`ChannelQuant::fast`].
    /// Call after any permutation.
    pub fn derive_logical(&mut self) {
        if !self.fast {
            return;
        }
        let biased = |v: &[i64], neg: bool| -> Vec<i64> {
            v.iter()
                .map(|&a| a + (1i64 << 62) - if neg { 1i64 << 31 } else { 0 })
                .collect()
        };
        self.add_even_u = biased(&self.add_even, false);
        self.add_odd_u = biased(&self.add_odd, false);
        self.add_even_u_neg = biased(&self.add_even, true);
        self.add_odd_u_neg = biased(&self.add_odd, true);
        self.offset = (0..self.mult.len())
            .map(|i| 1i32 << (31 - self.fast_rshift(i)))
            .collect();
    }

    /// Channel `i`'s right shift in the fast form. Padding lanes have multiplier 0 (their
    /// output is discarded), so they never block the fast form: they get shift 1.
    fn fast_rshift(&self, i: usize) -> i32 {
        if self.mult[i] == 0 {
            self.rshift[i].max(1)
        } else {
            self.rshift[i]
        }
    }

    /// Permutes channels: entry `i` of the result is channel `map(i)` (or zero padding when
    /// `map` returns `None`).
    pub fn permuted(&self, len: usize, map: impl Fn(usize) -> Option<usize>) -> Self {
        let pick = |v: &Vec<i32>| {
            (0..len)
                .map(|i| map(i).map_or(0, |c| v[c]))
                .collect::<Vec<i32>>()
        };
        let mut q = ChannelQuant {
            bias: pick(&self.bias),
            mult: pick(&self.mult),
            lshift: pick(&self.lshift),
            rshift: pick(&self.rshift),
            mult_odd: Vec::new(),
            rmask: Vec::new(),
            rhalf: Vec::new(),
            ties_up: self.ties_up,
            fast: false,
            add_even: Vec::new(),
            add_odd: Vec::new(),
            shift_even: Vec::new(),
            shift_odd: Vec::new(),
            add_even_u: Vec::new(),
            add_odd_u: Vec::new(),
            add_even_u_neg: Vec::new(),
            add_odd_u_neg: Vec::new(),
            offset: Vec::new(),
            scale: (0..len)
                .map(|i| map(i).map_or(0.0, |c| self.scale[c]))
                .collect(),
            f32_range: self.f32_range,
            f32_bounded: self.f32_bounded,
        };
        q.derive();
        q
    }
}

/// Output zero point and clamp range.
/// Where the bytes of A lie for the SIMD GEMMs, in 4-byte words (a VNNI quad of u8, an AVX2
/// pair of i16): row `r`, word `q = s·seg_words + j` (segment `s`, word `j` in it) is the 4
/// bytes at `r·row + s·seg_stride + 4j`. A plain matrix is one segment of `k` words; a
/// convolution read straight from its padded input has one segment per kernel row.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ALayout {
    /// Bytes between consecutive rows.
    pub row: usize,
    /// Segments per row.
    pub segs: usize,
    /// Words per segment.
    pub seg_words: usize,
    /// Bytes between consecutive segments of a row.
    pub seg_stride: usize,
}

impl ALayout {
    /// Dense rows of `row` bytes (a multiple of 4).
    pub(crate) fn dense(row: usize) -> Self {
        ALayout {
            row,
            segs: 1,
            seg_words: row / 4,
            seg_stride: 0,
        }
    }

    /// Bytes from a tile's first row to the end of the last word of row `rows − 1`.
    pub(crate) fn span(&self, rows: usize) -> usize {
        (rows - 1) * self.row + (self.segs - 1) * self.seg_stride + self.seg_words * 4
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OutputQuant {
    pub zp: i32,
    pub min: i32,
    pub max: i32,
}

impl OutputQuant {
    /// The clamp range is all of int8 (no activation, or one whose range the quantization
    /// already spans, as ReLU6 with scale 6/255 and zero point −128): a saturating narrowing
    /// to int8 is then the whole clamp.
    pub(crate) fn full_range(&self) -> bool {
        self.min <= -128 && self.max >= 127
    }
}

/// The most rows per call for which the AVX2 tier keeps its weights as i8 and widens them as
/// it loads them, rather than storing them as i16: each weight then serves few rows, so the
/// time to stream the weights from memory (where a model's layers evict each other from the
/// caches) outweighs the extra widening instruction. MobileNetV2 on AVX2, every layer either
/// way (`outpost bench --profile`, best of three): the 7×7 layers and the classifier are
/// 6–30 % faster with i8 weights, the 14×14 ones (196 rows) 2–3 % slower.
pub(crate) const NARROW_WEIGHT_ROWS: usize = 64;

/// One group's weights packed for a SIMD tier.
#[derive(Debug, Clone)]
pub(crate) struct PackedGemm {
    pub tier: Tier,
    /// Output channels.
    pub n: usize,
    /// Reduction length.
    pub k: usize,
    /// AVX-512 VNNI: `[n/16][ceil(k/4)][16][4]` i8, zero padded.
    pub w8: Vec<i8>,
    /// AVX2: `[n/8][ceil(k/2)][8][2]` i16, zero padded; empty where `w8x2` holds them.
    pub w16: Vec<i16>,
    /// AVX2 for a GEMM of at most [`NARROW_WEIGHT_ROWS`] rows: `w16`'s layout as i8, widened
    /// as the kernel loads them (half the bytes to stream; see that constant).
    pub w8x2: Vec<i8>,
    pub quant: ChannelQuant,
    pub input_zp: i32,
    pub out: OutputQuant,
}

impl PackedGemm {
    /// Packs `weights` (`n` rows of `k`) for `tier` (a SIMD tier) and calls of about `rows`
    /// rows ([`NARROW_WEIGHT_ROWS`]); `f32_out`: requantize in `f32`
    /// ([`crate::requantize_f32`]).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        tier: Tier,
        n: usize,
        k: usize,
        rows: usize,
        weights: &[i8],
        bias: Option<&[i32]>,
        requant: &[Requant],
        input_zp: i32,
        out: OutputQuant,
        f32_out: bool,
    ) -> Self {
        assert_eq!(weights.len(), n * k, "gemm: weight length");
        assert_eq!(requant.len(), n, "gemm: one multiplier per output channel");
        if let Some(b) = bias {
            assert_eq!(b.len(), n, "gemm: bias length");
        }
        let padded = n.div_ceil(16) * 16;
        let bias_at = |c: usize| bias.map_or(0, |b| b[c]);
        let row_sum = |c: usize| {
            weights[c * k..(c + 1) * k]
                .iter()
                .map(|&w| w as i32)
                .sum::<i32>()
        };
        let mut w8 = Vec::new();
        let mut w16 = Vec::new();
        let mut w8x2 = Vec::new();
        let folded: Vec<i32> = match tier {
            Tier::Avx512Vnni => {
                // Activations are flipped to u8 (x + 128): fold −(zp + 128)·Σw into the bias.
                let kq = k.div_ceil(4);
                w8 = vec![0i8; padded * kq * 4];
                for c in 0..n {
                    for kk in 0..k {
                        let (blk, lane) = (c / 16, c % 16);
                        w8[(blk * kq + kk / 4) * 64 + lane * 4 + kk % 4] = weights[c * k + kk];
                    }
                }
                (0..n)
                    .map(|c| bias_at(c).wrapping_sub((input_zp + 128).wrapping_mul(row_sum(c))))
                    .collect()
            }
            Tier::Avx2 => {
                // Activations are widened to i16 with the zero point subtracted: bias unchanged.
                let kp = k.div_ceil(2);
                let mut packed = vec![0i8; padded * kp * 2];
                for c in 0..n {
                    for kk in 0..k {
                        let (blk, lane) = (c / 8, c % 8);
                        packed[(blk * kp + kk / 2) * 16 + lane * 2 + kk % 2] = weights[c * k + kk];
                    }
                }
                if rows <= NARROW_WEIGHT_ROWS {
                    w8x2 = packed;
                } else {
                    w16 = packed.into_iter().map(i16::from).collect();
                }
                (0..n).map(bias_at).collect()
            }
            Tier::Generic => panic!("the generic tier does not use packed GEMM weights"),
        };
        let mut quant =
            ChannelQuant::new(folded.into_iter(), requant, padded, f32_out.then_some(out));
        quant.bound_products(k);
        if tier == Tier::Avx2 {
            // The fast form's AVX2 variant (`avx2::requant::Rq8Fast`) reads these.
            quant.derive_logical();
        }
        PackedGemm {
            tier,
            n,
            k,
            w8,
            w16,
            w8x2,
            quant,
            input_zp,
            out,
        }
    }

    /// Scratch bytes one call needs (AVX2 widens `avx2::gemm::MR` rows of A to i16 at a time).
    pub fn scratch_bytes(&self) -> usize {
        match self.tier {
            #[cfg(target_arch = "x86_64")]
            Tier::Avx2 => {
                crate::x86_64::avx2::gemm::MR * crate::x86_64::avx2::gemm::row_bytes(self.k)
            }
            #[cfg(target_arch = "x86_64")]
            Tier::Avx512Vnni => crate::x86_64::avx512vnni::gemm::scratch_bytes(self.k),
            _ => 0,
        }
    }

    /// Multiplies `m` rows of `a` (row stride `lda`) into `c` (row stride `ldc`).
    pub fn run<A: Int8Bytes>(
        &self,
        a: &[A],
        lda: usize,
        m: usize,
        c: &mut [i8],
        ldc: usize,
        scratch: &mut [u8],
    ) {
        match self.tier {
            #[cfg(target_arch = "x86_64")]
            Tier::Avx512Vnni => crate::x86_64::avx512vnni::gemm::gemm(
                self,
                A::as_i8(a),
                lda,
                m,
                c,
                ldc,
                None,
                scratch,
            ),
            #[cfg(target_arch = "x86_64")]
            Tier::Avx2 => {
                crate::x86_64::avx2::gemm::gemm(self, A::as_i8(a), lda, m, c, ldc, scratch)
            }
            _ => unreachable!(
                "no packed GEMM kernel for tier {} on this target",
                self.tier
            ),
        }
    }
}

/// Byte slices the GEMM reads as int8 (activations, or im2col rows in `u8` scratch).
pub(crate) trait Int8Bytes: Copy {
    /// Reinterprets the bytes as `i8`.
    fn as_i8(s: &[Self]) -> &[i8];
}

impl Int8Bytes for i8 {
    fn as_i8(s: &[i8]) -> &[i8] {
        s
    }
}

impl Int8Bytes for u8 {
    fn as_i8(s: &[u8]) -> &[i8] {
        // SAFETY: u8 and i8 have the same size, alignment and validity (every bit pattern).
        unsafe { core::slice::from_raw_parts(s.as_ptr().cast(), s.len()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channels(bias: i32, scale: f32) -> ChannelQuant {
        let r = crate::quant::quantize_multiplier(f64::from(scale));
        let out = OutputQuant {
            zp: 0,
            min: -128,
            max: 127,
        };
        ChannelQuant::new([bias, -bias].into_iter(), &[r, r], 16, Some(out))
    }

    /// The bound under which the VNNI tier skips the `f32` form's upper clamp: products of
    /// `k` u8·i8 pairs plus the bias, times the scale, below 2^30 on every channel.
    #[test]
    fn products_are_bounded_only_below_two_to_the_thirty() {
        let mut q = channels(1 << 28, 2.0);
        q.bound_products(8);
        assert!(q.f32_bounded, "(2^28 + 8·255·128)·2 < 2^30");
        q.bound_products(20_000);
        assert!(!q.f32_bounded, "(2^28 + 20000·255·128)·2 ≥ 2^30");
        let mut q = channels((1 << 29) + 1, 2.0);
        q.bound_products(0);
        assert!(!q.f32_bounded, "the bias alone reaches 2^30");
        let mut q = channels(-(1 << 29) + 1, 2.0);
        q.bound_products(0);
        assert!(
            q.f32_bounded,
            "|bias| just below: padding lanes (scale 0) do not count"
        );
    }
}
