//! The outbox's threads run below the pipeline: under SCHED_IDLE by default, or at the configured
//! nice value (read back from /proc/self/task/<tid>/stat: the policy and the nice value), and the
//! calling thread keeps its own.

use std::path::Path;
use std::time::{Duration, Instant};

use outpost_outbox::priority::{this_thread_nice, this_thread_sched_idle};
use outpost_outbox::store::StoreConfig;
use outpost_outbox::{FrameSink, Outbox, OutboxSettings, RecordPolicy};

/// (policy, nice) of this process's thread named `comm` (as the kernel cuts it: 15 bytes).
fn nice_of(comm: &str) -> Option<(i64, i64)> {
    let comm = &comm[..comm.len().min(15)];
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let dir = task.path();
        let name = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if name.trim_end() != comm {
            continue;
        }
        return stat_nice(&dir);
    }
    None
}

/// Field `n` (1-based, as in proc(5)) of a task's `stat`.
fn stat_field(dir: &Path, n: usize) -> Option<i64> {
    let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
    // Fields 3 onwards follow the parenthesised command name.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(n - 3)?.parse().ok()
}

/// (policy, nice) of a task: `stat` fields 41 and 19.
fn stat_nice(dir: &Path) -> Option<(i64, i64)> {
    Some((stat_field(dir, 41)?, stat_field(dir, 19)?))
}

/// Poll until the thread has started and lowered itself (it does so first thing).
fn wait_nice(comm: &str, want: (i64, i64)) -> Option<(i64, i64)> {
    let t = Instant::now();
    loop {
        let got = nice_of(comm);
        if got == Some(want) || t.elapsed() > Duration::from_secs(10) {
            return got;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `SCHED_OTHER` and `SCHED_IDLE` (sched.h).
const SCHED_OTHER: i64 = 0;
const SCHED_IDLE: i64 = 5;

/// Open an outbox with a sink as `settings` say (in a fresh directory) and check the writer's and
/// the sink's (policy, nice), and that the caller is left as it was.
fn threads_run_as(mut settings: OutboxSettings, want: (i64, i64)) {
    let dir = tempfile::tempdir().unwrap();
    settings.path = dir.path().join("o.redb");
    settings.store = StoreConfig::with_max_bytes(16 << 20);
    let before = this_thread_nice().unwrap();
    let outbox = Outbox::open(&settings).unwrap();
    assert_eq!(outbox.background(), settings.background());
    let sink = FrameSink::start(outbox, RecordPolicy::default()).unwrap();
    assert_eq!(wait_nice("outbox-writer", want), Some(want));
    assert_eq!(wait_nice("outpost-outbox-sink", want), Some(want));
    // The caller (the pipeline's publisher) is left as it was.
    assert_eq!(this_thread_nice().unwrap(), before);
    assert!(!this_thread_sched_idle());
    sink.finish().unwrap().close();
}

/// One test for both cases: the threads are found by name, so two outboxes must not run at once.
#[test]
fn outbox_threads_run_under_sched_idle_or_at_the_nice_value() {
    let s = OutboxSettings::default();
    assert!(s.sched_idle);
    threads_run_as(s, (SCHED_IDLE, 0));
    threads_run_as(
        OutboxSettings {
            sched_idle: false,
            nice: 7,
            ..Default::default()
        },
        (SCHED_OTHER, 7),
    );
}

#[test]
fn nice_out_of_range_is_refused() {
    let settings = OutboxSettings {
        nice: 20,
        ..Default::default()
    };
    let e = settings.validate().unwrap_err().to_string();
    assert!(e.contains("nice"), "{e}");
}
