//! Worker-pool benchmark: what handing one step of an inference to the threads costs.
//!
//! `cargo bench -p outpost-benches --bench pool`. Each iteration is one
//! [`WorkerPool::run`] of a job whose parts do (almost) nothing, back to back as the steps of
//! one inference are: the time is the hand-out and the wait for the last part, the fixed cost
//! a parallel step pays over running on one thread. `serial` is the same closure called on
//! the caller's thread alone, the floor.

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};

use criterion::{Criterion, criterion_group, criterion_main};
use outpost_runtime::pool::WorkerPool;

fn pool(c: &mut Criterion) {
    let mut g = c.benchmark_group("pool");
    let hits = AtomicUsize::new(0);
    let part = |p: usize, _t: usize| {
        hits.fetch_add(black_box(p) & 1, Ordering::Relaxed);
    };
    g.bench_function("serial_4_parts", |b| {
        b.iter(|| (0..4).for_each(|p| part(p, 0)))
    });
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
    let pool = WorkerPool::new(threads).expect("start the pool's workers");
    for parts in [threads, 2 * threads] {
        g.bench_function(format!("run_{threads}_threads_{parts}_parts"), |b| {
            b.iter(|| pool.run(parts, &part))
        });
    }
    // Parts of real length (a 14 × 14 layer's slice takes a few µs): the excess over the
    // serial time divided by the threads is what the hand-out and the wait cost.
    let work = |p: usize, _t: usize| {
        let start = std::time::Instant::now();
        while start.elapsed() < std::time::Duration::from_micros(5) {
            std::hint::spin_loop();
        }
        hits.fetch_add(black_box(p) & 1, Ordering::Relaxed);
    };
    g.bench_function("serial_4_busy_parts", |b| {
        b.iter(|| (0..4).for_each(|p| work(p, 0)))
    });
    g.bench_function(format!("run_{threads}_threads_4_busy_parts"), |b| {
        b.iter(|| pool.run(4, &work))
    });
    g.finish();
}

criterion_group!(benches, pool);
criterion_main!(benches);
