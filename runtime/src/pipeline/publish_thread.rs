//! The publisher: the caller's thread, running the callback.

use std::sync::atomic::Ordering;
use std::time::Instant;

use super::FrameResult;
use super::Stage;
use super::shared::{OnDrop, Shared, idle_wait, wake};

/// The caller's thread during [`super::Pipeline::run`]: the callback for every inferred frame,
/// then the slot back to its stream's free list.
pub(super) fn publish_loop<F>(sh: &Shared, labels: &[Vec<String>], publish: &mut F)
where
    F: FnMut(&FrameResult<'_>),
{
    // If the callback panics, the capture threads stop and the pipeline winds down.
    let _gone = OnDrop(|| sh.publisher_gone.store(true, Ordering::Release));
    loop {
        let Some(mut slot) = sh.publish.pop() else {
            let finished =
                sh.models.iter().all(|m| m.done.load(Ordering::Acquire)) && sh.publish.is_empty();
            if finished {
                break;
            }
            idle_wait(
                sh.spin,
                sh.busy,
                || {
                    sh.models
                        .iter()
                        .any(|m| m.finishing.load(Ordering::Acquire))
                },
                || !sh.publish.is_empty(),
            );
            continue;
        };
        let st = &sh.streams[slot.stream];
        let t0 = Instant::now();
        slot.timings.publish_queue = t0 - slot.t_inferred;
        slot.timings.latency = t0 - slot.t_start;
        st.stats
            .record(Stage::PublishQueue, slot.timings.publish_queue);
        publish(&FrameResult {
            stream: &st.name,
            stream_index: slot.stream,
            frame: &slot.frame,
            meta: &slot.meta,
            detections: &slot.detections,
            detections_dropped: slot.detections_dropped,
            top_k: &slot.top_k,
            labels: &labels[st.model],
            timings: &slot.timings,
        });
        let t1 = Instant::now();
        st.stats.record(Stage::Publish, t1 - t0);
        st.stats.record(Stage::Total, t1 - slot.t_start);
        st.stats.published();
        let _ = st.free.push(slot);
        wake(&st.capture_thread);
    }
}
