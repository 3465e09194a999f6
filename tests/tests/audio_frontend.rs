//! The Rust audio front end (`outpost_runtime::audio`) against pymicro-features, the TFLite
//! Micro front end microWakeWord is trained with: phrases spoken by espeak-ng, prepared as
//! `tools/reference/okay_nabu.py` did, must give exactly the feature frames recorded in
//! `golden/okay-nabu.json`, value for value.

use std::path::Path;

use outpost_runtime::audio::{FrontendConfig, MicroFrontend};
use outpost_tests::speech::phrase_16k;
use serde_json::Value;

fn golden() -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("golden/okay-nabu.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// Feature frames of `pcm`, fed in 10 ms chunks as pymicro_wakeword does.
fn features(fe: &mut MicroFrontend, pcm: &[i16]) -> Vec<Vec<u64>> {
    let mut out = Vec::new();
    for chunk in pcm.chunks_exact(160) {
        let mut at = 0;
        while at < chunk.len() {
            let (used, frame) = fe.process(&chunk[at..]);
            if let Some(f) = frame {
                out.push(f.iter().map(|&v| v as u64).collect());
            }
            at += used;
        }
    }
    out
}

#[test]
fn features_bit_exact_with_pymicro_features_on_spoken_phrases() {
    let g = golden();
    let (before, after) = (
        g["pad_before_s"].as_f64().unwrap(),
        g["pad_after_s"].as_f64().unwrap(),
    );
    let mut fe = MicroFrontend::new(FrontendConfig::default()).unwrap();
    for p in g["phrases"].as_array().unwrap() {
        let text = p["text"].as_str().unwrap();
        let voice = p["voice"].as_str().unwrap();
        let (pcm, sha) = phrase_16k(
            text,
            voice,
            p["speed"].as_u64().unwrap() as u32,
            before,
            after,
        );
        assert_eq!(
            pcm.len() as u64,
            p["pcm_samples"].as_u64().unwrap(),
            "{text}: samples"
        );
        assert_eq!(
            sha,
            p["pcm_sha256"].as_str().unwrap(),
            "{text} ({voice}): the PCM differs from the golden run's; espeak-ng there was {}",
            g["espeak_ng"]
        );
        fe.reset();
        let got = features(&mut fe, &pcm);
        let want: Vec<Vec<u64>> = p["features"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                f.as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_u64().unwrap())
                    .collect()
            })
            .collect();
        assert_eq!(got.len(), want.len(), "{text}: frames");
        for (i, (a, b)) in got.iter().zip(&want).enumerate() {
            assert_eq!(a, b, "{text}: frame {i} of {}", want.len());
        }
        // Speech is there: the loudest frame is well above the silence.
        let peak = got.iter().map(|f| f.iter().sum::<u64>()).max().unwrap();
        assert!(peak > 40 * 300, "{text}: peak frame energy {peak}");
    }
}
