//! Checks of the metadata against itself and against the stored tensors, run before anything
//! executes. Each failure names the tensor, node or key at fault.

use std::collections::{HashMap, HashSet};

use outpost_hal::DType;

use crate::error::{ModelError, Result};
use crate::graph::op::Op;
use crate::graph::shape::{self, MAX_DIM, MAX_RANK};
use crate::graph::{Graph, Node, QuantParams, RawGraph, TensorDecl, WeightQuant, topo};
use crate::meta::{ModelMeta, RawMeta, keys};
use crate::spec::Layout;
use crate::tensor::TensorRef;

/// Most nodes a graph may have.
pub const MAX_NODES: usize = 100_000;
/// Largest activation in bytes.
pub const MAX_ACTIVATION_BYTES: usize = 1 << 31;

/// Checks dimension limits and returns the byte size.
pub(crate) fn check_dims(tensor: &str, shape: &[usize], dtype: DType) -> Result<usize> {
    let overflow = |reason: String| ModelError::DimensionOverflow {
        tensor: tensor.to_string(),
        reason,
    };
    if shape.len() > MAX_RANK {
        return Err(overflow(format!("rank {} > {MAX_RANK}", shape.len())));
    }
    if let Some(d) = shape.iter().find(|&&d| d > MAX_DIM) {
        return Err(overflow(format!("dimension {d} > 2^31")));
    }
    shape
        .iter()
        .try_fold(dtype.size(), |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| overflow(format!("{shape:?} overflows")))
}

fn check_quant(tensor: &str, dtype: DType, q: &QuantParams) -> Result<()> {
    let bad = |reason: String| ModelError::BadQuant {
        tensor: tensor.to_string(),
        reason,
    };
    if !q.scale.is_finite() || q.scale <= 0.0 {
        return Err(bad(format!("scale {} must be finite and > 0", q.scale)));
    }
    let range = if dtype == DType::U8 {
        0..=255
    } else {
        -128..=127
    };
    if !range.contains(&q.zero_point) {
        return Err(bad(format!(
            "zero point {} outside {range:?} for {dtype}",
            q.zero_point
        )));
    }
    Ok(())
}

fn check_activation(t: &TensorDecl) -> Result<()> {
    let bytes = check_dims(&t.name, &t.shape, t.dtype)?;
    if bytes > MAX_ACTIVATION_BYTES {
        return Err(ModelError::DimensionOverflow {
            tensor: t.name.clone(),
            reason: format!("{bytes} bytes > 2^31"),
        });
    }
    match (t.dtype, &t.quant) {
        (DType::I8 | DType::U8, Some(q)) => check_quant(&t.name, t.dtype, q),
        (DType::I8 | DType::U8, None) => Err(ModelError::BadQuant {
            tensor: t.name.clone(),
            reason: format!("{} activation needs quant {{scale, zero_point}}", t.dtype),
        }),
        (DType::F16, _) => Err(ModelError::DTypeMismatch {
            tensor: t.name.clone(),
            expected: DType::F32,
            found: DType::F16,
        }),
        _ => Ok(()),
    }
}

fn check_weight_quant<'a>(
    w: &WeightQuant,
    get: &impl Fn(&str) -> Option<TensorRef<'a>>,
) -> Result<()> {
    let unknown = |t: &str| ModelError::UnknownTensor {
        node: "graph.weights".into(),
        tensor: t.to_string(),
    };
    let t = get(&w.tensor).ok_or_else(|| unknown(&w.tensor))?;
    if !t.dtype().is_quantized_int() {
        return Err(ModelError::DTypeMismatch {
            tensor: w.tensor.clone(),
            expected: DType::I8,
            found: t.dtype(),
        });
    }
    let bad = |reason: String| ModelError::BadQuant {
        tensor: w.tensor.clone(),
        reason,
    };
    if w.axis >= t.shape().len().max(1) {
        return Err(bad(format!(
            "axis {} out of range for shape {:?}",
            w.axis,
            t.shape()
        )));
    }
    let channels = t.shape().get(w.axis).copied().unwrap_or(1);
    let scales = get(&w.scale).ok_or_else(|| unknown(&w.scale))?.as_f32()?;
    if scales.len() != 1 && scales.len() != channels {
        return Err(bad(format!(
            "{} scales for {channels} channels along axis {}",
            scales.len(),
            w.axis
        )));
    }
    if let Some((i, s)) = scales
        .iter()
        .enumerate()
        .find(|(_, s)| !s.is_finite() || **s <= 0.0)
    {
        return Err(bad(format!("scale[{i}] = {s} must be finite and > 0")));
    }
    if let Some(zp_name) = &w.zero_point {
        let zps = get(zp_name).ok_or_else(|| unknown(zp_name))?.as_i32()?;
        if zps.len() != scales.len() {
            return Err(bad(format!(
                "{} zero points for {} scales",
                zps.len(),
                scales.len()
            )));
        }
        let range = if t.dtype() == DType::U8 {
            0..=255
        } else {
            -128..=127
        };
        if let Some((i, z)) = zps.iter().enumerate().find(|(_, z)| !range.contains(*z)) {
            return Err(bad(format!("zero_point[{i}] = {z} outside {range:?}")));
        }
    }
    Ok(())
}

/// What a node input resolves to.
#[derive(Clone, Copy)]
enum Source<'g> {
    Activation(&'g TensorDecl),
    Constant(DType),
}

/// Checks the dtypes of a node's inputs and output.
fn check_node_dtypes(
    name: &str,
    op: &Op,
    inputs: &[String],
    ins: &[Option<Source<'_>>],
    out: &TensorDecl,
    weights: &HashSet<&str>,
) -> Result<()> {
    let bad = |reason: String| ModelError::BadNode {
        node: name.to_string(),
        reason,
    };
    let dt = |s: &Option<Source<'_>>| match s {
        Some(Source::Activation(t)) => Some(t.dtype),
        Some(Source::Constant(d)) => Some(*d),
        None => None,
    };
    let x = dt(&ins[0]);
    match op {
        Op::Conv2d(_) | Op::DepthwiseConv2d(_) | Op::FullyConnected(_) => {
            let (w, b) = (dt(&ins[1]), ins.get(2).and_then(dt));
            let mismatch = |i: usize, expected: DType, found: DType| ModelError::DTypeMismatch {
                tensor: inputs[i].clone(),
                expected,
                found,
            };
            let (float, out_ok) = match x {
                Some(DType::I8 | DType::U8) => (false, out.dtype.is_quantized_int()),
                Some(DType::F32) => (true, out.dtype == DType::F32),
                other => return Err(bad(format!("unsupported input dtype {other:?}"))),
            };
            match (float, w) {
                (false, Some(DType::I8)) if weights.contains(inputs[1].as_str()) => {}
                (false, Some(DType::I8)) => {
                    return Err(ModelError::BadQuant {
                        tensor: inputs[1].clone(),
                        reason: "quantized weight has no graph.weights entry".into(),
                    });
                }
                (false, Some(d)) => return Err(mismatch(1, DType::I8, d)),
                (true, Some(DType::F32 | DType::F16)) => {}
                (true, Some(d)) => return Err(mismatch(1, DType::F32, d)),
                (_, None) => return Err(bad("weight is required".into())),
            }
            match (float, b) {
                (false, Some(d)) if d != DType::I32 => return Err(mismatch(2, DType::I32, d)),
                (true, Some(d)) if !d.is_float() => return Err(mismatch(2, DType::F32, d)),
                _ => {}
            }
            if !out_ok {
                let expected = if float { DType::F32 } else { DType::I8 };
                return Err(ModelError::DTypeMismatch {
                    tensor: out.name.clone(),
                    expected,
                    found: out.dtype,
                });
            }
        }
        Op::Quantize => {
            let from_ok = x == Some(DType::F32) || x.is_some_and(DType::is_quantized_int);
            if !from_ok || !out.dtype.is_quantized_int() {
                return Err(bad("quantize maps f32, i8 or u8 to i8/u8".into()));
            }
        }
        Op::Dequantize => {
            if !x.is_some_and(DType::is_quantized_int) || out.dtype != DType::F32 {
                return Err(bad("dequantize maps i8/u8 to f32".into()));
            }
        }
        _ => {
            for (i, s) in ins.iter().enumerate() {
                if let Some(d) = dt(s)
                    && d != out.dtype
                    && !(d == DType::F16 && out.dtype == DType::F32)
                {
                    return Err(bad(format!(
                        "input {i} is {d} but output `{}` is {}",
                        out.name, out.dtype
                    )));
                }
            }
        }
    }
    Ok(())
}

/// Validate the parsed metadata against the stored tensors; returns the checked model metadata.
pub(crate) fn validate<'a>(
    raw: RawMeta,
    get: impl Fn(&str) -> Option<TensorRef<'a>>,
) -> Result<ModelMeta> {
    let RawGraph {
        inputs,
        outputs,
        tensors,
        weights,
        nodes,
        states,
    } = raw.graph;
    if nodes.len() > MAX_NODES {
        return Err(ModelError::InvalidMetadata {
            key: keys::GRAPH,
            reason: format!("{} nodes > {MAX_NODES}", nodes.len()),
        });
    }

    // Activations: unique, not shadowing a stored tensor, sane dims and quantization.
    let mut decls: HashMap<&str, &TensorDecl> = HashMap::with_capacity(tensors.len());
    for t in &tensors {
        if decls.insert(t.name.as_str(), t).is_some() {
            return Err(ModelError::DuplicateTensor {
                tensor: t.name.clone(),
                reason: "declared twice in graph.tensors".into(),
            });
        }
        if get(&t.name).is_some() {
            return Err(ModelError::DuplicateTensor {
                tensor: t.name.clone(),
                reason: "both an activation and a stored tensor".into(),
            });
        }
        check_activation(t)?;
    }
    for w in &weights {
        check_weight_quant(w, &get)?;
    }
    let weight_names: HashSet<&str> = weights.iter().map(|w| w.tensor.as_str()).collect();

    // Nodes: typed ops, unique names, resolvable inputs, one producer per output.
    let mut typed = Vec::with_capacity(nodes.len());
    let mut node_names = HashSet::with_capacity(nodes.len());
    let mut producer: HashMap<&str, usize> = HashMap::with_capacity(nodes.len());
    for (i, n) in nodes.iter().enumerate() {
        if !node_names.insert(n.name.as_str()) {
            return Err(ModelError::BadNode {
                node: n.name.clone(),
                reason: "node name used twice".into(),
            });
        }
        let op = Op::parse(&n.op, &n.attrs).map_err(|e| match e {
            crate::graph::op::OpParseError::Unknown => ModelError::UnknownOp {
                node: n.name.clone(),
                op: n.op.clone(),
            },
            crate::graph::op::OpParseError::Attrs(reason) => ModelError::BadAttribute {
                node: n.name.clone(),
                reason,
            },
        })?;
        op.check_attrs().map_err(|r| ModelError::BadAttribute {
            node: n.name.clone(),
            reason: r,
        })?;
        if n.outputs.len() != 1 {
            return Err(ModelError::BadNode {
                node: n.name.clone(),
                reason: format!("has {} outputs; ops of format 1 have one", n.outputs.len()),
            });
        }
        if n.inputs.is_empty() || n.inputs[0].is_empty() {
            return Err(ModelError::BadNode {
                node: n.name.clone(),
                reason: "first input is required".into(),
            });
        }
        for t in &n.inputs {
            if !t.is_empty() && !decls.contains_key(t.as_str()) && get(t).is_none() {
                return Err(ModelError::UnknownTensor {
                    node: n.name.clone(),
                    tensor: t.clone(),
                });
            }
        }
        let out = &n.outputs[0];
        if !decls.contains_key(out.as_str()) {
            return Err(ModelError::UnknownTensor {
                node: n.name.clone(),
                tensor: out.clone(),
            });
        }
        if states.iter().any(|s| &s.tensor == out) {
            return Err(ModelError::DuplicateTensor {
                tensor: out.clone(),
                reason: format!(
                    "state overwritten by node `{}` (its next value is `graph.states[].next`)",
                    n.name
                ),
            });
        }
        if inputs.contains(out) {
            return Err(ModelError::DuplicateTensor {
                tensor: out.clone(),
                reason: format!("graph input overwritten by node `{}`", n.name),
            });
        }
        if let Some(&prev) = producer.get(out.as_str()) {
            return Err(ModelError::DuplicateTensor {
                tensor: out.clone(),
                reason: format!("produced by `{}` and `{}`", nodes[prev].name, n.name),
            });
        }
        producer.insert(out.as_str(), i);
        typed.push(op);
    }

    for t in &inputs {
        if !decls.contains_key(t.as_str()) {
            return Err(ModelError::UnknownTensor {
                node: "graph.inputs".into(),
                tensor: t.clone(),
            });
        }
    }
    if outputs.is_empty() {
        return Err(ModelError::InvalidMetadata {
            key: keys::GRAPH,
            reason: "graph has no outputs".into(),
        });
    }
    for t in &outputs {
        if !producer.contains_key(t.as_str()) && !inputs.contains(t) {
            return Err(ModelError::UnknownTensor {
                node: "graph.outputs".into(),
                tensor: t.clone(),
            });
        }
    }
    check_states(&states, &decls, &producer, &inputs, &get)?;
    // Every activation that is read must be a graph input, a state or produced by a node.
    for n in &nodes {
        for t in &n.inputs {
            if decls.contains_key(t.as_str())
                && !producer.contains_key(t.as_str())
                && !inputs.contains(t)
                && !states.iter().any(|s| &s.tensor == t)
            {
                return Err(ModelError::BadNode {
                    node: n.name.clone(),
                    reason: format!("reads `{t}`, which no node produces and is not a graph input"),
                });
            }
        }
    }

    // Order, then infer shapes along that order and compare with the declarations.
    let deps: Vec<Vec<usize>> = nodes
        .iter()
        .map(|n| {
            n.inputs
                .iter()
                .filter_map(|t| producer.get(t.as_str()).copied())
                .collect()
        })
        .collect();
    let order = topo::order(&deps).map_err(|i| ModelError::Cycle {
        node: nodes[i].name.clone(),
    })?;

    for &i in &order {
        let (n, op) = (&nodes[i], &typed[i]);
        let sources: Vec<Option<Source<'_>>> = n
            .inputs
            .iter()
            .map(|t| {
                if t.is_empty() {
                    None
                } else if let Some(d) = decls.get(t.as_str()) {
                    Some(Source::Activation(d))
                } else {
                    get(t).map(|r| Source::Constant(r.dtype()))
                }
            })
            .collect();
        let shapes: Vec<Option<&[usize]>> = n
            .inputs
            .iter()
            .map(|t| {
                if t.is_empty() {
                    None
                } else if let Some(d) = decls.get(t.as_str()) {
                    Some(d.shape.as_slice())
                } else {
                    get(t).map(|r| r.shape())
                }
            })
            .collect();
        let inferred = shape::infer(op, &shapes).map_err(|reason| ModelError::BadNode {
            node: n.name.clone(),
            reason,
        })?;
        let out = decls[n.outputs[0].as_str()];
        if inferred != out.shape {
            return Err(ModelError::ShapeMismatch {
                tensor: out.name.clone(),
                reason: format!(
                    "declared {:?} but node `{}` produces {inferred:?}",
                    out.shape, n.name
                ),
            });
        }
        check_node_dtypes(&n.name, op, &n.inputs, &sources, out, &weight_names)?;
    }

    let ordered: Vec<Node> = {
        let mut slots: Vec<Option<(crate::graph::RawNode, Op)>> =
            nodes.into_iter().zip(typed).map(Some).collect();
        order
            .iter()
            .map(|&i| {
                let (n, op) = slots[i].take().expect("each index once");
                Node {
                    name: n.name,
                    op,
                    inputs: n.inputs,
                    outputs: n.outputs,
                }
            })
            .collect()
    };
    let graph = Graph {
        inputs,
        outputs,
        tensors,
        weights,
        nodes: ordered,
        states,
    };
    check_specs(&graph, &raw.inputs, &raw.outputs)?;

    Ok(ModelMeta {
        name: raw.name,
        version: raw.version,
        graph,
        inputs: raw.inputs,
        outputs: raw.outputs,
        labels: raw.labels,
        provenance: raw.provenance,
    })
}

/// Each state: a declared activation no node writes and no graph input, a `next` value of the
/// same declaration produced by a node, an `init` constant of the same dtype and size.
fn check_states<'a>(
    states: &[crate::graph::StateDecl],
    decls: &HashMap<&str, &TensorDecl>,
    producer: &HashMap<&str, usize>,
    inputs: &[String],
    get: &impl Fn(&str) -> Option<TensorRef<'a>>,
) -> Result<()> {
    let bad = |t: &str, reason: String| ModelError::BadNode {
        node: format!("graph.states[{t}]"),
        reason,
    };
    let mut seen = HashSet::new();
    for s in states {
        let t = decls
            .get(s.tensor.as_str())
            .ok_or_else(|| ModelError::UnknownTensor {
                node: "graph.states".into(),
                tensor: s.tensor.clone(),
            })?;
        if !seen.insert(s.tensor.as_str()) || inputs.contains(&s.tensor) {
            return Err(bad(
                &s.tensor,
                "declared twice or also a graph input".into(),
            ));
        }
        let n = decls
            .get(s.next.as_str())
            .ok_or_else(|| ModelError::UnknownTensor {
                node: "graph.states".into(),
                tensor: s.next.clone(),
            })?;
        if !producer.contains_key(s.next.as_str()) {
            return Err(bad(
                &s.tensor,
                format!("next value `{}` is produced by no node", s.next),
            ));
        }
        if n.shape != t.shape || n.dtype != t.dtype || n.quant != t.quant {
            return Err(bad(
                &s.tensor,
                format!(
                    "next value `{}` differs in shape, dtype or quantization",
                    s.next
                ),
            ));
        }
        let init = get(&s.init).ok_or_else(|| ModelError::UnknownTensor {
            node: "graph.states".into(),
            tensor: s.init.clone(),
        })?;
        let count: usize = t.shape.iter().product();
        if init.dtype() != t.dtype || init.shape().iter().product::<usize>() != count {
            return Err(bad(
                &s.tensor,
                format!(
                    "initial value `{}` is {} {:?}, the state {} {:?}",
                    s.init,
                    init.dtype(),
                    init.shape(),
                    t.dtype,
                    t.shape
                ),
            ));
        }
    }
    Ok(())
}

fn check_specs(
    g: &Graph,
    inputs: &[crate::spec::InputSpec],
    outputs: &[crate::spec::OutputSpec],
) -> Result<()> {
    let bad_in = |reason: String| ModelError::BadSpec {
        key: keys::INPUTS,
        reason,
    };
    for s in inputs {
        let t = match g.tensor(&s.tensor) {
            Some(t) if g.inputs.contains(&s.tensor) => t,
            _ => return Err(bad_in(format!("`{}` is not a graph input", s.tensor))),
        };
        let channels = match s.layout {
            Layout::Nhwc if t.shape.len() == 4 => t.shape[3],
            Layout::Nhwc => {
                return Err(bad_in(format!(
                    "`{}` is nhwc but has shape {:?}",
                    s.tensor, t.shape
                )));
            }
            Layout::Nc => 0,
        };
        for (name, v) in [("mean", &s.mean), ("std", &s.std)] {
            if !v.is_empty() && v.len() != channels && v.len() != 1 {
                return Err(bad_in(format!(
                    "`{}`: {name} has {} values for {channels} channels",
                    s.tensor,
                    v.len()
                )));
            }
            if v.iter().any(|x| !x.is_finite()) {
                return Err(bad_in(format!("`{}`: {name} must be finite", s.tensor)));
            }
        }
        if s.std.contains(&0.0) {
            return Err(bad_in(format!("`{}`: std must not be 0", s.tensor)));
        }
    }
    for s in outputs {
        for t in &s.tensors {
            if !g.outputs.contains(t) {
                return Err(ModelError::BadSpec {
                    key: keys::OUTPUTS,
                    reason: format!("`{t}` is not a graph output"),
                });
            }
        }
        s.decoder.check().map_err(|reason| ModelError::BadSpec {
            key: keys::OUTPUTS,
            reason,
        })?;
    }
    Ok(())
}
