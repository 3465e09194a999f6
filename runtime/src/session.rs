//! `Session`: one arena, one scratch buffer, one plan; `run` allocates nothing.

use std::ops::Range;
use std::time::{Duration, Instant};

use outpost_kernels::{KernelTable, Lines, Residual, ResidualF32, Tier};
use outpost_models::Model;

use crate::chain::{self, Chain};
use crate::error::{Result, RuntimeError};
use crate::parallel::{self, Part};
use crate::plan::{Elem, Kernel, Plan, Step};
use crate::pool::{MAX_THREADS, WorkerPool};

/// Most inputs one concat may have (views are kept on the stack).
pub const MAX_CONCAT_INPUTS: usize = 16;

/// How to build a session.
#[derive(Debug, Clone, Copy, Default)]
pub struct SessionOptions {
    /// Kernel tier; `None` takes `OUTPOST_KERNELS` or else the best this CPU supports.
    pub tier: Option<Tier>,
    /// Threads a run uses (intra-op parallelism; 0 or 1: the caller's thread only). Large
    /// convolutions are split by output rows across a persistent pool of `threads − 1`
    /// workers that sleep between runs ([`crate::pool`]); results are bit-exact with one
    /// thread.
    pub threads: usize,
}

/// A model ready to run: packed weights, an arena holding every activation, and scratch.
#[derive(Debug)]
pub struct Session {
    plan: Plan,
    table: KernelTable,
    arena: Lines,
    scratch: Lines,
    /// Model state between runs, one slice per `plan.states` entry back to back.
    state: Vec<u8>,
    /// With more than one thread: the workers, and each step's row slices (empty: run whole).
    pool: Option<WorkerPool>,
    parts: Vec<Vec<Part>>,
    /// The chains ([`crate::chain`]) in step order.
    chains: Vec<Chain>,
    /// Per step: the index in `chains` of the chain it starts, if any.
    chain_at: Vec<Option<usize>>,
    /// Bytes of each thread's scratch region.
    scratch_per: usize,
}

fn split(arena: &mut [u8], out: (usize, usize)) -> (&[u8], &mut [u8], &[u8], usize) {
    let (left, rest) = arena.split_at_mut(out.0);
    let (o, right) = rest.split_at_mut(out.1);
    (left, o, right, out.0 + out.1)
}

/// A read-only view of one input buffer, resolved against the two sides of the output.
fn view<'a>(
    left: &'a [u8],
    right: &'a [u8],
    right_start: usize,
    off: usize,
    len: usize,
) -> &'a [u8] {
    if off + len <= left.len() {
        &left[off..off + len]
    } else {
        &right[off - right_start..off - right_start + len]
    }
}

fn i8s(b: &[u8]) -> &[i8] {
    bytemuck::cast_slice(b)
}
fn i8s_mut(b: &mut [u8]) -> &mut [i8] {
    bytemuck::cast_slice_mut(b)
}
fn f32s(b: &[u8]) -> &[f32] {
    bytemuck::cast_slice(b)
}
fn f32s_mut(b: &mut [u8]) -> &mut [f32] {
    bytemuck::cast_slice_mut(b)
}

impl Session {
    /// Plan `model` and allocate everything it will ever need.
    pub fn new(model: &Model, options: SessionOptions) -> Result<Session> {
        let table = match options.tier {
            Some(t) => KernelTable::for_tier(t),
            None => KernelTable::from_env(),
        }
        .map_err(|e| RuntimeError::Tier(e.to_string()))?;
        let mut plan = Plan::new(model, table.tier())?;
        for s in &plan.steps {
            if matches!(s.kernel, Kernel::Concat { .. }) && s.inputs.len() > MAX_CONCAT_INPUTS {
                return Err(RuntimeError::Unsupported {
                    node: s.node.clone(),
                    op: s.op,
                    reason: format!("concat of more than {MAX_CONCAT_INPUTS} tensors"),
                });
            }
        }
        let threads = options.threads.max(1);
        if threads > MAX_THREADS {
            return Err(RuntimeError::Threads {
                threads,
                reason: format!("at most {MAX_THREADS}"),
                kind: outpost_hal::ErrorKind::InvalidInput,
            });
        }
        let mut parts: Vec<Vec<Part>> = plan
            .steps
            .iter()
            .map(|s| parallel::split(s, plan.buffers[s.output].bytes, threads))
            .collect();
        let mut chains = chain::find(&plan, &mut parts, threads);
        if !chains.is_empty() {
            let runs: Vec<_> = chains.iter().map(Chain::steps).collect();
            plan.place(&runs);
            // The placement keeps them apart; a chain whose buffers overlapped would run its
            // steps one job each (their slices stand alone).
            chains.retain(|c| c.disjoint(&plan));
        }
        let mut chain_at = vec![None; plan.steps.len()];
        for (n, c) in chains.iter().enumerate() {
            chain_at[c.start] = Some(n);
        }
        let split = parts.iter().filter(|p| !p.is_empty()).count();
        let scratch_per = parts
            .iter()
            .map(|p| parallel::scratch_bytes(p))
            .max()
            .unwrap_or(0)
            .max(plan.scratch_bytes);
        let pool = if threads > 1 {
            Some(WorkerPool::new(threads).map_err(|e| RuntimeError::Threads {
                threads,
                reason: format!("cannot start a worker thread: {e}"),
                kind: outpost_hal::ErrorKind::Capacity,
            })?)
        } else {
            None
        };
        // Each thread's scratch region starts on a cache line, as the arena does.
        let scratch_per = scratch_per.next_multiple_of(64);
        let arena = Lines::zeroed(plan.arena.size);
        let scratch = Lines::zeroed(if split > 0 {
            scratch_per * threads
        } else {
            plan.scratch_bytes
        });
        if threads > 1 {
            log::info!(
                "session: {split} of {} steps split across {threads} threads, {} chains",
                plan.steps.len(),
                chains.len()
            );
        }
        let state = plan
            .states
            .iter()
            .flat_map(|st| st.init.iter().copied())
            .collect();
        log::info!(
            "session: {} steps on {}, arena {} bytes (lower bound {}), scratch {} bytes",
            plan.steps.len(),
            table.tier(),
            plan.arena.size,
            plan.arena.lower_bound,
            plan.scratch_bytes
        );
        Ok(Session {
            plan,
            table,
            arena,
            scratch,
            state,
            pool,
            parts,
            chains,
            chain_at,
            scratch_per,
        })
    }

    /// The steps run as one job with step `step` (a chain: a split convolution and the
    /// pointwise convolutions and adds after it, each thread running its slice of all of
    /// them; docs/runtime.md, "Threads"), or `None` where it runs alone.
    pub fn chain(&self, step: usize) -> Option<Range<usize>> {
        self.chains
            .iter()
            .map(Chain::steps)
            .find(|r| r.contains(&step))
    }

    /// Threads a run uses ([`SessionOptions::threads`]).
    pub fn threads(&self) -> usize {
        self.pool.as_ref().map_or(1, WorkerPool::threads)
    }

    /// Steps a run splits across the threads (0 with one thread).
    pub fn split_steps(&self) -> usize {
        if self.pool.is_none() {
            return 0;
        }
        self.parts.iter().filter(|p| !p.is_empty()).count()
    }

    /// Whether a run splits step `step` (of [`Plan::steps`]) across the threads.
    pub fn is_split(&self, step: usize) -> bool {
        self.pool.is_some() && self.parts.get(step).is_some_and(|p| !p.is_empty())
    }

    /// Scratch bytes held, every thread's region together.
    pub fn scratch_bytes(&self) -> usize {
        self.scratch.len()
    }

    /// The plan this session runs.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The kernel tier.
    pub fn tier(&self) -> Tier {
        self.table.tier()
    }

    /// Bytes held by the arena, scratch and model state.
    pub fn memory_bytes(&self) -> usize {
        self.arena.len() + self.scratch.len() + self.state.len()
    }

    /// Whether the model carries state from one run to the next.
    pub fn is_stateful(&self) -> bool {
        !self.plan.states.is_empty()
    }

    /// Put the model state back to its initial value (a stateful model then behaves as if
    /// freshly loaded). Performs no heap allocation.
    pub fn reset_state(&mut self) {
        let mut at = 0;
        for st in &self.plan.states {
            self.state[at..at + st.init.len()].copy_from_slice(&st.init);
            at += st.init.len();
        }
    }

    /// Copy the stored state into its buffers (`load`) or the next state out of its buffers.
    fn move_state(&mut self, load: bool) {
        let Session {
            plan, arena, state, ..
        } = self;
        let bytes = arena.bytes_mut();
        let mut at = 0;
        for st in &plan.states {
            let n = st.init.len();
            let stored = &mut state[at..at + n];
            if load {
                let b = &plan.buffers[st.current];
                bytes[b.offset..b.offset + n].copy_from_slice(stored);
            } else {
                let b = &plan.buffers[st.next];
                stored.copy_from_slice(&bytes[b.offset..b.offset + n]);
            }
            at += n;
        }
    }

    fn buffer_bytes_mut(&mut self, b: usize) -> &mut [u8] {
        let buf = &self.plan.buffers[b];
        &mut self.arena.bytes_mut()[buf.offset..buf.offset + buf.bytes]
    }

    fn buffer_bytes(&self, b: usize) -> &[u8] {
        let buf = &self.plan.buffers[b];
        &self.arena.bytes()[buf.offset..buf.offset + buf.bytes]
    }

    fn input_buffer(&self, i: usize, want: outpost_hal::DType) -> Result<usize> {
        let b = *self
            .plan
            .inputs
            .get(i)
            .ok_or_else(|| RuntimeError::BadInput {
                name: format!("#{i}"),
                reason: format!("the model has {} inputs", self.plan.inputs.len()),
            })?;
        let buf = &self.plan.buffers[b];
        if buf.dtype != want {
            return Err(RuntimeError::BadInput {
                name: buf.name.clone(),
                reason: format!("is {}, not {want}", buf.dtype),
            });
        }
        Ok(b)
    }

    /// The int8 input buffer `i`, to fill in place before [`Session::run`].
    pub fn input_i8(&mut self, i: usize) -> Result<&mut [i8]> {
        let b = self.input_buffer(i, outpost_hal::DType::I8)?;
        Ok(i8s_mut(self.buffer_bytes_mut(b)))
    }

    /// The f32 input buffer `i`, to fill in place before [`Session::run`].
    pub fn input_f32(&mut self, i: usize) -> Result<&mut [f32]> {
        let b = self.input_buffer(i, outpost_hal::DType::F32)?;
        Ok(f32s_mut(self.buffer_bytes_mut(b)))
    }

    /// Output `i` as int8 (valid until the next run).
    pub fn output_i8(&self, i: usize) -> Option<&[i8]> {
        let b = *self.plan.outputs.get(i)?;
        (self.plan.buffers[b].dtype == outpost_hal::DType::I8).then(|| i8s(self.buffer_bytes(b)))
    }

    /// Output `i` as uint8 (valid until the next run).
    pub fn output_u8(&self, i: usize) -> Option<&[u8]> {
        let b = *self.plan.outputs.get(i)?;
        (self.plan.buffers[b].dtype == outpost_hal::DType::U8).then(|| self.buffer_bytes(b))
    }

    /// Output `i` as f32 (valid until the next run).
    pub fn output_f32(&self, i: usize) -> Option<&[f32]> {
        let b = *self.plan.outputs.get(i)?;
        (self.plan.buffers[b].dtype == outpost_hal::DType::F32).then(|| f32s(self.buffer_bytes(b)))
    }

    /// Run every step once. Inputs must be written before each run (their memory is reused
    /// once they are no longer needed). Performs no heap allocation.
    pub fn run(&mut self) {
        self.move_state(true);
        let mut i = 0;
        while i < self.plan.steps.len() {
            i += self.step_or_chain(i);
        }
        self.move_state(false);
    }

    /// Run like [`Session::run`], adding each step's wall time to `times[step]` (a chain's
    /// to its first step's: [`Session::chain`]).
    pub fn run_profiled(&mut self, times: &mut [Duration]) {
        self.move_state(true);
        let mut i = 0;
        while i < self.plan.steps.len() {
            let t = Instant::now();
            let n = self.step_or_chain(i);
            if let Some(slot) = times.get_mut(i) {
                *slot += t.elapsed();
            }
            i += n;
        }
        self.move_state(false);
    }

    /// Runs step `i`, or the chain it starts; returns the steps run.
    fn step_or_chain(&mut self, i: usize) -> usize {
        let (Some(n), Some(pool)) = (self.chain_at[i], &self.pool) else {
            self.step(i);
            return 1;
        };
        let c = &self.chains[n];
        chain::run(
            pool,
            &self.table,
            &self.plan,
            &self.parts,
            c,
            self.arena.bytes_mut(),
            self.scratch.bytes_mut(),
            self.scratch_per,
        );
        c.len
    }

    fn step(&mut self, i: usize) {
        let Session {
            plan,
            table,
            arena,
            scratch,
            pool,
            parts,
            scratch_per,
            ..
        } = self;
        let s: &Step = &plan.steps[i];
        let bufs = &plan.buffers;
        let out_buf = &bufs[s.output];
        let bytes = arena.bytes_mut();
        let scratch = scratch.bytes_mut();
        let (left, out, right, right_start) = split(bytes, (out_buf.offset, out_buf.bytes));
        let input = |k: usize| {
            let b = &bufs[s.inputs[k]];
            view(left, right, right_start, b.offset, b.bytes)
        };
        if let Some(pool) = pool
            && !parts[i].is_empty()
        {
            let skip = if s.inputs.len() > 1 { input(1) } else { &[] };
            parallel::run(
                pool,
                table,
                &parts[i],
                input(0),
                skip,
                out,
                scratch,
                *scratch_per,
            );
            return;
        }
        match &s.kernel {
            Kernel::ConvI8(p) => table.conv2d_i8(p, i8s(input(0)), i8s_mut(out), scratch),
            Kernel::DepthwiseI8(p) => table.depthwise_i8(p, i8s(input(0)), i8s_mut(out), scratch),
            Kernel::FcI8(p) => table.fully_connected_i8(p, i8s(input(0)), i8s_mut(out), scratch),
            Kernel::AddI8(q) => table.add_i8(q, i8s(input(0)), i8s(input(1)), i8s_mut(out)),
            Kernel::Add16I8(q) => table.add16_i8(q, i8s(input(0)), i8s(input(1)), i8s_mut(out)),
            Kernel::ConvAdd16I8(p, add, pad) => {
                let r = Residual {
                    add: *add,
                    pad: *pad,
                    skip: i8s(input(1)),
                };
                table.conv2d_add16_i8(p, i8s(input(0)), &r, i8s_mut(out), scratch)
            }
            Kernel::Add16I8Padded(q, pad) => {
                table.add16_i8_padded(q, pad, i8s(input(0)), i8s(input(1)), i8s_mut(out))
            }
            Kernel::MulI8(q) => table.mul_i8(q, i8s(input(0)), i8s(input(1)), i8s_mut(out)),
            Kernel::MeanI8 {
                batch,
                pixels,
                channels,
                in_zp,
                requant,
                out_zp,
            } => table.global_mean_i8(
                i8s(input(0)),
                *batch,
                *pixels,
                *channels,
                *in_zp,
                *requant,
                *out_zp,
                i8s_mut(out),
            ),
            Kernel::MaxPoolI8(p) => table.max_pool_i8(p, i8s(input(0)), i8s_mut(out)),
            Kernel::AvgPoolI8(p) => table.avg_pool_i8(p, i8s(input(0)), i8s_mut(out)),
            Kernel::LutI8(l) => table.lut_i8(l, i8s(input(0)), i8s_mut(out)),
            Kernel::SoftmaxI8 {
                depth,
                beta,
                in_scale,
                out_scale,
                out_zp,
            } => table.softmax_i8(
                i8s(input(0)),
                *depth,
                *beta,
                *in_scale,
                *out_scale,
                *out_zp,
                i8s_mut(out),
            ),
            Kernel::Quantize { scale, zp } => {
                table.quantize(f32s(input(0)), *scale, *zp, i8s_mut(out))
            }
            Kernel::Requantize {
                in_zp,
                requant,
                out_zp,
                to_u8,
            } => {
                if *to_u8 {
                    table.requantize_u8(i8s(input(0)), *in_zp, *requant, *out_zp, out)
                } else {
                    table.requantize_i8(i8s(input(0)), *in_zp, *requant, *out_zp, i8s_mut(out))
                }
            }
            Kernel::Slice {
                shape,
                begin,
                size,
                stride,
                elem,
            } => match elem {
                Elem::I8 => table.slice(i8s(input(0)), shape, begin, size, stride, i8s_mut(out)),
                Elem::F32 => table.slice(f32s(input(0)), shape, begin, size, stride, f32s_mut(out)),
            },
            Kernel::Dequantize { scale, zp } => {
                table.dequantize(i8s(input(0)), *scale, *zp, f32s_mut(out))
            }
            Kernel::ConvF32(p) => table.conv2d_f32(p, f32s(input(0)), f32s_mut(out)),
            Kernel::ConvAddF32 { conv, act, pad } => {
                let r = ResidualF32 {
                    act: *act,
                    pad: *pad,
                    skip: f32s(input(1)),
                };
                table.conv2d_add_f32(conv, f32s(input(0)), &r, f32s_mut(out))
            }
            Kernel::DepthwiseF32(p) => table.depthwise_f32(p, f32s(input(0)), f32s_mut(out)),
            Kernel::FcF32(p) => table.fully_connected_f32(p, f32s(input(0)), f32s_mut(out)),
            Kernel::AddF32(r) => table.add_f32(f32s(input(0)), f32s(input(1)), f32s_mut(out), *r),
            Kernel::AddF32Padded { act, pad } => {
                let (a, b) = (f32s(input(0)), f32s(input(1)));
                table.add_f32_padded(pad, a, b, f32s_mut(out), *act)
            }
            Kernel::MulF32(r) => table.mul_f32(f32s(input(0)), f32s(input(1)), f32s_mut(out), *r),
            Kernel::MeanF32 {
                batch,
                pixels,
                channels,
            } => table.global_mean_f32(f32s(input(0)), *batch, *pixels, *channels, f32s_mut(out)),
            Kernel::MaxPoolF32(p) => table.max_pool_f32(p, f32s(input(0)), f32s_mut(out)),
            Kernel::AvgPoolF32(p) => table.avg_pool_f32(p, f32s(input(0)), f32s_mut(out)),
            Kernel::MapF32(f) => table.map_f32(f32s(input(0)), f32s_mut(out), *f),
            Kernel::SoftmaxF32 { depth, beta } => {
                table.softmax_f32(f32s(input(0)), *depth, *beta, f32s_mut(out))
            }
            Kernel::Concat { outer, elem } => {
                let n = s.inputs.len();
                match elem {
                    Elem::I8 => {
                        let mut views: [&[i8]; MAX_CONCAT_INPUTS] = [&[]; MAX_CONCAT_INPUTS];
                        for (k, v) in views.iter_mut().enumerate().take(n) {
                            *v = i8s(input(k));
                        }
                        table.concat(&views[..n], *outer, i8s_mut(out))
                    }
                    Elem::F32 => {
                        let mut views: [&[f32]; MAX_CONCAT_INPUTS] = [&[]; MAX_CONCAT_INPUTS];
                        for (k, v) in views.iter_mut().enumerate().take(n) {
                            *v = f32s(input(k));
                        }
                        table.concat(&views[..n], *outer, f32s_mut(out))
                    }
                }
            }
            Kernel::Pad {
                shape,
                pads,
                value,
                elem,
            } => match elem {
                Elem::I8 => table.pad_i8(i8s(input(0)), *shape, *pads, *value as i8, i8s_mut(out)),
                Elem::F32 => table.pad(f32s(input(0)), *shape, *pads, 0.0f32, f32s_mut(out)),
            },
            Kernel::Transpose { shape, perm, elem } => match elem {
                Elem::I8 => table.transpose(i8s(input(0)), shape, perm, i8s_mut(out)),
                Elem::F32 => table.transpose(f32s(input(0)), shape, perm, f32s_mut(out)),
            },
            Kernel::Resize {
                shape,
                out: [oh, ow],
                bilinear,
                options,
                elem,
            } => match (elem, bilinear) {
                (Elem::I8, true) => table.resize_bilinear_i8(
                    i8s(input(0)),
                    *shape,
                    *oh,
                    *ow,
                    *options,
                    i8s_mut(out),
                ),
                (Elem::F32, true) => table.resize_bilinear_f32(
                    f32s(input(0)),
                    *shape,
                    *oh,
                    *ow,
                    *options,
                    f32s_mut(out),
                ),
                (Elem::I8, false) => {
                    table.resize_nearest(i8s(input(0)), *shape, *oh, *ow, *options, i8s_mut(out))
                }
                (Elem::F32, false) => {
                    table.resize_nearest(f32s(input(0)), *shape, *oh, *ow, *options, f32s_mut(out))
                }
            },
        }
    }
}
