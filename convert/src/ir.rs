//! The converter's working graph: tensors (activations and constants) and nodes by index, easy
//! to rewrite (fusion, quantization) before it is written as an Outpost model.

use half::f16;
use outpost_hal::DType;
use outpost_models::graph::{Op, QuantParams};

/// Constant data held by a tensor.
#[derive(Debug, Clone, PartialEq)]
pub enum ConstData {
    /// Float weights.
    F32(Vec<f32>),
    /// Half-precision weights (kept compact; widened when a plan is made).
    F16(Vec<f16>),
    /// Int32 values (quantized biases, shapes).
    I32(Vec<i32>),
    /// Quantized int8 values with their scales along `axis` (one scale = per tensor).
    I8 {
        /// Values.
        values: Vec<i8>,
        /// Scales.
        scales: Vec<f32>,
        /// Zero points (same length as `scales`).
        zero_points: Vec<i32>,
        /// Channel axis.
        axis: usize,
    },
}

impl ConstData {
    /// The values widened to f32 (int8 dequantized); `None` for int32.
    pub fn to_f32(&self, shape: &[usize]) -> Option<Vec<f32>> {
        match self {
            ConstData::F32(v) => Some(v.clone()),
            ConstData::F16(v) => Some(v.iter().map(|h| h.to_f32()).collect()),
            ConstData::I32(_) => None,
            ConstData::I8 {
                values,
                scales,
                zero_points,
                axis,
            } => {
                let inner: usize = shape.iter().skip(axis + 1).product();
                let dim = shape.get(*axis).copied().unwrap_or(1).max(1);
                Some(
                    values
                        .iter()
                        .enumerate()
                        .map(|(i, &q)| {
                            let c = if scales.len() == 1 {
                                0
                            } else {
                                (i / inner.max(1)) % dim
                            };
                            scales[c] * (q as i32 - zero_points[c]) as f32
                        })
                        .collect(),
                )
            }
        }
    }
}

/// One tensor of the working graph.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// Unique name.
    pub name: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// Element type (of the activation; constants carry theirs in `data`).
    pub dtype: DType,
    /// Activation quantization (int8 activations).
    pub quant: Option<QuantParams>,
    /// Constant data; `None` for activations.
    pub data: Option<ConstData>,
}

impl Tensor {
    /// Whether the tensor is a constant.
    pub fn is_const(&self) -> bool {
        self.data.is_some()
    }
}

/// One node: an Outpost op over tensor indices (`None` = absent optional input).
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Unique name.
    pub name: String,
    /// The op with its attributes.
    pub op: Op,
    /// Inputs.
    pub inputs: Vec<Option<usize>>,
    /// Output tensor.
    pub output: usize,
}

/// Model state imported from TFLite resource variables (see
/// [`outpost_models::graph::StateDecl`]): tensor indices of the current value, the next value
/// and the constant initial value.
#[derive(Debug, Clone, PartialEq)]
pub struct State {
    /// Activation holding the state when a run starts.
    pub tensor: usize,
    /// Activation that becomes the state for the next run.
    pub next: usize,
    /// Constant initial value.
    pub init: usize,
}

/// A whole graph.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Graph {
    /// All tensors.
    pub tensors: Vec<Tensor>,
    /// Nodes in execution order.
    pub nodes: Vec<Node>,
    /// Graph inputs.
    pub inputs: Vec<usize>,
    /// Graph outputs.
    pub outputs: Vec<usize>,
    /// State carried across runs.
    pub states: Vec<State>,
}

impl Graph {
    /// Nodes that read tensor `t`.
    pub fn consumers(&self, t: usize) -> impl Iterator<Item = usize> + '_ {
        self.nodes
            .iter()
            .enumerate()
            .filter(move |(_, n)| n.inputs.contains(&Some(t)))
            .map(|(i, _)| i)
    }

    /// The node writing tensor `t`.
    pub fn producer(&self, t: usize) -> Option<usize> {
        self.nodes.iter().position(|n| n.output == t)
    }

    /// Add a tensor, returning its index.
    pub fn push_tensor(&mut self, t: Tensor) -> usize {
        self.tensors.push(t);
        self.tensors.len() - 1
    }

    /// A tensor name not used yet, derived from `base`.
    pub fn fresh_name(&self, base: &str) -> String {
        if !self.tensors.iter().any(|t| t.name == base) {
            return base.to_string();
        }
        (1..)
            .map(|i| format!("{base}_{i}"))
            .find(|n| !self.tensors.iter().any(|t| &t.name == n))
            .unwrap_or_default()
    }

    /// Drop tensors no node or graph edge refers to, renumbering the rest.
    pub fn prune(&mut self) {
        let mut used = vec![false; self.tensors.len()];
        for n in &self.nodes {
            used[n.output] = true;
            for i in n.inputs.iter().flatten() {
                used[*i] = true;
            }
        }
        for &i in self.inputs.iter().chain(&self.outputs) {
            used[i] = true;
        }
        for s in &self.states {
            used[s.tensor] = true;
            used[s.next] = true;
            used[s.init] = true;
        }
        let mut map = vec![usize::MAX; self.tensors.len()];
        let mut kept = Vec::new();
        for (i, t) in std::mem::take(&mut self.tensors).into_iter().enumerate() {
            if used[i] {
                map[i] = kept.len();
                kept.push(t);
            }
        }
        self.tensors = kept;
        for n in &mut self.nodes {
            n.output = map[n.output];
            for i in n.inputs.iter_mut().flatten() {
                *i = map[*i];
            }
        }
        for i in self.inputs.iter_mut().chain(self.outputs.iter_mut()) {
            *i = map[*i];
        }
        for s in &mut self.states {
            s.tensor = map[s.tensor];
            s.next = map[s.next];
            s.init = map[s.init];
        }
    }
}
