//! Publishing allocates nothing per result: a counting global allocator watches every thread
//! (publisher, the server's I/O thread, receiving clients) over thousands of publishes, small
//! and full-size, with filtering and non-filtering subscribers connected.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use outpost_runtime::ipc::proto::{
    self, BBox, ClientMsg, Detection, Hello, MAX_CLIENT_MSG, Name, PROTOCOL_VERSION, Point,
    ResultMsg, ServerMsg, Subscribe,
};
use outpost_runtime::ipc::{ResultServer, SeqPacket, ServerConfig};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static COUNTING: AtomicBool = AtomicBool::new(false);

// SAFETY: forwards every call unchanged to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const PUBLISHES: u64 = 5_000;
/// Results received per subscriber; the publisher stays within the queue of the slowest, so
/// nothing is dropped and every client must see every result.
static PROGRESS: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];

fn subscriber(path: &std::path::Path, sub: Subscribe, id: usize) -> std::thread::JoinHandle<u64> {
    let sock = SeqPacket::connect(path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut out = [0u8; MAX_CLIENT_MSG];
    let hello = ClientMsg::Hello(Hello {
        version: PROTOCOL_VERSION,
        capabilities: proto::caps::ALL_V1,
        client_name: Name::new(),
    });
    let n = hello.encode(&mut out).unwrap();
    sock.send(&out[..n]).unwrap();
    let n = ClientMsg::Subscribe(sub).encode(&mut out).unwrap();
    sock.send(&out[..n]).unwrap();
    // Buffers are made before counting starts; decoding into heapless types never allocates.
    let mut buf = vec![0u8; proto::MAX_PACKET];
    let mut seen = 0u64;
    let mut subscribed = false;
    std::thread::spawn(move || {
        loop {
            let n = sock.recv(&mut buf).unwrap();
            assert!(n > 0, "server closed");
            // Packets may carry several messages; decoding into heapless types never allocates.
            for msg in ServerMsg::packet(&buf[..n]) {
                match msg.unwrap() {
                    ServerMsg::Hello(_) => {}
                    ServerMsg::Subscribed => subscribed = true,
                    ServerMsg::Result(r) => {
                        assert!(subscribed);
                        assert_eq!(r.seq, seen, "in order, nothing lost");
                        seen += 1;
                        PROGRESS[id].store(seen, Ordering::Release);
                        if seen == PUBLISHES {
                            return seen;
                        }
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
    })
}

fn result(seq: u64) -> ResultMsg {
    let mut r = ResultMsg {
        stream: 0,
        seq,
        ..Default::default()
    };
    r.model.id = Name::truncating("m");
    let n = if seq.is_multiple_of(2) {
        proto::MAX_DETECTIONS
    } else {
        1
    };
    for i in 0..n {
        let mut d = Detection {
            class: (i % 4) as u16,
            score: (i % 10) as f32 / 10.0,
            bbox: BBox {
                x_min: 0.0,
                y_min: 0.0,
                x_max: 1.0,
                y_max: 1.0,
            },
            ..Default::default()
        };
        d.keypoints.push(Point { x: 0.1, y: 0.2 }).unwrap();
        r.detections.push(d).unwrap();
    }
    r
}

#[test]
fn publishing_allocates_nothing_per_result() {
    // The counter works.
    COUNTING.store(true, Ordering::SeqCst);
    drop(std::hint::black_box(vec![1u8; 16]));
    COUNTING.store(false, Ordering::SeqCst);
    assert!(ALLOCS.swap(0, Ordering::SeqCst) >= 1);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.sock");
    let config = ServerConfig {
        queue_capacity: 1024,
        handoff_capacity: 1024,
        ..Default::default()
    };
    let server = ResultServer::bind(&path, config).unwrap();
    let all = subscriber(&path, Subscribe::all(), 0);
    let mut filtered = Subscribe::all();
    filtered.min_score = 0.5;
    filtered.keypoints = false;
    let filtering = subscriber(&path, filtered, 1);
    // Let both handshakes finish (the server allocates per connection, not per result).
    while server.status().clients < 2 {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(50));
    let publisher = server.publisher();
    let mut msgs = [Box::new(result(0)), Box::new(result(1))];

    COUNTING.store(true, Ordering::SeqCst);
    for seq in 0..PUBLISHES {
        let msg = &mut msgs[(seq % 2) as usize];
        msg.seq = seq;
        while publisher.publish_now(msg).is_err() {
            // Backlogged (the I/O thread shares two cores with us): retry, still no allocation.
            std::thread::yield_now();
        }
        while PROGRESS
            .iter()
            .any(|p| seq - p.load(Ordering::Acquire).min(seq) > 256)
        {
            std::thread::yield_now();
        }
    }
    // Wait for both clients to have received everything, still counting.
    while !(all.is_finished() && filtering.is_finished()) {
        std::thread::sleep(Duration::from_millis(1));
    }
    COUNTING.store(false, Ordering::SeqCst);
    let allocs = ALLOCS.load(Ordering::SeqCst);

    assert_eq!(all.join().unwrap(), PUBLISHES);
    assert_eq!(filtering.join().unwrap(), PUBLISHES);
    assert_eq!(server.status().published, PUBLISHES);
    assert_eq!(allocs, 0, "{allocs} allocations over {PUBLISHES} publishes");
}
