//! Disk bound under a long disconnected run, and the producer never blocking while the uplink
//! retries against a dead endpoint.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use outpost_outbox::{
    AzureConfig, BatchLimits, OutboxWriter, Priority, Store, StoreConfig, Uplink, UplinkConfig,
    WriterConfig,
};

use common::{frame_record, json_record, pct};

const T0: u64 = 1_767_225_600_000;

/// The two tests measure time; run them one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn disconnected_run_stays_under_the_byte_limit_and_evicts_by_policy() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o.redb");
    let max = 8u64 << 20;
    let store = Arc::new(Store::open(&path, StoreConfig::with_max_bytes(max)).unwrap());
    let w = OutboxWriter::start(
        store.clone(),
        WriterConfig {
            queue_capacity: 4096,
            ..Default::default()
        },
    )
    .unwrap();
    // Pre-encode a few frames and reuse them (this is about the store, not the encoder).
    let frames: Vec<_> = (0..4)
        .map(|i| frame_record("cam", T0, Priority::Bulk, 128, 96, i))
        .collect();
    let mut written = 0u64;
    let (mut events, mut anomalies) = (0u64, 0u64);
    let mut last = None;
    let t = Instant::now();
    for i in 0..3000u64 {
        let time = T0 + i * 1000;
        let mut rec = match i % 10 {
            0 => {
                events += 1;
                json_record("cam", time, Priority::Event, 200)
            }
            5 => {
                anomalies += 1;
                json_record("cam", time, Priority::Anomaly, 200)
            }
            1..=3 => json_record("cam", time, Priority::Result, 200),
            4 => {
                let mut f = frames[(i % 4) as usize].clone();
                f.meta.priority = Priority::Sample;
                f
            }
            _ => frames[(i % 4) as usize].clone(),
        };
        rec.meta.time_ms = time;
        written += rec.encode().len() as u64;
        loop {
            match w.enqueue(&rec) {
                Ok(t) => {
                    last = Some(t);
                    break;
                }
                Err(_) => std::thread::sleep(Duration::from_millis(1)),
            }
        }
    }
    last.unwrap().wait(Duration::from_secs(60)).unwrap();
    let ws = w.close();
    let st = store.stats().unwrap();
    let by = st.records_by_priority;
    println!(
        "disk bound: wrote {:.1} MB in {:.1} s ({} commits) into a {:.1} MB outbox: kept {} records, {:.2} MB \
         accounted (budget {:.2} MB), file {:.2} MB; evicted per priority (bulk, sample, result, event, anomaly) = {:?}",
        written as f64 / 1e6,
        t.elapsed().as_secs_f64(),
        ws.commits,
        max as f64 / 1e6,
        st.records,
        st.bytes as f64 / 1e6,
        st.record_budget as f64 / 1e6,
        st.file_bytes as f64 / 1e6,
        st.evicted.records
    );
    assert!(st.bytes <= st.record_budget);
    assert!(
        st.file_bytes <= max,
        "redb file {} over the {max} byte disk budget",
        st.file_bytes
    );
    assert!(st.evicted.records[0] > 0, "bulk must be evicted first");
    // Events and anomalies are never evicted while lower priorities remain.
    assert_eq!((st.evicted.records[3], st.evicted.records[4]), (0, 0));
    assert_eq!((by[3], by[4]), (events, anomalies));
    assert_eq!(ws.evicted, st.evicted.records.iter().sum::<u64>());
    // Within bulk, the oldest went first: what is left is the newest bulk.
    let mut bulk_times = Vec::new();
    store
        .for_each(|r| {
            let r = r.unwrap();
            if r.record.meta.priority == Priority::Bulk {
                bulk_times.push(r.record.meta.time_ms);
            }
            true
        })
        .unwrap();
    if let Some(first) = bulk_times.first() {
        assert!(*first > T0 + 1000 * 1000, "old bulk records survived");
    }
    // The file does not keep growing once full: another round of the same load.
    let size_before = st.file_bytes;
    let w = OutboxWriter::start(store.clone(), WriterConfig::default()).unwrap();
    for i in 0..600u64 {
        let mut f = frames[(i % 4) as usize].clone();
        f.meta.time_ms = T0 + 4_000_000 + i;
        while w.enqueue(&f).is_err() {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    w.close();
    let st = store.stats().unwrap();
    assert!(st.bytes <= st.record_budget);
    assert!(
        st.file_bytes <= max,
        "file grew from {size_before} to {}, over {max}",
        st.file_bytes
    );
}

#[test]
fn producer_is_never_blocked_while_the_uplink_retries_a_dead_link() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path().join("o.redb"), StoreConfig::default()).unwrap());
    // Nothing listens on this port: every upload attempt fails and is retried with backoff.
    let dead = format!("http://127.0.0.1:{}", common::free_port());
    let client = AzureConfig::emulator(&dead, "c")
        .build(Duration::from_secs(2))
        .unwrap();
    let cfg = UplinkConfig {
        backoff_initial_ms: 10,
        backoff_max_ms: 100,
        poll_ms: 10,
        batch: BatchLimits {
            max_records: 8,
            ..Default::default()
        },
        ..Default::default()
    };
    let uplink = Arc::new(Uplink::new(store.clone(), client, cfg));
    let stats = uplink.stats();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let up = uplink.clone();
    let task = rt.spawn(async move { up.run(stop_rx).await });

    let frame = frame_record("cam", T0, Priority::Sample, 160, 120, 1);
    // Baseline: the same fixed-rate "pipeline" with no outbox at all.
    let base = run_pipeline(None, &frame);
    let w = OutboxWriter::start(store.clone(), WriterConfig::default()).unwrap();
    let cpu0 = outbox_threads_cpu_ms();
    let with = run_pipeline(Some(&w), &frame);
    let outbox_cpu_ms = outbox_threads_cpu_ms() - cpu0;
    let (n, elapsed) = (with.frames, with.elapsed);
    let mut lat = with.enqueue_us.clone();
    let mut lateness = with.lateness_ms.clone();
    let ws = w.close();
    stop_tx.send(true).unwrap();
    rt.block_on(task).unwrap().unwrap();
    lat.sort_by(f64::total_cmp);
    lateness.sort_by(f64::total_cmp);
    let fails = stats.snapshot().failures;
    println!(
        "non-blocking: {n} records at 100/s in {:.2} s while the uplink failed {fails} times; enqueue p50 {:.1} µs, \
         p99 {:.1} µs, max {:.1} µs; tick lateness p50 {:.2} ms, p99 {:.2} ms; dropped {}",
        elapsed.as_secs_f64(),
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        pct(&lat, 1.0),
        pct(&lateness, 0.5),
        pct(&lateness, 0.99),
        ws.dropped_queue_full
    );
    assert!(fails >= 5, "the uplink should have been retrying");
    assert_eq!(ws.dropped_queue_full, 0);
    assert_eq!(store.stats().unwrap().records, n as u64);
    // Wall-clock bounds are loose because the 2 CPU cores are shared (preemption shows up here);
    // that enqueue cannot block on the disk at all is shown deterministically by the writer's
    // unit test `enqueue_never_blocks_on_a_stalled_disk`.
    assert!(
        pct(&lat, 0.5) < 2_000.0,
        "enqueue p50 {} µs",
        pct(&lat, 0.5)
    );
    assert!(
        pct(&lat, 0.99) < 20_000.0,
        "enqueue p99 {} µs",
        pct(&lat, 0.99)
    );
    assert!(
        elapsed < Duration::from_millis(3_000 + 500),
        "the producer fell behind: {elapsed:?}"
    );
    let mut bf = base.frame_ms.clone();
    let mut wf = with.frame_ms.clone();
    bf.sort_by(f64::total_cmp);
    wf.sort_by(f64::total_cmp);
    let (b50, b99, w50, w99) = (pct(&bf, 0.5), pct(&bf, 0.99), pct(&wf, 0.5), pct(&wf, 0.99));
    println!(
        "pipeline frame latency (due -> work done, 100 fps): without outbox p50 {b50:.3} ms p99 {b99:.3} ms, \
         {:.1} fps; with outbox + failing uplink p50 {w50:.3} ms p99 {w99:.3} ms, {:.1} fps",
        base.frames as f64 / base.elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64()
    );
    let mut bl = base.lateness_ms.clone();
    bl.sort_by(f64::total_cmp);
    println!(
        "wake-up lateness p50/p99: without outbox {:.3}/{:.3} ms, with {:.3}/{:.3} ms",
        pct(&bl, 0.5),
        pct(&bl, 0.99),
        pct(&lateness, 0.5),
        pct(&lateness, 0.99)
    );
    let share = outbox_cpu_ms / (elapsed.as_secs_f64() * 1e3);
    println!(
        "outbox threads (writer + uplink runtime) used {outbox_cpu_ms:.0} ms CPU in {:.2} s ({:.1} % of one core)",
        elapsed.as_secs_f64(),
        share * 100.0
    );
    // What could slow the pipeline is CPU taken by the outbox's own threads: bounded here.
    assert!(
        share < 0.10,
        "outbox threads took {:.1} % of a core",
        share * 100.0
    );
    // Wall-clock latency on 2 cores shared with other work is noisy (load from other processes
    // moves the median by milliseconds between the two runs), so this bound only catches a
    // systematic stall; the numbers are reported in BENCHMARKS.md.
    assert!(
        w50 <= b50 * 2.0 + 3.0,
        "frame latency p50 {w50:.3} ms vs {b50:.3} ms without the outbox"
    );
}

/// CPU time (user + system, ms) of this process's threads named `outbox-writer` or
/// `tokio-runtime-worker`, from /proc (10 ms resolution).
fn outbox_threads_cpu_ms() -> f64 {
    let tick_ms = 10.0; // USER_HZ is 100 on Linux
    let mut total = 0.0;
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    for t in tasks.flatten() {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        let comm = comm.trim();
        if comm != "outbox-writer" && !comm.starts_with("tokio-runtime-w") {
            continue;
        }
        let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
        // Fields after the ")" that closes the command name: state is field 3, utime 14, stime 15.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f.len() > 12 {
            let ticks: f64 =
                f[11].parse::<f64>().unwrap_or(0.0) + f[12].parse::<f64>().unwrap_or(0.0);
            total += ticks * tick_ms;
        }
    }
    total
}

struct PipelineRun {
    frames: usize,
    elapsed: Duration,
    enqueue_us: Vec<f64>,
    lateness_ms: Vec<f64>,
    frame_ms: Vec<f64>,
}

/// A fixed-rate pipeline: every 10 ms a frame is due, ≈1 ms of "inference" runs, then its result
/// (every fifth a JPEG frame) is handed to the outbox if there is one.
fn run_pipeline(w: Option<&OutboxWriter>, frame: &outpost_outbox::Record) -> PipelineRun {
    let period = Duration::from_millis(10);
    let n = 300;
    let mut run = PipelineRun {
        frames: n,
        elapsed: Duration::ZERO,
        enqueue_us: Vec::with_capacity(n),
        lateness_ms: Vec::with_capacity(n),
        frame_ms: Vec::with_capacity(n),
    };
    let work: Vec<f32> = (0..50_000).map(|i| i as f32 * 0.001).collect();
    let start = Instant::now();
    for i in 0..n {
        let due = start + period * i as u32;
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        run.lateness_ms
            .push(Instant::now().saturating_duration_since(due).as_secs_f64() * 1e3);
        let mut acc = 0f32;
        for _ in 0..20 {
            acc += std::hint::black_box(&work)
                .iter()
                .fold(0.0, |a, x| a + x.sqrt());
        }
        std::hint::black_box(acc);
        run.frame_ms.push(due.elapsed().as_secs_f64() * 1e3);
        let Some(w) = w else { continue };
        let rec = if i % 5 == 0 {
            let mut f = frame.clone();
            f.meta.time_ms = T0 + i as u64;
            f
        } else {
            json_record("cam", T0 + i as u64, Priority::Event, 200)
        };
        let t = Instant::now();
        let r = w.enqueue(&rec);
        run.enqueue_us.push(t.elapsed().as_secs_f64() * 1e6);
        assert!(r.is_ok(), "enqueue refused: {r:?}");
    }
    run.elapsed = start.elapsed();
    run
}
