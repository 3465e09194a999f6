//! Shared strategies of the protocol's property tests.

use outpost_proto::{
    BBox, ClassScore, Detection, MAX_CLASS_SCORES, MAX_KEYPOINTS, MAX_SENSOR_EVENTS, ModelRef,
    Name, Point, ResultMsg, SensorEvent,
};
use proptest::prelude::*;

/// Any result with up to `max_detections` detections (any f32 values, names up to the limit,
/// every bounded list from empty to full).
pub fn result_strategy(max_detections: usize) -> impl Strategy<Value = ResultMsg> {
    (
        any::<(u16, u64, u64, u64, u64)>(),
        "[a-z0-9-]{0,32}",
        any::<u32>(),
        proptest::collection::vec(
            (
                any::<u16>(),
                any::<f32>(),
                any::<[f32; 4]>(),
                proptest::collection::vec(any::<(f32, f32)>(), 0..=MAX_KEYPOINTS),
            ),
            0..=max_detections,
        ),
        proptest::collection::vec((any::<u16>(), any::<f32>()), 0..=MAX_CLASS_SCORES),
        proptest::collection::vec(any::<(u16, u16, f32, u64)>(), 0..=MAX_SENSOR_EVENTS),
    )
        .prop_map(|(h, id, version, dets, scores, events)| {
            let mut r = ResultMsg {
                stream: h.0,
                seq: h.1,
                capture_ns: h.2,
                inference_ns: h.3,
                publish_ns: h.4,
                model: ModelRef {
                    id: Name::truncating(&id),
                    version,
                },
                ..Default::default()
            };
            for (class, score, b, kps) in dets {
                let mut d = Detection {
                    class,
                    score,
                    bbox: BBox {
                        x_min: b[0],
                        y_min: b[1],
                        x_max: b[2],
                        y_max: b[3],
                    },
                    ..Default::default()
                };
                for (x, y) in kps {
                    d.keypoints.push(Point { x, y }).unwrap();
                }
                r.detections.push(d).unwrap();
            }
            for (class, score) in scores {
                r.class_scores.push(ClassScore { class, score }).unwrap();
            }
            for (sensor, kind, value, timestamp_ns) in events {
                r.events
                    .push(SensorEvent {
                        sensor,
                        kind,
                        value,
                        timestamp_ns,
                    })
                    .unwrap();
            }
            r
        })
}
