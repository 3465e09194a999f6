//! What one step of a plan runs: a kernel with everything it needs prepared at plan time.

use outpost_kernels::{
    Add16Quant, AddQuant, ChannelPadded, Lut, MulQuant, PackedConv, PackedConvF32, PackedDepthwise,
    PackedDepthwiseF32, PackedFc, PackedFcF32, PoolParams, Requant, ResizeOptions,
};

/// Most axes of a `slice` kernel.
pub const SLICE_RANK: usize = 4;

/// Element type a layout kernel moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Elem {
    /// One byte.
    I8,
    /// Four bytes.
    F32,
}

/// A prepared kernel call.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)]
pub enum Kernel {
    /// int8 convolution.
    ConvI8(PackedConv),
    /// int8 depthwise convolution.
    DepthwiseI8(PackedDepthwise),
    /// int8 fully connected.
    FcI8(PackedFc),
    /// int8 add, TFLite arithmetic.
    AddI8(AddQuant),
    /// int8 add, 16-bit multipliers (`"arithmetic": "int16"`).
    Add16I8(Add16Quant),
    /// int8 add, 16-bit multipliers, its second operand channel-padded (a pad fused in).
    Add16I8Padded(Add16Quant, ChannelPadded),
    /// int8 convolution whose output goes straight into an int16 add (fused): inputs are the
    /// convolution's input and the add's other operand (channel-padded as the pad says).
    ConvAdd16I8(PackedConv, Add16Quant, ChannelPadded),
    /// int8 multiply.
    MulI8(MulQuant),
    /// int8 mean over the spatial axes.
    MeanI8 {
        /// Batch.
        batch: usize,
        /// H×W.
        pixels: usize,
        /// Channels.
        channels: usize,
        /// Input zero point.
        in_zp: i32,
        /// in_scale / (out_scale · pixels).
        requant: Requant,
        /// Output zero point.
        out_zp: i32,
    },
    /// int8 max pool.
    MaxPoolI8(PoolParams),
    /// int8 average pool.
    AvgPoolI8(PoolParams),
    /// int8 table lookup (relu, relu6, logistic, tanh, hardswish).
    LutI8(Box<Lut>),
    /// int8 softmax.
    SoftmaxI8 {
        /// Row length.
        depth: usize,
        /// Inverse temperature.
        beta: f32,
        /// Input scale.
        in_scale: f32,
        /// Output scale.
        out_scale: f32,
        /// Output zero point.
        out_zp: i32,
    },
    /// f32 → int8.
    Quantize {
        /// Output scale.
        scale: f32,
        /// Output zero point.
        zp: i32,
    },
    /// int8 → int8 or uint8 with a new scale and zero point (TFLite `QUANTIZE` between
    /// quantized types).
    Requantize {
        /// Input zero point.
        in_zp: i32,
        /// in_scale / out_scale.
        requant: Requant,
        /// Output zero point.
        out_zp: i32,
        /// Whether the output is uint8 (else int8).
        to_u8: bool,
    },
    /// int8 → f32.
    Dequantize {
        /// Input scale.
        scale: f32,
        /// Input zero point.
        zp: i32,
    },
    /// f32 convolution.
    ConvF32(PackedConvF32),
    /// f32 depthwise convolution.
    DepthwiseF32(PackedDepthwiseF32),
    /// f32 fully connected.
    FcF32(PackedFcF32),
    /// f32 add with clamp.
    AddF32((f32, f32)),
    /// f32 convolution whose output goes straight into an f32 add (fused): inputs are the
    /// convolution's input and the add's other operand (channel-padded as `pad` says).
    ConvAddF32 {
        /// The convolution.
        conv: PackedConvF32,
        /// The add's clamp range.
        act: (f32, f32),
        /// The other operand's channels and the fill (`b_channels = channels`: not padded).
        pad: ChannelPadded<f32>,
    },
    /// f32 add with clamp whose second input is channel-padded (a pad folded in).
    AddF32Padded {
        /// Clamp range.
        act: (f32, f32),
        /// The second input's channels and the fill.
        pad: ChannelPadded<f32>,
    },
    /// f32 multiply with clamp.
    MulF32((f32, f32)),
    /// f32 spatial mean.
    MeanF32 {
        /// Batch.
        batch: usize,
        /// H×W.
        pixels: usize,
        /// Channels.
        channels: usize,
    },
    /// f32 max pool.
    MaxPoolF32(PoolParams),
    /// f32 average pool.
    AvgPoolF32(PoolParams),
    /// f32 element-wise function.
    MapF32(fn(f32) -> f32),
    /// f32 softmax.
    SoftmaxF32 {
        /// Row length.
        depth: usize,
        /// Inverse temperature.
        beta: f32,
    },
    /// Concatenation along an axis, inputs viewed as `[outer, inner_i]`.
    Concat {
        /// Product of the dims before the axis.
        outer: usize,
        /// Element type.
        elem: Elem,
    },
    /// Constant padding of a 4-D tensor.
    Pad {
        /// Input shape.
        shape: [usize; 4],
        /// Before/after per axis.
        pads: [(usize, usize); 4],
        /// The fill value's bits (zero point for i8, 0.0 for f32).
        value: i32,
        /// Element type.
        elem: Elem,
    },
    /// Axis permutation.
    Transpose {
        /// Input shape.
        shape: Vec<usize>,
        /// Permutation.
        perm: Vec<usize>,
        /// Element type.
        elem: Elem,
    },
    /// Strided window (shapes padded to [`SLICE_RANK`] axes).
    Slice {
        /// Input shape.
        shape: [usize; SLICE_RANK],
        /// First index per axis.
        begin: [usize; SLICE_RANK],
        /// Output shape.
        size: [usize; SLICE_RANK],
        /// Step per axis.
        stride: [usize; SLICE_RANK],
        /// Element type.
        elem: Elem,
    },
    /// Spatial resize.
    Resize {
        /// Input `[n, h, w, c]`.
        shape: [usize; 4],
        /// Output size.
        out: [usize; 2],
        /// Bilinear (else nearest).
        bilinear: bool,
        /// Options.
        options: ResizeOptions,
        /// Element type.
        elem: Elem,
    },
}

impl Kernel {
    /// Scratch bytes the kernel needs.
    pub fn scratch_bytes(&self) -> usize {
        match self {
            Kernel::ConvI8(p) | Kernel::ConvAdd16I8(p, ..) => p.scratch_bytes(),
            Kernel::DepthwiseI8(p) => p.scratch_bytes(),
            Kernel::FcI8(p) => p.scratch_bytes(),
            _ => 0,
        }
    }
}
