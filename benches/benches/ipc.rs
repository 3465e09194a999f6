//! IPC benchmark: publish → client receive latency and results per second through the real
//! result server, measured in the same run as a raw `SOCK_SEQPACKET` baseline.
//!
//! `cargo bench -p outpost-benches --bench ipc` (set `IPC_BENCH_QUICK=1` for a short run).
//! Latency is one-way, from just before `Publisher::publish` to just after the client has the
//! decoded message, one message in flight at a time (the receiver acknowledges each one on a
//! side channel so no queue builds up). The raw baseline does the same with a 64-byte packet
//! on a socket pair, and also reports the 64-byte echo round trip of DESIGN.md §9.
//! Throughput: the publisher publishes as fast as the server accepts (retrying when
//! backlogged); every client must receive every result; results/s = results / time until the
//! last client has them all.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Instant;

use outpost_runtime::affinity::pin_current_thread;
use outpost_runtime::ipc::proto::{
    self, BBox, ClientMsg, Detection, Hello, MAX_CLIENT_MSG, MAX_SERVER_MSG, Name,
    PROTOCOL_VERSION, Point, ResultMsg, ServerMsg, Subscribe,
};
use outpost_runtime::ipc::{ResultServer, SeqPacket, ServerConfig};

/// A fresh socket path under the temporary directory (removed by the server on drop).
fn socket_path() -> std::path::PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("outpost-ipc-bench-{}-{n}.sock", std::process::id()))
}

fn quick() -> bool {
    std::env::var_os("IPC_BENCH_QUICK").is_some()
}

struct Stats {
    p50: f64,
    p99: f64,
    mean: f64,
}

fn stats(mut ns: Vec<u64>) -> Stats {
    ns.sort_unstable();
    let at = |q: f64| ns[((ns.len() as f64 - 1.0) * q).round() as usize] as f64 / 1000.0;
    let mean = ns.iter().sum::<u64>() as f64 / ns.len() as f64 / 1000.0;
    Stats {
        p50: at(0.50),
        p99: at(0.99),
        mean,
    }
}

fn small_result() -> ResultMsg {
    let mut r = ResultMsg {
        stream: 0,
        seq: 0,
        ..Default::default()
    };
    r.model.id = Name::truncating("blazeface-short");
    r.model.version = 1;
    r.detections
        .push(Detection {
            class: 0,
            score: 0.93,
            bbox: BBox {
                x_min: 0.1,
                y_min: 0.2,
                x_max: 0.3,
                y_max: 0.4,
            },
            ..Default::default()
        })
        .unwrap();
    r
}

fn full_result() -> ResultMsg {
    let mut r = small_result();
    r.detections.clear();
    for i in 0..proto::MAX_DETECTIONS {
        let mut d = Detection {
            class: (i % 80) as u16,
            score: 0.5 + i as f32 / 400.0,
            bbox: BBox {
                x_min: 0.1,
                y_min: 0.2,
                x_max: 0.3,
                y_max: 0.4,
            },
            ..Default::default()
        };
        for k in 0..proto::MAX_KEYPOINTS {
            d.keypoints
                .push(Point {
                    x: k as f32 * 0.1,
                    y: 0.5,
                })
                .unwrap();
        }
        r.detections.push(d).unwrap();
    }
    r
}

fn encoded_len(r: &ResultMsg) -> usize {
    let mut buf = vec![0u8; MAX_SERVER_MSG];
    proto::encode_result(r, &mut buf).unwrap()
}

/// Handshake and subscribe a raw client.
fn subscriber(path: &std::path::Path) -> SeqPacket {
    let sock = SeqPacket::connect(path).unwrap();
    sock.set_recv_buffer(4 << 20).unwrap();
    let mut out = [0u8; MAX_CLIENT_MSG];
    let hello = ClientMsg::Hello(Hello {
        version: PROTOCOL_VERSION,
        capabilities: proto::caps::ALL_V1,
        client_name: Name::truncating("bench"),
    });
    let n = hello.encode(&mut out).unwrap();
    sock.send(&out[..n]).unwrap();
    let n = ClientMsg::Subscribe(Subscribe::all())
        .encode(&mut out)
        .unwrap();
    sock.send(&out[..n]).unwrap();
    let mut buf = vec![0u8; proto::MAX_PACKET];
    loop {
        let n = sock.recv(&mut buf).unwrap();
        if ServerMsg::packet(&buf[..n]).any(|m| m.unwrap() == ServerMsg::Subscribed) {
            return sock;
        }
    }
}

fn raw_round_trip(iters: usize) -> Stats {
    let (a, b) = SeqPacket::pair().unwrap();
    let echo = std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        while let Ok(n) = b.recv(&mut buf) {
            if n == 0 || b.send(&buf[..n]).is_err() {
                break;
            }
        }
    });
    let mut buf = [7u8; 64];
    let mut ns = Vec::with_capacity(iters);
    for i in 0..iters + iters / 10 {
        let t = Instant::now();
        a.send(&buf).unwrap();
        a.recv(&mut buf).unwrap();
        if i >= iters / 10 {
            ns.push(t.elapsed().as_nanos() as u64);
        }
    }
    drop(a);
    echo.join().unwrap();
    stats(ns)
}

/// Runs `f` on a new thread pinned to `cpu` (if any), so that the caller's thread keeps its
/// affinity.
fn on_cpu<T: Send>(cpu: Option<usize>, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            if let Some(cpu) = cpu {
                pin_current_thread(cpu).expect("pin the bench thread");
            }
            f()
        })
        .join()
        .unwrap()
    })
}

/// One-way latency of a raw packet of `size` bytes, one in flight. `cpu`: every thread on
/// that CPU.
fn raw_one_way(iters: usize, size: usize, cpu: Option<usize>) -> Stats {
    on_cpu(cpu, || raw_one_way_here(iters, size, cpu))
}

fn raw_one_way_here(iters: usize, size: usize, cpu: Option<usize>) -> Stats {
    let (tx, rx) = SeqPacket::pair().unwrap();
    let (ack_tx, ack_rx) = SeqPacket::pair().unwrap();
    let base = Instant::now();
    let total = iters + iters / 10;
    let receiver = std::thread::spawn(move || {
        if let Some(cpu) = cpu {
            pin_current_thread(cpu).expect("pin the receiver");
        }
        let mut buf = vec![0u8; size.max(8)];
        let mut ns = Vec::with_capacity(total);
        for _ in 0..total {
            rx.recv(&mut buf).unwrap();
            let now = base.elapsed().as_nanos() as u64;
            let sent = u64::from_le_bytes(buf[..8].try_into().unwrap());
            ns.push(now - sent);
            ack_tx.send(&[1]).unwrap();
        }
        ns
    });
    let mut buf = vec![0u8; size.max(8)];
    let mut ack = [0u8; 1];
    for _ in 0..total {
        let t = base.elapsed().as_nanos() as u64;
        buf[..8].copy_from_slice(&t.to_le_bytes());
        tx.send(&buf).unwrap();
        ack_rx.recv(&mut ack).unwrap();
    }
    let ns = receiver.join().unwrap();
    stats(ns[iters / 10..].to_vec())
}

/// One-way publish → decoded-at-client latency through the server, one result in flight.
/// `cpu`: the publisher, the server's I/O thread (`ServerConfig::io_cpu`) and the client all
/// on that CPU.
fn ipc_one_way(iters: usize, template: &ResultMsg, cpu: Option<usize>) -> Stats {
    on_cpu(cpu, || ipc_one_way_here(iters, template, cpu))
}

fn ipc_one_way_here(iters: usize, template: &ResultMsg, cpu: Option<usize>) -> Stats {
    let path = socket_path();
    let config = ServerConfig {
        io_cpu: cpu,
        ..Default::default()
    };
    let server = ResultServer::bind(&path, config).unwrap();
    let sock = subscriber(&path);
    let (ack_tx, ack_rx) = SeqPacket::pair().unwrap();
    let base = Instant::now();
    let total = iters + iters / 10;
    let receiver = std::thread::spawn(move || {
        if let Some(cpu) = cpu {
            pin_current_thread(cpu).expect("pin the client");
        }
        let mut buf = vec![0u8; proto::MAX_PACKET];
        let mut msg = Box::new(ServerMsg::Subscribed);
        let mut ns = Vec::with_capacity(total);
        for _ in 0..total {
            let n = sock.recv(&mut buf).unwrap();
            let rest = ServerMsg::decode_prefix_into(&buf[..n], &mut msg).unwrap();
            assert!(rest.is_empty(), "one message per packet");
            let now = base.elapsed().as_nanos() as u64;
            let ServerMsg::Result(r) = &*msg else {
                panic!("unexpected {msg:?}")
            };
            ns.push(now - r.capture_ns);
            ack_tx.send(&[1]).unwrap();
        }
        ns
    });
    let publisher = server.publisher();
    let mut msg = Box::new(template.clone());
    let mut ack = [0u8; 1];
    for seq in 0..total as u64 {
        msg.seq = seq;
        msg.capture_ns = base.elapsed().as_nanos() as u64;
        publisher.publish(&msg).unwrap();
        ack_rx.recv(&mut ack).unwrap();
    }
    let ns = receiver.join().unwrap();
    stats(ns[iters / 10..].to_vec())
}

/// Results per second delivered to each of `clients` clients, with nothing lost: the publisher
/// publishes as fast as it can but stays within the per-client queue of the slowest client
/// (the server itself never pushes back; without this the excess is dropped and counted).
fn ipc_throughput(clients: usize, results: u64, template: &ResultMsg) -> (f64, u64) {
    const QUEUE: u64 = 4096;
    let path = socket_path();
    let config = ServerConfig {
        queue_capacity: QUEUE as usize,
        handoff_capacity: 1024,
        client_send_buffer: Some(4 << 20),
        ..Default::default()
    };
    let server = ResultServer::bind(&path, config).unwrap();
    let start = Arc::new(Barrier::new(clients + 1));
    let missed = Arc::new(AtomicU64::new(0));
    let progress: Arc<Vec<AtomicU64>> = Arc::new((0..clients).map(|_| AtomicU64::new(0)).collect());
    let handles: Vec<_> = (0..clients)
        .map(|i| {
            let sock = subscriber(&path);
            let start = Arc::clone(&start);
            let missed = Arc::clone(&missed);
            let progress = Arc::clone(&progress);
            std::thread::spawn(move || {
                let mut buf = vec![0u8; proto::MAX_PACKET];
                let mut msg = Box::new(ServerMsg::Subscribed);
                start.wait();
                let mut got = 0u64;
                while got < results {
                    let n = sock.recv(&mut buf).unwrap();
                    // Decode every message, as a real client would: into one reused message
                    // (`next_into`, what `Client::recv_into` does).
                    let mut packet = ServerMsg::packet(&buf[..n]);
                    while let Some(decoded) = packet.next_into(&mut msg) {
                        decoded.unwrap();
                        match &*msg {
                            ServerMsg::Result(_) => got += 1,
                            ServerMsg::Missed(m) => {
                                missed.fetch_add(u64::from(m.count), Ordering::Relaxed);
                                got += u64::from(m.count);
                            }
                            other => panic!("unexpected {other:?}"),
                        }
                    }
                    progress[i].store(got, Ordering::Release);
                }
                Instant::now()
            })
        })
        .collect();
    let publisher = server.publisher();
    let mut msg = Box::new(template.clone());
    start.wait();
    let t0 = Instant::now();
    for seq in 0..results {
        while progress
            .iter()
            .any(|p| seq - p.load(Ordering::Acquire).min(seq) >= QUEUE / 2)
        {
            std::thread::yield_now();
        }
        msg.seq = seq;
        while publisher.publish(&msg).is_err() {
            std::thread::yield_now();
        }
    }
    let end = handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .max()
        .unwrap();
    let secs = (end - t0).as_secs_f64();
    (results as f64 / secs, missed.load(Ordering::Relaxed))
}

/// Mean cost of one `publish` call (encode into a slot + hand-off), no clients connected.
fn publish_cost(iters: u64, template: &ResultMsg) -> f64 {
    let path = socket_path();
    let server = ResultServer::bind(&path, ServerConfig::default()).unwrap();
    let publisher = server.publisher();
    let mut msg = Box::new(template.clone());
    let mut spent = std::time::Duration::ZERO;
    let mut done = 0u64;
    while done < iters {
        msg.seq = done;
        let t = Instant::now();
        let ok = publisher.publish(&msg).is_ok();
        let dt = t.elapsed();
        if ok {
            spent += dt;
            done += 1;
        } else {
            std::thread::yield_now();
        }
    }
    spent.as_nanos() as f64 / iters as f64
}

/// Raw baseline throughput: one sender, one receiver, 64-byte packets on a socket pair.
fn raw_throughput(packets: u64, size: usize) -> f64 {
    let (tx, rx) = SeqPacket::pair().unwrap();
    rx.set_recv_buffer(4 << 20).unwrap();
    tx.set_send_buffer(4 << 20).unwrap();
    let receiver = std::thread::spawn(move || {
        let mut buf = vec![0u8; size];
        for _ in 0..packets {
            rx.recv(&mut buf).unwrap();
        }
        Instant::now()
    });
    let buf = vec![0u8; size];
    let t0 = Instant::now();
    for _ in 0..packets {
        tx.send(&buf).unwrap();
    }
    let end = receiver.join().unwrap();
    packets as f64 / (end - t0).as_secs_f64()
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: run a smoke test.
    let bench = std::env::args().any(|a| a == "--bench");
    let (lat_iters, tput) = match (bench, quick()) {
        (false, _) => (200, 2_000),
        (true, true) => (5_000, 50_000),
        (true, false) => (50_000, 400_000),
    };
    let small = small_result();
    let full = full_result();
    println!("IPC benchmark ({lat_iters} latency samples, {tput} results per throughput run)");
    println!(
        "message sizes: small result {} B, full result (100 detections, 6 keypoints each) {} B",
        encoded_len(&small),
        encoded_len(&full)
    );
    let rtt = raw_round_trip(lat_iters);
    let raw64 = raw_one_way(lat_iters, 64, None);
    let raw_full = raw_one_way(lat_iters, encoded_len(&full), None);
    let ipc_small = ipc_one_way(lat_iters, &small, None);
    let ipc_full = ipc_one_way(lat_iters, &full, None);
    // Co-located: every thread of the path on one CPU (no cross-core wake-up).
    let pin = Some(0);
    let raw64_pinned = raw_one_way(lat_iters, 64, pin);
    let ipc_small_pinned = ipc_one_way(lat_iters, &small, pin);
    let ipc_full_pinned = ipc_one_way(lat_iters, &full, pin);
    println!("\nlatency (µs)                                 p50      p99     mean");
    let row = |name: &str, s: &Stats| {
        println!("{name:<42} {:>7.2}  {:>7.2}  {:>7.2}", s.p50, s.p99, s.mean)
    };
    row("raw seqpacket echo round trip, 64 B", &rtt);
    row("raw seqpacket one-way, 64 B", &raw64);
    row(
        &format!("raw seqpacket one-way, {} B", encoded_len(&full)),
        &raw_full,
    );
    row("IPC publish→client, small result", &ipc_small);
    row("IPC publish→client, full result", &ipc_full);
    println!(
        "ratio IPC small / raw one-way 64 B: p50 {:.2}x, p99 {:.2}x; vs raw round trip: p50 {:.2}x, p99 {:.2}x",
        ipc_small.p50 / raw64.p50,
        ipc_small.p99 / raw64.p99,
        ipc_small.p50 / rtt.p50,
        ipc_small.p99 / rtt.p99
    );
    println!(
        "ratio IPC full / raw one-way same size:  p50 {:.2}x, p99 {:.2}x",
        ipc_full.p50 / raw_full.p50,
        ipc_full.p99 / raw_full.p99
    );
    println!(
        "\nsame, every thread on CPU 0 (ServerConfig::io_cpu = 0, publisher and client pinned)"
    );
    row("raw seqpacket one-way, 64 B, CPU 0", &raw64_pinned);
    row("IPC publish→client, small result, CPU 0", &ipc_small_pinned);
    row("IPC publish→client, full result, CPU 0", &ipc_full_pinned);
    println!(
        "ratio IPC small / raw one-way 64 B on CPU 0: p50 {:.2}x, p99 {:.2}x",
        ipc_small_pinned.p50 / raw64_pinned.p50,
        ipc_small_pinned.p99 / raw64_pinned.p99
    );

    println!(
        "\npublish call (encode + hand-off), mean: small {:.0} ns, full {:.0} ns",
        publish_cost(tput, &small),
        publish_cost(tput / 4, &full)
    );
    println!("\nthroughput                                   results/s (per client)   missed");
    let raw_rate = raw_throughput(tput, 64);
    println!(
        "{:<42} {:>12.0}",
        "raw seqpacket stream, 64 B, 1 receiver", raw_rate
    );
    for (name, template) in [("small", &small), ("full", &full)] {
        for clients in [1, 8] {
            let n = if name == "full" { tput / 4 } else { tput };
            let (rate, missed) = ipc_throughput(clients, n, template);
            println!(
                "{:<42} {:>12.0}   {missed:>8}",
                format!("IPC {name} result, {clients} client(s)"),
                rate
            );
            if name == "small" && clients == 1 {
                println!(
                    "ratio IPC small 1 client / raw stream: {:.2}x",
                    rate / raw_rate
                );
            }
        }
    }
}
