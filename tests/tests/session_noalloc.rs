//! `Session::run` performs zero heap allocations: a counting global allocator over 1,000 runs
//! of a real multi-op graph (MobileNetV2: conv, depthwise, add, mean, fully connected), on one
//! thread and split across two (the worker pool counts: it is in this process; on two
//! threads some steps run in chains), and of the real BlazeFace f32 split across two.

use outpost_models::Model;
use outpost_models::zoo::{MobileNetV2, synth_mobilenet_v2};
use outpost_runtime::{Session, SessionOptions};
use outpost_tests::alloc_count::{self, Counting};

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn run_allocates_nothing_over_1000_frames() {
    for threads in [1, 2] {
        runs_allocate_nothing(threads);
    }
    f32_runs_allocate_nothing_split_across_two_threads();
}

fn runs_allocate_nothing(threads: usize) {
    let cfg = MobileNetV2 {
        width: 0.5,
        size: 128,
        ..Default::default()
    };
    let model = Model::from_bytes(synth_mobilenet_v2(&cfg).unwrap().build().unwrap()).unwrap();
    let mut session = Session::new(
        &model,
        SessionOptions {
            threads,
            ..SessionOptions::default()
        },
    )
    .unwrap();
    assert!(session.plan().steps.len() > 50);
    assert_eq!(session.threads(), threads);
    if threads > 1 {
        assert!(session.split_steps() > 0, "no step split");
        let steps = session.plan().steps.len();
        assert!(
            (0..steps).any(|i| session.chain(i).is_some()),
            "no chain of steps (the depthwise and pointwise convolutions of a block)"
        );
    }
    let mut checksum = 0i64;
    let before = alloc_count::calls();
    for frame in 0..1000 {
        let input = session.input_i8(0).unwrap();
        for (i, v) in input.iter_mut().enumerate() {
            *v = ((i + frame) % 251) as i8;
        }
        session.run();
        checksum += session
            .output_i8(0)
            .unwrap()
            .iter()
            .map(|&v| v as i64)
            .sum::<i64>();
    }
    let allocs = alloc_count::calls() - before;
    assert_eq!(
        allocs, 0,
        "{threads} thread(s): {allocs} heap allocations in 1000 runs"
    );
    assert_ne!(checksum, 0);
}

/// The f32 path too: real BlazeFace f32 (f32 convolutions and depthwise convolutions split
/// across two threads, adds, pads, pools, concatenations), 1,000 runs. Called from the test
/// above: the counter is the whole process's, so no other test may run beside it.
fn f32_runs_allocate_nothing_split_across_two_threads() {
    let model = Model::open(outpost_tests::model_file("blazeface-short-f32.safetensors")).unwrap();
    let mut session = Session::new(
        &model,
        SessionOptions {
            threads: 2,
            ..SessionOptions::default()
        },
    )
    .unwrap();
    assert!(session.split_steps() > 0, "no step split");
    let mut checksum = 0f64;
    let before = alloc_count::calls();
    for frame in 0..1000 {
        for (i, v) in session.input_f32(0).unwrap().iter_mut().enumerate() {
            *v = ((i + frame) % 251) as f32 / 125.0 - 1.0;
        }
        session.run();
        checksum += session
            .output_f32(0)
            .unwrap()
            .iter()
            .map(|&v| v as f64)
            .sum::<f64>();
    }
    let allocs = alloc_count::calls() - before;
    assert_eq!(allocs, 0, "{allocs} heap allocations in 1000 f32 runs");
    assert_ne!(checksum, 0.0);
}
