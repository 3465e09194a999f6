//! Chains: runs of split steps whose slices one thread takes back to back, in one job.
//!
//! A depthwise convolution cut by output rows, followed by the pointwise convolution that
//! reads its output (MobileNetV2's project, with or without its residual add), the residual
//! add where the project does not take it, and the next block's pointwise expand, needs no
//! other thread's rows after the first step: a pointwise convolution's or an add's output
//! pixel reads only the same pixel of its inputs. So at session start such a run of steps
//! becomes one chain: the followers are cut into the head's pixel runs
//! ([`parallel::split_pointwise_at`], [`parallel::split_add_at`]), and in a run each thread
//! claims a slice of the chain and runs the head's slice, then each follower's slice over the
//! pixels it has just written, in its own cache. One job instead of one per step: the
//! hand-out, the wait for the slowest slice and the rows crossing cores happen once per chain
//! (a job costs about 1 µs more than its parts, `cargo bench -p outpost-benches --bench
//! pool`). A head too small to be split alone ([`parallel::MIN_MACS`]) is split when the
//! chain as a whole is not: BlazeFace's 16×16 and 8×8 depthwise layers.
//!
//! A slice of a follower may run while another thread is still in the head's: the arena plan
//! treats the chain as one step ([`crate::plan::Plan::place`]), so no buffer a chain reads or
//! writes shares bytes with another ([`Chain::disjoint`] checks it again). A follower reads
//! the step before's output as its first operand (or, for an add, its second); its other
//! operand (the residual) must come from before the chain.

use std::ops::Range;
use std::sync::Mutex;

use outpost_kernels::KernelTable;

use crate::parallel::{self, MAX_SLICES, Part};
use crate::plan::{Kernel, Plan, Step};
use crate::pool::{MAX_THREADS, WorkerPool};

/// The most steps in one chain: a depthwise convolution, its project, the residual add (where
/// the project does not take it) and the next expand.
pub(crate) const MAX_CHAIN: usize = 4;

/// The most bytes a chain's steps write. The saving is per job, so it counts on short steps;
/// a chain's buffers cannot share arena bytes, and longer ones measured no faster (MobileNetV2
/// int8 on two threads, `outpost bench`: chains at every resolution grew the arena from 1.4
/// to 2.1 MiB for the same time as chains at 28 × 28 and below). Half of a core's L2.
pub(crate) const MAX_CHAIN_BYTES: usize = 512 * 1024;

/// The steps `start..start + len` of a plan, run as one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Chain {
    pub start: usize,
    pub len: usize,
}

impl Chain {
    pub fn steps(&self) -> Range<usize> {
        self.start..self.start + self.len
    }

    /// Whether the buffers the chain writes share no byte with each other or with a buffer
    /// it reads (what running its steps' slices out of order needs).
    pub fn disjoint(&self, plan: &Plan) -> bool {
        let range = |b: usize| {
            let buf = &plan.buffers[b];
            buf.offset..buf.offset + buf.bytes
        };
        let steps = &plan.steps[self.steps()];
        let written: Vec<usize> = steps.iter().map(|s| s.output).collect();
        let touched: Vec<usize> = steps
            .iter()
            .flat_map(|s| s.inputs.iter().copied().chain([s.output]))
            .collect();
        written.iter().all(|&w| {
            touched.iter().all(|&t| {
                let (a, b) = (range(w), range(t));
                t == w || a.is_empty() || b.is_empty() || a.end <= b.start || b.end <= a.start
            })
        })
    }
}

/// Bytes per output pixel of an int8 step a chain can start with (a convolution or depthwise
/// convolution of one image, split by output rows or pixels), or `None`.
fn head_pixel_bytes(step: &Step) -> Option<usize> {
    match &step.kernel {
        Kernel::ConvI8(p) | Kernel::ConvAdd16I8(p, ..) => {
            let d = p.params();
            (d.batch == 1).then_some(d.out_c)
        }
        Kernel::DepthwiseI8(p) => {
            let d = p.params();
            (d.batch == 1).then_some(d.out_c())
        }
        _ => None,
    }
}

/// Finds the chains of `plan` for the steps' slices `parts` (empty: the step runs whole) on
/// `threads` threads and cuts each follower into its head's pixel runs (replacing its
/// `parts`). A head too small to split alone ([`parallel::MIN_MACS`]) is cut too when the
/// chain as a whole is not: its followers share the job.
pub(crate) fn find(plan: &Plan, parts: &mut [Vec<Part>], threads: usize) -> Vec<Chain> {
    let steps = &plan.steps;
    let mut chains = Vec::new();
    let mut i = 0;
    while i < steps.len() {
        let Some(head_bytes) = head_pixel_bytes(&steps[i]) else {
            i += 1;
            continue;
        };
        let fresh = parts[i].is_empty();
        let head = if fresh {
            parallel::split_any_size(&steps[i], plan.buffers[steps[i].output].bytes, threads)
        } else {
            std::mem::take(&mut parts[i])
        };
        let (j, followers) = followers(plan, i, &head, head_bytes);
        let macs: u64 = steps[i..j].iter().map(|s| s.macs).sum();
        if followers.is_empty() || macs < parallel::MIN_MACS {
            if !fresh {
                parts[i] = head;
            }
            i += 1;
            continue;
        }
        parts[i] = head;
        for (k, f) in followers.into_iter().enumerate() {
            parts[i + 1 + k] = f;
        }
        chains.push(Chain {
            start: i,
            len: j - i,
        });
        i = j;
    }
    chains
}

/// The steps after `i` that can follow its slices `head` (each `head_bytes` per output
/// pixel) in a chain, cut into the same pixel runs; returns the end of the chain and the
/// followers' slices.
fn followers(plan: &Plan, i: usize, head: &[Part], head_bytes: usize) -> (usize, Vec<Vec<Part>>) {
    let steps = &plan.steps;
    let runs: Vec<Range<usize>> = head
        .iter()
        .map(|p| p.output.start / head_bytes..p.output.end / head_bytes)
        .collect();
    let mut followers: Vec<Vec<Part>> = Vec::new();
    let mut j = i + 1;
    while !runs.is_empty() && j < steps.len() && j - i < MAX_CHAIN {
        let (prev, s) = (&steps[j - 1], &steps[j]);
        let produced_here = |b: usize| steps[i..j].iter().any(|p| p.output == b);
        let written: usize = steps[i..=j]
            .iter()
            .map(|s| plan.buffers[s.output].bytes)
            .sum();
        // The step before's output is the first operand (or the second of an add); the other
        // operands come from before the chain.
        let Some(at) = s.inputs.iter().position(|&b| b == prev.output) else {
            break;
        };
        let others_before = s
            .inputs
            .iter()
            .enumerate()
            .all(|(n, &b)| n == at || !produced_here(b));
        let follows = others_before
            && (at == 0 || (at == 1 && matches!(s.kernel, Kernel::Add16I8(_))))
            && written <= MAX_CHAIN_BYTES;
        let pixels = runs.last().map_or(0, |r| r.end);
        let out_bytes = plan.buffers[s.output].bytes;
        let cut = if !follows {
            None
        } else if parallel::pointwise_pixels(s) == Some(pixels) {
            parallel::split_pointwise_at(s, runs.iter().cloned())
        } else if out_bytes == plan.buffers[prev.output].bytes {
            // An add of the step before's output and an operand from before the chain.
            parallel::split_add_at(s, out_bytes, out_bytes / pixels, runs.iter().cloned())
        } else {
            None
        };
        let Some(cut) = cut else {
            break;
        };
        // Each slice reads exactly the bytes the same slice of the step before wrote.
        let before = followers.last().map_or(head, Vec::as_slice);
        let reads = |c: &Part| {
            if at == 0 {
                c.input.clone()
            } else {
                c.skip.clone()
            }
        };
        if cut.iter().zip(before).any(|(c, b)| reads(c) != b.output) {
            break;
        }
        followers.push(cut);
        j += 1;
    }
    (j, followers)
}

/// One buffer of the arena as (offset, bytes).
type Span = (usize, usize);

/// Runs `chain`'s steps: each of the head's slices, with the followers' same slices after it,
/// on whichever thread claims it. `arena` holds every buffer; each thread's scratch region is
/// `per` bytes of `scratch`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run(
    pool: &WorkerPool,
    table: &KernelTable,
    plan: &Plan,
    parts: &[Vec<Part>],
    chain: &Chain,
    arena: &mut [u8],
    scratch: &mut [u8],
    per: usize,
) {
    let steps = &plan.steps[chain.steps()];
    let parts = &parts[chain.steps()];
    let slices = parts[0].len();
    assert!(slices <= MAX_SLICES && steps.len() <= MAX_CHAIN);
    let span = |b: usize| (plan.buffers[b].offset, plan.buffers[b].bytes);

    // The written buffers in arena order, cut out of the arena; what lies between them (every
    // buffer the chain only reads) stays shared.
    let mut order: [usize; MAX_CHAIN] = core::array::from_fn(|j| j);
    let order = &mut order[..steps.len()];
    order.sort_unstable_by_key(|&j| span(steps[j].output).0);
    let mut gaps: [(usize, &[u8]); MAX_CHAIN + 1] = [(0, &[]); MAX_CHAIN + 1];
    let mut outs: [&mut [u8]; MAX_CHAIN] = Default::default();
    let (mut rest, mut at) = (arena, 0);
    for (g, &j) in order.iter().enumerate() {
        let (off, len) = span(steps[j].output);
        let (gap, tail) = std::mem::take(&mut rest).split_at_mut(off - at);
        let (out, tail) = tail.split_at_mut(len);
        gaps[g] = (at, gap);
        outs[j] = out;
        (rest, at) = (tail, off + len);
    }
    gaps[order.len()] = (at, rest);
    let read = |(off, len): Span| -> &[u8] {
        let Some(&(start, gap)) = gaps
            .iter()
            .find(|(start, gap)| *start <= off && off + len <= start + gap.len())
        else {
            unreachable!("a chain reads only buffers it does not write")
        };
        &gap[off - start..off - start + len]
    };

    // Each slice's output bytes of each step, handed over through uncontended locks.
    let slots: [[Mutex<Option<&mut [u8]>>; MAX_CHAIN]; MAX_SLICES] =
        [const { [const { Mutex::new(None) }; MAX_CHAIN] }; MAX_SLICES];
    for (j, out) in outs.iter_mut().enumerate().take(steps.len()) {
        parallel::hand_out_outputs(&parts[j], std::mem::take(out), |k| &slots[k][j]);
    }
    let scratches: [Mutex<&mut [u8]>; MAX_THREADS] = [const { Mutex::new(&mut []) }; MAX_THREADS];
    parallel::hand_out_scratch(&scratches, pool.threads(), scratch, per);
    // Per step: whether a follower takes the step before's output as its second operand (an
    // add written `skip + x`), and the operands it reads from before the chain.
    let second: [bool; MAX_CHAIN] = core::array::from_fn(|j| {
        j > 0 && j < steps.len() && steps[j].inputs[0] != steps[j - 1].output
    });
    let outside = |j: usize, n: usize| -> &[u8] {
        match steps.get(j).and_then(|s| s.inputs.get(n)) {
            Some(&b) if j == 0 || b != steps[j - 1].output => read(span(b)),
            _ => &[],
        }
    };
    let firsts: [&[u8]; MAX_CHAIN] = core::array::from_fn(|j| outside(j, 0));
    let seconds: [&[u8]; MAX_CHAIN] = core::array::from_fn(|j| outside(j, 1));

    pool.run(slices, &|k, thread| {
        // Only this thread uses its region; the lock is held for the slice.
        let mut scratch = scratches[thread].lock().unwrap_or_else(|e| e.into_inner());
        let mut before: &[u8] = &[];
        for (j, step_parts) in parts.iter().enumerate() {
            let part = &step_parts[k];
            let Some(out) = slots[k][j].lock().unwrap_or_else(|e| e.into_inner()).take() else {
                unreachable!("every slice has its output bytes")
            };
            // A follower's slice reads what this slice of the step before just wrote.
            let (input, skip) = match (j, second[j]) {
                (0, _) => (
                    &firsts[0][part.input.clone()],
                    &seconds[0][part.skip.clone()],
                ),
                (_, false) => (before, &seconds[j][part.skip.clone()]),
                (_, true) => (&firsts[j][part.input.clone()], before),
            };
            parallel::run_part(table, part, input, skip, out, &mut scratch);
            before = out;
        }
    });
}
