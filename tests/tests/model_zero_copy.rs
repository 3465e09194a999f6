//! Loading maps the file and borrows the weights: a counting allocator shows that the bytes
//! allocated while opening a model are a small fraction of its weight bytes.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use outpost_models::Model;
use outpost_models::zoo::{MobileNetV2, synth_mobilenet_v2};

struct Counting;

static BYTES: AtomicU64 = AtomicU64::new(0);
static CALLS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        CALLS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        BYTES.fetch_add(new_size as u64, Ordering::Relaxed);
        CALLS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn loading_does_not_copy_weights() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mnv2.safetensors");
    synth_mobilenet_v2(&MobileNetV2::default()).unwrap().write(&path).unwrap();

    let before = BYTES.load(Ordering::Relaxed);
    let calls_before = CALLS.load(Ordering::Relaxed);
    let model = Model::open(&path).expect("valid model");
    let allocated = BYTES.load(Ordering::Relaxed) - before;
    let calls = CALLS.load(Ordering::Relaxed) - calls_before;

    let weights = model.report().tensor_bytes;
    assert!(model.report().mapped);
    assert!(model.report().copied.is_empty());
    assert!(weights > 3_000_000, "weights {weights}");
    // Metadata parsing allocates in proportion to the header (graph JSON), never the weights.
    assert!(allocated * 10 < weights, "allocated {allocated} bytes in {calls} calls for {weights} weight bytes");
    eprintln!("open: {allocated} bytes in {calls} allocations for {weights} weight bytes");

    // The views point into the map: reading them allocates nothing.
    let before = BYTES.load(Ordering::Relaxed);
    let total: i64 = model.tensors().filter_map(|t| t.as_i8().ok()).map(|w| w.iter().map(|&v| v as i64).sum::<i64>()).sum();
    assert_eq!(BYTES.load(Ordering::Relaxed) - before, 0);
    assert_ne!(total, 0);
}
