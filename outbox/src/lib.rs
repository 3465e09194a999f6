//! Outpost store and forward: redaction, a crash-safe bounded outbox, an Azure Blob uplink and
//! retraining-sample selection. See `docs/outbox.md`.
//!
//! ```text
//! detections ─► Redactor::apply ─► RedactedFrame ─► Record::frame ─┐
//! results/events ─────────────────────────────────► Record::json ──┴► OutboxWriter::enqueue (never blocks)
//!        ─► bounded queue ─► writer thread (group commit, redb, evicts by policy) ─► Store
//!        ─► Uplink (priority order, token bucket, backoff) ─► Azure Blob ─► confirm ─► delete
//! ```

pub mod config;
pub mod error;
pub mod facade;
pub mod priority;
pub mod record;
pub mod redact;
pub mod samples;
pub mod sink;
pub mod store;
pub mod uplink;
pub mod uplink_thread;
pub mod writer;

pub use config::OutboxSettings;
pub use error::{OutboxError, Result};
pub use facade::Outbox;
pub use record::{Body, JpegImage, Priority, Record, RecordMeta, StoredRecord};
pub use redact::{Detection, RedactMethod, RedactedFrame, RedactionPolicy, Redactor, RgbFrame};
pub use samples::{SampleConfig, SampleSelector};
pub use sink::{FrameIn, FrameSink, KeepFrames, RecordPolicy, SinkSnapshot, SinkStats};
pub use store::{BacklogStats, Batch, BatchLimits, EvictionCounters, Store, StoreConfig};
pub use uplink::{AzureConfig, Backoff, Layout, TokenBucket, Uplink, UplinkConfig, UplinkStats};
pub use uplink_thread::UplinkThread;
pub use writer::{EnqueueError, OutboxWriter, Ticket, WriterConfig, WriterStats};
