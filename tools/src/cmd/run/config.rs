//! `--config FILE`: streams from a TOML file.
//!
//! ```toml
//! [[stream]]
//! name = "door"                      # unique; names results and the output subdirectory
//! images = ["door/a.png", "b.jpg"]   # replayed as a camera (paths relative to the file)
//! model = "models/blazeface-short-int8.safetensors"
//! fps = 30                           # optional, default --fps
//! policy = "latest"                  # optional: latest, drop-oldest, block, block:<ms>
//! loop = false                       # optional, default --loop
//! queue_depth = 4                    # optional, for drop-oldest and block
//! frames = 100                       # optional, default --frames
//! ```
//!
//! Instead of `images`, a stream may read a live RTSP H.264 camera (natively: retina + openh264):
//!
//! ```toml
//! rtsp = "rtsp://user:pass@10.0.0.7:554/stream1"  # frames at the camera's own rate (no `fps`)
//! width = 1920                       # optional: the largest picture accepted (default 1920)
//! height = 1080                      # optional (default 1080); larger pictures end the stream
//! ```
//!
//! A camera that drops or refuses the connection is retried with backoff; the failures are
//! counted in the stream's report.
//!
//! Or video decoded by an `ffmpeg` child process (Debian `ffmpeg`), from a file or any URL
//! ffmpeg reads (`rtsp://`, `http://`, ...):
//!
//! ```toml
//! video = "clips/door.mkv"           # a path (relative to this file) or a URL
//! width = 640                        # optional, both or neither: ffmpeg scales every frame to
//! height = 480                       # this size (default: the input's, probed with ffprobe)
//! realtime = true                    # optional: a file at its own frame rate (default false)
//! loop = true                        # optional: a file again from the start (default --loop)
//! ```
//!
//! Or, in an outpost built with `--features v4l2`, a V4L2 camera:
//! `v4l2 = "/dev/video0"` (with `width`/`height`: the size asked of the device).
//!
//! Any stream whose source fails transiently (a camera or URL gone, an ffmpeg child that died)
//! waits, then tries again: `backoff_ms = 100` (the first wait) doubling up to
//! `backoff_max_ms = 5000`, each wait drawn from its upper half. The failures and reconnects
//! are counted in the summary.
//!
//! Streams naming the same model file share one model (one inference thread).
//!
//! Sensor and audio streams give one of these source keys instead of `images` (see
//! docs/runtime.md); their frames are windows of samples (`frames × channels`). `model` is then
//! optional: a model whose input is an `nc` vector of exactly `window × channels` values takes the
//! window (int8 through the input's quantization); without `model`, the windows are published as
//! they are (streams without a model share one passthrough thread). `loop` replays files.
//! A keyword model (output spec `wakeword`, e.g. `okay-nabu-int8`) takes a mono 16 kHz `wav`
//! stream with windows of any length (30 ms, `window = 480`, is one model run per window): the
//! window's class score is the sliding-window mean, and a detection marks where it crosses the
//! model's cutoff.
//!
//! ```toml
//! mqtt = { host = "127.0.0.1", port = 1883, topics = ["plant/+/imu"], channels = 3,
//!          window = 50, hop = 25 }   # host, port default 127.0.0.1:1883; channels 1;
//!                                    # hop = window. Payloads: a number, comma-separated
//!                                    # numbers or a JSON array; each `channels` values are
//!                                    # one reading
//! wav = { path = "door.wav", window = 16000, hop = 8000, channel = 0, realtime = true }
//!                                    # path "-": standard input; without channel, the mean of
//!                                    # the channels; realtime: at the file's sample rate
//! csv = { path = "imu.csv", columns = ["ax", "ay", "az"], window = 50, hop = 50,
//!         rate = 100 }               # or timestamp = "t" (seconds); neither: unpaced
//! ```
//!
//! Optional tables:
//!
//! ```toml
//! [pipeline]
//! spin_us = 200                      # an idle thread busy-waits up to this long for a frame
//!                                    # or result known to be on its way, then parks (0: park
//!                                    # at once; saves CPU, adds a wake-up per hand-off)
//!
//! [redaction]                        # one policy for every sink (--out copies, the outbox)
//! classes = ["face"]                 # default ["face"]
//! method = { kind = "blur", radius = 8 }   # or { kind = "fill", rgb = [0, 0, 0] }
//! margin = 0.1                       # grow boxes by this fraction on every side
//! min_score = 0.0                    # redact detections at or above this score
//!
//! [outbox]                           # store and forward (see docs/outbox.md)
//! path = "outbox.redb"               # relative to this file
//! store = { max_bytes = 1073741824 } # bound on disk
//! record = { results = true, frames = "detections", samples = true, queue = 4 }
//! samples = { low = 0.3, high = 0.6, per_minute = 6 }
//! azure = { emulator = "http://127.0.0.1:10000", container = "outpost" }  # optional uplink
//! uplink = { device = "ship-7", max_bytes_per_sec = 100000 }
//! sched_idle = true                  # sink and writer threads only on idle CPU (default)
//! nice = 10                          # the uplink's nice value (and theirs without sched_idle)
//! ```
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use outpost_models::Model;
use outpost_outbox::{OutboxSettings, RedactionPolicy};
use outpost_runtime::SessionOptions;
use outpost_runtime::pipeline::{
    ImageSource, Pipeline, PipelineError, Placement, PlacementError, Policy, Source, StreamConfig,
};
use outpost_runtime::sources::rtsp::{self, RtspConfig, RtspError, RtspSource};
use serde::Deserialize;

use super::{Args, Catalog, outbox};
use crate::exit::Failure;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    stream: Vec<Stream>,
    /// The one redaction policy of every sink (`--out` copies, the outbox).
    redaction: Option<RedactionPolicy>,
    /// Store and forward.
    outbox: Option<OutboxSettings>,
    /// Settings of the pipeline as a whole.
    pipeline: Option<PipelineTable>,
}

/// `[pipeline]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PipelineTable {
    /// The longest an idle thread busy-waits for an imminent hand-off, in µs (0: always park).
    spin_us: Option<u64>,
    /// Inference threads and the publisher poll instead of sleeping (a core each).
    busy: Option<bool>,
    /// CPUs of the inference threads (model `i` on `infer_cpus[i % len]`).
    infer_cpus: Option<toml::Spanned<Vec<usize>>>,
    /// CPUs of the capture threads (stream `i` on `capture_cpus[i % len]`).
    capture_cpus: Option<toml::Spanned<Vec<usize>>>,
    /// The publisher's CPU.
    publish_cpu: Option<toml::Spanned<usize>>,
}

/// The sinks' settings a configuration file gives besides its streams.
#[derive(Debug, Default)]
pub(crate) struct Sinks {
    /// `[redaction]`: applies to every sink.
    pub redaction: Option<RedactionPolicy>,
    /// `[outbox]`, its path resolved against the file's directory.
    pub outbox: Option<OutboxSettings>,
    /// Streams whose frames are a sequence from one video, camera or device (not image
    /// files): their copies are named per frame, so that no frame overwrites another.
    pub sequences: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Stream {
    name: String,
    /// Image files replayed as a camera. Exactly one source key per stream.
    #[serde(default)]
    images: Vec<PathBuf>,
    /// An RTSP H.264 camera's URL (`rtsp://...`).
    rtsp: Option<String>,
    /// With `rtsp`: the widest picture accepted (slots are sized for it).
    width: Option<u32>,
    /// With `rtsp`: the tallest picture accepted.
    height: Option<u32>,
    /// A video file or URL decoded by an ffmpeg child (see `video.rs`).
    video: Option<String>,
    /// With `video`: a file at its own frame rate.
    realtime: Option<bool>,
    /// A V4L2 capture device (`/dev/video0`), with the `v4l2` feature.
    v4l2: Option<String>,
    /// The first wait after a transient source failure, in milliseconds.
    backoff_ms: Option<u64>,
    /// The longest wait after transient source failures, in milliseconds.
    backoff_max_ms: Option<u64>,
    /// Sensor topics on an MQTT broker (see `sensors.rs`).
    mqtt: Option<super::sensors::MqttKey>,
    /// Audio from a WAV file or standard input.
    wav: Option<super::sensors::WavKey>,
    /// Sensor readings replayed from a CSV file.
    csv: Option<super::sensors::CsvKey>,
    /// The model; without it, frames are published as they are (a passthrough).
    model: Option<PathBuf>,
    fps: Option<f64>,
    policy: Option<String>,
    #[serde(rename = "loop")]
    looping: Option<bool>,
    queue_depth: Option<usize>,
    frames: Option<u64>,
}

/// The stream's source, from whichever source key it gives (one arm per source kind). Errors
/// name the key at fault.
fn open_source(
    s: &Stream,
    resolve: &dyn Fn(&Path) -> PathBuf,
    fps: f64,
    looping: bool,
) -> Result<Box<dyn Source>, (&'static str, String)> {
    if !s.images.is_empty() {
        let images: Vec<PathBuf> = s.images.iter().map(|p| resolve(p)).collect();
        let source = ImageSource::open(&images)
            .map_err(|e| ("images", e.to_string()))?
            .with_fps(fps)
            .looping(looping);
        return Ok(Box::new(source));
    }
    if let Some(url) = &s.rtsp {
        return open_rtsp(s, url);
    }
    if let Some(input) = &s.video {
        if s.v4l2.is_some() {
            return Err((
                "video",
                "give one source per stream: `video` or `v4l2`".into(),
            ));
        }
        let realtime = s.realtime.unwrap_or(false);
        return super::video::open_video(input, (s.width, s.height), realtime, looping, resolve);
    }
    if let Some(device) = &s.v4l2 {
        return super::video::open_v4l2(device, (s.width, s.height));
    }
    let sensor = super::sensors::open(
        s.mqtt.as_ref(),
        s.wav.as_ref(),
        s.csv.as_ref(),
        resolve,
        looping,
    )?;
    if let Some(source) = sensor {
        return Ok(source);
    }
    Err((
        "images",
        "give a source: `images` (at least one image file), `rtsp` (a camera URL), `video` \
         (a file or URL ffmpeg reads), `v4l2`, `mqtt`, `wav` or `csv`"
            .into(),
    ))
}

/// The `rtsp` arm of [`open_source`]: a camera, its largest picture from `width`/`height`.
fn open_rtsp(s: &Stream, url: &str) -> Result<Box<dyn Source>, (&'static str, String)> {
    if !s.images.is_empty() {
        return Err((
            "rtsp",
            "give one source per stream: `images` or `rtsp`".into(),
        ));
    }
    for (key, v) in [("width", s.width), ("height", s.height)] {
        if v == Some(0) {
            return Err((key, "give a positive number of pixels".into()));
        }
    }
    let cfg = RtspConfig::new(url).with_max_size(
        s.width.unwrap_or(rtsp::DEFAULT_MAX_WIDTH),
        s.height.unwrap_or(rtsp::DEFAULT_MAX_HEIGHT),
    );
    let source = RtspSource::open(cfg).map_err(|e| match e {
        RtspError::MaxSize { .. } => ("width", e.to_string()),
        e => ("rtsp", e.to_string()),
    })?;
    Ok(Box::new(source))
}

/// `line:column` of byte `offset` in `text` (both from 1).
fn position(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// `[pipeline]`: the spin budget and the threads' placement; a CPU this process may not use is
/// an error naming the key and its line.
fn pipeline_table(
    table: PipelineTable,
    text: &str,
    file: &str,
    pipeline: &mut Pipeline,
) -> Result<(), Failure> {
    if let Some(us) = table.spin_us {
        if us > 1_000_000 {
            return Err(Failure::input(format!(
                "{file}: pipeline.spin_us = {us}: at most 1000000 (1 s); a few hundred µs is \
                 plenty"
            )));
        }
        pipeline.set_spin(std::time::Duration::from_micros(us));
    }
    let infer_at = table.infer_cpus.as_ref().map(toml::Spanned::span);
    let capture_at = table.capture_cpus.as_ref().map(toml::Spanned::span);
    let publish_at = table.publish_cpu.as_ref().map(toml::Spanned::span);
    let placement = Placement {
        busy: table.busy.unwrap_or(false),
        infer: table.infer_cpus.map(|v| v.into_inner()).unwrap_or_default(),
        capture: table
            .capture_cpus
            .map(|v| v.into_inner())
            .unwrap_or_default(),
        publish: table.publish_cpu.map(|v| v.into_inner()),
    };
    // The error points at the key that names the CPU.
    if let Err(e @ PlacementError::Unavailable { role, .. }) = placement.validate() {
        let (key, at) = match role {
            "inference" => ("infer_cpus", infer_at),
            "capture" => ("capture_cpus", capture_at),
            _ => ("publish_cpu", publish_at),
        };
        let (l, c) = position(text, at.map_or(0, |s| s.start));
        return Err(Failure::input(format!(
            "{file}:{l}:{c}: pipeline.{key}: {e}"
        )));
    }
    pipeline
        .set_placement(placement)
        .map_err(|e| Failure::input(format!("{file}: pipeline: {e}")))
}

/// Parse `path` and add its models and streams to `pipeline`; returns the stream names.
pub(crate) fn build(
    path: &Path,
    args: &Args,
    pipeline: &mut Pipeline,
    catalog: &mut Catalog,
    sinks: &mut Sinks,
) -> Result<Vec<String>, Failure> {
    let file = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::input(format!("--config {file}: cannot read: {e}")))?;
    let parsed: File = toml::from_str(&text).map_err(|e| {
        let at = e
            .span()
            .map(|s| {
                let (l, c) = position(&text, s.start);
                format!("{l}:{c}: ")
            })
            .unwrap_or_default();
        let msg = e.message().trim().replace('\n', "; ");
        Failure::input(format!("{file}:{at}{msg}"))
    })?;
    if parsed.stream.is_empty() {
        return Err(Failure::input(format!(
            "{file}: no [[stream]] table: give at least one stream with name, images and model"
        )));
    }
    let base = path.parent().unwrap_or(Path::new("."));
    if let Some(mut o) = parsed.outbox {
        if o.redaction != RedactionPolicy::default() {
            return Err(Failure::input(format!(
                "{file}: outbox.redaction: give the redaction policy as a top-level [redaction] \
                 table; it applies to every sink"
            )));
        }
        outbox::resolve(&mut o, base);
        o.validate()
            .map_err(|e| Failure::input(format!("{file}: outbox: {e}")))?;
        sinks.outbox = Some(o);
    }
    sinks.redaction = parsed.redaction;
    if let Some(table) = parsed.pipeline {
        pipeline_table(table, &text, &file.to_string(), pipeline)?;
    }
    let resolve = |p: &Path| -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            base.join(p)
        }
    };
    let mut models: HashMap<PathBuf, usize> = HashMap::new();
    let mut names = Vec::new();
    for s in parsed.stream {
        let at = |key: &str, msg: String| {
            Failure::input(format!("{file}: stream `{}`: {key}: {msg}", s.name))
        };
        if s.name.is_empty()
            || !s
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            || s.name.starts_with('.')
        {
            return Err(Failure::input(format!(
                "{file}: stream name {:?}: use letters, digits, `-`, `_` and `.` (it names \
                 a directory)",
                s.name
            )));
        }
        if names.contains(&s.name) {
            return Err(at("name", "another stream has this name".into()));
        }
        let fps = s.fps.unwrap_or(args.fps);
        if !(fps.is_finite() && fps > 0.0) {
            return Err(at("fps", format!("{fps}: give a positive number")));
        }
        let policy: Policy = match &s.policy {
            Some(p) => p.parse().map_err(|e| at("policy", e))?,
            None => args.policy,
        };
        if s.queue_depth == Some(0) || s.frames == Some(0) {
            let key = if s.frames == Some(0) {
                "frames"
            } else {
                "queue_depth"
            };
            return Err(at(key, "give at least 1".into()));
        }
        let key = match &s.model {
            Some(p) => resolve(p)
                .canonicalize()
                .map_err(|e| at("model", format!("{}: {e}", resolve(p).display())))?,
            // Streams without a model share one passthrough.
            None => PathBuf::new(),
        };
        let m = match (models.get(&key).copied(), &s.model) {
            (Some(m), _) => m,
            (None, None) => {
                let m = pipeline.add_passthrough("passthrough");
                catalog.add_passthrough("passthrough");
                models.insert(key, m);
                m
            }
            (None, Some(p)) => {
                let model_path = resolve(p);
                let model = Model::open(&model_path)
                    .map_err(|e| at("model", format!("{}: {e}", model_path.display())))?;
                let label = model_path
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or("model")
                    .to_string();
                let m = pipeline
                    .add_model(label.clone(), &model, SessionOptions::default())
                    .map_err(|e| at("model", format!("{}: {e}", model_path.display())))?;
                catalog.add_model(&label, &model_path, &model, pipeline.labels(m).len());
                models.insert(key, m);
                m
            }
        };
        let source = open_source(&s, &resolve, fps, s.looping.unwrap_or(args.looping))
            .map_err(|(key, msg)| at(key, msg))?;
        let backoff =
            super::video::backoff(s.backoff_ms, s.backoff_max_ms).map_err(|(k, m)| at(k, m))?;
        let mut cfg = StreamConfig::new(s.name.clone(), source, m)
            .policy(policy)
            .backoff(backoff)
            .max_frames(s.frames.or(args.frames));
        if let Some(d) = s.queue_depth {
            cfg = cfg.queue_depth(d);
        }
        pipeline.add_stream(cfg).map_err(|e| match e {
            PipelineError::Mismatch { reason, .. } => at("model", reason),
            e => Failure::input(format!("{file}: {e}")),
        })?;
        catalog.stream_model.push(m);
        if s.video.is_some() || s.rtsp.is_some() || s.v4l2.is_some() {
            sinks.sequences.push(s.name.clone());
        }
        names.push(s.name);
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    #[test]
    fn positions() {
        let t = "a = 1\nbb = 2\n";
        assert_eq!(super::position(t, 0), (1, 1));
        assert_eq!(super::position(t, 6), (2, 1));
        assert_eq!(super::position(t, 9), (2, 4));
    }
}
