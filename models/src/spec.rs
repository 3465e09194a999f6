//! Input and output specs: how to feed the model and how to read its results.

use serde::{Deserialize, Serialize};

/// Memory layout of an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// Images: batch, height, width, channels.
    Nhwc,
    /// Feature vectors and windows: batch, features.
    Nc,
}

/// Channel order of an image input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColorOrder {
    /// Red, green, blue.
    Rgb,
    /// Blue, green, red.
    Bgr,
    /// One luminance channel.
    Gray,
    /// Not an image.
    None,
}

/// How a source image is fitted to the input size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResizeKind {
    /// Scale each axis independently.
    #[default]
    Stretch,
    /// Keep the aspect ratio and pad.
    Letterbox,
}

/// What one graph input expects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    /// The graph input it describes.
    pub tensor: String,
    /// Layout.
    pub layout: Layout,
    /// Channel order.
    #[serde(default = "no_color")]
    pub color: ColorOrder,
    /// Fit to the input size.
    #[serde(default)]
    pub resize: ResizeKind,
    /// Per-channel mean subtracted from 0..255 values (empty for non-images).
    #[serde(default)]
    pub mean: Vec<f32>,
    /// Per-channel divisor after the mean.
    #[serde(default)]
    pub std: Vec<f32>,
}

fn no_color() -> ColorOrder {
    ColorOrder::None
}

/// Suppression of overlapping boxes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NmsKind {
    /// Average overlapping boxes weighted by score (BlazeFace).
    Weighted,
    /// Keep the best box, drop the rest.
    Hard,
}

/// Activation applied to classification logits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScoreActivation {
    /// Scores as they are.
    #[default]
    None,
    /// Softmax over classes.
    Softmax,
    /// Independent sigmoids.
    Sigmoid,
}

/// How to turn output tensors into results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Decoder {
    /// SSD-style anchors + NMS (BlazeFace).
    Ssd {
        /// Feature-map strides, one per anchor layer.
        strides: Vec<u32>,
        /// Anchors per cell, one per anchor layer.
        anchors_per_cell: Vec<u32>,
        /// Model input `[h, w]`.
        input_size: [u32; 2],
        /// Divisor of raw box offsets.
        box_scale: f32,
        /// Keypoints per detection.
        num_keypoints: u32,
        /// Minimum score kept.
        score_threshold: f32,
        /// IoU above which boxes are merged.
        iou_threshold: f32,
        /// Suppression kind.
        nms: NmsKind,
        /// Raw scores are clipped to ±this before the sigmoid.
        score_clip: f32,
    },
    /// CenterNet-style heatmap decoding (CenterFace).
    Centernet {
        /// Output stride of the heatmap.
        stride: u32,
        /// Minimum score kept.
        score_threshold: f32,
        /// IoU for suppression.
        iou_threshold: f32,
        /// Keypoints per detection.
        num_keypoints: u32,
    },
    /// Top-k classes.
    Classification {
        /// How many classes to report.
        top_k: u32,
        /// Activation on logits.
        #[serde(default)]
        activation: ScoreActivation,
    },
    /// Tensors as they are.
    Raw,
    /// Streaming keyword spotting (microWakeWord): one probability per run (the single output,
    /// dequantized); the wake word is detected when the mean of the last `sliding_window`
    /// probabilities exceeds `probability_cutoff`. The caller keeps the window across runs.
    Wakeword {
        /// The phrase (`Okay Nabu`).
        wake_word: String,
        /// Detection threshold on the window mean (0..1, exclusive comparison).
        probability_cutoff: f32,
        /// Probabilities averaged.
        sliding_window: u32,
        /// Milliseconds between feature frames.
        feature_step_ms: u32,
    },
}

/// What one group of output tensors means.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    /// Graph outputs read by the decoder.
    pub tensors: Vec<String>,
    /// The decoder.
    pub decoder: Decoder,
}

fn unit(v: f32) -> bool {
    (0.0..=1.0).contains(&v)
}

impl Decoder {
    /// Check the parameters' ranges; returns a sentence on failure.
    pub fn check(&self) -> Result<(), String> {
        match self {
            Decoder::Ssd {
                strides,
                anchors_per_cell,
                input_size,
                box_scale,
                score_threshold,
                iou_threshold,
                score_clip,
                ..
            } => {
                if strides.is_empty() || strides.len() != anchors_per_cell.len() {
                    return Err(
                        "ssd: strides and anchors_per_cell must be non-empty and of equal length"
                            .into(),
                    );
                }
                if strides.contains(&0) || anchors_per_cell.contains(&0) || input_size.contains(&0)
                {
                    return Err("ssd: strides, anchors_per_cell and input_size must be ≥ 1".into());
                }
                if !(box_scale.is_finite()
                    && *box_scale > 0.0
                    && score_clip.is_finite()
                    && *score_clip > 0.0)
                {
                    return Err("ssd: box_scale and score_clip must be finite and > 0".into());
                }
                if !unit(*score_threshold) || !unit(*iou_threshold) {
                    return Err("ssd: score_threshold and iou_threshold must lie in 0..1".into());
                }
                Ok(())
            }
            Decoder::Centernet {
                stride,
                score_threshold,
                iou_threshold,
                ..
            } => {
                if *stride == 0 || !unit(*score_threshold) || !unit(*iou_threshold) {
                    return Err("centernet: stride must be ≥ 1 and thresholds in 0..1".into());
                }
                Ok(())
            }
            Decoder::Classification { top_k, .. } => {
                if *top_k == 0 {
                    return Err("classification: top_k must be ≥ 1".into());
                }
                Ok(())
            }
            Decoder::Raw => Ok(()),
            Decoder::Wakeword {
                probability_cutoff,
                sliding_window,
                feature_step_ms,
                ..
            } => {
                if !unit(*probability_cutoff) || *sliding_window == 0 || *feature_step_ms == 0 {
                    return Err(
                        "wakeword: probability_cutoff must lie in 0..1, sliding_window and feature_step_ms ≥ 1"
                            .into(),
                    );
                }
                Ok(())
            }
        }
    }

    /// The decoder's name in the format.
    pub fn kind(&self) -> &'static str {
        match self {
            Decoder::Ssd { .. } => "ssd",
            Decoder::Centernet { .. } => "centernet",
            Decoder::Classification { .. } => "classification",
            Decoder::Raw => "raw",
            Decoder::Wakeword { .. } => "wakeword",
        }
    }
}

/// Calibration used when quantizing.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Calibration {
    /// What data, how many samples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set: Option<String>,
    /// `minmax`, `percentile`, `mse`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
}

/// Where a model came from.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Provenance {
    /// Source model file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// SHA-256 of the source file, 64 hex digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_sha256: Option<String>,
    /// The tool that wrote this file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub converter: Option<String>,
    /// Calibration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<Calibration>,
    /// Creation time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
}
