//! Graph clean-ups before writing: fold a standalone `relu`/`relu6` into the op that produces
//! its input, when that op has a fused-activation slot and nothing else reads the value.

use outpost_models::graph::{Activation, Op};

use crate::ir::Graph;

fn slot(op: &mut Op) -> Option<&mut Activation> {
    match op {
        Op::Conv2d(a) => Some(&mut a.activation),
        Op::DepthwiseConv2d(a) => Some(&mut a.activation),
        Op::FullyConnected(a) | Op::Mul(a) => Some(&mut a.activation),
        Op::Add(a) => Some(&mut a.activation),
        Op::MaxPool2d(a) | Op::AvgPool2d(a) => Some(&mut a.activation),
        _ => None,
    }
}

/// Fold activations into their producers; returns how many were folded.
pub fn fold_activations(g: &mut Graph) -> usize {
    let mut folded = 0;
    let mut i = 0;
    while i < g.nodes.len() {
        let act = match g.nodes[i].op {
            Op::Relu => Activation::Relu,
            Op::Relu6 => Activation::Relu6,
            _ => {
                i += 1;
                continue;
            }
        };
        let Some(Some(x)) = g.nodes[i].inputs.first().copied() else {
            i += 1;
            continue;
        };
        let sole = g.consumers(x).count() == 1
            && !g.outputs.contains(&x)
            && !g.states.iter().any(|s| s.next == x);
        let out = g.nodes[i].output;
        let fusable = g.producer(x).filter(|&p| {
            sole && slot(&mut g.nodes[p].op.clone()).is_some_and(|a| *a == Activation::None)
        });
        if let Some(p) = fusable {
            if let Some(a) = slot(&mut g.nodes[p].op) {
                *a = act;
            }
            g.nodes[p].output = out;
            g.nodes[p].name = g.nodes[i].name.clone();
            g.nodes.remove(i);
            folded += 1;
        } else {
            i += 1;
        }
    }
    g.prune();
    folded
}
