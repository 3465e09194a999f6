//! Uplink against a real Azurite 3.35 (started here on 127.0.0.1, stopped by PID).
//! Needs `tools/ci/install-azurite.sh` to have run; fails with that command named otherwise.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use object_store::{ObjectStore, ObjectStoreExt};
use outpost_outbox::uplink::Confirmed;
use outpost_outbox::{
    AzureConfig, BatchLimits, OutboxWriter, Priority, Record, Store, StoreConfig, Uplink,
    UplinkConfig, WriterConfig,
};

use common::{Azurite, frame_record, json_record};

const T0: u64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

/// The tests measure time and restart Azurite; run them one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Enqueue through the writer and wait until every record is acknowledged.
fn write_all(store: &Arc<Store>, records: &[Record]) {
    let w = OutboxWriter::start(store.clone(), WriterConfig::default()).unwrap();
    let tickets: Vec<_> = records
        .iter()
        .map(|r| w.enqueue(r).expect("queue has room"))
        .collect();
    for t in tickets {
        t.wait(Duration::from_secs(30)).unwrap();
    }
    assert_eq!(w.close().dropped_queue_full, 0);
}

/// Every line of every JSON Lines object in the container, with the object it came from; and the
/// set of all object names.
fn read_cloud(
    rt: &tokio::runtime::Runtime,
    client: &Arc<dyn ObjectStore>,
) -> (Vec<(String, serde_json::Value)>, HashSet<String>) {
    rt.block_on(async {
        let metas: Vec<_> = client.list(None).try_collect().await.unwrap();
        let names: HashSet<String> = metas.iter().map(|m| m.location.to_string()).collect();
        let mut lines = Vec::new();
        for m in metas
            .iter()
            .filter(|m| m.location.as_ref().ends_with(".jsonl.gz"))
        {
            let bytes = client
                .get(&m.location)
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            let mut text = String::new();
            flate2::read::GzDecoder::new(&bytes[..])
                .read_to_string(&mut text)
                .unwrap();
            for l in text.lines() {
                lines.push((m.location.to_string(), serde_json::from_str(l).unwrap()));
            }
        }
        (lines, names)
    })
}

#[test]
fn link_flapping_delivers_everything_exactly_once_in_priority_order() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut az = Azurite::start();
    az.create_container("flap");
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path().join("o.redb"), StoreConfig::default()).unwrap());

    // 360 records: two streams, three hours, all priorities, one in six a JPEG frame.
    let mut rng = fastrand::Rng::with_seed(42);
    let records: Vec<Record> = (0..360u64)
        .map(|i| {
            let prio = Priority::ALL[rng.usize(..5)];
            let stream = if i % 2 == 0 { "cam-a" } else { "cam-b" };
            let t = T0 + i * 30_000; // 30 s apart: 3 hours
            if i % 6 == 0 {
                frame_record(stream, t, prio, 96, 64, i)
            } else {
                json_record(stream, t, prio, 300)
            }
        })
        .collect();
    write_all(&store, &records);
    let expected: BTreeMap<u64, Priority> = records
        .iter()
        .map(|r| (r.meta.time_ms, r.meta.priority))
        .collect();

    // The link is down when the uplink starts.
    az.down();
    let cfg = UplinkConfig {
        device: "edge-01".into(),
        prefix: "outpost".into(),
        max_bytes_per_sec: 60_000,
        burst_bytes: 8_000,
        batch: BatchLimits {
            max_records: 12,
            ..Default::default()
        },
        backoff_initial_ms: 50,
        backoff_max_ms: 800,
        request_timeout_ms: 3_000,
        poll_ms: 50,
        ..Default::default()
    };
    let client = AzureConfig::emulator(&az.url(), "flap")
        .build(Duration::from_secs(3))
        .unwrap();
    let (obs_tx, obs_rx) = std::sync::mpsc::channel::<Confirmed>();
    let uplink = Arc::new(Uplink::new(store.clone(), client.clone(), cfg).with_observer(obs_tx));
    let stats = uplink.stats();
    let rt = rt();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let up = uplink.clone();
    let task = rt.spawn(async move { up.run(stop_rx).await });

    // Flap: down 0.6 s, up 1.2 s, four times; then leave it up until the outbox is empty.
    let mut flaps = 0;
    let started = Instant::now();
    for _ in 0..4 {
        std::thread::sleep(Duration::from_millis(600));
        az.up();
        std::thread::sleep(Duration::from_millis(1200));
        az.down();
        flaps += 1;
    }
    let failures_while_flapping = stats.snapshot().failures;
    az.up();
    let deadline = Instant::now() + Duration::from_secs(120);
    while store.stats().unwrap().records > 0 {
        assert!(
            Instant::now() < deadline,
            "outbox not drained: {:?}",
            store.stats().unwrap()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    stop_tx.send(true).unwrap();
    rt.block_on(task).unwrap().unwrap();
    let elapsed = started.elapsed();

    let (lines, names) = read_cloud(&rt, &client);
    let mut seen: BTreeMap<u64, usize> = BTreeMap::new();
    for (obj, l) in &lines {
        let t = l["time_ms"].as_u64().unwrap();
        *seen.entry(t).or_default() += 1;
        assert!(obj.starts_with("outpost/device=edge-01/stream="), "{obj}");
        assert!(obj.contains("/date=2026-01-01/hour=0"), "{obj}");
        if let Some(j) = l["jpeg"].as_str() {
            assert!(names.contains(j), "jpeg object {j} missing");
        }
    }
    let lost: Vec<_> = expected.keys().filter(|t| !seen.contains_key(t)).collect();
    let dup: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(lost.is_empty(), "{} records lost: {lost:?}", lost.len());
    assert!(dup.is_empty(), "duplicated records: {dup:?}");
    assert_eq!(seen.len(), expected.len());

    // Priority order: confirmed batches never go up in priority (all records were there first).
    let confirmed: Vec<Confirmed> = obs_rx.try_iter().collect();
    assert!(
        confirmed.windows(2).all(|w| w[0].priority >= w[1].priority),
        "not in priority order"
    );
    let jsonl = names.iter().filter(|n| n.ends_with(".jsonl.gz")).count();
    assert_eq!(
        jsonl,
        confirmed.len(),
        "one JSON Lines object per confirmed batch, no strays"
    );
    let st = store.stats().unwrap();
    assert_eq!(
        (
            st.records,
            st.bytes,
            st.pending_batches,
            st.uploaded_records
        ),
        (0, 0, 0, 360)
    );
    println!(
        "flapping: {flaps} stop/start cycles, {} records in {} batches, {} objects, {} failed attempts \
         ({failures_while_flapping} while flapping), {:.1} s",
        expected.len(),
        confirmed.len(),
        names.len(),
        stats.snapshot().failures,
        elapsed.as_secs_f64()
    );
    assert!(
        failures_while_flapping > 0,
        "the link never failed: the test did not flap"
    );
}

#[test]
fn bandwidth_cap_is_respected_within_ten_percent() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let az = Azurite::start();
    az.create_container("bandwidth");
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path().join("o.redb"), StoreConfig::default()).unwrap());
    // ≈ 20 KB incompressible JPEGs plus small events: ≈ 1 MB in all.
    let records: Vec<Record> = (0..100u64)
        .map(|i| {
            if i % 2 == 0 {
                frame_record("cam", T0 + i, Priority::Sample, 192, 144, i)
            } else {
                json_record("cam", T0 + i, Priority::Event, 2000)
            }
        })
        .collect();
    write_all(&store, &records);
    let cap = 250_000u64;
    let cfg = UplinkConfig {
        max_bytes_per_sec: cap,
        burst_bytes: cap, // saves up to 1 s of allowance, so request latency is not lost
        batch: BatchLimits {
            max_records: 4,
            ..Default::default()
        },
        ..Default::default()
    };
    let client = AzureConfig::emulator(&az.url(), "bandwidth")
        .build(Duration::from_secs(10))
        .unwrap();
    let rt = rt();
    let t = Instant::now();
    let uplink = Uplink::new(store.clone(), client, cfg);
    let snap = rt.block_on(uplink.drain()).unwrap();
    let secs = t.elapsed().as_secs_f64();
    let rate = snap.bytes as f64 / secs;
    println!(
        "bandwidth: cap {cap} B/s, sent {} bytes in {} objects in {secs:.2} s = {rate:.0} B/s ({:+.1} %)",
        snap.bytes,
        snap.objects,
        (rate / cap as f64 - 1.0) * 100.0
    );
    assert_eq!(snap.records, 100);
    assert!(secs > 3.0, "too little data to measure a rate");
    assert!(
        (rate - cap as f64).abs() <= 0.10 * cap as f64,
        "rate {rate:.0} B/s not within 10 % of {cap}"
    );
}

/// The device dies in the middle of a batch (some objects put, nothing confirmed); after a
/// restart the same batch is re-sent under the same names: nothing is duplicated or lost.
#[test]
fn crash_in_the_middle_of_a_batch_resends_under_the_same_names() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let az = Azurite::start();
    az.create_container("midbatch");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o.redb");
    let records: Vec<Record> = (0..40u64)
        .map(|i| {
            if i % 4 == 0 {
                frame_record("cam", T0 + i, Priority::Anomaly, 64, 48, i)
            } else {
                json_record("cam", T0 + i, Priority::Anomaly, 100)
            }
        })
        .collect();
    let cfg = UplinkConfig {
        batch: BatchLimits {
            max_records: 10,
            ..Default::default()
        },
        ..Default::default()
    };
    let client = AzureConfig::emulator(&az.url(), "midbatch")
        .build(Duration::from_secs(10))
        .unwrap();
    let rt = rt();
    let first_names = {
        let store = Arc::new(Store::open(&path, StoreConfig::default()).unwrap());
        write_all(&store, &records);
        // What the uplink does, stopped half-way: claim, put half of the objects, "crash".
        let batch = store.claim_batch(cfg.batch).unwrap().unwrap();
        let layout = outpost_outbox::Layout::new(&cfg.prefix, &cfg.device, &store.instance());
        let objects = outpost_outbox::uplink::batch_objects(&layout, &batch, 6).unwrap();
        rt.block_on(async {
            for (name, bytes) in &objects[..objects.len() / 2] {
                client
                    .put(
                        &object_store::path::Path::from(name.as_str()),
                        bytes.clone().into(),
                    )
                    .await
                    .unwrap();
            }
        });
        objects.into_iter().map(|o| o.0).collect::<Vec<_>>()
    }; // store dropped: the process is gone
    let store = Arc::new(Store::open(&path, StoreConfig::default()).unwrap());
    assert_eq!(store.stats().unwrap().pending_batches, 1);
    let (tx, rx) = std::sync::mpsc::channel();
    let uplink = Uplink::new(store.clone(), client.clone(), cfg).with_observer(tx);
    let snap = rt.block_on(uplink.drain()).unwrap();
    assert_eq!(snap.records, 40);
    let confirmed: Vec<Confirmed> = rx.try_iter().collect();
    assert_eq!(
        confirmed[0].object,
        *first_names.last().unwrap(),
        "the pending batch went first, same name"
    );
    let (lines, names) = read_cloud(&rt, &client);
    let mut seen: BTreeMap<u64, usize> = BTreeMap::new();
    for (_, l) in &lines {
        *seen.entry(l["time_ms"].as_u64().unwrap()).or_default() += 1;
    }
    assert_eq!(seen.len(), 40);
    assert!(seen.values().all(|n| *n == 1), "duplicates: {seen:?}");
    assert_eq!(
        names.len(),
        4 + 10,
        "4 JSON Lines objects + 10 JPEGs, no strays"
    );
    assert_eq!(store.stats().unwrap().records, 0);
}
