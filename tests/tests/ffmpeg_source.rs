//! The ffmpeg video source against real ffmpeg (Debian `ffmpeg`, installed by
//! `tools/ci/install-system.sh`): clips made by ffmpeg itself in a temporary directory, exact
//! frames and pixels, a real pipeline with BlazeFace int8, a child killed mid-run, and a URL
//! that refuses connections.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use outpost_models::Model;
use outpost_runtime::SessionOptions;
use outpost_runtime::pipeline::{
    Backoff, FrameBuf, ImageSource, Pipeline, Policy, Report, Source, SourceError, StreamConfig,
};
use outpost_runtime::preprocess::PixelFormat;
use outpost_runtime::sources::{FfmpegConfig, FfmpegSource};

/// ffmpeg must be installed; say where it comes from when it is not.
fn require_ffmpeg() {
    for tool in ["ffmpeg", "ffprobe"] {
        let ok = Command::new(tool)
            .arg("-version")
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            ok,
            "`{tool}` is not installed: run tools/ci/install-system.sh (Debian package `ffmpeg`)"
        );
    }
}

fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .output()
        .expect("run ffmpeg (tools/ci/install-system.sh installs it)");
    assert!(
        out.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A lossless clip of `frames` frames of a known RGB pattern, and those frames.
fn rgb_clip(dir: &Path, w: u32, h: u32, frames: usize) -> (PathBuf, Vec<Vec<u8>>) {
    let pattern: Vec<Vec<u8>> = (0..frames)
        .map(|f| {
            (0..(w * h) as usize)
                .flat_map(|i| {
                    let (x, y) = (i % w as usize, i / w as usize);
                    [
                        (x * 4 + f * 16) as u8,
                        (y * 5 + f * 7) as u8,
                        ((x ^ y) + f * 3) as u8,
                    ]
                })
                .collect()
        })
        .collect();
    let raw = dir.join("pattern.rgb");
    std::fs::write(&raw, pattern.concat()).unwrap();
    let clip = dir.join("pattern.mkv");
    ffmpeg(&[
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-s",
        &format!("{w}x{h}"),
        "-r",
        "10",
        "-i",
        raw.to_str().unwrap(),
        "-c:v",
        "ffv1",
        "-pix_fmt",
        "bgr0",
        clip.to_str().unwrap(),
    ]);
    (clip, pattern)
}

/// A testsrc2 clip: `frames` frames of `w×h` at `rate` fps (lossless).
fn testsrc_clip(dir: &Path, name: &str, w: u32, h: u32, rate: u32, frames: u32) -> PathBuf {
    let clip = dir.join(name);
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &format!("testsrc2=size={w}x{h}:rate={rate}"),
        "-frames:v",
        &frames.to_string(),
        "-c:v",
        "ffv1",
        clip.to_str().unwrap(),
    ]);
    clip
}

fn models_dir() -> PathBuf {
    let dir = std::env::var_os("OUTPOST_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.models"));
    assert!(
        dir.join("blazeface-short-int8.safetensors").exists()
            && dir.join("data/astronaut.png").exists(),
        "{} lacks blazeface-short-int8.safetensors or data/astronaut.png: run `cargo run -p \
         outpost -- fetch all` and `cargo run -p outpost -- fetch-models` first (tools/test does)",
        dir.display()
    );
    dir
}

fn check_accounting(r: &Report) {
    for s in &r.streams {
        let c = s.counters;
        assert_eq!(
            c.captured,
            c.inferred + c.dropped_total(),
            "{}: {c:?}",
            s.name
        );
        assert_eq!(c.published, c.inferred, "{}: {c:?}", s.name);
    }
}

fn drain(src: &mut FfmpegSource) -> Vec<(Vec<u8>, u64, u32)> {
    let mut buf = FrameBuf::new(src.frame_capacity());
    let mut out = Vec::new();
    while let Some(m) = src.next_frame(&mut buf).unwrap() {
        out.push((buf.data().to_vec(), m.seq, m.index));
        assert!(out.len() < 1000, "the clip does not end");
    }
    out
}

#[test]
fn delivers_exactly_the_clips_frames_and_pixels() {
    require_ffmpeg();
    let dir = tempfile::tempdir().unwrap();
    let (clip, pattern) = rgb_clip(dir.path(), 40, 30, 7);
    let mut src = FfmpegSource::open(FfmpegConfig::new(clip.to_str().unwrap())).unwrap();
    assert_eq!(src.size(), (40, 30), "probed with ffprobe");
    assert_eq!(src.frame_capacity(), 40 * 30 * 3);
    let frames = drain(&mut src);
    assert_eq!(frames.len(), 7);
    for (i, (data, seq, index)) in frames.iter().enumerate() {
        assert_eq!(*seq, i as u64);
        assert_eq!(*index, i as u32);
        assert!(data == &pattern[i], "frame {i}: pixels differ");
    }
    // The end stays the end.
    let mut buf = FrameBuf::new(src.frame_capacity());
    assert!(src.next_frame(&mut buf).unwrap().is_none());
    assert_eq!(src.spawns(), 1);
    assert_eq!(src.child_pid(), None, "the child is reaped at the end");

    // Looping: the clip again from its start, seq going on.
    let mut src =
        FfmpegSource::open(FfmpegConfig::new(clip.to_str().unwrap()).looping(true)).unwrap();
    for k in 0..17u64 {
        let m = src.next_frame(&mut buf).unwrap().unwrap();
        assert_eq!(m.seq, k);
        assert!(
            buf.data() == &pattern[k as usize % 7][..],
            "looped frame {k}"
        );
    }
    drop(src);
}

#[test]
fn yuv_output_and_scaling() {
    require_ffmpeg();
    let dir = tempfile::tempdir().unwrap();
    let clip = testsrc_clip(dir.path(), "t.mkv", 64, 48, 10, 5);
    // I420 at the clip's size equals ffmpeg's own yuv420p decode of it.
    let reference = dir.path().join("ref.yuv");
    ffmpeg(&[
        "-i",
        clip.to_str().unwrap(),
        "-f",
        "rawvideo",
        "-pix_fmt",
        "yuv420p",
        reference.to_str().unwrap(),
    ]);
    let reference = std::fs::read(reference).unwrap();
    let cfg = FfmpegConfig::new(clip.to_str().unwrap()).format(PixelFormat::I420);
    let mut src = FfmpegSource::open(cfg).unwrap();
    let frame_len = 64 * 48 * 3 / 2;
    assert_eq!(src.frame_len(), frame_len);
    let frames = drain(&mut src);
    assert_eq!(frames.len(), 5);
    assert_eq!(reference.len(), 5 * frame_len);
    for (i, (data, _, _)) in frames.iter().enumerate() {
        assert!(
            data[..] == reference[i * frame_len..(i + 1) * frame_len],
            "frame {i}"
        );
    }
    // Scaled NV12 (given size: nothing probed).
    let cfg = FfmpegConfig::new(clip.to_str().unwrap())
        .size(32, 20)
        .format(PixelFormat::Nv12);
    let mut src = FfmpegSource::open(cfg).unwrap();
    let mut buf = FrameBuf::new(src.frame_capacity());
    let mut n = 0;
    while src.next_frame(&mut buf).unwrap().is_some() {
        assert_eq!((buf.width(), buf.height()), (32, 20));
        assert_eq!(buf.format(), PixelFormat::Nv12);
        assert_eq!(buf.data().len(), 32 * 20 + 32 * 10);
        assert_eq!(buf.view().validate(), Ok(()));
        n += 1;
    }
    assert_eq!(n, 5);
    let odd = FfmpegConfig::new(clip.to_str().unwrap())
        .size(33, 20)
        .format(PixelFormat::Nv12);
    let e = FfmpegSource::open(odd).unwrap_err();
    assert!(e.to_string().contains("even width"), "{e}");
}

#[test]
fn bad_inputs_are_clear_errors() {
    require_ffmpeg();
    let dir = tempfile::tempdir().unwrap();
    let e = FfmpegSource::open(FfmpegConfig::new("/nonexistent/clip.mkv")).unwrap_err();
    assert!(e.to_string().contains("no such file"), "{e}");
    // Not a video: ffprobe says so.
    let junk = dir.path().join("junk.mkv");
    std::fs::write(&junk, b"not a video at all").unwrap();
    let e = FfmpegSource::open(FfmpegConfig::new(junk.to_str().unwrap())).unwrap_err();
    assert!(e.to_string().contains("ffprobe"), "{e}");
    // With a size given, nothing is probed: ffmpeg fails on the first frame, for good (a file
    // that cannot be read will not become readable).
    let mut src =
        FfmpegSource::open(FfmpegConfig::new(junk.to_str().unwrap()).size(16, 16)).unwrap();
    let mut buf = FrameBuf::new(src.frame_capacity());
    let e = src.next_frame(&mut buf).unwrap_err();
    assert!(!e.is_transient(), "{e}");
    assert!(matches!(e, SourceError::Other(_)), "{e}");
    assert!(e.to_string().contains("exit status"), "{e}");
    // A missing program.
    let mut cfg = FfmpegConfig::new(junk.to_str().unwrap()).size(16, 16);
    cfg.ffmpeg = "/nonexistent/ffmpeg".into();
    let e = FfmpegSource::open(cfg).unwrap_err();
    assert!(e.to_string().contains("install-system.sh"), "{e}");
}

/// The real BlazeFace int8 model over a testsrc2 clip and a clip of the astronaut: every frame
/// is captured, inferred and published, and the face is found in every astronaut frame.
#[test]
fn real_pipeline_with_blazeface() {
    require_ffmpeg();
    let models = models_dir();
    let dir = tempfile::tempdir().unwrap();
    let test = testsrc_clip(dir.path(), "t.mkv", 320, 240, 15, 12);
    let face = dir.path().join("astronaut.mkv");
    ffmpeg(&[
        "-loop",
        "1",
        "-i",
        models.join("data/astronaut.png").to_str().unwrap(),
        "-frames:v",
        "6",
        "-r",
        "10",
        "-c:v",
        "ffv1",
        face.to_str().unwrap(),
    ]);
    let model = Model::open(models.join("blazeface-short-int8.safetensors")).unwrap();
    let mut p = Pipeline::new();
    let m = p
        .add_model("blazeface", &model, SessionOptions::default())
        .unwrap();
    for (name, clip, format) in [
        ("test", &test, PixelFormat::Nv12),
        ("face", &face, PixelFormat::Rgb8),
    ] {
        let src =
            FfmpegSource::open(FfmpegConfig::new(clip.to_str().unwrap()).format(format)).unwrap();
        p.add_stream(
            StreamConfig::new(name, Box::new(src), m)
                .policy(Policy::Block(Duration::from_secs(30))),
        )
        .unwrap();
    }
    let stop = AtomicBool::new(false);
    let mut face_frames = 0;
    let mut faces_found = 0;
    let report = p.run(&stop, |r| {
        if r.stream == "face" {
            face_frames += 1;
            assert_eq!((r.frame.width(), r.frame.height()), (512, 512));
            if !r.detections.is_empty() {
                faces_found += 1;
            }
        }
    });
    check_accounting(&report);
    let c = report.streams[0].counters;
    assert_eq!((c.captured, c.published), (12, 12), "{c:?}");
    assert_eq!(c.source_failures, 0);
    let c = report.streams[1].counters;
    assert_eq!((c.captured, c.published), (6, 6), "{c:?}");
    assert_eq!((face_frames, faces_found), (6, 6));
    assert!(report.streams.iter().all(|s| s.error.is_none()));
}

/// Process ids of our ffmpeg children whose command line mentions `needle`.
fn ffmpeg_children(needle: &str) -> Vec<u32> {
    let me = std::process::id().to_string();
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`: comm may hold spaces, so split after the last ')'.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1));
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd);
        if ppid == Some(me.as_str()) && cmd.starts_with("ffmpeg") && cmd.contains(needle) {
            pids.push(pid);
        }
    }
    pids
}

/// SIGKILL the ffmpeg child mid-run: the stream resumes with a new child, the failure and the
/// reconnect are counted, it still delivers its frame count, and a second stream in the same
/// pipeline keeps its own.
#[test]
fn killed_child_is_respawned_and_other_streams_go_on() {
    require_ffmpeg();
    let models = models_dir();
    let dir = tempfile::tempdir().unwrap();
    let clip = testsrc_clip(dir.path(), "victim.mkv", 160, 120, 30, 30);
    let model = Model::open(models.join("blazeface-short-int8.safetensors")).unwrap();
    let mut p = Pipeline::new();
    let m = p
        .add_model("blazeface", &model, SessionOptions::default())
        .unwrap();
    let cfg = FfmpegConfig::new(clip.to_str().unwrap())
        .realtime(true)
        .looping(true);
    p.add_stream(
        StreamConfig::new("victim", Box::new(FfmpegSource::open(cfg).unwrap()), m)
            .policy(Policy::Block(Duration::from_secs(30)))
            .backoff(Backoff::new(
                Duration::from_millis(50),
                Duration::from_millis(400),
            ))
            .max_frames(Some(40)),
    )
    .unwrap();
    let images = ImageSource::open(&[models.join("data/astronaut.png")])
        .unwrap()
        .with_fps(30.0)
        .looping(true);
    p.add_stream(
        StreamConfig::new("bystander", Box::new(images), m)
            .policy(Policy::Block(Duration::from_secs(30)))
            .max_frames(Some(45)),
    )
    .unwrap();
    let stop = AtomicBool::new(false);
    let mut victim_frames = 0;
    let mut killed = Vec::new();
    let report = p.run(&stop, |r| {
        if r.stream == "victim" {
            victim_frames += 1;
            if victim_frames == 10 {
                killed = ffmpeg_children("victim.mkv");
                for pid in &killed {
                    let st = Command::new("kill")
                        .args(["-KILL", &pid.to_string()])
                        .status()
                        .unwrap();
                    assert!(st.success());
                }
            }
        }
    });
    assert_eq!(killed.len(), 1, "one ffmpeg child for the clip: {killed:?}");
    check_accounting(&report);
    let victim = &report.streams[0];
    assert_eq!(victim.error, None);
    assert_eq!(victim.counters.captured, 40, "{:?}", victim.counters);
    assert_eq!(victim.counters.published, 40);
    assert!(
        victim.counters.source_failures >= 1,
        "{:?}",
        victim.counters
    );
    assert_eq!(victim.counters.reconnects, 1, "{:?}", victim.counters);
    let bystander = &report.streams[1];
    assert_eq!(bystander.counters.captured, 45);
    assert_eq!(bystander.counters.published, 45);
    assert_eq!(bystander.counters.source_failures, 0);
    assert_eq!(bystander.error, None);
    assert!(
        ffmpeg_children("victim.mkv").is_empty(),
        "the child is reaped when the pipeline ends"
    );
}

/// A URL whose server refuses connections: every attempt fails fast, is counted, and is
/// followed by a growing wait; the other stream runs; stop ends the pipeline promptly.
#[test]
fn refused_url_is_retried_with_backoff_and_stops_cleanly() {
    require_ffmpeg();
    let dir = tempfile::tempdir().unwrap();
    let clip = testsrc_clip(dir.path(), "ok.mkv", 64, 48, 30, 10);
    let mut p = Pipeline::new();
    let m = p.add_passthrough("none");
    let url = FfmpegConfig::new("http://127.0.0.1:1/x").size(64, 48);
    p.add_stream(
        StreamConfig::new("down", Box::new(FfmpegSource::open(url).unwrap()), m).backoff(
            Backoff::new(Duration::from_millis(40), Duration::from_millis(320)),
        ),
    )
    .unwrap();
    let ok = FfmpegSource::open(FfmpegConfig::new(clip.to_str().unwrap()).looping(true)).unwrap();
    p.add_stream(
        StreamConfig::new("up", Box::new(ok), m)
            .policy(Policy::Block(Duration::from_secs(30)))
            .max_frames(Some(25)),
    )
    .unwrap();
    let stop = AtomicBool::new(false);
    let run_for = Duration::from_millis(2500);
    let (report, stopped_in) = std::thread::scope(|s| {
        let h = s.spawn(|| p.run(&stop, |_| {}));
        std::thread::sleep(run_for);
        let t0 = Instant::now();
        stop.store(true, Ordering::Release);
        let r = h.join().unwrap();
        (r, t0.elapsed())
    });
    assert!(
        stopped_in < Duration::from_secs(2),
        "stop took {stopped_in:?}"
    );
    let down = &report.streams[0];
    let c = down.counters;
    assert_eq!(c.captured, 0);
    assert_eq!(c.reconnects, 0);
    assert_eq!(down.error, None, "a refused URL is transient");
    // Waits of at least 20, 40, 80, 160, 160, ... ms (half the nominal 40 → 320 ms): in 2.5 s
    // at most ~17 attempts; with ffmpeg's own start-up, at least 3.
    assert!(
        (3..=17).contains(&c.source_failures),
        "{} failures in {run_for:?}",
        c.source_failures
    );
    let up = &report.streams[1];
    assert_eq!(up.counters.captured, 25);
    assert_eq!(up.counters.published, 25);
    assert!(ffmpeg_children("127.0.0.1:1").is_empty());
}
