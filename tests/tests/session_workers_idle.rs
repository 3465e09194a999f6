//! The worker pool of a session with several threads sleeps between runs: after the workers'
//! short spin they are in state `S` and gain no CPU time; they end with the session. Its own
//! process (no other session's workers in `/proc/self/task`).

use outpost_kernels::Tier;
use outpost_models::Model;
use outpost_models::zoo::{MobileNetV2, synth_mobilenet_v2};
use outpost_runtime::{Session, SessionOptions};

/// `(state, utime + stime)` of every `outpost-worker-*` thread of this process.
fn workers() -> Vec<(char, u64)> {
    let mut out = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let dir = task.unwrap().path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if !comm.starts_with("outpost-worker") {
            continue;
        }
        let stat = std::fs::read_to_string(dir.join("stat")).unwrap();
        // Fields after the parenthesised name: state, …, utime (14th field), stime (15th).
        let rest: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
        let state = rest[0].chars().next().unwrap();
        let cpu = rest[11].parse::<u64>().unwrap() + rest[12].parse::<u64>().unwrap();
        out.push((state, cpu));
    }
    out
}

#[test]
fn workers_sleep_between_runs() {
    let cfg = MobileNetV2 {
        width: 0.35,
        size: 96,
        ..Default::default()
    };
    let model = Model::from_bytes(synth_mobilenet_v2(&cfg).unwrap().build().unwrap()).unwrap();
    let mut s = Session::new(
        &model,
        SessionOptions {
            tier: Tier::supported().last(),
            threads: 3,
        },
    )
    .unwrap();
    assert!(s.split_steps() > 0);
    for _ in 0..20 {
        s.input_i8(0).unwrap().fill(3);
        s.run();
    }
    // Past the workers' spin (200 µs; on a loaded machine a worker may still wait for a CPU
    // to get there), every worker asleep, then a quarter second idle.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut before = workers();
    while before.iter().any(|(state, _)| *state != 'S') && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
        before = workers();
    }
    assert_eq!(before.len(), 2, "{before:?}");
    assert!(
        before.iter().all(|(state, _)| *state == 'S'),
        "idle workers sleep: {before:?}"
    );
    std::thread::sleep(std::time::Duration::from_millis(250));
    let after = workers();
    for ((_, t0), (state, t1)) in before.iter().zip(&after) {
        assert_eq!(*state, 'S', "an idle worker stays asleep: {after:?}");
        // Clock ticks (usually 100/s): a spinning worker would gain ~25.
        assert!(t1 - t0 <= 2, "an idle worker used {} ticks of CPU", t1 - t0);
    }
    drop(s);
    assert!(workers().is_empty(), "the workers end with the session");
}
