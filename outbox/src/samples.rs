//! Retraining samples: keep frames the model is unsure about, rate-limited per stream.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::redact::Detection;

/// Sample selection settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SampleConfig {
    /// Keep frames whose best score is ≥ `low` …
    pub low: f32,
    /// … and < `high`.
    pub high: f32,
    /// At most this many samples per stream per minute (token bucket).
    pub per_minute: f32,
    /// Bucket depth (samples that may be kept back to back).
    pub burst: f32,
    /// JPEG quality of kept samples.
    pub jpeg_quality: u8,
}

impl Default for SampleConfig {
    fn default() -> Self {
        SampleConfig {
            low: 0.3,
            high: 0.6,
            per_minute: 6.0,
            burst: 2.0,
            jpeg_quality: 85,
        }
    }
}

/// The highest score among `detections` (None when there are none).
pub fn best_score(detections: &[Detection]) -> Option<f32> {
    detections
        .iter()
        .map(|d| d.score)
        .filter(|s| s.is_finite())
        .reduce(f32::max)
}

/// Decides which frames become retraining samples.
#[derive(Debug, Clone)]
pub struct SampleSelector {
    cfg: SampleConfig,
    buckets: HashMap<String, (f32, u64)>,
    /// Frames in the band but refused by the rate limit.
    pub rate_limited: u64,
    /// Frames selected.
    pub selected: u64,
}

impl SampleSelector {
    /// New selector.
    pub fn new(cfg: SampleConfig) -> SampleSelector {
        SampleSelector {
            cfg,
            buckets: HashMap::new(),
            rate_limited: 0,
            selected: 0,
        }
    }

    /// Whether the frame of `stream` at `now_ms` with these detections should be kept as a sample.
    /// The caller then redacts it and enqueues it as a [`crate::Priority::Sample`] frame record
    /// (the detections travel with it).
    pub fn consider(&mut self, stream: &str, now_ms: u64, detections: &[Detection]) -> bool {
        let Some(best) = best_score(detections) else {
            return false;
        };
        if !(best >= self.cfg.low && best < self.cfg.high) {
            return false;
        }
        let rate = self.cfg.per_minute / 60_000.0;
        let burst = self.cfg.burst.max(1.0);
        let (tokens, last) = self
            .buckets
            .entry(stream.to_string())
            .or_insert((burst, now_ms));
        *tokens = (*tokens + now_ms.saturating_sub(*last) as f32 * rate).min(burst);
        *last = now_ms;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            self.selected += 1;
            true
        } else {
            self.rate_limited += 1;
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(score: f32) -> Detection {
        Detection {
            class: "car".into(),
            score,
            x0: 0.0,
            y0: 0.0,
            x1: 1.0,
            y1: 1.0,
        }
    }

    #[test]
    fn band_and_rate() {
        let mut s = SampleSelector::new(SampleConfig {
            per_minute: 60.0,
            burst: 1.0,
            ..Default::default()
        });
        assert!(!s.consider("a", 0, &[]));
        assert!(!s.consider("a", 0, &[d(0.2)]));
        assert!(
            !s.consider("a", 0, &[d(0.4), d(0.9)]),
            "best score 0.9 is confident"
        );
        assert!(s.consider("a", 0, &[d(0.4), d(0.1)]));
        assert!(!s.consider("a", 500, &[d(0.4)]), "rate limited");
        assert!(s.consider("b", 500, &[d(0.5)]), "per stream");
        assert!(s.consider("a", 1000, &[d(0.3)]));
        assert_eq!((s.selected, s.rate_limited), (3, 1));
    }
}
