//! A persistent pool of worker threads for intra-op parallelism ([`crate::SessionOptions::threads`]).
//!
//! [`WorkerPool::run`] runs `f(part, thread)` for every part of a job, the parts claimed one at
//! a time by the caller's thread (thread 0) and the workers (threads 1 …), and returns when
//! all are done. A thread that is late (descheduled, or still waking) simply claims fewer parts:
//! the caller never waits for a part nobody has started. Nothing is allocated per call: the job
//! is a pointer to the caller's closure, published under a mutex with a generation count, and
//! each part is claimed by raising its own generation stamp (`fetch_max`).
//!
//! Each thread first claims its own run of parts (thread `t` of `T`: parts from `t·n/T` on),
//! then whatever the others left: when consecutive jobs cut their work the same way (the row
//! slices of consecutive layers), each thread keeps working on the rows it wrote in the step
//! before, which stay in its core's cache.
//!
//! Idle workers do not spin: after a job they busy-wait for the next one for at most
//! [`SPIN`] (the steps of one inference follow each other within microseconds, and waking a
//! sleeping thread costs more than that), then sleep on a condition variable until the next
//! job. Between inferences (a camera's frame interval) they sleep.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How long a worker (or the caller, waiting for the workers) busy-waits before sleeping.
pub const SPIN: Duration = Duration::from_micros(200);

/// The most threads a pool runs (the caller's included).
pub const MAX_THREADS: usize = 64;

/// The caller's closure with its lifetime erased. Only dereferenced between the job's
/// publication and the worker's completion count, while [`WorkerPool::run`] waits.
#[derive(Clone, Copy)]
struct JobRef(*const (dyn Fn(usize, usize) + Sync + 'static));

// SAFETY: the pointee is `Sync` (callable from any thread through a shared reference), and
// `run` keeps it alive until every worker has finished with it.
unsafe impl Send for JobRef {}

struct State {
    generation: u64,
    job: Option<JobRef>,
    /// Parts of the job (read with it, under the lock, so that a worker late from an earlier
    /// job never pairs that job with this count).
    parts: usize,
    shutdown: bool,
    /// Workers waiting on `wake`.
    sleepers: usize,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    /// `state.generation`, for workers that spin.
    generation: AtomicU64,
    /// Per part: the generation of the last job that claimed it (a part of job `g` is free
    /// while its stamp is below `g`).
    taken: [AtomicU64; MAX_PARTS],
    /// Parts (or, at start-up, workers) not finished yet.
    remaining: AtomicUsize,
    done_lock: Mutex<()>,
    done: Condvar,
    /// A worker's part panicked during the current job.
    panicked: AtomicBool,
    /// Threads, the caller's included.
    threads: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic never happens while the lock is held (parts run outside it).
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `threads − 1` workers; the caller's thread is the first.
pub struct WorkerPool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for WorkerPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerPool")
            .field("threads", &self.threads())
            .finish()
    }
}

impl WorkerPool {
    /// A pool of `threads` (1 ..= [`MAX_THREADS`], the caller's thread counted), its workers
    /// named `outpost-worker-N`.
    ///
    /// # Errors
    /// A worker thread could not be started.
    ///
    /// # Panics
    /// `threads` is 0 or above [`MAX_THREADS`].
    pub fn new(threads: usize) -> std::io::Result<WorkerPool> {
        assert!(
            (1..=MAX_THREADS).contains(&threads),
            "pool: 1 to {MAX_THREADS} threads"
        );
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                generation: 0,
                job: None,
                parts: 0,
                shutdown: false,
                sleepers: 0,
            }),
            wake: Condvar::new(),
            generation: AtomicU64::new(0),
            taken: [const { AtomicU64::new(0) }; MAX_PARTS],
            remaining: AtomicUsize::new(0),
            done_lock: Mutex::new(()),
            done: Condvar::new(),
            panicked: AtomicBool::new(false),
            threads,
        });
        let mut pool = WorkerPool {
            shared,
            workers: Vec::with_capacity(threads - 1),
        };
        // Each worker counts itself in once started, so that no thread start-up (which
        // allocates) overlaps the first runs.
        pool.shared.remaining.store(threads - 1, Ordering::Release);
        for t in 1..threads {
            let sh = Arc::clone(&pool.shared);
            let handle = thread::Builder::new()
                .name(format!("outpost-worker-{t}"))
                .spawn(move || worker(&sh, t))?;
            pool.workers.push(handle);
        }
        wait_for_workers(&pool.shared);
        Ok(pool)
    }

    /// Threads the pool runs parts on, the caller's included.
    pub fn threads(&self) -> usize {
        self.workers.len() + 1
    }

    /// Runs `f(part, thread)` for every part in `0..parts` (at most [`MAX_PARTS`]), on the
    /// calling thread (thread 0) and the workers, and returns when every part has returned.
    /// `thread` is below [`WorkerPool::threads`] and no two parts run on one thread at once
    /// (per-thread scratch can be indexed by it). A part that panics makes this panic once the
    /// others are done.
    ///
    /// # Panics
    /// `parts` is above [`MAX_PARTS`], or a part panicked.
    pub fn run(&self, parts: usize, f: &(dyn Fn(usize, usize) + Sync)) {
        assert!(parts <= MAX_PARTS, "pool: at most {MAX_PARTS} parts");
        if self.workers.is_empty() || parts <= 1 {
            (0..parts).for_each(|p| f(p, 0));
            return;
        }
        let sh = &*self.shared;
        // SAFETY: only the lifetime is erased. A worker dereferences the pointer only after
        // claiming a part of this generation, and this function does not return (or unwind)
        // before every part is finished, so `f` outlives every use.
        let job = JobRef(unsafe {
            std::mem::transmute::<
                *const (dyn Fn(usize, usize) + Sync + '_),
                *const (dyn Fn(usize, usize) + Sync + 'static),
            >(f)
        });
        sh.panicked.store(false, Ordering::Relaxed);
        sh.remaining.store(parts, Ordering::Release);
        let generation = {
            let mut st = sh.lock();
            st.job = Some(job);
            st.parts = parts;
            st.generation += 1;
            sh.generation.store(st.generation, Ordering::Release);
            if st.sleepers > 0 {
                sh.wake.notify_all();
            }
            st.generation
        };
        work(sh, generation, parts, f, 0, sh.threads);
        wait_for_workers(sh);
        sh.lock().job = None;
        if sh.panicked.load(Ordering::Acquire) {
            panic!("pool: a part panicked (its message is above)");
        }
    }
}

/// The most parts one [`WorkerPool::run`] may have.
pub const MAX_PARTS: usize = 256;

/// Claims and runs parts of job `generation` (of `parts` parts): thread `thread` of `threads`
/// tries its own run first (from part `thread·parts/threads`), then the following ones,
/// wrapping. Each finished part counts down `remaining`, the last one wakes the caller. A part
/// is claimed by raising its stamp to `generation`; a thread late from an earlier job `g'`
/// claims nothing: every part it may try (`< parts` of job `g'`) was stamped `g'` or later
/// before that job returned.
fn work(
    sh: &Shared,
    generation: u64,
    parts: usize,
    f: &(dyn Fn(usize, usize) + Sync),
    thread: usize,
    threads: usize,
) {
    let first = thread * parts / threads.max(1);
    for i in 0..parts {
        let part = (first + i) % parts;
        let stamp = &sh.taken[part];
        if stamp.load(Ordering::Acquire) >= generation
            || stamp.fetch_max(generation, Ordering::AcqRel) >= generation
        {
            continue;
        }
        // A panic is caught so that the part still counts as finished (the caller waits for
        // every part) and reported by `run` once all are done.
        if catch_unwind(AssertUnwindSafe(|| f(part, thread))).is_err() {
            sh.panicked.store(true, Ordering::Release);
        }
        finished(sh);
    }
}

/// Busy-waits up to [`SPIN`] for the workers, then sleeps until the last one signals.
fn wait_for_workers(sh: &Shared) {
    let start = Instant::now();
    while sh.remaining.load(Ordering::Acquire) != 0 {
        if start.elapsed() >= SPIN {
            let mut g = sh.done_lock.lock().unwrap_or_else(|e| e.into_inner());
            while sh.remaining.load(Ordering::Acquire) != 0 {
                g = sh.done.wait(g).unwrap_or_else(|e| e.into_inner());
            }
            return;
        }
        std::hint::spin_loop();
    }
}

fn worker(sh: &Shared, thread: usize) {
    let mut seen = 0u64;
    finished(sh);
    loop {
        // Spin for the next job a while, then sleep.
        let start = Instant::now();
        while sh.generation.load(Ordering::Acquire) == seen && start.elapsed() < SPIN {
            for _ in 0..64 {
                std::hint::spin_loop();
            }
        }
        let job = {
            let mut st = sh.lock();
            while st.generation == seen && !st.shutdown {
                st.sleepers += 1;
                st = sh.wake.wait(st).unwrap_or_else(|e| e.into_inner());
                st.sleepers -= 1;
            }
            if st.shutdown {
                return;
            }
            seen = st.generation;
            (st.job, st.parts)
        };
        if let (Some(JobRef(f)), parts) = job {
            // SAFETY: the job of generation `seen`, published by `run`; `work` calls it only
            // for parts of that generation it has claimed, which `run` waits for.
            let f = unsafe { &*f };
            work(sh, seen, parts, f, thread, sh.threads);
        }
    }
}

/// Counts a part (or, at start-up, a worker) finished; the last wakes the caller.
fn finished(sh: &Shared) {
    if sh.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
        let _g = sh.done_lock.lock().unwrap_or_else(|e| e.into_inner());
        sh.done.notify_one();
    }
}

impl Drop for WorkerPool {
    fn drop(&mut self) {
        {
            let mut st = self.shared.lock();
            st.shutdown = true;
            self.shared.wake.notify_all();
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_part_runs_once_per_call_on_a_valid_thread() {
        let pool = WorkerPool::new(3).unwrap();
        let hits: [AtomicUsize; 7] = Default::default();
        let bad_thread = AtomicBool::new(false);
        for _ in 0..1000 {
            pool.run(7, &|p, t| {
                hits[p].fetch_add(1, Ordering::Relaxed);
                if t >= 3 {
                    bad_thread.store(true, Ordering::Relaxed);
                }
            });
        }
        for h in &hits {
            assert_eq!(h.load(Ordering::Relaxed), 1000);
        }
        assert!(!bad_thread.load(Ordering::Relaxed));
    }

    /// Jobs of varying part counts back to back: a worker late from one job never runs a part
    /// of it (or a part number past its count) once the next has started.
    #[test]
    fn varying_part_counts_never_mix_jobs() {
        let pool = WorkerPool::new(3).unwrap();
        for round in 0..3000usize {
            let parts = 1 + round % 9;
            let hits: [AtomicUsize; 9] = Default::default();
            let out_of_range = AtomicBool::new(false);
            pool.run(parts, &|p, _| {
                if p >= parts {
                    out_of_range.store(true, Ordering::Relaxed);
                    return;
                }
                hits[p].fetch_add(1, Ordering::Relaxed);
                if round % 7 == 0 {
                    std::hint::spin_loop();
                    thread::yield_now();
                }
            });
            assert!(!out_of_range.load(Ordering::Relaxed), "round {round}");
            for (p, h) in hits.iter().enumerate() {
                let want = usize::from(p < parts);
                assert_eq!(h.load(Ordering::Relaxed), want, "round {round}, part {p}");
            }
        }
    }

    /// Thread t starts with its own run of parts (thread 1 of 2 with 4 parts: part 2), so
    /// that consecutive jobs cut alike give each thread the same parts.
    #[test]
    fn each_thread_starts_with_its_own_run_of_parts() {
        let pool = WorkerPool::new(2).unwrap();
        for round in 0..50 {
            let first: [AtomicUsize; 2] =
                [AtomicUsize::new(usize::MAX), AtomicUsize::new(usize::MAX)];
            pool.run(4, &|p, t| {
                let _ =
                    first[t].compare_exchange(usize::MAX, p, Ordering::AcqRel, Ordering::Acquire);
                if p == 0 {
                    // Hold the caller in part 0 until the worker has claimed a part.
                    let start = Instant::now();
                    while first[1].load(Ordering::Acquire) == usize::MAX
                        && start.elapsed() < Duration::from_secs(2)
                    {
                        std::hint::spin_loop();
                    }
                }
            });
            // The worker tries part 2 first, and the caller cannot have passed part 0 before
            // the worker claimed something. The caller starts at part 0 too, unless a worker
            // that woke first has taken it (then part 1), or all of them (then none).
            assert_eq!(first[1].load(Ordering::Acquire), 2, "round {round}");
            let caller = first[0].load(Ordering::Acquire);
            assert!(
                [0, 1, usize::MAX].contains(&caller),
                "round {round}: {caller}"
            );
        }
    }

    #[test]
    fn parts_write_disjoint_halves_and_sleeping_workers_wake() {
        let pool = WorkerPool::new(2).unwrap();
        let mut data = vec![0u32; 1000];
        for round in 1..=3u32 {
            // Past the spin: the worker is asleep when the job comes.
            thread::sleep(SPIN * 5);
            let (a, b) = data.split_at_mut(500);
            let halves = [Mutex::new(Some(a)), Mutex::new(Some(b))];
            pool.run(2, &|p, _| {
                let half = halves[p].lock().unwrap().take().unwrap();
                half.iter_mut().for_each(|x| *x += round);
            });
        }
        assert!(data.iter().all(|&x| x == 6));
    }

    #[test]
    fn a_late_worker_leaves_its_share_to_the_caller() {
        let pool = WorkerPool::new(2).unwrap();
        // The worker is asleep; the caller alone could do every part before it wakes. Either
        // way every part runs once.
        thread::sleep(SPIN * 5);
        let n = AtomicUsize::new(0);
        pool.run(64, &|_, _| {
            n.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(n.load(Ordering::Relaxed), 64);
    }

    #[test]
    fn a_panicking_part_panics_the_caller_after_all_parts() {
        let pool = WorkerPool::new(2).unwrap();
        let finished = AtomicUsize::new(0);
        let r = catch_unwind(AssertUnwindSafe(|| {
            pool.run(8, &|p, _| {
                // Parts 0 and 3: whichever thread claims them (the caller too).
                if p == 0 || p == 3 {
                    panic!("part {p}");
                }
                thread::sleep(Duration::from_millis(2));
                finished.fetch_add(1, Ordering::Relaxed);
            })
        }));
        assert!(r.is_err());
        assert_eq!(
            finished.load(Ordering::Relaxed),
            6,
            "the other parts ran to their end"
        );
        // The pool still works.
        let n = AtomicUsize::new(0);
        pool.run(2, &|_, _| {
            n.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(n.load(Ordering::Relaxed), 2);
    }
}
