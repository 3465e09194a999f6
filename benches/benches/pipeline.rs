//! Pipeline benchmark: what the inference loop adds to a frame beyond its model.
//!
//! `cargo bench -p outpost-benches --bench pipeline` (set `PIPELINE_BENCH_QUICK=1` for a short
//! run; `cargo test --benches` runs a smoke test). Needs BlazeFace int8 in `$OUTPOST_MODELS`
//! (default `.models/`): `cargo run -p outpost -- fetch-models`.
//!
//! 1. **Ring hand-off**, one slot in flight between two threads, through what the pipeline
//!    uses: a crossbeam `ArrayQueue` of boxed slots, a free list, `unpark` on push and
//!    `park_timeout(1 ms)` when the ring is empty. Latency is from just before the push to
//!    just after the pop. Two producer rhythms: *paced* (a gap of ≈100 µs between frames, so the
//!    consumer is parked when the frame comes, as with a camera) and *back to back* (the next
//!    frame as soon as the slot is back). Then the same with a **spinning consumer**
//!    (busy-polls the ring, never parks): the lower bound of the queue itself, not what the
//!    pipeline does.
//! 2. **Per-frame overhead with a real model**: BlazeFace short-range int8 on three sample
//!    images (chelsea, coffee, rocket). Criterion times the model alone (preprocess + inference + decoding, one
//!    `Inference::run_image` per iteration) and a saturated pipeline (unpaced source, `block`
//!    policy, a fresh pipeline of `iters` frames per sample: criterion's slope removes the
//!    start-up); the difference of the two is the pipeline's wall time per frame beyond the
//!    model. Then a paced run (the source at ≈ half the model's rate) prints per-frame
//!    percentiles of `(callback start − end of capture) − (preprocess + inference)` over frames
//!    that did not wait behind another, as `outpost bench --pipeline` defines it.
//!
//! Criterion reports means; the percentiles are computed here from every sample and printed.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use criterion::Criterion;
use crossbeam_queue::ArrayQueue;
use outpost_models::Model;
use outpost_runtime::pipeline::{ImageSource, Pipeline, Policy, Stage, StreamConfig, name};
use outpost_runtime::preprocess::{RgbImage, load_rgb};
use outpost_runtime::{Inference, SessionOptions};

/// The pipeline's idle wait (`runtime/src/pipeline/mod.rs`, `IDLE`).
const IDLE: Duration = Duration::from_millis(1);

fn quick() -> bool {
    std::env::var_os("PIPELINE_BENCH_QUICK").is_some()
}

struct Stats {
    p50: f64,
    p99: f64,
    mean: f64,
    n: usize,
}

/// Percentiles in µs of samples in ns.
fn stats(mut ns: Vec<u64>) -> Stats {
    assert!(!ns.is_empty(), "no samples");
    ns.sort_unstable();
    let at = |q: f64| ns[((ns.len() as f64 - 1.0) * q).round() as usize] as f64 / 1000.0;
    let mean = ns.iter().sum::<u64>() as f64 / ns.len() as f64 / 1000.0;
    Stats {
        p50: at(0.50),
        p99: at(0.99),
        mean,
        n: ns.len(),
    }
}

/// A pool slot: what the ring carries (boxed, like the pipeline's slots).
struct Slot {
    pushed: Instant,
    payload: [u64; 8],
}

/// How the producer spaces frames.
#[derive(Clone, Copy, PartialEq)]
enum Rhythm {
    /// ≈100 µs between frames: the consumer has gone to sleep when the frame comes.
    Paced,
    /// The next frame as soon as its slot is back.
    BackToBack,
}

/// How the consumer waits for a frame.
#[derive(Clone, Copy, PartialEq)]
enum Wait {
    /// The pipeline's way: `park_timeout` when empty, woken by `unpark` on push.
    Park,
    /// Busy-poll the ring (lower bound; burns a core).
    Spin,
}

/// `frames` hand-offs producer → consumer through an `ArrayQueue`, one slot in flight; returns
/// each hand-off's latency in ns.
fn handoff(frames: usize, rhythm: Rhythm, wait: Wait) -> Vec<u64> {
    let ring: ArrayQueue<Box<Slot>> = ArrayQueue::new(4);
    let free: ArrayQueue<Box<Slot>> = ArrayQueue::new(4);
    let _ = free.push(Box::new(Slot {
        pushed: Instant::now(),
        payload: [0; 8],
    }));
    let done = AtomicBool::new(false);
    let mut out = Vec::with_capacity(frames);
    thread::scope(|s| {
        let consumer = s.spawn(|| {
            let mut ns = Vec::with_capacity(frames);
            while ns.len() < frames {
                match ring.pop() {
                    Some(mut slot) => {
                        let dt = slot.pushed.elapsed();
                        ns.push(dt.as_nanos() as u64);
                        slot.payload[0] = slot.payload[0].wrapping_add(1);
                        let _ = free.push(slot);
                    }
                    None => match wait {
                        Wait::Park => thread::park_timeout(IDLE),
                        Wait::Spin => std::hint::spin_loop(),
                    },
                }
            }
            done.store(true, Ordering::Release);
            ns
        });
        let consumer_thread = consumer.thread().clone();
        for _ in 0..frames {
            let slot = loop {
                if let Some(s) = free.pop() {
                    break s;
                }
                if done.load(Ordering::Acquire) {
                    return;
                }
                thread::yield_now();
            };
            if rhythm == Rhythm::Paced {
                let until = Instant::now() + Duration::from_micros(100);
                while Instant::now() < until {
                    thread::sleep(Duration::from_micros(50));
                }
            }
            let mut slot = slot;
            slot.pushed = Instant::now();
            // The ring has room: one slot exists.
            let _ = ring.push(slot);
            consumer_thread.unpark();
        }
        out = consumer.join().expect("consumer");
    });
    out
}

fn models_dir() -> PathBuf {
    std::env::var_os("OUTPOST_MODELS")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.models"))
}

/// BlazeFace int8 and three sample images (no faces: the decoder finds nothing to keep).
fn blazeface() -> (Model, Vec<(outpost_runtime::pipeline::Name, RgbImage)>) {
    let dir = models_dir();
    let path = dir.join("blazeface-short-int8.safetensors");
    assert!(
        path.exists(),
        "{} is missing: run `cargo run -p outpost -- fetch-models` first",
        path.display()
    );
    let model = Model::open(&path).expect("open BlazeFace int8");
    let images = ["chelsea.png", "coffee.png", "rocket.jpg"]
        .iter()
        .map(|f| {
            let p = dir.join("data").join(f);
            let img = load_rgb(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (name(f.split('.').next().unwrap_or(f)), img)
        })
        .collect();
    (model, images)
}

/// A pipeline of one BlazeFace stream over `images`; `fps` 0: unpaced.
fn pipeline(
    model: &Model,
    images: &[(outpost_runtime::pipeline::Name, RgbImage)],
    fps: f64,
    policy: Policy,
    frames: u64,
) -> Pipeline {
    let mut p = Pipeline::new();
    let m = p
        .add_model("blazeface", model, SessionOptions::default())
        .expect("plan");
    let source = ImageSource::from_images(images.to_vec())
        .expect("images")
        .with_fps(fps)
        .looping(true);
    p.add_stream(
        StreamConfig::new("cam", Box::new(source), m)
            .policy(policy)
            .max_frames(Some(frames)),
    )
    .expect("stream");
    p
}

/// Per-frame figures of a paced pipeline run, as `outpost bench --pipeline` computes them.
struct Paced {
    overhead: Stats,
    path: Stats,
    handoff: Stats,
    waited: usize,
}

fn paced_run(
    model: &Model,
    images: &[(outpost_runtime::pipeline::Name, RgbImage)],
    fps: f64,
    frames: u64,
) -> Paced {
    let p = pipeline(model, images, fps, Policy::Latest, frames);
    let stop = AtomicBool::new(false);
    let (mut overhead, mut path, mut handoff) = (Vec::new(), Vec::new(), Vec::new());
    let mut free_at: Option<Instant> = None;
    let mut waited = 0;
    let mut n = 0u64;
    let warmup = frames / 10;
    let report = p.run(&stop, |r| {
        let now = Instant::now();
        let t = r.timings;
        let since_capture = t.latency.saturating_sub(t.capture);
        let queued = now.checked_sub(since_capture);
        let did_wait = matches!((free_at, queued), (Some(f), Some(q)) if q < f);
        free_at = now.checked_sub(t.publish_queue);
        n += 1;
        if n <= warmup {
            return;
        }
        if did_wait {
            waited += 1;
            return;
        }
        path.push(since_capture.as_nanos() as u64);
        overhead.push(
            since_capture
                .saturating_sub(t.preprocess + t.infer)
                .as_nanos() as u64,
        );
        handoff.push(t.queue.as_nanos() as u64);
    });
    let c = report.streams[0].counters;
    assert_eq!(c.captured, c.inferred + c.dropped_total(), "{c:?}");
    assert_eq!(report.stage(Stage::Total).count, c.published);
    Paced {
        overhead: stats(overhead),
        path: stats(path),
        handoff: stats(handoff),
        waited,
    }
}

/// Samples collected inside criterion's timing closures, for percentiles.
static SAMPLES: Mutex<Vec<u64>> = Mutex::new(Vec::new());

fn take_samples() -> Vec<u64> {
    std::mem::take(&mut *SAMPLES.lock().expect("samples"))
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: run a smoke test.
    let bench = std::env::args().any(|a| a == "--bench");
    let (measure, frames) = match (bench, quick()) {
        (false, _) => (Duration::from_millis(300), 300),
        (true, true) => (Duration::from_secs(2), 2_000),
        (true, false) => (Duration::from_secs(5), 10_000),
    };
    let mut c = Criterion::default()
        .configure_from_args()
        .warm_up_time(measure / 3)
        .measurement_time(measure)
        .sample_size(20);

    // 1. Ring hand-off.
    let cases = [
        (
            "ring hand-off, park/unpark, paced (pipeline)",
            Rhythm::Paced,
            Wait::Park,
        ),
        (
            "ring hand-off, park/unpark, back to back",
            Rhythm::BackToBack,
            Wait::Park,
        ),
        (
            "ring hand-off, spinning consumer, paced (lower bound)",
            Rhythm::Paced,
            Wait::Spin,
        ),
        (
            "ring hand-off, spinning consumer, back to back (lower bound)",
            Rhythm::BackToBack,
            Wait::Spin,
        ),
    ];
    let mut rows = Vec::new();
    for (label, rhythm, wait) in cases {
        c.bench_function(label, |b| {
            b.iter_custom(|iters| {
                let ns = handoff(iters as usize, rhythm, wait);
                let sum: u64 = ns.iter().sum();
                SAMPLES.lock().expect("samples").extend_from_slice(&ns);
                Duration::from_nanos(sum)
            })
        });
        let mut all = take_samples();
        // Criterion's samples plus a fixed run, so every row has enough values for a p99.
        all.extend(handoff(frames, rhythm, wait));
        rows.push((label, stats(all)));
    }

    println!(
        "\nring hand-off (µs), {} frames or more per row   p50      p99     mean",
        frames
    );
    for (label, s) in &rows {
        println!(
            "{label:<62} {:>7.2}  {:>7.2}  {:>7.2}  (n={})",
            s.p50, s.p99, s.mean, s.n
        );
    }

    // 2. Per-frame overhead with BlazeFace int8.
    let (model, images) = blazeface();
    let mut inf = Inference::new(&model, SessionOptions::default()).expect("plan");
    let mut k = 0;
    let mut alone_ns = Vec::new();
    c.bench_function(
        "blazeface int8 alone: preprocess + inference + decoding",
        |b| {
            b.iter(|| {
                let img = &images[k % images.len()].1;
                k += 1;
                let t0 = Instant::now();
                inf.run_image(&img.view()).expect("run");
                alone_ns.push(t0.elapsed().as_nanos() as u64);
            })
        },
    );
    let alone = stats(alone_ns);
    c.bench_function(
        "blazeface int8 through the pipeline, saturated (block, per frame)",
        |b| {
            b.iter_custom(|iters| {
                let p = pipeline(
                    &model,
                    &images,
                    0.0,
                    Policy::Block(Duration::from_secs(10)),
                    iters,
                );
                let stop = AtomicBool::new(false);
                let t0 = Instant::now();
                let report = p.run(&stop, |r| {
                    std::hint::black_box(r.detections.len());
                });
                let c = report.streams[0].counters;
                assert_eq!((c.captured, c.published), (iters, iters), "{c:?}");
                t0.elapsed()
            })
        },
    );
    // Paced at about half the model's rate: each frame finds the inference thread idle.
    let fps = 0.5e6 / alone.p50;
    let paced = paced_run(&model, &images, fps, frames as u64);
    c.final_summary();

    println!(
        "\nBlazeFace int8 alone (preprocess + inference + decoding): p50 {:.1} µs, p99 {:.1} µs, mean {:.1} µs (n={})",
        alone.p50, alone.p99, alone.mean, alone.n
    );
    println!(
        "saturated pipeline per frame: see criterion's estimate above; minus the model alone's mean ({:.1} µs) = wall time per frame beyond the model",
        alone.mean
    );
    println!(
        "paced pipeline at {fps:.0} fps, {} frames measured ({} waited behind another, left out):",
        paced.overhead.n, paced.waited
    );
    let row = |name: &str, s: &Stats| {
        println!(
            "  {name:<58} p50 {:>8.2}  p99 {:>8.2}  mean {:>8.2}",
            s.p50, s.p99, s.mean
        )
    };
    row(
        "overhead = path − (preprocess + inference), µs",
        &paced.overhead,
    );
    row("path = callback start − end of capture, µs", &paced.path);
    row("capture → inference hand-off, µs", &paced.handoff);
    println!(
        "  path p50 − model alone p50 = {:.2} µs",
        paced.path.p50 - alone.p50
    );
}
