//! Ops of format version 1 and their attributes.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Fused activation: a clamp applied to an op's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// No clamp.
    #[default]
    None,
    /// max(x, 0).
    Relu,
    /// min(max(x, 0), 6).
    Relu6,
}

/// Spatial padding of convolutions and pools.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Padding {
    /// TFLite SAME: output = ceil(input / stride), padding split with the extra on the bottom/right.
    Same,
    /// No padding.
    Valid,
    /// `[top, left, bottom, right]`.
    Explicit([u32; 4]),
}

fn one_one() -> [u32; 2] {
    [1, 1]
}
fn same() -> Padding {
    Padding::Same
}
fn valid() -> Padding {
    Padding::Valid
}
fn one() -> u32 {
    1
}
fn one_f() -> f32 {
    1.0
}

/// `conv2d` attributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConvAttrs {
    /// `[h, w]` stride.
    #[serde(default = "one_one")]
    pub stride: [u32; 2],
    /// `[h, w]` dilation.
    #[serde(default = "one_one")]
    pub dilation: [u32; 2],
    /// Padding.
    #[serde(default = "same")]
    pub padding: Padding,
    /// Channel groups.
    #[serde(default = "one")]
    pub groups: u32,
    /// Fused activation.
    #[serde(default)]
    pub activation: Activation,
    /// The int8 requantization (absent: `tflite`).
    #[serde(default, skip_serializing_if = "Requantization::is_tflite")]
    pub requantization: Requantization,
}

/// How an int8 convolution brings its int32 accumulators to the output scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Requantization {
    /// TFLite's fixed point form (a Q31 multiplier and a rounding shift per channel): what
    /// models imported already quantized use, so they stay bit-exact with LiteRT.
    #[default]
    Tflite,
    /// In `f32` (what XNNPACK does): `round_even(clamp(f32(acc) · scale, …))` with the
    /// channel's multiplier as an `f32` — a third of the vector instructions, within one
    /// step of the fixed point form. Set by Outpost's quantizer.
    F32,
}

impl Requantization {
    /// Whether this is the default, [`Requantization::Tflite`].
    pub fn is_tflite(&self) -> bool {
        *self == Requantization::Tflite
    }
}

/// `depthwise_conv2d` attributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DepthwiseAttrs {
    /// `[h, w]` stride.
    #[serde(default = "one_one")]
    pub stride: [u32; 2],
    /// `[h, w]` dilation.
    #[serde(default = "one_one")]
    pub dilation: [u32; 2],
    /// Padding.
    #[serde(default = "same")]
    pub padding: Padding,
    /// Output channels per input channel.
    #[serde(default = "one")]
    pub depth_multiplier: u32,
    /// Fused activation.
    #[serde(default)]
    pub activation: Activation,
    /// How the int8 output shift rounds ties (absent: `away`; only with `tflite`
    /// requantization).
    #[serde(default, skip_serializing_if = "Rounding::is_away")]
    pub rounding: Rounding,
    /// The int8 requantization (absent: `tflite`).
    #[serde(default, skip_serializing_if = "Requantization::is_tflite")]
    pub requantization: Requantization,
}

/// How an int8 requantization's final right shift rounds exact ties.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Rounding {
    /// Half away from zero: gemmlowp's `RoundingDivideByPOT`, TFLite's reference kernels.
    /// What models quantized by Outpost use.
    #[default]
    Away,
    /// Half upward: TFLite's optimized depthwise kernels (`DepthwiseConvRound<kUpward>`), what
    /// LiteRT runs on the CPU without XNNPACK. Set on depthwise convolutions imported already
    /// quantized from TFLite, so that they run bit-exact with LiteRT.
    Upward,
}

impl Rounding {
    /// Whether this is the default, [`Rounding::Away`].
    pub fn is_away(&self) -> bool {
        *self == Rounding::Away
    }
}

/// `add` attributes.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddAttrs {
    /// Fused activation.
    #[serde(default)]
    pub activation: Activation,
    /// The int8 arithmetic (absent: `tflite`).
    #[serde(default, skip_serializing_if = "AddArithmetic::is_tflite")]
    pub arithmetic: AddArithmetic,
}

/// How an int8 add computes `out = zp_o + (s1·(a − zp1) + s2·(b − zp2)) / s_o`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AddArithmetic {
    /// TFLite's reference scheme: each input shifted left by 20 and rescaled by its own 31-bit
    /// multiplier, the sum rescaled by a third (three requantizations per element). What models
    /// imported already quantized use, so they stay bit-exact with LiteRT.
    #[default]
    Tflite,
    /// Two 16-bit multipliers `m1, m2` and one shift `s` (the largest with
    /// `round(max(s1, s2)/s_o · 2^s) ≤ 32767`): `acc = a·m1 + b·m2 + 2^(s−1) − zp1·m1 − zp2·m2`
    /// in 32 bits, `out = clamp((acc >> s) + zp_o)`. One multiply-add per pair of inputs; the
    /// multipliers keep 15 significant bits, an error far below half an output step. Set by
    /// Outpost's quantizer where the ratio of scales fits (`s1/s_o, s2/s_o ≤ 32767`).
    Int16,
}

impl AddArithmetic {
    /// Whether this is the default, [`AddArithmetic::Tflite`].
    pub fn is_tflite(&self) -> bool {
        *self == AddArithmetic::Tflite
    }
}

/// Attributes of ops that only carry a fused activation (`fully_connected`, `mul`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActAttrs {
    /// Fused activation.
    #[serde(default)]
    pub activation: Activation,
}

/// `concat` attributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConcatAttrs {
    /// Axis; negative counts from the end.
    pub axis: i32,
}

/// `pad` attributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PadAttrs {
    /// `[before, after]` per dimension.
    pub pads: Vec<[u32; 2]>,
}

/// `max_pool2d` / `avg_pool2d` attributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolAttrs {
    /// `[h, w]` window.
    pub kernel: [u32; 2],
    /// `[h, w]` stride (defaults to the kernel).
    #[serde(default)]
    pub stride: Option<[u32; 2]>,
    /// Padding.
    #[serde(default = "valid")]
    pub padding: Padding,
    /// Fused activation.
    #[serde(default)]
    pub activation: Activation,
}

impl PoolAttrs {
    /// The effective stride.
    pub fn stride(&self) -> [u32; 2] {
        self.stride.unwrap_or(self.kernel)
    }
}

/// `mean` attributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeanAttrs {
    /// Reduced axes.
    pub axes: Vec<i32>,
    /// Keep reduced axes with size 1.
    #[serde(default)]
    pub keep_dims: bool,
}

/// Interpolation of `resize`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResizeMode {
    /// Nearest neighbour.
    Nearest,
    /// Bilinear.
    #[default]
    Bilinear,
}

/// `resize` attributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResizeAttrs {
    /// Output `[h, w]`.
    pub size: [u32; 2],
    /// Interpolation.
    #[serde(default)]
    pub mode: ResizeMode,
    /// TFLite `align_corners`.
    #[serde(default)]
    pub align_corners: bool,
    /// TFLite `half_pixel_centers`.
    #[serde(default)]
    pub half_pixel_centers: bool,
}

/// `reshape` attributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReshapeAttrs {
    /// New shape; one entry may be −1.
    pub shape: Vec<i64>,
}

/// `transpose` attributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransposeAttrs {
    /// Permutation of the input axes.
    pub perm: Vec<u32>,
}

/// `softmax` attributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SoftmaxAttrs {
    /// Inverse temperature.
    #[serde(default = "one_f")]
    pub beta: f32,
}

/// `slice` attributes: a strided window of the input (TFLite `STRIDED_SLICE` with its masks
/// resolved, `SLICE`, one output of `SPLIT`/`SPLIT_V`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SliceAttrs {
    /// First index per axis.
    pub begin: Vec<u32>,
    /// Output size per axis.
    pub size: Vec<u32>,
    /// Step per axis (≥ 1; all 1 when absent).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stride: Vec<u32>,
}

impl SliceAttrs {
    /// The step along `axis` (1 when `stride` is empty).
    pub fn stride_of(&self, axis: usize) -> usize {
        self.stride.get(axis).copied().unwrap_or(1) as usize
    }
}

/// An op with its typed attributes.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Op {
    /// Convolution.
    Conv2d(ConvAttrs),
    /// Depthwise convolution.
    DepthwiseConv2d(DepthwiseAttrs),
    /// Fully connected (matrix × vector per row).
    FullyConnected(ActAttrs),
    /// Element-wise add.
    Add(AddAttrs),
    /// Element-wise multiply.
    Mul(ActAttrs),
    /// Concatenation.
    Concat(ConcatAttrs),
    /// Constant padding with the zero point.
    Pad(PadAttrs),
    /// Max pooling.
    MaxPool2d(PoolAttrs),
    /// Average pooling.
    AvgPool2d(PoolAttrs),
    /// Mean over axes.
    Mean(MeanAttrs),
    /// Spatial resize.
    Resize(ResizeAttrs),
    /// Reshape (no data movement).
    Reshape(ReshapeAttrs),
    /// Axis permutation.
    Transpose(TransposeAttrs),
    /// Strided window of the input.
    Slice(SliceAttrs),
    /// max(x, 0).
    Relu,
    /// clamp(x, 0, 6).
    Relu6,
    /// x · relu6(x + 3) / 6.
    HardSwish,
    /// Sigmoid.
    Logistic,
    /// Hyperbolic tangent.
    Tanh,
    /// Softmax over the last axis.
    Softmax(SoftmaxAttrs),
    /// f32 → i8/u8.
    Quantize,
    /// i8/u8 → f32.
    Dequantize,
}

/// Every op name of format version 1.
pub const OP_NAMES: &[&str] = &[
    "conv2d",
    "depthwise_conv2d",
    "fully_connected",
    "add",
    "mul",
    "concat",
    "pad",
    "max_pool2d",
    "avg_pool2d",
    "mean",
    "resize",
    "reshape",
    "transpose",
    "slice",
    "relu",
    "relu6",
    "hardswish",
    "logistic",
    "tanh",
    "softmax",
    "quantize",
    "dequantize",
];

/// Why an op could not be parsed.
#[derive(Debug)]
pub enum OpParseError {
    /// The op name is not known.
    Unknown,
    /// The attributes do not parse.
    Attrs(String),
}

fn attrs<'a, T: Deserialize<'a>>(v: &'a Value) -> Result<T, OpParseError> {
    T::deserialize(v).map_err(|e| OpParseError::Attrs(e.to_string()))
}

fn no_attrs(v: &Value) -> Result<(), OpParseError> {
    match v {
        Value::Null => Ok(()),
        Value::Object(m) if m.is_empty() => Ok(()),
        _ => Err(OpParseError::Attrs("this op takes no attributes".into())),
    }
}

impl Op {
    /// Parse an op from its name and attribute object.
    pub fn parse(name: &str, a: &Value) -> Result<Op, OpParseError> {
        static EMPTY: std::sync::LazyLock<Value> =
            std::sync::LazyLock::new(|| Value::Object(Default::default()));
        let a = if a.is_null() { &*EMPTY } else { a };
        Ok(match name {
            "conv2d" => Op::Conv2d(attrs(a)?),
            "depthwise_conv2d" => Op::DepthwiseConv2d(attrs(a)?),
            "fully_connected" => Op::FullyConnected(attrs(a)?),
            "add" => Op::Add(attrs(a)?),
            "mul" => Op::Mul(attrs(a)?),
            "concat" => Op::Concat(attrs(a)?),
            "pad" => Op::Pad(attrs(a)?),
            "max_pool2d" => Op::MaxPool2d(attrs(a)?),
            "avg_pool2d" => Op::AvgPool2d(attrs(a)?),
            "mean" => Op::Mean(attrs(a)?),
            "resize" => Op::Resize(attrs(a)?),
            "reshape" => Op::Reshape(attrs(a)?),
            "transpose" => Op::Transpose(attrs(a)?),
            "slice" => Op::Slice(attrs(a)?),
            "softmax" => Op::Softmax(attrs(a)?),
            simple => {
                let op = match simple {
                    "relu" => Op::Relu,
                    "relu6" => Op::Relu6,
                    "hardswish" => Op::HardSwish,
                    "logistic" => Op::Logistic,
                    "tanh" => Op::Tanh,
                    "quantize" => Op::Quantize,
                    "dequantize" => Op::Dequantize,
                    _ => return Err(OpParseError::Unknown),
                };
                no_attrs(a)?;
                op
            }
        })
    }

    /// The op's name in the format.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Conv2d(_) => "conv2d",
            Op::DepthwiseConv2d(_) => "depthwise_conv2d",
            Op::FullyConnected(_) => "fully_connected",
            Op::Add(_) => "add",
            Op::Mul(_) => "mul",
            Op::Concat(_) => "concat",
            Op::Pad(_) => "pad",
            Op::MaxPool2d(_) => "max_pool2d",
            Op::AvgPool2d(_) => "avg_pool2d",
            Op::Mean(_) => "mean",
            Op::Resize(_) => "resize",
            Op::Reshape(_) => "reshape",
            Op::Transpose(_) => "transpose",
            Op::Slice(_) => "slice",
            Op::Relu => "relu",
            Op::Relu6 => "relu6",
            Op::HardSwish => "hardswish",
            Op::Logistic => "logistic",
            Op::Tanh => "tanh",
            Op::Softmax(_) => "softmax",
            Op::Quantize => "quantize",
            Op::Dequantize => "dequantize",
        }
    }

    /// The attribute object as written in the format (`{}` for ops without attributes).
    pub fn attrs_json(&self) -> Value {
        let v = match self {
            Op::Conv2d(a) => serde_json::to_value(a),
            Op::DepthwiseConv2d(a) => serde_json::to_value(a),
            Op::FullyConnected(a) | Op::Mul(a) => serde_json::to_value(a),
            Op::Add(a) => serde_json::to_value(a),
            Op::Concat(a) => serde_json::to_value(a),
            Op::Pad(a) => serde_json::to_value(a),
            Op::MaxPool2d(a) | Op::AvgPool2d(a) => serde_json::to_value(a),
            Op::Mean(a) => serde_json::to_value(a),
            Op::Resize(a) => serde_json::to_value(a),
            Op::Reshape(a) => serde_json::to_value(a),
            Op::Transpose(a) => serde_json::to_value(a),
            Op::Slice(a) => serde_json::to_value(a),
            Op::Softmax(a) => serde_json::to_value(a),
            _ => Ok(Value::Object(Default::default())),
        };
        v.unwrap_or(Value::Null)
    }

    /// Check attribute ranges that do not depend on input shapes; returns a sentence naming
    /// the attribute on failure.
    pub fn check_attrs(&self) -> Result<(), String> {
        let pos2 = |name: &str, v: [u32; 2]| {
            if v.contains(&0) {
                Err(format!("{name} {v:?} must be ≥ 1"))
            } else {
                Ok(())
            }
        };
        match self {
            Op::Conv2d(a) => {
                pos2("stride", a.stride)?;
                pos2("dilation", a.dilation)?;
                if a.groups == 0 {
                    return Err("groups must be ≥ 1".into());
                }
            }
            Op::DepthwiseConv2d(a) => {
                pos2("stride", a.stride)?;
                pos2("dilation", a.dilation)?;
                if a.depth_multiplier == 0 {
                    return Err("depth_multiplier must be ≥ 1".into());
                }
            }
            Op::MaxPool2d(a) | Op::AvgPool2d(a) => {
                pos2("kernel", a.kernel)?;
                pos2("stride", a.stride())?;
            }
            Op::Resize(a) => {
                pos2("size", a.size)?;
                if a.align_corners && a.half_pixel_centers {
                    return Err("align_corners and half_pixel_centers exclude each other".into());
                }
            }
            Op::Softmax(a) if !(a.beta.is_finite() && a.beta > 0.0) => {
                return Err(format!("beta {} must be finite and > 0", a.beta));
            }
            Op::Mean(a) if a.axes.is_empty() => {
                return Err("axes must name at least one axis".into());
            }
            Op::Slice(a)
                if a.begin.len() != a.size.len()
                    || !(a.stride.is_empty() || a.stride.len() == a.begin.len())
                    || a.stride.contains(&0) =>
            {
                return Err(format!(
                    "begin {:?}, size {:?} and stride {:?} must have one entry per axis, strides ≥ 1",
                    a.begin, a.size, a.stride
                ));
            }
            Op::Reshape(a)
                if a.shape.iter().filter(|&&d| d == -1).count() > 1
                    || a.shape.iter().any(|&d| d < -1) =>
            {
                return Err(format!(
                    "shape {:?} may hold one −1 and no other negative value",
                    a.shape
                ));
            }
            _ => {}
        }
        Ok(())
    }

    /// The fused activation, if the op has one.
    pub fn activation(&self) -> Activation {
        match self {
            Op::Conv2d(a) => a.activation,
            Op::DepthwiseConv2d(a) => a.activation,
            Op::FullyConnected(a) | Op::Mul(a) => a.activation,
            Op::Add(a) => a.activation,
            Op::MaxPool2d(a) | Op::AvgPool2d(a) => a.activation,
            _ => Activation::None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_round_trips() {
        for name in OP_NAMES {
            let attrs = match *name {
                "concat" => serde_json::json!({"axis": 3}),
                "pad" => serde_json::json!({"pads": [[0, 0]]}),
                "max_pool2d" | "avg_pool2d" => serde_json::json!({"kernel": [2, 2]}),
                "mean" => serde_json::json!({"axes": [1, 2]}),
                "resize" => serde_json::json!({"size": [4, 4]}),
                "reshape" => serde_json::json!({"shape": [1, -1]}),
                "transpose" => serde_json::json!({"perm": [0, 1]}),
                "slice" => serde_json::json!({"begin": [0, 2], "size": [1, 3], "stride": [1, 2]}),
                _ => Value::Null,
            };
            let op = Op::parse(name, &attrs).unwrap_or_else(|e| panic!("{name}: {e:?}"));
            assert_eq!(op.name(), *name);
            let again = Op::parse(name, &op.attrs_json()).expect("re-parse");
            assert_eq!(again, op);
        }
    }

    #[test]
    fn unknown_attribute_is_refused() {
        let err = Op::parse("conv2d", &serde_json::json!({"strid": [1, 1]})).unwrap_err();
        assert!(matches!(err, OpParseError::Attrs(m) if m.contains("strid")));
        assert!(matches!(
            Op::parse("lstm", &Value::Null),
            Err(OpParseError::Unknown)
        ));
        assert!(matches!(
            Op::parse("relu", &serde_json::json!({"x": 1})),
            Err(OpParseError::Attrs(_))
        ));
    }
}
