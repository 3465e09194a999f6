//! Steady state with an MQTT source allocates nothing on the pipeline's threads: a counting
//! global allocator over 1,100 windows flowing from a real Mosquitto broker (started on
//! 127.0.0.1 by the test; Debian `mosquitto`, installed by tools/ci/install-system.sh) through
//! the source (readings from the hand-off queue into a slot) → the int8 input (quantized) →
//! inference → decoding → the publish callback.
//!
//! What is counted, honestly: every allocation on every thread except the MQTT client threads,
//! recognised by their names: the source's event-loop thread (`outpost-mqtt-io`, where rumqttc
//! allocates the topic and payload of every Publish it receives, and where our payload parser
//! and queue push run) and this test's publisher threads (`mqtt-*`). Our code on the event-loop
//! thread is covered separately: [`parse_payload`] is counted here on the test thread and
//! allocates nothing; the queue it feeds is a preallocated `ArrayQueue` of plain `Copy` readings.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use outpost_runtime::SessionOptions;
use outpost_runtime::pipeline::{Pipeline, Policy, StreamConfig};
use outpost_runtime::sources::mqtt::parse_payload;
use outpost_runtime::sources::{MqttConfig, MqttSource};

#[path = "support/mosquitto.rs"]
#[allow(dead_code)]
mod mosquitto;
#[path = "support/tiny_fc.rs"]
#[allow(dead_code)]
mod tiny_fc;

struct Counting;

static CALLS: AtomicU64 = AtomicU64::new(0);

/// Whether the calling thread is one of the pipeline's (not an MQTT client thread). Reads the
/// thread's name with `prctl`, which allocates nothing.
fn counted_thread() -> bool {
    let mut name = [0u8; 16];
    // SAFETY: PR_GET_NAME writes the calling thread's name, at most 16 bytes with its NUL,
    // into the buffer it is given, which has 16 bytes.
    let r = unsafe {
        libc::prctl(
            libc::PR_GET_NAME,
            name.as_mut_ptr() as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    r != 0 || !(name.starts_with(b"outpost-mqtt") || name.starts_with(b"mqtt-"))
}

fn count() {
    if counted_thread() {
        CALLS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const WARMUP: u64 = 100;
const MEASURED: u64 = 1_000;
const WINDOW: usize = 2;
const CHANNELS: usize = 3;

#[test]
fn mqtt_pipeline_steady_state_allocates_nothing() {
    static STOP: AtomicBool = AtomicBool::new(false);
    // The counter sees allocations on this thread (a control for the zero below).
    let before = CALLS.load(Ordering::SeqCst);
    drop(std::hint::black_box(Box::new(7u64)));
    assert!(CALLS.load(Ordering::SeqCst) > before);

    // Our parser, counted on this thread.
    let mut values = [0f32; 16];
    let before = CALLS.load(Ordering::SeqCst);
    for p in [&b"1.5"[..], b"[0.25, -1, 3e-2]", b" 4,5 ,6 ", b"junk"] {
        let _ = std::hint::black_box(parse_payload(std::hint::black_box(p), &mut values));
    }
    assert_eq!(
        CALLS.load(Ordering::SeqCst),
        before,
        "parse_payload allocated"
    );

    let broker = mosquitto::Broker::start(mosquitto::free_port());
    let source = MqttSource::connect(MqttConfig::new(
        "127.0.0.1",
        broker.port,
        vec!["noalloc/imu".into()],
        CHANNELS,
        WINDOW,
    ))
    .unwrap()
    .stop_on(&STOP);
    let monitor = source.monitor();
    let deadline = Instant::now() + Duration::from_secs(10);
    while monitor.stats().subscribed == 0 {
        assert!(Instant::now() < deadline, "no subscription");
        thread::sleep(Duration::from_millis(10));
    }
    let port = broker.port;
    let done = std::sync::Arc::new(AtomicBool::new(false));
    let feed = {
        let done = done.clone();
        thread::Builder::new()
            .name("mqtt-feed".into())
            .spawn(move || {
                let publisher = mosquitto::Publisher::connect(port, "test-pub-noalloc");
                publisher.wait_connected();
                let mut k = 0u32;
                while !done.load(Ordering::Acquire) {
                    let v = (k % 200) as f32 / 200.0 - 0.5;
                    publisher.publish("noalloc/imu", format!("{v},{},{}", -v, v / 2.0));
                    k += 1;
                    thread::sleep(Duration::from_micros(200));
                }
            })
            .unwrap()
    };

    let model = tiny_fc::tiny_fc(WINDOW * CHANNELS);
    let mut p = Pipeline::new();
    let m = p
        .add_model("fc", &model, SessionOptions::default())
        .unwrap();
    p.add_stream(
        StreamConfig::new("imu", Box::new(source), m)
            .policy(Policy::Block(Duration::from_secs(5)))
            .queue_depth(4),
    )
    .unwrap();
    let (mut n, mut start, mut end, mut scored) = (0u64, 0u64, 0u64, 0u64);
    let report = p.run(&STOP, |r| {
        n += 1;
        scored += u64::from(tiny_fc::score(r.top_k, 0).is_some());
        if n == WARMUP {
            start = CALLS.load(Ordering::SeqCst);
        }
        if n == WARMUP + MEASURED {
            end = CALLS.load(Ordering::SeqCst);
            STOP.store(true, Ordering::Release);
        }
    });
    done.store(true, Ordering::Release);
    feed.join().unwrap();
    let c = report.streams[0].counters;
    assert!(n >= WARMUP + MEASURED, "only {n} windows published ({c:?})");
    assert_eq!(scored, n, "every window went through the model");
    assert_eq!(c.source_failures, 0);
    let allocs = end - start;
    assert_eq!(
        allocs, 0,
        "{allocs} heap allocations on the pipeline's threads in {MEASURED} windows ({c:?})"
    );
}
