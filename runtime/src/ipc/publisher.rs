//! [`Publisher`]: the pipeline's side. Encodes a result into a free slot and hands it to the
//! I/O thread; never blocks, never allocates.

use std::sync::Arc;
use std::sync::atomic::{Ordering, fence};

use outpost_proto::{self as proto, ResultMsg};

use super::error::PublishError;
use super::shared::Shared;

/// A cheap, cloneable handle the pipeline publishes through. `publish` never blocks and never
/// allocates.
#[derive(Clone)]
pub struct Publisher {
    pub(super) shared: Arc<Shared>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher").finish_non_exhaustive()
    }
}

impl Publisher {
    /// Encode `result` into a preallocated slot and hand it to the I/O thread. Never blocks,
    /// never allocates. `Err(Backlogged)` means the result was dropped and counted.
    pub fn publish(&self, result: &ResultMsg) -> Result<(), PublishError> {
        let shared = &*self.shared;
        if shared.stop.load(Ordering::Relaxed) {
            return Err(PublishError::Closed);
        }
        let Some(mut slot) = shared.free.pop() else {
            shared
                .counters
                .publish_dropped
                .fetch_add(1, Ordering::Relaxed);
            return Err(PublishError::Backlogged);
        };
        match proto::encode_result(result, &mut slot.buf) {
            Ok(len) => slot.len = len,
            Err(e) => {
                let _ = shared.free.push(slot);
                return Err(PublishError::Encode(e));
            }
        }
        slot.stream = result.stream;
        // Cannot fail: `ready` holds as many entries as there are slots.
        if let Err(slot) = shared.ready.push(slot) {
            let _ = shared.free.push(slot);
            shared
                .counters
                .publish_dropped
                .fetch_add(1, Ordering::Relaxed);
            return Err(PublishError::Backlogged);
        }
        shared.counters.published.fetch_add(1, Ordering::Relaxed);
        // Pairs with the fence in `IoLoop::sleep`: either the I/O thread sees the slot before it
        // sleeps, or we see that it sleeps and wake it.
        fence(Ordering::SeqCst);
        if shared.io_sleeping.swap(false, Ordering::SeqCst) {
            shared.wake.notify();
        }
        Ok(())
    }

    /// Set `result.publish_ns` to now (CLOCK_REALTIME) and publish it.
    pub fn publish_now(&self, result: &mut ResultMsg) -> Result<(), PublishError> {
        result.publish_ns = now_ns();
        self.publish(result)
    }

    /// Whether the server is still running.
    pub fn is_open(&self) -> bool {
        !self.shared.stop.load(Ordering::Relaxed)
    }
}

/// Nanoseconds since the Unix epoch (the protocol's timestamp unit).
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
