//! Intra-op parallelism: convolutions split by output rows across a [`WorkerPool`].
//!
//! At session start every int8 convolution, depthwise convolution and convolution with its
//! residual add that is large enough ([`MIN_MACS`], at least one output row per thread, one
//! image) is cut into row slices, two per thread where the rows allow
//! ([`outpost_kernels::PackedConv::rows`]): each a convolution of its own over the input rows
//! it reads, sharing the packed weights. In a run the threads claim slices one at a time
//! ([`WorkerPool::run`]), each writing its slice's rows of the output with its own scratch
//! region, so a thread that starts late only does less. The result is bit-exact with one thread (the slices compute the same sums; the
//! kernel tests check it on every tier). Other steps run on the caller's thread.

use std::ops::Range;
use std::sync::Mutex;

use outpost_kernels::{
    Add16Quant, ChannelPadded, KernelTable, PackedConv, PackedDepthwise, Residual,
};

use crate::plan::{Kernel, Step};
use crate::pool::{MAX_THREADS, WorkerPool};

/// Steps with fewer multiply-accumulates run on one thread: handing out a job costs a few µs.
pub const MIN_MACS: u64 = 200_000;

/// Slices per thread where the rows allow: a thread that starts late (descheduled, waking)
/// leaves its share to the others instead of holding the step up.
const SLICES_PER_THREAD: usize = 2;

/// The most slices of one step.
const MAX_SLICES: usize = MAX_THREADS * SLICES_PER_THREAD;

/// One thread's slice of a step.
#[derive(Debug)]
pub(crate) struct Part {
    kernel: PartKernel,
    /// Bytes of the step's first input that the slice reads.
    input: Range<usize>,
    /// Bytes of the step's output that the slice writes.
    output: Range<usize>,
    /// Bytes of the residual operand (second input) it adds.
    skip: Range<usize>,
}

#[derive(Debug)]
enum PartKernel {
    Conv(PackedConv),
    Depthwise(Box<PackedDepthwise>),
    ConvAdd(PackedConv, Add16Quant, ChannelPadded),
}

/// Rows `0..n` cut into `parts` runs of nearly equal length.
fn cuts(n: usize, parts: usize) -> impl Iterator<Item = Range<usize>> {
    (0..parts).map(move |i| i * n / parts..(i + 1) * n / parts)
}

/// The slices of `step` for `threads` threads, or none where it runs whole.
pub(crate) fn split(step: &Step, threads: usize) -> Vec<Part> {
    if threads < 2 || step.macs < MIN_MACS {
        return Vec::new();
    }
    // Per kind: output rows, input and output bytes per row, skip bytes per output row, and
    // the slice of given rows with the input rows it reads.
    type Slicer<'a> = Box<dyn Fn(Range<usize>) -> Option<(PartKernel, Range<usize>)> + 'a>;
    let (out_h, row_in, row_out, row_skip, slice): (usize, usize, usize, usize, Slicer<'_>) =
        match &step.kernel {
            Kernel::ConvI8(p) => {
                let d = p.params();
                (
                    d.out_h,
                    d.in_w * d.in_c,
                    d.out_w * d.out_c,
                    0,
                    Box::new(|r| p.rows(r).map(|(s, i)| (PartKernel::Conv(s), i))),
                )
            }
            Kernel::ConvAdd16I8(p, add, pad) => {
                let d = p.params();
                let row_skip = d.out_w * pad.b_channels;
                (
                    d.out_h,
                    d.in_w * d.in_c,
                    d.out_w * d.out_c,
                    row_skip,
                    Box::new(|r| {
                        p.rows(r)
                            .map(|(s, i)| (PartKernel::ConvAdd(s, *add, *pad), i))
                    }),
                )
            }
            Kernel::DepthwiseI8(p) => {
                let d = p.params();
                (
                    d.out_h,
                    d.in_w * d.in_c,
                    d.out_w * d.out_c(),
                    0,
                    Box::new(|r| {
                        p.rows(r)
                            .map(|(s, i)| (PartKernel::Depthwise(Box::new(s)), i))
                    }),
                )
            }
            _ => return Vec::new(),
        };
    if out_h < threads {
        return Vec::new();
    }
    let slices = if out_h >= threads * SLICES_PER_THREAD {
        threads * SLICES_PER_THREAD
    } else {
        threads
    };
    let mut parts = Vec::with_capacity(slices);
    for rows in cuts(out_h, slices) {
        let Some((kernel, input)) = slice(rows.clone()) else {
            return Vec::new();
        };
        parts.push(Part {
            kernel,
            input: input.start * row_in..input.end * row_in,
            output: rows.start * row_out..rows.end * row_out,
            skip: rows.start * row_skip..rows.end * row_skip,
        });
    }
    parts
}

/// Scratch bytes one thread's slice of `parts` needs at most.
pub(crate) fn scratch_bytes(parts: &[Part]) -> usize {
    parts
        .iter()
        .map(|p| match &p.kernel {
            PartKernel::Conv(c) | PartKernel::ConvAdd(c, ..) => c.scratch_bytes(),
            PartKernel::Depthwise(d) => d.scratch_bytes(),
        })
        .max()
        .unwrap_or(0)
}

/// Runs the slices of one step across the pool's threads, each thread with its own scratch
/// region (`per` bytes). `skip` is the residual operand (empty without one).
#[allow(clippy::too_many_arguments)]
pub(crate) fn run(
    pool: &WorkerPool,
    table: &KernelTable,
    parts: &[Part],
    input: &[i8],
    skip: &[i8],
    output: &mut [i8],
    scratch: &mut [u8],
    per: usize,
) {
    assert!(parts.len() <= MAX_SLICES, "parallel: too many slices");
    // Each slice takes its own output rows, each thread its own scratch region: disjoint
    // borrows handed over through uncontended locks (nothing allocated).
    let outs: [Mutex<Option<&mut [i8]>>; MAX_SLICES] = [const { Mutex::new(None) }; MAX_SLICES];
    let scratches: [Mutex<&mut [u8]>; MAX_THREADS] = [const { Mutex::new(&mut []) }; MAX_THREADS];
    let mut rest = output;
    let mut at = 0;
    for (t, part) in parts.iter().enumerate() {
        assert_eq!(
            part.output.start, at,
            "parallel: slices must tile the output"
        );
        let (mine, tail) = std::mem::take(&mut rest).split_at_mut(part.output.len());
        *outs[t].lock().unwrap_or_else(|e| e.into_inner()) = Some(mine);
        rest = tail;
        at = part.output.end;
    }
    let mut rest = scratch;
    for slot in scratches.iter().take(pool.threads()) {
        let (mine, tail) = std::mem::take(&mut rest).split_at_mut(per);
        *slot.lock().unwrap_or_else(|e| e.into_inner()) = mine;
        rest = tail;
    }
    pool.run(parts.len(), &|i, thread| {
        let part = &parts[i];
        let out = outs[i].lock().unwrap_or_else(|e| e.into_inner()).take();
        let Some(out) = out else {
            unreachable!("every slice has its output rows")
        };
        // Only this thread uses its region; the lock is held for the slice.
        let mut scratch = scratches[thread].lock().unwrap_or_else(|e| e.into_inner());
        let scratch: &mut [u8] = &mut scratch;
        let input = &input[part.input.clone()];
        match &part.kernel {
            PartKernel::Conv(p) => table.conv2d_i8(p, input, out, scratch),
            PartKernel::Depthwise(p) => table.depthwise_i8(p, input, out, scratch),
            PartKernel::ConvAdd(p, add, pad) => {
                let r = Residual {
                    add: *add,
                    pad: *pad,
                    skip: &skip[part.skip.clone()],
                };
                table.conv2d_add16_i8(p, input, &r, out, scratch)
            }
        }
    });
}
