//! Counters and latency histograms: preallocated atomics, updated without locks or allocation.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Why a captured frame never reached the publisher.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// `latest`: a newer frame replaced it while it waited for inference.
    Superseded,
    /// `drop-oldest`: the queue was full and it was the oldest frame in it.
    QueueFull,
    /// `block`: the queue stayed full past the deadline, so the new frame was dropped.
    Deadline,
    /// Preprocessing or inference failed on it.
    Error,
}

impl DropReason {
    /// Every reason, in report order.
    pub const ALL: [DropReason; 4] = [
        DropReason::Superseded,
        DropReason::QueueFull,
        DropReason::Deadline,
        DropReason::Error,
    ];

    /// Short name for reports (`superseded`, `queue-full`, `deadline`, `error`).
    pub const fn name(self) -> &'static str {
        match self {
            DropReason::Superseded => "superseded",
            DropReason::QueueFull => "queue-full",
            DropReason::Deadline => "deadline",
            DropReason::Error => "error",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
}

/// A stage of the pipeline whose latency is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// The source writing a frame into its slot (decode/copy).
    Capture,
    /// Waiting in the queue for the inference thread.
    Queue,
    /// Preprocessing into the model input (resize, normalise, quantize).
    Preprocess,
    /// `Session::run` plus output decoding.
    Infer,
    /// Waiting for the publisher after inference.
    PublishQueue,
    /// The publish callback.
    Publish,
    /// End to end: capture start to the end of the publish callback.
    Total,
}

impl Stage {
    /// Every stage, in pipeline order.
    pub const ALL: [Stage; 7] = [
        Stage::Capture,
        Stage::Queue,
        Stage::Preprocess,
        Stage::Infer,
        Stage::PublishQueue,
        Stage::Publish,
        Stage::Total,
    ];

    /// Short name for reports.
    pub const fn name(self) -> &'static str {
        match self {
            Stage::Capture => "capture",
            Stage::Queue => "queue",
            Stage::Preprocess => "preprocess",
            Stage::Infer => "infer",
            Stage::PublishQueue => "publish-queue",
            Stage::Publish => "publish",
            Stage::Total => "total",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
}

/// Linear sub-buckets per power of two (resolution ≈ 1/8 = 12.5 %).
const SUB_BITS: u32 = 3;
const SUB: usize = 1 << SUB_BITS;
/// Octaves of nanoseconds covered: up to 2^40 ns ≈ 18 minutes; longer values land in the last
/// bucket.
const OCTAVES: usize = 40;
const BUCKETS: usize = OCTAVES * SUB;

/// A latency histogram with fixed log2 buckets (8 linear sub-buckets per power of two of
/// nanoseconds), all atomics: recording is a few relaxed increments, never a lock or an
/// allocation. Quantiles are read with a relative error under 12.5 %.
#[derive(Debug)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS],
    count: AtomicU64,
    sum_ns: AtomicU64,
    max_ns: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: [const { AtomicU64::new(0) }; BUCKETS],
            count: AtomicU64::new(0),
            sum_ns: AtomicU64::new(0),
            max_ns: AtomicU64::new(0),
        }
    }
}

/// The bucket of `ns`: values below `SUB` get one bucket each; above, octave `e` (the highest set
/// bit) is split into `SUB` equal parts.
pub(super) fn bucket_of(ns: u64) -> usize {
    if ns < SUB as u64 {
        return ns as usize;
    }
    let e = 63 - ns.leading_zeros(); // ≥ SUB_BITS
    let sub = ((ns >> (e - SUB_BITS)) as usize) & (SUB - 1);
    let i = (e - SUB_BITS + 1) as usize * SUB + sub;
    i.min(BUCKETS - 1)
}

/// The lowest value of bucket `i` and its width.
pub(super) fn bucket_range(i: usize) -> (u64, u64) {
    if i < SUB {
        return (i as u64, 1);
    }
    let e = (i / SUB) as u32 + SUB_BITS - 1;
    let sub = (i % SUB) as u64;
    let width = 1u64 << (e - SUB_BITS);
    ((1u64 << e) + sub * width, width)
}

impl Histogram {
    /// Record one duration.
    pub fn record(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.buckets[bucket_of(ns)].fetch_add(1, Relaxed);
        self.count.fetch_add(1, Relaxed);
        self.sum_ns.fetch_add(ns, Relaxed);
        self.max_ns.fetch_max(ns, Relaxed);
    }

    /// A consistent-enough copy for reporting (each field read once, relaxed).
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut buckets = [0u64; BUCKETS];
        for (b, a) in buckets.iter_mut().zip(&self.buckets) {
            *b = a.load(Relaxed);
        }
        HistogramSnapshot {
            count: buckets.iter().sum(),
            sum_ns: self.sum_ns.load(Relaxed),
            max_ns: self.max_ns.load(Relaxed),
            buckets,
        }
    }
}

/// A copy of a [`Histogram`].
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// Values recorded.
    pub count: u64,
    /// Sum of the values in nanoseconds.
    pub sum_ns: u64,
    /// The largest value in nanoseconds.
    pub max_ns: u64,
    buckets: [u64; BUCKETS],
}

impl Default for HistogramSnapshot {
    fn default() -> Self {
        HistogramSnapshot {
            count: 0,
            sum_ns: 0,
            max_ns: 0,
            buckets: [0; BUCKETS],
        }
    }
}

impl HistogramSnapshot {
    /// The `q` quantile (0..=1): the middle of the bucket holding it, capped at the maximum.
    /// `None` when nothing was recorded.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        if self.count == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                let (lo, width) = bucket_range(i);
                let mid = lo + width / 2;
                return Some(Duration::from_nanos(mid.min(self.max_ns)));
            }
        }
        Some(Duration::from_nanos(self.max_ns))
    }

    /// Median.
    pub fn p50(&self) -> Option<Duration> {
        self.quantile(0.5)
    }

    /// 99th percentile.
    pub fn p99(&self) -> Option<Duration> {
        self.quantile(0.99)
    }

    /// Mean.
    pub fn mean(&self) -> Option<Duration> {
        (self.count > 0).then(|| Duration::from_nanos(self.sum_ns / self.count))
    }

    /// Adds `other`'s values to this one.
    pub fn merge(&mut self, other: &HistogramSnapshot) {
        self.count += other.count;
        self.sum_ns += other.sum_ns;
        self.max_ns = self.max_ns.max(other.max_ns);
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a += b;
        }
    }
}

/// The live counters and histograms of one stream.
#[derive(Debug, Default)]
pub struct StreamStats {
    captured: AtomicU64,
    inferred: AtomicU64,
    published: AtomicU64,
    dropped: [AtomicU64; DropReason::ALL.len()],
    max_queued: AtomicU64,
    source_failures: AtomicU64,
    reconnects: AtomicU64,
    stages: [Histogram; Stage::ALL.len()],
}

impl StreamStats {
    pub(crate) fn captured(&self) {
        self.captured.fetch_add(1, Relaxed);
    }

    pub(crate) fn inferred(&self) {
        self.inferred.fetch_add(1, Relaxed);
    }

    pub(crate) fn published(&self) {
        self.published.fetch_add(1, Relaxed);
    }

    pub(crate) fn dropped(&self, why: DropReason) {
        self.dropped[why.index()].fetch_add(1, Relaxed);
    }

    pub(crate) fn queued(&self, len: usize) {
        self.max_queued.fetch_max(len as u64, Relaxed);
    }

    /// The source failed transiently (it will be called again after a backoff).
    pub(crate) fn source_failure(&self) {
        self.source_failures.fetch_add(1, Relaxed);
    }

    /// The source delivered a frame again after failing.
    pub(crate) fn reconnected(&self) {
        self.reconnects.fetch_add(1, Relaxed);
    }

    pub(crate) fn record(&self, stage: Stage, d: Duration) {
        self.stages[stage.index()].record(d);
    }

    /// The counters now.
    pub fn counters(&self) -> Counters {
        let mut dropped = [0; DropReason::ALL.len()];
        for (d, a) in dropped.iter_mut().zip(&self.dropped) {
            *d = a.load(Relaxed);
        }
        Counters {
            captured: self.captured.load(Relaxed),
            inferred: self.inferred.load(Relaxed),
            published: self.published.load(Relaxed),
            dropped,
            max_queued: self.max_queued.load(Relaxed),
            source_failures: self.source_failures.load(Relaxed),
            reconnects: self.reconnects.load(Relaxed),
        }
    }

    /// The histogram of one stage, copied.
    pub fn stage(&self, stage: Stage) -> HistogramSnapshot {
        self.stages[stage.index()].snapshot()
    }
}

/// Frame counters of one stream.
///
/// Once a pipeline has drained, `captured == inferred + dropped_total()` and
/// `published == inferred`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    /// Frames the source delivered.
    pub captured: u64,
    /// Frames that went through preprocess, inference and decoding.
    pub inferred: u64,
    /// Frames handed to the publish callback.
    pub published: u64,
    /// Frames dropped, per [`DropReason`] (index with [`Counters::dropped`]).
    dropped: [u64; DropReason::ALL.len()],
    /// The longest the inference queue has been.
    pub max_queued: u64,
    /// Transient source errors ([`SourceError::is_transient`]): each one was followed by a
    /// backoff and another attempt.
    ///
    /// [`SourceError::is_transient`]: super::SourceError::is_transient
    pub source_failures: u64,
    /// Times the source delivered a frame again after one or more failures.
    pub reconnects: u64,
}

impl Counters {
    /// Frames dropped for `why`.
    pub fn dropped(&self, why: DropReason) -> u64 {
        self.dropped[why.index()]
    }

    /// Frames dropped for any reason.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }

    /// Adds `other`'s counts to these (`max_queued`: the larger).
    pub fn add(&mut self, other: &Counters) {
        self.captured += other.captured;
        self.inferred += other.inferred;
        self.published += other.published;
        for (a, b) in self.dropped.iter_mut().zip(&other.dropped) {
            *a += b;
        }
        self.max_queued = self.max_queued.max(other.max_queued);
        self.source_failures += other.source_failures;
        self.reconnects += other.reconnects;
    }
}
