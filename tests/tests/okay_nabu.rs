//! microWakeWord `okay_nabu` (PyPI `pymicro-wakeword==2.5.0`, fully int8, stateful TFLite with
//! resource variables): converted by Outpost and run over the feature sequences recorded in
//! `tests/golden/okay-nabu.json` by `tools/reference/reference.py okay-nabu` (LiteRT without
//! XNNPACK, phrases spoken by espeak-ng, features from pymicro-features). Every output byte of
//! every run must equal LiteRT's, and the sliding-window detection must say the same — also
//! when the frames come from speech through the Rust audio front end.
//!
//! The source model comes from `outpost fetch-models` (run by `tools/test`) in
//! `$OUTPOST_MODELS/src` (default `.models/` at the repository root).

use std::path::{Path, PathBuf};

use outpost_models::Model;
use outpost_models::spec::Decoder;
use outpost_runtime::{Session, SessionOptions};
use serde_json::Value;

fn source_model() -> PathBuf {
    outpost_tests::model_file("src/okay_nabu.json");
    outpost_tests::model_file("src/okay_nabu.tflite")
}

fn golden() -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("golden/okay-nabu.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn convert() -> Model {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("okay-nabu-int8.safetensors");
    outpost_convert::convert_file(&source_model(), &out, &Default::default(), None).unwrap();
    Model::open(&out).unwrap()
}

fn fnv1a64(bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes.into_iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// pymicro_wakeword's input quantization: `round(k · 0.0390625 / scale + zp)` in f64.
fn quantize(k: u64, scale: f32, zp: i32) -> i8 {
    (k as f64 * 0.0390625 / scale as f64 + zp as f64)
        .round_ties_even()
        .clamp(-128.0, 127.0) as i8
}

/// Run one phrase from a fresh state; returns the output byte of every run and the hash of
/// every input byte.
fn run_phrase(s: &mut Session, phrase: &Value, scale: f32, zp: i32) -> (Vec<u8>, u64) {
    s.reset_state();
    let frames = phrase["features"].as_array().unwrap();
    let mut inputs = Vec::new();
    let mut outputs = Vec::new();
    for chunk in frames.chunks_exact(3) {
        let input = s.input_i8(0).unwrap();
        assert_eq!(input.len(), 120);
        for (f, frame) in chunk.iter().enumerate() {
            for (c, k) in frame.as_array().unwrap().iter().enumerate() {
                input[f * 40 + c] = quantize(k.as_u64().unwrap(), scale, zp);
            }
        }
        inputs.extend(input.iter().map(|&q| q as u8));
        s.run();
        outputs.push(s.output_u8(0).unwrap()[0]);
    }
    (outputs, fnv1a64(inputs))
}

#[test]
fn okay_nabu_bit_exact_with_litert_and_detects_its_phrase() {
    let g = golden();
    let model = convert();
    let meta = model.meta();
    assert_eq!(meta.graph.states.len(), 6, "six stream states");
    let Decoder::Wakeword {
        probability_cutoff,
        sliding_window,
        ..
    } = meta.outputs[0].decoder.clone()
    else {
        panic!("expected a wakeword output spec from the manifest");
    };
    assert_eq!(
        probability_cutoff as f64,
        g["probability_cutoff"].as_f64().unwrap() as f32 as f64
    );
    assert_eq!(
        sliding_window as u64,
        g["sliding_window_size"].as_u64().unwrap()
    );
    let x = meta.graph.tensor(&meta.graph.inputs[0]).unwrap();
    let q = x.quant.unwrap();
    assert_eq!(q.scale as f64, g["input_scale"].as_f64().unwrap());
    assert_eq!(q.zero_point as i64, g["input_zero_point"].as_i64().unwrap());

    let mut s = Session::new(&model, SessionOptions::default()).unwrap();
    assert!(s.is_stateful());
    let mut detections = Vec::new();
    for phrase in g["phrases"].as_array().unwrap() {
        let text = phrase["text"].as_str().unwrap();
        let (outputs, hash) = run_phrase(&mut s, phrase, q.scale, q.zero_point);
        assert_eq!(
            format!("{hash:016x}"),
            phrase["inputs_fnv1a64"].as_str().unwrap(),
            "{text}: quantized inputs differ from pymicro_wakeword's"
        );
        let want: Vec<u8> = phrase["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u8)
            .collect();
        assert_eq!(outputs, want, "{text}: outputs differ from LiteRT");
        let probs: Vec<f64> = outputs.iter().map(|&o| o as f64 / 256.0).collect();
        let detected = probs
            .windows(sliding_window as usize)
            .any(|w| w.iter().sum::<f64>() / w.len() as f64 > probability_cutoff as f64);
        assert_eq!(detected, phrase["detected"].as_bool().unwrap(), "{text}");
        detections.push((text.to_string(), detected));
    }
    // The golden set holds the phrase (detected) and other phrases (rejected).
    assert!(detections.iter().any(|(t, d)| t == "okay nabu" && *d));
    assert!(detections.iter().all(|(t, d)| (t == "okay nabu") == *d));
}

#[test]
fn state_persists_across_runs_and_resets() {
    let g = golden();
    let model = convert();
    let mut s = Session::new(&model, SessionOptions::default()).unwrap();
    let x = model
        .meta()
        .graph
        .tensor(&model.meta().graph.inputs[0])
        .unwrap();
    let q = x.quant.unwrap();
    let phrase = &g["phrases"][0];
    let (first, _) = run_phrase(&mut s, phrase, q.scale, q.zero_point);
    let (again, _) = run_phrase(&mut s, phrase, q.scale, q.zero_point);
    assert_eq!(first, again, "reset_state gives a fresh model");
    // Run 45 (in the middle of the phrase) after the 44 before it, then alone after a reset:
    // with the phrase in its state the model is confident, without it not.
    let peak = first
        .iter()
        .enumerate()
        .max_by_key(|(_, o)| **o)
        .map(|(i, _)| i)
        .unwrap();
    assert!(first[peak] > 200, "phrase peak {}", first[peak]);
    let frames = phrase["features"].as_array().unwrap();
    s.reset_state();
    let input = s.input_i8(0).unwrap();
    for (f, frame) in frames[peak * 3..peak * 3 + 3].iter().enumerate() {
        for (c, k) in frame.as_array().unwrap().iter().enumerate() {
            input[f * 40 + c] = quantize(k.as_u64().unwrap(), q.scale, q.zero_point);
        }
    }
    s.run();
    let alone = s.output_u8(0).unwrap()[0];
    assert!(
        alone < first[peak] / 2,
        "without its state run {peak} gives {alone}, with it {}",
        first[peak]
    );
}

/// From speech: espeak-ng phrases through the Rust audio front end and `KeywordSpotter` give
/// LiteRT's outputs on every run, and the same detections.
#[test]
fn from_speech_the_keyword_spotter_matches_litert() {
    use outpost_runtime::audio::keyword::KeywordSpotter;
    let g = golden();
    let model = convert();
    let mut spotter = KeywordSpotter::new(&model, SessionOptions::default()).unwrap();
    assert_eq!(spotter.wake_word(), "Okay Nabu");
    let (before, after) = (
        g["pad_before_s"].as_f64().unwrap(),
        g["pad_after_s"].as_f64().unwrap(),
    );
    for phrase in g["phrases"].as_array().unwrap() {
        let text = phrase["text"].as_str().unwrap();
        let (pcm, sha) = outpost_tests::speech::phrase_16k(
            text,
            phrase["voice"].as_str().unwrap(),
            phrase["speed"].as_u64().unwrap() as u32,
            before,
            after,
        );
        assert_eq!(sha, phrase["pcm_sha256"].as_str().unwrap(), "{text}: PCM");
        spotter.reset();
        let mut probs = Vec::new();
        let mut detected = false;
        // 10 ms chunks, as a microphone delivers them.
        for chunk in pcm.chunks(160) {
            spotter.process(chunk, |r| {
                probs.push(r.probability);
                detected |= r.detected;
            });
        }
        let want: Vec<f32> = phrase["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as f32 / 256.0)
            .collect();
        assert_eq!(probs, want, "{text}: probabilities differ from LiteRT");
        assert_eq!(detected, phrase["detected"].as_bool().unwrap(), "{text}");
    }
}
