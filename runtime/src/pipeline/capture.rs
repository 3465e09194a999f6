//! A stream's capture thread: free slot → source → ring, with the stream's policy when the ring
//! is full and backoff when the source fails transiently.

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::backoff::BackoffState;
use super::shared::{IDLE, OnDrop, Shared, StreamShared, clear, raise, wake};
use super::{DropReason, Policy, Slot, Source, Stage};

/// Whether a capture thread should stop taking frames: the caller asked, the publisher is gone,
/// or the stream's inference thread ended (it panicked).
fn stopping(sh: &Shared, st: &StreamShared, stop: &AtomicBool) -> bool {
    stop.load(Ordering::Acquire)
        || sh.publisher_gone.load(Ordering::Acquire)
        || sh.models[st.model].done.load(Ordering::Acquire)
}

/// Sleep until `due`, looking at the stop conditions at least every few milliseconds. False if
/// stopped.
fn sleep_until(due: Instant, sh: &Shared, st: &StreamShared, stop: &AtomicBool) -> bool {
    loop {
        if stopping(sh, st, stop) {
            return false;
        }
        let now = Instant::now();
        if now >= due {
            return true;
        }
        thread::sleep((due - now).min(Duration::from_millis(5)));
    }
}

/// Why a frame taken back from the ring is dropped, by policy.
fn superseded(policy: Policy) -> DropReason {
    match policy {
        Policy::Latest => DropReason::Superseded,
        Policy::DropOldest => DropReason::QueueFull,
        Policy::Block(_) => DropReason::Deadline,
    }
}

/// A free slot for the next frame: from the free list; failing that (the publisher is behind),
/// under `latest`/`drop-oldest` the oldest frame waiting for inference, dropped; under `block`,
/// wait. `None` when stopped while waiting.
fn acquire(sh: &Shared, st: &StreamShared, stop: &AtomicBool) -> Option<Box<Slot>> {
    loop {
        if let Some(s) = st.free.pop() {
            return Some(s);
        }
        if !matches!(st.policy, Policy::Block(_))
            && let Some(s) = st.ring.pop()
        {
            st.stats.dropped(superseded(st.policy));
            return Some(s);
        }
        if stopping(sh, st, stop) {
            return None;
        }
        thread::park_timeout(IDLE);
    }
}

/// One stream's capture thread: free slot → `next_frame` → ring, until the source ends, fails
/// for good, reaches `max_frames`, or the pipeline stops. A transient source error
/// ([`SourceError::is_transient`]) is counted, then the thread waits out the backoff (waking
/// within a few milliseconds on stop) and calls the source again; the first good frame after it
/// counts a reconnect and resets the backoff.
pub(super) fn capture_loop(
    sh: &Shared,
    si: usize,
    mut source: Box<dyn Source>,
    max_frames: Option<u64>,
    mut backoff: BackoffState,
    stop: &AtomicBool,
) {
    let st = &sh.streams[si];
    let _ = st.capture_thread.set(thread::current());
    let infer_thread = &sh.models[st.model].thread;
    // Marks the capture done however this thread ends (the inference thread waits for it).
    let _done = OnDrop(|| {
        st.capture_done.store(true, Ordering::Release);
        wake(infer_thread);
    });
    let mut held: Option<Box<Slot>> = None;
    let mut count = 0u64;
    // Failures in a row since the last good frame.
    let mut failing = 0u64;
    loop {
        if stopping(sh, st, stop) || max_frames.is_some_and(|m| count >= m) {
            break;
        }
        // A paced source (frames due at known times, e.g. a replay) copies its frame at once
        // when due; a source without one blocks in `next_frame` until its device delivers.
        let paced = source.ready_at();
        if let Some(due) = paced
            && !sleep_until(due, sh, st, stop)
        {
            break;
        }
        let Some(mut slot) = held.take().or_else(|| acquire(sh, st, stop)) else {
            break;
        };
        let t0 = Instant::now();
        if paced.is_some() && !sh.spin.is_zero() {
            // The frame is a copy away: the inference thread wakes now and spins for it, so
            // its wake-up overlaps the capture. (Not for a blocking source: the frame may be a
            // frame interval away, and the inference thread would spin its budget again after
            // every idle timeout.)
            raise(&st.capturing);
            wake(infer_thread);
        }
        let got = source.next_frame(&mut slot.frame);
        if !matches!(got, Ok(Some(_))) {
            clear(&st.capturing);
        }
        match got {
            Ok(Some(meta)) => {
                slot.meta = meta;
                if failing > 0 {
                    log::info!(
                        "stream {}: the source is back after {failing} failure(s)",
                        st.name
                    );
                    failing = 0;
                    st.stats.reconnected();
                    backoff.reset();
                }
            }
            Ok(None) => {
                held = Some(slot);
                break;
            }
            Err(e) if e.is_transient() => {
                st.stats.source_failure();
                failing += 1;
                held = Some(slot);
                let wait = backoff.next_delay();
                log::warn!(
                    "stream {}: {e} (failure {failing} in a row); retrying in {} ms",
                    st.name,
                    wait.as_millis()
                );
                if !sleep_until(Instant::now() + wait, sh, st, stop) {
                    break;
                }
                continue;
            }
            Err(e) => {
                log::error!("stream {}: {e}", st.name);
                if let Ok(mut err) = st.error.lock() {
                    *err = Some(e.to_string());
                }
                held = Some(slot);
                break;
            }
        }
        let t1 = Instant::now();
        count += 1;
        slot.t_start = t0;
        slot.t_queued = t1;
        slot.timings.capture = t1 - t0;
        // Counted once the frame is on its way (the consumer may be polling the ring): a reader
        // of the counters may see it inferred a moment before it is counted captured.
        let counted = || {
            st.stats.captured();
            st.stats.record(Stage::Capture, t1 - t0);
        };
        match st.policy {
            Policy::Latest | Policy::DropOldest => {
                let old = st.ring.force_push(slot);
                counted();
                if let Some(old) = old {
                    st.stats.dropped(superseded(st.policy));
                    held = Some(old);
                }
            }
            Policy::Block(deadline) => {
                let limit = t1 + deadline;
                let mut s = slot;
                let mut pushed = st.ring.push(s);
                counted();
                while let Err(back) = pushed {
                    s = back;
                    let now = Instant::now();
                    if now >= limit {
                        st.stats.dropped(DropReason::Deadline);
                        held = Some(s);
                        break;
                    }
                    wake(infer_thread);
                    thread::park_timeout((limit - now).min(IDLE));
                    pushed = st.ring.push(s);
                }
            }
        }
        clear(&st.capturing);
        st.stats.queued(st.ring.len());
        wake(infer_thread);
    }
    if let Some(s) = held {
        // The free list can hold every slot of the stream.
        let _ = st.free.push(s);
    }
    // `_done` marks the capture finished and wakes the inference thread.
}
