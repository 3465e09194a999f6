//! From calibrated ranges to per-tensor quantization, with shared quantization for tensors that
//! data-movement ops connect.

use outpost_models::graph::{Op, QuantParams};

use super::calibrate::Ranges;
use super::{RangeCap, params_for};
use crate::emit::is_float_activation;
use crate::ir::Graph;

fn find(p: &mut [usize], mut i: usize) -> usize {
    while p[i] != i {
        p[i] = p[p[i]];
        i = p[i];
    }
    i
}

fn shares_quant(op: &Op) -> bool {
    matches!(
        op,
        Op::Pad(_)
            | Op::MaxPool2d(_)
            | Op::AvgPool2d(_)
            | Op::Reshape(_)
            | Op::Resize(_)
            | Op::Transpose(_)
            | Op::Slice(_)
            | Op::Concat(_)
    )
}

/// Quantization for every float activation of `g` (`None` for the rest). `caps` set or bound
/// the range of a tensor and of every tensor sharing its quantization.
pub fn assign(g: &Graph, ranges: &Ranges, caps: &[RangeCap]) -> Vec<Option<QuantParams>> {
    let n = g.tensors.len();
    let mut parent: Vec<usize> = (0..n).collect();
    for node in &g.nodes {
        if !shares_quant(&node.op) {
            continue;
        }
        for i in node.inputs.iter().flatten() {
            if is_float_activation(g, *i) {
                let (a, b) = (find(&mut parent, *i), find(&mut parent, node.output));
                parent[a] = b;
            }
        }
    }
    let mut lo = vec![f32::INFINITY; n];
    let mut hi = vec![f32::NEG_INFINITY; n];
    for t in 0..n {
        if let Some((l, h)) = ranges.get(t) {
            let r = find(&mut parent, t);
            lo[r] = lo[r].min(l);
            hi[r] = hi[r].max(h);
        }
    }
    for c in caps {
        let r = find(&mut parent, c.tensor);
        if c.exact || !lo[r].is_finite() {
            (lo[r], hi[r]) = (c.lo, c.hi);
        } else {
            (lo[r], hi[r]) = (lo[r].max(c.lo), hi[r].min(c.hi));
        }
    }
    (0..n)
        .map(|t| {
            if !is_float_activation(g, t) {
                return None;
            }
            let r = find(&mut parent, t);
            let (l, h) = if lo[r].is_finite() {
                (lo[r], hi[r])
            } else {
                (0.0, 1.0)
            };
            Some(params_for(l, h))
        })
        .collect()
}
