//! `outpost run`, the built-in demo, as a user runs it: the real binary on the sample images
//! with the real BlazeFace int8 model. Checks the frames and files it reports, and that the
//! written copy is really redacted: the same model finds no face in it any more, and every pixel
//! outside the (10 %-grown) face boxes is the original's.
//!
//! Uses the repository's `.models` (set `OUTPOST_MODELS` to use another); when the files are
//! missing, the demo fetches them itself.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use outpost_models::Model;
use outpost_runtime::preprocess::{RgbImage, load_rgb};
use outpost_runtime::{Inference, SessionOptions};
use serde_json::Value;

const STEMS: [&str; 7] = [
    "astronaut",
    "chelsea",
    "coffee",
    "china",
    "rocket",
    "motorcycle_left",
    "flower",
];

fn models_dir() -> PathBuf {
    std::env::var_os("OUTPOST_MODELS")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.models"))
}

fn outpost() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_outpost"));
    c.env("OUTPOST_MODELS", models_dir());
    c
}

fn run(args: &[&str]) -> Output {
    outpost().args(args).output().expect("run outpost")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs the demo with `--json` into `out`; returns the frame objects and the summary.
fn demo_json(out: &Path, extra: &[&str]) -> (Vec<Value>, Value) {
    let out = out.to_str().unwrap();
    let mut args = vec!["run", "--out", out, "--fps", "200", "--json"];
    args.extend_from_slice(extra);
    let o = run(&args);
    assert!(
        o.status.success(),
        "exit {:?}\nstderr: {}\nstdout: {}",
        o.status,
        text(&o.stderr),
        text(&o.stdout)
    );
    let mut lines: Vec<Value> = text(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let summary = lines.pop().expect("a summary line")["summary"].clone();
    assert!(summary.is_object(), "last line is not the summary");
    (lines, summary)
}

/// The face boxes the demo model finds in `img`, in source pixels.
fn faces(inf: &mut Inference, img: &RgbImage) -> Vec<([f32; 4], f32)> {
    let lb = inf.run_image(&img.view()).expect("inference");
    inf.decoded()
        .iter()
        .flat_map(|d| d.detections())
        .map(|d| (lb.box_to_source(d.bbox), d.score))
        .collect()
}

/// The rectangle the redactor blurs for a box: grown by `margin` of its size on every side,
/// outwards to whole pixels, clamped (as `outpost_outbox::redact` computes it).
fn grown(b: [f32; 4], margin: f32, w: u32, h: u32) -> [u32; 4] {
    let (bw, bh) = (b[2] - b[0], b[3] - b[1]);
    let c = |v: f32, hi: u32| v.max(0.0).min(hi as f32) as u32;
    [
        c((b[0] - bw * margin).floor(), w),
        c((b[1] - bh * margin).floor(), h),
        c((b[2] + bw * margin).ceil(), w),
        c((b[3] + bh * margin).ceil(), h),
    ]
}

#[test]
fn demo_redacts_the_astronaut_and_only_the_face() {
    let dir = tempfile::tempdir().unwrap();
    // `block`: every frame is inferred even on a slow (debug) build.
    let (frames, summary) = demo_json(dir.path(), &["--policy", "block"]);

    // Every image once, in order, each with its stem.
    let sources: Vec<&str> = frames
        .iter()
        .map(|f| f["source"].as_str().unwrap())
        .collect();
    assert_eq!(sources, STEMS);
    for (i, f) in frames.iter().enumerate() {
        assert_eq!(f["frame"], i as u64);
        assert!(f["latency_ms"].as_f64().unwrap() > 0.0);
        assert!(f["infer_ms"].as_f64().unwrap() > 0.0);
    }
    for key in ["captured", "inferred", "published"] {
        assert_eq!(summary[key], 7, "{key}: {summary}");
    }
    assert_eq!(summary["dropped_total"], 0, "{summary}");
    for stage in [
        "capture",
        "queue",
        "preprocess",
        "infer",
        "publish",
        "total",
    ] {
        let s = &summary["stages"][stage];
        assert_eq!(s["count"], 7, "{stage}: {s}");
        let (p50, p99) = (s["p50_ms"].as_f64().unwrap(), s["p99_ms"].as_f64().unwrap());
        assert!(0.0 <= p50 && p50 <= p99, "{stage}: {s}");
    }

    // The astronaut has one face, reported in source pixels.
    let dets = frames[0]["detections"].as_array().unwrap();
    assert_eq!(dets.len(), 1, "{}", frames[0]);
    assert_eq!(dets[0]["label"], "face");
    assert!(dets[0]["score"].as_f64().unwrap() > 0.5);
    let b: Vec<f64> = dets[0]["box"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert!(
        b[0] > 100.0 && b[2] < 350.0 && b[1] > 20.0 && b[3] < 250.0,
        "{b:?}"
    );

    // Files: the astronaut's copy, none for the face-free coffee.
    let red_path = dir.path().join("astronaut-redacted.png");
    assert!(red_path.exists());
    assert_eq!(
        frames[0]["redacted"].as_str().map(PathBuf::from),
        Some(red_path.clone())
    );
    assert!(!dir.path().join("coffee-redacted.png").exists());
    assert_eq!(frames[2]["redacted"], Value::Null);
    assert_eq!(
        summary["files_written"].as_u64().unwrap(),
        frames.iter().filter(|f| !f["redacted"].is_null()).count() as u64
    );

    // The redaction itself: the same model finds no face in the written copy ...
    let models = models_dir();
    let model = Model::open(models.join("blazeface-short-int8.safetensors")).unwrap();
    let mut inf = Inference::new(&model, SessionOptions::default()).unwrap();
    let orig = load_rgb(&models.join("data/astronaut.png")).unwrap();
    let red = load_rgb(&red_path).unwrap();
    assert_eq!((red.width, red.height), (orig.width, orig.height));
    let before = faces(&mut inf, &orig);
    assert_eq!(before.len(), 1, "{before:?}");
    let after = faces(&mut inf, &red);
    assert!(
        after.is_empty(),
        "the model still finds a face above its threshold in the redacted copy: {after:?}"
    );

    // ... every pixel outside the grown face box is unchanged, and the box is really blurred.
    let rects: Vec<[u32; 4]> = before
        .iter()
        .map(|(b, _)| grown(*b, 0.1, orig.width, orig.height))
        .collect();
    let (mut inside, mut changed) = (0usize, 0usize);
    for y in 0..orig.height {
        for x in 0..orig.width {
            let i = (y as usize * orig.width as usize + x as usize) * 3;
            let (a, b) = (&orig.data[i..i + 3], &red.data[i..i + 3]);
            if rects
                .iter()
                .any(|r| (r[0]..r[2]).contains(&x) && (r[1]..r[3]).contains(&y))
            {
                inside += 1;
                changed += usize::from(a != b);
            } else {
                assert_eq!(a, b, "pixel ({x}, {y}) outside the face box changed");
            }
        }
    }
    assert!(inside > 5_000, "face box of {inside} pixels");
    assert!(
        changed * 10 >= inside * 8,
        "only {changed} of {inside} face pixels blurred"
    );
}

/// DESIGN.md §7: chelsea (a cat) has no face; LiteRT float scores it 0.476 against the 0.5
/// threshold, so this also checks the int8 model's calibration.
#[test]
fn demo_finds_no_face_in_chelsea() {
    let dir = tempfile::tempdir().unwrap();
    let (frames, _) = demo_json(dir.path(), &["--policy", "block"]);
    assert_eq!(frames[1]["source"], "chelsea");
    assert_eq!(
        frames[1]["detections"],
        serde_json::json!([]),
        "{}",
        frames[1]
    );
    assert!(!dir.path().join("chelsea-redacted.png").exists());
}

#[test]
fn demo_text_output_and_frame_limit() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let o = run(&[
        "run", "--out", out, "--fps", "200", "--frames", "3", "--policy", "block",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let stdout = text(&o.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with("astronaut: 1 face(s) [") && lines[0].ends_with(" ms)"),
        "{stdout}"
    );
    assert!(lines[1].starts_with("chelsea: "), "{stdout}");
    assert!(
        lines[2].starts_with("coffee: 0 face(s) (infer "),
        "{stdout}"
    );
    assert!(
        stdout.contains("frames: 3 captured, 3 inferred, 3 published, 0 dropped"),
        "{stdout}"
    );
    for stage in ["capture", "preprocess", "infer", "publish", "total"] {
        assert!(
            lines.iter().any(|l| l.trim_start().starts_with(stage)),
            "no {stage} latency in:\n{stdout}"
        );
    }
}

#[cfg(unix)]
#[test]
fn sigterm_drains_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let child = outpost()
        .args(["run", "--loop", "--fps", "100", "--json", "--out"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    // Let it reach the loop (the astronaut's copy appears once the first frame is published).
    let t0 = Instant::now();
    while !dir.path().join("astronaut-redacted.png").exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "the demo never published"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: sends a signal to the child we started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let o = child.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "exit {:?}: {}",
        o.status,
        text(&o.stderr)
    );
    let stdout = text(&o.stdout);
    let last = stdout.lines().last().unwrap();
    let s: Value = serde_json::from_str(last).unwrap();
    let s = &s["summary"];
    assert_eq!(s["interrupted"], true, "{s}");
    let (captured, inferred) = (
        s["captured"].as_u64().unwrap(),
        s["inferred"].as_u64().unwrap(),
    );
    assert!(captured > 7, "looping: {s}");
    assert_eq!(
        captured,
        inferred + s["dropped_total"].as_u64().unwrap(),
        "{s}"
    );
    assert_eq!(s["published"], s["inferred"]);
    assert_eq!(stdout.lines().count() as u64, inferred + 1);
}

#[test]
fn bad_arguments_exit_2_with_one_line() {
    for (args, needle) in [
        (vec!["run", "--fps", "0"], "--fps 0"),
        (vec!["run", "--frames", "0"], "--frames 0"),
    ] {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o.stderr));
        let err = text(&o.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("error: ") && err.contains(needle), "{err}");
    }
    let o = run(&["run", "--policy", "newest"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("latest, drop-oldest, block"));
}

/// A two-stream TOML pipeline sharing one model; paths relative to the file.
#[test]
fn config_runs_several_streams() {
    let dir = tempfile::tempdir().unwrap();
    let models = models_dir().canonicalize().unwrap();
    let m = models.display();
    let cfg = dir.path().join("pipeline.toml");
    std::fs::create_dir(dir.path().join("cam")).unwrap();
    std::fs::copy(
        models.join("data/coffee.png"),
        dir.path().join("cam/coffee.png"),
    )
    .unwrap();
    std::fs::write(
        &cfg,
        format!(
            r#"
[[stream]]
name = "door"
images = ["{m}/data/astronaut.png", "cam/coffee.png"]
model = "{m}/blazeface-short-int8.safetensors"
fps = 200
policy = "block"

[[stream]]
name = "yard"
images = ["{m}/data/rocket.jpg"]
model = "{m}/blazeface-short-int8.safetensors"
fps = 200
policy = "drop-oldest"
queue_depth = 2
loop = true
frames = 5
"#
        ),
    )
    .unwrap();
    let out = dir.path().join("out");
    let o = outpost()
        .args(["run", "--json", "--config"])
        .arg(&cfg)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let stdout = text(&o.stdout);
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (summary, frames) = lines.split_last().unwrap();
    let of = |name: &str| -> Vec<&str> {
        frames
            .iter()
            .filter(|f| f["stream"] == name)
            .map(|f| f["source"].as_str().unwrap())
            .collect()
    };
    assert_eq!(of("door"), ["astronaut", "coffee"]);
    // drop-oldest may drop frames of the yard stream under load; every one is counted.
    let yard = of("yard");
    assert!(!yard.is_empty() && yard.len() <= 5 && yard.iter().all(|s| *s == "rocket"));
    let s = &summary["summary"];
    assert_eq!(s["captured"], 7, "{s}");
    assert_eq!(s["streams"][1]["policy"], "drop-oldest");
    assert!(out.join("door/astronaut-redacted.png").exists());
    assert!(!out.join("door/coffee-redacted.png").exists());
    assert_eq!(s["files_written"], 1);
}

#[test]
fn config_errors_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let model = models_dir().join("blazeface-short-int8.safetensors");
    let m = model.display();
    let img = models_dir().join("data/astronaut.png");
    for (body, needle) in [
        (
            // `model` is optional (sensor streams run without one); the missing file is named.
            "[[stream]]\nname = \"a\"\nimages = [\"x.png\"]\n",
            "stream `a`: images: ",
        ),
        (
            "[[stream]]\nname = \"a\"\nimages = [\"x.png\"]\nmodel = \"m\"\npolcy = \"latest\"\n",
            "5:1: unknown field `polcy`",
        ),
        (
            &format!(
                "[[stream]]\nname = \"a\"\nimages = [\"x.png\"]\nmodel = \"{m}\"\npolicy = \"newest\"\n"
            ),
            "stream `a`: policy: unknown policy \"newest\"",
        ),
        (
            &format!(
                "[[stream]]\nname = \"a\"\nimages = [\"x.png\"]\nmodel = \"{m}\"\nfps = \"fast\"\n"
            ),
            "5:7: invalid type: string \"fast\"",
        ),
        (
            &format!("[[stream]]\nname = \"a\"\nimages = [\"x.png\"]\nmodel = \"{m}\"\n"),
            "stream `a`: images: ",
        ),
        (
            &format!(
                "[[stream]]\nname = \"a\"\nimages = [{img:?}]\nmodel = \"nope.safetensors\"\n"
            ),
            "stream `a`: model: ",
        ),
        (
            &format!(
                "[[stream]]\nname = \"a\"\nimages = [{img:?}]\nmodel = \"{m}\"\n[pipeline]\n\
                 infer_cpus = [0, 4095]\n"
            ),
            "6:14: pipeline.infer_cpus: inference CPU 4095 is not available to this process",
        ),
        (
            &format!(
                "[[stream]]\nname = \"a\"\nimages = [{img:?}]\nmodel = \"{m}\"\n[pipeline]\n\
                 busy = \"yes\"\n"
            ),
            "6:8: invalid type: string \"yes\", expected a boolean",
        ),
        ("# nothing\n", "no [[stream]] table"),
    ] {
        let cfg = dir.path().join("p.toml");
        std::fs::write(&cfg, body).unwrap();
        let o = run(&["run", "--config", cfg.to_str().unwrap()]);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{body}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with("error: ") && err.contains(needle),
            "{body}: {err}"
        );
    }
}
