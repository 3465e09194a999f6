//! `outpost run`: the inference loop. With no configuration it runs the built-in demo: the
//! sample images replayed as a camera through BlazeFace (int8), faces blurred in copies written
//! to `--out`, counters and per-stage latency at the end.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use outpost_models::Model;
use outpost_outbox::{
    Detection as OutboxDetection, OutboxSettings, RedactMethod, RedactionPolicy, Redactor, RgbFrame,
};
use outpost_runtime::SessionOptions;
use outpost_runtime::ipc::proto::{
    BBox, BoundedVec, ClassScore, Detection as WireDetection, MAX_CLASS_SCORES, MAX_KEYPOINTS,
    MAX_SENSOR_EVENTS, ModelInfo, Name, Point, ResultMsg, SensorEvent,
};
use outpost_runtime::ipc::{self, PublishError, ResultServer, ServerConfig};
use outpost_runtime::pipeline::{
    Counters, DropReason, FrameKind, FrameResult, ImageSource, Pipeline, Policy, Report, Stage,
    StreamConfig,
};
use outpost_runtime::preprocess::PixelFormat;
use serde_json::{Value, json};

use crate::cmd::fetch_models::ensure_models;
use crate::exit::{CmdResult, Failure};
use crate::fetch;

/// The demo's model (fetched and converted on first use).
pub const DEMO_MODEL: &str = "blazeface-short-int8";

/// The demo's images, replayed in this order: astronaut has a face, the others none.
pub const DEMO_IMAGES: [&str; 7] = [
    "data/astronaut.png",
    "data/chelsea.png",
    "data/coffee.png",
    "data/china.jpg",
    "data/rocket.jpg",
    "data/motorcycle_left.png",
    "data/flower.jpg",
];

/// Detection boxes are grown by this fraction of their size on every side before blurring.
pub const REDACT_MARGIN: f32 = 0.1;

/// Arguments of `outpost run`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Without --config, runs the built-in demo: the BlazeFace int8 face detector and seven sample \
images (fetched and converted into the models directory on first use: $OUTPOST_MODELS, else \
<workspace root>/.models) replayed as a camera. Each frame goes capture → queue → preprocess → \
inference → publish through the runtime's allocation-free pipeline. Every frame with a face is \
written face-blurred (boxes grown by 10 %) to DIR/<image>-redacted.png (video, RTSP and V4L2 \
streams: DIR/<name>-<frame number>-redacted.png).

Output: one line per frame, `astronaut: 1 face(s) [x1,y1,x2,y2] 0.94 (infer 1.2 ms)` (boxes in \
source pixels), then the counters (captured, inferred, published, dropped by reason), faces, \
files written and p50/p99 latency per stage. With --json, one object per frame \
{\"frame\", \"source\", \"detections\": [{\"box\", \"score\", \"label\"}], \"latency_ms\", \
\"infer_ms\", \"redacted\"} and a last one {\"summary\": {...}}.

With --config FILE, the streams come from a TOML file instead (paths relative to it; streams \
naming the same model share it):
  [[stream]]
  name = \"door\"
  images = [\"door/1.png\", \"door/2.jpg\"]
  model = \"models/blazeface-short-int8.safetensors\"
  fps = 15                # default --fps
  policy = \"drop-oldest\"  # default --policy
  loop = true             # default --loop
  queue_depth = 4         # drop-oldest and block
  frames = 100            # default --frames
With several streams, lines are prefixed with the stream's name and copies are written to \
DIR/<stream>/.
Optional tables: [pipeline] spin_us = 200 (how long an idle thread busy-waits for a frame on \
its way, 0: park at once), busy = true (inference threads and the publisher poll instead of \
sleeping: a core each, always; hand-offs under a µs), infer_cpus = [1], capture_cpus = [0], \
publish_cpu = 0 (pin those threads; model/stream i takes entry i modulo the list), [redaction] (one policy for every sink) and [outbox] (store and \
forward, see docs/outbox.md). Other sources (rtsp, video, v4l2, mqtt, wav, csv): docs/runtime.md.

Policies (when inference falls behind the camera): latest keeps only the newest waiting frame, \
drop-oldest keeps a queue of 4 and drops its oldest, block[:MS] makes the camera wait up to MS \
milliseconds (default 1000) and then drops the new frame. Every drop is counted.

Ctrl-C (SIGINT) or SIGTERM stops the camera; frames already captured are still processed and \
the counters printed; exit status 0. A second Ctrl-C ends at once.

With --socket PATH, a result server listens on the Unix socket PATH (SOCK_SEQPACKET, mode 0660, \
removed at exit; see docs/ipc.md) and every frame's results are published to its subscribers: \
stream index, frame number, capture/inference/publish times, model, detections (class, score, \
box and keypoints normalised to the frame, at most 100 per frame: extra ones are left out and \
counted) and class scores. Read them with `outpost client subscribe --socket PATH`. A path that \
cannot be bound (missing directory, another server listening) is an error (exit status 2), as \
is an --ipc-cpu the server cannot pin its I/O thread to.

Examples:
  outpost run
  outpost run --loop --fps 60 --json
  outpost run --loop --socket /tmp/outpost.sock")]
pub struct Args {
    /// A TOML pipeline: [[stream]] tables with name, images, model and optionally fps, policy,
    /// loop, queue_depth, frames (see below). Without it: the built-in demo.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory for the face-blurred copies (created if missing).
    #[arg(long, value_name = "DIR", default_value = "outpost-out")]
    pub out: PathBuf,
    /// Frames per second of the replayed camera.
    #[arg(long, value_name = "N", default_value_t = 30.0)]
    pub fps: f64,
    /// Stop after N frames.
    #[arg(long, value_name = "N")]
    pub frames: Option<u64>,
    /// Replay the images again and again until interrupted.
    #[arg(long = "loop")]
    pub looping: bool,
    /// One JSON object per frame, then a summary object.
    #[arg(long)]
    pub json: bool,
    /// What happens when inference falls behind: latest, drop-oldest, block or block:<ms>.
    #[arg(long, value_name = "POLICY", default_value = "latest", value_parser = parse_policy)]
    pub policy: Policy,
    /// Publish every frame's results on this Unix socket (see `outpost client subscribe`).
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Pin the result server's I/O thread to this CPU (needs --socket). With the clients on
    /// the same CPU (`taskset -c CPU outpost client subscribe ...`) results reach them without
    /// a cross-core wake-up: the lowest latency, at the cost of sharing that core.
    #[arg(long, value_name = "CPU", requires = "socket")]
    pub ipc_cpu: Option<usize>,
    /// Keep results (and retraining samples, redacted) in the crash-safe outbox at PATH (a redb
    /// file, created if missing), with default settings; a config file's [outbox] table gives
    /// all of them (see `outpost outbox`).
    #[arg(long, value_name = "PATH")]
    pub outbox: Option<PathBuf>,
}

fn parse_policy(s: &str) -> Result<Policy, String> {
    s.parse()
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(sig: libc::c_int) {
    STOP.store(true, Ordering::Release);
    // SAFETY: `signal` is async-signal-safe; the next such signal ends the process the default
    // way.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
    }
}

/// Stop the pipeline (drain, report, exit 0) on the first SIGINT or SIGTERM.
fn install_signal_handlers() {
    let handler = on_signal as extern "C" fn(libc::c_int);
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic and calls `signal`, both
        // async-signal-safe.
        unsafe {
            libc::signal(sig, handler as libc::sighandler_t);
        }
    }
}

/// Run the command.
pub fn run(args: Args) -> CmdResult {
    if !(args.fps.is_finite() && args.fps > 0.0) {
        return Err(Failure::input(format!(
            "--fps {}: give a positive number of frames per second",
            args.fps
        )));
    }
    if args.frames == Some(0) {
        return Err(Failure::input("--frames 0: give at least 1"));
    }
    let mut pipeline = Pipeline::new();
    let mut catalog = Catalog::default();
    let mut sinks = config::Sinks::default();
    let streams = match &args.config {
        Some(path) => config::build(path, &args, &mut pipeline, &mut catalog, &mut sinks)?,
        None => build_demo(&args, &mut pipeline, &mut catalog)?,
    };
    if let Some(path) = &args.outbox {
        let settings = sinks.outbox.get_or_insert_with(OutboxSettings::default);
        settings.path = path.clone();
    }
    let redaction = sinks.redaction.clone().unwrap_or_else(default_redaction);
    let mut outbox = outbox::OutboxOut::from_sinks(&mut sinks, &redaction, &catalog)?;
    let multi = streams.len() > 1;
    for s in &streams {
        let dir = if multi {
            args.out.join(s)
        } else {
            args.out.clone()
        };
        std::fs::create_dir_all(&dir).map_err(|e| {
            Failure::input(format!(
                "--out {}: cannot create the directory: {e}",
                dir.display()
            ))
        })?;
    }

    // Bind once the models are loaded, so that a client that sees the socket also sees them;
    // still before the pipeline starts, so that no frame is missed.
    let server = match &args.socket {
        Some(path) => Some(
            ResultServer::bind(
                path,
                ServerConfig {
                    io_cpu: args.ipc_cpu,
                    ..Default::default()
                },
            )
            .map_err(|e| Failure::input(format!("--socket {}: {e}", path.display())))?,
        ),
        None => None,
    };
    let mut socket = server.as_ref().map(|s| {
        s.set_models(&catalog.models);
        SocketOut::new(s.publisher(), &catalog)
    });

    install_signal_handlers();
    let mut publisher = Publisher::new(&args.out, args.json, multi, redaction);
    publisher.sequences = std::mem::take(&mut sinks.sequences);
    let report = pipeline.run(&STOP, |r| {
        if let Some(s) = socket.as_mut() {
            s.publish(r);
        }
        if let Some(o) = outbox.as_mut() {
            o.publish(r);
        }
        publisher.frame(r)
    });
    let outbox = outbox.map(outbox::OutboxOut::finish).transpose()?;
    print_summary(
        &report,
        &publisher,
        &args,
        server.as_ref(),
        socket.as_ref(),
        outbox.as_ref(),
    );
    if let Some(s) = server {
        s.shutdown();
    }
    if let Some(e) = publisher.write_error {
        return Err(Failure::other(e));
    }
    if let Some(s) = report.streams.iter().find(|s| s.error.is_some()) {
        return Err(Failure::other(format!(
            "stream {}: {}",
            s.name,
            s.error.as_deref().unwrap_or_default()
        )));
    }
    Ok(())
}

/// The built-in demo: BlazeFace int8 over the sample images, fetched on first use. Returns the
/// stream names.
fn build_demo(
    args: &Args,
    pipeline: &mut Pipeline,
    catalog: &mut Catalog,
) -> Result<Vec<String>, Failure> {
    let dir = fetch::models_dir();
    let model_path = ensure_models(&dir, &[DEMO_MODEL], true)?
        .pop()
        .ok_or_else(|| Failure::other("the demo model was not made"))?;
    let images =
        fetch::ensure(&dir, &DEMO_IMAGES, true).map_err(|e| Failure::other(e.to_string()))?;
    let model = Model::open(&model_path)
        .map_err(|e| Failure::other(format!("{}: {e}", model_path.display())))?;
    let source = ImageSource::open(&images)
        .map_err(|e| Failure::other(e.to_string()))?
        .with_fps(args.fps)
        .looping(args.looping);
    let m = pipeline
        .add_model(DEMO_MODEL, &model, SessionOptions::default())
        .map_err(|e| Failure::other(format!("{}: {e}", model_path.display())))?;
    catalog.add_model(DEMO_MODEL, &model_path, &model, pipeline.labels(m).len());
    catalog.stream_model.push(m);
    pipeline
        .add_stream(
            StreamConfig::new("demo", Box::new(source), m)
                .policy(args.policy)
                .max_frames(args.frames),
        )
        .map_err(|e| Failure::other(e.to_string()))?;
    Ok(vec!["demo".into()])
}

/// The redaction policy when the configuration gives none: faces blurred, boxes grown by
/// [`REDACT_MARGIN`], every detection the model reports (it already applied its threshold).
/// A detection's class name: its model's label, `face` for a model without labels (the demo's
/// and BlazeFace's only class).
fn class_name(r: &FrameResult<'_>, label: u32) -> String {
    r.label(label).unwrap_or("face").to_string()
}

pub(crate) fn default_redaction() -> RedactionPolicy {
    RedactionPolicy {
        classes: vec!["face".into()],
        method: RedactMethod::Blur { radius: 8 },
        margin: REDACT_MARGIN,
        min_score: 0.0,
    }
}

/// The publisher side: prints, redacts, writes. Allocating here is fine (not the hot path).
struct Publisher {
    out: PathBuf,
    json: bool,
    /// Several streams: results are prefixed and files go to `<out>/<stream>/`.
    multi: bool,
    policy: RedactionPolicy,
    faces: u64,
    frames_with_faces: u64,
    files: u64,
    write_error: Option<String>,
    /// Streams whose copies carry the frame number (see `config::Sinks::sequences`).
    sequences: Vec<String>,
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

fn r2(v: f32) -> f64 {
    (f64::from(v) * 100.0).round() / 100.0
}

impl Publisher {
    fn new(out: &Path, json: bool, multi: bool, policy: RedactionPolicy) -> Self {
        Publisher {
            out: out.to_path_buf(),
            json,
            multi,
            policy,
            faces: 0,
            frames_with_faces: 0,
            files: 0,
            write_error: None,
            sequences: Vec::new(),
        }
    }

    fn frame(&mut self, r: &FrameResult<'_>) {
        let stem = r.meta.name.as_str();
        if r.frame.kind() == FrameKind::Samples {
            // A window of sensor or audio samples: its shape, statistics and top classes.
            if self.json {
                println!(
                    "{}",
                    json!({
                        "stream": r.stream,
                        "frame": r.meta.seq,
                        "source": stem,
                        "samples": sensors::json(r),
                        "latency_ms": ms(r.timings.latency),
                        "infer_ms": ms(r.timings.infer),
                    })
                );
            } else {
                let prefix = if self.multi {
                    format!("{}/", r.stream)
                } else {
                    String::new()
                };
                println!("{}", sensors::line(r, &prefix));
            }
            return;
        }
        let dets: Vec<OutboxDetection> = r
            .detections
            .iter()
            .map(|d| OutboxDetection {
                class: class_name(r, d.label),
                score: d.score,
                x0: d.bbox[0],
                y0: d.bbox[1],
                x1: d.bbox[2],
                y1: d.bbox[3],
            })
            .collect();
        let faces = dets.iter().filter(|d| self.policy.covers(d)).count() as u64;
        self.faces += faces;
        let mut written = None;
        if faces > 0 {
            self.frames_with_faces += 1;
            match self.redact(r, stem, &dets) {
                Ok(p) => {
                    self.files += 1;
                    written = Some(p);
                }
                Err(e) => {
                    eprintln!("warning: {e}");
                    self.write_error.get_or_insert(e);
                }
            }
        }
        if self.json {
            let detections: Vec<Value> = r
                .detections
                .iter()
                .map(|d| {
                    json!({
                        "box": d.bbox.map(r2),
                        "score": (f64::from(d.score) * 1e4).round() / 1e4,
                        "label": class_name(r, d.label),
                    })
                })
                .collect();
            println!(
                "{}",
                json!({
                    "stream": r.stream,
                    "frame": r.meta.seq,
                    "source": stem,
                    "detections": detections,
                    "latency_ms": ms(r.timings.latency),
                    "infer_ms": ms(r.timings.infer),
                    "redacted": written.as_ref().map(|p| p.display().to_string()),
                })
            );
        } else {
            let noun = r.label(0).unwrap_or("face");
            let boxes: Vec<String> = r
                .detections
                .iter()
                .map(|d| {
                    let b = d.bbox.map(|v| v.round() as i64);
                    format!(" [{},{},{},{}] {:.2}", b[0], b[1], b[2], b[3], d.score)
                })
                .collect();
            let prefix = if self.multi {
                format!("{}/", r.stream)
            } else {
                String::new()
            };
            println!(
                "{prefix}{stem}: {} {noun}(s){} (infer {:.1} ms)",
                r.detections.len(),
                boxes.join(","),
                r.timings.infer.as_secs_f64() * 1e3
            );
        }
    }

    /// Blur the covered detections in a copy of the frame and write it as PNG.
    fn redact(
        &self,
        r: &FrameResult<'_>,
        stem: &str,
        dets: &[OutboxDetection],
    ) -> Result<PathBuf, String> {
        let f = r.frame;
        if f.format() != PixelFormat::Rgb8 || f.stride() != f.width() as usize * 3 {
            return Err(format!("{stem}: only packed RGB frames can be redacted"));
        }
        let mut frame = RgbFrame::new(f.width(), f.height(), f.data().to_vec())
            .map_err(|e| format!("{stem}: {e}"))?;
        let red = Redactor::apply(&self.policy, &mut frame, dets);
        let dir = if self.multi {
            self.out.join(r.stream)
        } else {
            self.out.clone()
        };
        let name = if self.sequences.iter().any(|s| s == r.stream) {
            format!("{stem}-{:06}-redacted.png", r.meta.index)
        } else {
            format!("{stem}-redacted.png")
        };
        let path = dir.join(&name);
        let tmp = dir.join(format!(".{name}.part"));
        let rf = red.frame();
        image::save_buffer_with_format(
            &tmp,
            rf.data(),
            rf.width(),
            rf.height(),
            image::ExtendedColorType::Rgb8,
            image::ImageFormat::Png,
        )
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        std::fs::rename(&tmp, &path)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(path)
    }
}

/// The models and which model each stream uses, for the result socket and `outpost bench
/// --pipeline`.
#[derive(Debug, Default)]
pub(crate) struct Catalog {
    /// In pipeline model order.
    pub(crate) models: Vec<ModelInfo>,
    /// Each model's file, in pipeline model order.
    pub(crate) paths: Vec<PathBuf>,
    /// Pipeline model index of each stream, in stream order.
    pub(crate) stream_model: Vec<usize>,
}

impl Catalog {
    /// Describe a model just added to the pipeline (call in the same order).
    fn add_model(&mut self, name: &str, path: &Path, model: &Model, classes: usize) {
        self.paths.push(path.to_path_buf());
        use sha2::Digest;
        let sha256 = std::fs::read(path)
            .map(|b| sha2::Sha256::digest(&b).into())
            .unwrap_or([0; 32]);
        let (w, h) = outpost_runtime::preprocess::Preprocessor::new(model, 0)
            .map(|p| p.input_size())
            .unwrap_or((0, 0));
        self.models.push(ModelInfo {
            id: Name::truncating(name),
            version: 1,
            sha256,
            input_width: u16::try_from(w).unwrap_or(u16::MAX),
            input_height: u16::try_from(h).unwrap_or(u16::MAX),
            classes: u16::try_from(classes.max(1)).unwrap_or(u16::MAX),
            active: true,
        });
    }

    /// Describe a model-free passthrough just added to the pipeline (streams without `model`).
    pub(crate) fn add_passthrough(&mut self, name: &str) {
        self.paths.push(PathBuf::new());
        self.models.push(ModelInfo {
            id: Name::truncating(name),
            version: 1,
            sha256: [0; 32],
            input_width: 0,
            input_height: 0,
            classes: 0,
            active: true,
        });
    }
}

/// `--socket`: turns each frame's results into a wire `ResultMsg` and publishes it. Nothing is
/// allocated per frame: the message is allocated once and refilled in place.
struct SocketOut {
    publisher: ipc::Publisher,
    msg: Box<ResultMsg>,
    /// The model id of each stream.
    stream_models: Vec<Name>,
    /// Results dropped because the server's I/O thread was behind (or it had closed).
    dropped: u64,
    /// Frames whose detections, keypoints or class scores did not all fit the wire limits.
    truncated_frames: u64,
    /// Detections left out of those frames (including those the decoder already dropped).
    truncated_detections: u64,
}

impl SocketOut {
    fn new(publisher: ipc::Publisher, catalog: &Catalog) -> Self {
        let stream_models = catalog
            .stream_model
            .iter()
            .map(|&m| {
                catalog
                    .models
                    .get(m)
                    .map(|i| i.id.clone())
                    .unwrap_or_default()
            })
            .collect();
        SocketOut {
            publisher,
            msg: Box::default(),
            stream_models,
            dropped: 0,
            truncated_frames: 0,
            truncated_detections: 0,
        }
    }

    /// Convert and publish one frame's results (no heap allocation).
    fn publish(&mut self, r: &FrameResult<'_>) {
        let now = ipc::now_ns();
        let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let m = &mut *self.msg;
        m.stream = u16::try_from(r.stream_index).unwrap_or(u16::MAX);
        m.seq = r.meta.seq;
        m.publish_ns = now;
        // Latency runs from the start of capture to the callback; publish_queue is the wait
        // between the end of inference and the callback.
        m.capture_ns = now.saturating_sub(nanos(r.timings.latency));
        m.inference_ns = now.saturating_sub(nanos(r.timings.publish_queue));
        match self.stream_models.get(r.stream_index) {
            Some(id) => m.model.id.clone_from(id),
            None => m.model.id.0.clear(),
        }
        m.model.version = 1;
        m.detections.clear();
        m.class_scores.clear();
        m.events.clear();
        // A window of samples: one event per channel (up to the wire's limit), kind 0, its mean
        // over the window, timed at the start of capture.
        if r.frame.kind() == FrameKind::Samples {
            let c = r.frame.sample_channels();
            let s = r.samples();
            let rows = (s.len() / c.max(1)).max(1) as f32;
            for ch in 0..c.min(MAX_SENSOR_EVENTS) {
                let mean = s.iter().skip(ch).step_by(c).sum::<f32>() / rows;
                let _ = m.events.push(SensorEvent {
                    sensor: ch as u16,
                    kind: 0,
                    value: mean,
                    timestamp_ns: m.capture_ns,
                });
            }
        }
        // The wire carries coordinates normalised to the frame; the pipeline gives pixels.
        let w = r.frame.width().max(1) as f32;
        let h = r.frame.height().max(1) as f32;
        let mut truncated = r.detections_dropped;
        let mut cut = r.detections_dropped > 0;
        for (i, d) in r.detections.iter().enumerate() {
            let mut keypoints = BoundedVec::new();
            for k in d.keypoints().iter().take(MAX_KEYPOINTS) {
                // Cannot fail: at most MAX_KEYPOINTS are taken.
                let _ = keypoints.push(Point {
                    x: k[0] / w,
                    y: k[1] / h,
                });
            }
            cut |= d.keypoints().len() > MAX_KEYPOINTS;
            let det = WireDetection {
                class: u16::try_from(d.label).unwrap_or(u16::MAX),
                score: d.score,
                bbox: BBox {
                    x_min: d.bbox[0] / w,
                    y_min: d.bbox[1] / h,
                    x_max: d.bbox[2] / w,
                    y_max: d.bbox[3] / h,
                },
                keypoints,
            };
            if m.detections.push(det).is_err() {
                truncated += r.detections.len() - i;
                cut = true;
                break;
            }
        }
        for &(class, score) in r.top_k.iter().take(MAX_CLASS_SCORES) {
            let _ = m.class_scores.push(ClassScore {
                class: u16::try_from(class).unwrap_or(u16::MAX),
                score,
            });
        }
        cut |= r.top_k.len() > MAX_CLASS_SCORES;
        if cut {
            self.truncated_frames += 1;
            self.truncated_detections += truncated as u64;
        }
        match self.publisher.publish(m) {
            Ok(()) => {}
            Err(PublishError::Backlogged | PublishError::Closed) => self.dropped += 1,
            Err(e) => {
                self.dropped += 1;
                log::warn!("--socket: cannot publish: {e}");
            }
        }
    }
}

fn print_summary(
    report: &Report,
    p: &Publisher,
    args: &Args,
    server: Option<&ResultServer>,
    socket: Option<&SocketOut>,
    outbox: Option<&outbox::OutboxSummary>,
) {
    let socket_json = server.zip(socket).map(|(srv, s)| {
        let st = srv.status();
        json!({
            "path": srv.path().display().to_string(),
            "published": st.published,
            "dropped": s.dropped,
            "clients": st.clients,
            "truncated_frames": s.truncated_frames,
            "truncated_detections": s.truncated_detections,
        })
    });
    let t = report.totals();
    let stages: Vec<(Stage, Option<Duration>, Option<Duration>, u64)> = Stage::ALL
        .iter()
        .map(|&s| {
            let h = report.stage(s);
            (s, h.p50(), h.p99(), h.count)
        })
        .collect();
    let dropped_json = |c: &Counters| -> serde_json::Map<String, Value> {
        DropReason::ALL
            .iter()
            .map(|&d| (d.name().to_string(), json!(c.dropped(d))))
            .collect()
    };
    let policies: Vec<&str> = report.streams.iter().map(|s| s.policy.name()).collect();
    if args.json {
        let dropped = dropped_json(&t);
        let streams: Vec<Value> = report
            .streams
            .iter()
            .map(|s| {
                let c = &s.counters;
                json!({
                    "name": s.name,
                    "policy": s.policy.name(),
                    "captured": c.captured,
                    "inferred": c.inferred,
                    "published": c.published,
                    "dropped": dropped_json(c),
                    "max_queued": c.max_queued,
                    "source_failures": c.source_failures,
                    "reconnects": c.reconnects,
                    "error": s.error,
                })
            })
            .collect();
        let st: serde_json::Map<String, Value> = stages
            .iter()
            .map(|(s, p50, p99, n)| {
                (
                    s.name().to_string(),
                    json!({"p50_ms": p50.map(ms), "p99_ms": p99.map(ms), "count": n}),
                )
            })
            .collect();
        println!(
            "{}",
            json!({"summary": {
                "captured": t.captured,
                "inferred": t.inferred,
                "published": t.published,
                "dropped": dropped,
                "dropped_total": t.dropped_total(),
                "max_queued": t.max_queued,
                "source_failures": t.source_failures,
                "reconnects": t.reconnects,
                "faces": p.faces,
                "frames_with_faces": p.frames_with_faces,
                "files_written": p.files,
                "out": args.out.display().to_string(),
                "policy": policies.join(","),
                "streams": streams,
                "interrupted": STOP.load(Ordering::Acquire),
                "elapsed_s": (report.elapsed.as_secs_f64() * 1e3).round() / 1e3,
                "stages": st,
                "socket": socket_json,
                "outbox": outbox.map(outbox::OutboxSummary::json),
            }})
        );
        return;
    }
    let counts = |c: &Counters| -> String {
        let reasons: Vec<String> = DropReason::ALL
            .iter()
            .map(|&d| format!("{} {}", d.name(), c.dropped(d)))
            .collect();
        let failures = if c.source_failures > 0 {
            format!(
                "; source failed {} time(s), reconnected {} time(s)",
                c.source_failures, c.reconnects
            )
        } else {
            String::new()
        };
        format!(
            "{} captured, {} inferred, {} published, {} dropped ({}){failures}",
            c.captured,
            c.inferred,
            c.published,
            c.dropped_total(),
            reasons.join(", ")
        )
    };
    if STOP.load(Ordering::Acquire) {
        println!("interrupted: drained the frames in flight");
    }
    if let [s] = &report.streams[..] {
        println!(
            "frames: {} in {:.2} s, policy {}",
            counts(&t),
            report.elapsed.as_secs_f64(),
            s.policy.name()
        );
    } else {
        println!(
            "frames: {} in {:.2} s",
            counts(&t),
            report.elapsed.as_secs_f64()
        );
        for s in &report.streams {
            println!(
                "  {} ({}): {}",
                s.name,
                s.policy.name(),
                counts(&s.counters)
            );
        }
    }
    println!(
        "faces: {} in {} frame(s); {} file(s) written to {}",
        p.faces,
        p.frames_with_faces,
        p.files,
        args.out.display()
    );
    if let (Some(srv), Some(s)) = (server, socket) {
        let st = srv.status();
        let cut = if s.truncated_frames > 0 {
            format!(
                "; {} frame(s) truncated to the wire's limits ({} detection(s) left out)",
                s.truncated_frames, s.truncated_detections
            )
        } else {
            String::new()
        };
        println!(
            "socket: {} result(s) published to {}, {} dropped, {} client(s) connected{cut}",
            st.published,
            srv.path().display(),
            s.dropped,
            st.clients
        );
    }
    if let Some(o) = outbox {
        o.print();
    }
    println!("latency per stage (ms)    p50      p99");
    let show = |d: Option<Duration>| d.map_or("-".to_string(), |d| format!("{:.3}", ms(d)));
    for (s, p50, p99, _) in &stages {
        println!("  {:<20} {:>8} {:>8}", s.name(), show(*p50), show(*p99));
    }
}

pub(crate) mod config;
pub(crate) mod outbox;
mod sensors;
mod video;
