//! An f32 convolution followed by the f32 add that alone reads it (a residual block's
//! projection plus its skip connection): `out = clamp(conv(x) + skip)` ([`ResidualF32`]).
//!
//! The AVX2 and AVX-512 tiers add each tile's pixels right after the tile is stored, while
//! they are in L1, so the convolution's output is never written out and read back by a
//! separate step; the generic tier (and the tiers' fallbacks for grouped convolutions) runs
//! the convolution, then the add in place. Each output value is `(c + s).clamp(lo, hi)` with
//! `c` the convolution's value (its own clamp applied) and `s` the skip's value or the pad's
//! fill: bit for bit the convolution followed by [`crate::KernelTable::add_f32_padded`].

use crate::elementwise::ChannelPadded;
use crate::float::PackedConvF32;

/// The add a convolution's output goes through: `out = (conv + skip).clamp(act.0, act.1)`
/// with the skip operand channel-padded as `pad` says (`pad.channels` = the convolution's
/// output channels; `pad.b_channels = pad.channels` when it is not padded).
#[derive(Debug, Clone, Copy)]
pub struct ResidualF32<'a> {
    /// The add's clamp range.
    pub act: (f32, f32),
    /// The skip operand's channels and the value of the missing ones.
    pub pad: ChannelPadded<f32>,
    /// The skip operand: as many pixels as the convolution's output, `pad.b_channels` each.
    pub skip: &'a [f32],
}

impl ResidualF32<'_> {
    /// Panics unless the residual describes `p`'s output and `output` holds it.
    pub(crate) fn check(&self, p: &PackedConvF32, output: &[f32]) {
        assert_eq!(self.pad.channels, p.params.out_c, "conv+add f32: channels");
        assert_eq!(output.len(), p.params.output_len(), "conv2d: output length");
        self.pad.check(output.len(), self.skip.len(), output.len());
    }

    /// Adds the skip into `out`, the convolution's output pixels from `first` on (whole
    /// pixels), as [`crate::generic::elementwise::add_f32_padded`] computes each value.
    #[inline(always)] // into the tiers' target-feature tile loops
    pub(crate) fn add_into(&self, out: &mut [f32], first: usize) {
        let (c, bc) = (self.pad.channels, self.pad.b_channels);
        let (lo, hi) = self.act;
        let skip = &self.skip[first * bc..][..out.len() / c * bc];
        if bc == c {
            for (o, &s) in out.iter_mut().zip(skip) {
                *o = (*o + s).clamp(lo, hi);
            }
            return;
        }
        for (o, s) in out.chunks_exact_mut(c).zip(skip.chunks_exact(bc)) {
            let (o_b, o_fill) = o.split_at_mut(bc);
            for (o, &s) in o_b.iter_mut().zip(s) {
                *o = (*o + s).clamp(lo, hi);
            }
            for o in o_fill {
                *o = (*o + self.pad.fill).clamp(lo, hi);
            }
        }
    }
}

/// The generic tier's convolution, then the add.
pub(crate) fn conv2d_add_f32(
    p: &PackedConvF32,
    input: &[f32],
    r: &ResidualF32<'_>,
    output: &mut [f32],
) {
    conv_then_add(crate::generic::conv::conv2d_f32, p, input, r, output)
}

/// The fused scalar convolution (`f32::mul_add` per tap), then the add: the reference of the
/// tiers that fuse ([`crate::Tier::fuses_f32_multiply_add`]).
pub(crate) fn conv2d_add_f32_fused(
    p: &PackedConvF32,
    input: &[f32],
    r: &ResidualF32<'_>,
    output: &mut [f32],
) {
    conv_then_add(crate::generic::conv::conv2d_f32_fused, p, input, r, output)
}

/// `conv`, then the add in place.
fn conv_then_add(
    conv: fn(&PackedConvF32, &[f32], &mut [f32]),
    p: &PackedConvF32,
    input: &[f32],
    r: &ResidualF32<'_>,
    output: &mut [f32],
) {
    r.check(p, output);
    conv(p, input, output);
    r.add_into(output, 0);
}
