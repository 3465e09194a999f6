//! Fuzz the protocol decoder with arbitrary packets, as a hostile peer would send them.
//!
//! Invariants: decoding never panics; anything that decodes re-encodes within the protocol's
//! `MaxSize` bound, and that encoding is a fixed point (decode → encode → decode → encode gives
//! the same bytes); the hot-path `encode_result` agrees with postcard; a subscription filter
//! applied to any decoded result keeps it encodable; the in-place decoder
//! (`ServerMsg::decode_prefix_into`) accepts exactly what postcard accepts, with the same
//! message and the same rest.
#![no_main]

use libfuzzer_sys::fuzz_target;
use outpost_proto::{
    ClientMsg, MAX_CLIENT_MSG, MAX_SERVER_MSG, ResultMsg, ServerMsg, Subscribe, decode, encode,
};

fn check<T>(data: &[u8], max: usize)
where
    T: serde::Serialize + for<'de> serde::Deserialize<'de>,
{
    let Ok(msg) = decode::<T>(data) else { return };
    let mut a = [0u8; 16 * 1024];
    let n = encode(&msg, &mut a[..max]).expect("a decodable message must fit MaxSize");
    let again: T = decode(&a[..n]).expect("our own encoding must decode");
    let mut b = [0u8; 16 * 1024];
    let m = encode(&again, &mut b[..max]).expect("re-encode");
    assert_eq!(&a[..n], &b[..m], "encoding is not a fixed point");
}

/// The in-place decoder against postcard's on the front of `data`.
fn check_in_place(data: &[u8]) {
    let mut into = ServerMsg::Subscribed;
    let got = ServerMsg::decode_prefix_into(data, &mut into).map(<[u8]>::len);
    match (outpost_proto::decode_prefix::<ServerMsg>(data), got) {
        (Ok((want, rest)), Ok(rest_len)) => {
            assert_eq!(rest.len(), rest_len, "in-place decoder consumed other bytes");
            let mut a = [0u8; 16 * 1024];
            let mut b = [0u8; 16 * 1024];
            let n = encode(&want, &mut a[..MAX_SERVER_MSG]).expect("fits");
            let m = encode(&into, &mut b[..MAX_SERVER_MSG]).expect("fits");
            assert_eq!(&a[..n], &b[..m], "in-place decoder decoded another message");
        }
        (Err(_), Err(_)) => {}
        (want, got) => panic!("postcard {:?} vs in place {got:?}", want.map(|(_, r)| r.len())),
    }
}

fuzz_target!(|data: &[u8]| {
    check::<ClientMsg>(data, MAX_CLIENT_MSG);
    check::<ServerMsg>(data, MAX_SERVER_MSG);
    check_in_place(data);
    if let Ok(mut r) = decode::<ResultMsg>(data) {
        // The hand-written hot-path encoder agrees with postcard on anything decodable.
        let mut fast = [0u8; 16 * 1024];
        let n = outpost_proto::encode_result(&r, &mut fast[..MAX_SERVER_MSG]).expect("fits");
        let mut reference = [0u8; 16 * 1024];
        let m = encode(
            &ServerMsg::Result(r.clone()),
            &mut reference[..MAX_SERVER_MSG],
        )
        .unwrap();
        assert_eq!(
            &fast[..n],
            &reference[..m],
            "encode_result differs from postcard"
        );
        let mut sub = Subscribe::all();
        sub.min_score = 0.5;
        sub.keypoints = false;
        sub.apply(&mut r);
        outpost_proto::encode_result(&r, &mut fast[..MAX_SERVER_MSG])
            .expect("filtered result fits");
    }
});
