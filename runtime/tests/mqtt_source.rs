//! `MqttSource` against a real Mosquitto broker started by the tests on 127.0.0.1 (Debian
//! `mosquitto`; tools/ci/install-system.sh installs it): readings arrive in windows exactly and
//! in order, malformed payloads are skipped and counted, and a broker killed and restarted
//! mid-run costs that stream a gap (counted) while another stream goes on unaffected.

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use outpost_runtime::pipeline::{FrameKind, Pipeline, Policy, StreamConfig};
use outpost_runtime::sources::{CsvSource, MqttConfig, MqttSource, Pace};

#[path = "support/mosquitto.rs"]
#[allow(dead_code)]
mod mosquitto;

use mosquitto::{Broker, Publisher, free_port};

/// Wait until `f` holds (up to 10 s).
fn wait_for(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(10));
    }
}

/// Readings numbered `k`: the row `[k, k + 0.25, k + 0.5]`.
fn row(k: u32) -> [f32; 3] {
    let k = k as f32;
    [k, k + 0.25, k + 0.5]
}

#[test]
fn readings_arrive_in_windows_exactly_and_in_order() {
    static STOP: AtomicBool = AtomicBool::new(false);
    let broker = Broker::start(free_port());
    let source = MqttSource::connect(MqttConfig::new(
        "127.0.0.1",
        broker.port,
        vec!["sensors/+/imu".into()],
        3,
        4,
    ))
    .unwrap()
    .stop_on(&STOP);
    let monitor = source.monitor();
    wait_for("the subscription", || monitor.stats().subscribed >= 1);
    assert!(monitor.is_connected());

    const READINGS: u32 = 240;
    let publisher = Publisher::connect(broker.port, "test-pub-order");
    publisher.wait_connected();
    let producer = thread::spawn(move || {
        let mut k = 0;
        let mut n = 0;
        while k < READINGS {
            n += 1;
            // Every 7th message: a batch of two readings as a JSON array; every 11th: junk
            // that must be skipped; the rest: one reading, comma-separated.
            let topic = if n % 2 == 0 {
                "sensors/a/imu"
            } else {
                "sensors/b/imu"
            };
            if n % 11 == 0 {
                publisher.publish(topic, "not a number");
            } else if n % 7 == 0 && k + 1 < READINGS {
                let (a, b) = (row(k), row(k + 1));
                let p = format!(
                    "[{}, {}, {}, {}, {}, {}]",
                    a[0], a[1], a[2], b[0], b[1], b[2]
                );
                publisher.publish(topic, p);
                k += 2;
            } else {
                let a = row(k);
                publisher.publish(topic, format!("{},{},{}", a[0], a[1], a[2]));
                k += 1;
            }
            thread::sleep(Duration::from_micros(300));
        }
        // Two values: not a multiple of 3 channels.
        publisher.publish("sensors/a/imu", "1,2");
        publisher
    });

    let mut p = Pipeline::new();
    let m = p.add_passthrough("raw");
    p.add_stream(
        StreamConfig::new("imu", Box::new(source), m)
            .policy(Policy::Block(Duration::from_secs(5)))
            .queue_depth(8),
    )
    .unwrap();
    let mut windows: Vec<Vec<f32>> = Vec::new();
    let report = p.run(&STOP, |r| {
        assert_eq!(r.frame.kind(), FrameKind::Samples);
        assert_eq!((r.frame.sample_frames(), r.frame.sample_channels()), (4, 3));
        assert_eq!(r.meta.seq, windows.len() as u64);
        assert!(r.detections.is_empty() && r.top_k.is_empty());
        windows.push(r.samples().to_vec());
        if windows.len() == (READINGS / 4) as usize {
            STOP.store(true, Ordering::Release);
        }
    });
    let publisher = producer.join().unwrap();
    let expected: Vec<Vec<f32>> = (0..READINGS / 4)
        .map(|w| (0..4).flat_map(|i| row(w * 4 + i)).collect())
        .collect();
    assert_eq!(windows, expected);
    let c = report.streams[0].counters;
    assert_eq!(c.captured, (READINGS / 4) as u64);
    assert_eq!(c.published, c.captured);
    assert_eq!(c.dropped_total(), 0);
    assert_eq!(c.source_failures, 0);
    assert!(report.streams[0].error.is_none());
    // The junk payloads (every 11th message) and the final two-value one are counted.
    wait_for("the last payload", || monitor.stats().malformed >= 2);
    let s = monitor.stats();
    assert_eq!(s.readings, READINGS as u64);
    assert_eq!(s.overflowed, 0);
    assert_eq!(s.disconnects, 0);
    drop(publisher);
}

#[test]
fn broker_restart_resumes_the_stream_and_spares_the_others() {
    static STOP: AtomicBool = AtomicBool::new(false);
    let port = free_port();
    let mut broker = Broker::start(port);
    let source = MqttSource::connect(MqttConfig::new(
        "127.0.0.1",
        port,
        vec!["plant/temp".into()],
        1,
        5,
    ))
    .unwrap()
    .stop_on(&STOP);
    let monitor = source.monitor();
    wait_for("the subscription", || monitor.stats().subscribed >= 1);

    // The other stream: a CSV replay at 400 rows/s, one row per window.
    let csv: String = std::iter::once("t,v".to_string())
        .chain((0..100).map(|i| format!("{i},{i}")))
        .collect::<Vec<_>>()
        .join("\n");
    let replay = CsvSource::parse(
        &csv,
        std::path::Path::new("replay.csv"),
        &["v".to_string()],
        1,
        1,
        Pace::Rate(400.0),
    )
    .unwrap()
    .looping(true);

    // Publishes 0, 1, 2, … every millisecond until stopped, across the broker's restart.
    let done = std::sync::Arc::new(AtomicBool::new(false));
    let producer = {
        let done = done.clone();
        thread::spawn(move || {
            let publisher = Publisher::connect(port, "test-pub-fault");
            publisher.wait_connected();
            let mut k = 0u32;
            while !done.load(Ordering::Acquire) {
                publisher.publish("plant/temp", k.to_string());
                k += 1;
                thread::sleep(Duration::from_millis(1));
            }
        })
    };

    let mut p = Pipeline::new();
    let m = p.add_passthrough("raw");
    p.add_stream(StreamConfig::new("temp", Box::new(source), m).policy(Policy::DropOldest))
        .unwrap();
    p.add_stream(StreamConfig::new("replay", Box::new(replay), m).policy(Policy::DropOldest))
        .unwrap();

    // Phases: 0 before the kill, 1 while the broker is down, 2 after its restart.
    let phase = std::sync::Arc::new(std::sync::atomic::AtomicU8::new(0));
    let controller = {
        let phase = phase.clone();
        let monitor = monitor.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(400));
            broker.kill();
            phase.store(1, Ordering::Release);
            wait_for("the disconnect", || monitor.stats().disconnects >= 1);
            thread::sleep(Duration::from_millis(600));
            let broker = Broker::start(port);
            phase.store(2, Ordering::Release);
            wait_for("the new session", || monitor.stats().subscribed >= 2);
            broker
        })
    };

    let mut temp = [0u64; 3];
    let mut replay_during_outage = 0u64;
    let mut after_restart = 0u64;
    let t0 = Instant::now();
    let report = p.run(&STOP, |r| {
        let ph = phase.load(Ordering::Acquire) as usize;
        if r.stream == "temp" {
            // Every window holds five consecutive readings: none straddles the gap.
            let s = r.samples();
            assert_eq!(s.len(), 5);
            for w in s.windows(2) {
                assert_eq!(w[1], w[0] + 1.0, "window {s:?}");
            }
            temp[ph] += 1;
            if ph == 2 {
                after_restart += 1;
            }
        } else if ph == 1 {
            replay_during_outage += 1;
        }
        if after_restart >= 20 || t0.elapsed() > Duration::from_secs(20) {
            STOP.store(true, Ordering::Release);
        }
    });
    done.store(true, Ordering::Release);
    producer.join().unwrap();
    let _broker = controller.join().unwrap();

    assert!(temp[0] > 0, "windows before the kill: {temp:?}");
    assert!(after_restart >= 20, "the stream did not resume: {temp:?}");
    let t = &report.streams[0];
    assert!(t.error.is_none(), "{:?}", t.error);
    assert!(t.counters.source_failures >= 1, "{:?}", t.counters);
    assert!(t.counters.reconnects >= 1, "{:?}", t.counters);
    assert!(monitor.stats().connects >= 2);
    // The replay kept its pace while the broker was down (≥ 600 ms at 400 rows/s).
    let r = &report.streams[1];
    assert!(r.error.is_none());
    assert_eq!(r.counters.source_failures, 0);
    assert!(
        replay_during_outage >= 150,
        "replay windows during the outage: {replay_during_outage}"
    );
}
