//! Outbox records and their on-disk encoding.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{OutboxError, Result};
use crate::redact::{Detection, RedactedFrame};

/// Priority of a record: upload order is highest first, eviction order lowest first (and oldest
/// first within a priority), so anomalies and events are the last to be evicted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[repr(u8)]
pub enum Priority {
    /// Bulk data (periodic frames, raw results kept "just in case").
    Bulk = 0,
    /// Retraining samples.
    Sample = 1,
    /// Ordinary inference results.
    Result = 2,
    /// Events (a rule fired).
    Event = 3,
    /// Anomalies.
    Anomaly = 4,
}

impl Priority {
    /// All priorities, lowest first.
    pub const ALL: [Priority; 5] = [
        Priority::Bulk,
        Priority::Sample,
        Priority::Result,
        Priority::Event,
        Priority::Anomaly,
    ];

    /// The numeric value stored in the index.
    pub fn as_u8(self) -> u8 {
        self as u8
    }

    /// Inverse of [`Priority::as_u8`].
    pub fn from_u8(v: u8) -> Option<Priority> {
        Priority::ALL.get(usize::from(v)).copied()
    }

    /// Lower-case name, used in object names.
    pub fn name(self) -> &'static str {
        match self {
            Priority::Bulk => "bulk",
            Priority::Sample => "sample",
            Priority::Result => "result",
            Priority::Event => "event",
            Priority::Anomaly => "anomaly",
        }
    }
}

/// What every record carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordMeta {
    /// Stream (camera, sensor) the record comes from.
    pub stream: String,
    /// Capture time, milliseconds since the Unix epoch (UTC).
    pub time_ms: u64,
    /// Model id that produced it.
    pub model_id: String,
    /// Model version.
    pub model_version: String,
    /// Priority (upload and eviction order).
    pub priority: Priority,
}

/// A JPEG image built from a [`RedactedFrame`]; there is no other way to make one.
#[derive(Debug, Clone, PartialEq)]
pub struct JpegImage {
    bytes: Vec<u8>,
    width: u32,
    height: u32,
    detections: Vec<Detection>,
}

impl JpegImage {
    /// The JPEG bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }
    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }
    /// The raw detections of the frame.
    pub fn detections(&self) -> &[Detection] {
        &self.detections
    }
}

/// A record's payload.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// A small result or event as JSON.
    Json(serde_json::Value),
    /// A redacted frame or crop.
    Jpeg(JpegImage),
}

/// One record of the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Metadata.
    pub meta: RecordMeta,
    body: Body,
}

/// Header stored before the payload (JSON).
#[derive(Serialize, Deserialize)]
struct Header {
    #[serde(flatten)]
    meta: RecordMeta,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    jpeg: Option<JpegHeader>,
}

#[derive(Serialize, Deserialize)]
struct JpegHeader {
    width: u32,
    height: u32,
    detections: Vec<Detection>,
}

const MAGIC: &[u8; 4] = b"OBX1";
const DIGEST: usize = 32;

impl Record {
    /// A JSON record (result, event, anomaly).
    pub fn json(meta: RecordMeta, value: serde_json::Value) -> Record {
        Record {
            meta,
            body: Body::Json(value),
        }
    }

    /// A frame record: the redacted frame encoded as JPEG at `quality`, with its detections.
    pub fn frame(meta: RecordMeta, frame: &RedactedFrame<'_>, quality: u8) -> Result<Record> {
        let bytes = frame.encode_jpeg(quality)?;
        let f = frame.frame();
        let jpeg = JpegImage {
            bytes,
            width: f.width(),
            height: f.height(),
            detections: frame.detections().to_vec(),
        };
        Ok(Record {
            meta,
            body: Body::Jpeg(jpeg),
        })
    }

    /// The payload.
    pub fn body(&self) -> &Body {
        &self.body
    }

    /// Encode: magic, header length (u32 LE), header JSON, payload, SHA-256 of all before it.
    pub fn encode(&self) -> Vec<u8> {
        let (jpeg, payload): (Option<JpegHeader>, Vec<u8>) = match &self.body {
            Body::Json(v) => (None, serde_json::to_vec(v).unwrap_or_default()),
            Body::Jpeg(j) => (
                Some(JpegHeader {
                    width: j.width,
                    height: j.height,
                    detections: j.detections.clone(),
                }),
                j.bytes.clone(),
            ),
        };
        let header = serde_json::to_vec(&Header {
            meta: self.meta.clone(),
            jpeg,
        })
        .unwrap_or_default();
        let mut out = Vec::with_capacity(8 + header.len() + payload.len() + DIGEST);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
        out.extend_from_slice(&header);
        out.extend_from_slice(&payload);
        let digest = Sha256::digest(&out);
        out.extend_from_slice(&digest);
        out
    }

    /// Decode and verify what [`Record::encode`] wrote; `seq` is only used in errors.
    pub fn decode(seq: u64, bytes: &[u8]) -> Result<Record> {
        let corrupt = |reason: &str| OutboxError::Corrupt {
            seq,
            reason: reason.to_string(),
        };
        if bytes.len() < 8 + DIGEST || &bytes[..4] != MAGIC {
            return Err(corrupt("bad magic or too short"));
        }
        let (content, digest) = bytes.split_at(bytes.len() - DIGEST);
        if Sha256::digest(content).as_slice() != digest {
            return Err(corrupt("checksum mismatch"));
        }
        let hlen = u32::from_le_bytes([content[4], content[5], content[6], content[7]]) as usize;
        if 8 + hlen > content.len() {
            return Err(corrupt("header length out of range"));
        }
        let header: Header =
            serde_json::from_slice(&content[8..8 + hlen]).map_err(|e| corrupt(&e.to_string()))?;
        let payload = &content[8 + hlen..];
        let body = match header.jpeg {
            None => {
                Body::Json(serde_json::from_slice(payload).map_err(|e| corrupt(&e.to_string()))?)
            }
            Some(j) => Body::Jpeg(JpegImage {
                bytes: payload.to_vec(),
                width: j.width,
                height: j.height,
                detections: j.detections,
            }),
        };
        Ok(Record {
            meta: header.meta,
            body,
        })
    }
}

/// A record as stored, with its sequence number (unique and increasing within one outbox).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRecord {
    /// Sequence number, assigned at commit.
    pub seq: u64,
    /// Encoded size in bytes (what counts against the outbox limit).
    pub size: u64,
    /// The record.
    pub record: Record,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redact::{RedactionPolicy, Redactor, RgbFrame};

    fn meta() -> RecordMeta {
        RecordMeta {
            stream: "cam1".into(),
            time_ms: 1_700_000_000_000,
            model_id: "blazeface".into(),
            model_version: "1".into(),
            priority: Priority::Event,
        }
    }

    #[test]
    fn roundtrip_and_tamper() {
        let r = Record::json(meta(), serde_json::json!({"n": 1}));
        let enc = r.encode();
        assert_eq!(Record::decode(1, &enc).unwrap(), r);
        let mut bad = enc.clone();
        let i = bad.len() / 2;
        bad[i] ^= 1;
        assert!(matches!(
            Record::decode(1, &bad),
            Err(OutboxError::Corrupt { .. })
        ));
        assert!(Record::decode(1, &enc[..enc.len() - 1]).is_err());

        let mut f = RgbFrame::new(8, 8, vec![100; 192]).unwrap();
        let red = Redactor::apply(&RedactionPolicy::default(), &mut f, &[]);
        let r = Record::frame(meta(), &red, 70).unwrap();
        assert_eq!(Record::decode(2, &r.encode()).unwrap(), r);
    }

    #[test]
    fn priority_order() {
        assert!(Priority::Anomaly > Priority::Event && Priority::Event > Priority::Sample);
        for p in Priority::ALL {
            assert_eq!(Priority::from_u8(p.as_u8()), Some(p));
        }
    }
}
