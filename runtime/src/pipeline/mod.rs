//! The inference loop: sources → frame pool → inference → publisher, with per-stream
//! backpressure, counters and latency histograms.
//!
//! ```text
//! capture thread (per stream)        inference thread (per model)                caller's thread
//! free slot ─► Source::next_frame ─► [ring] ─► preprocess ► run ► decode ─► [publish] ─► callback
//!     ▲                                                                                     │
//!     └──────────────────────────── slot back to the free list ─────────────────────────────┘
//! ```
//!
//! Every stream owns a pool of preallocated [slots](FrameBuf) sized for its largest frame.
//! Slots travel by pointer through lock-free [`ArrayQueue`]s: the free list, the stream's
//! inference ring and the publish ring. Once [`Pipeline::run`] has started its threads, the
//! steady-state path (copying a frame into a slot, preprocessing, inference, decoding, mapping
//! detections to source pixels, the callback's view of the result) allocates nothing; the test
//! `runtime/tests/pipeline_noalloc.rs` counts it over 1,000+ frames.
//!
//! When inference falls behind, the stream's [`Policy`] decides and every drop is counted by
//! [`DropReason`]:
//! - [`Policy::Latest`]: the ring holds one frame; a new frame replaces a waiting one
//!   ([`DropReason::Superseded`]). Lowest latency: what a live camera wants.
//! - [`Policy::DropOldest`]: the ring holds `queue_depth` frames; when full, the oldest is dropped
//!   ([`DropReason::QueueFull`]).
//! - [`Policy::Block`]: the capture thread waits for room up to a deadline, then drops the new
//!   frame ([`DropReason::Deadline`]).
//!
//! If the publisher falls behind, slots stop coming back: under `latest` and `drop-oldest` the
//! capture thread takes the oldest waiting frame back (counted as above), under `block` it waits.
//! Latency is therefore bounded by the pool size in every case.
//!
//! A source that loses its device or connection returns a transient error
//! ([`SourceError::Disconnected`]): its capture thread counts it
//! ([`Counters::source_failures`]), waits with exponential backoff and jitter
//! ([`StreamConfig::backoff`]; the wait ends early on stop), and calls the source again, which
//! reconnects; the first good frame counts a reconnect ([`Counters::reconnects`]) and resets the
//! backoff. A failing source never takes the pipeline down, and other streams go on as they
//! were. Any other source error ends that stream only ([`StreamReport::error`]).
//!
//! Shutdown: setting the stop flag makes every capture thread stop taking frames; frames already
//! captured drain through inference and the publisher, then [`Pipeline::run`] returns the final
//! [`Report`]. Once drained, for every stream `captured == inferred + dropped` and
//! `published == inferred`.

mod backoff;
mod source;
mod stats;

#[cfg(test)]
mod tests;

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;
use outpost_hal::DType;
use outpost_models::Model;
use outpost_models::decode::{Decoded, Detection, Detections, TopK};
use outpost_models::graph::QuantParams;
use outpost_models::spec::Layout;
use thiserror::Error;

use crate::error::RuntimeError;
use crate::infer::Inference;
use crate::preprocess::{Output, PreprocessError, Preprocessor};
use crate::session::SessionOptions;
use backoff::BackoffState;

pub use backoff::Backoff;
pub use source::{
    FrameBuf, FrameKind, FrameMeta, ImageSource, NAME_CAPACITY, Name, Source, SourceError, name,
};
pub use stats::{Counters, DropReason, Histogram, HistogramSnapshot, Stage, StreamStats};

/// How a stream behaves when inference cannot keep up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Policy {
    /// Keep only the newest frame waiting (a one-frame ring); older ones are dropped.
    #[default]
    Latest,
    /// A ring of `queue_depth` frames; when full, the oldest is dropped.
    DropOldest,
    /// Wait up to this long for room in the ring, then drop the new frame.
    Block(Duration),
}

impl Policy {
    /// The deadline of `block` when none is given.
    pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(1);

    /// The policy's name as [`FromStr`] takes it.
    pub fn name(&self) -> &'static str {
        match self {
            Policy::Latest => "latest",
            Policy::DropOldest => "drop-oldest",
            Policy::Block(_) => "block",
        }
    }
}

/// `latest`, `drop-oldest`, `block` (deadline 1 s) or `block:<ms>`.
impl FromStr for Policy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "latest" => Ok(Policy::Latest),
            "drop-oldest" => Ok(Policy::DropOldest),
            "block" => Ok(Policy::Block(Policy::DEFAULT_DEADLINE)),
            _ => match s.strip_prefix("block:").map(str::parse::<u64>) {
                Some(Ok(ms)) => Ok(Policy::Block(Duration::from_millis(ms))),
                _ => Err(format!(
                    "unknown policy {s:?}: use latest, drop-oldest, block or block:<milliseconds>"
                )),
            },
        }
    }
}

/// Why a pipeline cannot be built.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// The model cannot be planned or decoded.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// The model's input does not take images.
    #[error(transparent)]
    Input(#[from] PreprocessError),
    /// A stream names a model that was not added.
    #[error("stream `{stream}`: no model #{model}")]
    NoModel {
        /// The stream.
        stream: String,
        /// The model index given.
        model: usize,
    },
    /// A stream's source has no frame size.
    #[error("stream `{stream}`: the source reports frames of 0 bytes")]
    EmptySource {
        /// The stream.
        stream: String,
    },
    /// The model's first input is neither an image nor an int8/f32 vector samples can fill.
    #[error("model input `{tensor}`: {reason}")]
    SampleInput {
        /// The input tensor.
        tensor: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A stream's frames do not fit its model's input (images into a vector model, a sample
    /// window of another size).
    #[error("stream `{stream}`: {reason}")]
    Mismatch {
        /// The stream.
        stream: String,
        /// What does not fit.
        reason: String,
    },
}

/// One stream: a source, the model it feeds, its backpressure.
pub struct StreamConfig {
    /// Name in results and reports.
    pub name: String,
    /// Where frames come from.
    pub source: Box<dyn Source>,
    /// Index of the model ([`Pipeline::add_model`]'s return value).
    pub model: usize,
    /// What happens when inference falls behind.
    pub policy: Policy,
    /// Frames the ring holds under `drop-oldest` and `block` (`latest` always holds 1).
    pub queue_depth: usize,
    /// Stop capturing after this many frames.
    pub max_frames: Option<u64>,
    /// How long to wait before calling the source again after a transient error.
    pub backoff: Backoff,
}

impl std::fmt::Debug for StreamConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamConfig")
            .field("name", &self.name)
            .field("model", &self.model)
            .field("policy", &self.policy)
            .field("queue_depth", &self.queue_depth)
            .field("max_frames", &self.max_frames)
            .field("backoff", &self.backoff)
            .finish_non_exhaustive()
    }
}

impl StreamConfig {
    /// A stream with the `latest` policy, a queue depth of 4, no frame limit and the default
    /// [`Backoff`] (100 ms doubling to 5 s).
    pub fn new(name: impl Into<String>, source: Box<dyn Source>, model: usize) -> Self {
        StreamConfig {
            name: name.into(),
            source,
            model,
            policy: Policy::Latest,
            queue_depth: 4,
            max_frames: None,
            backoff: Backoff::default(),
        }
    }

    /// Set the backoff after transient source errors.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Set the policy.
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// Set the queue depth (at least 1).
    pub fn queue_depth(mut self, depth: usize) -> Self {
        self.queue_depth = depth.max(1);
        self
    }

    /// Stop after `n` frames.
    pub fn max_frames(mut self, n: Option<u64>) -> Self {
        self.max_frames = n;
        self
    }
}

/// Time spent by one frame in each stage before the callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timings {
    /// The source writing the frame into its slot.
    pub capture: Duration,
    /// Waiting in the ring for the inference thread.
    pub queue: Duration,
    /// Preprocessing into the model input.
    pub preprocess: Duration,
    /// Session run plus output decoding.
    pub infer: Duration,
    /// Waiting for the publisher.
    pub publish_queue: Duration,
    /// From the start of capture to the start of the callback.
    pub latency: Duration,
}

/// A frame slot: the pixels and everything the pipeline learns about them.
#[derive(Debug)]
struct Slot {
    stream: usize,
    frame: FrameBuf,
    meta: FrameMeta,
    /// Detections in source pixels.
    detections: Detections,
    detections_dropped: usize,
    top_k: TopK,
    timings: Timings,
    t_start: Instant,
    t_queued: Instant,
    t_inferred: Instant,
}

/// What the publish callback gets for each frame. Everything is borrowed from the frame's slot,
/// which goes back to the pool when the callback returns.
#[derive(Debug, Clone, Copy)]
pub struct FrameResult<'a> {
    /// The stream's name.
    pub stream: &'a str,
    /// The stream's index, in the order streams were added.
    pub stream_index: usize,
    /// The frame's pixels.
    pub frame: &'a FrameBuf,
    /// What the source said about the frame.
    pub meta: &'a FrameMeta,
    /// Detections of every detection output, boxes and keypoints in source pixels (clamped to
    /// the frame), in decoder order.
    pub detections: &'a [Detection],
    /// Detections that did not fit ([`outpost_models::decode::MAX_DETECTIONS`]).
    pub detections_dropped: usize,
    /// Top-k `(class, score)` of a classification output (empty otherwise).
    pub top_k: &'a [(u32, f32)],
    /// The model's class labels (empty when it has none).
    pub labels: &'a [String],
    /// Time spent per stage.
    pub timings: &'a Timings,
}

impl FrameResult<'_> {
    /// The label of class `l`, if the model names it.
    pub fn label(&self, l: u32) -> Option<&str> {
        self.labels.get(l as usize).map(String::as_str)
    }

    /// The sample window of a sample frame, row-major `frames × channels` (empty for an image;
    /// see [`FrameBuf::sample_frames`], [`FrameBuf::sample_channels`]).
    pub fn samples(&self) -> &[f32] {
        self.frame.samples()
    }
}

/// How a model's first input is filled.
#[derive(Debug)]
enum ModelInput {
    /// From images, through the preprocessor.
    Image(Box<Preprocessor>),
    /// From sample windows of exactly `len` values: int8 through `quant`, f32 as they are.
    Samples {
        len: usize,
        quant: Option<QuantParams>,
    },
}

/// What a model index's inference thread does with each frame.
#[derive(Debug)]
enum Worker {
    /// Fill the input, run, decode.
    Model {
        inf: Box<Inference>,
        input: ModelInput,
    },
    /// No model ([`Pipeline::add_passthrough`]): frames go to the publisher as they are.
    Passthrough,
}

/// What frames a worker takes (checked against each stream's source).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Accepts {
    Images,
    Samples(usize),
    Anything,
}

/// Write `samples` into an int8 input through its quantization (round to nearest, saturate).
fn quantize_into(samples: &[f32], q: QuantParams, out: &mut [i8]) {
    let inv = 1.0 / q.scale;
    let zp = q.zero_point as f32;
    for (o, &x) in out.iter_mut().zip(samples) {
        *o = (x * inv + zp).round().clamp(-128.0, 127.0) as i8;
    }
}

impl Worker {
    fn accepts(&self) -> Accepts {
        match self {
            Worker::Model {
                input: ModelInput::Image(_),
                ..
            } => Accepts::Images,
            Worker::Model {
                input: ModelInput::Samples { len, .. },
                ..
            } => Accepts::Samples(*len),
            Worker::Passthrough => Accepts::Anything,
        }
    }

    /// Fill the input from the slot's frame, run and decode; detections into the slot in
    /// source pixels (image frames).
    fn infer(&mut self, slot: &mut Slot) -> Result<(), RuntimeError> {
        slot.detections.clear();
        slot.top_k.clear();
        slot.detections_dropped = 0;
        let (inf, input) = match self {
            Worker::Model { inf, input } => (inf, input),
            Worker::Passthrough => {
                slot.timings.preprocess = Duration::ZERO;
                slot.timings.infer = Duration::ZERO;
                return Ok(());
            }
        };
        let bad = |reason: String| RuntimeError::BadInput {
            name: "frame".into(),
            reason,
        };
        let t0 = Instant::now();
        let session = inf.session_mut();
        let lb = match input {
            ModelInput::Image(pre) => {
                if slot.frame.kind() != FrameKind::Image {
                    return Err(bad("a sample window for an image model".into()));
                }
                let view = slot.frame.view();
                let lb = match pre.dtype() {
                    DType::I8 => pre.run(&view, Output::I8(session.input_i8(0)?)),
                    _ => pre.run(&view, Output::F32(session.input_f32(0)?)),
                }
                .map_err(|e| bad(e.to_string()))?;
                Some(lb)
            }
            ModelInput::Samples { len, quant } => {
                let samples = slot.frame.samples();
                if samples.len() != *len {
                    return Err(bad(format!(
                        "{} samples for an input of {len}",
                        samples.len()
                    )));
                }
                match quant {
                    Some(q) => quantize_into(samples, *q, session.input_i8(0)?),
                    None => session.input_f32(0)?.copy_from_slice(samples),
                }
                None
            }
        };
        let t1 = Instant::now();
        inf.run_filled()?;
        let t2 = Instant::now();
        for d in inf.decoded() {
            match d {
                Decoded::Detections {
                    detections,
                    dropped,
                } => {
                    slot.detections_dropped += dropped;
                    for det in detections {
                        let mut out = *det;
                        let Some(lb) = &lb else {
                            // Not an image: nothing to map to.
                            if slot.detections.push(out).is_err() {
                                slot.detections_dropped += 1;
                            }
                            continue;
                        };
                        out.bbox = lb.box_to_source(det.bbox);
                        let (w, h) = (lb.src_w as f32, lb.src_h as f32);
                        for k in out
                            .keypoints
                            .iter_mut()
                            .take(usize::from(det.num_keypoints))
                        {
                            let (x, y) = lb.to_source(k[0], k[1]);
                            *k = [x.clamp(0.0, w), y.clamp(0.0, h)];
                        }
                        if slot.detections.push(out).is_err() {
                            slot.detections_dropped += 1;
                        }
                    }
                }
                Decoded::TopK(top) if slot.top_k.is_empty() => {
                    for &c in top {
                        // Same capacity: cannot fail.
                        let _ = slot.top_k.push(c);
                    }
                }
                _ => {}
            }
        }
        slot.timings.preprocess = t1 - t0;
        slot.timings.infer = t2 - t1;
        Ok(())
    }
}

struct ModelEntry {
    name: String,
    worker: Worker,
    labels: Vec<String>,
}

/// The int8 quantization (or `None`: f32) and element count of `model`'s first input, when it
/// is a vector that sample windows can fill.
fn sample_input(model: &Model) -> Result<(usize, Option<QuantParams>), PipelineError> {
    let g = &model.meta().graph;
    let tensor = g.inputs.first().cloned().unwrap_or_default();
    let err = |reason: &str| PipelineError::SampleInput {
        tensor: tensor.clone(),
        reason: reason.into(),
    };
    let decl = g.tensor(&tensor).ok_or_else(|| err("not declared"))?;
    let len = decl.shape.iter().product::<usize>();
    match (decl.dtype, decl.quant) {
        (DType::I8, Some(q)) => Ok((len, Some(q))),
        (DType::F32, _) => Ok((len, None)),
        _ => Err(err(
            "sample windows fill int8 (quantized) or f32 inputs only",
        )),
    }
}

/// A pipeline being assembled: add models, then streams, then [`Pipeline::run`].
pub struct Pipeline {
    models: Vec<ModelEntry>,
    streams: Vec<StreamConfig>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field(
                "models",
                &self.models.iter().map(|m| &m.name).collect::<Vec<_>>(),
            )
            .field("streams", &self.streams)
            .finish()
    }
}

impl Default for Pipeline {
    fn default() -> Self {
        Self::new()
    }
}

/// Slots of a stream beyond its ring: one being captured, one being inferred, one in the
/// callback, and two waiting for the publisher.
const SLOT_MARGIN: usize = 5;

/// How long an idle thread sleeps before looking again (it is also woken when work arrives).
const IDLE: Duration = Duration::from_millis(1);

impl Pipeline {
    /// An empty pipeline.
    pub fn new() -> Self {
        Pipeline {
            models: Vec::new(),
            streams: Vec::new(),
        }
    }

    /// Plan `model` and return its index for [`StreamConfig::model`]. Each model gets one
    /// inference thread. Its first input is an image (fed from image frames through the
    /// preprocessor) or, with the `nc` layout, a vector fed from sample windows of exactly as
    /// many values (int8 through the input's scale and zero point, f32 as they are).
    pub fn add_model(
        &mut self,
        name: impl Into<String>,
        model: &Model,
        options: SessionOptions,
    ) -> Result<usize, PipelineError> {
        let inf = Inference::new(model, options)?;
        let input = match model.meta().inputs.first().map(|s| s.layout) {
            Some(Layout::Nc) => {
                let (len, quant) = sample_input(model)?;
                ModelInput::Samples { len, quant }
            }
            _ => ModelInput::Image(Box::new(Preprocessor::new(model, 0)?)),
        };
        self.models.push(ModelEntry {
            name: name.into(),
            labels: inf.labels().to_vec(),
            worker: Worker::Model {
                inf: Box::new(inf),
                input,
            },
        });
        Ok(self.models.len() - 1)
    }

    /// A model index whose thread runs no model: its streams' frames (images or sample
    /// windows) go to the publisher as they are, with no detections. For publishing sensor
    /// streams without a model.
    pub fn add_passthrough(&mut self, name: impl Into<String>) -> usize {
        self.models.push(ModelEntry {
            name: name.into(),
            labels: Vec::new(),
            worker: Worker::Passthrough,
        });
        self.models.len() - 1
    }

    /// Add a stream; returns its index.
    pub fn add_stream(&mut self, stream: StreamConfig) -> Result<usize, PipelineError> {
        if stream.model >= self.models.len() {
            return Err(PipelineError::NoModel {
                stream: stream.name,
                model: stream.model,
            });
        }
        if stream.source.frame_capacity() == 0 {
            return Err(PipelineError::EmptySource {
                stream: stream.name,
            });
        }
        let window = stream.source.sample_window();
        let reason = match (self.models[stream.model].worker.accepts(), window) {
            (Accepts::Images, Some((f, c))) => Some(format!(
                "the source delivers windows of {f}×{c} samples; the model takes images"
            )),
            (Accepts::Samples(len), None) => Some(format!(
                "the source delivers images; the model takes {len} values"
            )),
            (Accepts::Samples(len), Some((f, c))) if f * c != len => Some(format!(
                "the source delivers windows of {f}×{c} = {} samples; the model takes {len}",
                f * c
            )),
            (Accepts::Samples(_), Some((f, c))) if stream.source.frame_capacity() < f * c * 4 => {
                Some(format!(
                    "the source's frame capacity is {} bytes, under its {f}×{c} window",
                    stream.source.frame_capacity()
                ))
            }
            _ => None,
        };
        if let Some(reason) = reason {
            return Err(PipelineError::Mismatch {
                stream: stream.name,
                reason,
            });
        }
        self.streams.push(stream);
        Ok(self.streams.len() - 1)
    }

    /// The labels of model `i`.
    pub fn labels(&self, model: usize) -> &[String] {
        self.models
            .get(model)
            .map(|m| m.labels.as_slice())
            .unwrap_or(&[])
    }

    /// Run until every source has ended or `stop` is set, then drain and return the counters.
    ///
    /// Starts one capture thread per stream and one inference thread per model; `publish` runs
    /// on the calling thread for every inferred frame, in completion order. Frames captured
    /// before `stop` was set are still inferred and published.
    pub fn run<F>(self, stop: &AtomicBool, mut publish: F) -> Report
    where
        F: FnMut(&FrameResult<'_>),
    {
        let started = Instant::now();
        let Pipeline { models, streams } = self;
        let mut total_slots = 0;
        let mut shared_streams = Vec::with_capacity(streams.len());
        let mut sources = Vec::with_capacity(streams.len());
        for (i, s) in streams.into_iter().enumerate() {
            let depth = match s.policy {
                Policy::Latest => 1,
                _ => s.queue_depth.max(1),
            };
            let slots = depth + SLOT_MARGIN;
            total_slots += slots;
            let free = ArrayQueue::new(slots);
            let capacity = s.source.frame_capacity();
            for _ in 0..slots {
                let slot = Box::new(Slot {
                    stream: i,
                    frame: FrameBuf::new(capacity),
                    meta: FrameMeta::default(),
                    detections: Detections::new(),
                    detections_dropped: 0,
                    top_k: TopK::new(),
                    timings: Timings::default(),
                    t_start: started,
                    t_queued: started,
                    t_inferred: started,
                });
                // The queue holds exactly `slots`.
                let _ = free.push(slot);
            }
            shared_streams.push(StreamShared {
                name: s.name,
                model: s.model,
                policy: s.policy,
                free,
                ring: ArrayQueue::new(depth),
                stats: StreamStats::default(),
                capture_done: AtomicBool::new(false),
                capture_thread: OnceLock::new(),
                error: Mutex::new(None),
            });
            sources.push((s.source, s.max_frames, s.backoff));
        }
        let mut labels = Vec::with_capacity(models.len());
        let mut workers = Vec::with_capacity(models.len());
        let mut model_names = Vec::with_capacity(models.len());
        for m in models {
            labels.push(m.labels);
            workers.push(m.worker);
            model_names.push(m.name);
        }
        let shared = Shared {
            models: (0..workers.len())
                .map(|_| ModelShared {
                    done: AtomicBool::new(false),
                    thread: OnceLock::new(),
                })
                .collect(),
            publish: ArrayQueue::new(total_slots.max(1)),
            publisher: thread::current(),
            publisher_gone: AtomicBool::new(false),
            streams: shared_streams,
        };
        let sh = &shared;
        thread::scope(|scope| {
            for (mi, worker) in workers.into_iter().enumerate() {
                let mine: Vec<usize> = (0..sh.streams.len())
                    .filter(|&s| sh.streams[s].model == mi)
                    .collect();
                thread::Builder::new()
                    .name(format!("outpost-infer-{}", model_names[mi]))
                    .spawn_scoped(scope, move || infer_loop(sh, mi, worker, &mine))
                    .expect("spawn an inference thread");
            }
            for (si, (source, max_frames, backoff)) in sources.into_iter().enumerate() {
                thread::Builder::new()
                    .name(format!("outpost-capture-{}", sh.streams[si].name))
                    .spawn_scoped(scope, move || {
                        let backoff = BackoffState::new(backoff, si as u64);
                        capture_loop(sh, si, source, max_frames, backoff, stop)
                    })
                    .expect("spawn a capture thread");
            }
            publish_loop(sh, &labels, &mut publish);
        });
        Report {
            elapsed: started.elapsed(),
            streams: shared
                .streams
                .into_iter()
                .map(|s| StreamReport {
                    counters: s.stats.counters(),
                    stages: Stage::ALL.map(|st| s.stats.stage(st)),
                    error: s.error.into_inner().unwrap_or_else(|e| e.into_inner()),
                    name: s.name,
                    policy: s.policy,
                })
                .collect(),
        }
    }
}

/// The final state of one stream.
#[derive(Debug, Clone)]
pub struct StreamReport {
    /// The stream's name.
    pub name: String,
    /// Its policy.
    pub policy: Policy,
    /// Frame counters.
    pub counters: Counters,
    /// Latency per stage, in [`Stage::ALL`] order.
    pub stages: [HistogramSnapshot; Stage::ALL.len()],
    /// Why the source stopped early, if it failed.
    pub error: Option<String>,
}

impl StreamReport {
    /// The histogram of one stage.
    pub fn stage(&self, stage: Stage) -> &HistogramSnapshot {
        &self.stages[stage as usize]
    }
}

/// What [`Pipeline::run`] returns.
#[derive(Debug, Clone)]
pub struct Report {
    /// Every stream, in the order added.
    pub streams: Vec<StreamReport>,
    /// Wall time of the run.
    pub elapsed: Duration,
}

impl Report {
    /// The counters of all streams added up (`max_queued`: the largest).
    pub fn totals(&self) -> Counters {
        let mut t = Counters::default();
        for s in &self.streams {
            t.add(&s.counters);
        }
        t
    }

    /// The histogram of `stage` over all streams.
    pub fn stage(&self, stage: Stage) -> HistogramSnapshot {
        let mut h = HistogramSnapshot::default();
        for s in &self.streams {
            h.merge(s.stage(stage));
        }
        h
    }
}

struct StreamShared {
    name: String,
    model: usize,
    policy: Policy,
    free: ArrayQueue<Box<Slot>>,
    ring: ArrayQueue<Box<Slot>>,
    stats: StreamStats,
    capture_done: AtomicBool,
    capture_thread: OnceLock<Thread>,
    error: Mutex<Option<String>>,
}

struct ModelShared {
    done: AtomicBool,
    thread: OnceLock<Thread>,
}

struct Shared {
    streams: Vec<StreamShared>,
    models: Vec<ModelShared>,
    publish: ArrayQueue<Box<Slot>>,
    publisher: Thread,
    /// Set when the publisher leaves (normally, or unwinding from a panicking callback): the
    /// capture threads stop.
    publisher_gone: AtomicBool,
}

/// Runs its closure when dropped: a thread that ends, even by a panic, sets its "done" flag so
/// the others do not wait for it forever.
struct OnDrop<F: FnMut()>(F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}

fn wake(t: &OnceLock<Thread>) {
    if let Some(t) = t.get() {
        t.unpark();
    }
}

/// Whether a capture thread should stop taking frames: the caller asked, the publisher is gone,
/// or the stream's inference thread ended (it panicked).
fn stopping(sh: &Shared, st: &StreamShared, stop: &AtomicBool) -> bool {
    stop.load(Ordering::Acquire)
        || sh.publisher_gone.load(Ordering::Acquire)
        || sh.models[st.model].done.load(Ordering::Acquire)
}

/// Sleep until `due`, looking at the stop conditions at least every few milliseconds. False if
/// stopped.
fn sleep_until(due: Instant, sh: &Shared, st: &StreamShared, stop: &AtomicBool) -> bool {
    loop {
        if stopping(sh, st, stop) {
            return false;
        }
        let now = Instant::now();
        if now >= due {
            return true;
        }
        thread::sleep((due - now).min(Duration::from_millis(5)));
    }
}

/// Why a frame taken back from the ring is dropped, by policy.
fn superseded(policy: Policy) -> DropReason {
    match policy {
        Policy::Latest => DropReason::Superseded,
        Policy::DropOldest => DropReason::QueueFull,
        Policy::Block(_) => DropReason::Deadline,
    }
}

/// A free slot for the next frame: from the free list; failing that (the publisher is behind),
/// under `latest`/`drop-oldest` the oldest frame waiting for inference, dropped; under `block`,
/// wait. `None` when stopped while waiting.
fn acquire(sh: &Shared, st: &StreamShared, stop: &AtomicBool) -> Option<Box<Slot>> {
    loop {
        if let Some(s) = st.free.pop() {
            return Some(s);
        }
        if !matches!(st.policy, Policy::Block(_))
            && let Some(s) = st.ring.pop()
        {
            st.stats.dropped(superseded(st.policy));
            return Some(s);
        }
        if stopping(sh, st, stop) {
            return None;
        }
        thread::park_timeout(IDLE);
    }
}

/// One stream's capture thread: free slot → `next_frame` → ring, until the source ends, fails
/// for good, reaches `max_frames`, or the pipeline stops. A transient source error
/// ([`SourceError::is_transient`]) is counted, then the thread waits out the backoff (waking
/// within a few milliseconds on stop) and calls the source again; the first good frame after it
/// counts a reconnect and resets the backoff.
fn capture_loop(
    sh: &Shared,
    si: usize,
    mut source: Box<dyn Source>,
    max_frames: Option<u64>,
    mut backoff: BackoffState,
    stop: &AtomicBool,
) {
    let st = &sh.streams[si];
    let _ = st.capture_thread.set(thread::current());
    let infer_thread = &sh.models[st.model].thread;
    // Marks the capture done however this thread ends (the inference thread waits for it).
    let _done = OnDrop(|| {
        st.capture_done.store(true, Ordering::Release);
        wake(infer_thread);
    });
    let mut held: Option<Box<Slot>> = None;
    let mut count = 0u64;
    // Failures in a row since the last good frame.
    let mut failing = 0u64;
    loop {
        if stopping(sh, st, stop) || max_frames.is_some_and(|m| count >= m) {
            break;
        }
        if let Some(due) = source.ready_at()
            && !sleep_until(due, sh, st, stop)
        {
            break;
        }
        let Some(mut slot) = held.take().or_else(|| acquire(sh, st, stop)) else {
            break;
        };
        let t0 = Instant::now();
        match source.next_frame(&mut slot.frame) {
            Ok(Some(meta)) => {
                slot.meta = meta;
                if failing > 0 {
                    log::info!(
                        "stream {}: the source is back after {failing} failure(s)",
                        st.name
                    );
                    failing = 0;
                    st.stats.reconnected();
                    backoff.reset();
                }
            }
            Ok(None) => {
                held = Some(slot);
                break;
            }
            Err(e) if e.is_transient() => {
                st.stats.source_failure();
                failing += 1;
                held = Some(slot);
                let wait = backoff.next_delay();
                log::warn!(
                    "stream {}: {e} (failure {failing} in a row); retrying in {} ms",
                    st.name,
                    wait.as_millis()
                );
                if !sleep_until(Instant::now() + wait, sh, st, stop) {
                    break;
                }
                continue;
            }
            Err(e) => {
                log::error!("stream {}: {e}", st.name);
                if let Ok(mut err) = st.error.lock() {
                    *err = Some(e.to_string());
                }
                held = Some(slot);
                break;
            }
        }
        let t1 = Instant::now();
        count += 1;
        st.stats.captured();
        st.stats.record(Stage::Capture, t1 - t0);
        slot.t_start = t0;
        slot.t_queued = t1;
        slot.timings.capture = t1 - t0;
        match st.policy {
            Policy::Latest | Policy::DropOldest => {
                if let Some(old) = st.ring.force_push(slot) {
                    st.stats.dropped(superseded(st.policy));
                    held = Some(old);
                }
            }
            Policy::Block(deadline) => {
                let limit = t1 + deadline;
                let mut s = slot;
                while let Err(back) = st.ring.push(s) {
                    s = back;
                    let now = Instant::now();
                    if now >= limit {
                        st.stats.dropped(DropReason::Deadline);
                        held = Some(s);
                        break;
                    }
                    wake(infer_thread);
                    thread::park_timeout((limit - now).min(IDLE));
                }
            }
        }
        st.stats.queued(st.ring.len());
        wake(infer_thread);
    }
    if let Some(s) = held {
        // The free list can hold every slot of the stream.
        let _ = st.free.push(s);
    }
    // `_done` marks the capture finished and wakes the inference thread.
}

fn infer_loop(sh: &Shared, mi: usize, mut worker: Worker, mine: &[usize]) {
    let _ = sh.models[mi].thread.set(thread::current());
    // Marks the model done however this thread ends (the publisher waits for it).
    let _done = OnDrop(|| {
        sh.models[mi].done.store(true, Ordering::Release);
        sh.publisher.unpark();
    });
    let mut next = 0;
    loop {
        let mut got = None;
        for k in 0..mine.len() {
            let si = mine[(next + k) % mine.len()];
            if let Some(s) = sh.streams[si].ring.pop() {
                got = Some(s);
                next = (next + k + 1) % mine.len();
                break;
            }
        }
        let Some(mut slot) = got else {
            let finished = mine.iter().all(|&si| {
                let st = &sh.streams[si];
                st.capture_done.load(Ordering::Acquire) && st.ring.is_empty()
            });
            if finished {
                break;
            }
            thread::park_timeout(IDLE);
            continue;
        };
        let st = &sh.streams[slot.stream];
        // Room in the ring: a blocked capture thread may go on.
        wake(&st.capture_thread);
        let t0 = Instant::now();
        slot.timings.queue = t0 - slot.t_queued;
        st.stats.record(Stage::Queue, slot.timings.queue);
        match worker.infer(&mut slot) {
            Ok(()) => {
                st.stats.record(Stage::Preprocess, slot.timings.preprocess);
                st.stats.record(Stage::Infer, slot.timings.infer);
                st.stats.inferred();
                slot.t_inferred = Instant::now();
                let mut s = slot;
                // The publish ring holds every slot of every stream: this does not loop.
                while let Err(back) = sh.publish.push(s) {
                    s = back;
                    thread::park_timeout(IDLE);
                }
                sh.publisher.unpark();
            }
            Err(e) => {
                log::debug!("stream {}: frame {}: {e}", st.name, slot.meta.seq);
                st.stats.dropped(DropReason::Error);
                let _ = st.free.push(slot);
                wake(&st.capture_thread);
            }
        }
    }
    // `_done` marks the model finished and wakes the publisher.
}

fn publish_loop<F>(sh: &Shared, labels: &[Vec<String>], publish: &mut F)
where
    F: FnMut(&FrameResult<'_>),
{
    // If the callback panics, the capture threads stop and the pipeline winds down.
    let _gone = OnDrop(|| sh.publisher_gone.store(true, Ordering::Release));
    loop {
        let Some(mut slot) = sh.publish.pop() else {
            let finished =
                sh.models.iter().all(|m| m.done.load(Ordering::Acquire)) && sh.publish.is_empty();
            if finished {
                break;
            }
            thread::park_timeout(IDLE);
            continue;
        };
        let st = &sh.streams[slot.stream];
        let t0 = Instant::now();
        slot.timings.publish_queue = t0 - slot.t_inferred;
        slot.timings.latency = t0 - slot.t_start;
        st.stats
            .record(Stage::PublishQueue, slot.timings.publish_queue);
        publish(&FrameResult {
            stream: &st.name,
            stream_index: slot.stream,
            frame: &slot.frame,
            meta: &slot.meta,
            detections: &slot.detections,
            detections_dropped: slot.detections_dropped,
            top_k: &slot.top_k,
            labels: &labels[st.model],
            timings: &slot.timings,
        });
        let t1 = Instant::now();
        st.stats.record(Stage::Publish, t1 - t0);
        st.stats.record(Stage::Total, t1 - slot.t_start);
        st.stats.published();
        let _ = st.free.push(slot);
        wake(&st.capture_thread);
    }
}
