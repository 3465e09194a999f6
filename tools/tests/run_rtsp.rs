//! `outpost run --config` with an `rtsp` stream from a real RTSP camera (GstRtspServer, see
//! `outpost_tests::rtsp`) into the real BlazeFace int8 model: frames flow end to end at the
//! camera's rate; the camera killed mid-run and started again on the same port → the stream
//! reconnects (counted in the summary) and frames flow again.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use outpost_tests::rtsp::{RtspServer, free_port};
use serde_json::Value;

fn model() -> PathBuf {
    outpost_tests::model_file("blazeface-short-int8.safetensors")
}

#[test]
fn rtsp_stream_runs_and_reconnects_after_the_camera_restarts() {
    let port = free_port();
    let server = RtspServer::start(port);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cam.toml");
    std::fs::write(
        &config,
        format!(
            "[[stream]]\nname = \"gate\"\nrtsp = \"{}\"\nwidth = 320\nheight = 240\n\
             model = \"{}\"\npolicy = \"latest\"\nframes = 90\nbackoff_ms = 100\n\
             backoff_max_ms = 400\n",
            server.url(),
            model().display()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_outpost"))
        .args(["run", "--json", "--config"])
        .arg(&config)
        .arg("--out")
        .arg(dir.path().join("out"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut frames = 0;
    let mut next = || -> Value { serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap() };
    // 20 frames, then the camera dies and comes back.
    while frames < 20 {
        let v = next();
        assert_eq!(v["stream"], "gate", "{v}");
        // SMPTE colour bars: no face.
        assert_eq!(v["detections"], serde_json::json!([]), "{v}");
        frames += 1;
    }
    server.kill();
    std::thread::sleep(Duration::from_millis(500));
    let _server = RtspServer::start(port);
    let t = Instant::now();
    let summary = loop {
        let v = next();
        if v.get("summary").is_some() {
            break v["summary"].clone();
        }
        frames += 1;
        assert!(t.elapsed() < Duration::from_secs(60), "no end in sight");
    };
    let status = child.wait().unwrap();
    assert!(status.success(), "exit {status:?}");
    assert_eq!(frames, 90, "frames published: {summary}");
    assert_eq!(summary["published"].as_u64(), Some(90), "{summary}");
    assert!(summary["reconnects"].as_u64().unwrap() >= 1, "{summary}");
    assert!(
        summary["source_failures"].as_u64().unwrap() >= 1,
        "{summary}"
    );
}
