//! The working graph written as an Outpost model file (quantized safetensors).

use outpost_hal::DType;
use outpost_models::ModelBuilder;
use outpost_models::graph::WeightQuant;
use outpost_models::spec::{InputSpec, OutputSpec, Provenance};

use crate::error::Result;
use crate::ir::{ConstData, Graph};

/// What the file says about itself besides the graph.
#[derive(Debug, Clone, Default)]
pub struct Specs {
    /// Input specs, one per graph input.
    pub inputs: Vec<InputSpec>,
    /// Output specs.
    pub outputs: Vec<OutputSpec>,
    /// Short model name.
    pub name: Option<String>,
    /// Provenance.
    pub provenance: Option<Provenance>,
    /// Class labels.
    pub labels: Vec<String>,
}

/// Write `g` with `specs` into a model builder.
pub fn builder(g: &Graph, specs: &Specs) -> ModelBuilder {
    let mut b = ModelBuilder::new();
    for (i, t) in g.tensors.iter().enumerate() {
        match &t.data {
            Some(ConstData::F32(v)) => {
                b.const_f32(&t.name, &t.shape, v);
            }
            Some(ConstData::F16(v)) => {
                b.const_f16(&t.name, &t.shape, v);
            }
            Some(ConstData::I32(v)) => {
                b.const_i32(&t.name, &t.shape, v);
            }
            Some(ConstData::I8 {
                values,
                scales,
                zero_points,
                axis,
            }) => {
                let scale = format!("{}.scale", t.name);
                b.const_i8(&t.name, &t.shape, values);
                b.const_f32(&scale, &[scales.len()], scales);
                let zero_point = zero_points.iter().any(|&z| z != 0).then(|| {
                    let zp = format!("{}.zero_point", t.name);
                    b.const_i32(&zp, &[zero_points.len()], zero_points);
                    zp
                });
                b.weight_quant(WeightQuant {
                    tensor: t.name.clone(),
                    scale,
                    zero_point,
                    axis: *axis,
                });
            }
            None if g.inputs.contains(&i) => {
                b.input(&t.name, &t.shape, t.dtype, t.quant);
            }
            None => {
                b.activation(&t.name, &t.shape, t.dtype, t.quant);
            }
        }
    }
    for n in &g.nodes {
        let ins: Vec<&str> = n
            .inputs
            .iter()
            .map(|i| i.map(|i| g.tensors[i].name.as_str()).unwrap_or(""))
            .collect();
        b.node(&n.name, n.op.clone(), &ins, &g.tensors[n.output].name);
    }
    for &o in &g.outputs {
        b.output(&g.tensors[o].name);
    }
    for s in &g.states {
        let name = |i: usize| g.tensors[i].name.as_str();
        b.state(name(s.tensor), name(s.next), name(s.init));
    }
    for s in &specs.inputs {
        b.input_spec(s.clone());
    }
    for s in &specs.outputs {
        b.output_spec(s.clone());
    }
    if !specs.labels.is_empty() {
        let l: Vec<&str> = specs.labels.iter().map(String::as_str).collect();
        b.labels(&l);
    }
    if let Some(p) = &specs.provenance {
        b.provenance(p.clone());
    }
    if let Some(n) = &specs.name {
        b.set_meta(outpost_models::meta::keys::NAME, n);
    }
    b
}

/// Serialize `g` to model bytes.
pub fn emit(g: &Graph, specs: &Specs) -> Result<Vec<u8>> {
    Ok(builder(g, specs).build()?)
}

/// Whether a tensor is a float activation (candidate for quantization).
pub fn is_float_activation(g: &Graph, t: usize) -> bool {
    g.tensors[t].data.is_none() && g.tensors[t].dtype == DType::F32
}
