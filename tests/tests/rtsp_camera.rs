//! The native RTSP camera source (`outpost_runtime::sources::rtsp`, feature `rtsp`) against a
//! real RTSP server: GstRtspServer serving `videotestsrc ! x264enc ! rtph264pay` (SMPTE colour
//! bars, 320×240 at 30 fps), started by each test on a free 127.0.0.1 port by
//! `tests/support/rtsp_server.py` and killed by PID (`outpost_tests::rtsp`).
//!
//! Needs Debian `python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-{base,good,ugly}`
//! (`tools/ci/install-system.sh`, run by `tools/test`) and, for the pipeline test, the converted
//! BlazeFace model and sample images in `$OUTPOST_MODELS` (default `.models/`, made by
//! `cargo run -p outpost -- fetch-models`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use outpost_models::Model;
use outpost_runtime::SessionOptions;
use outpost_runtime::pipeline::{Backoff, FrameBuf, ImageSource, Pipeline, Source, StreamConfig};
use outpost_runtime::preprocess::PixelFormat;
use outpost_runtime::sources::{RtspConfig, RtspSource};
use outpost_tests::rtsp::{FPS, HEIGHT, RtspServer, WIDTH, free_port};

/// The tests share two cores; one at a time keeps the frame-rate check meaningful.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn camera(url: &str) -> RtspSource {
    RtspSource::open(
        RtspConfig::new(url)
            .with_max_size(640, 480)
            .with_timeouts(Duration::from_secs(2), Duration::from_secs(2)),
    )
    .unwrap()
}

/// `(Y, U, V)` of the pixel at `(x, y)` of an I420 frame.
fn yuv_at(frame: &FrameBuf, x: usize, y: usize) -> (u8, u8, u8) {
    let (w, h) = (frame.width() as usize, frame.height() as usize);
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let d = frame.data();
    let c = (y / 2) * cw + x / 2;
    (d[y * w + x], d[w * h + c], d[w * h + cw * ch + c])
}

/// The SMPTE bars' top section as GStreamer's `videotestsrc` draws it: white, yellow, cyan,
/// green, magenta, red, blue, left to right, at full intensity, with their BT.601 studio-range
/// `(Y, U, V)` (what ffmpeg decodes from the same server, too).
const BARS: [(u8, u8, u8); 7] = [
    (235, 128, 128),
    (210, 16, 146),
    (170, 166, 16),
    (145, 54, 34),
    (106, 202, 222),
    (81, 90, 240),
    (41, 240, 110),
];

fn assert_colour_bars(frame: &FrameBuf) {
    assert_eq!(frame.format(), PixelFormat::I420);
    assert_eq!(
        (frame.width() as usize, frame.height() as usize),
        (WIDTH, HEIGHT)
    );
    assert_eq!(frame.data().len(), WIDTH * HEIGHT * 3 / 2);
    let y = HEIGHT / 3;
    for (i, want) in BARS.iter().enumerate() {
        let x = (2 * i + 1) * WIDTH / 14;
        let got = yuv_at(frame, x, y);
        let close = |a: u8, b: u8| a.abs_diff(b) <= 12;
        assert!(
            close(got.0, want.0) && close(got.1, want.1) && close(got.2, want.2),
            "bar {i} at ({x}, {y}): YUV {got:?}, expected about {want:?}"
        );
    }
}

#[test]
fn frames_arrive_at_the_camera_rate_with_the_test_pattern() {
    let _serial = serial();
    let server = RtspServer::start(free_port());
    let mut cam = camera(&server.url());
    let stats = cam.stats();
    let mut slot = FrameBuf::new(cam.frame_capacity());
    assert_eq!(cam.frame_capacity(), 640 * 480 * 3 / 2);

    let first = cam
        .next_frame(&mut slot)
        .unwrap()
        .expect("a live camera does not end");
    assert_eq!((first.seq, first.index, first.name.as_str()), (0, 0, "cam"));
    assert_colour_bars(&slot);
    assert!(cam.is_connected());

    // Let the start-up burst (frames encoded while we connected) pass, then time 60 frames.
    for _ in 0..10 {
        cam.next_frame(&mut slot).unwrap().unwrap();
    }
    let t0 = Instant::now();
    let mut last = 10;
    for _ in 0..60 {
        let meta = cam.next_frame(&mut slot).unwrap().unwrap();
        assert_eq!(
            meta.seq,
            last + 1,
            "frames come in order, none skipped by the source"
        );
        assert_eq!(u64::from(meta.index), meta.seq, "one session");
        last = meta.seq;
    }
    let fps = 60.0 / t0.elapsed().as_secs_f64();
    assert!(
        (FPS * 0.75..=FPS * 1.25).contains(&fps),
        "{fps:.1} frames/s from a {FPS} frames/s camera"
    );
    assert_colour_bars(&slot);
    assert_eq!(stats.frames(), 71);
    assert_eq!(
        (
            stats.connects(),
            stats.disconnects(),
            stats.connect_failures()
        ),
        (1, 0, 0)
    );
    assert_eq!(stats.decode_errors(), 0);
}

#[test]
fn pictures_larger_than_the_configured_maximum_end_the_stream() {
    let _serial = serial();
    let server = RtspServer::start(free_port());
    let mut cam = RtspSource::open(RtspConfig::new(server.url()).with_max_size(160, 120)).unwrap();
    let mut slot = FrameBuf::new(cam.frame_capacity());
    let err = cam.next_frame(&mut slot).unwrap_err();
    assert!(!err.is_transient(), "reconnecting cannot help: {err}");
    let msg = err.to_string();
    assert!(
        msg.contains("320x240") && msg.contains("160x120") && msg.contains("width"),
        "{msg}"
    );
    assert!(!cam.is_connected());
}

#[test]
fn the_source_reconnects_when_the_server_comes_back() {
    let _serial = serial();
    let port = free_port();
    let server = RtspServer::start(port);
    let mut cam = camera(&server.url());
    let stats = cam.stats();
    let mut slot = FrameBuf::new(cam.frame_capacity());
    for n in 0..5 {
        assert_eq!(cam.next_frame(&mut slot).unwrap().unwrap().seq, n);
    }

    server.kill();
    // Frames already on the way may still come; then the loss shows, as a transient error.
    let t = Instant::now();
    let err = loop {
        match cam.next_frame(&mut slot) {
            Ok(Some(_)) => assert!(t.elapsed() < Duration::from_secs(5), "frames after kill"),
            Ok(None) => panic!("a camera does not end"),
            Err(e) => break e,
        }
    };
    assert!(err.is_transient(), "{err}");
    assert_eq!(stats.disconnects(), 1);
    assert!(!cam.is_connected());
    // While the server is down, each call is a refused (transient) connection, and prompt.
    let t = Instant::now();
    let err = cam.next_frame(&mut slot).unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "connect took {:?}",
        t.elapsed()
    );
    assert_eq!(stats.connect_failures(), 1);

    let _server = RtspServer::start(port);
    let t = Instant::now();
    let meta = loop {
        match cam.next_frame(&mut slot) {
            Ok(Some(m)) => break m,
            Ok(None) => panic!("a camera does not end"),
            Err(e) => {
                assert!(e.is_transient(), "{e}");
                assert!(
                    t.elapsed() < Duration::from_secs(20),
                    "no frame after restart: {e}"
                );
                thread::sleep(Duration::from_millis(100));
            }
        }
    };
    // The sequence goes on; the index counts this session's pictures.
    assert!(meta.seq >= 5, "{meta:?}");
    assert_eq!(meta.index, 0);
    assert_colour_bars(&slot);
    assert_eq!(stats.connects(), 2);
    for _ in 0..10 {
        cam.next_frame(&mut slot).unwrap().unwrap();
    }
    assert_colour_bars(&slot);
}

fn models_dir() -> PathBuf {
    let dir = std::env::var_os("OUTPOST_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.models"));
    assert!(
        dir.join("blazeface-short-int8.safetensors").exists()
            && dir.join("data/astronaut.png").exists(),
        "{} has no BlazeFace int8 model or sample images: run `cargo run -p outpost -- \
         fetch-models` first (tools/test does)",
        dir.display()
    );
    dir
}

/// Wait until `cond` holds, up to `limit`.
fn wait_for(limit: Duration, what: &str, cond: impl Fn() -> bool) {
    let t = Instant::now();
    while !cond() {
        assert!(
            t.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// Two streams into BlazeFace int8: the RTSP camera and the astronaut photo replayed at 15 fps.
/// The camera's server is killed and restarted on the same port mid-run: the camera stream
/// resumes, its failures are counted, the photo stream goes on throughout, and every counter
/// adds up.
#[test]
fn a_pipeline_rides_out_a_camera_restart() {
    let _serial = serial();
    let dir = models_dir();
    let model = Model::open(dir.join("blazeface-short-int8.safetensors")).unwrap();
    let port = free_port();
    let server = RtspServer::start(port);

    let mut pipeline = Pipeline::new();
    let faces = pipeline
        .add_model("faces", &model, SessionOptions::default())
        .unwrap();
    let cam = camera(&server.url());
    let cam_stats = cam.stats();
    let cam_i = pipeline
        .add_stream(
            StreamConfig::new("cam", Box::new(cam), faces).backoff(Backoff::new(
                Duration::from_millis(50),
                Duration::from_millis(400),
            )),
        )
        .unwrap();
    let photo = ImageSource::open_one(&dir.join("data/astronaut.png"))
        .unwrap()
        .with_fps(15.0)
        .looping(true);
    let photo_i = pipeline
        .add_stream(StreamConfig::new("photo", Box::new(photo), faces))
        .unwrap();

    let cam_frames = AtomicU64::new(0);
    let cam_after_restart = AtomicU64::new(0);
    let photo_frames = AtomicU64::new(0);
    let photo_with_face = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let mut last_index = 0u32;
    let mut sessions = 1u64;
    let mut bad_frames = Vec::new();

    let (report, outage_photo_frames) = thread::scope(|s| {
        let control = s.spawn(|| {
            wait_for(Duration::from_secs(30), "camera frames", || {
                cam_frames.load(Ordering::Relaxed) >= 20
            });
            server.kill();
            let photos_at_kill = photo_frames.load(Ordering::Relaxed);
            // Down long enough for the pipeline to fail to reconnect a few times.
            wait_for(Duration::from_secs(15), "the source to notice", || {
                cam_stats.connect_failures() >= 2
            });
            let outage = photo_frames.load(Ordering::Relaxed) - photos_at_kill;
            let server = RtspServer::start(port);
            wait_for(
                Duration::from_secs(30),
                "camera frames after the restart",
                || cam_after_restart.load(Ordering::Relaxed) >= 20,
            );
            stop.store(true, Ordering::Relaxed);
            (server, outage)
        });
        let report = pipeline.run(&stop, |r| {
            if r.stream_index == cam_i {
                cam_frames.fetch_add(1, Ordering::Relaxed);
                // The index counts each session's pictures: a smaller one is a new session.
                if r.meta.index < last_index {
                    sessions += 1;
                }
                last_index = r.meta.index;
                if sessions > 1 {
                    cam_after_restart.fetch_add(1, Ordering::Relaxed);
                }
                let f = r.frame;
                if (f.width(), f.height(), f.format()) != (320, 240, PixelFormat::I420) {
                    bad_frames.push((f.width(), f.height(), f.format()));
                }
            } else {
                assert_eq!(r.stream_index, photo_i);
                photo_frames.fetch_add(1, Ordering::Relaxed);
                if r.detections.iter().any(|d| d.score >= 0.5) {
                    photo_with_face.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        let (server, outage) = control.join().unwrap();
        drop(server);
        (report, outage)
    });

    assert!(
        bad_frames.is_empty(),
        "camera frames of the wrong geometry: {bad_frames:?}"
    );
    assert_eq!(sessions, 2, "one restart, one new session");
    let cam = &report.streams[cam_i];
    let photo = &report.streams[photo_i];
    for s in [cam, photo] {
        let c = &s.counters;
        assert_eq!(s.error, None, "stream {} failed", s.name);
        assert_eq!(
            c.captured,
            c.inferred + c.dropped_total(),
            "{}: {c:?}",
            s.name
        );
        assert_eq!(c.published, c.inferred, "{}: {c:?}", s.name);
    }
    // Every transient error the camera returned was counted by the pipeline: the dropped
    // session and each refused connection while the server was down.
    let c = &cam.counters;
    assert_eq!(cam_stats.disconnects(), 1);
    assert_eq!(cam_stats.connects(), 2);
    assert_eq!(
        c.source_failures,
        cam_stats.disconnects() + cam_stats.connect_failures(),
        "{c:?}"
    );
    assert_eq!(c.reconnects, 1, "{c:?}");
    assert_eq!(c.captured, cam_stats.frames());
    assert_eq!(c.published, cam_frames.load(Ordering::Relaxed));
    assert!(cam_after_restart.load(Ordering::Relaxed) >= 20);
    // The photo stream never noticed, and kept going while the camera was down.
    let p = &photo.counters;
    assert_eq!((p.source_failures, p.reconnects), (0, 0), "{p:?}");
    assert!(
        outage_photo_frames > 0,
        "the photo stream stalled during the camera outage"
    );
    assert_eq!(p.published, photo_frames.load(Ordering::Relaxed));
    assert_eq!(
        photo_with_face.load(Ordering::Relaxed),
        p.published,
        "the astronaut's face"
    );
}
