//! A convolution followed by an int16 add that reads it (a residual block's 1×1 projection
//! plus its skip connection): `out = conv(x) ⊕ skip`, with [`Add16Quant`] and the skip
//! operand possibly channel-padded ([`ChannelPadded`]; `b_channels = channels` when not).
//!
//! On the AVX-512 VNNI tier a pointwise convolution adds the skip in its GEMM epilogue, so the
//! convolution's output is never written out and read back; everywhere else the tier's
//! convolution runs, then the add in place (the scalar reference). Both are bit-exact with the
//! convolution followed by [`crate::KernelTable::add16_i8_padded`].

use crate::conv::PackedConv;
use crate::elementwise::{Add16Quant, ChannelPadded};
use crate::generic;
use crate::tier::Tier;

impl PackedConv {
    /// Whether [`crate::KernelTable::conv2d_add16_i8`] adds in the convolution's own pass
    /// (AVX-512 VNNI, pointwise); otherwise it runs the convolution, then the add.
    pub fn fuses_add(&self) -> bool {
        self.tier == Tier::Avx512Vnni && self.params.is_pointwise()
    }

    /// Panics unless `pad` describes this convolution's output and `skip` and `output` hold
    /// its pixels.
    pub(crate) fn check_residual(&self, pad: &ChannelPadded, skip: &[i8], output: &[i8]) {
        assert_eq!(pad.channels, self.params.out_c, "conv+add: channels");
        assert_eq!(
            output.len(),
            self.params.output_len(),
            "conv2d: output length"
        );
        pad.check(output.len(), skip.len(), output.len());
    }
}

/// The generic tier: reference convolution, then the add in place.
pub(crate) fn generic(
    p: &PackedConv,
    input: &[i8],
    q: &Add16Quant,
    pad: &ChannelPadded,
    skip: &[i8],
    output: &mut [i8],
    scratch: &mut [u8],
) {
    p.check_residual(pad, skip, output);
    generic::conv::conv2d_i8(p, input, output, scratch);
    generic::elementwise::add16_i8_padded_in_place(q, pad, output, skip);
}

/// The AVX2 tier: its GEMM convolution, then the add in place.
#[cfg(target_arch = "x86_64")]
pub(crate) fn avx2(
    p: &PackedConv,
    input: &[i8],
    q: &Add16Quant,
    pad: &ChannelPadded,
    skip: &[i8],
    output: &mut [i8],
    scratch: &mut [u8],
) {
    p.check_residual(pad, skip, output);
    p.run_gemm(input, output, scratch);
    generic::elementwise::add16_i8_padded_in_place(q, pad, output, skip);
}

/// The AVX-512 VNNI tier: pointwise convolutions add in the GEMM epilogue.
#[cfg(target_arch = "x86_64")]
pub(crate) fn avx512vnni(
    p: &PackedConv,
    input: &[i8],
    q: &Add16Quant,
    pad: &ChannelPadded,
    skip: &[i8],
    output: &mut [i8],
    scratch: &mut [u8],
) {
    p.check_residual(pad, skip, output);
    if !p.fuses_add() {
        p.run_gemm(input, output, scratch);
        generic::elementwise::add16_i8_padded_in_place(q, pad, output, skip);
        return;
    }
    let d = &p.params;
    assert_eq!(input.len(), d.input_len(), "conv2d: input length");
    assert!(
        scratch.len() >= p.scratch_bytes(),
        "conv2d: scratch too short"
    );
    crate::x86_64::avx512vnni::gemm::gemm_add(
        &p.groups[0],
        input,
        d.in_c,
        d.batch * d.in_h * d.in_w,
        output,
        d.out_c,
        Some((q, pad, skip)),
        scratch,
    );
}
