//! `ServerMsg::decode_prefix_into` (results decoded in place) accepts exactly what postcard's
//! serde decoder accepts and yields the same messages: on valid results of every shape, on
//! packets of several messages, and on corrupted and truncated bytes; the message it decodes
//! into may start as anything (another kind, a larger stale result).

use outpost_proto::{
    BBox, ClassScore, Detection, MAX_CLASS_SCORES, MAX_DETECTIONS, MAX_KEYPOINTS,
    MAX_SENSOR_EVENTS, MAX_SERVER_MSG, Missed, ModelRef, Name, Point, ResultMsg, SensorEvent,
    ServerMsg, decode_prefix, encode, encode_result,
};
use proptest::prelude::*;

fn result_strategy() -> impl Strategy<Value = ResultMsg> {
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
            0..=12,
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

/// Postcard bytes of `m` (NaN-proof equality: scores may be any f32).
fn wire(m: &ServerMsg) -> Vec<u8> {
    let mut buf = vec![0u8; MAX_SERVER_MSG];
    let n = encode(m, &mut buf).unwrap();
    buf.truncate(n);
    buf
}

/// A message to decode into: not a result, or a stale result with content to be replaced.
fn start(kind: u8) -> ServerMsg {
    match kind % 3 {
        0 => ServerMsg::Subscribed,
        1 => ServerMsg::Missed(Missed { count: 7 }),
        _ => {
            let mut r = ResultMsg::default();
            for _ in 0..MAX_DETECTIONS {
                let mut d = Detection::default();
                d.keypoints.push(Point { x: 1.0, y: 2.0 }).unwrap();
                r.detections.push(d).unwrap();
            }
            r.class_scores.push(ClassScore::default()).unwrap();
            ServerMsg::Result(r)
        }
    }
}

/// Both decoders on `bytes`: both fail, or both yield the same message and the same rest.
fn agree(bytes: &[u8], kind: u8) -> Result<(), TestCaseError> {
    let want = decode_prefix::<ServerMsg>(bytes);
    let mut got = start(kind);
    let rest = ServerMsg::decode_prefix_into(bytes, &mut got);
    match (want, rest) {
        (Ok((m, want_rest)), Ok(rest)) => {
            prop_assert_eq!(wire(&got), wire(&m));
            prop_assert_eq!(rest.len(), want_rest.len());
        }
        (Err(_), Err(_)) => {}
        (w, g) => prop_assert!(
            false,
            "serde {:?} vs in place {:?}",
            w.map(|(m, r)| (wire(&m), r.len())),
            g.map(<[u8]>::len)
        ),
    }
    Ok(())
}

proptest! {
    #[test]
    fn results_decode_in_place_like_postcard(r in result_strategy(), kind in any::<u8>()) {
        let mut buf = vec![0u8; MAX_SERVER_MSG];
        let n = encode_result(&r, &mut buf).unwrap();
        // Followed by another message, as in a batched packet.
        buf.truncate(n);
        buf.extend_from_slice(&[0x03, 0x05]);
        agree(&buf, kind)?;
        let mut msg = start(kind);
        let mut packet = ServerMsg::packet(&buf);
        prop_assert_eq!(packet.next_into(&mut msg), Some(Ok(())));
        prop_assert_eq!(wire(&msg), wire(&ServerMsg::Result(r)));
        prop_assert_eq!(packet.next_into(&mut msg), Some(Ok(())));
        prop_assert_eq!(&msg, &ServerMsg::Missed(Missed { count: 5 }));
        prop_assert_eq!(packet.next_into(&mut msg), None);
    }

    #[test]
    fn corrupted_results_fail_or_decode_like_postcard(
        r in result_strategy(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
        kind in any::<u8>(),
    ) {
        let mut buf = vec![0u8; MAX_SERVER_MSG];
        let n = encode_result(&r, &mut buf).unwrap();
        buf.truncate(n);
        // Keep the tag (the in-place path is the one under test) and corrupt the rest.
        for (at, byte) in edits {
            if buf.len() > 1 {
                let i = 1 + at.index(buf.len() - 1);
                buf[i] = byte;
            }
        }
        if truncate {
            buf.truncate(cut.index(buf.len()));
        }
        agree(&buf, kind)?;
    }

    #[test]
    fn arbitrary_bytes_after_the_result_tag_agree(
        tail in proptest::collection::vec(any::<u8>(), 0..200),
        kind in any::<u8>(),
    ) {
        let mut bytes = vec![2u8];
        bytes.extend_from_slice(&tail);
        agree(&bytes, kind)?;
    }
}
