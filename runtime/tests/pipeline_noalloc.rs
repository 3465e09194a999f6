//! The pipeline's steady state allocates nothing: a counting global allocator over 1,200
//! frames flowing capture (copy into a slot) → preprocess → inference → decode → mapping to
//! source pixels → the publish callback, across the pipeline's threads, with sleeping and with
//! busy-polling threads.
//!
//! Start-up (threads, slots, queues) allocates; the window measured starts once frames flow.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use outpost_runtime::SessionOptions;
use outpost_runtime::pipeline::{ImageSource, Pipeline, Placement, Policy, StreamConfig, name};
// The support module names `super::RgbImage`.
use outpost_runtime::preprocess::RgbImage;

#[path = "support/tiny_ssd.rs"]
#[allow(dead_code, clippy::too_many_arguments)]
mod tiny_ssd;

struct Counting;

static CALLS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        CALLS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        CALLS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc_zeroed(layout) }
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

const WARMUP: u64 = 100;
const MEASURED: u64 = 1_200;

#[test]
fn pipeline_steady_state_allocates_nothing() {
    // The counter sees allocations (a control for the zero below).
    let before = CALLS.load(Ordering::SeqCst);
    drop(std::hint::black_box(Box::new(7u64)));
    assert!(CALLS.load(Ordering::SeqCst) > before);
    let model = tiny_ssd::tiny_ssd(32, 1, 8, 0.3);
    // Frames of three sizes (letterboxed differently), named like files.
    let images: Vec<_> = [(96u32, 64u32), (64, 96), (80, 80), (33, 17)]
        .iter()
        .enumerate()
        .map(|(i, &(w, h))| (name(&format!("frame{i}")), tiny_ssd::frame(w, h, i as u32)))
        .collect();
    // Each policy with sleeping threads, and `latest` with busy-polling ones (Placement::busy).
    for (policy, busy) in [
        (Policy::Latest, false),
        (Policy::DropOldest, false),
        (Policy::Block(std::time::Duration::from_secs(5)), false),
        (Policy::Latest, true),
    ] {
        let source = ImageSource::from_images(images.clone())
            .unwrap()
            .looping(true);
        let mut p = Pipeline::new();
        p.set_placement(Placement {
            busy,
            ..Placement::default()
        })
        .unwrap();
        let m = p
            .add_model("tiny", &model, SessionOptions::default())
            .unwrap();
        p.add_stream(StreamConfig::new("mem", Box::new(source), m).policy(policy))
            .unwrap();
        let stop = AtomicBool::new(false);
        let (mut n, mut start, mut end, mut detections) = (0u64, 0u64, 0u64, 0usize);
        let report = p.run(&stop, |r| {
            n += 1;
            detections += r.detections.len();
            if n == WARMUP {
                start = CALLS.load(Ordering::SeqCst);
            }
            if n == WARMUP + MEASURED {
                end = CALLS.load(Ordering::SeqCst);
                stop.store(true, Ordering::Release);
            }
        });
        let c = report.streams[0].counters;
        assert!(
            n >= WARMUP + MEASURED,
            "{policy:?} (busy: {busy}): only {n} frames published"
        );
        let allocs = end - start;
        assert!(detections > 0);
        assert_eq!(c.captured, c.inferred + c.dropped_total());
        assert_eq!(
            allocs, 0,
            "{policy:?} (busy: {busy}): {allocs} heap allocations in {MEASURED} frames ({c:?})"
        );
    }
}
