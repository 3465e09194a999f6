//! ONNX nodes → Outpost nodes (NHWC). The supported ops are listed in `docs/models.md`.

use std::collections::HashMap;

use outpost_hal::DType;
use outpost_models::graph::op::{
    AddAttrs, ConcatAttrs, ConvAttrs, DepthwiseAttrs, MeanAttrs, PoolAttrs, ReshapeAttrs, Rounding,
    TransposeAttrs,
};
use outpost_models::graph::{Activation, Op, Padding};
use tract_onnx::pb;

use super::attrs::Attrs;
use super::{Value, nhwc, tensor_data};
use crate::error::{ConvertError, Result};
use crate::ir::{ConstData, Graph, Node, Tensor};

/// A batch norm folded into the convolution before it: `y = x·scale + shift` per channel.
struct Affine {
    scale: Vec<f32>,
    shift: Vec<f32>,
}

struct Cx<'a> {
    g: &'a mut Graph,
    values: &'a mut HashMap<String, Value>,
    node: &'a pb::NodeProto,
    opset: i64,
}

impl Cx<'_> {
    fn name(&self) -> String {
        if self.node.name.is_empty() {
            self.node.output.first().cloned().unwrap_or_default()
        } else {
            self.node.name.clone()
        }
    }

    fn err(&self, reason: impl Into<String>) -> ConvertError {
        ConvertError::UnsupportedOp {
            op: self.node.op_type.clone(),
            node: self.name(),
            reason: reason.into(),
        }
    }

    fn attrs(&self) -> Attrs<'_> {
        Attrs(self.node)
    }

    fn input_name(&self, i: usize) -> Option<&str> {
        self.node
            .input
            .get(i)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }

    fn value(&self, i: usize) -> Result<&Value> {
        let name = self
            .input_name(i)
            .ok_or_else(|| self.err(format!("input {i} is missing")))?;
        self.values
            .get(name)
            .ok_or_else(|| self.err(format!("input {name} is not produced before this node")))
    }

    /// Activation input `i`: its tensor and ONNX dims.
    fn act(&self, i: usize) -> Result<(usize, Vec<usize>)> {
        match self.value(i)? {
            Value::Act { tensor, dims } => Ok((*tensor, dims.clone())),
            Value::Const { .. } => Err(self.err(format!(
                "input {i} is a constant; constant folding of this op is not supported"
            ))),
        }
    }

    /// Constant float input `i` (f16 widened), or `None` when absent.
    fn const_f32(&self, i: usize) -> Result<Option<(Vec<usize>, Vec<f32>)>> {
        if self.input_name(i).is_none() {
            return Ok(None);
        }
        match self.value(i)? {
            Value::Const { dims, data } => data
                .to_f32(dims)
                .filter(|_| !matches!(data, ConstData::I8 { .. }))
                .map(|v| Some((dims.clone(), v)))
                .ok_or_else(|| self.err(format!("input {i} must be a float constant"))),
            Value::Act { .. } => Err(self.err(format!("input {i} must be a constant"))),
        }
    }

    fn output_name(&self) -> Result<&str> {
        self.node
            .output
            .first()
            .map(String::as_str)
            .ok_or_else(|| self.err("no output"))
    }

    /// A new float tensor named after `base`: a constant with `data`, else an activation.
    fn push(&mut self, base: &str, shape: Vec<usize>, data: Option<Vec<f32>>) -> usize {
        let name = self.g.fresh_name(base);
        self.g.push_tensor(Tensor {
            name,
            shape,
            dtype: DType::F32,
            quant: None,
            data: data.map(ConstData::F32),
        })
    }

    fn push_const(&mut self, base: &str, shape: Vec<usize>, data: Vec<f32>) -> usize {
        self.push(base, shape, Some(data))
    }

    /// A new float activation of (Outpost) shape `shape`.
    fn push_act(&mut self, base: &str, shape: Vec<usize>) -> usize {
        self.push(base, shape, None)
    }

    fn emit(&mut self, name: String, op: Op, inputs: Vec<Option<usize>>, output: usize) {
        self.g.nodes.push(Node {
            name,
            op,
            inputs,
            output,
        });
    }

    /// Emit `op` writing the ONNX value `out` with dims `dims`.
    fn emit_value(&mut self, out: &str, op: Op, inputs: Vec<Option<usize>>, dims: Vec<usize>) {
        let tensor = self.push_act(out, nhwc(&dims));
        let name = self.name();
        self.emit(name, op, inputs, tensor);
        self.values
            .insert(out.to_string(), Value::Act { tensor, dims });
    }

    fn ints2(&self, name: &str, default: usize) -> Result<[usize; 2]> {
        match self.attrs().ints(name) {
            None => Ok([default; 2]),
            Some([a, b]) if (1..=MAX_WINDOW).contains(a) && (1..=MAX_WINDOW).contains(b) => {
                Ok([*a as usize, *b as usize])
            }
            Some(v) => Err(self.err(format!("{name} {v:?}: only 2-D values ≥ 1 are supported"))),
        }
    }

    /// `[top, left, bottom, right]` padding from `pads` / `auto_pad`.
    fn pads(
        &self,
        hw: [usize; 2],
        k: [usize; 2],
        s: [usize; 2],
        d: [usize; 2],
    ) -> Result<[usize; 4]> {
        let auto = self.attrs().string("auto_pad").unwrap_or_default();
        match auto.as_str() {
            "" | "NOTSET" => match self.attrs().ints("pads") {
                None => Ok([0; 4]),
                Some(p) if p.len() == 4 && p.iter().all(|&v| (0..=MAX_WINDOW).contains(&v)) => {
                    Ok([p[0] as usize, p[1] as usize, p[2] as usize, p[3] as usize])
                }
                Some(p) => Err(self.err(format!("pads {p:?}: only 2-D padding is supported"))),
            },
            "VALID" => Ok([0; 4]),
            "SAME_UPPER" | "SAME_LOWER" => {
                let mut out = [0; 4];
                for a in 0..2 {
                    let o = hw[a].div_ceil(s[a]);
                    let total = ((o - 1) * s[a] + d[a] * (k[a] - 1) + 1).saturating_sub(hw[a]);
                    let small = total / 2;
                    let (begin, end) = if auto == "SAME_UPPER" {
                        (small, total - small)
                    } else {
                        (total - small, small)
                    };
                    out[a] = begin;
                    out[a + 2] = end;
                }
                Ok(out)
            }
            other => Err(self.err(format!("auto_pad {other} is not supported"))),
        }
    }

    /// The output size of a window op along both axes.
    fn window_out(
        &self,
        hw: [usize; 2],
        k: [usize; 2],
        s: [usize; 2],
        d: [usize; 2],
        p: [usize; 4],
    ) -> Result<[usize; 2]> {
        let mut out = [0; 2];
        for a in 0..2 {
            let span = d[a] * (k[a] - 1) + 1;
            let padded = hw[a] + p[a] + p[a + 2];
            if padded < span {
                return Err(self.err(format!(
                    "window {span} is larger than the padded input {padded}"
                )));
            }
            out[a] = (padded - span) / s[a] + 1;
        }
        Ok(out)
    }
}

/// Largest stride, dilation, window or padding accepted (anything larger is a corrupt model).
const MAX_WINDOW: i64 = 1 << 16;

fn padding(p: [usize; 4]) -> Padding {
    if p == [0; 4] {
        Padding::Valid
    } else {
        Padding::Explicit(p.map(|v| v as u32))
    }
}

fn u2(v: [usize; 2]) -> [u32; 2] {
    v.map(|x| x as u32)
}

/// Map every node, in order.
pub(super) fn map_all(
    g: &mut Graph,
    values: &mut HashMap<String, Value>,
    nodes: &[pb::NodeProto],
    outputs: &[String],
    opset: i64,
) -> Result<()> {
    let mut uses: HashMap<&str, usize> = HashMap::new();
    for n in nodes {
        for i in &n.input {
            *uses.entry(i.as_str()).or_default() += 1;
        }
    }
    for o in outputs {
        *uses.entry(o.as_str()).or_default() += 1;
    }
    // The node `k` hands its only output to, when that node is of type `op` and is its only
    // reader.
    let follower = |k: usize, op: &str| -> Option<usize> {
        let out = nodes[k].output.first()?;
        if uses.get(out.as_str()) != Some(&1) {
            return None;
        }
        let j = k + 1 + nodes[k + 1..].iter().position(|n| n.input.contains(out))?;
        (nodes[j].op_type == op && nodes[j].input.first() == Some(out)).then_some(j)
    };
    let mut skip = vec![false; nodes.len()];
    for (k, node) in nodes.iter().enumerate() {
        if skip[k] {
            continue;
        }
        let mut cx = Cx {
            g,
            values,
            node,
            opset,
        };
        match node.op_type.as_str() {
            "Conv" | "ConvTranspose" => {
                // Fold a following batch norm, and for a transposed convolution a relu too
                // (it would otherwise stand after the depth-to-space layout ops).
                let mut last = k;
                let mut bn = None;
                if let Some(j) = follower(k, "BatchNormalization") {
                    bn = Some(batch_norm(&Cx {
                        g: &mut *cx.g,
                        values: &mut *cx.values,
                        node: &nodes[j],
                        opset,
                    })?);
                    skip[j] = true;
                    last = j;
                }
                let mut act = Activation::None;
                if node.op_type == "ConvTranspose"
                    && let Some(j) = follower(last, "Relu")
                {
                    act = Activation::Relu;
                    skip[j] = true;
                    last = j;
                }
                let out = nodes[last].output.first().cloned().unwrap_or_default();
                if node.op_type == "Conv" {
                    conv(&mut cx, bn, &out)?;
                } else {
                    conv_transpose(&mut cx, bn, act, &out)?;
                }
            }
            "BatchNormalization" => {
                return Err(cx.err(
                    "only a batch norm right after a convolution (folded into it) is supported",
                ));
            }
            "Relu" => unary(&mut cx, Op::Relu)?,
            "Sigmoid" => unary(&mut cx, Op::Logistic)?,
            "Tanh" => unary(&mut cx, Op::Tanh)?,
            "HardSwish" => unary(&mut cx, Op::HardSwish)?,
            "Clip" => clip(&mut cx)?,
            "Add" => add(&mut cx)?,
            "Concat" => concat(&mut cx)?,
            "MaxPool" | "AveragePool" => pool(&mut cx)?,
            "GlobalAveragePool" => {
                let (x, d) = cx.act(0)?;
                if d.len() != 4 {
                    return Err(cx.err("only rank-4 inputs are supported"));
                }
                let out = cx.output_name()?.to_string();
                let op = Op::Mean(MeanAttrs {
                    axes: vec![1, 2],
                    keep_dims: true,
                });
                cx.emit_value(&out, op, vec![Some(x)], vec![d[0], d[1], 1, 1]);
            }
            "Identity" | "Dropout" => {
                let v = cx.value(0)?.clone();
                let out = cx.output_name()?.to_string();
                cx.values.insert(out, v);
            }
            "Constant" => {
                let t = cx
                    .attrs()
                    .tensor("value")
                    .ok_or_else(|| cx.err("only a tensor `value` is supported"))?;
                let (dims, data) = tensor_data(t)?;
                let out = cx.output_name()?.to_string();
                cx.values.insert(out, Value::Const { dims, data });
            }
            _ => return Err(cx.err("no Outpost op maps to it")),
        }
    }
    Ok(())
}

/// The per-channel affine of a batch norm: `scale = γ/√(var+ε)`, `shift = β − mean·scale`.
fn batch_norm(cx: &Cx<'_>) -> Result<Affine> {
    let eps = cx.attrs().float("epsilon").unwrap_or(1e-5);
    let mut p = Vec::with_capacity(4);
    for i in 1..5 {
        let (_, v) = cx
            .const_f32(i)?
            .ok_or_else(|| cx.err(format!("input {i} is missing")))?;
        p.push(v);
    }
    let n = p[0].len();
    if p.iter().any(|v| v.len() != n) {
        return Err(cx.err("scale, bias, mean and var differ in length"));
    }
    let scale: Vec<f32> = (0..n).map(|c| p[0][c] / (p[3][c] + eps).sqrt()).collect();
    let shift = (0..n).map(|c| p[1][c] - p[2][c] * scale[c]).collect();
    Ok(Affine { scale, shift })
}

/// `Conv` (2-D): dense, grouped or depthwise, with a folded batch norm.
fn conv(cx: &mut Cx<'_>, bn: Option<Affine>, out: &str) -> Result<()> {
    let (x, xd) = cx.act(0)?;
    let (wd, mut w) = cx
        .const_f32(1)?
        .ok_or_else(|| cx.err("weights are missing"))?;
    let bias = cx.const_f32(2)?.map(|(_, b)| b);
    let group = cx.attrs().int("group").unwrap_or(1).max(1) as usize;
    let ([_, c, h, wi], [o, ig, kh, kw]) = (xd.as_slice(), wd.as_slice()) else {
        return Err(cx.err("only 2-D convolutions (rank-4 input and weights) are supported"));
    };
    let (c, o, ig, kh, kw) = (*c, *o, *ig, *kh, *kw);
    if [o, ig, kh, kw].contains(&0) || kh.max(kw) as i64 > MAX_WINDOW {
        return Err(cx.err(format!("weights {wd:?}")));
    }
    if ig * group != c || o % group != 0 {
        return Err(cx.err(format!(
            "weights {wd:?} do not fit {c} input channels in {group} groups"
        )));
    }
    if let Some(k) = cx.attrs().ints("kernel_shape")
        && k != [kh as i64, kw as i64]
    {
        return Err(cx.err(format!(
            "kernel_shape {k:?} differs from the weights {wd:?}"
        )));
    }
    let (k, s, d) = ([kh, kw], cx.ints2("strides", 1)?, cx.ints2("dilations", 1)?);
    let p = cx.pads([*h, *wi], k, s, d)?;
    let [oh, ow] = cx.window_out([*h, *wi], k, s, d, p)?;
    let mut b = bias.unwrap_or_else(|| vec![0.0; o]);
    if b.len() != o {
        return Err(cx.err(format!("bias has {} values for {o} channels", b.len())));
    }
    let per = ig * kh * kw;
    if let Some(a) = &bn {
        if a.scale.len() != o {
            return Err(cx.err("the batch norm after it has another channel count"));
        }
        for (oc, chunk) in w.chunks_mut(per).enumerate() {
            chunk.iter_mut().for_each(|v| *v *= a.scale[oc]);
            b[oc] = b[oc] * a.scale[oc] + a.shift[oc];
        }
    }
    let base = out.to_string();
    let depthwise = group > 1 && group == c;
    let (op, wshape, wdata) = if depthwise {
        // OIHW [o, 1, kh, kw] → [1, kh, kw, o]; output channel o reads input o / (o/c).
        let mut t = vec![0.0; w.len()];
        for oc in 0..o {
            for yx in 0..kh * kw {
                t[yx * o + oc] = w[oc * kh * kw + yx];
            }
        }
        let op = Op::DepthwiseConv2d(DepthwiseAttrs {
            stride: u2(s),
            dilation: u2(d),
            padding: padding(p),
            depth_multiplier: (o / c) as u32,
            activation: Activation::None,
            rounding: Rounding::Away,
            requantization: Default::default(),
        });
        (op, vec![1, kh, kw, o], t)
    } else {
        // OIHW → OHWI.
        let mut t = vec![0.0; w.len()];
        for oc in 0..o {
            for i in 0..ig {
                for yx in 0..kh * kw {
                    t[(oc * kh * kw + yx) * ig + i] = w[(oc * ig + i) * kh * kw + yx];
                }
            }
        }
        let op = Op::Conv2d(ConvAttrs {
            stride: u2(s),
            dilation: u2(d),
            padding: padding(p),
            groups: group as u32,
            activation: Activation::None,
            requantization: Default::default(),
        });
        (op, vec![o, kh, kw, ig], t)
    };
    let wt = cx.push_const(&format!("{base}/weights"), wshape, wdata);
    let bt = cx.push_const(&format!("{base}/bias"), vec![o], b);
    cx.emit_value(
        out,
        op,
        vec![Some(x), Some(wt), Some(bt)],
        vec![1, o, oh, ow],
    );
    Ok(())
}

/// `ConvTranspose` with kernel = stride and no padding (the upsampling "deconvolution" of
/// CenterNet-style necks), as a 1×1 convolution to `kh·kw·o` channels followed by a
/// depth-to-space: reshape `[h, w, kh, kw·o]`, transpose to `[h, kh, w, kw·o]`, reshape
/// `[1, h·kh, w·kw, o]`. Output pixel `(y·kh + a, x·kw + b)` channel `o` is then
/// `Σc in(y, x, c)·W[c, o, a, b]`, which is the transposed convolution.
fn conv_transpose(cx: &mut Cx<'_>, bn: Option<Affine>, act: Activation, out: &str) -> Result<()> {
    let (x, xd) = cx.act(0)?;
    let (wd, w) = cx
        .const_f32(1)?
        .ok_or_else(|| cx.err("weights are missing"))?;
    let bias = cx.const_f32(2)?.map(|(_, b)| b);
    let ([_, c, h, wi], [wc, o, kh, kw]) = (xd.as_slice(), wd.as_slice()) else {
        return Err(cx.err("only 2-D transposed convolutions are supported"));
    };
    let (c, h, wi, o, kh, kw) = (*c, *h, *wi, *o, *kh, *kw);
    if [c, o, kh, kw].contains(&0) || kh.max(kw) as i64 > MAX_WINDOW {
        return Err(cx.err(format!("weights {wd:?}")));
    }
    let a = cx.attrs();
    let zero = |n: &str| a.ints(n).is_none_or(|v| v.iter().all(|&x| x == 0));
    let ones = |n: &str| a.ints(n).is_none_or(|v| v.iter().all(|&x| x == 1));
    let supported = *wc == c
        && a.int("group").unwrap_or(1) == 1
        && a.ints("strides") == Some(&[kh as i64, kw as i64][..])
        && zero("pads")
        && zero("output_padding")
        && ones("dilations")
        && a.ints("output_shape").is_none()
        && matches!(
            a.string("auto_pad").as_deref(),
            None | Some("") | Some("NOTSET") | Some("VALID")
        );
    if !supported {
        return Err(cx.err(
            "only ungrouped transposed convolutions with kernel = stride and no padding \
             (upsampling) are supported",
        ));
    }
    let mut b = bias.unwrap_or_else(|| vec![0.0; o]);
    if b.len() != o {
        return Err(cx.err(format!("bias has {} values for {o} channels", b.len())));
    }
    let mut scale = vec![1.0; o];
    if let Some(f) = &bn {
        if f.scale.len() != o {
            return Err(cx.err("the batch norm after it has another channel count"));
        }
        scale.clone_from(&f.scale);
        for ((v, s), t) in b.iter_mut().zip(&f.scale).zip(&f.shift) {
            *v = *v * s + t;
        }
    }
    let taps = kh * kw * o;
    let mut w1 = vec![0.0; taps * c];
    for ab in 0..kh * kw {
        for oc in 0..o {
            for ic in 0..c {
                w1[(ab * o + oc) * c + ic] = w[(ic * o + oc) * kh * kw + ab] * scale[oc];
            }
        }
    }
    let b1: Vec<f32> = (0..kh * kw).flat_map(|_| b.iter().copied()).collect();
    let name = cx.name();
    let wt = cx.push_const(&format!("{out}/weights"), vec![taps, 1, 1, c], w1);
    let bt = cx.push_const(&format!("{out}/bias"), vec![taps], b1);
    let t1 = cx.push_act(&format!("{out}/taps"), vec![1, h, wi, taps]);
    let conv = Op::Conv2d(ConvAttrs {
        stride: [1, 1],
        dilation: [1, 1],
        padding: Padding::Valid,
        groups: 1,
        activation: act,
        requantization: Default::default(),
    });
    cx.emit(name.clone(), conv, vec![Some(x), Some(wt), Some(bt)], t1);
    let t2 = cx.push_act(&format!("{out}/rows"), vec![h, wi, kh, kw * o]);
    let reshape = |shape: &[usize]| {
        Op::Reshape(ReshapeAttrs {
            shape: shape.iter().map(|&v| v as i64).collect(),
        })
    };
    cx.emit(
        format!("{name}/rows"),
        reshape(&[h, wi, kh, kw * o]),
        vec![Some(t1)],
        t2,
    );
    let t3 = cx.push_act(&format!("{out}/interleaved"), vec![h, kh, wi, kw * o]);
    let transpose = Op::Transpose(TransposeAttrs {
        perm: vec![0, 2, 1, 3],
    });
    cx.emit(format!("{name}/interleave"), transpose, vec![Some(t2)], t3);
    let dims = vec![1, o, h * kh, wi * kw];
    let t4 = cx.push_act(out, nhwc(&dims));
    cx.emit(
        format!("{name}/depth_to_space"),
        reshape(&[1, h * kh, wi * kw, o]),
        vec![Some(t3)],
        t4,
    );
    cx.values
        .insert(out.to_string(), Value::Act { tensor: t4, dims });
    Ok(())
}

fn unary(cx: &mut Cx<'_>, op: Op) -> Result<()> {
    let (x, d) = cx.act(0)?;
    let out = cx.output_name()?.to_string();
    cx.emit_value(&out, op, vec![Some(x)], d);
    Ok(())
}

/// `Clip` to [0, 6] or [0, ∞): relu6 / relu.
fn clip(cx: &mut Cx<'_>) -> Result<()> {
    let bound = |cx: &Cx<'_>, i: usize, attr: &str| -> Result<Option<f32>> {
        if cx.opset < 11 {
            return Ok(cx.attrs().float(attr));
        }
        Ok(match cx.const_f32(i)? {
            Some((_, v)) if v.len() == 1 => Some(v[0]),
            Some(_) => return Err(cx.err(format!("{attr} must be a scalar"))),
            None => None,
        })
    };
    let lo = bound(cx, 1, "min")?;
    let hi = bound(cx, 2, "max")?.filter(|v| v.is_finite() && *v < f32::MAX);
    let op = match (lo, hi) {
        (Some(0.0), None) => Op::Relu,
        (Some(0.0), Some(6.0)) => Op::Relu6,
        _ => return Err(cx.err(format!("Clip({lo:?}, {hi:?}): only [0, 6] and [0, ∞) map"))),
    };
    unary(cx, op)
}

fn add(cx: &mut Cx<'_>) -> Result<()> {
    let (a, da) = cx.act(0)?;
    let (b, db) = cx.act(1)?;
    if da != db {
        return Err(cx.err(format!(
            "shapes {da:?} and {db:?} differ; broadcasting is not supported"
        )));
    }
    let out = cx.output_name()?.to_string();
    cx.emit_value(
        &out,
        Op::Add(AddAttrs::default()),
        vec![Some(a), Some(b)],
        da,
    );
    Ok(())
}

fn concat(cx: &mut Cx<'_>) -> Result<()> {
    let n = cx.node.input.len();
    let parts = (0..n).map(|i| cx.act(i)).collect::<Result<Vec<_>>>()?;
    let rank = parts.first().map(|p| p.1.len()).unwrap_or(0) as i64;
    let axis = cx.attrs().int("axis").unwrap_or(1);
    let axis = if axis < 0 { axis + rank } else { axis };
    if !(0..rank).contains(&axis) {
        return Err(cx.err(format!("axis {axis} out of range")));
    }
    let axis = axis as usize;
    let mut dims = parts[0].1.clone();
    dims[axis] = 0;
    for (_, d) in &parts {
        let same = d.len() == dims.len() && (0..d.len()).all(|i| i == axis || d[i] == dims[i]);
        if !same {
            return Err(cx.err(format!("input shape {d:?} does not fit")));
        }
        dims[axis] += d[axis];
    }
    // NCHW axis → NHWC axis.
    let stored = if rank == 4 { [0, 3, 1, 2][axis] } else { axis };
    let out = cx.output_name()?.to_string();
    let op = Op::Concat(ConcatAttrs {
        axis: stored as i32,
    });
    cx.emit_value(&out, op, parts.iter().map(|p| Some(p.0)).collect(), dims);
    Ok(())
}

/// `MaxPool` / `AveragePool` (2-D, floor mode; an average excludes padding, ONNX's default).
fn pool(cx: &mut Cx<'_>) -> Result<()> {
    let (x, d) = cx.act(0)?;
    let [n, c, h, w] = d[..] else {
        return Err(cx.err("only 2-D pooling is supported"));
    };
    let a = cx.attrs();
    if a.int("ceil_mode").unwrap_or(0) != 0
        || a.int("count_include_pad").unwrap_or(0) != 0
        || a.ints("dilations")
            .is_some_and(|v| v.iter().any(|&x| x != 1))
        || cx.node.output.len() > 1
    {
        return Err(cx.err(
            "ceil_mode, count_include_pad, dilations and the indices output are not supported",
        ));
    }
    let k = match a.ints("kernel_shape") {
        Some([kh, kw]) if (1..=MAX_WINDOW).contains(kh) && (1..=MAX_WINDOW).contains(kw) => {
            [*kh as usize, *kw as usize]
        }
        other => return Err(cx.err(format!("kernel_shape {other:?}"))),
    };
    let s = cx.ints2("strides", 1)?;
    let p = cx.pads([h, w], k, s, [1, 1])?;
    let [oh, ow] = cx.window_out([h, w], k, s, [1, 1], p)?;
    let attrs = PoolAttrs {
        kernel: u2(k),
        stride: Some(u2(s)),
        padding: padding(p),
        activation: Activation::None,
    };
    let op = if cx.node.op_type == "MaxPool" {
        Op::MaxPool2d(attrs)
    } else {
        Op::AvgPool2d(attrs)
    };
    let out = cx.output_name()?.to_string();
    cx.emit_value(&out, op, vec![Some(x)], vec![n, c, oh, ow]);
    Ok(())
}
