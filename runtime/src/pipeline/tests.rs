//! Pipeline tests: histograms, policies, sources, and the whole loop under pressure (a source
//! twice as fast as inference, a slow publisher, stop while running). The no-allocation test is
//! `runtime/tests/pipeline_noalloc.rs` (it needs its own process for a global allocator).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::*;
use crate::preprocess::RgbImage;

#[path = "../../tests/support/tiny_ssd.rs"]
#[allow(dead_code, clippy::too_many_arguments)]
mod tiny_ssd;

use tiny_ssd::{frame, tiny_ssd};

fn images(n: u32) -> Vec<(Name, RgbImage)> {
    (0..n)
        .map(|i| {
            let (w, h) = [(96, 64), (64, 96), (80, 80)][i as usize % 3];
            (name(&format!("img{i}")), frame(w, h, i))
        })
        .collect()
}

fn source(n: u32, fps: f64, looping: bool) -> Box<dyn Source> {
    Box::new(
        ImageSource::from_images(images(n))
            .unwrap()
            .with_fps(fps)
            .looping(looping),
    )
}

/// Shortest time of one inference of `model` on a test frame, over 15 runs. The shortest, not
/// the median: a run measured while other tests load the machine takes longer than the
/// inferences of the pipeline under test may, and a source paced from it would then not outrun
/// them (CI saw that).
fn infer_time(model: &Model) -> Duration {
    let mut inf = Inference::new(model, SessionOptions::default()).unwrap();
    let img = frame(96, 64, 0);
    (0..15)
        .map(|_| {
            let t0 = Instant::now();
            inf.run_image(&img.view()).unwrap();
            t0.elapsed()
        })
        .min()
        .expect("15 runs")
}

fn check_accounting(r: &Report) {
    for s in &r.streams {
        let c = s.counters;
        assert_eq!(
            c.captured,
            c.inferred + c.dropped_total(),
            "stream {}: {c:?}",
            s.name
        );
        assert_eq!(c.published, c.inferred, "stream {}: {c:?}", s.name);
        assert_eq!(s.stage(Stage::Total).count, c.published);
        assert_eq!(s.stage(Stage::Capture).count, c.captured);
        assert_eq!(s.stage(Stage::Infer).count, c.inferred);
    }
}

#[test]
fn histogram_buckets_and_quantiles() {
    for ns in [
        0u64,
        1,
        7,
        8,
        9,
        15,
        16,
        17,
        100,
        1000,
        123_456,
        1 << 30,
        u64::MAX / 2,
    ] {
        let i = stats_bucket(ns);
        let (lo, w) = stats_range(i);
        if ns < (1 << 41) {
            assert!(
                lo <= ns && ns < lo + w,
                "{ns} in bucket {i} = [{lo}, {})",
                lo + w
            );
            assert!(w * 8 <= lo.max(8), "bucket {i} too wide: {w} at {lo}");
        }
    }
    let h = Histogram::default();
    assert_eq!(h.snapshot().p50(), None);
    for us in 1..=1000u64 {
        h.record(Duration::from_micros(us));
    }
    let s = h.snapshot();
    assert_eq!(s.count, 1000);
    let p50 = s.p50().unwrap().as_secs_f64() * 1e6;
    let p99 = s.p99().unwrap().as_secs_f64() * 1e6;
    assert!((p50 - 500.0).abs() / 500.0 < 0.13, "p50 {p50}");
    assert!((p99 - 990.0).abs() / 990.0 < 0.13, "p99 {p99}");
    assert_eq!(s.max_ns, 1_000_000);
    assert_eq!(s.mean().unwrap(), Duration::from_nanos(500_500));
    let mut m = s.clone();
    m.merge(&s);
    assert_eq!(m.count, 2000);
    assert_eq!(m.p50(), s.p50());
}

fn stats_bucket(ns: u64) -> usize {
    super::stats::bucket_of(ns)
}

fn stats_range(i: usize) -> (u64, u64) {
    super::stats::bucket_range(i)
}

#[test]
fn policies_parse() {
    assert_eq!("latest".parse::<Policy>(), Ok(Policy::Latest));
    assert_eq!("drop-oldest".parse::<Policy>(), Ok(Policy::DropOldest));
    assert_eq!(
        "block".parse::<Policy>(),
        Ok(Policy::Block(Duration::from_secs(1)))
    );
    assert_eq!(
        "block:250".parse::<Policy>(),
        Ok(Policy::Block(Duration::from_millis(250)))
    );
    let e = "newest".parse::<Policy>().unwrap_err();
    assert!(e.contains("latest, drop-oldest, block"), "{e}");
}

#[test]
fn frame_buf_checks_capacity() {
    let mut b = FrameBuf::new(10 * 10 * 3);
    assert!(b.data().is_empty());
    b.prepare_rgb(10, 10).unwrap().fill(7);
    assert_eq!(b.data().len(), 300);
    assert!(matches!(
        b.prepare_rgb(11, 10),
        Err(SourceError::TooLarge {
            need: 330,
            capacity: 300
        })
    ));
    assert!(matches!(b.prepare_rgb(0, 10), Err(SourceError::Frame(_))));
    // A failed prepare keeps the old frame.
    assert_eq!((b.width(), b.height()), (10, 10));
    b.prepare_rgb(5, 4).unwrap();
    assert_eq!(b.view().validate(), Ok(()));
    assert_eq!(b.data().len(), 60);
}

#[test]
fn names_are_cut_at_char_boundaries() {
    assert_eq!(name("astronaut").as_str(), "astronaut");
    let long = "é".repeat(40); // 80 bytes
    let n = name(&long);
    assert_eq!(n.len(), 64);
    assert!(n.chars().all(|c| c == 'é'));
}

#[test]
fn image_source_replays_once_or_loops() {
    let mut s = ImageSource::from_images(images(3)).unwrap();
    assert_eq!(s.frame_capacity(), 80 * 80 * 3);
    let mut b = FrameBuf::new(s.frame_capacity());
    let mut seen = Vec::new();
    while let Some(m) = s.next_frame(&mut b).unwrap() {
        assert_eq!(b.data(), &s.images()[m.index as usize].1.data[..]);
        seen.push((m.seq, m.name.to_string()));
    }
    assert_eq!(
        seen,
        [(0, "img0".into()), (1, "img1".into()), (2, "img2".into())]
    );
    let mut s = ImageSource::from_images(images(2)).unwrap().looping(true);
    let seqs: Vec<u32> = (0..5)
        .map(|_| s.next_frame(&mut b).unwrap().unwrap().index)
        .collect();
    assert_eq!(seqs, [0, 1, 0, 1, 0]);
    assert!(matches!(
        ImageSource::from_images(Vec::new()),
        Err(SourceError::Empty)
    ));
}

#[test]
fn image_source_paces_frames() {
    let mut s = ImageSource::from_images(images(1))
        .unwrap()
        .with_fps(100.0)
        .looping(true);
    let mut b = FrameBuf::new(s.frame_capacity());
    assert_eq!(s.ready_at(), None, "the first frame is due at once");
    s.next_frame(&mut b).unwrap();
    let first = s.ready_at().unwrap();
    s.next_frame(&mut b).unwrap();
    let second = s.ready_at().unwrap();
    assert_eq!(second - first, Duration::from_millis(10));
}

#[test]
fn every_frame_published_with_block() {
    // Parking at once, and spinning for imminent hand-offs (the default).
    for spin in [Duration::ZERO, Pipeline::DEFAULT_SPIN] {
        every_frame_published_with_block_spinning(spin);
    }
}

fn every_frame_published_with_block_spinning(spin: Duration) {
    let model = tiny_ssd(32, 0, 8, 0.3);
    let mut p = Pipeline::new();
    p.set_spin(spin);
    let m = p
        .add_model("tiny", &model, SessionOptions::default())
        .unwrap();
    assert_eq!(p.labels(m), ["thing".to_string()]);
    p.add_stream(
        StreamConfig::new("cam", source(6, 0.0, true), m)
            .policy(Policy::Block(Duration::from_secs(10)))
            .max_frames(Some(60)),
    )
    .unwrap();
    let stop = AtomicBool::new(false);
    let mut seqs = Vec::new();
    let mut detections = 0;
    let report = p.run(&stop, |r| {
        assert_eq!(r.stream, "cam");
        let (w, h) = (r.frame.width() as f32, r.frame.height() as f32);
        assert_eq!(r.meta.name.as_str(), format!("img{}", r.meta.index));
        for d in r.detections {
            let b = d.bbox;
            assert!(0.0 <= b[0] && b[0] <= b[2] && b[2] <= w, "{b:?} in {w}×{h}");
            assert!(0.0 <= b[1] && b[1] <= b[3] && b[3] <= h, "{b:?} in {w}×{h}");
            assert_eq!(r.label(d.label), Some("thing"));
        }
        detections += r.detections.len();
        assert!(r.timings.latency >= r.timings.infer);
        seqs.push(r.meta.seq);
    });
    check_accounting(&report);
    let c = report.streams[0].counters;
    assert_eq!(c.captured, 60);
    assert_eq!(c.published, 60);
    assert_eq!(c.dropped_total(), 0);
    // One stream, one inference thread: frames come out in order.
    assert_eq!(seqs, (0..60).collect::<Vec<u64>>());
    assert!(detections > 0, "the test model should find something");
    assert!(report.streams[0].stage(Stage::Infer).p99().is_some());
}

/// A source twice as fast as inference under each policy: the queue stays bounded, waits stay
/// bounded, and every frame is accounted for exactly.
#[test]
fn source_twice_as_fast_as_inference() {
    let model = tiny_ssd(64, 6, 16, 0.3);
    let t = infer_time(&model).max(Duration::from_micros(200));
    let fps = 2.0 / t.as_secs_f64();
    let frames = 150;
    for policy in [
        Policy::Latest,
        Policy::DropOldest,
        // Shorter than one inference: a full ring outlasts it, so frames are dropped.
        Policy::Block(t / 4),
    ] {
        let depth = 3;
        let mut p = Pipeline::new();
        let m = p
            .add_model("tiny", &model, SessionOptions::default())
            .unwrap();
        p.add_stream(
            StreamConfig::new("fast", source(3, fps, true), m)
                .policy(policy)
                .queue_depth(depth)
                .max_frames(Some(frames)),
        )
        .unwrap();
        let stop = AtomicBool::new(false);
        let mut last_seq = None;
        let report = p.run(&stop, |r| {
            // Drops never reorder what is left.
            assert!(last_seq < Some(r.meta.seq));
            last_seq = Some(r.meta.seq);
        });
        check_accounting(&report);
        let s = &report.streams[0];
        let c = s.counters;
        eprintln!("{policy:?} at {fps:.0} fps (inference {t:?}): {c:?}");
        assert_eq!(c.captured, frames, "{policy:?}");
        let cap = if policy == Policy::Latest {
            1
        } else {
            depth as u64
        };
        assert!(c.max_queued <= cap, "{policy:?}: {c:?}");
        let reason = match policy {
            Policy::Latest => DropReason::Superseded,
            Policy::DropOldest => DropReason::QueueFull,
            Policy::Block(_) => DropReason::Deadline,
        };
        assert!(c.dropped(reason) > 0, "{policy:?}: nothing dropped: {c:?}");
        assert_eq!(c.dropped(DropReason::Error), 0);
        // A frame never waits longer than the queue ahead of it takes (with slack for a loaded
        // machine).
        let wait = s.stage(Stage::Queue).max_ns;
        let infer_max = s.stage(Stage::Infer).max_ns + s.stage(Stage::Preprocess).max_ns;
        assert!(
            wait <= (cap + 1) * infer_max * 4 + 50_000_000,
            "{policy:?}: waited {wait} ns, inference takes up to {infer_max} ns"
        );
    }
}

/// A slow publisher: slots stop coming back, the capture thread takes back waiting frames
/// (counted), and nothing deadlocks.
#[test]
fn slow_publisher_bounds_the_backlog() {
    let model = tiny_ssd(32, 0, 8, 0.3);
    let mut p = Pipeline::new();
    let m = p
        .add_model("tiny", &model, SessionOptions::default())
        .unwrap();
    p.add_stream(StreamConfig::new("cam", source(3, 0.0, true), m).max_frames(Some(300)))
        .unwrap();
    let stop = AtomicBool::new(false);
    let report = p.run(&stop, |_| std::thread::sleep(Duration::from_millis(2)));
    check_accounting(&report);
    let c = report.streams[0].counters;
    assert_eq!(c.captured, 300);
    assert!(c.dropped(DropReason::Superseded) > 0, "{c:?}");
    assert!(c.published < 300);
}

/// Stop while a looping source runs: capture ends, what was captured drains, counts add up.
#[test]
fn stop_drains_in_flight_frames() {
    let model = tiny_ssd(32, 0, 8, 0.3);
    let mut p = Pipeline::new();
    let m = p
        .add_model("tiny", &model, SessionOptions::default())
        .unwrap();
    for (i, policy) in [
        Policy::Latest,
        Policy::DropOldest,
        Policy::Block(Duration::from_secs(5)),
    ]
    .into_iter()
    .enumerate()
    {
        p.add_stream(StreamConfig::new(format!("s{i}"), source(3, 2000.0, true), m).policy(policy))
            .unwrap();
    }
    let stop = AtomicBool::new(false);
    let mut n = 0;
    let report = p.run(&stop, |_| {
        n += 1;
        if n == 100 {
            stop.store(true, Ordering::Release);
        }
    });
    check_accounting(&report);
    let t = report.totals();
    assert!(t.published >= 100);
    assert_eq!(t.published, n);
    assert_eq!(report.streams.len(), 3);
}

/// A panicking callback ends the run (the panic comes out of `run`) instead of hanging it, even
/// with a source that never ends.
#[test]
fn panicking_callback_does_not_hang() {
    let model = tiny_ssd(32, 0, 8, 0.3);
    let mut p = Pipeline::new();
    let m = p
        .add_model("tiny", &model, SessionOptions::default())
        .unwrap();
    p.add_stream(StreamConfig::new("cam", source(3, 0.0, true), m))
        .unwrap();
    let stop = AtomicBool::new(false);
    let mut n = 0;
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        p.run(&stop, |_| {
            n += 1;
            assert!(n < 10, "callback fails on frame 10");
        })
    }));
    assert!(r.is_err());
    assert_eq!(n, 10);
}

#[test]
fn bad_streams_are_refused() {
    let model = tiny_ssd(32, 0, 8, 0.3);
    let mut p = Pipeline::new();
    let e = p
        .add_stream(StreamConfig::new("x", source(1, 0.0, false), 0))
        .unwrap_err();
    assert!(matches!(e, PipelineError::NoModel { model: 0, .. }), "{e}");
    let m = p
        .add_model("tiny", &model, SessionOptions::default())
        .unwrap();
    p.add_stream(StreamConfig::new("x", source(1, 0.0, false), m))
        .unwrap();
}

/// A source that fails transiently (as a camera that drops out would) on the calls listed in
/// `fail_on` (counted from 0), and permanently on `fatal_on`; frames otherwise.
struct FlakySource {
    inner: ImageSource,
    calls: u64,
    fail_on: std::ops::Range<u64>,
    fatal_on: Option<u64>,
    /// When each call was made.
    times: std::sync::Arc<std::sync::Mutex<Vec<Instant>>>,
}

impl Source for FlakySource {
    fn next_frame(&mut self, slot: &mut FrameBuf) -> Result<Option<FrameMeta>, SourceError> {
        let call = self.calls;
        self.calls += 1;
        if let Ok(mut t) = self.times.lock() {
            t.push(Instant::now());
        }
        if self.fatal_on == Some(call) {
            return Err(SourceError::Other("the camera caught fire".into()));
        }
        if self.fail_on.contains(&call) {
            return Err(SourceError::Disconnected(format!(
                "dropped out (call {call})"
            )));
        }
        self.inner.next_frame(slot)
    }

    fn frame_capacity(&self) -> usize {
        self.inner.frame_capacity()
    }
}

type Times = std::sync::Arc<std::sync::Mutex<Vec<Instant>>>;

fn flaky(fail_on: std::ops::Range<u64>, fatal_on: Option<u64>) -> (Box<dyn Source>, Times) {
    let times = Times::default();
    let s = FlakySource {
        inner: ImageSource::from_images(images(3)).unwrap().looping(true),
        calls: 0,
        fail_on,
        fatal_on,
        times: times.clone(),
    };
    (Box::new(s), times)
}

#[test]
fn backoff_doubles_with_jitter_and_resets() {
    let b = Backoff::new(Duration::from_millis(100), Duration::from_millis(700));
    let mut s = BackoffState::new(b, 7);
    let mut nominal = 100u64;
    for _ in 0..6 {
        let d = s.next_delay().as_secs_f64() * 1e3;
        let n = nominal as f64;
        assert!(n / 2.0 <= d && d <= n, "{d} ms for a nominal {n} ms");
        nominal = (nominal * 2).min(700);
    }
    s.reset();
    let d = s.next_delay();
    assert!(
        d >= Duration::from_millis(50) && d <= Duration::from_millis(100),
        "{d:?}"
    );
    // Jitter: two streams do not wait the same.
    let mut a = BackoffState::new(b, 1);
    let mut c = BackoffState::new(b, 2);
    let da: Vec<Duration> = (0..4).map(|_| a.next_delay()).collect();
    let dc: Vec<Duration> = (0..4).map(|_| c.next_delay()).collect();
    assert_ne!(da, dc);
    assert_eq!(Backoff::default().initial, Duration::from_millis(100));
    assert_eq!(Backoff::default().max, Duration::from_secs(5));
    assert_eq!(
        Backoff::new(Duration::from_secs(2), Duration::from_secs(1)).max,
        Duration::from_secs(2)
    );
}

/// A source that drops out twice (3 failed calls, then 2) keeps going: every failure is counted,
/// each outage ends with one reconnect, the waits follow the backoff, the frame count is exact,
/// and a second stream on the same model is unaffected.
#[test]
fn transient_failures_back_off_and_resume() {
    let model = tiny_ssd(32, 0, 8, 0.3);
    let mut p = Pipeline::new();
    let m = p
        .add_model("tiny", &model, SessionOptions::default())
        .unwrap();
    // Calls 5..8 fail (3 in a row), then calls 12..14 (2 in a row).
    let times = Times::default();
    let src = FlakySource {
        inner: ImageSource::from_images(images(3)).unwrap().looping(true),
        calls: 0,
        fail_on: 5..8,
        fatal_on: None,
        times: times.clone(),
    };
    struct Twice(FlakySource, std::ops::Range<u64>);
    impl Source for Twice {
        fn next_frame(&mut self, slot: &mut FrameBuf) -> Result<Option<FrameMeta>, SourceError> {
            if self.1.contains(&self.0.calls) {
                self.0.calls += 1;
                return Err(SourceError::Disconnected("again".into()));
            }
            self.0.next_frame(slot)
        }
        fn frame_capacity(&self) -> usize {
            self.0.frame_capacity()
        }
    }
    let backoff = Backoff::new(Duration::from_millis(20), Duration::from_millis(50));
    p.add_stream(
        StreamConfig::new("flaky", Box::new(Twice(src, 12..14)), m)
            .policy(Policy::Block(Duration::from_secs(10)))
            .backoff(backoff)
            .max_frames(Some(30)),
    )
    .unwrap();
    p.add_stream(
        StreamConfig::new("steady", source(3, 0.0, true), m)
            .policy(Policy::Block(Duration::from_secs(10)))
            .max_frames(Some(40)),
    )
    .unwrap();
    let stop = AtomicBool::new(false);
    let mut per_stream = [0u64; 2];
    let report = p.run(&stop, |r| per_stream[r.stream_index] += 1);
    check_accounting(&report);
    let flaky = &report.streams[0];
    let steady = &report.streams[1];
    assert_eq!(flaky.error, None);
    assert_eq!(flaky.counters.captured, 30);
    assert_eq!(flaky.counters.published, 30);
    assert_eq!(flaky.counters.source_failures, 5, "{:?}", flaky.counters);
    assert_eq!(flaky.counters.reconnects, 2, "{:?}", flaky.counters);
    assert_eq!(steady.counters.captured, 40);
    assert_eq!(steady.counters.source_failures, 0);
    assert_eq!(steady.counters.reconnects, 0);
    assert_eq!(per_stream, [30, 40]);
    // The waits after calls 5, 6, 7: nominal 20, 40, 50 (capped) ms, each at least half of it.
    let t = times.lock().unwrap();
    for (call, min_ms) in [(5, 10), (6, 20), (7, 25)] {
        let gap = t[call + 1] - t[call];
        assert!(
            gap >= Duration::from_millis(min_ms),
            "wait after call {call}: {gap:?}"
        );
    }
    assert_eq!(report.totals().source_failures, 5);
    assert_eq!(report.totals().reconnects, 2);
}

/// Stop during a long backoff: the capture thread wakes within milliseconds, not seconds.
#[test]
fn stop_interrupts_the_backoff() {
    let model = tiny_ssd(32, 0, 8, 0.3);
    let mut p = Pipeline::new();
    let m = p
        .add_model("tiny", &model, SessionOptions::default())
        .unwrap();
    let (src, _) = flaky(3..u64::MAX, None);
    p.add_stream(StreamConfig::new("down", src, m).backoff(Backoff::new(
        Duration::from_secs(30),
        Duration::from_secs(60),
    )))
    .unwrap();
    let stop = AtomicBool::new(false);
    let report = std::thread::scope(|s| {
        let h = s.spawn(|| p.run(&stop, |_| {}));
        std::thread::sleep(Duration::from_millis(300));
        let t0 = Instant::now();
        stop.store(true, Ordering::Release);
        let r = h.join().unwrap();
        assert!(
            t0.elapsed() < Duration::from_millis(500),
            "stop took {:?}",
            t0.elapsed()
        );
        r
    });
    check_accounting(&report);
    let c = report.streams[0].counters;
    assert_eq!(c.captured, 3);
    assert_eq!(
        c.source_failures, 1,
        "one failure, then the 30 s wait: {c:?}"
    );
    assert_eq!(c.reconnects, 0);
    assert_eq!(report.streams[0].error, None);
}

/// A permanent error ends only its own stream; the other one runs to its frame count.
#[test]
fn fatal_error_ends_only_its_stream() {
    let model = tiny_ssd(32, 0, 8, 0.3);
    let mut p = Pipeline::new();
    let m = p
        .add_model("tiny", &model, SessionOptions::default())
        .unwrap();
    let (src, _) = flaky(2..3, Some(6));
    p.add_stream(
        StreamConfig::new("doomed", src, m)
            .policy(Policy::Block(Duration::from_secs(10)))
            .backoff(Backoff::new(
                Duration::from_millis(5),
                Duration::from_millis(10),
            )),
    )
    .unwrap();
    p.add_stream(
        StreamConfig::new("fine", source(3, 0.0, true), m)
            .policy(Policy::Block(Duration::from_secs(10)))
            .max_frames(Some(50)),
    )
    .unwrap();
    let stop = AtomicBool::new(false);
    let report = p.run(&stop, |_| {});
    check_accounting(&report);
    let doomed = &report.streams[0];
    // Calls 0, 1 good, 2 transient, 3, 4, 5 good, 6 fatal.
    assert_eq!(doomed.counters.captured, 5);
    assert_eq!(doomed.counters.source_failures, 1);
    assert_eq!(doomed.counters.reconnects, 1);
    assert!(
        doomed
            .error
            .as_deref()
            .is_some_and(|e| e.contains("caught fire")),
        "{:?}",
        doomed.error
    );
    let fine = &report.streams[1];
    assert_eq!(fine.counters.captured, 50);
    assert_eq!(fine.error, None);
}

/// `idle_wait` (30 s budget) on `imminent` and `ready` while another thread sets `flag` to
/// `value` after `ms` milliseconds.
fn idle_wait_while_set(
    imminent: &AtomicBool,
    ready: &AtomicBool,
    flag: &AtomicBool,
    value: bool,
    ms: u64,
) {
    std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(ms));
            flag.store(value, Ordering::Release);
        });
        super::shared::idle_wait(
            Duration::from_secs(30),
            false,
            || imminent.load(Ordering::Acquire),
            || ready.load(Ordering::Acquire),
        );
    });
}

/// `idle_wait` busy-waits while a hand-off is imminent and returns when it lands; it stops
/// spinning when the hand-off is called off, and parks when none is imminent.
#[test]
fn idle_wait_spins_for_imminent_hand_offs() {
    use super::shared::idle_wait;
    let ready = AtomicBool::new(false);
    let imminent = AtomicBool::new(true);
    // A park would return within about 1 ms, long before the hand-off.
    idle_wait_while_set(&imminent, &ready, &ready, true, 20);
    assert!(
        ready.load(Ordering::Acquire),
        "returned before the hand-off"
    );
    // Called off: the spin ends although nothing arrives.
    let never = AtomicBool::new(false);
    idle_wait_while_set(&imminent, &never, &imminent, false, 5);
    assert!(!never.load(Ordering::Acquire));
    // Nothing imminent: parks (about 1 ms) and returns.
    let t = Instant::now();
    idle_wait(Duration::from_secs(30), false, || false, || false);
    assert!(t.elapsed() < Duration::from_secs(10));
    // A zero budget never spins.
    idle_wait(Duration::ZERO, false, || true, || false);
    // Busy: returns after its polls although nothing is ready and nothing is imminent.
    let t = Instant::now();
    idle_wait(Duration::ZERO, true, || false, || false);
    assert!(t.elapsed() < Duration::from_secs(10));
}
