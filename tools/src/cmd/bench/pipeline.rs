//! `outpost bench --pipeline CONFIG`: the streams of an `outpost run --config` file through the
//! pipeline, with a publish callback that does no I/O.
//!
//! Besides the pipeline's own counters and stage histograms, the callback times what the
//! pipeline adds to a frame beyond its model (see `outpost bench --help` and docs/runtime.md):
//!
//! - *overhead*: `(callback start − end of capture) − (preprocess + inference)` per frame, from
//!   the pipeline's own timestamps, over frames that did not wait behind another frame;
//! - *overhead vs alone*: the median of `callback start − end of capture` over the same frames
//!   minus the median of the same model run alone in this process on copies of the same frames;
//! - *hand-off*: the capture → inference ring wait of those frames.
//!
//! The callback records into preallocated histograms; it allocates only while copying frames
//! during warm-up, before the allocation window opens. A config's `[outbox]` table runs as in
//! `outpost run` (sink thread, JPEG encoding, commits, the uplink), after the timing in the same
//! callback, so what it costs the pipeline shows in the figures and the JSON gains an `outbox`
//! object (the keys of `outpost run --json`'s).

use std::ffi::OsString;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use clap::Parser;
use outpost_models::Model;
use outpost_runtime::pipeline::{
    DropReason, FrameKind, FrameResult, Histogram, HistogramSnapshot, Pipeline, Report, Stage,
};
use outpost_runtime::preprocess::{ImageView, PixelFormat};
use outpost_runtime::{Inference, SessionOptions};
use serde_json::{Map, Value, json};

use super::Args;
use crate::alloc_count::allocations;
use crate::cmd::run::outbox::OutboxOut;
use crate::cmd::run::{self, Catalog, config};
use crate::exit::{CmdResult, Failure};

/// Frames copied per model during warm-up for the model-alone comparison.
const COPIES_PER_MODEL: usize = 8;

/// `outpost run`'s arguments, parsed the way `outpost run` parses them, so that a stream takes
/// the same defaults in both commands.
#[derive(Debug, Parser)]
struct RunCli {
    #[command(flatten)]
    run: run::Args,
}

/// One frame copied for the model-alone run.
struct FrameCopy {
    width: u32,
    height: u32,
    stride: usize,
    format: PixelFormat,
    data: Vec<u8>,
    stream: usize,
    index: u32,
}

impl FrameCopy {
    fn of(r: &FrameResult<'_>) -> Self {
        let f = r.frame;
        FrameCopy {
            width: f.width(),
            height: f.height(),
            stride: f.stride(),
            format: f.format(),
            data: f.data().to_vec(),
            stream: r.stream_index,
            index: r.meta.index,
        }
    }

    fn view(&self) -> ImageView<'_> {
        ImageView {
            width: self.width,
            height: self.height,
            stride: self.stride,
            format: self.format,
            data: &self.data,
        }
    }
}

/// What the callback measures for one stream, after warm-up.
#[derive(Default)]
struct StreamTimes {
    /// Callback start − end of capture − preprocess − inference (frames that did not wait).
    overhead: Histogram,
    /// Callback start − end of capture (frames that did not wait).
    path: Histogram,
    /// Capture → inference ring wait (frames that did not wait).
    handoff: Histogram,
    /// Inference → publisher wait (frames that did not wait).
    publish_handoff: Histogram,
    /// Frames measured (after warm-up, did not wait).
    measured: u64,
    /// Frames after warm-up that were queued while the inference thread was busy.
    waited: u64,
}

/// Everything the publish callback keeps, allocated before the run.
struct Recorder {
    warmup: u64,
    stream_model: Vec<usize>,
    /// When each model's inference thread last finished a frame.
    model_free_at: Vec<Option<Instant>>,
    streams: Vec<StreamTimes>,
    copies: Vec<Vec<FrameCopy>>,
    published: u64,
    allocs_start: u64,
    allocs_end: u64,
}

impl Recorder {
    fn new(warmup: u64, stream_model: Vec<usize>, models: usize) -> Self {
        Recorder {
            warmup,
            streams: stream_model
                .iter()
                .map(|_| StreamTimes::default())
                .collect(),
            stream_model,
            model_free_at: vec![None; models],
            copies: (0..models)
                .map(|_| Vec::with_capacity(COPIES_PER_MODEL))
                .collect(),
            published: 0,
            allocs_start: 0,
            allocs_end: 0,
        }
    }

    /// The publish callback. No heap allocation after warm-up.
    fn frame(&mut self, r: &FrameResult<'_>) {
        let now = Instant::now();
        let t = r.timings;
        let si = r.stream_index;
        let Some(&m) = self.stream_model.get(si) else {
            return;
        };
        // The frame entered the ring at `queued`; its model's thread finished it at `done`.
        let since_capture = t.latency.saturating_sub(t.capture);
        let queued = now.checked_sub(since_capture);
        let done = now.checked_sub(t.publish_queue);
        let waited = match (self.model_free_at[m], queued) {
            (Some(free), Some(q)) => q < free,
            _ => false,
        };
        self.model_free_at[m] = done;
        self.published += 1;
        if self.published <= self.warmup {
            let copies = &mut self.copies[m];
            if r.frame.kind() == FrameKind::Image
                && copies.len() < COPIES_PER_MODEL
                && !copies
                    .iter()
                    .any(|c| c.stream == si && c.index == r.meta.index)
            {
                copies.push(FrameCopy::of(r));
            }
            if self.published == self.warmup {
                self.allocs_start = allocations();
                self.allocs_end = self.allocs_start;
            }
            return;
        }
        let s = &mut self.streams[si];
        if waited {
            s.waited += 1;
        } else {
            s.measured += 1;
            s.path.record(since_capture);
            s.overhead
                .record(since_capture.saturating_sub(t.preprocess + t.infer));
            s.handoff.record(t.queue);
            s.publish_handoff.record(t.publish_queue);
        }
        self.allocs_end = allocations();
    }
}

/// Median time of `model`'s preprocess + inference + decoding on `frames`, run alone on this
/// thread: `warmup` untimed runs, then `runs` timed ones cycling through the frames.
fn alone_p50(
    path: &Path,
    frames: &[FrameCopy],
    warmup: usize,
    runs: usize,
) -> Result<Option<Duration>, Failure> {
    if frames.is_empty() {
        return Ok(None);
    }
    let model =
        Model::open(path).map_err(|e| Failure::input(format!("{}: {e}", path.display())))?;
    let mut inf = Inference::new(&model, SessionOptions::default())
        .map_err(|e| Failure::input(format!("{}: {e}", path.display())))?;
    let mut times = Vec::with_capacity(runs);
    for i in 0..warmup + runs {
        let view = frames[i % frames.len()].view();
        let t0 = Instant::now();
        inf.run_image(&view)
            .map_err(|e| Failure::other(format!("{}: {e}", path.display())))?;
        let dt = t0.elapsed();
        if i >= warmup {
            times.push(dt);
        }
    }
    times.sort_unstable();
    Ok(times.get(times.len() / 2).copied())
}

fn us(d: Option<Duration>) -> Value {
    d.map_or(Value::Null, |d| json!(round3(d.as_secs_f64() * 1e6)))
}

fn ms(d: Option<Duration>) -> Value {
    d.map_or(Value::Null, |d| json!(round3(d.as_secs_f64() * 1e3)))
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// `a − b` in µs (may be negative), when both are known.
fn diff_us(a: Option<Duration>, b: Option<Duration>) -> Value {
    match (a, b) {
        (Some(a), Some(b)) => json!(round3((a.as_secs_f64() - b.as_secs_f64()) * 1e6)),
        _ => Value::Null,
    }
}

/// Figures common to a stream and the whole run.
struct Measured {
    overhead: HistogramSnapshot,
    path: HistogramSnapshot,
    handoff: HistogramSnapshot,
    publish_handoff: HistogramSnapshot,
    measured: u64,
    waited: u64,
}

impl Measured {
    fn of(s: &StreamTimes) -> Self {
        Measured {
            overhead: s.overhead.snapshot(),
            path: s.path.snapshot(),
            handoff: s.handoff.snapshot(),
            publish_handoff: s.publish_handoff.snapshot(),
            measured: s.measured,
            waited: s.waited,
        }
    }

    fn merge(&mut self, o: &Measured) {
        self.overhead.merge(&o.overhead);
        self.path.merge(&o.path);
        self.handoff.merge(&o.handoff);
        self.publish_handoff.merge(&o.publish_handoff);
        self.measured += o.measured;
        self.waited += o.waited;
    }

    /// The JSON fields; `alone` is the model-alone median to compare the path with.
    fn fields(&self, alone: Option<Duration>, out: &mut Map<String, Value>) {
        out.insert("overhead_p50_us".into(), us(self.overhead.p50()));
        out.insert("overhead_p90_us".into(), us(self.overhead.quantile(0.9)));
        out.insert("overhead_p99_us".into(), us(self.overhead.p99()));
        out.insert("path_p50_us".into(), us(self.path.p50()));
        out.insert("alone_p50_us".into(), us(alone));
        out.insert(
            "overhead_vs_alone_p50_us".into(),
            diff_us(self.path.p50(), alone),
        );
        out.insert("handoff_p50_us".into(), us(self.handoff.p50()));
        out.insert("handoff_p99_us".into(), us(self.handoff.p99()));
        out.insert(
            "publish_handoff_p50_us".into(),
            us(self.publish_handoff.p50()),
        );
        out.insert(
            "publish_handoff_p99_us".into(),
            us(self.publish_handoff.p99()),
        );
        out.insert("measured_frames".into(), json!(self.measured));
        out.insert("waited_frames".into(), json!(self.waited));
    }
}

/// Latency, counters and drops of a stream or of the whole run.
fn latency_fields(
    total: &HistogramSnapshot,
    c: &outpost_runtime::pipeline::Counters,
    elapsed: Duration,
    out: &mut Map<String, Value>,
) {
    out.insert("frames".into(), json!(c.published));
    out.insert("captured".into(), json!(c.captured));
    out.insert("inferred".into(), json!(c.inferred));
    out.insert("published".into(), json!(c.published));
    let dropped: Map<String, Value> = DropReason::ALL
        .iter()
        .map(|&d| (d.name().to_string(), json!(c.dropped(d))))
        .collect();
    out.insert("dropped_total".into(), json!(c.dropped_total()));
    out.insert("dropped".into(), Value::Object(dropped));
    out.insert(
        "fps".into(),
        json!(round3(c.published as f64 / elapsed.as_secs_f64().max(1e-9))),
    );
    out.insert("p50_ms".into(), ms(total.p50()));
    out.insert("p90_ms".into(), ms(total.quantile(0.9)));
    out.insert("p99_ms".into(), ms(total.p99()));
    out.insert(
        "max_ms".into(),
        ms((total.count > 0).then(|| Duration::from_nanos(total.max_ns))),
    );
}

fn stages_json(h: impl Fn(Stage) -> HistogramSnapshot) -> Value {
    let stages: Map<String, Value> = Stage::ALL
        .iter()
        .map(|&st| {
            let s = h(st);
            (
                st.name().to_string(),
                json!({ "p50_us": us(s.p50()), "p99_us": us(s.p99()), "count": s.count }),
            )
        })
        .collect();
    Value::Object(stages)
}

/// Run `outpost bench --pipeline CONFIG`.
pub(super) fn run(config_path: &Path, args: &Args) -> CmdResult {
    if args.frames == 0 {
        return Err(Failure::input("--frames 0: give at least 1"));
    }
    let warmup = args.warmup.max(1) as u64;
    let run_argv: Vec<OsString> = vec![
        "outpost-run".into(),
        "--config".into(),
        config_path.as_os_str().to_owned(),
        "--frames".into(),
        args.frames.to_string().into(),
        "--loop".into(),
    ];
    let run_args = RunCli::try_parse_from(run_argv)
        .map_err(|e| Failure::input(e.to_string()))?
        .run;
    let mut pipeline = Pipeline::new();
    let mut catalog = Catalog::default();
    let mut sinks = config::Sinks::default();
    let names = config::build(
        config_path,
        &run_args,
        &mut pipeline,
        &mut catalog,
        &mut sinks,
    )?;
    // The outbox runs as in `outpost run` (its sink thread, and the uplink with an `azure`
    // section), so its cost to the pipeline shows in the figures.
    let redaction = sinks
        .redaction
        .clone()
        .unwrap_or_else(run::default_redaction);
    let mut outbox = OutboxOut::from_sinks(&mut sinks, &redaction, &catalog)?;
    let models = catalog
        .stream_model
        .iter()
        .map(|&m| m + 1)
        .max()
        .unwrap_or(0)
        .max(catalog.models.len());
    let mut rec = Recorder::new(warmup, catalog.stream_model.clone(), models);
    let stop = AtomicBool::new(false);
    let report: Report = pipeline.run(&stop, |r| {
        rec.frame(r);
        if let Some(o) = outbox.as_mut() {
            o.publish(r);
        }
    });
    let outbox = outbox.map(OutboxOut::finish).transpose()?;

    let mut alone = Vec::with_capacity(models);
    for m in 0..models {
        let path = catalog.paths.get(m).map_or(Path::new(""), |p| p.as_path());
        // A passthrough has no file and no model to run alone.
        let frames: &[FrameCopy] = if path.as_os_str().is_empty() {
            &[]
        } else {
            &rec.copies[m]
        };
        alone.push(alone_p50(path, frames, args.warmup, args.runs)?);
    }
    let elapsed = report.elapsed;
    let after = rec.published.saturating_sub(warmup);
    let allocs_per_frame =
        (after > 0).then(|| (rec.allocs_end - rec.allocs_start) as f64 / after as f64);

    let mut streams = Vec::with_capacity(names.len());
    let mut overall: Option<Measured> = None;
    for (si, s) in report.streams.iter().enumerate() {
        let m = rec.stream_model[si];
        let meas = Measured::of(&rec.streams[si]);
        let mut o = Map::new();
        o.insert("name".into(), json!(s.name));
        o.insert(
            "model".into(),
            json!(catalog.models.get(m).map(|i| i.id.as_str().to_string())),
        );
        o.insert("policy".into(), json!(s.policy.name()));
        latency_fields(s.stage(Stage::Total), &s.counters, elapsed, &mut o);
        o.insert("source_failures".into(), json!(s.counters.source_failures));
        meas.fields(alone[m], &mut o);
        o.insert("stages".into(), stages_json(|st| s.stage(st).clone()));
        if let Some(e) = &s.error {
            o.insert("error".into(), json!(e));
        }
        streams.push(Value::Object(o));
        match &mut overall {
            Some(all) => all.merge(&meas),
            None => overall = Some(meas),
        }
    }
    // Overall, the path is compared with the frame-weighted median of the models alone: with
    // one model (the usual case) that is its median.
    let overall_alone = {
        let known: Vec<(Duration, u64)> = (0..report.streams.len())
            .filter_map(|si| alone[rec.stream_model[si]].map(|a| (a, rec.streams[si].measured)))
            .collect();
        let n: u64 = known.iter().map(|k| k.1).sum();
        (n > 0 && known.len() == report.streams.len()).then(|| {
            Duration::from_secs_f64(
                known
                    .iter()
                    .map(|(a, w)| a.as_secs_f64() * *w as f64)
                    .sum::<f64>()
                    / n as f64,
            )
        })
    };
    let mut top = Map::new();
    top.insert("config".into(), json!(config_path.display().to_string()));
    latency_fields(
        &report.stage(Stage::Total),
        &report.totals(),
        elapsed,
        &mut top,
    );
    if let Some(all) = &overall {
        all.fields(overall_alone, &mut top);
    }
    top.insert("allocs_per_frame".into(), json!(allocs_per_frame));
    top.insert("warmup_frames".into(), json!(warmup));
    top.insert("elapsed_s".into(), json!(round3(elapsed.as_secs_f64())));
    top.insert("stages".into(), stages_json(|st| report.stage(st)));
    top.insert("streams".into(), Value::Array(streams));
    if let Some(o) = &outbox {
        top.insert("outbox".into(), o.json());
    }
    let out = Value::Object(top);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&out).map_err(|e| Failure::other(e.to_string()))?
        );
    } else {
        print_text(&out);
        if let Some(o) = &outbox {
            o.print();
        }
    }
    Ok(())
}

fn num(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::Number(n)) => {
            let f = n.as_f64().unwrap_or(0.0);
            if n.is_u64() || n.is_i64() {
                format!("{f:.0}")
            } else {
                format!("{f:.2}")
            }
        }
        _ => "-".into(),
    }
}

fn print_summary(label: &str, v: &Value) {
    println!(
        "{label}: {} frames at {} fps; captured {}, dropped {} {}",
        num(v, "frames"),
        num(v, "fps"),
        num(v, "captured"),
        num(v, "dropped_total"),
        v.get("dropped").map(Value::to_string).unwrap_or_default()
    );
    println!(
        "  latency ms   p50 {}  p90 {}  p99 {}  max {}",
        num(v, "p50_ms"),
        num(v, "p90_ms"),
        num(v, "p99_ms"),
        num(v, "max_ms")
    );
    println!(
        "  overhead µs  p50 {}  p90 {}  p99 {}   vs model alone: path p50 {} - alone p50 {} = {}",
        num(v, "overhead_p50_us"),
        num(v, "overhead_p90_us"),
        num(v, "overhead_p99_us"),
        num(v, "path_p50_us"),
        num(v, "alone_p50_us"),
        num(v, "overhead_vs_alone_p50_us")
    );
    println!(
        "  hand-off µs  capture→infer p50 {}  p99 {};  infer→publish p50 {}  p99 {}   ({} frames measured, {} waited behind another)",
        num(v, "handoff_p50_us"),
        num(v, "handoff_p99_us"),
        num(v, "publish_handoff_p50_us"),
        num(v, "publish_handoff_p99_us"),
        num(v, "measured_frames"),
        num(v, "waited_frames")
    );
    if let Some(Value::Object(stages)) = v.get("stages") {
        let parts: Vec<String> = stages
            .iter()
            .map(|(k, s)| format!("{k} {}/{}", num(s, "p50_us"), num(s, "p99_us")))
            .collect();
        println!("  stages µs p50/p99: {}", parts.join(", "));
    }
}

fn print_text(v: &Value) {
    println!(
        "pipeline {} ({} s, warm-up {} frames)",
        v.get("config").and_then(Value::as_str).unwrap_or(""),
        num(v, "elapsed_s"),
        num(v, "warmup_frames")
    );
    if let Some(Value::Array(streams)) = v.get("streams") {
        for s in streams {
            let name = s.get("name").and_then(Value::as_str).unwrap_or("?");
            let policy = s.get("policy").and_then(Value::as_str).unwrap_or("?");
            print_summary(&format!("stream {name} ({policy})"), s);
        }
    }
    print_summary("overall", v);
    println!(
        "allocations  {} per frame after warm-up (all threads)",
        num(v, "allocs_per_frame")
    );
}
