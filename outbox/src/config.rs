//! The outbox section of the runtime configuration (JSON).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{OutboxError, Result};
use crate::redact::RedactionPolicy;
use crate::samples::SampleConfig;
use crate::sink::RecordPolicy;
use crate::store::StoreConfig;
use crate::uplink::{AzureConfig, UplinkConfig};
use crate::writer::WriterConfig;

/// Everything the outbox needs; every field has a default except the Azure connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutboxSettings {
    /// The redb file.
    pub path: PathBuf,
    /// Byte bound.
    pub store: StoreConfig,
    /// Queue and commit batching.
    pub writer: WriterConfig,
    /// Redaction policy applied to every frame before it can be enqueued.
    pub redaction: RedactionPolicy,
    /// Retraining sample selection.
    pub samples: SampleConfig,
    /// Uplink behaviour.
    pub uplink: UplinkConfig,
    /// Azure connection (absent: no uplink, store only).
    pub azure: Option<AzureConfig>,
    /// What a pipeline records (used by [`crate::FrameSink`]).
    pub record: RecordPolicy,
    /// Run the sink's and the writer's threads under `SCHED_IDLE`: CPU time only when the
    /// pipeline leaves a core idle (see [`crate::priority`]). Default true. A pipeline that keeps
    /// every core busy then starves them: frames are dropped at the sink, counted, never waited
    /// for.
    pub sched_idle: bool,
    /// The uplink's threads' nice value, and the sink's and writer's without `sched_idle` (or
    /// where it is refused): 0 (the pipeline's priority) to 19 (lowest). Default 10.
    pub nice: i32,
}

impl Default for OutboxSettings {
    fn default() -> Self {
        OutboxSettings {
            path: PathBuf::from("/var/lib/outpost/outbox.redb"),
            store: StoreConfig::default(),
            writer: WriterConfig::default(),
            redaction: RedactionPolicy::default(),
            samples: SampleConfig::default(),
            uplink: UplinkConfig::default(),
            azure: None,
            record: RecordPolicy::default(),
            sched_idle: true,
            nice: crate::priority::DEFAULT_NICE,
        }
    }
}

impl OutboxSettings {
    /// How the sink's and the writer's threads are scheduled.
    pub fn background(&self) -> crate::priority::Background {
        crate::priority::Background {
            sched_idle: self.sched_idle,
            nice: self.nice,
        }
    }

    /// How the uplink's threads are scheduled: at the nice value, never `SCHED_IDLE`, so that
    /// uploads still make progress while the pipeline keeps every core busy (they mostly wait
    /// on the network anyway).
    pub fn uplink_background(&self) -> crate::priority::Background {
        crate::priority::Background {
            sched_idle: false,
            nice: self.nice,
        }
    }

    /// Read settings from a JSON file.
    pub fn from_file(path: &std::path::Path) -> Result<OutboxSettings> {
        let text = std::fs::read_to_string(path)?;
        let s: OutboxSettings = serde_json::from_str(&text)?;
        s.validate()?;
        Ok(s)
    }

    /// Check values that serde cannot.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(OutboxError::Config(m.into()));
        if !(0..=19).contains(&self.nice) {
            return bad("nice must be from 0 (the pipeline's priority) to 19 (the lowest)");
        }
        if self.store.max_bytes < 64 * 1024 {
            return bad("store.max_bytes must be at least 64 KiB");
        }
        if !(0.0..=1.0).contains(&self.samples.low) || self.samples.high < self.samples.low {
            return bad("samples: need 0 <= low <= high");
        }
        if self.redaction.classes.is_empty() {
            log::warn!("redaction.classes is empty: frames will be stored without redaction");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_partial_json() {
        let s: OutboxSettings = serde_json::from_str(
            r#"{"path":"/tmp/o.redb","store":{"max_bytes":1000000},
                "redaction":{"classes":["face","plate"],"method":{"kind":"fill","rgb":[0,0,0]}},
                "azure":{"emulator":"http://127.0.0.1:10000","container":"c"}}"#,
        )
        .unwrap();
        assert_eq!(s.redaction.classes.len(), 2);
        assert_eq!(s.samples, SampleConfig::default());
        s.validate().unwrap();
        assert!(
            s.azure
                .unwrap()
                .build(std::time::Duration::from_secs(1))
                .is_ok()
        );
    }
}
