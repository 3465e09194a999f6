//! What a model's inference thread does with a frame: fill the model's input from an image
//! (through the preprocessor) or a sample window, run, decode, map detections to source pixels;
//! or, for a keyword model, feed an audio window through the audio front end.

use std::time::{Duration, Instant};

use outpost_hal::DType;
use outpost_models::Model;
use outpost_models::decode::{Decoded, Detection};
use outpost_models::graph::QuantParams;

use super::{FrameKind, PipelineError, Slot};
use crate::audio::keyword::KeywordSpotter;
use crate::error::RuntimeError;
use crate::infer::Inference;
use crate::preprocess::{Output, Preprocessor};

/// How a model's first input is filled.
#[derive(Debug)]
pub(super) enum ModelInput {
    /// From images, through the preprocessor.
    Image(Box<Preprocessor>),
    /// From sample windows of exactly `len` values: int8 through `quant`, f32 as they are.
    Samples {
        len: usize,
        quant: Option<QuantParams>,
    },
}

/// What a model index's inference thread does with each frame.
#[derive(Debug)]
pub(super) enum Worker {
    /// Fill the input, run, decode.
    Model {
        inf: Box<Inference>,
        input: ModelInput,
    },
    /// A keyword model (output spec `wakeword`): mono 16 kHz windows of any length go through
    /// the audio front end; the model runs whenever enough feature frames are in.
    Keyword(Box<KeywordSpotter>),
    /// No model ([`Pipeline::add_passthrough`]): frames go to the publisher as they are.
    Passthrough,
}

/// What frames a worker takes (checked against each stream's source).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Accepts {
    Images,
    Samples(usize),
    /// Mono windows at this sample rate, any length.
    Audio(u32),
    Anything,
}

/// Write `samples` into an int8 input through its quantization (round to nearest, saturate).
fn quantize_into(samples: &[f32], q: QuantParams, out: &mut [i8]) {
    let inv = 1.0 / q.scale;
    let zp = q.zero_point as f32;
    for (o, &x) in out.iter_mut().zip(samples) {
        *o = (x * inv + zp).round().clamp(-128.0, 127.0) as i8;
    }
}

impl Worker {
    pub(super) fn accepts(&self) -> Accepts {
        match self {
            Worker::Model {
                input: ModelInput::Image(_),
                ..
            } => Accepts::Images,
            Worker::Model {
                input: ModelInput::Samples { len, .. },
                ..
            } => Accepts::Samples(*len),
            Worker::Keyword(k) => Accepts::Audio(k.sample_rate()),
            Worker::Passthrough => Accepts::Anything,
        }
    }

    /// Fill the input from the slot's frame, run and decode; detections into the slot in
    /// source pixels (image frames).
    /// `ran` is called once the model has run, before its outputs are decoded (the publisher
    /// may get ready for the result meanwhile; see `shared::idle_wait`).
    pub(super) fn infer(
        &mut self,
        slot: &mut Slot,
        ran: impl FnOnce(),
    ) -> Result<(), RuntimeError> {
        slot.detections.clear();
        slot.top_k.clear();
        slot.detections_dropped = 0;
        let (inf, input) = match self {
            Worker::Model { inf, input } => (inf, input),
            Worker::Keyword(spotter) => return keyword(spotter, slot, ran),
            Worker::Passthrough => {
                slot.timings.preprocess = Duration::ZERO;
                slot.timings.infer = Duration::ZERO;
                return Ok(());
            }
        };
        let bad = |reason: String| RuntimeError::BadInput {
            name: "frame".into(),
            reason,
        };
        let t0 = Instant::now();
        let session = inf.session_mut();
        let lb = match input {
            ModelInput::Image(pre) => {
                if slot.frame.kind() != FrameKind::Image {
                    return Err(bad("a sample window for an image model".into()));
                }
                let view = slot.frame.view();
                let lb = match pre.dtype() {
                    DType::I8 => pre.run(&view, Output::I8(session.input_i8(0)?)),
                    _ => pre.run(&view, Output::F32(session.input_f32(0)?)),
                }
                .map_err(|e| bad(e.to_string()))?;
                Some(lb)
            }
            ModelInput::Samples { len, quant } => {
                let samples = slot.frame.samples();
                if samples.len() != *len {
                    return Err(bad(format!(
                        "{} samples for an input of {len}",
                        samples.len()
                    )));
                }
                match quant {
                    Some(q) => quantize_into(samples, *q, session.input_i8(0)?),
                    None => session.input_f32(0)?.copy_from_slice(samples),
                }
                None
            }
        };
        let t1 = Instant::now();
        inf.run_filled()?;
        ran();
        let t2 = Instant::now();
        for d in inf.decoded() {
            match d {
                Decoded::Detections {
                    detections,
                    dropped,
                } => {
                    slot.detections_dropped += dropped;
                    for det in detections {
                        let mut out = *det;
                        let Some(lb) = &lb else {
                            // Not an image: nothing to map to.
                            if slot.detections.push(out).is_err() {
                                slot.detections_dropped += 1;
                            }
                            continue;
                        };
                        out.bbox = lb.box_to_source(det.bbox);
                        let (w, h) = (lb.src_w as f32, lb.src_h as f32);
                        for k in out
                            .keypoints
                            .iter_mut()
                            .take(usize::from(det.num_keypoints))
                        {
                            let (x, y) = lb.to_source(k[0], k[1]);
                            *k = [x.clamp(0.0, w), y.clamp(0.0, h)];
                        }
                        if slot.detections.push(out).is_err() {
                            slot.detections_dropped += 1;
                        }
                    }
                }
                Decoded::TopK(top) if slot.top_k.is_empty() => {
                    for &c in top {
                        // Same capacity: cannot fail.
                        let _ = slot.top_k.push(c);
                    }
                }
                _ => {}
            }
        }
        slot.timings.preprocess = t1 - t0;
        slot.timings.infer = t2 - t1;
        Ok(())
    }
}

/// Samples per front end call (a stack buffer: nothing is allocated per frame).
const PCM_CHUNK: usize = 512;

/// Feed an audio window (f32 in [-1, 1)) to the keyword spotter. The result of the last model
/// run in the window becomes the frame's class score (the sliding-window mean, or the
/// probability until the window is full); a run whose mean crosses the cutoff adds a detection
/// (class 0, an empty box, the mean as its score).
fn keyword(
    spotter: &mut KeywordSpotter,
    slot: &mut Slot,
    ran: impl FnOnce(),
) -> Result<(), RuntimeError> {
    if slot.frame.kind() == FrameKind::Image {
        return Err(RuntimeError::BadInput {
            name: "frame".into(),
            reason: "an image for a keyword model".into(),
        });
    }
    let t0 = Instant::now();
    let mut pcm = [0i16; PCM_CHUNK];
    let (mut last, mut best) = (None, None::<f32>);
    for chunk in slot.frame.samples().chunks(PCM_CHUNK) {
        for (d, &s) in pcm.iter_mut().zip(chunk) {
            *d = (s * 32768.0).round().clamp(-32768.0, 32767.0) as i16;
        }
        spotter.process(&pcm[..chunk.len()], |r| {
            if r.detected {
                let m = r.window_mean.unwrap_or(r.probability);
                best = Some(best.map_or(m, |b: f32| b.max(m)));
            }
            last = Some(r);
        });
    }
    ran();
    if let Some(r) = last {
        // Same capacity as the decoders' top-k: one entry always fits.
        let _ = slot.top_k.push((0, r.window_mean.unwrap_or(r.probability)));
    }
    if let Some(score) = best {
        let det = Detection {
            bbox: [0.0; 4],
            score,
            label: 0,
            keypoints: Default::default(),
            num_keypoints: 0,
        };
        if slot.detections.push(det).is_err() {
            slot.detections_dropped += 1;
        }
    }
    slot.timings.preprocess = Duration::ZERO;
    slot.timings.infer = t0.elapsed();
    Ok(())
}

pub(super) struct ModelEntry {
    pub(super) name: String,
    pub(super) worker: Worker,
    pub(super) labels: Vec<String>,
}

/// The int8 quantization (or `None`: f32) and element count of `model`'s first input, when it
/// is a vector that sample windows can fill.
pub(super) fn sample_input(model: &Model) -> Result<(usize, Option<QuantParams>), PipelineError> {
    let g = &model.meta().graph;
    let tensor = g.inputs.first().cloned().unwrap_or_default();
    let err = |reason: &str| PipelineError::SampleInput {
        tensor: tensor.clone(),
        reason: reason.into(),
    };
    let decl = g.tensor(&tensor).ok_or_else(|| err("not declared"))?;
    let len = decl.shape.iter().product::<usize>();
    match (decl.dtype, decl.quant) {
        (DType::I8, Some(q)) => Ok((len, Some(q))),
        (DType::F32, _) => Ok((len, None)),
        _ => Err(err(
            "sample windows fill int8 (quantized) or f32 inputs only",
        )),
    }
}
