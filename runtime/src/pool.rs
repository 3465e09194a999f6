//! A persistent pool of worker threads for intra-op parallelism ([`crate::SessionOptions::threads`]).
//!
//! [`WorkerPool::run`] runs `f(0)` on the caller's thread and `f(1)` … `f(n − 1)` on the `n − 1`
//! workers, one part each, and returns when all are done. Nothing is allocated per call: the
//! job is a pointer to the caller's closure, published under a mutex with a generation count.
//!
//! Idle workers do not spin: after a job they busy-wait for the next one for at most
//! [`SPIN`] (the steps of one inference follow each other within microseconds, and waking a
//! sleeping thread costs more than that), then sleep on a condition variable until the next
//! job. Between inferences (a camera's frame interval) they sleep.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
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
struct JobRef(*const (dyn Fn(usize) + Sync + 'static));

// SAFETY: the pointee is `Sync` (callable from any thread through a shared reference), and
// `run` keeps it alive until every worker has finished with it.
unsafe impl Send for JobRef {}

struct State {
    generation: u64,
    job: Option<JobRef>,
    shutdown: bool,
    /// Workers waiting on `wake`.
    sleepers: usize,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    /// `state.generation`, for workers that spin.
    generation: AtomicU64,
    /// Workers that have not finished the current job.
    remaining: AtomicUsize,
    done_lock: Mutex<()>,
    done: Condvar,
    /// A worker's part panicked during the current job.
    panicked: AtomicBool,
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
                shutdown: false,
                sleepers: 0,
            }),
            wake: Condvar::new(),
            generation: AtomicU64::new(0),
            remaining: AtomicUsize::new(0),
            done_lock: Mutex::new(()),
            done: Condvar::new(),
            panicked: AtomicBool::new(false),
        });
        let mut pool = WorkerPool {
            shared,
            workers: Vec::with_capacity(threads - 1),
        };
        // Each worker counts itself in once started, so that no thread start-up (which
        // allocates) overlaps the first runs.
        pool.shared.remaining.store(threads - 1, Ordering::Release);
        for part in 1..threads {
            let sh = Arc::clone(&pool.shared);
            let handle = thread::Builder::new()
                .name(format!("outpost-worker-{part}"))
                .spawn(move || worker(&sh, part))?;
            pool.workers.push(handle);
        }
        wait_for_workers(&pool.shared);
        Ok(pool)
    }

    /// Threads the pool runs parts on, the caller's included.
    pub fn threads(&self) -> usize {
        self.workers.len() + 1
    }

    /// Runs `f(part)` for every part `0..threads()`, part 0 on the calling thread, and returns
    /// when every part has returned. A part that panics makes this panic once all are done.
    pub fn run(&self, f: &(dyn Fn(usize) + Sync)) {
        if self.workers.is_empty() {
            f(0);
            return;
        }
        let sh = &*self.shared;
        // SAFETY: only the lifetime is erased; the pointer is dereferenced by workers between
        // the publication below and their decrement of `remaining`, and this function does not
        // return (or unwind) before `remaining` is 0, so `f` outlives every use.
        let job = JobRef(unsafe {
            std::mem::transmute::<
                *const (dyn Fn(usize) + Sync + '_),
                *const (dyn Fn(usize) + Sync + 'static),
            >(f)
        });
        sh.panicked.store(false, Ordering::Relaxed);
        sh.remaining.store(self.workers.len(), Ordering::Release);
        {
            let mut st = sh.lock();
            st.job = Some(job);
            st.generation += 1;
            sh.generation.store(st.generation, Ordering::Release);
            if st.sleepers > 0 {
                sh.wake.notify_all();
            }
        }
        let mine = catch_unwind(AssertUnwindSafe(|| f(0)));
        wait_for_workers(sh);
        sh.lock().job = None;
        if let Err(p) = mine {
            resume_unwind(p);
        }
        if sh.panicked.load(Ordering::Acquire) {
            panic!("pool: a worker's part panicked");
        }
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

fn worker(sh: &Shared, part: usize) {
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
            st.job
        };
        if let Some(JobRef(f)) = job {
            // SAFETY: the job of generation `seen`, published by `run`, which waits for this
            // worker's decrement below before its closure goes away.
            let f = unsafe { &*f };
            if catch_unwind(AssertUnwindSafe(|| f(part))).is_err() {
                sh.panicked.store(true, Ordering::Release);
            }
        }
        finished(sh);
    }
}

/// Counts a worker out of the current job (or of start-up); the last wakes the caller.
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
    fn every_part_runs_once_per_call() {
        let pool = WorkerPool::new(3).unwrap();
        let hits: [AtomicUsize; 3] = Default::default();
        for _ in 0..1000 {
            pool.run(&|p| {
                hits[p].fetch_add(1, Ordering::Relaxed);
            });
        }
        for h in &hits {
            assert_eq!(h.load(Ordering::Relaxed), 1000);
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
            pool.run(&|p| {
                let half = halves[p].lock().unwrap().take().unwrap();
                half.iter_mut().for_each(|x| *x += round);
            });
        }
        assert!(data.iter().all(|&x| x == 6));
    }

    #[test]
    fn a_panicking_part_panics_the_caller_after_all_parts() {
        let pool = WorkerPool::new(2).unwrap();
        let finished = AtomicUsize::new(0);
        let r = catch_unwind(AssertUnwindSafe(|| {
            pool.run(&|p| {
                if p == 1 {
                    panic!("part 1");
                }
                thread::sleep(Duration::from_millis(20));
                finished.fetch_add(1, Ordering::Relaxed);
            })
        }));
        assert!(r.is_err());
        assert_eq!(finished.load(Ordering::Relaxed), 1, "part 0 ran to its end");
        // The pool still works.
        let n = AtomicUsize::new(0);
        pool.run(&|_| {
            n.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(n.load(Ordering::Relaxed), 2);
    }
}
