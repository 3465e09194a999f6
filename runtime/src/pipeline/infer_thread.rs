//! A model's inference thread.

use std::sync::atomic::Ordering;
use std::thread;
use std::time::Instant;

use super::shared::{IDLE, OnDrop, Shared, clear, idle_wait, raise, wake};
use super::worker::Worker;
use super::{DropReason, Stage};

/// A model's inference thread: takes frames from its streams' rings in turn, runs the worker,
/// hands results to the publisher; ends when every one of its streams has stopped capturing and
/// its ring is empty.
pub(super) fn infer_loop(sh: &Shared, mi: usize, mut worker: Worker, mine: &[usize]) {
    let _ = sh.models[mi].thread.set(thread::current());
    // Marks the model done however this thread ends (the publisher waits for it).
    let _done = OnDrop(|| {
        sh.models[mi].done.store(true, Ordering::Release);
        sh.publisher.unpark();
    });
    let mut next = 0;
    loop {
        let mut got = None;
        for k in 0..mine.len() {
            let si = mine[(next + k) % mine.len()];
            if let Some(s) = sh.streams[si].ring.pop() {
                got = Some(s);
                next = (next + k + 1) % mine.len();
                break;
            }
        }
        let Some(mut slot) = got else {
            let finished = mine.iter().all(|&si| {
                let st = &sh.streams[si];
                st.capture_done.load(Ordering::Acquire) && st.ring.is_empty()
            });
            if finished {
                break;
            }
            idle_wait(
                sh.spin,
                sh.busy,
                || {
                    mine.iter()
                        .any(|&si| sh.streams[si].capturing.load(Ordering::Acquire))
                },
                || mine.iter().any(|&si| !sh.streams[si].ring.is_empty()),
            );
            continue;
        };
        let t0 = Instant::now();
        let st = &sh.streams[slot.stream];
        // Room in the ring: a blocked capture thread may go on.
        wake(&st.capture_thread);
        slot.timings.queue = t0 - slot.t_queued;
        st.stats.record(Stage::Queue, slot.timings.queue);
        let finishing = &sh.models[mi].finishing;
        // Once the model has run, the result is a decode away: the publisher wakes now and
        // spins for it, so its wake-up overlaps the decoding.
        let outcome = worker.infer(&mut slot, || {
            if !sh.spin.is_zero() {
                raise(finishing);
                sh.publisher.unpark();
            }
        });
        match outcome {
            Ok(()) => {
                st.stats.record(Stage::Preprocess, slot.timings.preprocess);
                st.stats.record(Stage::Infer, slot.timings.infer);
                st.stats.inferred();
                slot.t_inferred = Instant::now();
                let mut s = slot;
                // The publish ring holds every slot of every stream: this does not loop.
                while let Err(back) = sh.publish.push(s) {
                    s = back;
                    thread::park_timeout(IDLE);
                }
                clear(finishing);
                sh.publisher.unpark();
            }
            Err(e) => {
                log::debug!("stream {}: frame {}: {e}", st.name, slot.meta.seq);
                clear(finishing);
                st.stats.dropped(DropReason::Error);
                let _ = st.free.push(slot);
                wake(&st.capture_thread);
            }
        }
    }
    // `_done` marks the model finished and wakes the publisher.
}
