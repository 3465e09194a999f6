//! Plan-level fusion: a step whose output only one other step reads is folded into that
//! step, which then reads the first step's input directly, saving a pass over memory.
//!
//! - **Channel pad into an int16 add.** An int8 pad that only appends channels (residual
//!   blocks that widen: 24 → 28 channels in BlazeFace), read by nothing but an add with 16-bit
//!   multipliers, becomes that add's channel-padded operand ([`ChannelPadded`]): the add reads
//!   the pad's input and takes the pad's value for the missing channels. Bit-exact with the
//!   two steps (the kernel tests compare it with the explicit pad and add). The same for an
//!   f32 pad read by nothing but an f32 add.
//! - **Convolution into an int16 add.** A convolution read by nothing but an int16 add (a
//!   residual block's projection and its skip connection), where the kernels add in the
//!   convolution's own pass ([`outpost_kernels::PackedConv::fuses_add`]: AVX-512 VNNI, pointwise, more than 32
//!   output channels), becomes one
//!   step that reads the convolution's input and the add's other operand: the convolution's
//!   output is never written out and read back. Runs after the pad fusion, so the add's other
//!   operand may be channel-padded. Bit-exact with the two steps.
//! - **F32 convolution into an f32 add.** The same for an f32 convolution read by nothing but
//!   an f32 add (plain, or with its pad folded in), whatever its shape: the SIMD tiers add
//!   each tile's pixels right after storing them
//!   ([`outpost_kernels::KernelTable::conv2d_add_f32`]), so the convolution's output is not
//!   written out and read back by a separate step. Bit-exact with the two steps.

use outpost_kernels::ChannelPadded;

use super::{Buffer, Elem, Kernel, Step};

/// Which step writes each buffer, and how many step inputs read it.
fn producers_and_readers(steps: &[Step], buffers: usize) -> (Vec<Option<usize>>, Vec<usize>) {
    let mut readers = vec![0usize; buffers];
    let mut producer = vec![None; buffers];
    for (i, s) in steps.iter().enumerate() {
        producer[s.output] = Some(i);
        for &b in &s.inputs {
            readers[b] += 1;
        }
    }
    (producer, readers)
}

/// Folds every eligible pad into the add that reads it; `keep` lists buffers that must be
/// written anyway (graph outputs, next states). Returns how many pads were folded.
pub(super) fn pads_into_adds(steps: &mut Vec<Step>, buffers: &[Buffer], keep: &[usize]) -> usize {
    let (producer, readers) = producers_and_readers(steps, buffers.len());
    let mut folded = vec![false; steps.len()];
    for i in 0..steps.len() {
        // The int16 add's quantization, or the f32 add's clamp range.
        let (add, elem) = match steps[i].kernel {
            Kernel::Add16I8(q) => (Ok(q), Elem::I8),
            Kernel::AddF32(act) => (Err(act), Elem::F32),
            _ => continue,
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
                elem: pad_elem,
            } = steps[j].kernel
            else {
                continue;
            };
            let only_appends_channels = pads[..3].iter().all(|&p| p == (0, 0)) && pads[3].0 == 0;
            let alone = readers[padded] == 1 && !keep.contains(&padded) && !folded[j];
            let same_size = buffers[other].bytes == buffers[steps[i].output].bytes
                && buffers[padded].bytes == buffers[other].bytes;
            if !(pad_elem == elem && only_appends_channels && alone && same_size && shape[3] > 0) {
                continue;
            }
            let (channels, b_channels) = (shape[3] + pads[3].1, shape[3]);
            log::debug!(
                "plan: pad {} folded into add {}",
                steps[j].node,
                steps[i].node
            );
            steps[i].kernel = match add {
                // The kernel pads its second operand: exchange the operands if the pad is
                // first (the int16 add's multipliers with them; f32 addition commutes).
                Ok(q) => Kernel::Add16I8Padded(
                    if k == 0 { q.swapped() } else { q },
                    ChannelPadded {
                        channels,
                        b_channels,
                        fill: value as i8,
                    },
                ),
                Err(act) => Kernel::AddF32Padded {
                    act,
                    pad: ChannelPadded {
                        channels,
                        b_channels,
                        fill: f32::from_bits(value as u32),
                    },
                },
            };
            steps[i].inputs = vec![other, steps[j].inputs[0]];
            folded[j] = true;
            break;
        }
    }
    remove(steps, folded)
}

/// Removes the steps marked `folded`; returns how many.
fn remove(steps: &mut Vec<Step>, folded: Vec<bool>) -> usize {
    let count = folded.iter().filter(|&&f| f).count();
    let mut f = folded.into_iter();
    steps.retain(|_| !f.next().unwrap_or(false));
    count
}

/// The add a convolution may fold into: int16 (its quantization) or f32 (its clamp range),
/// and the second operand's channel padding where it has one.
#[derive(Clone, Copy)]
enum AddKind {
    I8(outpost_kernels::Add16Quant, Option<ChannelPadded>),
    F32((f32, f32), Option<ChannelPadded<f32>>),
}

/// Folds every int8 convolution that [`outpost_kernels::PackedConv::fuses_add`] into the
/// int16 add (plain or with a channel-padded second operand) that alone reads it, and every
/// f32 convolution into the f32 add that alone reads it; `keep` as in [`pads_into_adds`].
/// Returns how many convolutions were folded.
pub(super) fn convs_into_adds(steps: &mut Vec<Step>, buffers: &[Buffer], keep: &[usize]) -> usize {
    let (producer, readers) = producers_and_readers(steps, buffers.len());
    let mut folded = vec![false; steps.len()];
    for i in 0..steps.len() {
        // The operands the convolution may be: the plain add's either one (the add is
        // re-oriented so the convolution comes first), the padded add's first only.
        let (add, operands) = match steps[i].kernel {
            Kernel::Add16I8(q) => (AddKind::I8(q, None), 0..2),
            Kernel::Add16I8Padded(q, pad) => (AddKind::I8(q, Some(pad)), 0..1),
            Kernel::AddF32(act) => (AddKind::F32(act, None), 0..2),
            Kernel::AddF32Padded { act, pad } => (AddKind::F32(act, Some(pad)), 0..1),
            _ => continue,
        };
        if steps[i].inputs.len() != 2 {
            continue;
        }
        for k in operands {
            let conv_out = steps[i].inputs[k];
            let other = steps[i].inputs[1 - k];
            let Some(j) = producer[conv_out] else {
                continue;
            };
            let (fusable, channels) = match (&steps[j].kernel, &add) {
                (Kernel::ConvI8(conv), AddKind::I8(..)) => (conv.fuses_add(), conv.params().out_c),
                (Kernel::ConvF32(conv), AddKind::F32(..)) => (true, conv.params().out_c),
                _ => continue,
            };
            let pad_channels = match add {
                AddKind::I8(_, Some(pad)) => pad.channels,
                AddKind::F32(_, Some(pad)) => pad.channels,
                _ => channels,
            };
            let alone = readers[conv_out] == 1 && !keep.contains(&conv_out) && !folded[j];
            if !(alone && fusable && conv_out != other && pad_channels == channels) {
                continue;
            }
            log::debug!(
                "plan: convolution {} folded into add {}",
                steps[j].node,
                steps[i].node
            );
            // The convolution's step is removed below: its packed weights move into the add
            // (an empty f32 add kernel fills the removed step until then).
            let conv = std::mem::replace(&mut steps[j].kernel, Kernel::AddF32((0.0, 0.0)));
            steps[i].kernel = match (conv, add) {
                (Kernel::ConvI8(conv), AddKind::I8(q, pad)) => {
                    let pad = pad.unwrap_or(ChannelPadded {
                        channels,
                        b_channels: channels,
                        fill: 0,
                    });
                    // The add's multipliers follow its operands: the convolution first.
                    let q = if k == 1 { q.swapped() } else { q };
                    Kernel::ConvAdd16I8(conv, q, pad)
                }
                // IEEE addition commutes bit for bit (as in the pad fusion above).
                (Kernel::ConvF32(conv), AddKind::F32(act, pad)) => {
                    let pad = pad.unwrap_or(ChannelPadded {
                        channels,
                        b_channels: channels,
                        fill: 0.0,
                    });
                    Kernel::ConvAddF32 { conv, act, pad }
                }
                (conv, _) => {
                    steps[j].kernel = conv;
                    continue;
                }
            };
            steps[i].inputs = vec![steps[j].inputs[0], other];
            steps[i].macs += steps[j].macs;
            steps[i].op = "conv2d+add";
            steps[i].node = format!("{}+{}", steps[j].node, steps[i].node);
            folded[j] = true;
            break;
        }
    }
    remove(steps, folded)
}
