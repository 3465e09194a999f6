//! State shared by publishers and the I/O thread: preallocated result slots, the lock-free
//! free/ready queues between them, the wake-up eventfd and the counters.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Instant;

use crossbeam_queue::ArrayQueue;
use outpost_proto::{MAX_MODELS, MAX_SERVER_MSG, ModelInfo, Status};

use super::sys::EventFd;

/// A preallocated encoded result.
pub(super) struct Slot {
    pub(super) stream: u16,
    pub(super) len: usize,
    pub(super) buf: [u8; MAX_SERVER_MSG],
}

impl Slot {
    pub(super) fn boxed() -> Box<Slot> {
        Box::new(Slot {
            stream: 0,
            len: 0,
            buf: [0; MAX_SERVER_MSG],
        })
    }

    pub(super) fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

#[derive(Default)]
pub(super) struct Counters {
    pub(super) published: AtomicU64,
    pub(super) publish_dropped: AtomicU64,
    pub(super) missed_total: AtomicU64,
    pub(super) disconnected_slow: AtomicU64,
    pub(super) rejected: AtomicU64,
    pub(super) clients: AtomicU32,
}

pub(super) struct Shared {
    pub(super) free: ArrayQueue<Box<Slot>>,
    pub(super) ready: ArrayQueue<Box<Slot>>,
    pub(super) wake: EventFd,
    pub(super) io_sleeping: AtomicBool,
    pub(super) stop: AtomicBool,
    pub(super) counters: Counters,
    pub(super) models: Mutex<heapless::Vec<ModelInfo, MAX_MODELS>>,
    pub(super) started: Instant,
    pub(super) queue_capacity: usize,
}

impl Shared {
    pub(super) fn status(&self) -> Status {
        let c = &self.counters;
        Status {
            uptime_ms: self.started.elapsed().as_millis() as u64,
            clients: c.clients.load(Ordering::Relaxed),
            published: c.published.load(Ordering::Relaxed),
            publish_dropped: c.publish_dropped.load(Ordering::Relaxed),
            missed_total: c.missed_total.load(Ordering::Relaxed),
            disconnected_slow: c.disconnected_slow.load(Ordering::Relaxed),
            rejected: c.rejected.load(Ordering::Relaxed),
            your_missed: 0,
            queue_capacity: self.queue_capacity as u32,
        }
    }
}
