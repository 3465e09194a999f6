//! `Pipeline::set_placement`: busy inference and publisher threads, pinned where the placement
//! says, publish every frame in order, and the caller's thread gets its own CPU set back.
//!
//! Its own process (an integration test file, no other pipeline in it): the threads are found by name in
//! `/proc/self/task`, where no other test's pipeline may run at the same time.

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use outpost_runtime::SessionOptions;
use outpost_runtime::affinity;
use outpost_runtime::pipeline::{ImageSource, Pipeline, Placement, Policy, StreamConfig, name};
// The support module names `super::RgbImage`.
use outpost_runtime::preprocess::RgbImage;

#[path = "support/tiny_ssd.rs"]
#[allow(dead_code, clippy::too_many_arguments)]
mod tiny_ssd;

/// `Cpus_allowed_list` of every thread of this process whose name starts with `prefix`.
fn allowed_lists(prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let dir = task.unwrap().path();
        let Ok(comm) = std::fs::read_to_string(dir.join("comm")) else {
            continue; // the thread ended meanwhile
        };
        if !comm.starts_with(prefix) {
            continue;
        }
        let status = std::fs::read_to_string(dir.join("status")).unwrap_or_default();
        if let Some(l) = status.lines().find(|l| l.starts_with("Cpus_allowed_list:")) {
            out.push(l["Cpus_allowed_list:".len()..].trim().to_string());
        }
    }
    out
}

fn own_allowed_list() -> String {
    let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
    let l = status
        .lines()
        .find(|l| l.starts_with("Cpus_allowed_list:"))
        .unwrap();
    l["Cpus_allowed_list:".len()..].trim().to_string()
}

#[test]
fn busy_pinned_pipeline_publishes_every_frame_from_its_cpus() {
    let cpus = affinity::current_thread_cpus().unwrap();
    let (first, last) = (cpus[0], *cpus.last().unwrap());
    let before = own_allowed_list();
    let model = tiny_ssd::tiny_ssd(32, 0, 8, 0.3);
    let images: Vec<_> = (0..3u32)
        .map(|i| (name(&format!("img{i}")), tiny_ssd::frame(80, 64, i)))
        .collect();
    let mut p = Pipeline::new();
    p.set_placement(Placement {
        busy: true,
        infer: vec![last],
        capture: vec![first],
        publish: Some(first),
    })
    .unwrap();
    let m = p
        .add_model("pinned", &model, SessionOptions::default())
        .unwrap();
    let source = ImageSource::from_images(images)
        .unwrap()
        .looping(true)
        .with_fps(500.0);
    p.add_stream(
        StreamConfig::new("cam", Box::new(source), m)
            .policy(Policy::Block(Duration::from_secs(10)))
            .max_frames(Some(200)),
    )
    .unwrap();
    let stop = AtomicBool::new(false);
    let mut seqs = Vec::new();
    let mut seen = None;
    let report = p.run(&stop, |r| {
        if seqs.is_empty() {
            seen = Some((
                allowed_lists("outpost-infer"),
                allowed_lists("outpost-captur"),
                own_allowed_list(),
            ));
        }
        seqs.push(r.meta.seq);
    });
    let (infer, capture, publisher) = seen.expect("a frame was published");
    assert_eq!(infer, [last.to_string()], "inference thread");
    assert_eq!(capture, [first.to_string()], "capture thread");
    assert_eq!(
        publisher,
        first.to_string(),
        "publisher (the caller's thread)"
    );
    assert_eq!(own_allowed_list(), before, "the caller's CPU set is back");
    let c = report.streams[0].counters;
    assert_eq!((c.captured, c.inferred, c.published), (200, 200, 200));
    assert_eq!(c.dropped_total(), 0);
    assert_eq!(seqs, (0..200).collect::<Vec<u64>>());
}

#[test]
fn a_cpu_the_process_may_not_use_is_refused() {
    let cpus = affinity::current_thread_cpus().unwrap();
    let missing = cpus.last().unwrap() + 1;
    let mut p = Pipeline::new();
    let e = p
        .set_placement(Placement {
            infer: vec![missing],
            ..Placement::default()
        })
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with(&format!("inference CPU {missing} is not available")),
        "{e}"
    );
}
