//! Lowering one node onto a prepared kernel.

use outpost_hal::DType;
use outpost_kernels::{
    Activation as KAct, Add16Quant, AddQuant, Conv2dParams, DepthwiseParams, FcParams, Lut,
    MulQuant, PackedConv, PackedConvF32, PackedDepthwise, PackedDepthwiseF32, PackedFc,
    PackedFcF32, PoolParams, ResizeOptions, Tier, quantize_multiplier,
};
use outpost_models::Model;
use outpost_models::graph::op::{
    Activation, AddArithmetic, PoolAttrs, Requantization, ResizeMode, Rounding,
};
use outpost_models::graph::shape::{conv_out, macs as op_macs};
use outpost_models::graph::{Node, Op, Padding, QuantParams, TensorDecl};

use super::kernel::{Elem, Kernel, SLICE_RANK};
use crate::error::{Result, RuntimeError};

struct Ctx<'a> {
    model: &'a Model,
    node: &'a Node,
}

impl<'a> Ctx<'a> {
    fn unsupported(&self, reason: impl Into<String>) -> RuntimeError {
        RuntimeError::Unsupported {
            node: self.node.name.clone(),
            op: self.node.op.name(),
            reason: reason.into(),
        }
    }

    fn act(&self, i: usize) -> &'a TensorDecl {
        self.model
            .meta()
            .graph
            .tensor(&self.node.inputs[i])
            .expect("validated activation")
    }

    fn out(&self) -> &'a TensorDecl {
        self.model
            .meta()
            .graph
            .tensor(&self.node.outputs[0])
            .expect("validated output")
    }

    fn q(t: &TensorDecl) -> QuantParams {
        t.quant.unwrap_or(QuantParams {
            scale: 1.0,
            zero_point: 0,
        })
    }

    fn stored(&self, i: usize) -> Option<outpost_models::TensorRef<'a>> {
        self.node
            .inputs
            .get(i)
            .filter(|t| !t.is_empty())
            .and_then(|t| self.model.tensor(t))
    }

    fn weight_i8(&self, i: usize) -> Result<(&'a [i8], &'a [f32])> {
        let t = self
            .stored(i)
            .ok_or_else(|| self.unsupported("weights must be stored tensors"))?;
        let q = self
            .model
            .meta()
            .graph
            .weight_quant(t.name())
            .expect("validated weight quant");
        if q.zero_point.is_some() {
            let zps = self
                .model
                .tensor(q.zero_point.as_deref().unwrap_or_default())
                .and_then(|z| z.as_i32().ok());
            if zps.is_some_and(|z| z.iter().any(|&v| v != 0)) {
                return Err(self.unsupported("int8 weights must be symmetric (zero point 0)"));
            }
        }
        let scales = self
            .model
            .tensor(&q.scale)
            .expect("validated scale")
            .as_f32()?;
        Ok((t.as_i8()?, scales))
    }

    fn bias_i32(&self, i: usize) -> Result<Option<&'a [i32]>> {
        Ok(match self.stored(i) {
            Some(t) => Some(t.as_i32()?),
            None => None,
        })
    }

    fn floats(&self, i: usize) -> Result<Option<Vec<f32>>> {
        Ok(match self.stored(i) {
            Some(t) if t.dtype() == DType::F16 => {
                Some(t.as_f16()?.iter().map(|h| h.to_f32()).collect())
            }
            Some(t) => Some(t.as_f32()?.to_vec()),
            None => None,
        })
    }
}

fn kact(a: Activation) -> KAct {
    match a {
        Activation::None => KAct::None,
        Activation::Relu => KAct::Relu,
        Activation::Relu6 => KAct::Relu6,
    }
}

fn pads(
    padding: Padding,
    in_hw: [usize; 2],
    k: [usize; 2],
    stride: [u32; 2],
    dil: [u32; 2],
) -> [usize; 2] {
    let mut out = [0; 2];
    for a in 0..2 {
        out[a] = conv_out(
            in_hw[a],
            k[a],
            stride[a] as usize,
            dil[a] as usize,
            padding,
            a,
        )
        .map(|(_, p)| p)
        .unwrap_or(0);
    }
    out
}

fn pool_params(x: &TensorDecl, out: &TensorDecl, a: &PoolAttrs, range: (i32, i32)) -> PoolParams {
    let k = [a.kernel[0] as usize, a.kernel[1] as usize];
    let s = a.stride();
    let [pt, pl] = pads(a.padding, [x.shape[1], x.shape[2]], k, s, [1, 1]);
    PoolParams {
        batch: x.shape[0],
        in_h: x.shape[1],
        in_w: x.shape[2],
        channels: x.shape[3],
        out_h: out.shape[1],
        out_w: out.shape[2],
        k_h: k[0],
        k_w: k[1],
        stride_h: s[0] as usize,
        stride_w: s[1] as usize,
        pad_top: pt,
        pad_left: pl,
        act_min: range.0,
        act_max: range.1,
    }
}

/// Multiply-accumulates of a node.
pub fn macs(model: &Model, node: &Node) -> u64 {
    let g = &model.meta().graph;
    let shapes: Vec<Option<Vec<usize>>> = node
        .inputs
        .iter()
        .map(|t| {
            g.tensor(t)
                .map(|d| d.shape.clone())
                .or_else(|| model.tensor(t).map(|r| r.shape().to_vec()))
        })
        .collect();
    let refs: Vec<Option<&[usize]>> = shapes.iter().map(|s| s.as_deref()).collect();
    op_macs(
        &node.op,
        &refs,
        &g.tensor(&node.outputs[0]).expect("validated").shape,
    )
}

/// Prepare the kernel for `node`.
pub fn lower(model: &Model, node: &Node, tier: Tier) -> Result<Kernel> {
    let c = Ctx { model, node };
    let out = c.out();
    let x = c.act(0);
    let int8 = x.dtype == DType::I8 && out.dtype == DType::I8;
    let float = x.dtype == DType::F32 && out.dtype == DType::F32;
    let (xq, oq) = (Ctx::q(x), Ctx::q(out));
    let range = |a: Activation| kact(a).range_i8(oq.scale, oq.zero_point);
    match &node.op {
        Op::Conv2d(a) => {
            let w = model
                .tensor(&node.inputs[1])
                .expect("validated")
                .shape()
                .to_vec();
            let [pt, pl] = pads(
                a.padding,
                [x.shape[1], x.shape[2]],
                [w[1], w[2]],
                a.stride,
                a.dilation,
            );
            let (act_min, act_max) = if int8 {
                range(a.activation)
            } else {
                (-128, 127)
            };
            let p = Conv2dParams {
                batch: x.shape[0],
                in_h: x.shape[1],
                in_w: x.shape[2],
                in_c: x.shape[3],
                out_h: out.shape[1],
                out_w: out.shape[2],
                out_c: out.shape[3],
                k_h: w[1],
                k_w: w[2],
                stride_h: a.stride[0] as usize,
                stride_w: a.stride[1] as usize,
                dilation_h: a.dilation[0] as usize,
                dilation_w: a.dilation[1] as usize,
                pad_top: pt,
                pad_left: pl,
                groups: a.groups as usize,
                input_zp: xq.zero_point,
                output_zp: oq.zero_point,
                act_min,
                act_max,
                requant_f32: a.requantization == Requantization::F32,
            };
            if int8 {
                let (wv, ws) = c.weight_i8(1)?;
                Ok(Kernel::ConvI8(PackedConv::new(
                    tier,
                    &p,
                    wv,
                    c.bias_i32(2)?,
                    xq.scale,
                    ws,
                    oq.scale,
                )))
            } else if float {
                let wv = c.floats(1)?.expect("weight");
                Ok(Kernel::ConvF32(PackedConvF32::new(
                    &p,
                    &wv,
                    c.floats(2)?.as_deref(),
                    kact(a.activation),
                )))
            } else {
                Err(c.unsupported("mixed int8/float convolution"))
            }
        }
        Op::DepthwiseConv2d(a) => {
            let w = model
                .tensor(&node.inputs[1])
                .expect("validated")
                .shape()
                .to_vec();
            let [pt, pl] = pads(
                a.padding,
                [x.shape[1], x.shape[2]],
                [w[1], w[2]],
                a.stride,
                a.dilation,
            );
            let (act_min, act_max) = if int8 {
                range(a.activation)
            } else {
                (-128, 127)
            };
            let p = DepthwiseParams {
                batch: x.shape[0],
                in_h: x.shape[1],
                in_w: x.shape[2],
                in_c: x.shape[3],
                out_h: out.shape[1],
                out_w: out.shape[2],
                multiplier: a.depth_multiplier as usize,
                k_h: w[1],
                k_w: w[2],
                stride_h: a.stride[0] as usize,
                stride_w: a.stride[1] as usize,
                dilation_h: a.dilation[0] as usize,
                dilation_w: a.dilation[1] as usize,
                pad_top: pt,
                pad_left: pl,
                input_zp: xq.zero_point,
                output_zp: oq.zero_point,
                act_min,
                act_max,
                requant_f32: a.requantization == Requantization::F32,
            };
            if a.requantization == Requantization::F32 && a.rounding == Rounding::Upward {
                return Err(c.unsupported(
                    "\"rounding\": \"upward\" applies to TFLite's fixed point requantization, \
                     not to \"requantization\": \"f32\" (which rounds ties to even); remove one",
                ));
            }
            if int8 {
                let (wv, ws) = c.weight_i8(1)?;
                Ok(Kernel::DepthwiseI8(
                    PackedDepthwise::new(tier, &p, wv, c.bias_i32(2)?, xq.scale, ws, oq.scale)
                        .ties_upward(a.rounding == Rounding::Upward),
                ))
            } else if float {
                let wv = c.floats(1)?.expect("weight");
                Ok(Kernel::DepthwiseF32(PackedDepthwiseF32::new(
                    &p,
                    &wv,
                    c.floats(2)?.as_deref(),
                    kact(a.activation),
                )))
            } else {
                Err(c.unsupported("mixed int8/float depthwise convolution"))
            }
        }
        Op::FullyConnected(a) => {
            let w = model
                .tensor(&node.inputs[1])
                .expect("validated")
                .shape()
                .to_vec();
            let batch = x.shape.iter().product::<usize>() / w[1];
            let (act_min, act_max) = if int8 {
                range(a.activation)
            } else {
                (-128, 127)
            };
            let p = FcParams {
                batch,
                in_features: w[1],
                out_features: w[0],
                input_zp: xq.zero_point,
                output_zp: oq.zero_point,
                act_min,
                act_max,
            };
            if int8 {
                let (wv, ws) = c.weight_i8(1)?;
                Ok(Kernel::FcI8(PackedFc::new(
                    tier,
                    &p,
                    wv,
                    c.bias_i32(2)?,
                    xq.scale,
                    ws,
                    oq.scale,
                )))
            } else if float {
                let wv = c.floats(1)?.expect("weight");
                Ok(Kernel::FcF32(PackedFcF32::new(
                    &p,
                    &wv,
                    c.floats(2)?.as_deref(),
                    kact(a.activation),
                )))
            } else {
                Err(c.unsupported("mixed int8/float fully connected"))
            }
        }
        Op::Add(_) | Op::Mul(_) => {
            let activation = node.op.activation();
            // `Some` for an add: how its int8 arithmetic is done.
            let arithmetic = match &node.op {
                Op::Add(a) => Some(a.arithmetic),
                _ => None,
            };
            let y = model
                .meta()
                .graph
                .tensor(&node.inputs[1])
                .ok_or_else(|| c.unsupported("second operand must be an activation"))?;
            if y.shape != x.shape {
                return Err(c.unsupported(format!(
                    "broadcasting {:?} to {:?} is not implemented",
                    y.shape, x.shape
                )));
            }
            let yq = Ctx::q(y);
            let is_add = arithmetic.is_some();
            if int8 && y.dtype == DType::I8 {
                let (lo, hi) = range(activation);
                Ok(if arithmetic == Some(AddArithmetic::Int16) {
                    Kernel::Add16I8(
                        Add16Quant::new(
                            xq.scale,
                            xq.zero_point,
                            yq.scale,
                            yq.zero_point,
                            oq.scale,
                            oq.zero_point,
                            lo,
                            hi,
                        )
                        .ok_or_else(|| {
                            c.unsupported(format!(
                                "\"arithmetic\": \"int16\" needs input/output scale ratios \
                                 below 128 and int8 zero points; this add has {} / {} and {} / {} \
                                 (remove the attribute to use TFLite's arithmetic)",
                                xq.scale, oq.scale, yq.scale, oq.scale
                            ))
                        })?,
                    )
                } else if is_add {
                    Kernel::AddI8(AddQuant::new(
                        xq.scale,
                        xq.zero_point,
                        yq.scale,
                        yq.zero_point,
                        oq.scale,
                        oq.zero_point,
                        lo,
                        hi,
                    ))
                } else {
                    Kernel::MulI8(MulQuant::new(
                        xq.scale,
                        xq.zero_point,
                        yq.scale,
                        yq.zero_point,
                        oq.scale,
                        oq.zero_point,
                        lo,
                        hi,
                    ))
                })
            } else if float && y.dtype == DType::F32 {
                let r = kact(activation).range_f32();
                Ok(if is_add {
                    Kernel::AddF32(r)
                } else {
                    Kernel::MulF32(r)
                })
            } else {
                Err(c.unsupported("operands must both be int8 or both f32"))
            }
        }
        Op::Mean(m) => {
            let spatial = {
                let mut axes: Vec<i32> = m
                    .axes
                    .iter()
                    .map(|&a| if a < 0 { a + x.shape.len() as i32 } else { a })
                    .collect();
                axes.sort_unstable();
                axes == [1, 2] && x.shape.len() == 4
            };
            if !spatial {
                return Err(c.unsupported(
                    "only the mean over the spatial axes [1, 2] of NHWC is implemented",
                ));
            }
            let (batch, pixels, channels) = (x.shape[0], x.shape[1] * x.shape[2], x.shape[3]);
            if int8 {
                let requant =
                    quantize_multiplier(xq.scale as f64 / (oq.scale as f64 * pixels as f64));
                Ok(Kernel::MeanI8 {
                    batch,
                    pixels,
                    channels,
                    in_zp: xq.zero_point,
                    requant,
                    out_zp: oq.zero_point,
                })
            } else {
                Ok(Kernel::MeanF32 {
                    batch,
                    pixels,
                    channels,
                })
            }
        }
        Op::MaxPool2d(a) | Op::AvgPool2d(a) => {
            if int8 && (xq != oq) {
                return Err(
                    c.unsupported("int8 pooling needs the same input and output quantization")
                );
            }
            let r = if int8 {
                range(a.activation)
            } else {
                (-128, 127)
            };
            let p = pool_params(x, out, a, r);
            let max = matches!(node.op, Op::MaxPool2d(_));
            Ok(match (int8, max) {
                (true, true) => Kernel::MaxPoolI8(p),
                (true, false) => Kernel::AvgPoolI8(p),
                (false, true) => Kernel::MaxPoolF32(p),
                (false, false) => Kernel::AvgPoolF32(p),
            })
        }
        Op::Relu | Op::Relu6 | Op::Logistic | Op::Tanh | Op::HardSwish => {
            let f: fn(f32) -> f32 = match node.op {
                Op::Relu => |v| v.max(0.0),
                Op::Relu6 => |v| v.clamp(0.0, 6.0),
                Op::Logistic => outpost_kernels::logistic,
                Op::Tanh => f32::tanh,
                _ => outpost_kernels::hardswish,
            };
            if int8 {
                Ok(Kernel::LutI8(Box::new(Lut::new(
                    xq.scale,
                    xq.zero_point,
                    oq.scale,
                    oq.zero_point,
                    f,
                ))))
            } else {
                Ok(Kernel::MapF32(f))
            }
        }
        Op::Softmax(s) => {
            let depth = *x.shape.last().unwrap_or(&1);
            if int8 {
                Ok(Kernel::SoftmaxI8 {
                    depth,
                    beta: s.beta,
                    in_scale: xq.scale,
                    out_scale: oq.scale,
                    out_zp: oq.zero_point,
                })
            } else {
                Ok(Kernel::SoftmaxF32 {
                    depth,
                    beta: s.beta,
                })
            }
        }
        Op::Quantize if x.dtype == DType::I8 && out.dtype.is_quantized_int() => {
            Ok(Kernel::Requantize {
                in_zp: xq.zero_point,
                requant: quantize_multiplier(xq.scale as f64 / oq.scale as f64),
                out_zp: oq.zero_point,
                to_u8: out.dtype == DType::U8,
            })
        }
        Op::Quantize if out.dtype == DType::I8 => Ok(Kernel::Quantize {
            scale: oq.scale,
            zp: oq.zero_point,
        }),
        Op::Dequantize if x.dtype == DType::I8 => Ok(Kernel::Dequantize {
            scale: xq.scale,
            zp: xq.zero_point,
        }),
        Op::Concat(a) => {
            let rank = x.shape.len() as i32;
            let axis = if a.axis < 0 { a.axis + rank } else { a.axis } as usize;
            let outer = x.shape[..axis].iter().product();
            if int8 {
                for i in 0..node.inputs.len() {
                    if Ctx::q(c.act(i)) != oq {
                        return Err(c.unsupported(format!(
                            "int8 concat input `{}` is quantized differently from the output",
                            node.inputs[i]
                        )));
                    }
                }
            }
            Ok(Kernel::Concat {
                outer,
                elem: elem(&c, x.dtype)?,
            })
        }
        Op::Pad(p) => {
            if x.shape.len() != 4 {
                return Err(c.unsupported("pad is implemented for rank-4 tensors"));
            }
            let mut pads = [(0, 0); 4];
            for (d, pr) in p.pads.iter().enumerate() {
                pads[d] = (pr[0] as usize, pr[1] as usize);
            }
            let shape = [x.shape[0], x.shape[1], x.shape[2], x.shape[3]];
            let value = if int8 { xq.zero_point } else { 0 };
            Ok(Kernel::Pad {
                shape,
                pads,
                value,
                elem: elem(&c, x.dtype)?,
            })
        }
        Op::Transpose(t) => {
            if x.shape.len() > 4 {
                return Err(c.unsupported("transpose is implemented up to rank 4"));
            }
            Ok(Kernel::Transpose {
                shape: x.shape.clone(),
                perm: t.perm.iter().map(|&p| p as usize).collect(),
                elem: elem(&c, x.dtype)?,
            })
        }
        Op::Slice(a) => {
            let rank = x.shape.len();
            if rank > SLICE_RANK {
                return Err(c.unsupported(format!("slice is implemented up to rank {SLICE_RANK}")));
            }
            if int8 && xq != oq {
                return Err(
                    c.unsupported("int8 slice needs the same input and output quantization")
                );
            }
            let pad = |v: &dyn Fn(usize) -> usize, fill: usize| {
                let mut o = [fill; SLICE_RANK];
                for i in 0..rank {
                    o[SLICE_RANK - rank + i] = v(i);
                }
                o
            };
            Ok(Kernel::Slice {
                shape: pad(&|i| x.shape[i], 1),
                begin: pad(&|i| a.begin[i] as usize, 0),
                size: pad(&|i| a.size[i] as usize, 1),
                stride: pad(&|i| a.stride_of(i), 1),
                elem: elem(&c, x.dtype)?,
            })
        }
        Op::Resize(r) => {
            if int8 && xq != oq {
                return Err(
                    c.unsupported("int8 resize needs the same input and output quantization")
                );
            }
            Ok(Kernel::Resize {
                shape: [x.shape[0], x.shape[1], x.shape[2], x.shape[3]],
                out: [r.size[0] as usize, r.size[1] as usize],
                bilinear: r.mode == ResizeMode::Bilinear,
                options: ResizeOptions {
                    align_corners: r.align_corners,
                    half_pixel_centers: r.half_pixel_centers,
                },
                elem: elem(&c, x.dtype)?,
            })
        }
        other => Err(c.unsupported(format!(
            "{} with {} → {} is not implemented",
            other.name(),
            x.dtype,
            out.dtype
        ))),
    }
}

fn elem(c: &Ctx<'_>, d: DType) -> Result<Elem> {
    match d {
        DType::I8 => Ok(Elem::I8),
        DType::F32 => Ok(Elem::F32),
        other => Err(c.unsupported(format!("{other} tensors are not implemented"))),
    }
}
