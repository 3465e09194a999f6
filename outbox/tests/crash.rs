//! Crash safety: a child process writes and acknowledges records and is killed with SIGKILL at a
//! random moment; the parent reopens the store and checks that every acknowledged record is there,
//! intact, once, and that the store's counters are consistent.
//!
//! `OUTBOX_CRASH_CYCLES` overrides the number of cycles (default 200).

mod common;

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use outpost_outbox::{Body, OutboxWriter, Priority, Store, StoreConfig, WriterConfig};

const CHILD_ENV: &str = "OUTBOX_CRASH_CHILD";

fn store_cfg() -> StoreConfig {
    StoreConfig::with_max_bytes(1 << 40)
}

/// The child role: only does something when re-invoked by `crash_cycles` with CHILD_ENV set.
#[test]
fn crash_child_entry() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let cycle: u64 = std::env::var("OUTBOX_CRASH_CYCLE")
        .unwrap()
        .parse()
        .unwrap();
    let store = Arc::new(Store::open(&path, store_cfg()).unwrap());
    let writer = OutboxWriter::start(
        store,
        WriterConfig {
            queue_capacity: 64,
            max_batch_records: 16,
            ..Default::default()
        },
    )
    .unwrap();
    let out = std::io::stdout();
    let mut out = out.lock();
    writeln!(out, "READY").unwrap();
    out.flush().unwrap();
    let mut rng = fastrand::Rng::new();
    let mut pending = std::collections::VecDeque::new();
    for i in 0u64.. {
        let prio = Priority::ALL[rng.usize(..5)];
        let rec = common::json_record(&format!("s{cycle}"), i, prio, rng.usize(..3000));
        loop {
            match writer.enqueue(&rec) {
                Ok(t) => {
                    pending.push_back((i, t));
                    break;
                }
                Err(_) => std::thread::sleep(Duration::from_micros(200)),
            }
        }
        while let Some((j, t)) = pending.front() {
            if pending.len() < 32 && !t.is_durable() {
                break;
            }
            t.wait(Duration::from_secs(10)).unwrap();
            writeln!(out, "ACK {j}").unwrap();
            out.flush().unwrap();
            pending.pop_front();
        }
    }
}

#[test]
fn crash_cycles() {
    let cycles: u64 = std::env::var("OUTBOX_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.redb");
    let exe = std::env::current_exe().unwrap();
    let mut rng = fastrand::Rng::with_seed(0xC0FFEE);
    let started = Instant::now();
    let (mut total_acked, mut total_unacked_present, mut kills_before_ready) = (0u64, 0u64, 0u64);
    let mut open_ms = Vec::new();
    for cycle in 0..cycles {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash_child_entry",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &path)
            .env("OUTBOX_CRASH_CYCLE", cycle.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut lines = Vec::new();
        // One cycle in 8 is killed at a random moment during start-up (open, repair).
        if rng.u8(..8) == 0 {
            std::thread::sleep(Duration::from_millis(rng.u64(0..15)));
            kills_before_ready += 1;
        } else {
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let l = rx
                    .recv_timeout(deadline - Instant::now())
                    .expect("child never became READY");
                let ready = l.ends_with("READY");
                lines.push(l);
                if ready {
                    break;
                }
            }
            std::thread::sleep(Duration::from_micros(rng.u64(0..40_000)));
        }
        child.kill().unwrap(); // SIGKILL by pid
        child.wait().unwrap();
        reader.join().unwrap();
        lines.extend(rx.try_iter());
        let acked: Vec<u64> = lines
            .iter()
            .filter_map(|l| l.strip_prefix("ACK "))
            .map(|v| v.parse().unwrap())
            .collect();

        // Reopen: must open cleanly (redb repairs after the crash).
        let t = Instant::now();
        let store = Store::open(&path, store_cfg()).expect("store must reopen after SIGKILL");
        open_ms.push(t.elapsed().as_secs_f64() * 1e3);
        let mut present: BTreeMap<u64, u64> = BTreeMap::new(); // i -> seq
        let mut seqs = Vec::new();
        store
            .for_each(|r| {
                let r = r.expect("torn or corrupt record");
                let Body::Json(v) = r.record.body() else {
                    panic!("unexpected body")
                };
                assert_eq!(
                    r.record.meta.stream,
                    format!("s{cycle}"),
                    "record from an earlier cycle"
                );
                let i = v["t"].as_u64().unwrap();
                assert!(present.insert(i, r.seq).is_none(), "record {i} duplicated");
                seqs.push(r.seq);
                true
            })
            .unwrap();
        for i in &acked {
            assert!(
                present.contains_key(i),
                "cycle {cycle}: acknowledged record {i} lost"
            );
        }
        // Records are committed in order: what is present is a prefix 0..n.
        let n = present.len() as u64;
        assert!(
            present.keys().copied().eq(0..n),
            "cycle {cycle}: present records are not a prefix"
        );
        let acked_set: HashSet<u64> = acked.iter().copied().collect();
        total_acked += acked.len() as u64;
        total_unacked_present += present.keys().filter(|i| !acked_set.contains(i)).count() as u64;
        let st = store.stats().unwrap();
        assert_eq!(st.records, n);
        assert_eq!(store.remove(&seqs).unwrap(), n);
        let st = store.stats().unwrap();
        assert_eq!(
            (st.records, st.bytes),
            (0, 0),
            "cycle {cycle}: byte accounting inconsistent"
        );
        drop(store);
    }
    open_ms.sort_by(f64::total_cmp);
    println!(
        "crash cycles: {cycles} in {:.1} s; acknowledged records verified: {total_acked}; committed-but-unacknowledged \
         found: {total_unacked_present}; killed during start-up: {kills_before_ready}; reopen p50 {:.2} ms, max {:.2} ms",
        started.elapsed().as_secs_f64(),
        common::pct(&open_ms, 0.5),
        common::pct(&open_ms, 1.0)
    );
    assert!(
        total_acked > cycles,
        "too few acknowledgements to be a meaningful test"
    );
}
