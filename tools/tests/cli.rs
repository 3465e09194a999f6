//! The `outpost` binary as a user runs it: synth → inspect (text and JSON) → bench, and the
//! one-line, exit-status-2 errors on bad input.

use std::path::Path;
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

fn synth(dir: &Path) -> String {
    let path = dir.join("mnv2.safetensors");
    let p = path.to_str().unwrap().to_string();
    let o = outpost(&[
        "synth",
        "mobilenet_v2",
        "--width",
        "0.35",
        "--size",
        "96",
        "--int8",
        "-o",
        &p,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    p
}

#[test]
fn inspect_text_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let model = synth(dir.path());
    let o = outpost(&["inspect", &model]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    for needle in [
        "format      outpost v1",
        "zero-copy",
        "depthwise_conv2d",
        "MACs per run",
        "lower bound",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    let o = outpost(&["inspect", &model, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["format_version"], 1);
    assert_eq!(v["inputs"][0]["shape"], serde_json::json!([1, 96, 96, 3]));
    assert!(v["totals"]["macs"].as_u64().unwrap() > 10_000_000);
    assert!(v["ops"].as_array().unwrap().len() > 50);
    assert!(
        v["plan"]["arena_bytes"].as_u64().unwrap()
            >= v["plan"]["arena_lower_bound_bytes"].as_u64().unwrap()
    );
}

#[test]
fn bad_files_give_one_line_and_status_2() {
    let dir = tempfile::tempdir().unwrap();
    let model = synth(dir.path());
    let mut bytes = std::fs::read(&model).unwrap();
    bytes.truncate(bytes.len() / 2);
    let truncated = dir.path().join("truncated.safetensors");
    std::fs::write(&truncated, &bytes).unwrap();
    let missing = dir.path().join("missing.safetensors");
    let garbage = dir.path().join("garbage.safetensors");
    std::fs::write(&garbage, b"not a model at all").unwrap();
    for (path, needle) in [
        (&truncated, "truncated"),
        (&missing, "cannot read"),
        (&garbage, "header size"),
    ] {
        let o = outpost(&["inspect", path.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        let err = stderr(&o);
        assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
        assert!(err.starts_with("error: ") && err.contains(needle), "{err}");
        assert!(o.stdout.is_empty());
    }
}

#[test]
fn bench_json_has_the_contract_keys() {
    let dir = tempfile::tempdir().unwrap();
    let model = synth(dir.path());
    let o = outpost(&[
        "bench",
        "--model",
        &model,
        "--runs",
        "20",
        "--warmup",
        "2",
        "--json",
        "--profile",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for key in [
        "p50_ms",
        "p99_ms",
        "allocs_per_run",
        "arena_bytes",
        "peak_rss_bytes",
        "tier",
        "threads",
    ] {
        assert!(!v[key].is_null(), "missing {key} in {v}");
    }
    assert_eq!(v["allocs_per_run"], 0.0);
    assert_eq!(v["threads"], 1);
    assert!(v["p50_ms"].as_f64().unwrap() > 0.0);
    assert!(v["profile"].as_array().unwrap().len() > 50);
    // Two threads: the same contract, still no allocation per run.
    let o = outpost(&[
        "bench",
        "--model",
        &model,
        "--threads",
        "2",
        "--runs",
        "5",
        "--warmup",
        "2",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["threads"], 2);
    assert_eq!(v["allocs_per_run"], 0.0);
    let o = outpost(&["bench", "--model", &model, "--threads", "0"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--threads 0"), "{}", stderr(&o));
    let o = Command::new(env!("CARGO_BIN_EXE_outpost"))
        .args(["bench", "--model", &model, "--runs", "3"])
        .env("OUTPOST_KERNELS", "sse9")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("sse9"), "{}", stderr(&o));
}

#[test]
fn synth_refuses_bad_arguments() {
    let o = outpost(&[
        "synth",
        "mobilenet_v2",
        "--width",
        "0",
        "-o",
        "/tmp/x.safetensors",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let o = outpost(&[
        "synth",
        "mobilenet_v2",
        "-o",
        "/nonexistent-dir/x.safetensors",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn convert_refuses_bad_onnx_and_input_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.onnx");
    std::fs::write(&garbage, b"\x08\x07\x12\x04onnx not a graph").unwrap();
    let out = dir.path().join("out.safetensors");
    let (g, o) = (garbage.to_str().unwrap(), out.to_str().unwrap());
    let r = outpost(&["convert", g, "-o", o]);
    assert_eq!(r.status.code(), Some(2), "{}", stderr(&r));
    let err = stderr(&r);
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
    assert!(err.contains("ONNX"), "{err}");
    assert!(!out.exists());
    for bad in ["640", "0x480", "640x", "wide x tall"] {
        let r = outpost(&["convert", g, "-o", o, "--input-size", bad]);
        assert_eq!(r.status.code(), Some(2), "{bad}: {}", stderr(&r));
        assert!(stderr(&r).contains("--input-size"), "{bad}: {}", stderr(&r));
    }
}

/// `synth --requantization`: `f32` (the default) marks every int8 convolution, `tflite`
/// none; a bad value is an input error.
#[test]
fn synth_requantization_choice() {
    let dir = tempfile::tempdir().unwrap();
    let count = |extra: &[&str]| {
        let path = dir.path().join("m.safetensors");
        let p = path.to_str().unwrap();
        let mut args = vec!["synth", "mobilenet_v2", "--width", "0.35", "--size", "64"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["-o", p]);
        let o = outpost(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        let bytes = std::fs::read(&path).unwrap();
        let header = String::from_utf8_lossy(&bytes[..bytes.len().min(1 << 20)]).into_owned();
        header.matches(r#"\"requantization\":\"f32\""#).count()
    };
    // 35 convolutions and 17 depthwise convolutions.
    assert_eq!(count(&["--int8"]), 52);
    assert_eq!(count(&["--int8", "--requantization", "f32"]), 52);
    assert_eq!(count(&["--int8", "--requantization", "tflite"]), 0);
    assert_eq!(count(&[]), 0, "float models carry no int8 requantization");
    let o = outpost(&[
        "synth",
        "mobilenet_v2",
        "--requantization",
        "q31",
        "-o",
        "x",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}
