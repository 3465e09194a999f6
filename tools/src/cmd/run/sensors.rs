//! The sensor and audio source keys of `--config` streams (`mqtt`, `wav`, `csv`), and how
//! `outpost run` shows a window of samples. See the module documentation of `config.rs` for the
//! keys.

use std::path::{Path, PathBuf};

use outpost_runtime::pipeline::{FrameResult, Source};
use outpost_runtime::sources::{CsvSource, Mix, MqttConfig, MqttSource, Pace, WavSource};
use serde::Deserialize;
use serde_json::{Value, json};

/// `mqtt = { host, port, topics, channels, window, hop }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MqttKey {
    #[serde(default = "localhost")]
    host: String,
    #[serde(default = "mqtt_port")]
    port: u16,
    topics: Vec<String>,
    #[serde(default = "one")]
    channels: usize,
    window: usize,
    hop: Option<usize>,
}

/// `wav = { path, window, hop, channel, realtime }` (`path = "-"`: standard input).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WavKey {
    path: PathBuf,
    window: usize,
    hop: Option<usize>,
    channel: Option<u16>,
    #[serde(default)]
    realtime: bool,
}

/// `csv = { path, columns, window, hop, rate | timestamp }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CsvKey {
    path: PathBuf,
    columns: Vec<String>,
    #[serde(default = "one")]
    window: usize,
    hop: Option<usize>,
    rate: Option<f64>,
    timestamp: Option<String>,
}

fn localhost() -> String {
    "127.0.0.1".into()
}
fn mqtt_port() -> u16 {
    1883
}
fn one() -> usize {
    1
}

/// The sensor source a stream gives, if any: `Ok(None)` when it gives none of these keys.
/// Errors name the key at fault.
pub(crate) fn open(
    mqtt: Option<&MqttKey>,
    wav: Option<&WavKey>,
    csv: Option<&CsvKey>,
    resolve: &dyn Fn(&Path) -> PathBuf,
    looping: bool,
) -> Result<Option<Box<dyn Source>>, (&'static str, String)> {
    let given = [mqtt.is_some(), wav.is_some(), csv.is_some()];
    if given.iter().filter(|&&g| g).count() > 1 {
        let key = if mqtt.is_some() { "mqtt" } else { "wav" };
        return Err((
            key,
            "give one source per stream: `mqtt`, `wav` or `csv`".into(),
        ));
    }
    if let Some(m) = mqtt {
        let cfg = MqttConfig::new(
            m.host.clone(),
            m.port,
            m.topics.clone(),
            m.channels,
            m.window,
        )
        .hop(m.hop.unwrap_or(m.window));
        let source = MqttSource::connect(cfg)
            .map_err(|e| ("mqtt", e.to_string()))?
            .stop_on(&super::STOP);
        return Ok(Some(Box::new(source)));
    }
    if let Some(w) = wav {
        let hop = w.hop.unwrap_or(w.window);
        let source = if w.path.as_os_str() == "-" {
            WavSource::stdin(w.window, hop)
        } else {
            WavSource::open(&resolve(&w.path), w.window, hop)
        }
        .map_err(|e| ("wav", e.to_string()))?;
        let mix = w.channel.map_or(Mix::Mean, Mix::Channel);
        let source = source
            .mix(mix)
            .map_err(|e| ("wav", e.to_string()))?
            .realtime(w.realtime)
            .looping(looping);
        return Ok(Some(Box::new(source)));
    }
    if let Some(c) = csv {
        let pace = match (c.rate, &c.timestamp) {
            (Some(_), Some(_)) => {
                return Err(("csv", "give `rate` or `timestamp`, not both".into()));
            }
            (Some(r), None) => Pace::Rate(r),
            (None, Some(t)) => Pace::Timestamps(t.clone()),
            (None, None) => Pace::Unpaced,
        };
        let source = CsvSource::open(
            &resolve(&c.path),
            &c.columns,
            c.window,
            c.hop.unwrap_or(c.window),
            pace,
        )
        .map_err(|e| ("csv", e.to_string()))?
        .looping(looping);
        return Ok(Some(Box::new(source)));
    }
    Ok(None)
}

/// Per-channel mean, minimum and maximum of a window (`frames × channels`, row-major).
pub(crate) fn channel_stats(r: &FrameResult<'_>) -> Vec<[f32; 3]> {
    let c = r.frame.sample_channels().max(1);
    let mut out = vec![[0.0, f32::INFINITY, f32::NEG_INFINITY]; c];
    let s = r.samples();
    for row in s.chunks_exact(c) {
        for (o, &v) in out.iter_mut().zip(row) {
            o[0] += v;
            o[1] = o[1].min(v);
            o[2] = o[2].max(v);
        }
    }
    let n = (s.len() / c).max(1) as f32;
    for o in &mut out {
        o[0] /= n;
    }
    out
}

/// A window as one printed line: `imu #12: 50×3 samples, mean [0.01, -0.2, 9.8], top "x" 0.9`.
pub(crate) fn line(r: &FrameResult<'_>, prefix: &str) -> String {
    let stats = channel_stats(r);
    let means: Vec<String> = stats.iter().map(|s| format!("{:.4}", s[0])).collect();
    let top = r
        .top_k
        .first()
        .map(|&(c, s)| {
            let label = r.label(c).map_or(c.to_string(), |l| format!("{l:?}"));
            format!(", top {label} {s:.3}")
        })
        .unwrap_or_default();
    let detected = r
        .detections
        .first()
        .map(|d| {
            let label = r
                .label(d.label)
                .map_or(d.label.to_string(), |l| format!("{l:?}"));
            format!(", DETECTED {label} {:.3}", d.score)
        })
        .unwrap_or_default();
    format!(
        "{prefix}{} #{}: {}×{} samples, mean [{}]{top}{detected} (infer {:.1} ms)",
        r.meta.name.as_str(),
        r.meta.seq,
        r.frame.sample_frames(),
        r.frame.sample_channels(),
        means.join(", "),
        r.timings.infer.as_secs_f64() * 1e3
    )
}

/// A window as JSON: its shape, per-channel statistics and the model's top classes.
pub(crate) fn json(r: &FrameResult<'_>) -> Value {
    let round = |v: f32| (f64::from(v) * 1e4).round() / 1e4;
    let stats = channel_stats(r);
    let top: Vec<Value> = r
        .top_k
        .iter()
        .map(|&(c, s)| json!({"class": c, "label": r.label(c), "score": round(s)}))
        .collect();
    let detections: Vec<Value> = r
        .detections
        .iter()
        .map(|d| json!({"class": d.label, "label": r.label(d.label), "score": round(d.score)}))
        .collect();
    json!({
        "detections": detections,
        "frames": r.frame.sample_frames(),
        "channels": r.frame.sample_channels(),
        "mean": stats.iter().map(|s| round(s[0])).collect::<Vec<_>>(),
        "min": stats.iter().map(|s| round(s[1])).collect::<Vec<_>>(),
        "max": stats.iter().map(|s| round(s[2])).collect::<Vec<_>>(),
        "top_k": top,
    })
}
