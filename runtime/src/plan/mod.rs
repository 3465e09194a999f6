//! Planning: op order, kernel choice and preparation per op, and arena offsets for every
//! activation — computed once, before the first frame.

pub mod arena;
mod fuse;
pub mod kernel;
mod lower;

use std::collections::HashMap;
use std::ops::Range;

use outpost_hal::DType;
use outpost_kernels::Tier;
use outpost_models::Model;
use outpost_models::graph::Op;

use crate::error::{Result, RuntimeError};
pub use arena::ArenaPlan;
pub use kernel::{Elem, Kernel};

/// Alignment of every buffer in the arena (one cache line, the widest SIMD load).
pub const ARENA_ALIGN: usize = 64;

/// An activation buffer of the plan.
#[derive(Debug, Clone)]
pub struct Buffer {
    /// The activation's name (the first name, for reshape aliases).
    pub name: String,
    /// Element type.
    pub dtype: DType,
    /// Bytes.
    pub bytes: usize,
    /// Offset in the arena.
    pub offset: usize,
}

/// One step: a kernel reading some buffers and writing one.
#[derive(Debug, Clone)]
pub struct Step {
    /// The node it runs.
    pub node: String,
    /// The op's name.
    pub op: &'static str,
    /// Multiply-accumulates.
    pub macs: u64,
    /// The kernel.
    pub kernel: Kernel,
    /// Buffers read.
    pub inputs: Vec<usize>,
    /// Buffer written.
    pub output: usize,
}

/// Model state in the plan: the buffer read as the current state, the buffer holding the next
/// state when the run ends, and the initial bytes.
#[derive(Debug, Clone)]
pub struct StateSlot {
    /// Buffer the session fills with the state before the first step.
    pub current: usize,
    /// Buffer the session copies into the state after the last step.
    pub next: usize,
    /// The initial value (little-endian bytes, the buffer's size).
    pub init: Vec<u8>,
}

/// A model lowered onto the CPU kernels for one tier.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Steps in execution order.
    pub steps: Vec<Step>,
    /// Activation buffers.
    pub buffers: Vec<Buffer>,
    /// Buffer of each graph input, in graph order.
    pub inputs: Vec<usize>,
    /// Buffer of each graph output, in graph order.
    pub outputs: Vec<usize>,
    /// State carried across runs.
    pub states: Vec<StateSlot>,
    /// Activation shapes by buffer (the graph's declared shape of the buffer's first name).
    pub shapes: Vec<Vec<usize>>,
    /// Arena placement.
    pub arena: ArenaPlan,
    /// Largest scratch any step needs (one shared scratch buffer).
    pub scratch_bytes: usize,
    /// Kernel tier the weights were packed for.
    pub tier: Tier,
}

impl Plan {
    /// Lower `model` for `tier`. Fails, naming the node, if any op cannot run here.
    pub fn new(model: &Model, tier: Tier) -> Result<Plan> {
        let g = &model.meta().graph;
        // Buffers: one per activation, except that a reshape's output aliases its input.
        let mut buffer_of: HashMap<&str, usize> = HashMap::new();
        let mut buffers: Vec<Buffer> = Vec::new();
        let mut shapes: Vec<Vec<usize>> = Vec::new();
        let mut new_buffer = |t: &outpost_models::graph::TensorDecl, buffers: &mut Vec<Buffer>| {
            let bytes = t.shape.iter().product::<usize>() * t.dtype.size();
            buffers.push(Buffer {
                name: t.name.clone(),
                dtype: t.dtype,
                bytes,
                offset: 0,
            });
            shapes.push(t.shape.clone());
            buffers.len() - 1
        };
        let state_names = g.states.iter().map(|s| &s.tensor);
        for name in g.inputs.iter().chain(state_names) {
            let t = g.tensor(name).expect("validated input");
            let b = new_buffer(t, &mut buffers);
            buffer_of.insert(name, b);
        }
        let mut steps = Vec::with_capacity(g.nodes.len());
        for node in &g.nodes {
            let out_name = node.outputs[0].as_str();
            if let Op::Reshape(_) = node.op {
                let src = buffer_of[node.inputs[0].as_str()];
                buffer_of.insert(out_name, src);
                continue;
            }
            let out = new_buffer(g.tensor(out_name).expect("validated output"), &mut buffers);
            buffer_of.insert(out_name, out);
            let kernel = lower::lower(model, node, tier)?;
            let inputs = node
                .inputs
                .iter()
                .filter(|t| !t.is_empty() && g.tensor(t).is_some())
                .map(|t| buffer_of[t.as_str()])
                .collect();
            let macs = lower::macs(model, node);
            steps.push(Step {
                node: node.name.clone(),
                op: node.op.name(),
                macs,
                kernel,
                inputs,
                output: out,
            });
        }
        let inputs: Vec<usize> = g.inputs.iter().map(|t| buffer_of[t.as_str()]).collect();
        let outputs: Vec<usize> = g.outputs.iter().map(|t| buffer_of[t.as_str()]).collect();
        let keep: Vec<usize> = outputs
            .iter()
            .copied()
            .chain(g.states.iter().map(|st| buffer_of[st.next.as_str()]))
            .collect();
        fuse::pads_into_adds(&mut steps, &buffers, &keep);
        fuse::convs_into_adds(&mut steps, &buffers, &keep);
        let states = g
            .states
            .iter()
            .map(|st| {
                let current = buffer_of[st.tensor.as_str()];
                let init = model
                    .tensor(&st.init)
                    .map(|t| t.bytes().to_vec())
                    .unwrap_or_default();
                if init.len() != buffers[current].bytes {
                    return Err(RuntimeError::Unsupported {
                        node: st.tensor.clone(),
                        op: "state",
                        reason: format!(
                            "initial value has {} bytes, the state {}",
                            init.len(),
                            buffers[current].bytes
                        ),
                    });
                }
                Ok(StateSlot {
                    current,
                    next: buffer_of[st.next.as_str()],
                    init,
                })
            })
            .collect::<Result<Vec<_>>>()?;

        let scratch_bytes = steps
            .iter()
            .map(|s| s.kernel.scratch_bytes())
            .max()
            .unwrap_or(0);
        let mut plan = Plan {
            steps,
            buffers,
            inputs,
            outputs,
            states,
            shapes,
            arena: ArenaPlan::default(),
            scratch_bytes,
            tier,
        };
        plan.place(&[]);
        Ok(plan)
    }

    /// Places every buffer in the arena ([`arena::plan`]). Each run of steps in `chains`
    /// (steps whose slices one thread runs back to back, [`crate::chain`]) counts as one
    /// step: every buffer a step of the run reads or writes lives through the whole run, so
    /// none of them shares bytes with another.
    pub(crate) fn place(&mut self, chains: &[Range<usize>]) {
        let steps = &self.steps;
        // Lifetimes in step indices: born when written (inputs: 0), dead after the last read
        // (outputs: the end).
        let end = steps.len().saturating_sub(1);
        let mut first = vec![usize::MAX; self.buffers.len()];
        let mut last = vec![0usize; self.buffers.len()];
        for &b in self
            .inputs
            .iter()
            .chain(self.states.iter().map(|s| &s.current))
        {
            first[b] = 0;
        }
        for (i, s) in steps.iter().enumerate() {
            // The run of steps this one belongs to (itself when in none).
            let run = chains
                .iter()
                .find(|c| c.contains(&i))
                .map_or(i..i + 1, Clone::clone);
            first[s.output] = first[s.output].min(run.start);
            last[s.output] = last[s.output].max(run.end - 1);
            for &b in &s.inputs {
                last[b] = last[b].max(run.end - 1);
            }
        }
        for &b in self
            .outputs
            .iter()
            .chain(self.states.iter().map(|s| &s.next))
        {
            last[b] = end;
        }
        let intervals: Vec<arena::Interval> = self
            .buffers
            .iter()
            .enumerate()
            .map(|(i, b)| arena::Interval {
                // A buffer no step writes (a fused pad's output) takes no room.
                size: if first[i] == usize::MAX { 0 } else { b.bytes },
                first: first[i].min(last[i]),
                last: last[i],
            })
            .collect();
        self.arena = arena::plan(&intervals, ARENA_ALIGN);
        for ((b, &off), &born) in self.buffers.iter_mut().zip(&self.arena.offsets).zip(&first) {
            b.offset = off;
            if born == usize::MAX {
                // Never written (a fused pad's output): no bytes, so no view can reach past
                // the arena.
                b.bytes = 0;
            }
        }
    }

    /// Total multiply-accumulates per run.
    pub fn macs(&self) -> u64 {
        self.steps.iter().map(|s| s.macs).sum()
    }
}
