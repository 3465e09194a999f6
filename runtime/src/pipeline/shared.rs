//! What the pipeline's threads share while it runs: per-stream queues and counters, per-model
//! done flags, the publish ring, and how threads wake each other.

use std::sync::Mutex;
use std::sync::OnceLock;
use std::sync::atomic::AtomicBool;
use std::thread::Thread;
use std::time::Duration;

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
    pub(super) capture_thread: OnceLock<Thread>,
    pub(super) error: Mutex<Option<String>>,
}

pub(super) struct ModelShared {
    pub(super) done: AtomicBool,
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
