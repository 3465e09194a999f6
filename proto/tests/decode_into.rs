//! `ServerMsg::decode_prefix_into` (results decoded in place) accepts exactly what postcard's
//! serde decoder accepts and yields the same messages: on valid results of every shape, on
//! packets of several messages, and on corrupted and truncated bytes; the message it decodes
//! into may start as anything (another kind, a larger stale result).

use outpost_proto::{
    ClassScore, Detection, MAX_DETECTIONS, MAX_SERVER_MSG, Missed, Point, ResultMsg, ServerMsg,
    decode_prefix, encode, encode_result,
};
use proptest::prelude::*;

mod support;

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
    fn results_decode_in_place_like_postcard(r in support::result_strategy(12), kind in any::<u8>()) {
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
        r in support::result_strategy(12),
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
