//! `ModelBuilder`: writes Outpost models. Tests use it to make valid and deliberately broken
//! files; `outpost synth` and the converters use it to write real ones.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use half::f16;
use outpost_hal::DType;

use crate::error::{ModelError, Result};
use crate::graph::op::Op;
use crate::graph::{QuantParams, RawGraph, RawNode, TensorDecl, WeightQuant, shape};
use crate::meta::{FORMAT_VERSION, keys};
use crate::spec::{InputSpec, OutputSpec, Provenance};
use crate::tensor::dtype_to_safetensors;

/// Builds a model file. Nothing is validated until the file is loaded, so a builder can also
/// write broken models on purpose.
#[derive(Debug, Default, Clone)]
pub struct ModelBuilder {
    stored: Vec<(String, DType, Vec<usize>, Vec<u8>)>,
    graph: RawGraph,
    inputs: Vec<InputSpec>,
    outputs: Vec<OutputSpec>,
    labels: Vec<String>,
    provenance: Option<Provenance>,
    name: Option<String>,
    version: Option<String>,
    overrides: BTreeMap<String, Option<String>>,
}

fn bytes_of<T: bytemuck::NoUninit>(v: &[T]) -> Vec<u8> {
    bytemuck::cast_slice(v).to_vec()
}

impl ModelBuilder {
    /// An empty model.
    pub fn new() -> Self {
        Self::default()
    }

    /// Store a tensor from raw little-endian bytes.
    pub fn stored(
        &mut self,
        name: &str,
        dtype: DType,
        shape: &[usize],
        bytes: Vec<u8>,
    ) -> &mut Self {
        self.stored
            .push((name.to_string(), dtype, shape.to_vec(), bytes));
        self
    }

    /// Store an `I8` tensor.
    pub fn const_i8(&mut self, name: &str, shape: &[usize], v: &[i8]) -> &mut Self {
        self.stored(name, DType::I8, shape, bytes_of(v))
    }

    /// Store a `U8` tensor.
    pub fn const_u8(&mut self, name: &str, shape: &[usize], v: &[u8]) -> &mut Self {
        self.stored(name, DType::U8, shape, v.to_vec())
    }

    /// Store an `I32` tensor.
    pub fn const_i32(&mut self, name: &str, shape: &[usize], v: &[i32]) -> &mut Self {
        self.stored(name, DType::I32, shape, bytes_of(v))
    }

    /// Store an `F32` tensor.
    pub fn const_f32(&mut self, name: &str, shape: &[usize], v: &[f32]) -> &mut Self {
        self.stored(name, DType::F32, shape, bytes_of(v))
    }

    /// Store an `F16` tensor.
    pub fn const_f16(&mut self, name: &str, shape: &[usize], v: &[f16]) -> &mut Self {
        self.stored(name, DType::F16, shape, bytes_of(v))
    }

    /// Store an `I8` weight with its per-channel scales (`<name>.scale`) and register its
    /// quantization along `axis`.
    pub fn quantized_weight(
        &mut self,
        name: &str,
        shape: &[usize],
        v: &[i8],
        scales: &[f32],
        axis: usize,
    ) -> &mut Self {
        let scale = format!("{name}.scale");
        self.const_i8(name, shape, v);
        self.const_f32(&scale, &[scales.len()], scales);
        self.graph.weights.push(WeightQuant {
            tensor: name.to_string(),
            scale,
            zero_point: None,
            axis,
        });
        self
    }

    /// Declare model state: activation `tensor` starts each run with the value `next` ended the
    /// previous one with (stored constant `init` at first).
    pub fn state(&mut self, tensor: &str, next: &str, init: &str) -> &mut Self {
        self.graph.states.push(crate::graph::StateDecl {
            tensor: tensor.to_string(),
            next: next.to_string(),
            init: init.to_string(),
        });
        self
    }

    /// Register the quantization of an already stored tensor.
    pub fn weight_quant(&mut self, w: WeightQuant) -> &mut Self {
        self.graph.weights.push(w);
        self
    }

    /// Declare an activation.
    pub fn activation(
        &mut self,
        name: &str,
        shape: &[usize],
        dtype: DType,
        quant: Option<QuantParams>,
    ) -> &mut Self {
        self.graph.tensors.push(TensorDecl {
            name: name.to_string(),
            shape: shape.to_vec(),
            dtype,
            quant,
        });
        self
    }

    /// Declare an activation and make it a graph input.
    pub fn input(
        &mut self,
        name: &str,
        shape: &[usize],
        dtype: DType,
        quant: Option<QuantParams>,
    ) -> &mut Self {
        self.activation(name, shape, dtype, quant);
        self.graph.inputs.push(name.to_string());
        self
    }

    /// Make an activation a graph output.
    pub fn output(&mut self, name: &str) -> &mut Self {
        self.graph.outputs.push(name.to_string());
        self
    }

    /// Add a node whose output is declared separately.
    pub fn node(&mut self, name: &str, op: Op, inputs: &[&str], output: &str) -> &mut Self {
        self.graph.nodes.push(RawNode {
            name: name.to_string(),
            op: op.name().to_string(),
            inputs: inputs.iter().map(|s| s.to_string()).collect(),
            outputs: vec![output.to_string()],
            attrs: op.attrs_json(),
        });
        self
    }

    /// Add a node and declare its output with the shape the op infers from its inputs.
    /// Returns that shape.
    pub fn node_inferred(
        &mut self,
        name: &str,
        op: Op,
        inputs: &[&str],
        output: &str,
        dtype: DType,
        quant: Option<QuantParams>,
    ) -> Result<Vec<usize>> {
        let shapes: Vec<Option<Vec<usize>>> = inputs.iter().map(|t| self.shape_of(t)).collect();
        let refs: Vec<Option<&[usize]>> = shapes.iter().map(|s| s.as_deref()).collect();
        let out = shape::infer(&op, &refs).map_err(|reason| ModelError::BadNode {
            node: name.to_string(),
            reason,
        })?;
        self.activation(output, &out, dtype, quant);
        self.node(name, op, inputs, output);
        Ok(out)
    }

    /// The shape of a declared activation or stored tensor.
    pub fn shape_of(&self, name: &str) -> Option<Vec<usize>> {
        self.graph
            .tensors
            .iter()
            .find(|t| t.name == name)
            .map(|t| t.shape.clone())
            .or_else(|| {
                self.stored
                    .iter()
                    .find(|s| s.0 == name)
                    .map(|s| s.2.clone())
            })
    }

    /// Describe a graph input.
    pub fn input_spec(&mut self, s: InputSpec) -> &mut Self {
        self.inputs.push(s);
        self
    }

    /// Describe graph outputs.
    pub fn output_spec(&mut self, s: OutputSpec) -> &mut Self {
        self.outputs.push(s);
        self
    }

    /// Class labels.
    pub fn labels(&mut self, labels: &[&str]) -> &mut Self {
        self.labels = labels.iter().map(|s| s.to_string()).collect();
        self
    }

    /// Provenance.
    pub fn provenance(&mut self, p: Provenance) -> &mut Self {
        self.provenance = Some(p);
        self
    }

    /// Model name and version.
    pub fn name_version(&mut self, name: &str, version: &str) -> &mut Self {
        self.name = Some(name.to_string());
        self.version = Some(version.to_string());
        self
    }

    /// Replace a metadata value verbatim (to write broken files in tests, or extra keys).
    pub fn set_meta(&mut self, key: &str, value: &str) -> &mut Self {
        self.overrides
            .insert(key.to_string(), Some(value.to_string()));
        self
    }

    /// Leave a metadata key out.
    pub fn remove_meta(&mut self, key: &str) -> &mut Self {
        self.overrides.insert(key.to_string(), None);
        self
    }

    /// Mutable access to the graph being built.
    pub fn graph_mut(&mut self) -> &mut RawGraph {
        &mut self.graph
    }

    /// The metadata map as it will be written.
    pub fn metadata(&self) -> Result<HashMap<String, String>> {
        let json = |v: serde_json::Result<String>| v.map_err(|e| ModelError::Write(e.to_string()));
        let mut m = HashMap::new();
        m.insert(keys::FORMAT.to_string(), FORMAT_VERSION.to_string());
        m.insert(
            keys::GRAPH.to_string(),
            json(serde_json::to_string(&self.graph))?,
        );
        m.insert(
            keys::INPUTS.to_string(),
            json(serde_json::to_string(&self.inputs))?,
        );
        m.insert(
            keys::OUTPUTS.to_string(),
            json(serde_json::to_string(&self.outputs))?,
        );
        if !self.labels.is_empty() {
            m.insert(
                keys::LABELS.to_string(),
                json(serde_json::to_string(&self.labels))?,
            );
        }
        if let Some(p) = &self.provenance {
            m.insert(
                keys::PROVENANCE.to_string(),
                json(serde_json::to_string(p))?,
            );
        }
        if let Some(n) = &self.name {
            m.insert(keys::NAME.to_string(), n.clone());
        }
        if let Some(v) = &self.version {
            m.insert(keys::VERSION.to_string(), v.clone());
        }
        for (k, v) in &self.overrides {
            match v {
                Some(v) => m.insert(k.clone(), v.clone()),
                None => m.remove(k),
            };
        }
        Ok(m)
    }

    /// Serialize to safetensors bytes.
    pub fn build(&self) -> Result<Vec<u8>> {
        let mut views = Vec::with_capacity(self.stored.len());
        for (name, dtype, shape, bytes) in &self.stored {
            let view = safetensors::tensor::TensorView::new(
                dtype_to_safetensors(*dtype),
                shape.clone(),
                bytes,
            )
            .map_err(|e| ModelError::Write(format!("tensor `{name}`: {e}")))?;
            views.push((name.clone(), view));
        }
        safetensors::serialize(views, Some(self.metadata()?))
            .map_err(|e| ModelError::Write(e.to_string()))
    }

    /// Serialize and write atomically (temporary file + rename) so a reader never sees half a model.
    pub fn write(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let bytes = self.build()?;
        let tmp = path.with_extension("safetensors.partial");
        let io = |source| ModelError::Io {
            path: path.display().to_string(),
            source,
        };
        std::fs::write(&tmp, &bytes).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }
}
