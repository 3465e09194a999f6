//! TFLite import: the flatbuffer (read through `tract-tflite`'s generated schema) becomes the
//! converter's working graph. Constants keep their dtype (f16 stays f16, int8 keeps its scales
//! and zero points exactly); `DEQUANTIZE` of a constant is folded into the constant.

mod ops;
mod state;

use half::f16;
use outpost_hal::DType;
use outpost_models::graph::QuantParams;
use tract_tflite::tflite as fb;

use crate::error::{ConvertError, Result};
use crate::ir::{ConstData, Graph, Tensor};

/// Read a TFLite model (its first subgraph) into a working graph.
pub fn import(bytes: &[u8]) -> Result<Graph> {
    let model = fb::root_as_model(bytes).map_err(|e| ConvertError::CorruptTflite(e.to_string()))?;
    let sub = model
        .subgraphs()
        .and_then(|s| (!s.is_empty()).then(|| s.get(0)))
        .ok_or_else(|| ConvertError::CorruptTflite("no subgraph".into()))?;
    let mut g = Graph::default();
    read_tensors(&mut g, &model, &sub)?;
    let idx = |v: Option<flatbuffers::Vector<'_, i32>>| -> Result<Vec<usize>> {
        v.map(|v| v.iter().collect::<Vec<i32>>())
            .unwrap_or_default()
            .into_iter()
            .map(|i| {
                usize::try_from(i)
                    .ok()
                    .filter(|&i| i < g.tensors.len())
                    .ok_or_else(|| ConvertError::CorruptTflite(format!("tensor index {i}")))
            })
            .collect()
    };
    g.inputs = idx(sub.inputs())?;
    g.outputs = idx(sub.outputs())?;
    let codes = model
        .operator_codes()
        .ok_or_else(|| ConvertError::CorruptTflite("no operator codes".into()))?;
    let mut vars = state::Variables::default();
    let read_sub = |g: &mut Graph, s: &fb::SubGraph<'_>| read_tensors(g, &model, s);
    for (k, op) in sub.operators().into_iter().flatten().enumerate() {
        let code = codes
            .iter()
            .nth(op.opcode_index() as usize)
            .ok_or_else(|| {
                ConvertError::CorruptTflite(format!("operator {k}: bad opcode index"))
            })?;
        let builtin = fb::BuiltinOperator(
            code.builtin_code()
                .0
                .max(code.deprecated_builtin_code() as i32),
        );
        if state::is_state_op(builtin) {
            vars.map(&mut g, &model, k, builtin, &op, &read_sub)?;
        } else {
            ops::map(&mut g, k, builtin, code.custom_code(), &op)?;
        }
    }
    vars.finish(&mut g)?;
    g.prune();
    Ok(g)
}

/// Append the tensors of `sub` to `g`; returns their indices in `g`, in `sub`'s order.
/// Resource handles become empty placeholders (no node reads them; pruning drops them).
fn read_tensors(
    g: &mut Graph,
    model: &fb::Model<'_>,
    sub: &fb::SubGraph<'_>,
) -> Result<Vec<usize>> {
    let buffers = model.buffers();
    let fb_tensors = sub
        .tensors()
        .ok_or_else(|| ConvertError::CorruptTflite("subgraph has no tensors".into()))?;
    let mut map = Vec::with_capacity(fb_tensors.len());
    for (i, t) in fb_tensors.iter().enumerate() {
        let base = t.name().unwrap_or("").trim();
        let base = if base.is_empty() {
            format!("t{i}")
        } else {
            base.to_string()
        };
        let name = g.fresh_name(&base);
        let shape: Vec<usize> = match t.shape() {
            Some(s) => s
                .iter()
                .map(|d| {
                    usize::try_from(d).map_err(|_| ConvertError::UnsupportedTensor {
                        tensor: name.clone(),
                        reason: format!("dynamic or negative dimension {d}"),
                    })
                })
                .collect::<Result<_>>()?,
            None => vec![],
        };
        let data = buffers
            .and_then(|b| {
                let k = t.buffer() as usize;
                (k < b.len()).then(|| b.get(k))
            })
            .and_then(|b| b.data())
            .filter(|d| !d.is_empty())
            .map(|d| d.bytes());
        let n = shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .filter(|&n| n <= 1 << 31)
            .ok_or_else(|| ConvertError::UnsupportedTensor {
                tensor: name.clone(),
                reason: format!("shape {shape:?} is too large"),
            })?;
        let quant = t.quantization();
        let scales: Vec<f32> = quant
            .and_then(|q| q.scale())
            .map(|s| s.iter().collect())
            .unwrap_or_default();
        let zps: Vec<i32> = quant
            .and_then(|q| q.zero_point())
            .map(|z| z.iter().map(|v| v as i32).collect())
            .unwrap_or_default();
        let axis = quant.map(|q| q.quantized_dimension()).unwrap_or(0).max(0) as usize;
        let bad = |reason: String| ConvertError::UnsupportedTensor {
            tensor: name.clone(),
            reason,
        };
        let (dtype, cdata) = match t.type_() {
            fb::TensorType::FLOAT32 => (
                DType::F32,
                data.map(|d| read_le(d, n, 4))
                    .transpose()
                    .map_err(bad)?
                    .map(|b| ConstData::F32(bytemuck::pod_collect_to_vec(&b))),
            ),
            fb::TensorType::FLOAT16 => (
                DType::F32,
                data.map(|d| read_le(d, n, 2))
                    .transpose()
                    .map_err(bad)?
                    .map(|b| ConstData::F16(bytemuck::pod_collect_to_vec::<u8, f16>(&b))),
            ),
            fb::TensorType::INT32 => (
                DType::I32,
                data.map(|d| read_le(d, n, 4))
                    .transpose()
                    .map_err(bad)?
                    .map(|b| ConstData::I32(bytemuck::pod_collect_to_vec(&b))),
            ),
            fb::TensorType::INT8 => {
                let c = match data {
                    Some(d) => {
                        let b = read_le(d, n, 1).map_err(bad)?;
                        if scales.is_empty() {
                            return Err(bad("int8 constant without quantization".into()));
                        }
                        let zp = if zps.len() == scales.len() {
                            zps.clone()
                        } else {
                            vec![0; scales.len()]
                        };
                        Some(ConstData::I8 {
                            values: bytemuck::pod_collect_to_vec(&b),
                            scales: scales.clone(),
                            zero_points: zp,
                            axis,
                        })
                    }
                    None => None,
                };
                (DType::I8, c)
            }
            fb::TensorType::INT64 if data.is_some() => {
                let b = read_le(data.unwrap_or_default(), n, 8).map_err(bad)?;
                let v: Vec<i64> = bytemuck::pod_collect_to_vec(&b);
                let v = v
                    .into_iter()
                    .map(|x| {
                        i32::try_from(x)
                            .map_err(|_| bad(format!("int64 value {x} out of int32 range")))
                    })
                    .collect::<Result<Vec<i32>>>()?;
                (DType::I32, Some(ConstData::I32(v)))
            }
            fb::TensorType::UINT8 if data.is_none() => (DType::U8, None),
            fb::TensorType::RESOURCE if data.is_none() => (DType::I32, None),
            other => {
                return Err(bad(format!(
                    "TFLite type {} is not supported",
                    other.variant_name().unwrap_or("unknown")
                )));
            }
        };
        let quantized = dtype.is_quantized_int() && cdata.is_none();
        let quant = quantized
            .then(|| {
                (scales.len() == 1).then(|| QuantParams {
                    scale: scales[0],
                    zero_point: zps.first().copied().unwrap_or(0),
                })
            })
            .flatten();
        if quantized && quant.is_none() {
            return Err(bad(format!("{dtype} activation needs one scale")));
        }
        map.push(g.push_tensor(Tensor {
            name,
            shape,
            dtype,
            quant,
            data: cdata,
        }));
    }
    Ok(map)
}

fn read_le(d: &[u8], n: usize, size: usize) -> std::result::Result<Vec<u8>, String> {
    if Some(d.len()) != n.checked_mul(size) {
        return Err(format!(
            "buffer holds {} bytes, shape needs {}",
            d.len(),
            n.saturating_mul(size)
        ));
    }
    Ok(d.to_vec())
}
