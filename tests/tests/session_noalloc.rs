//! `Session::run` performs zero heap allocations: a counting global allocator over 1,000 runs
//! of a real multi-op graph (MobileNetV2: conv, depthwise, add, mean, fully connected).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use outpost_models::Model;
use outpost_models::zoo::{MobileNetV2, synth_mobilenet_v2};
use outpost_runtime::{Session, SessionOptions};

struct Counting;

static CALLS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        CALLS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        CALLS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn run_allocates_nothing_over_1000_frames() {
    let cfg = MobileNetV2 {
        width: 0.35,
        size: 64,
        ..Default::default()
    };
    let model = Model::from_bytes(synth_mobilenet_v2(&cfg).unwrap().build().unwrap()).unwrap();
    let mut session = Session::new(&model, SessionOptions::default()).unwrap();
    assert!(session.plan().steps.len() > 50);
    let mut checksum = 0i64;
    let before = CALLS.load(Ordering::Relaxed);
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
    let allocs = CALLS.load(Ordering::Relaxed) - before;
    assert_eq!(allocs, 0, "{allocs} heap allocations in 1000 runs");
    assert_ne!(checksum, 0);
}
