//! ONNX import: the protobuf (read through `tract-onnx`'s generated `prost` schema) becomes the
//! converter's working graph.
//!
//! ONNX is NCHW; Outpost is NHWC. Every rank-4 activation is stored NHWC (its ONNX shape
//! `[n, c, h, w]` becomes `[n, h, w, c]`), convolution weights are transposed from OIHW to
//! Outpost's OHWI (depthwise: `[1, kh, kw, c]`), and channel axes of the ops that name one are
//! remapped. Outputs keep their ONNX names and come out NHWC. Batch is always 1; a model whose
//! input height and width are symbolic (or that must run at another size) takes them from
//! [`import`]'s `input_hw`. Float32 (and float16, widened) models only; the batch norms that
//! follow a convolution are folded into it. The supported ops are listed in `docs/models.md`.

mod attrs;
mod ops;

use std::collections::HashMap;

use half::f16;
use outpost_hal::DType;
use prost::Message;
use tract_onnx::pb;

use crate::error::{ConvertError, Result};
use crate::ir::{ConstData, Graph, Tensor};

/// A named ONNX value while importing.
#[derive(Debug, Clone)]
enum Value {
    /// An initializer or `Constant`: ONNX shape and data.
    Const { dims: Vec<usize>, data: ConstData },
    /// An activation of the working graph, with its ONNX (NCHW) shape.
    Act { tensor: usize, dims: Vec<usize> },
}

/// Largest input dimension accepted.
const MAX_DIM: i64 = 1 << 16;

/// Whether `bytes` decode as an ONNX model (a graph with at least one node).
pub fn looks_like_onnx(bytes: &[u8]) -> bool {
    pb::ModelProto::decode(bytes)
        .ok()
        .and_then(|m| m.graph)
        .is_some_and(|g| !g.node.is_empty())
}

/// Read an ONNX model into a working graph. `input_hw` (`[height, width]`) replaces the
/// spatial size of every rank-4 graph input; without it the declared sizes are used and a
/// symbolic one is an error.
pub fn import(bytes: &[u8], input_hw: Option<[usize; 2]>) -> Result<Graph> {
    if let Some(hw) = input_hw
        && hw.iter().any(|&v| v == 0 || v as i64 > MAX_DIM)
    {
        return Err(ConvertError::BadOptions(format!(
            "input size {}x{}: width and height must be 1..={MAX_DIM}",
            hw[1], hw[0]
        )));
    }
    let model =
        pb::ModelProto::decode(bytes).map_err(|e| ConvertError::CorruptOnnx(e.to_string()))?;
    let opset = model
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map(|o| o.version)
        .unwrap_or(1);
    let graph = model
        .graph
        .ok_or_else(|| ConvertError::CorruptOnnx("no graph".into()))?;
    let mut values: HashMap<String, Value> = HashMap::new();
    for t in &graph.initializer {
        let (dims, data) = tensor_data(t)?;
        values.insert(t.name.clone(), Value::Const { dims, data });
    }
    let mut g = Graph::default();
    for vi in &graph.input {
        if values.contains_key(&vi.name) {
            continue; // an initializer listed as an input (IR < 4)
        }
        let dims = input_dims(vi, input_hw)?;
        let shape = nhwc(&dims);
        let tensor = g.push_tensor(Tensor {
            name: g.fresh_name(&vi.name),
            shape,
            dtype: DType::F32,
            quant: None,
            data: None,
        });
        g.inputs.push(tensor);
        values.insert(vi.name.clone(), Value::Act { tensor, dims });
    }
    if g.inputs.is_empty() {
        return Err(ConvertError::CorruptOnnx("the graph has no input".into()));
    }
    let outputs: Vec<String> = graph.output.iter().map(|o| o.name.clone()).collect();
    ops::map_all(&mut g, &mut values, &graph.node, &outputs, opset)?;
    for name in &outputs {
        match values.get(name) {
            Some(Value::Act { tensor, .. }) => g.outputs.push(*tensor),
            Some(Value::Const { .. }) => {
                return Err(ConvertError::CorruptOnnx(format!(
                    "output {name} is a constant"
                )));
            }
            None => {
                return Err(ConvertError::CorruptOnnx(format!(
                    "no node produces the output {name}"
                )));
            }
        }
    }
    g.prune();
    Ok(g)
}

/// An ONNX shape as Outpost stores it: rank-4 NCHW becomes NHWC.
fn nhwc(dims: &[usize]) -> Vec<usize> {
    match dims {
        [n, c, h, w] => vec![*n, *h, *w, *c],
        _ => dims.to_vec(),
    }
}

/// The dims of a graph input: batch 1, spatial size from `input_hw` when given.
fn input_dims(vi: &pb::ValueInfoProto, input_hw: Option<[usize; 2]>) -> Result<Vec<usize>> {
    use pb::tensor_shape_proto::dimension::Value as D;
    let bad = |reason: String| ConvertError::UnsupportedTensor {
        tensor: vi.name.clone(),
        reason,
    };
    let Some(pb::type_proto::Value::TensorType(t)) =
        vi.r#type.as_ref().and_then(|t| t.value.clone())
    else {
        return Err(bad("the input is not a tensor".into()));
    };
    if t.elem_type != pb::tensor_proto::DataType::Float as i32 {
        return Err(bad(format!(
            "input type {} is not float32",
            type_name(t.elem_type)
        )));
    }
    let dims: Vec<Option<usize>> = t
        .shape
        .map(|s| s.dim)
        .unwrap_or_default()
        .iter()
        .map(|d| match &d.value {
            Some(D::DimValue(v)) if (1..=MAX_DIM).contains(v) => Some(*v as usize),
            _ => None,
        })
        .collect();
    let mut out = Vec::with_capacity(dims.len());
    for (i, d) in dims.iter().enumerate() {
        let v = match (i, dims.len(), input_hw) {
            (0, _, _) => 1,
            (2 | 3, 4, Some(hw)) => hw[i - 2],
            _ => d.ok_or_else(|| {
                bad(format!(
                    "dimension {i} is symbolic: give the input size (outpost convert --input-size WxH)"
                ))
            })?,
        };
        out.push(v);
    }
    if let Some(Some(n)) = dims.first()
        && *n != 1
    {
        log::info!(
            "input {}: batch {n} declared, importing with batch 1",
            vi.name
        );
    }
    Ok(out)
}

fn type_name(t: i32) -> String {
    pb::tensor_proto::DataType::from_i32(t)
        .map(|d| d.as_str_name().to_string())
        .unwrap_or_else(|| format!("#{t}"))
}

/// The dims and data of an initializer or `Constant` value.
fn tensor_data(t: &pb::TensorProto) -> Result<(Vec<usize>, ConstData)> {
    use pb::tensor_proto::DataType as T;
    let bad = |reason: String| ConvertError::UnsupportedTensor {
        tensor: t.name.clone(),
        reason,
    };
    if !t.external_data.is_empty() {
        return Err(bad(
            "weights in external data files are not supported; save the model with its \
             weights inside"
                .into(),
        ));
    }
    let dims = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| bad(format!("dimension {d}"))))
        .collect::<Result<Vec<usize>>>()?;
    let n = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&n| n <= 1 << 31)
        .ok_or_else(|| bad(format!("shape {dims:?} is too large")))?;
    let raw = |size: usize| -> Result<Option<&[u8]>> {
        if t.raw_data.is_empty() {
            return Ok(None);
        }
        if Some(t.raw_data.len()) != n.checked_mul(size) {
            return Err(bad(format!(
                "raw data holds {} bytes, shape {dims:?} needs {}",
                t.raw_data.len(),
                n * size
            )));
        }
        Ok(Some(&t.raw_data))
    };
    let count = |len: usize| -> Result<()> {
        if len != n {
            return Err(bad(format!("holds {len} values, shape {dims:?} needs {n}")));
        }
        Ok(())
    };
    let data = match T::from_i32(t.data_type) {
        Some(T::Float) => ConstData::F32(match raw(4)? {
            Some(b) => bytemuck::pod_collect_to_vec(b),
            None => {
                count(t.float_data.len())?;
                t.float_data.clone()
            }
        }),
        Some(T::Float16) => ConstData::F16(match raw(2)? {
            Some(b) => bytemuck::pod_collect_to_vec::<u8, f16>(b),
            None => {
                // float16 values travel in int32_data, one per element.
                count(t.int32_data.len())?;
                t.int32_data
                    .iter()
                    .map(|&v| f16::from_bits(v as u16))
                    .collect()
            }
        }),
        Some(T::Int64) => {
            let v: Vec<i64> = match raw(8)? {
                Some(b) => bytemuck::pod_collect_to_vec(b),
                None => {
                    count(t.int64_data.len())?;
                    t.int64_data.clone()
                }
            };
            ConstData::I32(
                v.into_iter()
                    .map(|x| {
                        // Shapes and indices: clamp the "to the end" sentinels into int32.
                        x.clamp(i32::MIN as i64, i32::MAX as i64) as i32
                    })
                    .collect(),
            )
        }
        Some(T::Int32) => ConstData::I32(match raw(4)? {
            Some(b) => bytemuck::pod_collect_to_vec(b),
            None => {
                count(t.int32_data.len())?;
                t.int32_data.clone()
            }
        }),
        _ => {
            return Err(bad(format!(
                "ONNX type {} is not supported",
                type_name(t.data_type)
            )));
        }
    };
    Ok((dims, data))
}
