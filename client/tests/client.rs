//! The client library against the real result server.

use std::time::Duration;

use outpost_client::{Client, ClientConfig, ClientError, ErrorCode, Event, Subscribe};
use outpost_proto::{
    BBox, BoundedVec, ClientMsg, Detection, ModelInfo, Name, Point, ResultMsg, ServerMsg,
};
use outpost_runtime::ipc::{ResultServer, ServerConfig};

fn result(stream: u16, seq: u64, scores: &[(u16, f32)]) -> ResultMsg {
    let mut r = ResultMsg {
        stream,
        seq,
        ..Default::default()
    };
    for &(class, score) in scores {
        let kp = BoundedVec::from_slice(&[Point { x: 0.5, y: 0.5 }]).unwrap();
        let bbox = BBox {
            x_min: 0.1,
            y_min: 0.1,
            x_max: 0.2,
            y_max: 0.2,
        };
        r.detections
            .push(Detection {
                class,
                score,
                bbox,
                keypoints: kp,
            })
            .unwrap();
    }
    r
}

fn config(path: &std::path::Path) -> ClientConfig {
    let mut c = ClientConfig::new(path);
    c.read_timeout = Some(Duration::from_secs(5));
    c
}

fn next_result(sub: &mut outpost_client::Subscription) -> ResultMsg {
    match sub.next().expect("subscription ended").expect("event") {
        Event::Result(r) => *r,
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn status_models_and_filtered_subscription() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.sock");
    let server = ResultServer::bind(&path, ServerConfig::default()).unwrap();
    let model = ModelInfo {
        id: Name::truncating("blazeface-short"),
        version: 3,
        input_width: 128,
        input_height: 128,
        classes: 1,
        active: true,
        ..Default::default()
    };
    server.set_models(core::slice::from_ref(&model));

    let mut client = Client::connect(&path).unwrap();
    assert_eq!(
        client.server_hello().version,
        outpost_proto::PROTOCOL_VERSION
    );
    assert_eq!(client.list_models().unwrap(), vec![model]);
    let status = client.status().unwrap();
    assert_eq!(status.clients, 1);
    assert_eq!(status.published, 0);

    let mut filter = Subscribe::all();
    filter.streams = BoundedVec::from_slice(&[7]).unwrap();
    filter.classes = BoundedVec::from_slice(&[1, 2]).unwrap();
    filter.min_score = 0.5;
    filter.keypoints = false;
    let mut sub = Client::connect_with(config(&path))
        .unwrap()
        .subscribe(filter)
        .unwrap();
    let publisher = server.publisher();
    publisher.publish(&result(3, 0, &[(1, 0.9)])).unwrap(); // other stream: not delivered
    publisher
        .publish(&result(7, 1, &[(1, 0.9), (1, 0.4), (3, 0.9), (2, 0.6)]))
        .unwrap();
    let r = next_result(&mut sub);
    assert_eq!((r.stream, r.seq), (7, 1));
    let kept: Vec<(u16, f32)> = r.detections.iter().map(|d| (d.class, d.score)).collect();
    assert_eq!(kept, vec![(1, 0.9), (2, 0.6)]);
    assert!(r.detections.iter().all(|d| d.keypoints.is_empty()));
    assert_eq!(client.status().unwrap().published, 2);
}

#[test]
fn subscription_reconnects_after_server_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.sock");
    let server = ResultServer::bind(&path, ServerConfig::default()).unwrap();
    let mut sub = Client::connect_with(config(&path))
        .unwrap()
        .subscribe(Subscribe::all())
        .unwrap();
    server.publisher().publish(&result(0, 1, &[])).unwrap();
    assert_eq!(next_result(&mut sub).seq, 1);
    drop(server);

    let restart = std::thread::spawn({
        let path = path.clone();
        move || {
            std::thread::sleep(Duration::from_millis(200));
            ResultServer::bind(&path, ServerConfig::default()).unwrap()
        }
    });
    // The old server said ShuttingDown and closed; the iterator reconnects and says so.
    assert_eq!(sub.next().unwrap().unwrap(), Event::Reconnected);
    let server = restart.join().unwrap();
    server.publisher().publish(&result(0, 2, &[])).unwrap();
    assert_eq!(next_result(&mut sub).seq, 2);
}

#[test]
fn connect_failure_is_a_connect_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = Client::connect(dir.path().join("none.sock")).unwrap_err();
    assert!(matches!(err, ClientError::Connect { .. }), "{err}");
    assert!(err.to_string().contains("none.sock"));
}

#[test]
fn refused_peer_gets_not_permitted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.sock");
    // SAFETY: getuid(2) has no preconditions.
    let me = unsafe { libc::getuid() };
    let config = ServerConfig {
        allow_uids: vec![me.wrapping_add(1)],
        allow_gids: vec![],
        ..Default::default()
    };
    let _server = ResultServer::bind(&path, config).unwrap();
    match Client::connect(&path).unwrap_err() {
        ClientError::Server {
            code: ErrorCode::NotPermitted,
            ..
        } => {}
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn recv_into_reuses_one_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.sock");
    let server = ResultServer::bind(&path, ServerConfig::default()).unwrap();
    let mut client = Client::connect_with(config(&path)).unwrap();
    client
        .send(&ClientMsg::Subscribe(Subscribe::all()))
        .unwrap();
    let mut msg = ServerMsg::Missed(outpost_proto::Missed { count: 1 });
    loop {
        client.recv_into(&mut msg).unwrap();
        if msg == ServerMsg::Subscribed {
            break;
        }
    }
    let publisher = server.publisher();
    for seq in 0..50 {
        let scores: &[(u16, f32)] = if seq % 2 == 0 {
            &[(1, 0.9), (2, 0.4)]
        } else {
            &[]
        };
        publisher.publish(&result(3, seq, scores)).unwrap();
    }
    for seq in 0..50 {
        client.recv_into(&mut msg).unwrap();
        let ServerMsg::Result(r) = &msg else {
            panic!("expected a result, got {msg:?}")
        };
        assert_eq!(
            r,
            &result(
                3,
                seq,
                if seq % 2 == 0 {
                    &[(1, 0.9), (2, 0.4)]
                } else {
                    &[]
                }
            )
        );
    }
}

#[test]
fn batched_packets_are_returned_one_message_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.sock");
    let server = ResultServer::bind(&path, ServerConfig::default()).unwrap();
    let mut sub = Client::connect_with(config(&path))
        .unwrap()
        .subscribe(Subscribe::all())
        .unwrap();
    let publisher = server.publisher();
    // Published faster than the client reads: the server packs them several to a packet.
    for seq in 0..200 {
        publisher.publish(&result(0, seq, &[(1, 0.9)])).unwrap();
    }
    for seq in 0..200 {
        assert_eq!(next_result(&mut sub).seq, seq);
    }
    assert_eq!(server.status().missed_total, 0);
}
