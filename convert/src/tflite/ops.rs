//! One TFLite operator → one Outpost node (or a folded constant).

use outpost_models::graph::op::{
    ActAttrs, ConcatAttrs, ConvAttrs, DepthwiseAttrs, MeanAttrs, PadAttrs, PoolAttrs, ReshapeAttrs,
    ResizeAttrs, ResizeMode, SoftmaxAttrs, TransposeAttrs,
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
            let a = DepthwiseAttrs {
                stride: stride(o.stride_h(), o.stride_w()),
                dilation: stride(o.dilation_h_factor(), o.dilation_w_factor()),
                padding: c.padding(o.padding()),
                depth_multiplier: (oc / xc) as u32,
                activation: c.act(o.fused_activation_function())?,
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
            c.node(Op::FullyConnected(a), vec![x(&c)?, Some(w), b]);
        }
        B::ADD | B::MUL => {
            let act = if code == B::ADD {
                c.op.builtin_options_as_add_options()
                    .map(|o| o.fused_activation_function())
            } else {
                c.op.builtin_options_as_mul_options()
                    .map(|o| o.fused_activation_function())
            };
            let a = ActAttrs {
                activation: c.act(act.unwrap_or(fb::ActivationFunctionType::NONE))?,
            };
            let ins = vec![Some(c.input(0)?), Some(c.input(1)?)];
            c.node(
                if code == B::ADD {
                    Op::Add(a)
                } else {
                    Op::Mul(a)
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
        B::RELU => c.node(Op::Relu, vec![x(&c)?]),
        B::RELU6 => c.node(Op::Relu6, vec![x(&c)?]),
        B::LOGISTIC => c.node(Op::Logistic, vec![x(&c)?]),
        B::TANH => c.node(Op::Tanh, vec![x(&c)?]),
        B::HARD_SWISH => c.node(Op::HardSwish, vec![x(&c)?]),
        _ => return Err(c.err("no Outpost op maps to it")),
    }
    Ok(())
}
