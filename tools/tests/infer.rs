//! `outpost convert` and `outpost infer` as a user runs them on the real BlazeFace model:
//! convert (float and int8), infer with the JSON contract, and one-line exit-2 errors for a
//! corrupt model, image or WAV.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn outpost(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_outpost"))
        .args(args)
        .output()
        .expect("run outpost")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn models_dir() -> PathBuf {
    let d = std::env::var_os("OUTPOST_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.models"));
    assert!(
        d.join("src/face_detection_short_range.tflite").exists(),
        "run `cargo run -p outpost -- fetch-models` first (tools/test does)"
    );
    d
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn one_line_exit_2(o: &Output, needle: &str) {
    let e = stderr(o);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert_eq!(e.trim_end().lines().count(), 1, "{e}");
    assert!(e.contains(needle), "{needle:?} not in {e}");
}

#[test]
fn convert_then_infer_json() {
    let m = models_dir();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("bf.safetensors");
    let o = outpost(&[
        "convert",
        s(&m.join("src/face_detection_short_range.tflite")),
        "-o",
        s(&out),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("recognised as blazeface-short"));
    let o = outpost(&[
        "infer",
        "--model",
        s(&out),
        s(&m.join("data/astronaut.png")),
        s(&m.join("data/coffee.png")),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<serde_json::Value> = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert!(
        lines[0]["input"]
            .as_str()
            .unwrap()
            .ends_with("astronaut.png")
    );
    let d = &lines[0]["detections"][0];
    assert_eq!(lines[0]["detections"].as_array().unwrap().len(), 1);
    assert_eq!(d["label"], "face");
    assert!(d["score"].as_f64().unwrap() > 0.9);
    let b: Vec<f64> = d["box"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert!(
        (b[0] - 179.08).abs() < 1.0 && (b[3] - 173.93).abs() < 1.0,
        "{b:?}"
    );
    assert_eq!(d["keypoints"].as_array().unwrap().len(), 6);
    assert_eq!(lines[1]["detections"].as_array().unwrap().len(), 0);
}

#[test]
fn convert_int8_records_calibration() {
    let m = models_dir();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("bf8.safetensors");
    let o = outpost(&[
        "convert",
        s(&m.join("src/face_detection_short_range.tflite")),
        "-o",
        s(&out),
        "--quantize",
        "int8",
        "--calibration",
        s(&m.join("data/coffee.png")),
        s(&m.join("data/rocket.jpg")),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = outpost(&["inspect", s(&out), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("coffee.png") && text.contains("minmax"),
        "{text}"
    );
}

/// `--requantization`: `f32` by default on every convolution, `tflite` on none.
#[test]
fn convert_int8_requantization_choice() {
    let m = models_dir();
    let tmp = tempfile::tempdir().unwrap();
    let (src, cal) = (
        m.join("src/face_detection_short_range.tflite"),
        m.join("data/coffee.png"),
    );
    let out = tmp.path().join("bf8.safetensors");
    let count = |extra: &[&str]| {
        let mut args = vec![
            "convert",
            s(&src),
            "-o",
            s(&out),
            "--quantize",
            "int8",
            "--calibration",
            s(&cal),
            "--quiet",
        ];
        args.extend_from_slice(extra);
        let o = outpost(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        let bytes = std::fs::read(&out).unwrap();
        String::from_utf8_lossy(&bytes)
            .matches(r#"\"requantization\":\"f32\""#)
            .count()
    };
    // 21 convolutions and 16 depthwise convolutions.
    assert_eq!(count(&[]), 37);
    assert_eq!(count(&["--requantization", "tflite"]), 0);
}

#[test]
fn bad_inputs_exit_2_with_one_line() {
    let m = models_dir();
    let tmp = tempfile::tempdir().unwrap();
    let junk = tmp.path().join("junk.tflite");
    std::fs::write(&junk, b"not a flatbuffer at all").unwrap();
    let o = outpost(&[
        "convert",
        s(&junk),
        "-o",
        s(&tmp.path().join("x.safetensors")),
    ]);
    one_line_exit_2(&o, "junk.tflite");
    let o = outpost(&[
        "convert",
        s(&m.join("src/face_landmark.tflite")),
        "-o",
        s(&tmp.path().join("y.safetensors")),
    ]);
    one_line_exit_2(&o, "unsupported op PRELU at node");
    let o = outpost(&[
        "convert",
        s(&m.join("src/face_detection_short_range.tflite")),
        "-o",
        s(&tmp.path().join("z.safetensors")),
        "--quantize",
        "int8",
    ]);
    one_line_exit_2(&o, "--calibration");

    let model = tmp.path().join("bf.safetensors");
    let o = outpost(&[
        "convert",
        s(&m.join("src/face_detection_short_range.tflite")),
        "-o",
        s(&model),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let bad_png = tmp.path().join("bad.png");
    std::fs::write(&bad_png, b"\x89PNG\r\n\x1a\nthen garbage").unwrap();
    one_line_exit_2(
        &outpost(&["infer", "--model", s(&model), s(&bad_png)]),
        "bad.png",
    );
    let wav = tmp.path().join("a.wav");
    std::fs::write(&wav, b"RIFF....WAVEfmt ").unwrap();
    one_line_exit_2(&outpost(&["infer", "--model", s(&model), s(&wav)]), "a.wav");
    let missing = tmp.path().join("missing.png");
    one_line_exit_2(
        &outpost(&["infer", "--model", s(&model), s(&missing)]),
        "missing.png",
    );
    let corrupt_model = tmp.path().join("corrupt.safetensors");
    std::fs::write(&corrupt_model, b"\x10\x00\x00\x00\x00\x00\x00\x00{}").unwrap();
    one_line_exit_2(
        &outpost(&[
            "infer",
            "--model",
            s(&corrupt_model),
            s(&m.join("data/astronaut.png")),
        ]),
        "corrupt.safetensors",
    );
}

/// `--threads 2` finds the same detections as one thread (the session is bit-exact across
/// threads; only the timing keys differ); `--threads 0` is a one-line input error.
#[test]
fn infer_threads_same_detections() {
    let m = models_dir();
    let model = m.join("blazeface-short-int8.safetensors");
    let img = m.join("data/astronaut.png");
    let detections = |threads: &str| {
        let o = outpost(&[
            "infer",
            "--model",
            s(&model),
            s(&img),
            "--json",
            "--threads",
            threads,
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let v: serde_json::Value =
            serde_json::from_str(String::from_utf8_lossy(&o.stdout).trim()).unwrap();
        v["detections"].clone()
    };
    let one = detections("1");
    assert!(one.as_array().is_some_and(|d| !d.is_empty()), "{one}");
    assert_eq!(detections("2"), one);
    one_line_exit_2(
        &outpost(&["infer", "--model", s(&model), s(&img), "--threads", "0"]),
        "--threads 0",
    );
}
