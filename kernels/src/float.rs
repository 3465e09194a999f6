//! Float (f32) layers prepared at plan time; f16 weights are widened here.

use std::ops::Range;
use std::sync::Arc;

use crate::params::{
    Activation, Conv2dParams, DepthwiseParams, FcParams, RowGeometry, SlicedRows, slice_rows,
};

/// The vertical window of a convolution's or depthwise convolution's parameters.
macro_rules! window_rows {
    ($d:expr) => {
        RowGeometry {
            k: $d.k_h,
            stride: $d.stride_h,
            dilation: $d.dilation_h,
            pad: $d.pad_top,
        }
    };
}

/// IEEE half-precision bits to f32 (exact).
pub fn f16_to_f32(bits: u16) -> f32 {
    let sign = ((bits >> 15) as u32) << 31;
    let exp = ((bits >> 10) & 0x1f) as u32;
    let man = (bits & 0x3ff) as u32;
    let v = match (exp, man) {
        (0, 0) => sign,
        (0, m) => {
            // Subnormal: value m · 2^-24.
            let f = m as f32 * f32::from_bits(0x3380_0000);
            return if sign != 0 { -f } else { f };
        }
        (0x1f, 0) => sign | 0x7f80_0000,
        (0x1f, m) => sign | 0x7fc0_0000 | (m << 13),
        (e, m) => sign | ((e + 112) << 23) | (m << 13),
    };
    f32::from_bits(v)
}

/// Widens f16 bits to f32.
pub fn widen_f16(bits: &[u16]) -> Vec<f32> {
    bits.iter().map(|&b| f16_to_f32(b)).collect()
}

/// An f32 convolution (OHWI weights); the int8 fields of the params are ignored. Clones (the
/// row slices of [`PackedConvF32::rows`]) share the weights.
#[derive(Debug, Clone)]
pub struct PackedConvF32 {
    pub(crate) params: Conv2dParams,
    pub(crate) weights: Arc<[f32]>,
    /// The weights again in `[tap][in][out]` order for the SIMD tiers' kernels
    /// (`x86_64::avx2::conv_f32`, `x86_64::avx512vnni::float`), plus 32 zeros so that a 32-channel load
    /// from the last row stays inside; empty for grouped convolutions, which run the reference.
    pub(crate) weights_io: Arc<[f32]>,
    pub(crate) bias: Arc<[f32]>,
    pub(crate) act: (f32, f32),
}

impl PackedConvF32 {
    /// Panics unless `input` and `output` have this convolution's lengths and `weights_io`
    /// holds `pad` floats past its last row (a SIMD tier's whole-register loads).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub(crate) fn check_tiled(&self, input: &[f32], output: &[f32], pad: usize) {
        let d = &self.params;
        assert_eq!(input.len(), d.input_len(), "conv2d: input length");
        assert_eq!(output.len(), d.output_len(), "conv2d: output length");
        assert!(
            self.weights_io.len() >= d.weight_len() + pad,
            "conv2d f32: padded weights"
        );
    }

    /// Prepares an f32 convolution; `act` is the fused activation.
    pub fn new(
        params: &Conv2dParams,
        weights: &[f32],
        bias: Option<&[f32]>,
        act: Activation,
    ) -> Self {
        params.check();
        assert_eq!(
            weights.len(),
            params.weight_len(),
            "conv2d f32: weight length"
        );
        let bias: Arc<[f32]> = bias.map_or_else(|| vec![0.0; params.out_c].into(), Arc::from);
        assert_eq!(bias.len(), params.out_c, "conv2d f32: bias length");
        let weights_io = if params.groups == 1 {
            let k = params.k_h * params.k_w * params.in_c;
            let mut io = vec![0.0; weights.len() + 32];
            for (o, row) in weights.chunks_exact(k).enumerate() {
                for (t, &w) in row.iter().enumerate() {
                    io[t * params.out_c + o] = w;
                }
            }
            io
        } else {
            Vec::new()
        };
        PackedConvF32 {
            params: *params,
            weights: weights.into(),
            weights_io: weights_io.into(),
            bias,
            act: act.range_f32(),
        }
    }

    /// Prepares an f32 convolution from f16 weights (widened once here).
    pub fn from_f16(
        params: &Conv2dParams,
        weights: &[u16],
        bias: Option<&[f32]>,
        act: Activation,
    ) -> Self {
        Self::new(params, &widen_f16(weights), bias, act)
    }

    /// The parameters this was prepared for.
    pub fn params(&self) -> &Conv2dParams {
        &self.params
    }

    /// Output rows `rows` of a one-image convolution as a convolution of its own over the
    /// input rows it reads (returned), sharing the weights: its results are those rows of the
    /// whole convolution's, bit for bit. `None` for a batch, empty or out-of-range rows, or
    /// rows that read only padding.
    pub fn rows(&self, rows: Range<usize>) -> Option<(PackedConvF32, Range<usize>)> {
        let d = &self.params;
        let (s, input_rows) = slice_rows(d.batch, d.in_h, d.out_h, window_rows!(d), rows)?;
        let SlicedRows { in_h, out_h, pad } = s;
        let params = Conv2dParams {
            in_h,
            out_h,
            pad_top: pad,
            ..*d
        };
        Some((
            PackedConvF32 {
                params,
                ..self.clone()
            },
            input_rows,
        ))
    }
}

/// An f32 fully connected layer (`[out, in]` weights), run as a 1×1 convolution.
#[derive(Debug, Clone)]
pub struct PackedFcF32 {
    pub(crate) conv: PackedConvF32,
}

impl PackedFcF32 {
    /// Prepares an f32 fully connected layer.
    pub fn new(params: &FcParams, weights: &[f32], bias: Option<&[f32]>, act: Activation) -> Self {
        PackedFcF32 {
            conv: PackedConvF32::new(&params.as_conv(), weights, bias, act),
        }
    }
}

/// An f32 depthwise convolution (`[1, k_h, k_w, out_c]` weights). Clones share the weights.
#[derive(Debug, Clone)]
pub struct PackedDepthwiseF32 {
    pub(crate) params: DepthwiseParams,
    pub(crate) weights: Arc<[f32]>,
    pub(crate) bias: Arc<[f32]>,
    pub(crate) act: (f32, f32),
}

impl PackedDepthwiseF32 {
    /// Prepares an f32 depthwise convolution.
    pub fn new(
        params: &DepthwiseParams,
        weights: &[f32],
        bias: Option<&[f32]>,
        act: Activation,
    ) -> Self {
        params.check();
        assert_eq!(
            weights.len(),
            params.weight_len(),
            "depthwise f32: weight length"
        );
        let bias: Arc<[f32]> = bias.map_or_else(|| vec![0.0; params.out_c()].into(), Arc::from);
        assert_eq!(bias.len(), params.out_c(), "depthwise f32: bias length");
        PackedDepthwiseF32 {
            params: *params,
            weights: weights.into(),
            bias,
            act: act.range_f32(),
        }
    }

    /// Prepares an f32 depthwise convolution from f16 weights.
    pub fn from_f16(
        params: &DepthwiseParams,
        weights: &[u16],
        bias: Option<&[f32]>,
        act: Activation,
    ) -> Self {
        Self::new(params, &widen_f16(weights), bias, act)
    }

    /// The parameters this was prepared for.
    pub fn params(&self) -> &DepthwiseParams {
        &self.params
    }

    /// Output rows `rows` as a depthwise convolution of its own, as [`PackedConvF32::rows`].
    pub fn rows(&self, rows: Range<usize>) -> Option<(PackedDepthwiseF32, Range<usize>)> {
        let d = &self.params;
        let (s, input_rows) = slice_rows(d.batch, d.in_h, d.out_h, window_rows!(d), rows)?;
        let SlicedRows { in_h, out_h, pad } = s;
        let params = DepthwiseParams {
            in_h,
            out_h,
            pad_top: pad,
            ..*d
        };
        Some((
            PackedDepthwiseF32 {
                params,
                ..self.clone()
            },
            input_rows,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::f16_to_f32;

    #[test]
    fn f16_widening() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x3555), 0.333_251_95);
        assert_eq!(f16_to_f32(0x0001), 5.960_464_5e-8);
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert!(f16_to_f32(0x7c00).is_infinite());
        assert!(f16_to_f32(0x7e00).is_nan());
    }
}
