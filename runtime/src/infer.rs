//! `Inference`: a session with its model's preprocessing and output decoders, ready to turn
//! a frame into results. Everything is allocated in [`Inference::new`]; running a frame
//! (preprocess → session → decode) allocates nothing.

use outpost_hal::DType;
use outpost_models::Model;
use outpost_models::decode::{Decoded, OutputDecoder};
use outpost_models::graph::QuantParams;

use crate::error::{Result, RuntimeError};
use crate::preprocess::{ImageView, Letterbox, Output, Preprocessor};
use crate::session::{Session, SessionOptions};

/// One output group: its decoder and the session outputs it reads.
#[derive(Debug)]
struct Group {
    decoder: OutputDecoder,
    outputs: Vec<usize>,
}

/// A session plus preprocessing and decoding.
#[derive(Debug)]
pub struct Inference {
    session: Session,
    pre: Option<Preprocessor>,
    groups: Vec<Group>,
    decoded: Vec<Decoded>,
    /// f32 copies of int8 outputs (dequantized for the decoders).
    widened: Vec<Option<(QuantParams, Vec<f32>)>>,
    labels: Vec<String>,
}

fn bad(name: &str, reason: impl Into<String>) -> RuntimeError {
    RuntimeError::BadInput {
        name: name.to_string(),
        reason: reason.into(),
    }
}

impl Inference {
    /// Plan the model, build its preprocessor (for image inputs) and its decoders.
    pub fn new(model: &Model, options: SessionOptions) -> Result<Inference> {
        let session = Session::new(model, options)?;
        let meta = model.meta();
        let g = &meta.graph;
        let pre = match meta.inputs.first() {
            Some(s) if s.layout == outpost_models::spec::Layout::Nhwc => {
                Some(Preprocessor::new(model, 0).map_err(|e| bad(&s.tensor, e.to_string()))?)
            }
            _ => None,
        };
        let mut widened = Vec::new();
        for name in &g.outputs {
            let t = g
                .tensor(name)
                .ok_or_else(|| bad(name, "undeclared output"))?;
            widened.push(match (t.dtype, t.quant) {
                (DType::I8, Some(q)) => Some((q, vec![0f32; t.shape.iter().product()])),
                _ => None,
            });
        }
        let mut groups = Vec::new();
        for spec in &meta.outputs {
            let mut outputs = Vec::new();
            let mut shapes = Vec::new();
            for name in &spec.tensors {
                let i = g.outputs.iter().position(|o| o == name).ok_or_else(|| {
                    bad(
                        name,
                        "the output spec names a tensor that is not a graph output",
                    )
                })?;
                outputs.push(i);
                shapes.push(g.tensor(name).map(|t| t.shape.as_slice()).unwrap_or(&[]));
            }
            let decoder = OutputDecoder::new(&spec.decoder, &shapes)
                .map_err(|e| bad(&spec.tensors.join(","), e.to_string()))?;
            groups.push(Group { decoder, outputs });
        }
        let decoded = groups.iter().map(|g| g.decoder.new_output()).collect();
        Ok(Inference {
            session,
            pre,
            groups,
            decoded,
            widened,
            labels: meta.labels.clone(),
        })
    }

    /// The session (for raw outputs, tier, plan).
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Mutable session (to fill non-image inputs by hand).
    pub fn session_mut(&mut self) -> &mut Session {
        &mut self.session
    }

    /// The preprocessor of an image model.
    pub fn preprocessor(&self) -> Option<&Preprocessor> {
        self.pre.as_ref()
    }

    /// Class labels (empty when the model has none).
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// Results of the last run, one per output spec.
    pub fn decoded(&self) -> &[Decoded] {
        &self.decoded
    }

    /// Preprocess `img` into the input, run, decode. Returns the mapping from model-input
    /// coordinates back to the image. Allocates nothing.
    pub fn run_image(&mut self, img: &ImageView<'_>) -> Result<Letterbox> {
        let pre = self
            .pre
            .as_mut()
            .ok_or_else(|| bad("input", "the model's input is not an image"))?;
        let lb = match pre.dtype() {
            DType::I8 => pre.run(img, Output::I8(self.session.input_i8(0)?)),
            _ => pre.run(img, Output::F32(self.session.input_f32(0)?)),
        }
        .map_err(|e| bad("image", e.to_string()))?;
        self.run_filled()?;
        Ok(lb)
    }

    /// Run on inputs already written into the session, then decode.
    pub fn run_filled(&mut self) -> Result<()> {
        self.session.run();
        for (i, w) in self.widened.iter_mut().enumerate() {
            if let Some((q, buf)) = w {
                let src = self.session.output_i8(i).unwrap_or(&[]);
                for (d, &s) in buf.iter_mut().zip(src) {
                    *d = q.scale * (s as i32 - q.zero_point) as f32;
                }
            }
        }
        for (g, out) in self.groups.iter_mut().zip(self.decoded.iter_mut()) {
            let mut views: [&[f32]; 8] = [&[]; 8];
            for (k, &o) in g.outputs.iter().enumerate().take(8) {
                views[k] = match &self.widened[o] {
                    Some((_, buf)) => buf.as_slice(),
                    None => self.session.output_f32(o).unwrap_or(&[]),
                };
            }
            g.decoder
                .decode(&views[..g.outputs.len().min(8)], out)
                .map_err(|e| bad("output", e.to_string()))?;
        }
        Ok(())
    }
}
