//! Post-training int8 quantization (TFLite int8 scheme, see `docs/model-format.md` §8):
//! activations asymmetric per tensor from calibrated ranges, conv / depthwise / fully-connected
//! weights symmetric per output channel, biases int32 at `input_scale × weight_scale`.
//!
//! Ops that move values without arithmetic (pad, pools, reshape, resize, transpose, concat)
//! need the same quantization on their inputs and output; those tensors are grouped
//! (union-find) and share the union of their ranges. Graph outputs stay `f32` behind a
//! `dequantize` node so decoders see real values; the graph input becomes `i8` and the
//! preprocessor quantizes straight into it. Adds get the 16-bit-multiplier arithmetic
//! (`"arithmetic": "int16"`, one multiply-add per pair of inputs) where their scales allow it;
//! convolutions the `f32` requantization (`"requantization": "f32"`).

mod calibrate;
mod ranges;
mod select;

pub use calibrate::{CalibrationMode, Calibrator, Ranges, SampleSource};

use outpost_hal::DType;
use outpost_kernels::Add16Quant;
use outpost_models::graph::op::{AddArithmetic, Requantization, Rounding};
use outpost_models::graph::{Op, QuantParams};
use outpost_models::spec::{Decoder, OutputSpec};

use crate::error::{ConvertError, Result};
use crate::ir::{ConstData, Graph, Node, Tensor};

/// The int8 activation quantization covering `[lo, hi]` (widened to include 0).
pub fn params_for(lo: f32, hi: f32) -> QuantParams {
    let lo = lo.min(0.0);
    let hi = hi.max(0.0).max(lo + 1e-6);
    let scale = (hi - lo) / 255.0;
    let zp = (-128.0 - lo / scale).round().clamp(-128.0, 127.0) as i32;
    QuantParams {
        scale,
        zero_point: zp,
    }
}

fn quantize_weight(w: &[f32], shape: &[usize], axis: usize) -> ConstData {
    let dim = shape[axis].max(1);
    let inner: usize = shape[axis + 1..].iter().product::<usize>().max(1);
    let mut maxabs = vec![0f32; dim];
    for (i, &v) in w.iter().enumerate() {
        let c = (i / inner) % dim;
        maxabs[c] = maxabs[c].max(v.abs());
    }
    let scales: Vec<f32> = maxabs
        .iter()
        .map(|&m| if m > 0.0 { m / 127.0 } else { 1.0 / 127.0 })
        .collect();
    let values = w
        .iter()
        .enumerate()
        .map(|(i, &v)| (v / scales[(i / inner) % dim]).round().clamp(-127.0, 127.0) as i8)
        .collect();
    ConstData::I8 {
        values,
        zero_points: vec![0; dim],
        scales,
        axis,
    }
}

fn quantize_bias(b: &[f32], in_scale: f32, w_scales: &[f32]) -> Vec<i32> {
    b.iter()
        .enumerate()
        .map(|(c, &v)| {
            let s = in_scale as f64 * w_scales[c.min(w_scales.len() - 1)] as f64;
            (v as f64 / s)
                .round()
                .clamp(i32::MIN as f64, i32::MAX as f64) as i32
        })
        .collect()
}

/// Fixed output quantization of ops whose output range is known (TFLite's choices).
fn fixed_output(op: &Op) -> Option<QuantParams> {
    match op {
        Op::Logistic | Op::Softmax(_) => Some(QuantParams {
            scale: 1.0 / 256.0,
            zero_point: -128,
        }),
        Op::Tanh => Some(QuantParams {
            scale: 1.0 / 128.0,
            zero_point: 0,
        }),
        _ => None,
    }
}

/// Rewrite the float graph `g` to int8 using calibrated `ranges` (indexed by tensor); `caps`
/// bound chosen tensors' ranges (see [`score_caps`]); the convolutions get `requantization`
/// (a depthwise convolution imported with TFLite's upward rounding keeps the fixed point
/// form).
pub fn quantize(
    g: &Graph,
    ranges: &Ranges,
    caps: &[RangeCap],
    requantization: Requantization,
) -> Result<Graph> {
    let mut q = g.clone();
    let params = ranges::assign(g, ranges, caps);
    for (t, p) in params.iter().enumerate() {
        if let Some(p) = p {
            q.tensors[t].dtype = DType::I8;
            q.tensors[t].quant = Some(*p);
        }
    }
    for n in 0..q.nodes.len() {
        let node = q.nodes[n].clone();
        if let Some(p) = fixed_output(&node.op) {
            q.tensors[node.output].quant = Some(p);
        }
        if let Op::Add(_) = node.op {
            choose_add_arithmetic(&mut q, n);
        }
        let axis = match node.op {
            Op::Conv2d(_) | Op::FullyConnected(_) => 0,
            Op::DepthwiseConv2d(_) => 3,
            _ => continue,
        };
        choose_requantization(&mut q.nodes[n].op, requantization);
        let x = node.inputs[0].ok_or_else(|| bad(&node, "missing input"))?;
        let in_scale = q.tensors[x]
            .quant
            .ok_or_else(|| bad(&node, "input was not calibrated"))?
            .scale;
        let w = node.inputs[1].ok_or_else(|| bad(&node, "missing weights"))?;
        let wt = &g.tensors[w];
        let wdata = match &wt.data {
            Some(d @ ConstData::I8 { .. }) => d.clone(),
            Some(d) => {
                let v = d
                    .to_f32(&wt.shape)
                    .ok_or_else(|| bad(&node, "weights are not float"))?;
                quantize_weight(&v, &wt.shape, axis)
            }
            None => return Err(bad(&node, "weights must be constants")),
        };
        let ConstData::I8 { scales, .. } = &wdata else {
            unreachable!("quantize_weight returns int8")
        };
        let scales = scales.clone();
        let wname = q.fresh_name(&format!("{}.q", wt.name));
        let wq = q.push_tensor(Tensor {
            name: wname,
            shape: wt.shape.clone(),
            dtype: DType::I8,
            quant: None,
            data: Some(wdata),
        });
        q.nodes[n].inputs[1] = Some(wq);
        if let Some(Some(b)) = node.inputs.get(2) {
            let bt = &g.tensors[*b];
            let bv = bt
                .data
                .as_ref()
                .and_then(|d| d.to_f32(&bt.shape))
                .ok_or_else(|| bad(&node, "bias must be a float constant"))?;
            let bname = q.fresh_name(&format!("{}.q", bt.name));
            let bq = q.push_tensor(Tensor {
                name: bname,
                shape: bt.shape.clone(),
                dtype: DType::I32,
                quant: None,
                data: Some(ConstData::I32(quantize_bias(&bv, in_scale, &scales))),
            });
            q.nodes[n].inputs[2] = Some(bq);
        }
    }
    // Graph outputs: keep the float tensor, computed by a dequantize of an int8 twin.
    for k in 0..q.outputs.len() {
        let o = q.outputs[k];
        if q.tensors[o].dtype != DType::I8 {
            continue;
        }
        let mut twin = q.tensors[o].clone();
        twin.name = q.fresh_name(&format!("{}.int8", twin.name));
        let tw = q.push_tensor(twin);
        if let Some(p) = q.producer(o) {
            q.nodes[p].output = tw;
        }
        for c in q.consumers(o).collect::<Vec<_>>() {
            for i in q.nodes[c].inputs.iter_mut() {
                if *i == Some(o) {
                    *i = Some(tw);
                }
            }
        }
        q.tensors[o].dtype = DType::F32;
        q.tensors[o].quant = None;
        let name = q.fresh_name(&format!("{}.dequantize", q.tensors[o].name));
        q.nodes.push(Node {
            name,
            op: Op::Dequantize,
            inputs: vec![Some(tw)],
            output: o,
        });
    }
    q.prune();
    Ok(q)
}

/// Give a convolution Outpost quantizes its requantization (`f32` by default: a third of the
/// vector instructions of TFLite's fixed point form, within one step of it); a depthwise
/// convolution imported with TFLite's upward rounding keeps the fixed point form.
fn choose_requantization(op: &mut Op, r: Requantization) {
    match op {
        Op::Conv2d(a) => a.requantization = r,
        Op::DepthwiseConv2d(a) if a.rounding == Rounding::Away => a.requantization = r,
        _ => {}
    }
}

/// Give an int8 add the 16-bit-multiplier arithmetic where its scales allow it (ratios of the
/// input scales to the output scale below 128, as calibrated ranges give); otherwise it keeps
/// TFLite's.
fn choose_add_arithmetic(q: &mut Graph, n: usize) {
    let quant = |i: Option<usize>| i.and_then(|t| q.tensors[t].quant);
    let node = &q.nodes[n];
    let (Some(x), Some(y), Some(o)) = (
        quant(node.inputs.first().copied().flatten()),
        quant(node.inputs.get(1).copied().flatten()),
        q.tensors[node.output].quant,
    ) else {
        return;
    };
    let fits = Add16Quant::new(
        x.scale,
        x.zero_point,
        y.scale,
        y.zero_point,
        o.scale,
        o.zero_point,
        -128,
        127,
    )
    .is_some();
    if let Op::Add(a) = &mut q.nodes[n].op {
        a.arithmetic = if fits {
            AddArithmetic::Int16
        } else {
            AddArithmetic::Tflite
        };
    }
}

/// Logits beyond this are scores below 0.0003 or above 0.9997: no decision depends on them.
pub const SCORE_LOGIT_CAP: f32 = 8.0;

/// A range set (`exact`) or bounded for one tensor and the tensors sharing its quantization.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RangeCap {
    /// Tensor index.
    pub tensor: usize,
    /// Low end.
    pub lo: f32,
    /// High end.
    pub hi: f32,
    /// Replace the calibrated range instead of intersecting with it.
    pub exact: bool,
}

/// Ranges the decoder's meaning dictates for SSD and CenterNet outputs.
///
/// - Scores: background anchors give logits of −100 and beyond, and a range that covers them
///   leaves steps of ≈0.7 logit (0.18 in score near 0.5); a calibration set without faces
///   never shows a positive logit at all. The range is set to ±[`SCORE_LOGIT_CAP`]: a step of
///   0.063 logit (0.016 in score), symmetric around the decision threshold.
/// - Box regressors are in input pixels: offsets and sizes beyond `[−S, 1.5·S]` (S the input
///   size) describe boxes larger than the frame. Out-of-distribution calibration images
///   (tiny faces blown up) reach thousands; the calibrated range is bounded to this.
/// - CenterNet heatmap logits (before the sigmoid): ±[`SCORE_LOGIT_CAP`] too; a face's peak
///   is too rare a value for percentile calibration, which clipped CenterFace's astronaut
///   score from 0.93 to 0.69.
pub fn decoder_caps(g: &Graph, outputs: &[OutputSpec]) -> Vec<RangeCap> {
    let mut caps = Vec::new();
    let find =
        |name: Option<&String>| name.and_then(|n| g.tensors.iter().position(|t| &t.name == n));
    for o in outputs {
        if let Decoder::Ssd { box_scale, .. } = &o.decoder {
            if let Some(t) = find(o.tensors.first()) {
                caps.push(RangeCap {
                    tensor: t,
                    lo: -box_scale,
                    hi: 1.5 * box_scale,
                    exact: false,
                });
            }
            if let Some(t) = find(o.tensors.get(1)) {
                caps.push(RangeCap {
                    tensor: t,
                    lo: -SCORE_LOGIT_CAP,
                    hi: SCORE_LOGIT_CAP,
                    exact: true,
                });
            }
        }
        if let Decoder::Centernet { .. } = &o.decoder {
            // The heatmap's logits (the input of its sigmoid): the same reasoning as SSD
            // scores, a face's peak is a rare value that percentile calibration clips.
            let logit = find(o.tensors.first())
                .and_then(|t| g.producer(t))
                .filter(|&p| g.nodes[p].op == Op::Logistic)
                .and_then(|p| g.nodes[p].inputs.first().copied().flatten());
            if let Some(t) = logit {
                caps.push(RangeCap {
                    tensor: t,
                    lo: -SCORE_LOGIT_CAP,
                    hi: SCORE_LOGIT_CAP,
                    exact: true,
                });
            }
        }
    }
    caps
}

fn bad(n: &Node, reason: &str) -> ConvertError {
    ConvertError::UnsupportedOp {
        op: n.op.name().to_string(),
        node: n.name.clone(),
        reason: format!("cannot quantize: {reason}"),
    }
}
