//! Fuzz the protocol decoder with arbitrary packets, as a hostile peer would send them.
//!
//! Invariants: decoding never panics; anything that decodes re-encodes within the protocol's
//! `MaxSize` bound, and that encoding is a fixed point (decode → encode → decode → encode gives
//! the same bytes); the hot-path `encode_result` agrees with postcard; a subscription filter
//! applied to any decoded result keeps it encodable.
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

fuzz_target!(|data: &[u8]| {
    check::<ClientMsg>(data, MAX_CLIENT_MSG);
    check::<ServerMsg>(data, MAX_SERVER_MSG);
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
