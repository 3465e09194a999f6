//! One TFLite operator → one Outpost node (or a folded constant).

use outpost_hal::DType;
use outpost_models::graph::op::{
    ActAttrs, AddArithmetic, AddAttrs, ConcatAttrs, ConvAttrs, DepthwiseAttrs, MeanAttrs, PadAttrs,
    PoolAttrs, ReshapeAttrs, ResizeAttrs, ResizeMode, Rounding, SliceAttrs, SoftmaxAttrs,
    TransposeAttrs,
};
use outpost_models::graph::{Activation, Op, Padding};
use tract_tflite::tflite as fb;

use crate::error::{ConvertError, Result};
use crate::ir::{ConstData, Graph, Node};

struct Ctx<'g, 'a> {
    g: &'g mut Graph,
    op: &'g fb::Operator<'a>,
    name: String,
    inputs: Vec<Option<usize>>,
    output: usize,
    op_name: String,
}

impl Ctx<'_, '_> {
    fn err(&self, reason: impl Into<String>) -> ConvertError {
        ConvertError::UnsupportedOp {
            op: self.op_name.clone(),
            node: self.name.clone(),
            reason: reason.into(),
        }
    }

    fn input(&self, i: usize) -> Result<usize> {
        self.inputs
            .get(i)
            .copied()
            .flatten()
            .ok_or_else(|| self.err(format!("input {i} is missing")))
    }

    fn const_i32(&self, i: usize) -> Result<Vec<i32>> {
        match &self.g.tensors[self.input(i)?].data {
            Some(ConstData::I32(v)) => Ok(v.clone()),
            _ => Err(self.err(format!("input {i} must be a constant int32 tensor"))),
        }
    }

    fn out_shape(&self) -> Vec<usize> {
        self.g.tensors[self.output].shape.clone()
    }

    fn act(&self, a: fb::ActivationFunctionType) -> Result<Activation> {
        match a {
            fb::ActivationFunctionType::NONE => Ok(Activation::None),
            fb::ActivationFunctionType::RELU => Ok(Activation::Relu),
            fb::ActivationFunctionType::RELU6 => Ok(Activation::Relu6),
            other => Err(self.err(format!(
                "fused activation {} is not supported",
                other.variant_name().unwrap_or("unknown")
            ))),
        }
    }

    fn padding(&self, p: fb::Padding) -> Padding {
        if p == fb::Padding::VALID {
            Padding::Valid
        } else {
            Padding::Same
        }
    }

    fn options<T>(&self, o: Option<T>) -> Result<T> {
        o.ok_or_else(|| self.err("options are missing"))
    }

    fn node(&mut self, op: Op, inputs: Vec<Option<usize>>) {
        self.g.nodes.push(Node {
            name: self.name.clone(),
            op,
            inputs,
            output: self.output,
        });
    }
}

fn stride(h: i32, w: i32) -> [u32; 2] {
    [h.max(1) as u32, w.max(1) as u32]
}

/// Map operator `k` into `g`.
pub fn map(
    g: &mut Graph,
    k: usize,
    code: fb::BuiltinOperator,
    custom: Option<&str>,
    op: &fb::Operator<'_>,
) -> Result<()> {
    let ins: Vec<i32> = op.inputs().map(|v| v.iter().collect()).unwrap_or_default();
    let outs: Vec<i32> = op.outputs().map(|v| v.iter().collect()).unwrap_or_default();
    let op_name = match custom {
        Some(c) if code == fb::BuiltinOperator::CUSTOM => format!("CUSTOM({c})"),
        _ => code.variant_name().unwrap_or("unknown").to_string(),
    };
    let check = |i: i32| -> Result<Option<usize>> {
        if i < 0 {
            return Ok(None);
        }
        let i = i as usize;
        if i >= g.tensors.len() {
            return Err(ConvertError::CorruptTflite(format!(
                "operator {k} ({op_name}) refers to tensor {i}"
            )));
        }
        Ok(Some(i))
    };
    let inputs = ins.iter().map(|&i| check(i)).collect::<Result<Vec<_>>>()?;
    if code == fb::BuiltinOperator::SPLIT || code == fb::BuiltinOperator::SPLIT_V {
        let outputs = outs
            .iter()
            .map(|&o| check(o)?.ok_or_else(|| ConvertError::CorruptTflite(format!("operator {k}"))))
            .collect::<Result<Vec<_>>>()?;
        return split(g, k, code, &op_name, &inputs, &outputs);
    }
    let output = match outs.as_slice() {
        [o] => check(*o)?.ok_or_else(|| ConvertError::CorruptTflite(format!("operator {k}")))?,
        _ => {
            return Err(ConvertError::UnsupportedOp {
                op: op_name,
                node: format!("#{k}"),
                reason: format!("{} outputs (one is supported)", outs.len()),
            });
        }
    };
    let name = g.tensors[output].name.clone();
    let mut c = Ctx {
        g,
        op,
        name,
        inputs,
        output,
        op_name,
    };
    let x = |c: &Ctx<'_, '_>| c.input(0).map(Some);
    use fb::BuiltinOperator as B;
    match code {
        B::DEQUANTIZE => {
            let i = c.input(0)?;
            let src = c.g.tensors[i].clone();
            match src.data {
                Some(ConstData::F16(v)) => c.g.tensors[c.output].data = Some(ConstData::F16(v)),
                Some(d @ ConstData::I8 { .. }) => {
                    let v = d.to_f32(&src.shape).unwrap_or_default();
                    c.g.tensors[c.output].data = Some(ConstData::F32(v));
                }
                Some(_) => return Err(c.err("constant input of an unsupported type")),
                None => c.node(Op::Dequantize, vec![Some(i)]),
            }
        }
        B::QUANTIZE => {
            let i = x(&c)?;
            c.node(Op::Quantize, vec![i]);
        }
        B::CONV_2D => {
            let o = c.options(c.op.builtin_options_as_conv_2_doptions())?;
            let w = c.input(1)?;
            let ws = c.g.tensors[w].shape.clone();
            let xs = c.g.tensors[c.input(0)?].shape.clone();
            let groups = match (ws.get(3), xs.get(3)) {
                (Some(&wc), Some(&xc)) if wc > 0 && xc % wc == 0 => (xc / wc) as u32,
                _ => return Err(c.err("weight and input channels do not match")),
            };
            let a = ConvAttrs {
                stride: stride(o.stride_h(), o.stride_w()),
                dilation: stride(o.dilation_h_factor(), o.dilation_w_factor()),
                padding: c.padding(o.padding()),
                groups,
                activation: c.act(o.fused_activation_function())?,
                requantization: Default::default(),
            };
            let b = c.inputs.get(2).copied().flatten();
            c.node(Op::Conv2d(a), vec![x(&c)?, Some(w), b]);
        }
        B::DEPTHWISE_CONV_2D => {
            let o = c.options(c.op.builtin_options_as_depthwise_conv_2_doptions())?;
            let xc = c.g.tensors[c.input(0)?].shape.get(3).copied().unwrap_or(0);
            let oc = c.out_shape().get(3).copied().unwrap_or(0);
            if xc == 0 || oc % xc != 0 {
                return Err(c.err("output channels are not a multiple of input channels"));
            }
            // A depthwise convolution already quantized in TFLite keeps LiteRT's arithmetic.
            let int8 = c.g.tensors[c.input(1)?].dtype == DType::I8;
            let a = DepthwiseAttrs {
                stride: stride(o.stride_h(), o.stride_w()),
                dilation: stride(o.dilation_h_factor(), o.dilation_w_factor()),
                padding: c.padding(o.padding()),
                depth_multiplier: (oc / xc) as u32,
                activation: c.act(o.fused_activation_function())?,
                rounding: if int8 {
                    Rounding::Upward
                } else {
                    Rounding::Away
                },
                requantization: Default::default(),
            };
            let (w, b) = (c.input(1)?, c.inputs.get(2).copied().flatten());
            c.node(Op::DepthwiseConv2d(a), vec![x(&c)?, Some(w), b]);
        }
        B::FULLY_CONNECTED => {
            let o = c.options(c.op.builtin_options_as_fully_connected_options())?;
            let a = ActAttrs {
                activation: c.act(o.fused_activation_function())?,
            };
            let (w, b) = (c.input(1)?, c.inputs.get(2).copied().flatten());
            let xi = c.input(0)?;
            let xs = c.g.tensors[xi].shape.clone();
            let inner = c.g.tensors[w].shape.get(1).copied().unwrap_or(0);
            let total: usize = xs.iter().product();
            let xin = if xs.len() != 2 && c.out_shape().len() == 2 && inner > 0 {
                // keep_num_dims = false: TFLite flattens the input to [rows, inner] first.
                let mut t = c.g.tensors[xi].clone();
                t.name = c.g.fresh_name(&format!("{}/flatten", c.name));
                t.shape = vec![total / inner, inner];
                let shape = t.shape.iter().map(|&d| d as i64).collect();
                let flat = c.g.push_tensor(t);
                c.g.nodes.push(Node {
                    name: format!("{}/flatten", c.name),
                    op: Op::Reshape(ReshapeAttrs { shape }),
                    inputs: vec![Some(xi)],
                    output: flat,
                });
                flat
            } else {
                xi
            };
            c.node(Op::FullyConnected(a), vec![Some(xin), Some(w), b]);
        }
        B::ADD | B::MUL => {
            let act = if code == B::ADD {
                c.op.builtin_options_as_add_options()
                    .map(|o| o.fused_activation_function())
            } else {
                c.op.builtin_options_as_mul_options()
                    .map(|o| o.fused_activation_function())
            };
            let activation = c.act(act.unwrap_or(fb::ActivationFunctionType::NONE))?;
            let ins = vec![Some(c.input(0)?), Some(c.input(1)?)];
            c.node(
                if code == B::ADD {
                    // An already-int8 add keeps TFLite's arithmetic (bit-exact with LiteRT);
                    // the quantizer chooses for the float ones.
                    Op::Add(AddAttrs {
                        activation,
                        arithmetic: AddArithmetic::Tflite,
                    })
                } else {
                    Op::Mul(ActAttrs { activation })
                },
                ins,
            );
        }
        B::CONCATENATION => {
            let o = c.options(c.op.builtin_options_as_concatenation_options())?;
            if c.act(o.fused_activation_function())? != Activation::None {
                return Err(c.err("a fused activation on concatenation is not supported"));
            }
            let ins = c.inputs.clone();
            c.node(Op::Concat(ConcatAttrs { axis: o.axis() }), ins);
        }
        B::PAD => {
            let p = c.const_i32(1)?;
            if p.iter().any(|&v| v < 0) {
                return Err(c.err("negative padding"));
            }
            let pads = p.chunks(2).map(|w| [w[0] as u32, w[1] as u32]).collect();
            c.node(Op::Pad(PadAttrs { pads }), vec![x(&c)?]);
        }
        B::RESHAPE | B::SQUEEZE | B::EXPAND_DIMS => {
            let shape = c.out_shape().iter().map(|&d| d as i64).collect();
            c.node(Op::Reshape(ReshapeAttrs { shape }), vec![x(&c)?]);
        }
        B::MAX_POOL_2D | B::AVERAGE_POOL_2D => {
            let o = c.options(c.op.builtin_options_as_pool_2_doptions())?;
            let a = PoolAttrs {
                kernel: stride(o.filter_height(), o.filter_width()),
                stride: Some(stride(o.stride_h(), o.stride_w())),
                padding: c.padding(o.padding()),
                activation: c.act(o.fused_activation_function())?,
            };
            let op = if code == B::MAX_POOL_2D {
                Op::MaxPool2d(a)
            } else {
                Op::AvgPool2d(a)
            };
            c.node(op, vec![x(&c)?]);
        }
        B::RESIZE_BILINEAR | B::RESIZE_NEAREST_NEIGHBOR => {
            let s = c.out_shape();
            if s.len() != 4 {
                return Err(c.err("resize needs a rank-4 output"));
            }
            let (align_corners, half_pixel_centers) = if code == B::RESIZE_BILINEAR {
                let o = c.op.builtin_options_as_resize_bilinear_options();
                (
                    o.map(|o| o.align_corners()).unwrap_or(false),
                    o.map(|o| o.half_pixel_centers()).unwrap_or(false),
                )
            } else {
                let o = c.op.builtin_options_as_resize_nearest_neighbor_options();
                (
                    o.map(|o| o.align_corners()).unwrap_or(false),
                    o.map(|o| o.half_pixel_centers()).unwrap_or(false),
                )
            };
            let a = ResizeAttrs {
                size: [s[1] as u32, s[2] as u32],
                mode: if code == B::RESIZE_BILINEAR {
                    ResizeMode::Bilinear
                } else {
                    ResizeMode::Nearest
                },
                align_corners,
                half_pixel_centers,
            };
            c.node(Op::Resize(a), vec![x(&c)?]);
        }
        B::MEAN => {
            let axes = c.const_i32(1)?;
            let keep_dims =
                c.op.builtin_options_as_reducer_options()
                    .map(|o| o.keep_dims())
                    .unwrap_or(false);
            c.node(Op::Mean(MeanAttrs { axes, keep_dims }), vec![x(&c)?]);
        }
        B::TRANSPOSE => {
            let perm = c.const_i32(1)?;
            if perm.iter().any(|&p| p < 0) {
                return Err(c.err("negative permutation entry"));
            }
            let perm = perm.into_iter().map(|p| p as u32).collect();
            c.node(Op::Transpose(TransposeAttrs { perm }), vec![x(&c)?]);
        }
        B::SOFTMAX => {
            let beta =
                c.op.builtin_options_as_softmax_options()
                    .map(|o| o.beta())
                    .unwrap_or(1.0);
            c.node(Op::Softmax(SoftmaxAttrs { beta }), vec![x(&c)?]);
        }
        B::STRIDED_SLICE => {
            let o = c.options(c.op.builtin_options_as_strided_slice_options())?;
            if o.ellipsis_mask() != 0 || o.new_axis_mask() != 0 {
                return Err(c.err("ellipsis and new-axis masks are not supported"));
            }
            let xi = c.input(0)?;
            let xs = c.g.tensors[xi].shape.clone();
            let (begin, end, strides) = (c.const_i32(1)?, c.const_i32(2)?, c.const_i32(3)?);
            if begin.len() != xs.len() || end.len() != xs.len() || strides.len() != xs.len() {
                return Err(c.err("begin, end and strides must have one entry per axis"));
            }
            let mut a = SliceAttrs {
                begin: vec![],
                size: vec![],
                stride: vec![],
            };
            for (axis, &dim) in xs.iter().enumerate() {
                let (s, dim) = (strides[axis], dim as i64);
                if s <= 0 {
                    return Err(c.err(format!("stride {s} on axis {axis} (only positive)")));
                }
                let norm = |v: i32| {
                    let v = v as i64;
                    (if v < 0 { v + dim } else { v }).clamp(0, dim)
                };
                let b = if o.begin_mask() & (1 << axis) != 0 {
                    0
                } else {
                    norm(begin[axis])
                };
                let shrink = o.shrink_axis_mask() & (1 << axis) != 0;
                let e = if shrink {
                    b + 1
                } else if o.end_mask() & (1 << axis) != 0 {
                    dim
                } else {
                    norm(end[axis])
                };
                let n = if e > b {
                    (e - b + s as i64 - 1) / s as i64
                } else {
                    0
                };
                if n == 0 {
                    return Err(c.err(format!("empty slice on axis {axis}")));
                }
                a.begin.push(b as u32);
                a.size.push(n as u32);
                a.stride.push(s as u32);
            }
            if a.stride.iter().all(|&s| s == 1) {
                a.stride.clear();
            }
            let sliced: Vec<usize> = a.size.iter().map(|&d| d as usize).collect();
            let out_shape = c.out_shape();
            if sliced.iter().product::<usize>() != out_shape.iter().product::<usize>() {
                return Err(c.err(format!(
                    "slice {sliced:?} does not fill output {out_shape:?}"
                )));
            }
            if sliced == out_shape {
                c.node(Op::Slice(a), vec![Some(xi)]);
            } else {
                // Shrunk axes: slice into a fresh tensor, then reshape into the output.
                let mut t = c.g.tensors[c.output].clone();
                t.name = c.g.fresh_name(&format!("{}/slice", c.name));
                t.shape = sliced;
                let mid = c.g.push_tensor(t);
                let shape = out_shape.iter().map(|&d| d as i64).collect();
                c.g.nodes.push(Node {
                    name: format!("{}/slice", c.name),
                    op: Op::Slice(a),
                    inputs: vec![Some(xi)],
                    output: mid,
                });
                c.node(Op::Reshape(ReshapeAttrs { shape }), vec![Some(mid)]);
            }
        }
        B::RELU => c.node(Op::Relu, vec![x(&c)?]),
        B::RELU6 => c.node(Op::Relu6, vec![x(&c)?]),
        B::LOGISTIC => c.node(Op::Logistic, vec![x(&c)?]),
        B::TANH => c.node(Op::Tanh, vec![x(&c)?]),
        B::HARD_SWISH => c.node(Op::HardSwish, vec![x(&c)?]),
        _ => return Err(c.err("no Outpost op maps to it")),
    }
    Ok(())
}

/// `SPLIT` (`axis`, `x`) and `SPLIT_V` (`x`, `size_splits`, `axis`): one `slice` node per output.
fn split(
    g: &mut Graph,
    k: usize,
    code: fb::BuiltinOperator,
    op_name: &str,
    inputs: &[Option<usize>],
    outputs: &[usize],
) -> Result<()> {
    let node = outputs
        .first()
        .map(|&o| g.tensors[o].name.clone())
        .unwrap_or_else(|| format!("#{k}"));
    let err = |reason: String| ConvertError::UnsupportedOp {
        op: op_name.to_string(),
        node: node.clone(),
        reason,
    };
    let (x, axis_t) = if code == fb::BuiltinOperator::SPLIT {
        (inputs.get(1), inputs.first())
    } else {
        (inputs.first(), inputs.get(2))
    };
    let x = x
        .copied()
        .flatten()
        .ok_or_else(|| err("input is missing".into()))?;
    let axis = match axis_t.copied().flatten().map(|t| &g.tensors[t].data) {
        Some(Some(ConstData::I32(v))) if v.len() == 1 => v[0],
        _ => return Err(err("axis must be a constant int32 scalar".into())),
    };
    let shape = g.tensors[x].shape.clone();
    let rank = shape.len() as i32;
    if !(-rank..rank).contains(&axis) {
        return Err(err(format!("axis {axis} out of range for {shape:?}")));
    }
    let axis = if axis < 0 { axis + rank } else { axis } as usize;
    let mut at = 0usize;
    for &o in outputs {
        let os = g.tensors[o].shape.clone();
        if os.len() != shape.len()
            || os
                .iter()
                .zip(&shape)
                .enumerate()
                .any(|(i, (a, b))| i != axis && a != b)
        {
            return Err(err(format!("output {os:?} does not fit input {shape:?}")));
        }
        let mut begin = vec![0u32; shape.len()];
        begin[axis] = at as u32;
        at += os[axis];
        g.nodes.push(Node {
            name: g.tensors[o].name.clone(),
            op: Op::Slice(SliceAttrs {
                begin,
                size: os.iter().map(|&d| d as u32).collect(),
                stride: vec![],
            }),
            inputs: vec![Some(x)],
            output: o,
        });
    }
    if at != shape[axis] {
        return Err(err(format!(
            "outputs cover {at} of {} along axis {axis}",
            shape[axis]
        )));
    }
    Ok(())
}
