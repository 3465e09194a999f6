//! A convolution followed by an int16 add that reads it (a residual block's 1×1 projection
//! plus its skip connection): `out = conv(x) ⊕ skip` ([`Residual`]).
//!
//! On the AVX-512 VNNI tier a pointwise convolution adds the skip in its GEMM epilogue, so the
//! convolution's output is never written out and read back; everywhere else
//! [`crate::KernelTable::conv2d_add16_i8`] runs the tier's convolution, then the add in place
//! (the scalar reference). Both are bit-exact with the convolution followed by
//! [`crate::KernelTable::add16_i8_padded`].

use crate::conv::PackedConv;
use crate::elementwise::{Add16Quant, ChannelPadded};
use crate::tier::Tier;

/// Up to this many output channels the VNNI GEMM runs 12-row tiles whose epilogue is already
/// its bottleneck: adding there costs as much as the separate add (BlazeFace's 24- and
/// 28-channel layers at 64×64 measured 2–4 µs slower fused, the 36–88-channel ones 1–3 µs
/// faster), so those convolutions are not fused.
pub const FUSED_ADD_MIN_CHANNELS: usize = 32;

/// The add a convolution's output goes through: `out = add.apply(conv, skip)` with the skip
/// operand channel-padded as `pad` says (`pad.channels` = the convolution's output channels;
/// `pad.b_channels = pad.channels` when it is not padded).
#[derive(Debug, Clone, Copy)]
pub struct Residual<'a> {
    /// The add, the convolution's output as its first operand.
    pub add: Add16Quant,
    /// The skip operand's channels.
    pub pad: ChannelPadded,
    /// The skip operand: as many pixels as the convolution's output, `pad.b_channels` each.
    pub skip: &'a [i8],
}

impl PackedConv {
    /// Whether [`crate::KernelTable::conv2d_add16_i8`] adds in the convolution's own pass
    /// (AVX-512 VNNI, pointwise, more than [`FUSED_ADD_MIN_CHANNELS`] output channels);
    /// otherwise it runs the convolution, then the add.
    pub fn fuses_add(&self) -> bool {
        self.tier == Tier::Avx512Vnni
            && self.params.is_pointwise()
            && self.params.out_c > FUSED_ADD_MIN_CHANNELS
    }

    /// Panics unless `r` describes this convolution's output and `r.skip` and `output` hold
    /// its pixels.
    pub(crate) fn check_residual(&self, r: &Residual<'_>, output: &[i8]) {
        assert_eq!(r.pad.channels, self.params.out_c, "conv+add: channels");
        assert_eq!(
            output.len(),
            self.params.output_len(),
            "conv2d: output length"
        );
        r.pad.check(output.len(), r.skip.len(), output.len());
    }
}

/// The fused form ([`PackedConv::fuses_add`]): one GEMM whose epilogue adds the skip.
#[cfg(target_arch = "x86_64")]
pub(crate) fn fused(
    p: &PackedConv,
    input: &[i8],
    r: &Residual<'_>,
    output: &mut [i8],
    scratch: &mut [u8],
) {
    assert!(p.fuses_add(), "conv+add: not a fused convolution");
    let d = &p.params;
    assert_eq!(input.len(), d.input_len(), "conv2d: input length");
    assert!(
        scratch.len() >= p.scratch_bytes(),
        "conv2d: scratch too short"
    );
    let m = d.batch * d.in_h * d.in_w;
    crate::x86_64::avx512vnni::gemm::gemm(
        &p.groups[0],
        input,
        d.in_c,
        m,
        output,
        d.out_c,
        Some(r),
        scratch,
    );
}
