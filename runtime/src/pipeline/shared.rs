//! What the pipeline's threads share while it runs: per-stream queues and counters, per-model
//! done flags, the publish ring, and how threads wait for and wake each other.
//!
//! An idle thread parks (a futex wait; waking it costs several µs, more in the tail on a busy
//! machine). With a spin budget ([`super::Pipeline::set_spin`]), a feeder about to hand over
//! says so and wakes its consumer early: the capture thread of a paced source as it starts
//! copying a frame that is due, an inference thread as its model run ends and decoding starts. The consumer, awake while the
//! frame is copied or the outputs decoded, busy-waits for the hand-off (at most the budget), so
//! the wake-up overlaps work that was happening anyway and the hand-off itself costs a
//! cache-line transfer. Nothing spins while no hand-off is imminent: a pipeline without frames
//! in flight uses no CPU.

use std::sync::Mutex;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;

use super::{Policy, Slot, StreamStats};

/// How long an idle thread sleeps before looking again (it is also woken when work arrives).
pub(super) const IDLE: Duration = Duration::from_millis(1);

pub(super) struct StreamShared {
    pub(super) name: String,
    pub(super) model: usize,
    pub(super) policy: Policy,
    pub(super) free: ArrayQueue<Box<Slot>>,
    pub(super) ring: ArrayQueue<Box<Slot>>,
    pub(super) stats: StreamStats,
    pub(super) capture_done: AtomicBool,
    /// The capture thread is inside `next_frame`: a frame may enter the ring at any moment.
    pub(super) capturing: AtomicBool,
    pub(super) capture_thread: OnceLock<Thread>,
    pub(super) error: Mutex<Option<String>>,
}

pub(super) struct ModelShared {
    pub(super) done: AtomicBool,
    /// The model run is over and its outputs are being decoded: a result will enter the
    /// publish ring at any moment.
    pub(super) finishing: AtomicBool,
    pub(super) thread: OnceLock<Thread>,
}

pub(super) struct Shared {
    pub(super) streams: Vec<StreamShared>,
    pub(super) models: Vec<ModelShared>,
    pub(super) publish: ArrayQueue<Box<Slot>>,
    pub(super) publisher: Thread,
    /// Set when the publisher leaves (normally, or unwinding from a panicking callback): the
    /// capture threads stop.
    pub(super) publisher_gone: AtomicBool,
    /// The longest an idle thread busy-waits for an imminent hand-off before parking.
    pub(super) spin: Duration,
    /// Inference threads and the publisher poll instead of parking ([`super::Placement::busy`]).
    pub(super) busy: bool,
}

/// Runs its closure when dropped: a thread that ends, even by a panic, sets its "done" flag so
/// the others do not wait for it forever.
pub(super) struct OnDrop<F: FnMut()>(pub(super) F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}

pub(super) fn wake(t: &OnceLock<Thread>) {
    if let Some(t) = t.get() {
        t.unpark();
    }
}

/// Polls of `ready()` in one busy [`idle_wait`] before it yields and the caller looks at its
/// other conditions (tens of µs).
const BUSY_POLLS: u32 = 1024;

/// Wait for work: while `imminent()` holds, busy-wait until `ready()` (at most `spin` in all),
/// otherwise park for up to [`IDLE`] (an `unpark` ends it early). A `busy` thread
/// ([`Shared::busy`]) never parks: it polls `ready()` a thousand times, yields (a thread
/// waiting for its core runs first) and returns.
pub(super) fn idle_wait(
    spin: Duration,
    busy: bool,
    imminent: impl Fn() -> bool,
    ready: impl Fn() -> bool,
) {
    if busy {
        for _ in 0..BUSY_POLLS {
            if ready() {
                return;
            }
            std::hint::spin_loop();
        }
        // Give the core to a thread that has just woken there (a capture thread beside the
        // publisher), which the scheduler might otherwise leave waiting for a time slice.
        thread::yield_now();
        return;
    }
    if !spin.is_zero() && imminent() {
        let start = Instant::now();
        loop {
            // Look at the clock only every few dozen polls: reading it costs more than a poll.
            for _ in 0..32 {
                if ready() {
                    return;
                }
                std::hint::spin_loop();
            }
            if !imminent() || start.elapsed() >= spin {
                break;
            }
        }
        if ready() {
            return;
        }
    }
    thread::park_timeout(IDLE);
}

/// Clear a hand-off flag (see [`idle_wait`]).
pub(super) fn clear(flag: &AtomicBool) {
    flag.store(false, Ordering::Release);
}

/// Raise a hand-off flag (see [`idle_wait`]).
pub(super) fn raise(flag: &AtomicBool) {
    flag.store(true, Ordering::Release);
}
