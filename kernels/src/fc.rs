//! Fully connected int8 layer, prepared as a 1×1 convolution over `batch` pixels.

use core::ops::Range;

use crate::conv::PackedConv;
use crate::params::FcParams;
use crate::tier::Tier;

/// A fully connected layer (`[out, in]` weights) prepared for one tier.
#[derive(Debug, Clone)]
pub struct PackedFc {
    pub(crate) params: FcParams,
    pub(crate) conv: PackedConv,
}

impl PackedFc {
    /// Prepares a fully connected layer; `weight_scales` has 1 or `out_features` entries.
    pub fn new(
        tier: Tier,
        params: &FcParams,
        weights: &[i8],
        bias: Option<&[i32]>,
        input_scale: f32,
        weight_scales: &[f32],
        output_scale: f32,
    ) -> Self {
        PackedFc {
            params: *params,
            conv: PackedConv::new(
                tier,
                &params.as_conv(),
                weights,
                bias,
                input_scale,
                weight_scales,
                output_scale,
            ),
        }
    }

    /// The layer restricted to output features `features` of a batch of one: a layer of its
    /// own writing those features' bytes of the output (`features.len()` of them), its
    /// weights copied out of this one's. Bit-exact with those features of the whole layer.
    /// `None` for a batch above one, or an empty or out-of-range `features`.
    pub fn outputs(&self, features: Range<usize>) -> Option<PackedFc> {
        if self.params.batch != 1 {
            return None;
        }
        Some(PackedFc {
            params: FcParams {
                out_features: features.len(),
                ..self.params
            },
            conv: self.conv.out_channels(features)?,
        })
    }

    /// The parameters this was packed for.
    pub fn params(&self) -> &FcParams {
        &self.params
    }

    /// The tier this was packed for.
    pub fn tier(&self) -> Tier {
        self.conv.tier
    }

    /// Scratch bytes a call needs.
    pub fn scratch_bytes(&self) -> usize {
        self.conv.scratch_bytes()
    }
}
