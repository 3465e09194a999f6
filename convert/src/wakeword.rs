//! microWakeWord manifests: the JSON next to a keyword model (`okay_nabu.json` beside
//! `okay_nabu.tflite`) gives the detection cutoff, the sliding window and the feature step,
//! which become the model's `wakeword` output spec.

use std::path::{Path, PathBuf};

use outpost_models::spec::{Decoder, OutputSpec};
use serde::Deserialize;

use crate::error::{ConvertError, Result};
use crate::ir::Graph;

#[derive(Deserialize)]
struct Manifest {
    wake_word: String,
    micro: Micro,
}

#[derive(Deserialize)]
struct Micro {
    probability_cutoff: f32,
    sliding_window_size: u32,
    feature_step_size: u32,
}

/// The manifest path for `model` (same stem, `.json`), if the file exists and is a
/// microWakeWord manifest (`"type": "micro"`).
pub fn manifest_for(model: &Path) -> Option<PathBuf> {
    let path = model.with_extension("json");
    let text = std::fs::read_to_string(&path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    (v.get("type").and_then(|t| t.as_str()) == Some("micro")).then_some(path)
}

/// The output spec a manifest gives `g` (whose single output is the probability).
pub fn output_spec(manifest: &str, g: &Graph) -> Result<OutputSpec> {
    let m: Manifest = serde_json::from_str(manifest)
        .map_err(|e| ConvertError::BadOptions(format!("microWakeWord manifest: {e}")))?;
    let [out] = g.outputs.as_slice() else {
        return Err(ConvertError::BadOptions(format!(
            "a wake word model has one output, this one {}",
            g.outputs.len()
        )));
    };
    let spec = OutputSpec {
        tensors: vec![g.tensors[*out].name.clone()],
        decoder: Decoder::Wakeword {
            wake_word: m.wake_word,
            probability_cutoff: m.micro.probability_cutoff,
            sliding_window: m.micro.sliding_window_size,
            feature_step_ms: m.micro.feature_step_size,
        },
    };
    spec.decoder
        .check()
        .map_err(|e| ConvertError::BadOptions(format!("microWakeWord manifest: {e}")))?;
    Ok(spec)
}
