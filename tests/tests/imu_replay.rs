//! CSV replay of a real IMU recording: Mobilise-D's lower-back sensor (McRoberts MM+, 100 Hz)
//! on a healthy adult walking straight, from the `mobgap` 1.2.0 source distribution
//! (`outpost fetch` puts it at `data/imu_walk_lower_back.csv`; columns `samples`, `acc_x..z`
//! in g, `gyr_x..z` in deg/s).
//!
//! Shown here: every window the pipeline publishes holds exactly the file's readings (checked
//! against an independent parse), the readings are physically what the file says they are
//! (gravity, about 1 g, in every window; walking moves the sensor), pacing by a row rate
//! holds its timeline, and looping replay publishes windows without touching the heap.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use outpost_runtime::pipeline::{FrameKind, Pipeline, Policy, StreamConfig};
use outpost_runtime::sources::{CsvSource, Pace};
use outpost_tests::alloc_count::{self, Counting};

#[global_allocator]
static GLOBAL: Counting = Counting;

const CHANNELS: [&str; 6] = ["acc_x", "acc_y", "acc_z", "gyr_x", "gyr_y", "gyr_z"];
/// One second of readings at the sensor's 100 Hz, every half second.
const WINDOW: usize = 100;
const HOP: usize = 50;

fn recording() -> PathBuf {
    outpost_tests::model_file("data/imu_walk_lower_back.csv")
}

/// The recording's readings, parsed here independently of `CsvSource` (the header is
/// `samples,acc_x,acc_y,acc_z,gyr_x,gyr_y,gyr_z`; `samples` counts 0, 1, 2, ...).
fn readings() -> Vec<[f32; 6]> {
    let text = std::fs::read_to_string(recording()).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("samples,acc_x,acc_y,acc_z,gyr_x,gyr_y,gyr_z")
    );
    lines
        .enumerate()
        .map(|(i, l)| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), 7, "line {}", i + 2);
            assert_eq!(f[0].parse::<usize>().unwrap(), i, "sample index");
            let mut r = [0f32; 6];
            for (v, s) in r.iter_mut().zip(&f[1..]) {
                *v = s.parse::<f64>().unwrap() as f32;
            }
            r
        })
        .collect()
}

fn source(pace: Pace) -> CsvSource {
    let cols: Vec<String> = CHANNELS.iter().map(|c| c.to_string()).collect();
    CsvSource::open(&recording(), &cols, WINDOW, HOP, pace).unwrap()
}

fn magnitude(r: &[f32]) -> f64 {
    r[..3]
        .iter()
        .map(|&v| f64::from(v).powi(2))
        .sum::<f64>()
        .sqrt()
}

#[test]
fn real_recording_replays_exactly_in_windows() {
    let rows = readings();
    assert_eq!(rows.len(), 1246, "12.5 s at 100 Hz");
    let mut p = Pipeline::new();
    let m = p.add_passthrough("raw");
    p.add_stream(
        StreamConfig::new("imu", Box::new(source(Pace::Unpaced)), m)
            .policy(Policy::Block(Duration::from_secs(10))),
    )
    .unwrap();
    let mut windows: Vec<Vec<f32>> = Vec::new();
    let report = p.run(&AtomicBool::new(false), |r| {
        assert_eq!(r.frame.kind(), FrameKind::Samples);
        assert_eq!(r.meta.seq as usize, windows.len(), "in order, none lost");
        windows.push(r.samples().to_vec());
    });
    let expected = (rows.len() - WINDOW) / HOP + 1;
    assert_eq!(windows.len(), expected);
    let c = report.streams[0].counters;
    assert_eq!(
        (c.captured, c.published, c.dropped_total()),
        (expected as u64, expected as u64, 0)
    );
    let mut walking = 0;
    for (k, w) in windows.iter().enumerate() {
        let want: Vec<f32> = rows[k * HOP..k * HOP + WINDOW]
            .iter()
            .flatten()
            .copied()
            .collect();
        assert_eq!(w, &want, "window {k} differs from the file");
        // Gravity: the mean magnitude of the acceleration is 1 g within 10 % in every window
        // (the sensor is worn, never in free fall); walking shakes it by more than 0.05 g.
        let mags: Vec<f64> = w.chunks(6).map(magnitude).collect();
        let mean = mags.iter().sum::<f64>() / mags.len() as f64;
        assert!(
            (0.9..=1.1).contains(&mean),
            "window {k}: mean |acc| {mean} g"
        );
        let sd = (mags.iter().map(|m| (m - mean).powi(2)).sum::<f64>() / mags.len() as f64).sqrt();
        walking += usize::from(sd > 0.05);
    }
    assert!(
        walking * 2 >= windows.len(),
        "only {walking} of {} windows show walking",
        windows.len()
    );
}

#[test]
fn real_recording_paced_by_row_rate() {
    // Ten times the sensor's rate. The first window goes out at once; window k is due when
    // its last row's time, counted from the first window's last row, has passed: k·50 rows,
    // k·0.05 s. The 23 windows span 1.1 s of replay.
    let rate = 1000.0;
    let mut p = Pipeline::new();
    let m = p.add_passthrough("raw");
    p.add_stream(
        StreamConfig::new("imu", Box::new(source(Pace::Rate(rate))), m)
            .policy(Policy::Block(Duration::from_secs(10))),
    )
    .unwrap();
    let t0 = Instant::now();
    let mut at: Vec<Duration> = Vec::new();
    p.run(&AtomicBool::new(false), |_| at.push(t0.elapsed()));
    assert_eq!(at.len(), 23);
    // `t0` is taken before the run, so before the replay's clock starts: no window can be
    // published earlier than its due time counted from `t0`, however loaded the machine.
    for (k, t) in at.iter().enumerate() {
        let due = (k * HOP) as f64 / rate;
        assert!(
            t.as_secs_f64() >= due,
            "window {k} published at {t:?}, before it was due at {due} s"
        );
    }
    let span = (at[22] - at[0]).as_secs_f64();
    assert!(span < 1.1 + 4.0, "paced replay took {span} s");
}

#[test]
fn looping_replay_allocates_nothing_per_window() {
    const WARMUP: u64 = 50;
    const MEASURED: u64 = 1_000;
    // The counter sees allocations on this thread (a control for the zero below).
    let before = alloc_count::calls();
    drop(std::hint::black_box(Box::new(7u64)));
    assert!(alloc_count::calls() > before);

    let src = source(Pace::Unpaced).looping(true);
    let mut p = Pipeline::new();
    let m = p.add_passthrough("raw");
    p.add_stream(
        StreamConfig::new("imu", Box::new(src), m)
            .policy(Policy::Block(Duration::from_secs(10)))
            .max_frames(Some(WARMUP + MEASURED + 10)),
    )
    .unwrap();
    let (mut n, mut start, mut end, mut sum) = (0u64, 0u64, 0u64, 0f64);
    p.run(&AtomicBool::new(false), |r| {
        n += 1;
        sum += f64::from(r.samples()[0]);
        if n == WARMUP {
            start = alloc_count::calls();
        }
        if n == WARMUP + MEASURED {
            end = alloc_count::calls();
        }
    });
    assert!(n >= WARMUP + MEASURED, "only {n} windows");
    assert!(sum.is_finite());
    assert_eq!(
        end - start,
        0,
        "heap allocations in {MEASURED} windows of looping CSV replay"
    );
}
