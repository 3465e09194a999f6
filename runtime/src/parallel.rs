//! Intra-op parallelism: convolutions split by output rows (pointwise int8 ones by output
//! pixels), int16 and f32 adds by runs of bytes or pixels, across a [`WorkerPool`].
//!
//! At session start every int8 or f32 convolution, depthwise convolution and convolution
//! with its residual add that is large enough ([`MIN_MACS`], [`MIN_MACS_F32`], at
//! least one output row per thread, one image) is cut into row slices, two per thread where
//! the rows allow ([`outpost_kernels::PackedConv::rows`]): each a convolution of its own over
//! the input rows it reads, sharing the packed weights. In a run the threads claim slices one
//! at a time ([`WorkerPool::run`]), each writing its slice's rows of the output with its own
//! scratch region, so a thread that starts late only does less. The result is bit-exact with
//! one thread (the slices compute the same sums; the kernel tests check it on every tier). An
//! int16 or f32 add of at least [`MIN_ADD_BYTES`] (the residual adds between convolutions) is
//! cut into runs of whole cache lines (of whole pixels where its second operand is
//! channel-padded) the same way (on the caller's thread alone it took as long as with one
//! thread, reading the rows the worker had just written from the other core's cache), and
//! pools of that size by output rows. A fully connected layer of one row (a classifier) is
//! cut by output features, each slice with its own copy of its features' packed weights:
//! those layers stream their weights from memory, and each thread then streams its share.
//! Other steps run on the caller's thread.

use std::ops::Range;
use std::sync::Mutex;

use outpost_kernels::{
    Add16Quant, ChannelPadded, KernelTable, PackedConv, PackedConvF32, PackedDepthwise,
    PackedDepthwiseF32, PackedFc, PoolParams, Residual, ResidualF32, ResizeOptions,
};

use crate::plan::{Elem, Kernel, Step};
use crate::pool::{MAX_THREADS, WorkerPool};

/// Steps with fewer multiply-accumulates run on one thread: a job costs about 1 µs more than
/// its parts (`cargo bench -p outpost-benches --bench pool`: four 5 µs parts on two threads
/// take 10.7–11.3 µs), plus the rows one thread wrote that the other then reads.
pub const MIN_MACS: u64 = 200_000;

/// The same for f32 steps, whose multiply-accumulates take about four times as long.
pub const MIN_MACS_F32: u64 = 50_000;

/// Int16 adds with fewer output bytes run on one thread.
pub const MIN_ADD_BYTES: usize = 16 * 1024;

/// Slices per thread where the rows allow: a thread that starts late (descheduled, waking)
/// leaves its share to the others instead of holding the step up.
const SLICES_PER_THREAD: usize = 2;

/// The most slices of one step.
pub(crate) const MAX_SLICES: usize = MAX_THREADS * SLICES_PER_THREAD;

/// One thread's slice of a step.
#[derive(Debug)]
pub(crate) struct Part {
    kernel: PartKernel,
    /// Bytes of the step's first input that the slice reads.
    pub(crate) input: Range<usize>,
    /// Bytes of the step's output that the slice writes.
    pub(crate) output: Range<usize>,
    /// Bytes of the residual operand (second input) it adds.
    pub(crate) skip: Range<usize>,
}

#[derive(Debug, Clone)]
enum PartKernel {
    Conv(PackedConv),
    Depthwise(Box<PackedDepthwise>),
    ConvAdd(PackedConv, Add16Quant, ChannelPadded),
    /// A fully connected layer's run of output features (the whole input).
    Fc(Box<PackedFc>),
    /// An element-wise int16 add over the part's bytes of both operands.
    Add16(Add16Quant),
    /// An int16 add over the part's pixels, the second operand channel-padded.
    Add16Padded(Add16Quant, ChannelPadded),
    ConvF32(PackedConvF32),
    /// An f32 convolution's rows and their residual add (its clamp range, the skip's padding).
    ConvAddF32(PackedConvF32, (f32, f32), ChannelPadded<f32>),
    DepthwiseF32(Box<PackedDepthwiseF32>),
    /// An element-wise f32 add over the part's elements of both operands.
    AddF32((f32, f32)),
    /// An f32 add over the part's pixels, the second operand channel-padded.
    AddF32Padded((f32, f32), ChannelPadded<f32>),
    /// A pool's output rows (max or average, int8 or f32: the step's own kernel).
    Pool(PoolKind, PoolParams),
    /// A bilinear resize's output rows (of all images, image-major), the whole input read.
    Resize(Box<ResizeRows>),
}

/// A bilinear resize's run of output rows.
#[derive(Debug, Clone)]
struct ResizeRows {
    shape: [usize; 4],
    out: [usize; 2],
    options: ResizeOptions,
    elem: Elem,
    rows: Range<usize>,
}

/// Which pool a [`PartKernel::Pool`] runs.
#[derive(Debug, Clone, Copy)]
enum PoolKind {
    MaxI8,
    AvgI8,
    MaxF32,
    AvgF32,
}

/// How many slices `units` (rows, pixel grains, feature blocks) make for `threads` threads:
/// [`SLICES_PER_THREAD`] per thread where there are enough, else one per thread, or `None`
/// (run whole) with fewer units than threads.
fn slice_count(units: usize, threads: usize) -> Option<usize> {
    if units >= threads * SLICES_PER_THREAD {
        Some(threads * SLICES_PER_THREAD)
    } else if units >= threads {
        Some(threads)
    } else {
        None
    }
}

/// Rows `0..n` cut into `parts` runs of nearly equal length.
fn cuts(n: usize, parts: usize) -> impl Iterator<Item = Range<usize>> {
    (0..parts).map(move |i| i * n / parts..(i + 1) * n / parts)
}

/// The slices of `step` (writing `out_bytes`) for `threads` threads, or none where it runs
/// whole.
pub(crate) fn split(step: &Step, out_bytes: usize, threads: usize) -> Vec<Part> {
    split_sized(step, out_bytes, threads, true)
}

/// [`split`] whatever the step's size: the head of a chain, whose job its followers share
/// ([`crate::chain`]).
pub(crate) fn split_any_size(step: &Step, out_bytes: usize, threads: usize) -> Vec<Part> {
    split_sized(step, out_bytes, threads, false)
}

fn split_sized(step: &Step, out_bytes: usize, threads: usize, sized: bool) -> Vec<Part> {
    if threads < 2 {
        return Vec::new();
    }
    match step.kernel {
        Kernel::Add16I8(q) => {
            return split_runs(|| PartKernel::Add16(q), [out_bytes; 3], [64; 3], threads);
        }
        Kernel::AddF32(act) => {
            return split_runs(|| PartKernel::AddF32(act), [out_bytes; 3], [64; 3], threads);
        }
        Kernel::AddF32Padded { act, pad } => {
            let (c, bc) = (pad.channels * F32, pad.b_channels * F32);
            let bytes = [out_bytes, out_bytes / c * bc, out_bytes];
            let kernel = || PartKernel::AddF32Padded(act, pad);
            return split_runs(kernel, bytes, [c, bc, c], threads);
        }
        Kernel::MaxPoolI8(p) => return split_pool(PoolKind::MaxI8, p, 1, threads),
        Kernel::AvgPoolI8(p) => return split_pool(PoolKind::AvgI8, p, 1, threads),
        Kernel::MaxPoolF32(p) => return split_pool(PoolKind::MaxF32, p, F32, threads),
        Kernel::AvgPoolF32(p) => return split_pool(PoolKind::AvgF32, p, F32, threads),
        Kernel::Resize {
            shape,
            out,
            bilinear: true,
            options,
            elem,
        } => return split_resize(shape, out, options, elem, threads),
        _ => {}
    }
    let f32 = matches!(
        step.kernel,
        Kernel::ConvF32(_) | Kernel::ConvAddF32 { .. } | Kernel::DepthwiseF32(_)
    );
    if sized && step.macs < if f32 { MIN_MACS_F32 } else { MIN_MACS } {
        return Vec::new();
    }
    if let Kernel::FcI8(p) = &step.kernel {
        return split_fc(p, threads);
    }
    if let Some(parts) = split_pointwise(step, threads) {
        return parts;
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
            Kernel::ConvF32(p) => {
                let d = p.params();
                (
                    d.out_h,
                    d.in_w * d.in_c * F32,
                    d.out_w * d.out_c * F32,
                    0,
                    Box::new(|r| p.rows(r).map(|(s, i)| (PartKernel::ConvF32(s), i))),
                )
            }
            Kernel::ConvAddF32 { conv, act, pad } => {
                let d = conv.params();
                (
                    d.out_h,
                    d.in_w * d.in_c * F32,
                    d.out_w * d.out_c * F32,
                    d.out_w * pad.b_channels * F32,
                    Box::new(|r| {
                        conv.rows(r)
                            .map(|(s, i)| (PartKernel::ConvAddF32(s, *act, *pad), i))
                    }),
                )
            }
            Kernel::DepthwiseF32(p) => {
                let d = p.params();
                (
                    d.out_h,
                    d.in_w * d.in_c * F32,
                    d.out_w * d.out_c() * F32,
                    0,
                    Box::new(|r| {
                        p.rows(r)
                            .map(|(s, i)| (PartKernel::DepthwiseF32(Box::new(s)), i))
                    }),
                )
            }
            _ => return Vec::new(),
        };
    let Some(slices) = slice_count(out_h, threads) else {
        return Vec::new();
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

/// Bytes of an f32.
const F32: usize = size_of::<f32>();

/// Pixels a pointwise slice's length is a multiple of (except the last): whole GEMM tiles
/// (6 or 12 rows).
const PIXEL_GRAIN: usize = 12;

/// A pointwise convolution (with or without its residual add) cut by output pixels
/// ([`PackedConv::pixels`]) into runs of whole [`PIXEL_GRAIN`]s, or `None` where the step is
/// not one. Cutting by pixels instead of image rows keeps the threads' shares equal on small
/// images (7 × 7: 24 and 25 pixels instead of 21 and 28).
fn split_pointwise(step: &Step, threads: usize) -> Option<Vec<Part>> {
    let pixels = pointwise_pixels(step)?;
    let grains = pixels.div_ceil(PIXEL_GRAIN);
    let Some(slices) = slice_count(grains, threads) else {
        return Some(Vec::new());
    };
    let px = cuts(grains, slices)
        .map(|g| (g.start * PIXEL_GRAIN).min(pixels)..(g.end * PIXEL_GRAIN).min(pixels));
    split_pointwise_at(step, px)
}

/// The output pixels of an int8 pointwise convolution of one image (with or without its
/// residual add), or `None` where the step is not one.
pub(crate) fn pointwise_pixels(step: &Step) -> Option<usize> {
    let p = match &step.kernel {
        Kernel::ConvI8(p) | Kernel::ConvAdd16I8(p, ..) => p,
        _ => return None,
    };
    let d = p.params();
    (d.is_pointwise() && d.batch == 1).then_some(d.out_h * d.out_w)
}

/// An int8 add (the second operand channel-padded or not) of `channels`-byte pixels writing
/// `out_bytes`, cut into the given runs of pixels, which must tile them; `None` where the
/// step is not one or its pixels are not of that size.
pub(crate) fn split_add_at(
    step: &Step,
    out_bytes: usize,
    channels: usize,
    runs: impl Iterator<Item = Range<usize>>,
) -> Option<Vec<Part>> {
    let (kernel, b_channels) = match step.kernel {
        Kernel::Add16I8(q) => (PartKernel::Add16(q), channels),
        Kernel::Add16I8Padded(q, pad) if pad.channels == channels => {
            (PartKernel::Add16Padded(q, pad), pad.b_channels)
        }
        _ => return None,
    };
    if channels == 0 || !out_bytes.is_multiple_of(channels) {
        return None;
    }
    let parts: Vec<Part> = runs
        .map(|px| Part {
            kernel: kernel.clone(),
            input: px.start * channels..px.end * channels,
            output: px.start * channels..px.end * channels,
            skip: px.start * b_channels..px.end * b_channels,
        })
        .collect();
    let tiles = parts.last().is_some_and(|p| p.output.end == out_bytes);
    tiles.then_some(parts)
}

/// An int8 pointwise convolution (with or without its residual add) cut into the given runs
/// of output pixels ([`PackedConv::pixels`]), which must tile its pixels; `None` where the
/// step is not one or a run is empty.
pub(crate) fn split_pointwise_at(
    step: &Step,
    runs: impl Iterator<Item = Range<usize>>,
) -> Option<Vec<Part>> {
    let (p, residual) = match &step.kernel {
        Kernel::ConvI8(p) => (p, None),
        Kernel::ConvAdd16I8(p, add, pad) => (p, Some((*add, *pad))),
        _ => return None,
    };
    let d = p.params();
    let skip_c = residual.map_or(0, |(_, pad)| pad.b_channels);
    let mut parts = Vec::new();
    for px in runs {
        let slice = p.pixels(px.clone())?;
        parts.push(Part {
            kernel: match residual {
                None => PartKernel::Conv(slice),
                Some((add, pad)) => PartKernel::ConvAdd(slice, add, pad),
            },
            input: px.start * d.in_c..px.end * d.in_c,
            output: px.start * d.out_c..px.end * d.out_c,
            skip: px.start * skip_c..px.end * skip_c,
        });
    }
    Some(parts)
}

/// Output features a fully connected slice's length is a multiple of (except the last): whole
/// 16-channel blocks of both SIMD tiers' packings.
const FEATURE_GRAIN: usize = 16;

/// A fully connected layer of one row cut by output features into runs of whole
/// [`FEATURE_GRAIN`]s, each slice with its own copy of its features' weights
/// ([`PackedFc::outputs`]): every thread reads the whole (small) input and only its
/// features' weights, which a classifier streams from memory. Batches above one run whole.
fn split_fc(p: &PackedFc, threads: usize) -> Vec<Part> {
    let f = p.params();
    let grains = f.out_features.div_ceil(FEATURE_GRAIN);
    let Some(slices) = slice_count(grains, threads).filter(|_| f.batch == 1) else {
        return Vec::new();
    };
    let mut parts = Vec::with_capacity(slices);
    for g in cuts(grains, slices) {
        let features = (g.start * FEATURE_GRAIN).min(f.out_features)
            ..(g.end * FEATURE_GRAIN).min(f.out_features);
        let Some(slice) = p.outputs(features.clone()) else {
            return Vec::new();
        };
        parts.push(Part {
            kernel: PartKernel::Fc(Box::new(slice)),
            input: 0..f.in_features,
            output: features,
            skip: 0..0,
        });
    }
    parts
}

/// An element-wise step cut into `SLICES_PER_THREAD` runs per thread of whole units (64-byte
/// lines, or pixels), or none below [`MIN_ADD_BYTES`] of output. `bytes` and `unit`: of the
/// first operand, the second and the output (the last run takes the rest).
fn split_runs(
    kernel: impl Fn() -> PartKernel,
    bytes: [usize; 3],
    unit: [usize; 3],
    threads: usize,
) -> Vec<Part> {
    if bytes[2] < MIN_ADD_BYTES {
        return Vec::new();
    }
    let (units, slices) = (bytes[2].div_ceil(unit[2]), threads * SLICES_PER_THREAD);
    let run = |r: &Range<usize>, k: usize| {
        (r.start * unit[k]).min(bytes[k])..(r.end * unit[k]).min(bytes[k])
    };
    cuts(units, slices)
        .map(|r| Part {
            kernel: kernel(),
            input: run(&r, 0),
            skip: run(&r, 1),
            output: run(&r, 2),
        })
        .collect()
}

/// A pool of `elem`-byte elements cut by output rows (two slices per thread where the rows
/// allow), or none below [`MIN_ADD_BYTES`] of output or fewer rows than threads.
fn split_pool(kind: PoolKind, p: PoolParams, elem: usize, threads: usize) -> Vec<Part> {
    let (row_in, row_out) = (p.in_w * p.channels * elem, p.out_w * p.channels * elem);
    let Some(slices) = slice_count(p.out_h, threads).filter(|_| p.out_h * row_out >= MIN_ADD_BYTES)
    else {
        return Vec::new();
    };
    let mut parts = Vec::with_capacity(slices);
    for rows in cuts(p.out_h, slices) {
        let Some((slice, input)) = p.rows(rows.clone()) else {
            return Vec::new();
        };
        parts.push(Part {
            kernel: PartKernel::Pool(kind, slice),
            input: input.start * row_in..input.end * row_in,
            output: rows.start * row_out..rows.end * row_out,
            skip: 0..0,
        });
    }
    parts
}

/// A bilinear resize cut by output rows (of all images; two slices per thread where the rows
/// allow), each slice reading the whole input, or none below [`MIN_ADD_BYTES`] of output or
/// fewer rows than threads.
fn split_resize(
    shape: [usize; 4],
    out: [usize; 2],
    options: ResizeOptions,
    elem: Elem,
    threads: usize,
) -> Vec<Part> {
    let size = match elem {
        Elem::I8 => 1,
        Elem::F32 => F32,
    };
    let rows = shape[0] * out[0];
    let row_out = out[1] * shape[3] * size;
    let in_bytes = shape.iter().product::<usize>() * size;
    let Some(slices) = slice_count(rows, threads).filter(|_| rows * row_out >= MIN_ADD_BYTES)
    else {
        return Vec::new();
    };
    cuts(rows, slices)
        .map(|r| Part {
            output: r.start * row_out..r.end * row_out,
            kernel: PartKernel::Resize(Box::new(ResizeRows {
                shape,
                out,
                options,
                elem,
                rows: r,
            })),
            input: 0..in_bytes,
            skip: 0..0,
        })
        .collect()
}

/// Scratch bytes one thread's slice of `parts` needs at most.
pub(crate) fn scratch_bytes(parts: &[Part]) -> usize {
    parts
        .iter()
        .map(|p| match &p.kernel {
            PartKernel::Conv(c) | PartKernel::ConvAdd(c, ..) => c.scratch_bytes(),
            PartKernel::Depthwise(d) => d.scratch_bytes(),
            PartKernel::Fc(f) => f.scratch_bytes(),
            _ => 0,
        })
        .max()
        .unwrap_or(0)
}

/// Runs the slices of one step across the pool's threads, each thread with its own scratch
/// region (`per` bytes). `skip` is the residual operand (empty without one). The tensors are
/// the arena's bytes (int8, or f32 for the f32 kernels: the slices cut them at whole
/// elements, and the arena aligns every buffer).
#[allow(clippy::too_many_arguments)]
pub(crate) fn run(
    pool: &WorkerPool,
    table: &KernelTable,
    parts: &[Part],
    input: &[u8],
    skip: &[u8],
    output: &mut [u8],
    scratch: &mut [u8],
    per: usize,
) {
    assert!(parts.len() <= MAX_SLICES, "parallel: too many slices");
    // Each slice takes its own output rows, each thread its own scratch region: disjoint
    // borrows handed over through uncontended locks (nothing allocated).
    let outs: [Mutex<Option<&mut [u8]>>; MAX_SLICES] = [const { Mutex::new(None) }; MAX_SLICES];
    let scratches: [Mutex<&mut [u8]>; MAX_THREADS] = [const { Mutex::new(&mut []) }; MAX_THREADS];
    hand_out_outputs(parts, output, |t| &outs[t]);
    hand_out_scratch(&scratches, pool.threads(), scratch, per);
    pool.run(parts.len(), &|i, thread| {
        let part = &parts[i];
        let out = outs[i].lock().unwrap_or_else(|e| e.into_inner()).take();
        let Some(out) = out else {
            unreachable!("every slice has its output rows")
        };
        // Only this thread uses its region; the lock is held for the slice.
        let mut scratch = scratches[thread].lock().unwrap_or_else(|e| e.into_inner());
        let input = &input[part.input.clone()];
        let skip = &skip[part.skip.clone()];
        run_part(table, part, input, skip, out, &mut scratch);
    });
}

/// Cuts `output` into the bytes of each of `parts` (which must tile it) and puts slice `t`'s
/// in `slot(t)`.
pub(crate) fn hand_out_outputs<'a, 's>(
    parts: &[Part],
    output: &'a mut [u8],
    slot: impl Fn(usize) -> &'s Mutex<Option<&'a mut [u8]>>,
) where
    'a: 's,
{
    let mut rest = output;
    let mut at = 0;
    for (t, part) in parts.iter().enumerate() {
        assert_eq!(
            part.output.start, at,
            "parallel: slices must tile the output"
        );
        let (mine, tail) = std::mem::take(&mut rest).split_at_mut(part.output.len());
        *slot(t).lock().unwrap_or_else(|e| e.into_inner()) = Some(mine);
        rest = tail;
        at = part.output.end;
    }
}

/// Puts `per` bytes of `scratch` in each of the first `threads` slots.
pub(crate) fn hand_out_scratch<'a>(
    slots: &[Mutex<&'a mut [u8]>],
    threads: usize,
    scratch: &'a mut [u8],
    per: usize,
) {
    let mut rest = scratch;
    for slot in slots.iter().take(threads) {
        let (mine, tail) = std::mem::take(&mut rest).split_at_mut(per);
        *slot.lock().unwrap_or_else(|e| e.into_inner()) = mine;
        rest = tail;
    }
}

/// Runs one slice: `input` and `skip` are the bytes of its ranges (`part.input`,
/// `part.skip`), `out` those of `part.output`.
pub(crate) fn run_part(
    table: &KernelTable,
    part: &Part,
    input: &[u8],
    skip: &[u8],
    out: &mut [u8],
    scratch: &mut [u8],
) {
    let (i8s, f32s) = (
        bytemuck::cast_slice::<u8, i8>,
        bytemuck::cast_slice::<u8, f32>,
    );
    match &part.kernel {
        PartKernel::Conv(p) => table.conv2d_i8(p, i8s(input), i8s_mut(out), scratch),
        PartKernel::Depthwise(p) => table.depthwise_i8(p, i8s(input), i8s_mut(out), scratch),
        PartKernel::Fc(p) => table.fully_connected_i8(p, i8s(input), i8s_mut(out), scratch),
        PartKernel::ConvAdd(p, add, pad) => {
            let r = Residual {
                add: *add,
                pad: *pad,
                skip: i8s(skip),
            };
            table.conv2d_add16_i8(p, i8s(input), &r, i8s_mut(out), scratch)
        }
        PartKernel::Add16(q) => table.add16_i8(q, i8s(input), i8s(skip), i8s_mut(out)),
        PartKernel::Add16Padded(q, pad) => {
            table.add16_i8_padded(q, pad, i8s(input), i8s(skip), i8s_mut(out))
        }
        PartKernel::ConvF32(p) => table.conv2d_f32(p, f32s(input), f32s_mut(out)),
        PartKernel::ConvAddF32(p, act, pad) => {
            let r = ResidualF32 {
                act: *act,
                pad: *pad,
                skip: f32s(skip),
            };
            table.conv2d_add_f32(p, f32s(input), &r, f32s_mut(out))
        }
        PartKernel::DepthwiseF32(p) => table.depthwise_f32(p, f32s(input), f32s_mut(out)),
        PartKernel::AddF32(act) => table.add_f32(f32s(input), f32s(skip), f32s_mut(out), *act),
        PartKernel::AddF32Padded(act, pad) => {
            let (a, b) = (f32s(input), f32s(skip));
            table.add_f32_padded(pad, a, b, f32s_mut(out), *act)
        }
        PartKernel::Pool(kind, p) => match kind {
            PoolKind::MaxI8 => table.max_pool_i8(p, i8s(input), i8s_mut(out)),
            PoolKind::AvgI8 => table.avg_pool_i8(p, i8s(input), i8s_mut(out)),
            PoolKind::MaxF32 => table.max_pool_f32(p, f32s(input), f32s_mut(out)),
            PoolKind::AvgF32 => table.avg_pool_f32(p, f32s(input), f32s_mut(out)),
        },
        PartKernel::Resize(r) => {
            let ([oh, ow], rows) = (r.out, r.rows.clone());
            match r.elem {
                Elem::I8 => table.resize_bilinear_i8_rows(
                    i8s(input),
                    r.shape,
                    oh,
                    ow,
                    r.options,
                    rows,
                    i8s_mut(out),
                ),
                Elem::F32 => table.resize_bilinear_f32_rows(
                    f32s(input),
                    r.shape,
                    oh,
                    ow,
                    r.options,
                    rows,
                    f32s_mut(out),
                ),
            }
        }
    }
}

fn i8s_mut(b: &mut [u8]) -> &mut [i8] {
    bytemuck::cast_slice_mut(b)
}

fn f32s_mut(b: &mut [u8]) -> &mut [f32] {
    bytemuck::cast_slice_mut(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add_step() -> Step {
        let q = Add16Quant::new(0.05, -3, 0.04, 5, 0.06, -1, -128, 127).expect("scales fit");
        Step {
            node: "add".into(),
            op: "add",
            macs: 0,
            kernel: Kernel::Add16I8(q),
            inputs: vec![0, 1],
            output: 2,
        }
    }

    /// A 7 × 7 pointwise convolution is cut by pixels into whole 12-pixel grains (24 and 25
    /// pixels a thread on two threads, where image rows gave 21 and 28); a 3 × 3 one by rows.
    #[test]
    fn pointwise_convolutions_split_by_pixels() {
        use outpost_kernels::{Conv2dParams, Tier};
        let conv = |k: usize| {
            let mut p = Conv2dParams::simple(7, 7, 64, 128, k, k);
            (p.pad_top, p.pad_left, p.out_h, p.out_w) = (k / 2, k / 2, 7, 7);
            let w = vec![1i8; p.weight_len()];
            Step {
                node: "conv".into(),
                op: "conv2d",
                macs: (49 * 128 * 64 * k * k) as u64,
                kernel: Kernel::ConvI8(PackedConv::new(
                    Tier::Generic,
                    &p,
                    &w,
                    None,
                    1.0,
                    &[0.01],
                    1.0,
                )),
                inputs: vec![0],
                output: 1,
            }
        };
        let parts = split(&conv(1), 49 * 128, 2);
        let pixels: Vec<_> = parts
            .iter()
            .map(|p| {
                (
                    p.input.start / 64..p.input.end / 64,
                    p.output.start / 128..p.output.end / 128,
                )
            })
            .collect();
        assert_eq!(
            pixels,
            [
                (0..12, 0..12),
                (12..24, 12..24),
                (24..36, 24..36),
                (36..49, 36..49)
            ]
        );
        let rows = split(&conv(3), 49 * 128, 2);
        let out_rows: Vec<_> = rows.iter().map(|p| p.output.start / (7 * 128)).collect();
        assert_eq!(out_rows, [0, 1, 3, 5], "3 × 3: slices of whole image rows");
    }

    /// An int16 add is cut into runs of whole 64-byte lines that tile its bytes, the same
    /// runs of both operands; below `MIN_ADD_BYTES` (or on one thread) it stays whole.
    #[test]
    fn adds_split_into_runs_of_whole_lines() {
        let step = add_step();
        for (bytes, threads) in [(75_264, 2), (25_088, 3), (MIN_ADD_BYTES, 2), (16_500, 4)] {
            let parts = split(&step, bytes, threads);
            assert_eq!(parts.len(), threads * SLICES_PER_THREAD, "{bytes} bytes");
            let mut at = 0;
            for p in &parts {
                assert!(matches!(p.kernel, PartKernel::Add16(_)));
                assert_eq!(p.output.start, at, "{bytes} bytes: runs tile the output");
                assert!(p.output.start % 64 == 0, "{bytes} bytes: {:?}", p.output);
                assert_eq!((&p.input, &p.skip), (&p.output, &p.output));
                at = p.output.end;
            }
            assert_eq!(at, bytes);
        }
        assert!(split(&step, MIN_ADD_BYTES - 1, 2).is_empty());
        assert!(split(&step, 75_264, 1).is_empty());
    }

    /// An f32 add whose second operand is channel-padded is cut into runs of whole pixels: the
    /// same pixels of the first operand, the padded one (fewer channels) and the output.
    #[test]
    fn padded_f32_adds_split_into_whole_pixels() {
        let pad = ChannelPadded {
            channels: 28,
            b_channels: 24,
            fill: 0.0f32,
        };
        let step = Step {
            node: "add".into(),
            op: "add",
            macs: 0,
            kernel: Kernel::AddF32Padded {
                act: (0.0, f32::INFINITY),
                pad,
            },
            inputs: vec![0, 1],
            output: 2,
        };
        let pixels = 32 * 32;
        let parts = split(&step, pixels * 28 * 4, 2);
        assert_eq!(parts.len(), 2 * SLICES_PER_THREAD);
        let mut at = 0;
        for p in &parts {
            assert_eq!(p.output.start, at * 28 * 4);
            assert_eq!(p.input, p.output);
            let px = p.output.len() / (28 * 4);
            assert_eq!(p.output.len(), px * 28 * 4, "whole pixels");
            assert_eq!(p.skip, at * 24 * 4..(at + px) * 24 * 4);
            at += px;
        }
        assert_eq!(at, pixels);
    }
}
