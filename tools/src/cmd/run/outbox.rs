//! `outpost run`'s store-and-forward sink: every frame's results, and the frames the record
//! policy keeps (redacted), go into the crash-safe outbox through [`FrameSink`] (its own thread,
//! so the pipeline never waits for JPEG encoding or the disk); with an `azure` section the
//! uplink uploads them in the background.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use outpost_outbox::{
    Detection as OutboxDetection, FrameIn, FrameSink, Outbox, OutboxSettings, RedactionPolicy,
    SinkSnapshot, Uplink, UplinkThread, WriterStats, uplink::UplinkSnapshot,
};
use outpost_runtime::pipeline::FrameResult;
use outpost_runtime::preprocess::PixelFormat;
use serde_json::{Value, json};

use super::Catalog;
use super::config::Sinks;
use crate::exit::Failure;

/// The sink and, when configured, the uplink.
pub(crate) struct OutboxOut {
    sink: FrameSink,
    uplink: Option<UplinkThread>,
    path: PathBuf,
    /// Model id and version (first 12 hex digits of the model file's sha256) per stream.
    stream_models: Vec<(String, String)>,
    /// Reused for every frame.
    detections: Vec<OutboxDetection>,
    /// Frames that are not packed RGB (they cannot be redacted or encoded here).
    skipped: u64,
}

/// What the outbox did during the run, for the summary.
pub(crate) struct OutboxSummary {
    path: PathBuf,
    sink: SinkSnapshot,
    writer: WriterStats,
    uplink: Option<UplinkSnapshot>,
    uplink_error: Option<String>,
    /// Records waiting in the outbox at exit (uploaded next time).
    backlog: u64,
    skipped: u64,
}

impl OutboxOut {
    /// The outbox of a configuration's sinks, if it has one, redacting with `redaction` (the
    /// one policy of every sink).
    pub(crate) fn from_sinks(
        sinks: &mut Sinks,
        redaction: &RedactionPolicy,
        catalog: &Catalog,
    ) -> Result<Option<Self>, Failure> {
        match sinks.outbox.as_mut() {
            Some(settings) => {
                settings.redaction = redaction.clone();
                Self::open(settings, catalog).map(Some)
            }
            None => Ok(None),
        }
    }

    /// Open the outbox (creating its file) and start the sink and, with `azure`, the uplink.
    pub(crate) fn open(settings: &OutboxSettings, catalog: &Catalog) -> Result<Self, Failure> {
        let at = |e: &dyn std::fmt::Display| {
            Failure::input(format!("outbox {}: {e}", settings.path.display()))
        };
        if let Some(dir) = settings.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| at(&e))?;
        }
        let uplink_client = match &settings.azure {
            Some(azure) => Some(
                azure
                    .build(Duration::from_millis(settings.uplink.request_timeout_ms))
                    .map_err(|e| Failure::input(format!("outbox azure: {e}")))?,
            ),
            None => None,
        };
        let outbox = Outbox::open(settings).map_err(|e| at(&e))?;
        let uplink = match uplink_client {
            Some(client) => Some(
                UplinkThread::start(
                    Uplink::new(outbox.store().clone(), client, settings.uplink.clone()),
                    settings.uplink_background(),
                )
                .map_err(|e| at(&e))?,
            ),
            None => None,
        };
        let sink = FrameSink::start(outbox, settings.record).map_err(|e| at(&e))?;
        let stream_models = catalog
            .stream_model
            .iter()
            .map(|&m| match catalog.models.get(m) {
                Some(i) => (i.id.as_str().to_string(), hex::encode(&i.sha256[..6])),
                None => (String::new(), String::new()),
            })
            .collect();
        Ok(OutboxOut {
            sink,
            uplink,
            path: settings.path.clone(),
            stream_models,
            detections: Vec::new(),
            skipped: 0,
        })
    }

    /// Offer one frame to the sink (copied; never waits). A detection's class is its model's
    /// label, `face` for a model without labels.
    pub(crate) fn publish(&mut self, r: &FrameResult<'_>) {
        let f = r.frame;
        if f.format() != PixelFormat::Rgb8 || f.stride() != f.width() as usize * 3 {
            self.skipped += 1;
            return;
        }
        self.detections.clear();
        self.detections
            .extend(r.detections.iter().map(|d| OutboxDetection {
                class: super::class_name(r, d.label),
                score: d.score,
                x0: d.bbox[0],
                y0: d.bbox[1],
                x1: d.bbox[2],
                y1: d.bbox[3],
            }));
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .saturating_sub(r.timings.latency);
        let (model_id, model_version) = self
            .stream_models
            .get(r.stream_index)
            .map(|(i, v)| (i.as_str(), v.as_str()))
            .unwrap_or(("", ""));
        self.sink.offer(&FrameIn {
            stream: r.stream,
            seq: r.meta.seq,
            source: r.meta.name.as_str(),
            time_ms: u64::try_from(now.as_millis()).unwrap_or(u64::MAX),
            model_id,
            model_version,
            width: f.width(),
            height: f.height(),
            rgb: f.data(),
            detections: &self.detections,
        });
    }

    /// Finish the queued frames, commit, stop the uplink.
    pub(crate) fn finish(self) -> Result<OutboxSummary, Failure> {
        let stats = self.sink.stats();
        let outbox = self
            .sink
            .finish()
            .map_err(|e| Failure::other(format!("outbox: {e}")))?;
        let store = outbox.store().clone();
        let writer = outbox.close();
        let (uplink, uplink_error) = match self.uplink.map(UplinkThread::stop) {
            Some(Ok(s)) => (Some(s), None),
            Some(Err(e)) => (None, Some(e.to_string())),
            None => (None, None),
        };
        let backlog = store.stats().map(|s| s.records).unwrap_or(0);
        Ok(OutboxSummary {
            path: self.path,
            sink: stats.snapshot(),
            writer,
            uplink,
            uplink_error,
            backlog,
            skipped: self.skipped,
        })
    }
}

impl OutboxSummary {
    /// The `outbox` object of `--json`'s summary.
    pub(crate) fn json(&self) -> Value {
        json!({
            "path": self.path.display().to_string(),
            "offered": self.sink.offered,
            "dropped": self.sink.dropped,
            "skipped": self.skipped,
            "results": self.sink.results,
            "frames": self.sink.frames,
            "samples": self.sink.samples,
            "errors": self.sink.errors,
            "committed": self.writer.committed,
            "writer_dropped": self.writer.dropped_queue_full,
            "evicted": self.writer.evicted,
            "backlog": self.backlog,
            "uploaded": self.uplink.map(|u| u.records),
            "upload_failures": self.uplink.map(|u| u.failures),
            "uplink_error": self.uplink_error,
        })
    }

    /// The summary's text line(s).
    pub(crate) fn print(&self) {
        println!(
            "outbox: {} frame(s) offered, {} dropped (sink behind); kept {} result(s), {} \
             frame(s), {} sample(s); {} record(s) committed to {}, {} waiting",
            self.sink.offered,
            self.sink.dropped,
            self.sink.results,
            self.sink.frames,
            self.sink.samples,
            self.writer.committed,
            self.path.display(),
            self.backlog
        );
        if let Some(u) = self.uplink {
            println!(
                "uplink: {} record(s) uploaded in {} object(s), {} failed attempt(s)",
                u.records, u.objects, u.failures
            );
        }
        if let Some(e) = &self.uplink_error {
            println!("uplink: stopped by an error: {e}");
        }
    }
}

/// Resolve a relative outbox path against the directory of the configuration file.
pub(super) fn resolve(settings: &mut OutboxSettings, base: &Path) {
    if settings.path.is_relative() {
        settings.path = base.join(&settings.path);
    }
}
