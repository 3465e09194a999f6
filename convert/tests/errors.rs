//! Bad source models give typed errors, never panics.

use std::path::{Path, PathBuf};

use outpost_convert::{ConvertError, convert};

fn models_dir() -> PathBuf {
    std::env::var_os("OUTPOST_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.models"))
}

fn short_range() -> Vec<u8> {
    let p = models_dir().join("src/face_detection_short_range.tflite");
    std::fs::read(&p).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run `cargo run -p outpost -- fetch-models` first",
            p.display()
        )
    })
}

#[test]
fn not_a_model_is_refused() {
    let e = convert(
        b"hello world, not a model",
        "x.tflite",
        &Default::default(),
        None,
    )
    .unwrap_err();
    assert!(matches!(e, ConvertError::UnknownFormat { .. }), "{e}");
    let e = convert(b"\x08\x07\x12\x04onnx", "m.onnx", &Default::default(), None).unwrap_err();
    assert!(
        e.to_string().contains("does not decode as an ONNX model"),
        "{e}"
    );
}

#[test]
fn truncated_model_is_refused() {
    let bytes = short_range();
    for cut in [9, 100, 1000, bytes.len() / 2, bytes.len() - 1] {
        let r = convert(&bytes[..cut], "cut.tflite", &Default::default(), None);
        assert!(r.is_err(), "cut at {cut} was accepted");
    }
}

#[test]
fn mutated_models_never_panic() {
    let bytes = short_range();
    let mut state = 0x9e3779b97f4a7c15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..300 {
        let mut b = bytes.clone();
        for _ in 0..1 + next() % 8 {
            let i = (next() as usize) % b.len();
            b[i] = next() as u8;
        }
        let _ = convert(&b, "mutated.tflite", &Default::default(), None);
    }
}

#[test]
fn unsupported_op_names_op_and_node() {
    let p = models_dir().join("src/face_landmark.tflite");
    let bytes = std::fs::read(&p).unwrap();
    let e = convert(&bytes, "face_landmark.tflite", &Default::default(), None).unwrap_err();
    match &e {
        ConvertError::UnsupportedOp { op, node, .. } => {
            assert_eq!(op, "PRELU");
            assert!(!node.is_empty());
        }
        other => panic!("expected UnsupportedOp, got {other}"),
    }
    assert!(
        e.to_string().starts_with("unsupported op PRELU at node "),
        "{e}"
    );
}
