//! [`Outbox`]: the one object the pipeline holds. It owns the store, the writer, the configured
//! redaction policy and the sample selector, so the policy is applied in exactly one place.
//!
//! Call it from the pipeline's publish/outbox stage (its own thread): redaction and JPEG encoding
//! run on the caller's thread; the disk never does.

use std::sync::Arc;

use crate::config::OutboxSettings;
use crate::error::{OutboxError, Result};
use crate::priority::Background;
use crate::record::{Priority, Record, RecordMeta};
use crate::redact::{Detection, RedactionPolicy, Redactor, RgbFrame};
use crate::samples::SampleSelector;
use crate::store::Store;
use crate::writer::{OutboxWriter, Ticket, WriterConfig, WriterStats};

/// The pipeline's handle on store and forward.
#[derive(Debug)]
pub struct Outbox {
    store: Arc<Store>,
    writer: OutboxWriter,
    policy: RedactionPolicy,
    samples: SampleSelector,
    jpeg_quality: u8,
    background: Background,
}

impl Outbox {
    /// Open the store and start the writer as `settings` say.
    pub fn open(settings: &OutboxSettings) -> Result<Outbox> {
        settings.validate()?;
        let store = Arc::new(Store::open(&settings.path, settings.store)?);
        let writer = OutboxWriter::start(
            store.clone(),
            WriterConfig {
                background: settings.background(),
                ..settings.writer
            },
        )?;
        Ok(Outbox {
            store,
            writer,
            policy: settings.redaction.clone(),
            samples: SampleSelector::new(settings.samples),
            jpeg_quality: settings.samples.jpeg_quality,
            background: settings.background(),
        })
    }

    /// How the outbox's threads are scheduled ([`OutboxSettings::background`]).
    pub fn background(&self) -> Background {
        self.background
    }

    /// The store (for the uplink and metrics).
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Writer counters (enqueued, dropped, committed, evicted).
    pub fn writer_stats(&self) -> WriterStats {
        self.writer.stats()
    }

    /// The sample selector (its counters).
    pub fn samples(&self) -> &SampleSelector {
        &self.samples
    }

    /// A result, event or anomaly (JSON). Never blocks.
    pub fn json(&self, meta: RecordMeta, value: serde_json::Value) -> Result<Ticket> {
        Ok(self.writer.enqueue(&Record::json(meta, value))?)
    }

    /// A frame or crop: redacted in place with the configured policy, encoded as JPEG, enqueued
    /// with its detections. Never blocks on the disk.
    pub fn frame(
        &self,
        meta: RecordMeta,
        frame: &mut RgbFrame,
        detections: &[Detection],
    ) -> Result<Ticket> {
        let red = Redactor::apply(&self.policy, frame, detections);
        let rec = Record::frame(meta, &red, self.jpeg_quality)?;
        Ok(self.writer.enqueue(&rec)?)
    }

    /// Keep the frame as a retraining sample if its best score is in the uncertainty band and the
    /// stream's sample rate allows; then it is redacted in place and enqueued with priority
    /// `sample` and its raw detections. Returns None when the frame is not kept.
    pub fn maybe_sample(
        &mut self,
        mut meta: RecordMeta,
        frame: &mut RgbFrame,
        detections: &[Detection],
    ) -> Result<Option<Ticket>> {
        if !self
            .samples
            .consider(&meta.stream, meta.time_ms, detections)
        {
            return Ok(None);
        }
        meta.priority = Priority::Sample;
        self.frame(meta, frame, detections).map(Some)
    }

    /// Stop: commit what is queued and join the writer.
    pub fn close(self) -> WriterStats {
        self.writer.close()
    }
}

impl From<crate::writer::EnqueueError> for OutboxError {
    fn from(e: crate::writer::EnqueueError) -> Self {
        OutboxError::Enqueue(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Body;
    use crate::store::StoreConfig;

    #[test]
    fn frames_are_redacted_and_samples_selected() {
        let dir = tempfile::tempdir().unwrap();
        let settings = OutboxSettings {
            path: dir.path().join("o.redb"),
            store: StoreConfig::with_max_bytes(16 << 20),
            ..Default::default()
        };
        let mut ob = Outbox::open(&settings).unwrap();
        let meta = |t| RecordMeta {
            stream: "cam".into(),
            time_ms: t,
            model_id: "m".into(),
            model_version: "1".into(),
            priority: Priority::Event,
        };
        let mut rng = fastrand::Rng::with_seed(3);
        let orig = RgbFrame::new(32, 32, (0..32 * 32 * 3).map(|_| rng.u8(..)).collect()).unwrap();
        let face = Detection {
            class: "face".into(),
            score: 0.4,
            x0: 4.0,
            y0: 4.0,
            x1: 12.0,
            y1: 12.0,
        };
        let mut f = orig.clone();
        let t = ob
            .maybe_sample(meta(0), &mut f, std::slice::from_ref(&face))
            .unwrap()
            .unwrap();
        assert_ne!(
            f.pixel(6, 6),
            orig.pixel(6, 6),
            "the kept sample was redacted in place"
        );
        assert_eq!(f.pixel(20, 20), orig.pixel(20, 20));
        let mut g = orig.clone();
        let confident = Detection {
            score: 0.95,
            ..face.clone()
        };
        assert!(
            ob.maybe_sample(meta(1), &mut g, &[confident])
                .unwrap()
                .is_none()
        );
        assert_eq!(g, orig, "frames not kept are not touched");
        ob.json(meta(2), serde_json::json!({"event": "line crossed"}))
            .unwrap();
        t.wait(std::time::Duration::from_secs(10)).unwrap();
        let store = ob.store().clone();
        ob.close();
        let r = store.get(1).unwrap().unwrap();
        assert_eq!(r.record.meta.priority, Priority::Sample);
        let Body::Jpeg(img) = r.record.body() else {
            panic!("expected a JPEG")
        };
        assert_eq!(img.detections(), std::slice::from_ref(&face));
        assert_eq!(store.stats().unwrap().records, 2);
    }
}
