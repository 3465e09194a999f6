//! TFLite resource variables (`VAR_HANDLE`, `READ_VARIABLE`, `ASSIGN_VARIABLE`) and the
//! `CALL_ONCE` init subgraph that gives them their first value, mapped onto model state.
//!
//! Each variable becomes one [`State`]: the first `READ_VARIABLE` of a run is the state's
//! current value (later reads before the assignment alias it), the `ASSIGN_VARIABLE` value is
//! the state for the next run, and the constant assigned in the init subgraph is the initial
//! value. This matches TFLite's execution order as long as a variable is assigned at most once
//! per run and never read after its assignment; anything else is refused naming the node.

use std::collections::HashMap;

use outpost_models::graph::Op;
use outpost_models::graph::op::ReshapeAttrs;
use tract_tflite::tflite as fb;

use crate::error::{ConvertError, Result};
use crate::ir::{ConstData, Graph, Node, State};

/// One variable while the main subgraph is read.
#[derive(Debug, Default)]
struct Var {
    current: Option<usize>,
    next: Option<usize>,
    init: Option<usize>,
}

/// The variables of a model, keyed by their shared name.
#[derive(Debug, Default)]
pub(super) struct Variables {
    /// Resource tensor (index in the working graph) → shared name.
    handles: HashMap<usize, String>,
    vars: Vec<(String, Var)>,
}

/// Whether `code` is handled here.
pub(super) fn is_state_op(code: fb::BuiltinOperator) -> bool {
    use fb::BuiltinOperator as B;
    matches!(
        code,
        B::VAR_HANDLE | B::READ_VARIABLE | B::ASSIGN_VARIABLE | B::CALL_ONCE
    )
}

fn op_error(code: fb::BuiltinOperator, node: String, reason: impl Into<String>) -> ConvertError {
    ConvertError::UnsupportedOp {
        op: code.variant_name().unwrap_or("unknown").to_string(),
        node,
        reason: reason.into(),
    }
}

fn indices(v: Option<flatbuffers::Vector<'_, i32>>, map: &[usize]) -> Result<Vec<usize>> {
    v.map(|v| v.iter().collect::<Vec<i32>>())
        .unwrap_or_default()
        .into_iter()
        .map(|i| {
            usize::try_from(i)
                .ok()
                .and_then(|i| map.get(i).copied())
                .ok_or_else(|| ConvertError::CorruptTflite(format!("tensor index {i}")))
        })
        .collect()
}

impl Variables {
    fn var_mut(&mut self, name: &str) -> &mut Var {
        if let Some(i) = self.vars.iter().position(|(n, _)| n == name) {
            return &mut self.vars[i].1;
        }
        self.vars.push((name.to_string(), Var::default()));
        &mut self.vars.last_mut().expect("just pushed").1
    }

    fn handle(&self, code: fb::BuiltinOperator, node: &str, t: Option<&usize>) -> Result<String> {
        t.and_then(|t| self.handles.get(t))
            .cloned()
            .ok_or_else(|| op_error(code, node.to_string(), "its resource is not a VAR_HANDLE"))
    }

    fn var_handle(&mut self, op: &fb::Operator<'_>, outs: &[usize], node: &str) -> Result<()> {
        let code = fb::BuiltinOperator::VAR_HANDLE;
        let o = op
            .builtin_options_as_var_handle_options()
            .ok_or_else(|| op_error(code, node.to_string(), "options are missing"))?;
        let name = format!(
            "{}/{}",
            o.container().unwrap_or(""),
            o.shared_name().unwrap_or("")
        );
        let [out] = outs else {
            return Err(op_error(code, node.to_string(), "needs one output"));
        };
        self.handles.insert(*out, name);
        Ok(())
    }

    /// Map one stateful operator `k` of the main subgraph. `read_subgraph` imports another
    /// subgraph's tensors into `g` and returns their indices there.
    pub(super) fn map(
        &mut self,
        g: &mut Graph,
        model: &fb::Model<'_>,
        k: usize,
        code: fb::BuiltinOperator,
        op: &fb::Operator<'_>,
        read_subgraph: &dyn Fn(&mut Graph, &fb::SubGraph<'_>) -> Result<Vec<usize>>,
    ) -> Result<()> {
        use fb::BuiltinOperator as B;
        let identity: Vec<usize> = (0..g.tensors.len()).collect();
        let ins = indices(op.inputs(), &identity)?;
        let outs = indices(op.outputs(), &identity)?;
        let node = format!("#{k}");
        match code {
            B::VAR_HANDLE => self.var_handle(op, &outs, &node),
            B::CALL_ONCE => {
                let o = op
                    .builtin_options_as_call_once_options()
                    .ok_or_else(|| op_error(code, node.clone(), "options are missing"))?;
                self.init_subgraph(g, model, o.init_subgraph_index(), read_subgraph)
            }
            B::READ_VARIABLE => {
                let name = self.handle(code, &node, ins.first())?;
                let &[out] = outs.as_slice() else {
                    return Err(op_error(code, node, "needs one output"));
                };
                let node = g.tensors[out].name.clone();
                let var = self.var_mut(&name);
                if var.next.is_some() {
                    return Err(op_error(
                        code,
                        node,
                        format!("variable {name} is read after its assignment in the same run"),
                    ));
                }
                match var.current {
                    None => var.current = Some(out),
                    Some(first) => {
                        let shape = g.tensors[out].shape.iter().map(|&d| d as i64).collect();
                        g.nodes.push(Node {
                            name: node,
                            op: Op::Reshape(ReshapeAttrs { shape }),
                            inputs: vec![Some(first)],
                            output: out,
                        });
                    }
                }
                Ok(())
            }
            B::ASSIGN_VARIABLE => {
                let name = self.handle(code, &node, ins.first())?;
                let value = *ins
                    .get(1)
                    .ok_or_else(|| op_error(code, node.clone(), "value input is missing"))?;
                let node = format!("#{k} (assign {name})");
                if g.tensors[value].is_const() {
                    return Err(op_error(
                        code,
                        node,
                        "assigning a constant in the main graph",
                    ));
                }
                let var = self.var_mut(&name);
                if var.next.replace(value).is_some() {
                    return Err(op_error(code, node, "variable assigned twice in one run"));
                }
                Ok(())
            }
            _ => Err(op_error(code, node, "not a state op")),
        }
    }

    fn init_subgraph(
        &mut self,
        g: &mut Graph,
        model: &fb::Model<'_>,
        index: i32,
        read_subgraph: &dyn Fn(&mut Graph, &fb::SubGraph<'_>) -> Result<Vec<usize>>,
    ) -> Result<()> {
        let sub = model
            .subgraphs()
            .zip(usize::try_from(index).ok())
            .filter(|(s, i)| *i > 0 && *i < s.len())
            .map(|(s, i)| s.get(i))
            .ok_or_else(|| ConvertError::CorruptTflite(format!("CALL_ONCE subgraph {index}")))?;
        let map = read_subgraph(g, &sub)?;
        let codes = model
            .operator_codes()
            .ok_or_else(|| ConvertError::CorruptTflite("no operator codes".into()))?;
        let mut local = Variables::default();
        for (k, op) in sub.operators().into_iter().flatten().enumerate() {
            let code = codes
                .iter()
                .nth(op.opcode_index() as usize)
                .map(|c| {
                    fb::BuiltinOperator(c.builtin_code().0.max(c.deprecated_builtin_code() as i32))
                })
                .ok_or_else(|| ConvertError::CorruptTflite(format!("init operator {k}")))?;
            let ins = indices(op.inputs(), &map)?;
            let outs = indices(op.outputs(), &map)?;
            let node = format!("init subgraph {index} #{k}");
            match code {
                fb::BuiltinOperator::VAR_HANDLE => local.var_handle(&op, &outs, &node)?,
                fb::BuiltinOperator::ASSIGN_VARIABLE => {
                    let name = local.handle(code, &node, ins.first())?;
                    let value = *ins
                        .get(1)
                        .ok_or_else(|| op_error(code, node.clone(), "value input is missing"))?;
                    if !g.tensors[value].is_const() {
                        return Err(op_error(code, node, "initial values must be constants"));
                    }
                    self.var_mut(&name).init = Some(value);
                }
                other => {
                    return Err(op_error(
                        other,
                        node,
                        "only VAR_HANDLE and ASSIGN_VARIABLE may initialise variables",
                    ));
                }
            }
        }
        Ok(())
    }

    /// Turn the variables into graph state once every operator is mapped.
    pub(super) fn finish(self, g: &mut Graph) -> Result<()> {
        for (name, var) in self.vars {
            let bad = |reason: String| ConvertError::UnsupportedTensor {
                tensor: name.clone(),
                reason,
            };
            let Some(tensor) = var.current else {
                // Written but never read: it cannot affect any output.
                log::info!("variable {name} is never read; dropped");
                continue;
            };
            let next = var
                .next
                .ok_or_else(|| bad("read but never assigned (a constant variable)".into()))?;
            let init = var
                .init
                .ok_or_else(|| bad("no initial value (no CALL_ONCE assignment)".into()))?;
            let (t, n, i) = (&g.tensors[tensor], &g.tensors[next], &g.tensors[init]);
            if t.shape != n.shape || t.dtype != n.dtype || t.quant != n.quant {
                return Err(bad(format!(
                    "assigned `{}` differs from the read value in shape, dtype or quantization",
                    n.name
                )));
            }
            let count: usize = t.shape.iter().product();
            let init_ok = match (&i.data, t.quant) {
                (
                    Some(ConstData::I8 {
                        values,
                        scales,
                        zero_points,
                        ..
                    }),
                    Some(q),
                ) => {
                    values.len() == count
                        && scales.iter().all(|&s| s == q.scale)
                        && zero_points.iter().all(|&z| z == q.zero_point)
                }
                (Some(ConstData::F32(v)), None) => v.len() == count,
                _ => false,
            };
            if !init_ok {
                return Err(bad(format!(
                    "initial value `{}` does not match the variable's dtype, size or quantization",
                    i.name
                )));
            }
            g.states.push(State { tensor, next, init });
        }
        Ok(())
    }
}
