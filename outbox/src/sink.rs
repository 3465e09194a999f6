//! [`FrameSink`]: the outbox as a pipeline sink, on a thread of its own.
//!
//! The pipeline's publish stage must never wait for redaction, JPEG encoding or the disk. It
//! hands each frame to [`FrameSink::offer`], which copies the pixels and detections into one of a
//! fixed number of recycled buffers and passes it to the sink thread through a bounded queue;
//! when every buffer is in use the frame is dropped and counted ([`SinkStats::dropped`]), never
//! waited for. The sink thread decides what to keep ([`RecordPolicy`]), redacts through the
//! [`Outbox`] (the one place where redaction happens), encodes and enqueues.
//!
//! ```text
//! publish stage ─► offer (copy into a free buffer) ─► [queue] ─► sink thread:
//!     result JSON ─────────────────────────────────────────────► Outbox::json
//!     uncertain frame ─► Outbox::maybe_sample (redact, JPEG) ──► writer ─► disk
//!     frame with detections ─► Outbox::frame (redact, JPEG) ───►
//! buffer ◄── back to the free list
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;

use serde::{Deserialize, Serialize};

use crate::error::{OutboxError, Result};
use crate::facade::Outbox;
use crate::record::{Priority, RecordMeta};
use crate::redact::{Detection, RgbFrame};

/// Which frames are kept as (redacted) JPEG records besides retraining samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeepFrames {
    /// No frames (results and samples only).
    #[default]
    None,
    /// Frames with at least one detection (priority `bulk`).
    Detections,
    /// Every frame (priority `bulk`; mind the disk bound).
    All,
}

/// What the sink records for each frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecordPolicy {
    /// A JSON result record (priority `result`) for every frame with at least one detection.
    pub results: bool,
    /// Frames kept as JPEG.
    pub frames: KeepFrames,
    /// Retraining samples (the `samples` band and rate limit of the outbox settings).
    pub samples: bool,
    /// Frames the sink can hold at once (buffers); further frames are dropped and counted.
    pub queue: usize,
}

impl Default for RecordPolicy {
    fn default() -> Self {
        RecordPolicy {
            results: true,
            frames: KeepFrames::None,
            samples: true,
            queue: 4,
        }
    }
}

/// Counters of the sink (shared with its thread).
#[derive(Debug, Default)]
pub struct SinkStats {
    /// Frames offered.
    pub offered: AtomicU64,
    /// Frames dropped because every buffer was in use (the sink was behind).
    pub dropped: AtomicU64,
    /// Result records enqueued.
    pub results: AtomicU64,
    /// Frame records enqueued.
    pub frames: AtomicU64,
    /// Retraining samples enqueued.
    pub samples: AtomicU64,
    /// Records the outbox refused (queue full, too large, encode error); logged.
    pub errors: AtomicU64,
}

/// A copy of [`SinkStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SinkSnapshot {
    /// Frames offered.
    pub offered: u64,
    /// Frames dropped (sink behind).
    pub dropped: u64,
    /// Result records enqueued.
    pub results: u64,
    /// Frame records enqueued.
    pub frames: u64,
    /// Retraining samples enqueued.
    pub samples: u64,
    /// Records refused by the outbox.
    pub errors: u64,
}

impl SinkStats {
    /// The counters now.
    pub fn snapshot(&self) -> SinkSnapshot {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        SinkSnapshot {
            offered: g(&self.offered),
            dropped: g(&self.dropped),
            results: g(&self.results),
            frames: g(&self.frames),
            samples: g(&self.samples),
            errors: g(&self.errors),
        }
    }
}

/// One frame as the publish stage sees it (everything borrowed).
#[derive(Debug, Clone, Copy)]
pub struct FrameIn<'a> {
    /// Stream name.
    pub stream: &'a str,
    /// Frame sequence number in the stream.
    pub seq: u64,
    /// Where the frame came from (file stem, camera id).
    pub source: &'a str,
    /// Capture time, ms since the Unix epoch.
    pub time_ms: u64,
    /// Model id and version.
    pub model_id: &'a str,
    /// Model version.
    pub model_version: &'a str,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Packed RGB rows (`width * height * 3` bytes).
    pub rgb: &'a [u8],
    /// Detections in frame pixels.
    pub detections: &'a [Detection],
}

/// A recycled buffer travelling between the publish stage and the sink thread.
#[derive(Debug, Default)]
struct Item {
    stream: String,
    seq: u64,
    source: String,
    time_ms: u64,
    model_id: String,
    model_version: String,
    width: u32,
    height: u32,
    rgb: Vec<u8>,
    detections: Vec<Detection>,
}

impl Item {
    /// Copy `f`, its pixels only with `pixels`.
    fn fill(&mut self, f: &FrameIn<'_>, pixels: bool) {
        let set = |dst: &mut String, src: &str| {
            dst.clear();
            dst.push_str(src);
        };
        set(&mut self.stream, f.stream);
        set(&mut self.source, f.source);
        set(&mut self.model_id, f.model_id);
        set(&mut self.model_version, f.model_version);
        self.seq = f.seq;
        self.time_ms = f.time_ms;
        self.width = f.width;
        self.height = f.height;
        self.rgb.clear();
        if pixels {
            self.rgb.extend_from_slice(f.rgb);
        }
        self.detections.clear();
        self.detections.extend_from_slice(f.detections);
    }

    fn meta(&self, priority: Priority) -> RecordMeta {
        RecordMeta {
            stream: self.stream.clone(),
            time_ms: self.time_ms,
            model_id: self.model_id.clone(),
            model_version: self.model_version.clone(),
            priority,
        }
    }
}

/// The outbox on its own thread, fed by [`FrameSink::offer`].
#[derive(Debug)]
pub struct FrameSink {
    policy: RecordPolicy,
    queue: Option<SyncSender<Item>>,
    free: Receiver<Item>,
    stats: Arc<SinkStats>,
    thread: Option<JoinHandle<Outbox>>,
}

impl FrameSink {
    /// Start the sink thread over `outbox`.
    pub fn start(outbox: Outbox, policy: RecordPolicy) -> Result<FrameSink> {
        let n = policy.queue.max(1);
        let (queue_tx, queue_rx) = sync_channel::<Item>(n);
        let (free_tx, free_rx) = sync_channel::<Item>(n);
        for _ in 0..n {
            // The channel holds `n`: cannot fail.
            let _ = free_tx.send(Item::default());
        }
        let stats = Arc::new(SinkStats::default());
        let st = stats.clone();
        let background = outbox.background();
        let thread = std::thread::Builder::new()
            .name("outpost-outbox-sink".into())
            .spawn(move || {
                crate::priority::lower_this_thread(background);
                sink_loop(outbox, policy, &queue_rx, &free_tx, &st)
            })?;
        Ok(FrameSink {
            policy,
            queue: Some(queue_tx),
            free: free_rx,
            stats,
            thread: Some(thread),
        })
    }

    /// Hand a frame to the sink without waiting: false when it was dropped (every buffer busy,
    /// counted) or the sink has stopped. A frame the policy keeps nothing of (no detections,
    /// frames kept only with detections, no samples) is not copied at all; the pixels are
    /// copied only when the policy may keep them.
    pub fn offer(&self, frame: &FrameIn<'_>) -> bool {
        self.stats.offered.fetch_add(1, Ordering::Relaxed);
        let Some(queue) = &self.queue else {
            return false;
        };
        let detected = !frame.detections.is_empty();
        let pixels = self.policy.samples
            || match self.policy.frames {
                KeepFrames::None => false,
                KeepFrames::Detections => detected,
                KeepFrames::All => true,
            };
        let results = self.policy.results && detected;
        if !(pixels || results) {
            return true;
        }
        let Ok(mut item) = self.free.try_recv() else {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        };
        item.fill(frame, pixels);
        match queue.try_send(item) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                // Cannot be full (as many slots as buffers); disconnected: the thread ended.
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// The counters (shared; valid while the sink runs and after).
    pub fn stats(&self) -> Arc<SinkStats> {
        self.stats.clone()
    }

    /// Finish the frames queued, stop the thread and return the outbox (close it to commit).
    pub fn finish(mut self) -> Result<Outbox> {
        self.queue = None;
        let t = self.thread.take().expect("the thread is joined only here");
        t.join()
            .map_err(|_| OutboxError::WriterStopped("the outbox sink thread panicked".into()))
    }
}

fn sink_loop(
    mut outbox: Outbox,
    policy: RecordPolicy,
    queue: &Receiver<Item>,
    free: &SyncSender<Item>,
    stats: &SinkStats,
) -> Outbox {
    fn count<T>(r: Result<T>, counter: &AtomicU64, errors: &AtomicU64) {
        match r {
            Ok(_) => {
                counter.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                errors.fetch_add(1, Ordering::Relaxed);
                log::warn!("outbox: {e}");
            }
        }
    }
    while let Ok(mut item) = queue.recv() {
        if policy.results && !item.detections.is_empty() {
            let value = serde_json::json!({
                "frame": item.seq,
                "source": item.source,
                "detections": item.detections,
            });
            count(
                outbox.json(item.meta(Priority::Result), value),
                &stats.results,
                &stats.errors,
            );
        }
        let keep = match policy.frames {
            KeepFrames::None => false,
            KeepFrames::Detections => !item.detections.is_empty(),
            KeepFrames::All => true,
        };
        if policy.samples || keep {
            let rgb = std::mem::take(&mut item.rgb);
            match RgbFrame::new(item.width, item.height, rgb) {
                Ok(mut frame) => {
                    let mut sampled = false;
                    if policy.samples {
                        match outbox.maybe_sample(
                            item.meta(Priority::Sample),
                            &mut frame,
                            &item.detections,
                        ) {
                            Ok(Some(_)) => {
                                sampled = true;
                                stats.samples.fetch_add(1, Ordering::Relaxed);
                            }
                            Ok(None) => {}
                            r @ Err(_) => count(r, &stats.samples, &stats.errors),
                        }
                    }
                    // A frame kept as a sample is already in the outbox (at a higher priority).
                    if keep && !sampled {
                        count(
                            outbox.frame(item.meta(Priority::Bulk), &mut frame, &item.detections),
                            &stats.frames,
                            &stats.errors,
                        );
                    }
                    item.rgb = frame.into_data();
                }
                Err(e) => {
                    stats.errors.fetch_add(1, Ordering::Relaxed);
                    log::warn!("outbox: frame {} of {}: {e}", item.seq, item.stream);
                }
            }
        }
        // As many free slots as buffers: cannot fail while the sink exists.
        let _ = free.try_send(item);
    }
    outbox
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::OutboxSettings;
    use crate::record::Body;
    use crate::store::StoreConfig;

    fn face(score: f32) -> Detection {
        Detection {
            class: "face".into(),
            score,
            x0: 4.0,
            y0: 4.0,
            x1: 20.0,
            y1: 20.0,
        }
    }

    #[test]
    fn keeps_results_frames_and_samples_by_policy() {
        let dir = tempfile::tempdir().unwrap();
        let settings = OutboxSettings {
            path: dir.path().join("o.redb"),
            store: StoreConfig::with_max_bytes(16 << 20),
            ..Default::default()
        };
        let outbox = Outbox::open(&settings).unwrap();
        let policy = RecordPolicy {
            frames: KeepFrames::Detections,
            ..Default::default()
        };
        let sink = FrameSink::start(outbox, policy).unwrap();
        let mut rng = fastrand::Rng::with_seed(9);
        let rgb: Vec<u8> = (0..32 * 32 * 3).map(|_| rng.u8(..)).collect();
        let frame = |seq, dets: &'static [Detection]| FrameIn {
            stream: "cam",
            seq,
            source: "a",
            time_ms: 1_000 + seq,
            model_id: "m",
            model_version: "1",
            width: 32,
            height: 32,
            rgb: &rgb,
            detections: dets,
        };
        let confident: &'static [Detection] = Box::leak(Box::new([face(0.9)]));
        let unsure: &'static [Detection] = Box::leak(Box::new([face(0.45)]));
        // Offer one at a time (the queue is 4 deep): nothing may be dropped here.
        let stats = sink.stats();
        for (i, d) in [&[][..], confident, unsure].into_iter().enumerate() {
            assert!(sink.offer(&frame(i as u64, d)));
            while stats.snapshot().results + stats.snapshot().errors < i as u64 {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
        let outbox = sink.finish().unwrap();
        let snap = stats.snapshot();
        assert_eq!(
            (
                snap.offered,
                snap.dropped,
                snap.results,
                snap.frames,
                snap.samples,
                snap.errors
            ),
            (3, 0, 2, 1, 1, 0)
        );
        let store = outbox.store().clone();
        outbox.close();
        let mut kinds = Vec::new();
        store
            .for_each(|r| {
                let r = r.unwrap();
                let body = match r.record.body() {
                    Body::Json(_) => "json",
                    Body::Jpeg(img) => {
                        assert_eq!((img.width(), img.height()), (32, 32));
                        "jpeg"
                    }
                };
                kinds.push((r.record.meta.priority, body));
                true
            })
            .unwrap();
        kinds.sort();
        assert_eq!(
            kinds,
            vec![
                (Priority::Bulk, "jpeg"),
                (Priority::Sample, "jpeg"),
                (Priority::Result, "json"),
                (Priority::Result, "json"),
            ]
        );
    }

    #[test]
    fn drops_and_counts_when_every_buffer_is_busy() {
        let dir = tempfile::tempdir().unwrap();
        let settings = OutboxSettings {
            path: dir.path().join("o.redb"),
            store: StoreConfig::with_max_bytes(16 << 20),
            ..Default::default()
        };
        let outbox = Outbox::open(&settings).unwrap();
        let policy = RecordPolicy {
            frames: KeepFrames::All,
            queue: 1,
            ..Default::default()
        };
        let sink = FrameSink::start(outbox, policy).unwrap();
        // A large frame keeps the one buffer busy (JPEG encoding) while more are offered.
        let rgb = vec![7u8; 1024 * 1024 * 3];
        let f = FrameIn {
            stream: "cam",
            seq: 0,
            source: "big",
            time_ms: 1,
            model_id: "m",
            model_version: "1",
            width: 1024,
            height: 1024,
            rgb: &rgb,
            detections: &[],
        };
        let accepted = (0..20).filter(|_| sink.offer(&f)).count() as u64;
        let stats = sink.stats();
        let outbox = sink.finish().unwrap();
        outbox.close();
        let s = stats.snapshot();
        assert_eq!(s.offered, 20);
        assert!(s.dropped > 0, "a one-buffer sink must drop while busy");
        assert_eq!(accepted + s.dropped, 20);
        assert_eq!(s.frames, accepted);
    }
}
