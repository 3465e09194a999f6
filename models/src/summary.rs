//! A model's summary: what `outpost inspect` prints.

use outpost_hal::DType;
use serde::Serialize;

use crate::graph::QuantParams;
use crate::graph::shape;
use crate::meta::FORMAT_VERSION;
use crate::model::Model;
use crate::spec::{InputSpec, OutputSpec, Provenance};

/// One graph input or output.
#[derive(Debug, Clone, Serialize)]
pub struct TensorSummary {
    /// Name.
    pub name: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// Element type.
    pub dtype: DType,
    /// Quantization.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quant: Option<QuantParams>,
}

/// One row of the op table.
#[derive(Debug, Clone, Serialize)]
pub struct OpSummary {
    /// Node name.
    pub node: String,
    /// Op name.
    pub op: String,
    /// Output shape.
    pub output_shape: Vec<usize>,
    /// Output element type.
    pub dtype: DType,
    /// Output quantization.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quant: Option<QuantParams>,
    /// Multiply-accumulates per run.
    pub macs: u64,
    /// Bytes of stored tensors this node reads (weights, biases, scales).
    pub weight_bytes: u64,
}

/// Totals over the graph.
#[derive(Debug, Clone, Serialize)]
pub struct Totals {
    /// Multiply-accumulates per run.
    pub macs: u64,
    /// Bytes of all stored tensors.
    pub weight_bytes: u64,
    /// Sum of all activation sizes (an upper bound of the arena without reuse).
    pub activation_bytes: u64,
    /// Number of nodes.
    pub nodes: usize,
}

/// Everything `outpost inspect` reports about a model.
#[derive(Debug, Clone, Serialize)]
pub struct ModelSummary {
    /// Format version.
    pub format_version: u32,
    /// Model name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Model version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Provenance.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Provenance>,
    /// Graph inputs.
    pub inputs: Vec<TensorSummary>,
    /// Graph outputs.
    pub outputs: Vec<TensorSummary>,
    /// Input specs.
    pub input_specs: Vec<InputSpec>,
    /// Output specs.
    pub output_specs: Vec<OutputSpec>,
    /// Number of class labels.
    pub labels: usize,
    /// The op table in execution order.
    pub ops: Vec<OpSummary>,
    /// Totals.
    pub totals: Totals,
    /// File size.
    pub file_bytes: u64,
    /// Whether the file was memory-mapped.
    pub mapped: bool,
    /// Tensors copied because they were misaligned in the file.
    pub copied_misaligned: Vec<String>,
}

impl ModelSummary {
    /// Summarise a loaded model.
    pub fn of(model: &Model) -> ModelSummary {
        let meta = model.meta();
        let g = &meta.graph;
        let decl = |name: &str| {
            g.tensor(name).map(|t| TensorSummary {
                name: t.name.clone(),
                shape: t.shape.clone(),
                dtype: t.dtype,
                quant: t.quant,
            })
        };
        let shape_of = |name: &str| -> Option<Vec<usize>> {
            if name.is_empty() {
                return None;
            }
            g.tensor(name)
                .map(|t| t.shape.clone())
                .or_else(|| model.tensor(name).map(|t| t.shape().to_vec()))
        };
        let mut ops = Vec::with_capacity(g.nodes.len());
        for n in &g.nodes {
            let shapes: Vec<Option<Vec<usize>>> = n.inputs.iter().map(|t| shape_of(t)).collect();
            let refs: Vec<Option<&[usize]>> = shapes.iter().map(|s| s.as_deref()).collect();
            let out = g.tensor(&n.outputs[0]).expect("validated output");
            let mut weight_bytes: u64 = 0;
            for t in &n.inputs {
                if let Some(w) = model.tensor(t) {
                    weight_bytes += w.bytes().len() as u64;
                    if let Some(q) = g.weight_quant(t) {
                        weight_bytes +=
                            model.tensor(&q.scale).map_or(0, |s| s.bytes().len() as u64);
                    }
                }
            }
            ops.push(OpSummary {
                node: n.name.clone(),
                op: n.op.name().to_string(),
                output_shape: out.shape.clone(),
                dtype: out.dtype,
                quant: out.quant,
                macs: shape::macs(&n.op, &refs, &out.shape),
                weight_bytes,
            });
        }
        let totals = Totals {
            macs: ops.iter().map(|o| o.macs).sum(),
            weight_bytes: model.report().tensor_bytes,
            activation_bytes: g
                .tensors
                .iter()
                .map(|t| t.shape.iter().product::<usize>() as u64 * t.dtype.size() as u64)
                .sum(),
            nodes: g.nodes.len(),
        };
        ModelSummary {
            format_version: FORMAT_VERSION,
            name: meta.name.clone(),
            version: meta.version.clone(),
            provenance: meta.provenance.clone(),
            inputs: g.inputs.iter().filter_map(|t| decl(t)).collect(),
            outputs: g.outputs.iter().filter_map(|t| decl(t)).collect(),
            input_specs: meta.inputs.clone(),
            output_specs: meta.outputs.clone(),
            labels: meta.labels.len(),
            ops,
            totals,
            file_bytes: model.report().file_bytes,
            mapped: model.report().mapped,
            copied_misaligned: model.report().copied.clone(),
        }
    }
}
