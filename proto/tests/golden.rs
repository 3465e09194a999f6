//! Golden bytes: these freeze wire format v1. If one of these fails, you changed the protocol:
//! bump `PROTOCOL_VERSION` and update `docs/ipc.md`, do not just update the bytes.

use outpost_proto::*;
use proptest::prelude::*;

mod support;

fn enc<T: serde::Serialize>(v: &T) -> Vec<u8> {
    let mut buf = vec![0u8; MAX_SERVER_MSG];
    let n = encode(v, &mut buf).unwrap();
    buf.truncate(n);
    buf
}

fn golden_client(msg: ClientMsg, bytes: &[u8]) {
    assert_eq!(enc(&msg), bytes, "{msg:?}");
    assert_eq!(ClientMsg::decode(bytes).unwrap(), msg);
}

fn golden_server(msg: ServerMsg, bytes: &[u8]) {
    assert_eq!(enc(&msg), bytes, "{msg:?}");
    assert_eq!(ServerMsg::decode(bytes).unwrap(), msg);
}

fn sample_result() -> ResultMsg {
    ResultMsg {
        stream: 1,
        seq: 300,
        capture_ns: 1,
        inference_ns: 2,
        publish_ns: 3,
        model: ModelRef {
            id: Name::try_from_str("m").unwrap(),
            version: 2,
        },
        detections: BoundedVec::from_slice(&[Detection {
            class: 0,
            score: 1.0,
            bbox: BBox {
                x_min: 0.0,
                y_min: 0.0,
                x_max: 0.5,
                y_max: 0.5,
            },
            keypoints: BoundedVec::from_slice(&[Point { x: 0.25, y: 0.75 }]).unwrap(),
        }])
        .unwrap(),
        class_scores: BoundedVec::from_slice(&[ClassScore {
            class: 3,
            score: 0.5,
        }])
        .unwrap(),
        events: BoundedVec::from_slice(&[SensorEvent {
            sensor: 1,
            kind: 2,
            value: -1.0,
            timestamp_ns: 5,
        }])
        .unwrap(),
    }
}

const SAMPLE_RESULT_BYTES: &[u8] = &[
    0x02, // ServerMsg::Result
    0x01, // stream 1
    0xac, 0x02, // seq 300
    0x01, 0x02, 0x03, // capture_ns, inference_ns, publish_ns
    0x01, b'm', 0x02, // model "m" v2
    0x01, // 1 detection
    0x00, // class 0
    0x00, 0x00, 0x80, 0x3f, // score 1.0
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // x_min 0.0, y_min 0.0
    0x00, 0x00, 0x00, 0x3f, 0x00, 0x00, 0x00, 0x3f, // x_max 0.5, y_max 0.5
    0x01, // 1 keypoint
    0x00, 0x00, 0x80, 0x3e, 0x00, 0x00, 0x40, 0x3f, // (0.25, 0.75)
    0x01, 0x03, 0x00, 0x00, 0x00, 0x3f, // class_scores [(3, 0.5)]
    0x01, 0x01, 0x02, 0x00, 0x00, 0x80, 0xbf, 0x05, // events [(sensor 1, kind 2, -1.0, t 5)]
];

#[test]
fn client_messages() {
    golden_client(
        ClientMsg::Hello(Hello {
            version: 1,
            capabilities: caps::ALL_V1,
            client_name: Name::try_from_str("cli").unwrap(),
        }),
        &[0x00, 0x01, 0x0f, 0x03, b'c', b'l', b'i'],
    );
    golden_client(
        ClientMsg::Subscribe(Subscribe {
            streams: BoundedVec::from_slice(&[1, 300]).unwrap(),
            classes: BoundedVec::new(),
            min_score: 0.5,
            keypoints: false,
        }),
        &[
            0x01, 0x02, 0x01, 0xac, 0x02, 0x00, 0x00, 0x00, 0x00, 0x3f, 0x00,
        ],
    );
    golden_client(
        ClientMsg::Request(Request {
            id: 7,
            body: RequestBody::Status,
        }),
        &[0x02, 0x07, 0x00],
    );
    golden_client(
        ClientMsg::Request(Request {
            id: 200,
            body: RequestBody::ListModels,
        }),
        &[0x02, 0xc8, 0x01, 0x01],
    );
    golden_client(ClientMsg::Bye, &[0x03]);
}

#[test]
fn server_messages() {
    golden_server(
        ServerMsg::Hello(ServerHello {
            version: 1,
            capabilities: caps::ALL_V1,
            max_message: 8000,
            queue_capacity: 256,
        }),
        &[0x00, 0x01, 0x0f, 0xc0, 0x3e, 0x80, 0x02],
    );
    golden_server(ServerMsg::Subscribed, &[0x01]);
    golden_server(ServerMsg::Result(sample_result()), SAMPLE_RESULT_BYTES);
    golden_server(ServerMsg::Missed(Missed { count: 5 }), &[0x03, 0x05]);
    golden_server(
        ServerMsg::Response(Response {
            id: 9,
            body: ResponseBody::Status(Status {
                uptime_ms: 1000,
                clients: 2,
                published: 3,
                publish_dropped: 0,
                missed_total: 4,
                disconnected_slow: 1,
                rejected: 0,
                your_missed: 0,
                queue_capacity: 256,
            }),
        }),
        &[
            0x04, 0x09, 0x00, 0xe8, 0x07, 0x02, 0x03, 0x00, 0x04, 0x01, 0x00, 0x00, 0x80, 0x02,
        ],
    );
    let model = ModelInfo {
        id: Name::try_from_str("m").unwrap(),
        version: 1,
        sha256: [0xaa; 32],
        input_width: 128,
        input_height: 128,
        classes: 1,
        active: true,
    };
    let mut bytes = vec![0x04, 0x01, 0x01, 0x01, 0x01, b'm', 0x01];
    bytes.extend_from_slice(&[0xaa; 32]);
    bytes.extend_from_slice(&[0x80, 0x01, 0x80, 0x01, 0x01, 0x01]);
    golden_server(
        ServerMsg::Response(Response {
            id: 1,
            body: ResponseBody::Models(BoundedVec::from_slice(&[model]).unwrap()),
        }),
        &bytes,
    );
    golden_server(
        ServerMsg::Error(ErrorMsg::new(ErrorCode::Malformed, "bad")),
        &[0x05, 0x01, 0x03, b'b', b'a', b'd'],
    );
    golden_server(
        ServerMsg::Error(ErrorMsg::new(ErrorCode::ShuttingDown, "")),
        &[0x05, 0x09, 0x00],
    );
}

#[test]
fn encode_result_matches_server_msg_encoding() {
    let mut buf = [0u8; MAX_SERVER_MSG];
    let n = encode_result(&sample_result(), &mut buf).unwrap();
    assert_eq!(&buf[..n], SAMPLE_RESULT_BYTES);
}

#[test]
fn bounds_are_frozen() {
    assert_eq!(MAX_CLIENT_MSG, 152);
    // Result: 1 tag + 3 stream + 10 seq + 3×10 timestamps + 38 model + (1 + 100×72) detections
    // + (1 + 16×7) class scores + (1 + 8×20) events.
    assert_eq!(MAX_SERVER_MSG, 7557);
}

#[test]
fn decoding_is_strict() {
    // Trailing byte.
    assert_eq!(
        ClientMsg::decode(&[0x03, 0x00]),
        Err(WireError::TrailingBytes)
    );
    // Unknown tag.
    assert_eq!(ClientMsg::decode(&[0x04]), Err(WireError::Invalid));
    // Truncated.
    assert_eq!(ClientMsg::decode(&[0x02, 0x07]), Err(WireError::Truncated));
    assert_eq!(ClientMsg::decode(&[]), Err(WireError::Truncated));
    // 17 streams in a 16-stream filter.
    let mut too_many = vec![0x01, 17];
    too_many.extend_from_slice(&[0x00; 17]);
    too_many.extend_from_slice(&[0x00, 0x00, 0x00, 0x00, 0x00, 0x00]);
    assert_eq!(ClientMsg::decode(&too_many), Err(WireError::Invalid));
    // Invalid UTF-8 in a name.
    assert_eq!(
        ClientMsg::decode(&[0x00, 0x01, 0x00, 0x01, 0xff]),
        Err(WireError::Invalid)
    );
    // Full buffer on encode.
    let mut small = [0u8; 4];
    assert_eq!(
        encode_result(&sample_result(), &mut small),
        Err(WireError::BufferFull)
    );
}

#[test]
fn full_result_fits_max_size() {
    let mut r = sample_result();
    r.model.id = Name::truncating(&"x".repeat(100));
    r.seq = u64::MAX;
    r.capture_ns = u64::MAX;
    r.inference_ns = u64::MAX;
    r.publish_ns = u64::MAX;
    r.stream = u16::MAX;
    r.detections.clear();
    let kp = BoundedVec::from_slice(&[Point { x: 1.0, y: 1.0 }; MAX_KEYPOINTS]).unwrap();
    while r
        .detections
        .push(Detection {
            class: u16::MAX,
            keypoints: kp.clone(),
            ..Default::default()
        })
        .is_ok()
    {}
    while r
        .class_scores
        .push(ClassScore {
            class: u16::MAX,
            score: 1.0,
        })
        .is_ok()
    {}
    while r
        .events
        .push(SensorEvent {
            sensor: u16::MAX,
            kind: u16::MAX,
            value: 1.0,
            timestamp_ns: u64::MAX,
        })
        .is_ok()
    {}
    let mut buf = [0u8; MAX_SERVER_MSG];
    let n = encode_result(&r, &mut buf).unwrap();
    assert!(n <= MAX_SERVER_MSG);
    assert!(
        n > MAX_SERVER_MSG - 64,
        "MaxSize should be tight: {n} of {MAX_SERVER_MSG}"
    );
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = ClientMsg::decode(&bytes);
        let _ = ServerMsg::decode(&bytes);
    }

    #[test]
    fn results_round_trip(
        stream in any::<u16>(),
        seq in any::<u64>(),
        dets in proptest::collection::vec((any::<u16>(), 0.0f32..1.0, 0usize..=MAX_KEYPOINTS), 0..=MAX_DETECTIONS),
    ) {
        let mut r = ResultMsg { stream, seq, ..Default::default() };
        for (class, score, kps) in dets {
            let mut d = Detection { class, score, ..Default::default() };
            for k in 0..kps {
                d.keypoints.push(Point { x: k as f32, y: score }).unwrap();
            }
            r.detections.push(d).unwrap();
        }
        let mut buf = [0u8; MAX_SERVER_MSG];
        let n = encode_result(&r, &mut buf).unwrap();
        prop_assert_eq!(ServerMsg::decode(&buf[..n]).unwrap(), ServerMsg::Result(r));
    }
}

#[test]
fn server_packets_hold_messages_back_to_back() {
    let mut bytes = vec![0x03, 0x05];
    bytes.extend_from_slice(SAMPLE_RESULT_BYTES);
    let msgs: Vec<ServerMsg> = ServerMsg::packet(&bytes).collect::<Result<_, _>>().unwrap();
    assert_eq!(
        msgs,
        vec![
            ServerMsg::Missed(Missed { count: 5 }),
            ServerMsg::Result(sample_result())
        ]
    );
    // A malformed tail yields one error, then the iterator ends.
    let mut it = ServerMsg::packet(&[0x01, 0x09]);
    assert_eq!(it.next(), Some(Ok(ServerMsg::Subscribed)));
    assert_eq!(it.next(), Some(Err(WireError::Invalid)));
    assert_eq!(it.next(), None);
}

proptest! {
    /// The hand-written hot-path encoder is byte-identical to postcard's.
    #[test]
    fn fast_result_encoder_matches_postcard(r in support::result_strategy(MAX_DETECTIONS)) {
        let mut fast = [0u8; MAX_SERVER_MSG];
        let n = encode_result(&r, &mut fast).unwrap();
        let reference = enc(&ServerMsg::Result(r.clone()));
        prop_assert_eq!(&fast[..n], &reference[..]);
        // Too small a buffer is an error, never a panic.
        prop_assert_eq!(encode_result(&r, &mut fast[..n - 1]), Err(WireError::BufferFull));
    }
}
