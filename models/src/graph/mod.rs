//! The graph stored in `outpost.graph`: activations, weight quantization and nodes.

pub mod op;
pub mod shape;
pub mod topo;

use outpost_hal::DType;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use op::{Activation, Op, Padding};

/// Per-tensor quantization of an activation: `real = scale × (q − zero_point)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuantParams {
    /// Scale (finite, > 0).
    pub scale: f32,
    /// Zero point (within the dtype's range).
    pub zero_point: i32,
}

/// An activation: a value computed at run time (graph inputs included).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TensorDecl {
    /// Name, unique across activations and weights.
    pub name: String,
    /// Shape (NHWC for images).
    pub shape: Vec<usize>,
    /// Element type: `i8`, `u8`, `i32` or `f32`.
    pub dtype: DType,
    /// Quantization, required for `i8` and `u8`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quant: Option<QuantParams>,
}

/// Quantization of a quantized constant stored in the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightQuant {
    /// The quantized constant (`I8`/`U8` safetensors tensor).
    pub tensor: String,
    /// `F32` tensor of scales: one per slice along `axis`, or one for the whole tensor.
    pub scale: String,
    /// Optional `I32` tensor of zero points (same length as `scale`); absent means zero.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zero_point: Option<String>,
    /// Channel axis of per-channel quantization.
    #[serde(default)]
    pub axis: usize,
}

/// Model state (a TFLite resource variable): the activation `tensor` holds, when a run starts,
/// the value `next` had when the previous run ended; before the first run and after a reset it
/// holds the stored constant `init`. The session owns the state; no node writes `tensor`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateDecl {
    /// The activation read as the current state (like a graph input).
    pub tensor: String,
    /// The activation that becomes the state for the next run (same shape, dtype, quant).
    pub next: String,
    /// The stored constant holding the initial value (same dtype and element count).
    pub init: String,
}

/// A node as stored: the op name and its attributes are checked when the model loads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNode {
    /// Unique node name.
    pub name: String,
    /// Op name (see [`op::OP_NAMES`]).
    pub op: String,
    /// Input tensor names; `""` marks an absent optional input.
    pub inputs: Vec<String>,
    /// Output activation names.
    pub outputs: Vec<String>,
    /// Attribute object.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub attrs: Value,
}

/// The graph as stored in `outpost.graph`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGraph {
    /// Graph input activation names.
    pub inputs: Vec<String>,
    /// Graph output activation names.
    pub outputs: Vec<String>,
    /// Declared activations.
    pub tensors: Vec<TensorDecl>,
    /// Quantization of quantized constants.
    #[serde(default)]
    pub weights: Vec<WeightQuant>,
    /// Nodes, in any order.
    pub nodes: Vec<RawNode>,
    /// State carried from one run to the next (stateful models only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub states: Vec<StateDecl>,
}

/// A validated node: typed op, inputs and outputs.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Unique node name.
    pub name: String,
    /// Typed op.
    pub op: Op,
    /// Input names (`""` = absent optional input).
    pub inputs: Vec<String>,
    /// Output names.
    pub outputs: Vec<String>,
}

/// A validated graph: nodes in a topological order.
#[derive(Debug, Clone, PartialEq)]
pub struct Graph {
    /// Graph inputs.
    pub inputs: Vec<String>,
    /// Graph outputs.
    pub outputs: Vec<String>,
    /// Activations.
    pub tensors: Vec<TensorDecl>,
    /// Quantization of quantized constants.
    pub weights: Vec<WeightQuant>,
    /// Nodes, sorted so every node comes after the producers of its inputs.
    pub nodes: Vec<Node>,
    /// State carried from one run to the next.
    pub states: Vec<StateDecl>,
}

impl Graph {
    /// The declaration of an activation.
    pub fn tensor(&self, name: &str) -> Option<&TensorDecl> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// The quantization entry of a quantized constant.
    pub fn weight_quant(&self, name: &str) -> Option<&WeightQuant> {
        self.weights.iter().find(|w| w.tensor == name)
    }

    /// Back to the stored form.
    pub fn to_raw(&self) -> RawGraph {
        RawGraph {
            inputs: self.inputs.clone(),
            outputs: self.outputs.clone(),
            tensors: self.tensors.clone(),
            weights: self.weights.clone(),
            nodes: self
                .nodes
                .iter()
                .map(|n| RawNode {
                    name: n.name.clone(),
                    op: n.op.name().to_string(),
                    inputs: n.inputs.clone(),
                    outputs: n.outputs.clone(),
                    attrs: n.op.attrs_json(),
                })
                .collect(),
            states: self.states.clone(),
        }
    }

    /// The state whose current value is the activation `name`.
    pub fn state(&self, name: &str) -> Option<&StateDecl> {
        self.states.iter().find(|s| s.tensor == name)
    }
}
