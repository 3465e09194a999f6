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
mod capture;
mod infer_thread;
mod placement;
mod policy;
mod publish_thread;
mod shared;
mod source;
mod stats;
mod worker;

#[cfg(test)]
mod tests;

use std::sync::atomic::AtomicBool;
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;
use outpost_models::Model;
use outpost_models::decode::{Detection, Detections, TopK};
use outpost_models::spec::{Decoder, Layout};
use thiserror::Error;

use crate::affinity;
use crate::audio::keyword::KeywordSpotter;
use crate::error::RuntimeError;
use crate::infer::Inference;
use crate::preprocess::{PreprocessError, Preprocessor};
use crate::session::SessionOptions;
use backoff::BackoffState;
use capture::capture_loop;
use infer_thread::infer_loop;
use publish_thread::publish_loop;
use shared::{ModelShared, Shared, StreamShared};
use worker::{Accepts, ModelEntry, ModelInput, Worker, sample_input};

pub use backoff::Backoff;
pub use placement::{Placement, PlacementError};
pub use policy::Policy;
pub use source::{
    FrameBuf, FrameKind, FrameMeta, ImageSource, NAME_CAPACITY, Name, Source, SourceError, name,
};
pub use stats::{Counters, DropReason, Histogram, HistogramSnapshot, Stage, StreamStats};

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

/// A pipeline being assembled: add models, then streams, then [`Pipeline::run`].
pub struct Pipeline {
    models: Vec<ModelEntry>,
    streams: Vec<StreamConfig>,
    spin: Duration,
    placement: Placement,
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

impl Pipeline {
    /// An empty pipeline.
    pub fn new() -> Self {
        Pipeline {
            models: Vec::new(),
            streams: Vec::new(),
            spin: Self::DEFAULT_SPIN,
            placement: Placement::default(),
        }
    }

    /// The default of [`Pipeline::set_spin`].
    pub const DEFAULT_SPIN: Duration = Duration::from_micros(200);

    /// The longest an idle thread busy-waits for a hand-off that is known to be imminent (the
    /// capture thread of a paced source copying a frame that is due, an inference thread
    /// decoding its outputs) before it parks. Spinning turns a hand-off's wake-up (several µs, tens in the tail on a busy
    /// machine) into a cache-line transfer (well under a µs); it costs at most this much CPU
    /// per frame and hand-off, and nothing while no frame is in flight. Zero: always park.
    pub fn set_spin(&mut self, spin: Duration) {
        self.spin = spin;
    }

    /// Where the pipeline's threads run, and whether the inference threads and the publisher
    /// poll instead of sleeping (see [`Placement`]; default: anywhere, sleeping when idle).
    ///
    /// # Errors
    /// A CPU named is not available to the calling thread ([`Placement::validate`]); the
    /// placement is then unchanged.
    pub fn set_placement(&mut self, placement: Placement) -> Result<(), PlacementError> {
        placement.validate()?;
        self.placement = placement;
        Ok(())
    }

    /// Plan `model` and return its index for [`StreamConfig::model`]. Each model gets one
    /// inference thread. Its first input is an image (fed from image frames through the
    /// preprocessor) or, with the `nc` layout, a vector fed from sample windows of exactly as
    /// many values (int8 through the input's scale and zero point, f32 as they are). A keyword
    /// model (output spec `wakeword`) takes mono audio windows of any length at 16 kHz through
    /// the audio front end ([`crate::audio::keyword`]).
    pub fn add_model(
        &mut self,
        name: impl Into<String>,
        model: &Model,
        options: SessionOptions,
    ) -> Result<usize, PipelineError> {
        if let Some(Decoder::Wakeword { wake_word, .. }) =
            model.meta().outputs.first().map(|o| &o.decoder)
        {
            let spotter = KeywordSpotter::new(model, options)?;
            self.models.push(ModelEntry {
                name: name.into(),
                labels: vec![wake_word.clone()],
                worker: Worker::Keyword(Box::new(spotter)),
            });
            return Ok(self.models.len() - 1);
        }
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
            (Accepts::Audio(_), None) => {
                Some("the source delivers images; the model is a keyword spotter (audio)".into())
            }
            (Accepts::Audio(_), Some((_, c))) if c != 1 => Some(format!(
                "the source delivers {c} channels; a keyword model takes mono audio"
            )),
            (Accepts::Audio(rate), Some(_)) if stream.source.sample_rate() != Some(rate) => {
                Some(match stream.source.sample_rate() {
                    Some(r) => format!("the audio is at {r} Hz; the keyword model takes {rate} Hz"),
                    None => {
                        format!("the source is not audio; the keyword model takes {rate} Hz audio")
                    }
                })
            }
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
        let Pipeline {
            models,
            streams,
            spin,
            placement,
        } = self;
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
                capturing: AtomicBool::new(false),
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
                    finishing: AtomicBool::new(false),
                    thread: OnceLock::new(),
                })
                .collect(),
            publish: ArrayQueue::new(total_slots.max(1)),
            publisher: thread::current(),
            publisher_gone: AtomicBool::new(false),
            streams: shared_streams,
            spin,
            busy: placement.busy,
        };
        let sh = &shared;
        thread::scope(|scope| {
            for (mi, worker) in workers.into_iter().enumerate() {
                let mine: Vec<usize> = (0..sh.streams.len())
                    .filter(|&s| sh.streams[s].model == mi)
                    .collect();
                let cpu = placement.infer_cpu(mi);
                thread::Builder::new()
                    .name(format!("outpost-infer-{}", model_names[mi]))
                    .spawn_scoped(scope, move || {
                        placement::pin("inference thread", cpu);
                        infer_loop(sh, mi, worker, &mine)
                    })
                    .expect("spawn an inference thread");
            }
            for (si, (source, max_frames, backoff)) in sources.into_iter().enumerate() {
                let cpu = placement.capture_cpu(si);
                thread::Builder::new()
                    .name(format!("outpost-capture-{}", sh.streams[si].name))
                    .spawn_scoped(scope, move || {
                        placement::pin("capture thread", cpu);
                        let backoff = BackoffState::new(backoff, si as u64);
                        capture_loop(sh, si, source, max_frames, backoff, stop)
                    })
                    .expect("spawn a capture thread");
            }
            // The caller's thread is lent: its own CPU set comes back when the scope ends.
            let _pinned = placement.publish.and_then(|cpu| {
                affinity::PinnedScope::new(cpu)
                    .map_err(|e| {
                        log::warn!("publisher: cannot pin to CPU {cpu}: {e}; running unpinned")
                    })
                    .ok()
            });
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
