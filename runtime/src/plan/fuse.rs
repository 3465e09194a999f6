//! Plan-level fusion: a step whose output only one other step reads is folded into that
//! step, which then reads the first step's input directly, saving a pass over memory.
//!
//! - **Channel pad into an int16 add.** An int8 pad that only appends channels (residual
//!   blocks that widen: 24 → 28 channels in BlazeFace), read by nothing but an add with 16-bit
//!   multipliers, becomes that add's channel-padded operand ([`ChannelPadded`]): the add reads
//!   the pad's input and takes the pad's value for the missing channels. Bit-exact with the
//!   two steps (the kernel tests compare it with the explicit pad and add).

use outpost_kernels::ChannelPadded;

use super::{Buffer, Elem, Kernel, Step};

/// Folds every eligible pad into the add that reads it; `keep` lists buffers that must be
/// written anyway (graph outputs, next states). Returns how many pads were folded.
pub(super) fn pads_into_adds(steps: &mut Vec<Step>, buffers: &[Buffer], keep: &[usize]) -> usize {
    let mut readers = vec![0usize; buffers.len()];
    let mut producer = vec![None; buffers.len()];
    for (i, s) in steps.iter().enumerate() {
        producer[s.output] = Some(i);
        for &b in &s.inputs {
            readers[b] += 1;
        }
    }
    let mut folded = vec![false; steps.len()];
    for i in 0..steps.len() {
        let Kernel::Add16I8(q) = steps[i].kernel else {
            continue;
        };
        if steps[i].inputs.len() != 2 {
            continue;
        }
        for k in 0..2 {
            let padded = steps[i].inputs[k];
            let other = steps[i].inputs[1 - k];
            let Some(j) = producer[padded] else {
                continue;
            };
            let Kernel::Pad {
                shape,
                pads,
                value,
                elem: Elem::I8,
            } = steps[j].kernel
            else {
                continue;
            };
            let only_appends_channels = pads[..3].iter().all(|&p| p == (0, 0)) && pads[3].0 == 0;
            let alone = readers[padded] == 1 && !keep.contains(&padded) && !folded[j];
            let same_size = buffers[other].bytes == buffers[steps[i].output].bytes
                && buffers[padded].bytes == buffers[other].bytes;
            if !(only_appends_channels && alone && same_size && shape[3] > 0) {
                continue;
            }
            let pad = ChannelPadded {
                channels: shape[3] + pads[3].1,
                b_channels: shape[3],
                fill: value as i8,
            };
            // The kernel pads its second operand: exchange the operands if the pad is first.
            let q = if k == 0 { q.swapped() } else { q };
            log::debug!(
                "plan: pad {} folded into add {}",
                steps[j].node,
                steps[i].node
            );
            steps[i].kernel = Kernel::Add16I8Padded(q, pad);
            steps[i].inputs = vec![other, steps[j].inputs[0]];
            folded[j] = true;
            break;
        }
    }
    let count = folded.iter().filter(|&&f| f).count();
    let mut f = folded.into_iter();
    steps.retain(|_| !f.next().unwrap_or(false));
    count
}
