//! Loading maps the file and borrows the weights: a counting allocator shows that the bytes
//! allocated while opening a model are a small fraction of its weight bytes.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use outpost_models::Model;
use outpost_models::zoo::{MobileNetV2, synth_mobilenet_v2};

struct Counting;

static BYTES: AtomicU64 = AtomicU64::new(0);
static CALLS: AtomicU64 = AtomicU64::new(0);
/// The counters are global: tests that read them run one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

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
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mnv2.safetensors");
    synth_mobilenet_v2(&MobileNetV2::default())
        .unwrap()
        .write(&path)
        .unwrap();

    let before = BYTES.load(Ordering::Relaxed);
    let calls_before = CALLS.load(Ordering::Relaxed);
    let model = Model::open(&path).expect("valid model");
    let allocated = BYTES.load(Ordering::Relaxed) - before;
    let calls = CALLS.load(Ordering::Relaxed) - calls_before;

    let weights = model.report().tensor_bytes;
    let header = model.report().file_bytes - weights;
    assert!(model.report().mapped);
    assert!(model.report().copied.is_empty());
    assert!(weights > 3_000_000, "weights {weights}");
    // Opening allocates in proportion to the header (the graph JSON is parsed twice, through
    // serde's buffered `flatten` in safetensors and then into the graph: about 13× its size),
    // never in proportion to the weights.
    eprintln!(
        "open: {allocated} bytes in {calls} allocations; header {header} bytes, weights {weights} bytes"
    );
    assert!(
        allocated < 16 * header,
        "allocated {allocated} bytes for a {header}-byte header"
    );
    assert!(
        allocated * 5 < weights,
        "allocated {allocated} bytes for {weights} weight bytes"
    );

    // The views point into the map: reading them allocates nothing.
    let before = BYTES.load(Ordering::Relaxed);
    let total: i64 = model
        .tensors()
        .filter(|t| t.dtype() == outpost_hal::DType::I8)
        .map(|t| t.as_i8().unwrap())
        .map(|w| w.iter().map(|&v| v as i64).sum::<i64>())
        .sum();
    assert_eq!(BYTES.load(Ordering::Relaxed) - before, 0);
    assert_ne!(total, 0);
}

#[test]
fn allocation_does_not_grow_with_weights() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // Same graph, over 100× the weight bytes: the bytes allocated by opening stay the same.
    let dir = tempfile::tempdir().unwrap();
    let open = |channels: usize| {
        let path = dir.path().join(format!("tiny{channels}.safetensors"));
        outpost_tests::tiny_model(channels).write(&path).unwrap();
        let before = BYTES.load(Ordering::Relaxed);
        let m = Model::open(&path).unwrap();
        (
            BYTES.load(Ordering::Relaxed) - before,
            m.report().tensor_bytes,
        )
    };
    let (small_alloc, small_w) = open(64);
    let (big_alloc, big_w) = open(1024);
    eprintln!(
        "64 ch: {small_alloc} B for {small_w} B of weights; 1024 ch: {big_alloc} B for {big_w} B"
    );
    assert!(big_w > 100 * small_w);
    assert!(
        big_alloc < small_alloc + small_alloc / 2,
        "{small_alloc} -> {big_alloc}"
    );
    assert!(
        big_alloc * 30 < big_w,
        "{big_alloc} bytes allocated for {big_w} weight bytes"
    );
}
