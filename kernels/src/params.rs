//! Shape and quantization parameter structs shared by every tier.
//!
//! All tensors are NHWC. Activation clamp ranges (`act_min`, `act_max`) are in the quantized
//! output domain; [`Activation::range_i8`] builds them from a fused activation (relu, relu6).

/// A fused activation function, applied as a clamp of the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Activation {
    /// No activation: the full int8 range.
    #[default]
    None,
    /// `max(x, 0)`.
    Relu,
    /// `min(max(x, 0), 6)`.
    Relu6,
}

impl Activation {
    /// The int8 clamp range of this activation for an output with `scale` and `zero_point`
    /// (TFLite's `CalculateActivationRangeQuantized`).
    pub fn range_i8(self, scale: f32, zero_point: i32) -> (i32, i32) {
        let q = |x: f32| zero_point.saturating_add((x / scale).round() as i32);
        let (lo, hi) = match self {
            Activation::None => (-128, 127),
            Activation::Relu => (q(0.0).max(-128), 127),
            Activation::Relu6 => (q(0.0).max(-128), q(6.0).min(127)),
        };
        (lo, hi)
    }

    /// The f32 clamp range of this activation.
    pub fn range_f32(self) -> (f32, f32) {
        match self {
            Activation::None => (f32::NEG_INFINITY, f32::INFINITY),
            Activation::Relu => (0.0, f32::INFINITY),
            Activation::Relu6 => (0.0, 6.0),
        }
    }
}

/// Output extent of a convolution/pool along one axis with explicit padding.
pub fn conv_output_size(
    input: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    pad_before: usize,
    pad_after: usize,
) -> usize {
    let eff = dilation * (kernel - 1) + 1;
    (input + pad_before + pad_after).saturating_sub(eff) / stride + 1
}

/// Parameters of a 2-D convolution (also used for pointwise 1×1 convolutions).
///
/// Weights are OHWI: `[out_c, k_h, k_w, in_c / groups]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2dParams {
    /// Images in the batch.
    pub batch: usize,
    /// Input height.
    pub in_h: usize,
    /// Input width.
    pub in_w: usize,
    /// Input channels (all groups).
    pub in_c: usize,
    /// Output height.
    pub out_h: usize,
    /// Output width.
    pub out_w: usize,
    /// Output channels (all groups).
    pub out_c: usize,
    /// Kernel height.
    pub k_h: usize,
    /// Kernel width.
    pub k_w: usize,
    /// Vertical stride.
    pub stride_h: usize,
    /// Horizontal stride.
    pub stride_w: usize,
    /// Vertical dilation.
    pub dilation_h: usize,
    /// Horizontal dilation.
    pub dilation_w: usize,
    /// Implicit rows of padding above the input (bottom padding follows from `out_h`).
    pub pad_top: usize,
    /// Implicit columns of padding left of the input.
    pub pad_left: usize,
    /// Channel groups; `in_c` and `out_c` must be multiples of it.
    pub groups: usize,
    /// Input zero point (int8 only).
    pub input_zp: i32,
    /// Output zero point (int8 only).
    pub output_zp: i32,
    /// Lowest output value after the fused activation (int8 only).
    pub act_min: i32,
    /// Highest output value after the fused activation (int8 only).
    pub act_max: i32,
    /// Int8 requantization in `f32` ([`crate::requantize_f32`]) instead of TFLite's fixed
    /// point form.
    pub requant_f32: bool,
}

impl Conv2dParams {
    /// A stride-1, undilated, unpadded, single-group convolution with an identity activation;
    /// adjust the fields that differ.
    pub fn simple(
        in_h: usize,
        in_w: usize,
        in_c: usize,
        out_c: usize,
        k_h: usize,
        k_w: usize,
    ) -> Self {
        Conv2dParams {
            batch: 1,
            in_h,
            in_w,
            in_c,
            out_h: conv_output_size(in_h, k_h, 1, 1, 0, 0),
            out_w: conv_output_size(in_w, k_w, 1, 1, 0, 0),
            out_c,
            k_h,
            k_w,
            stride_h: 1,
            stride_w: 1,
            dilation_h: 1,
            dilation_w: 1,
            pad_top: 0,
            pad_left: 0,
            groups: 1,
            input_zp: 0,
            output_zp: 0,
            act_min: -128,
            act_max: 127,
            requant_f32: false,
        }
    }

    /// Input channels per group (the innermost weight dimension).
    pub fn in_c_per_group(&self) -> usize {
        self.in_c / self.groups
    }

    /// Output channels per group.
    pub fn out_c_per_group(&self) -> usize {
        self.out_c / self.groups
    }

    /// Number of weights: `out_c · k_h · k_w · in_c / groups`.
    pub fn weight_len(&self) -> usize {
        self.out_c * self.k_h * self.k_w * self.in_c_per_group()
    }

    /// Number of input elements.
    pub fn input_len(&self) -> usize {
        self.batch * self.in_h * self.in_w * self.in_c
    }

    /// Number of output elements.
    pub fn output_len(&self) -> usize {
        self.batch * self.out_h * self.out_w * self.out_c
    }

    /// Multiply-accumulates per call.
    pub fn macs(&self) -> u64 {
        (self.output_len() * self.k_h * self.k_w * self.in_c_per_group()) as u64
    }

    /// Whether this is a plain GEMM over pixels (1×1, stride 1, no padding, one group).
    pub fn is_pointwise(&self) -> bool {
        self.k_h == 1
            && self.k_w == 1
            && self.stride_h == 1
            && self.stride_w == 1
            && self.pad_top == 0
            && self.pad_left == 0
            && self.groups == 1
            && self.out_h == self.in_h
            && self.out_w == self.in_w
    }

    /// Panics with a clear message if the parameters are inconsistent.
    pub fn check(&self) {
        assert!(
            self.groups >= 1
                && self.in_c.is_multiple_of(self.groups)
                && self.out_c.is_multiple_of(self.groups),
            "conv2d: channels {}→{} not divisible by groups {}",
            self.in_c,
            self.out_c,
            self.groups
        );
        assert!(
            self.k_h >= 1
                && self.k_w >= 1
                && self.stride_h >= 1
                && self.stride_w >= 1
                && self.dilation_h >= 1
                && self.dilation_w >= 1,
            "conv2d: kernel, stride and dilation must be >= 1"
        );
        assert!(
            self.in_c >= 1 && self.out_c >= 1,
            "conv2d: empty channel dimension"
        );
        assert!(
            self.act_min <= self.act_max,
            "conv2d: empty activation range"
        );
    }
}

/// Parameters of a depthwise convolution. Weights are `[1, k_h, k_w, in_c · multiplier]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DepthwiseParams {
    /// Images in the batch.
    pub batch: usize,
    /// Input height.
    pub in_h: usize,
    /// Input width.
    pub in_w: usize,
    /// Input channels.
    pub in_c: usize,
    /// Output height.
    pub out_h: usize,
    /// Output width.
    pub out_w: usize,
    /// Depth multiplier: output channel `ic · multiplier + m` reads input channel `ic`.
    pub multiplier: usize,
    /// Kernel height.
    pub k_h: usize,
    /// Kernel width.
    pub k_w: usize,
    /// Vertical stride.
    pub stride_h: usize,
    /// Horizontal stride.
    pub stride_w: usize,
    /// Vertical dilation.
    pub dilation_h: usize,
    /// Horizontal dilation.
    pub dilation_w: usize,
    /// Implicit rows of padding above the input.
    pub pad_top: usize,
    /// Implicit columns of padding left of the input.
    pub pad_left: usize,
    /// Input zero point (int8 only).
    pub input_zp: i32,
    /// Output zero point (int8 only).
    pub output_zp: i32,
    /// Lowest output value (int8 only).
    pub act_min: i32,
    /// Highest output value (int8 only).
    pub act_max: i32,
    /// Int8 requantization in `f32` ([`crate::requantize_f32`]) instead of TFLite's fixed
    /// point form (which rounds as [`crate::PackedDepthwise::ties_upward`] says).
    pub requant_f32: bool,
}

impl DepthwiseParams {
    /// A `k×k` depthwise convolution with "same" padding at `stride`, multiplier 1, identity
    /// activation and zero zero points.
    pub fn same(in_h: usize, in_w: usize, channels: usize, k: usize, stride: usize) -> Self {
        let out_h = in_h.div_ceil(stride);
        let out_w = in_w.div_ceil(stride);
        let pad_h = ((out_h - 1) * stride + k).saturating_sub(in_h);
        let pad_w = ((out_w - 1) * stride + k).saturating_sub(in_w);
        DepthwiseParams {
            batch: 1,
            in_h,
            in_w,
            in_c: channels,
            out_h,
            out_w,
            multiplier: 1,
            k_h: k,
            k_w: k,
            stride_h: stride,
            stride_w: stride,
            dilation_h: 1,
            dilation_w: 1,
            pad_top: pad_h / 2,
            pad_left: pad_w / 2,
            input_zp: 0,
            output_zp: 0,
            act_min: -128,
            act_max: 127,
            requant_f32: false,
        }
    }

    /// Output channels (`in_c · multiplier`).
    pub fn out_c(&self) -> usize {
        self.in_c * self.multiplier
    }

    /// Number of weights.
    pub fn weight_len(&self) -> usize {
        self.k_h * self.k_w * self.out_c()
    }

    /// Number of input elements.
    pub fn input_len(&self) -> usize {
        self.batch * self.in_h * self.in_w * self.in_c
    }

    /// Number of output elements.
    pub fn output_len(&self) -> usize {
        self.batch * self.out_h * self.out_w * self.out_c()
    }

    /// Multiply-accumulates per call.
    pub fn macs(&self) -> u64 {
        (self.output_len() * self.k_h * self.k_w) as u64
    }

    /// Panics with a clear message if the parameters are inconsistent.
    pub fn check(&self) {
        assert!(
            self.in_c >= 1 && self.multiplier >= 1,
            "depthwise: empty channel dimension"
        );
        assert!(
            self.k_h >= 1
                && self.k_w >= 1
                && self.stride_h >= 1
                && self.stride_w >= 1
                && self.dilation_h >= 1
                && self.dilation_w >= 1,
            "depthwise: kernel, stride and dilation must be >= 1"
        );
        assert!(
            self.act_min <= self.act_max,
            "depthwise: empty activation range"
        );
    }
}

/// Parameters of a fully connected layer: `[batch, in] × [out, in]ᵀ → [batch, out]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FcParams {
    /// Rows of the input.
    pub batch: usize,
    /// Input features.
    pub in_features: usize,
    /// Output features.
    pub out_features: usize,
    /// Input zero point (int8 only).
    pub input_zp: i32,
    /// Output zero point (int8 only).
    pub output_zp: i32,
    /// Lowest output value (int8 only).
    pub act_min: i32,
    /// Highest output value (int8 only).
    pub act_max: i32,
}

impl FcParams {
    /// The same layer as a 1×1 convolution over `batch` pixels.
    pub fn as_conv(&self) -> Conv2dParams {
        let mut p = Conv2dParams::simple(1, self.batch, self.in_features, self.out_features, 1, 1);
        p.input_zp = self.input_zp;
        p.output_zp = self.output_zp;
        p.act_min = self.act_min;
        p.act_max = self.act_max;
        p
    }
}

/// Shape of a 2-D pooling window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolParams {
    /// Images in the batch.
    pub batch: usize,
    /// Input height.
    pub in_h: usize,
    /// Input width.
    pub in_w: usize,
    /// Channels.
    pub channels: usize,
    /// Output height.
    pub out_h: usize,
    /// Output width.
    pub out_w: usize,
    /// Window height.
    pub k_h: usize,
    /// Window width.
    pub k_w: usize,
    /// Vertical stride.
    pub stride_h: usize,
    /// Horizontal stride.
    pub stride_w: usize,
    /// Implicit rows of padding above (padded cells are excluded from max and average).
    pub pad_top: usize,
    /// Implicit columns of padding on the left.
    pub pad_left: usize,
    /// Lowest output value (int8 only; pools keep the input's scale and zero point).
    pub act_min: i32,
    /// Highest output value (int8 only).
    pub act_max: i32,
}

impl PoolParams {
    /// The input rows of output row `oy`'s window inside the image (`oy·stride_h + ky −
    /// pad_top` in `[0, in_h)`); empty (its start may pass its end) when none are.
    pub(crate) fn window_rows(&self, oy: usize) -> std::ops::Range<usize> {
        let y0 = (oy * self.stride_h) as isize - self.pad_top as isize;
        (y0.max(0) as usize)..((y0 + self.k_h as isize).clamp(0, self.in_h as isize) as usize)
    }

    /// The input columns of output column `ox`'s window inside the image, as
    /// [`PoolParams::window_rows`].
    pub(crate) fn window_cols(&self, ox: usize) -> std::ops::Range<usize> {
        let x0 = (ox * self.stride_w) as isize - self.pad_left as isize;
        (x0.max(0) as usize)..((x0 + self.k_w as isize).clamp(0, self.in_w as isize) as usize)
    }

    /// Panics unless `input` and `output` hold this pool's input and output elements.
    pub(crate) fn check_lengths(&self, input: usize, output: usize) {
        let (b, c) = (self.batch, self.channels);
        assert_eq!(input, b * self.in_h * self.in_w * c, "pool: input length");
        assert_eq!(
            output,
            b * self.out_h * self.out_w * c,
            "pool: output length"
        );
    }

    /// Output rows `rows` of a one-image pool as a pool of its own over the input rows it
    /// reads (returned): the same cells in every window, so the same results bit for bit.
    /// `None` for a batch, empty or out-of-range rows.
    pub fn rows(
        &self,
        rows: std::ops::Range<usize>,
    ) -> Option<(PoolParams, std::ops::Range<usize>)> {
        let g = RowGeometry {
            k: self.k_h,
            stride: self.stride_h,
            dilation: 1,
            pad: self.pad_top,
        };
        let (s, input_rows) = slice_rows(self.batch, self.in_h, self.out_h, g, rows)?;
        let p = PoolParams {
            in_h: s.in_h,
            out_h: s.out_h,
            pad_top: s.pad,
            ..*self
        };
        Some((p, input_rows))
    }
}

/// Resize options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ResizeOptions {
    /// Map corner pixels onto corner pixels.
    pub align_corners: bool,
    /// Sample at pixel centres (TF2 behaviour).
    pub half_pixel_centers: bool,
}

/// Largest pooling window (cells) the pool kernels take; use the global mean beyond.
pub const MAX_POOL_WINDOW: usize = 256;

/// The vertical geometry of a convolution window (see [`slice_rows`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RowGeometry {
    pub k: usize,
    pub stride: usize,
    pub dilation: usize,
    pub pad: usize,
}

/// Input height, output height and top padding of a row slice ([`slice_rows`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct SlicedRows {
    pub in_h: usize,
    pub out_h: usize,
    pub pad: usize,
}

/// Output rows `rows` of a one-image convolution as a convolution of its own: its input rows
/// (the range of the whole input they read), input height, output height and top padding
/// (the bottom padding follows from the output height, as for every convolution here).
/// `None` for a batch, empty or out-of-range rows, or rows that read only padding.
pub(crate) fn slice_rows(
    batch: usize,
    in_h: usize,
    out_h: usize,
    g: RowGeometry,
    rows: std::ops::Range<usize>,
) -> Option<(SlicedRows, std::ops::Range<usize>)> {
    if batch != 1 || rows.is_empty() || rows.end > out_h {
        return None;
    }
    let span = (g.k - 1) * g.dilation + 1;
    // First and one-past-last input rows read, before clamping to the input.
    let first = (rows.start * g.stride) as isize - g.pad as isize;
    let last = ((rows.end - 1) * g.stride + span) as isize - g.pad as isize;
    let start = first.max(0) as usize;
    let end = (last.min(in_h as isize)).max(0) as usize;
    if end <= start {
        return None;
    }
    Some((
        SlicedRows {
            in_h: end - start,
            out_h: rows.len(),
            pad: (-first).max(0) as usize,
        },
        start..end,
    ))
}
