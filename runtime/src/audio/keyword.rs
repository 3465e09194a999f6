//! Streaming keyword spotting with a microWakeWord model (output spec `wakeword`): 16 kHz PCM
//! → [`MicroFrontend`] feature frames → the model every `frames` feature frames (its input is
//! `[1, frames, channels]`), state carried between runs → the mean of the last
//! `sliding_window` probabilities against `probability_cutoff`, as `pymicro_wakeword` does.
//!
//! Features enter the int8 input as `round_half_even(k · 0.0390625 / scale + zero_point)`
//! (pymicro-features' float scale, then the input's quantization). Everything is allocated in
//! [`KeywordSpotter::new`]; [`KeywordSpotter::process`] allocates nothing.

use outpost_hal::DType;
use outpost_models::Model;
use outpost_models::graph::QuantParams;
use outpost_models::spec::Decoder;

use super::{FrontendConfig, MicroFrontend};
use crate::error::{Result, RuntimeError};
use crate::session::{Session, SessionOptions};

/// pymicro-features' scale from front end units to the float features models are trained on.
pub const FEATURE_SCALE: f64 = 0.0390625;

/// One model run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KeywordRun {
    /// The model's probability for this run.
    pub probability: f32,
    /// The mean of the last `sliding_window` probabilities (`None` until that many exist).
    pub window_mean: Option<f32>,
    /// Whether `window_mean` exceeds the cutoff.
    pub detected: bool,
    /// Samples fed since the start (or the last reset) when the run's last feature frame
    /// completed; divide by the sample rate for its time.
    pub at_sample: u64,
}

/// A keyword spotter; see the [module documentation](self).
#[derive(Debug)]
pub struct KeywordSpotter {
    frontend: MicroFrontend,
    session: Session,
    frames: usize,
    channels: usize,
    pending: usize,
    input_quant: QuantParams,
    output_quant: QuantParams,
    wake_word: String,
    cutoff: f32,
    window: Vec<f32>,
    filled: usize,
    next: usize,
    samples: u64,
}

fn bad(name: &str, reason: impl Into<String>) -> RuntimeError {
    RuntimeError::BadInput {
        name: name.to_string(),
        reason: reason.into(),
    }
}

impl KeywordSpotter {
    /// A spotter for `model`, which must have a `wakeword` output spec, one int8 input
    /// `[1, frames, channels]` and one uint8 or int8 probability output.
    pub fn new(model: &Model, options: SessionOptions) -> Result<Self> {
        let meta = model.meta();
        let Some(Decoder::Wakeword {
            wake_word,
            probability_cutoff,
            sliding_window,
            feature_step_ms,
        }) = meta.outputs.first().map(|o| o.decoder.clone())
        else {
            return Err(bad(
                "model",
                "not a keyword model (its output spec is not `wakeword`)",
            ));
        };
        let g = &meta.graph;
        let name = g.inputs.first().cloned().unwrap_or_default();
        let input = g.tensor(&name).ok_or_else(|| bad(&name, "not declared"))?;
        let (frames, channels, input_quant) = match (
            input.shape.as_slice(),
            input.dtype,
            input.quant,
        ) {
            (&[1, f, c], DType::I8, Some(q)) if f > 0 && c > 0 => (f, c, q),
            _ => {
                return Err(bad(
                    &name,
                    format!(
                        "a keyword model's input must be int8 [1, frames, channels], not {:?} {:?}",
                        input.dtype, input.shape
                    ),
                ));
            }
        };
        let out_name = g.outputs.first().cloned().unwrap_or_default();
        let output = g
            .tensor(&out_name)
            .ok_or_else(|| bad(&out_name, "not declared"))?;
        let output_quant = match (output.dtype, output.quant) {
            (DType::U8 | DType::I8, Some(q)) => q,
            _ => {
                return Err(bad(
                    &out_name,
                    "the probability output must be quantized 8-bit",
                ));
            }
        };
        if sliding_window == 0 {
            return Err(bad(&out_name, "sliding window of 0 probabilities"));
        }
        let frontend = MicroFrontend::new(FrontendConfig {
            step_ms: feature_step_ms,
            channels,
            ..FrontendConfig::default()
        })?;
        Ok(KeywordSpotter {
            frontend,
            session: Session::new(model, options)?,
            frames,
            channels,
            pending: 0,
            input_quant,
            output_quant,
            wake_word,
            cutoff: probability_cutoff,
            window: vec![0.0; sliding_window as usize],
            filled: 0,
            next: 0,
            samples: 0,
        })
    }

    /// The wake word (from the model's manifest).
    pub fn wake_word(&self) -> &str {
        &self.wake_word
    }

    /// The detection threshold on the window mean.
    pub fn cutoff(&self) -> f32 {
        self.cutoff
    }

    /// Sample rate the spotter expects.
    pub fn sample_rate(&self) -> u32 {
        self.frontend.config().sample_rate
    }

    /// The session (tier, plan).
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Feed 16-bit samples at [`sample_rate`](Self::sample_rate); `on_run` is called after
    /// every model run. Allocates nothing.
    pub fn process(&mut self, mut samples: &[i16], mut on_run: impl FnMut(KeywordRun)) {
        while !samples.is_empty() {
            let (used, frame) = self.frontend.process(samples);
            samples = &samples[used..];
            self.samples += used as u64;
            let Some(frame) = frame else { continue };
            let q = self.input_quant;
            let inv = 1.0 / q.scale as f64;
            let input = match self.session.input_i8(0) {
                Ok(i) => i,
                Err(_) => unreachable!("checked in new: int8 input 0"),
            };
            let row = &mut input[self.pending * self.channels..(self.pending + 1) * self.channels];
            for (d, &k) in row.iter_mut().zip(frame) {
                *d = (k as f64 * FEATURE_SCALE * inv + q.zero_point as f64)
                    .round_ties_even()
                    .clamp(-128.0, 127.0) as i8;
            }
            self.pending += 1;
            if self.pending == self.frames {
                self.pending = 0;
                on_run(self.run_model());
            }
        }
    }

    fn run_model(&mut self) -> KeywordRun {
        self.session.run();
        let q = self.output_quant;
        let raw = match (self.session.output_u8(0), self.session.output_i8(0)) {
            (Some(u), _) => u[0] as i32,
            (None, Some(i)) => i[0] as i32,
            _ => unreachable!("checked in new: 8-bit output 0"),
        };
        let probability = q.scale * (raw - q.zero_point) as f32;
        let n = self.window.len();
        self.window[self.next] = probability;
        self.next = (self.next + 1) % n;
        self.filled = (self.filled + 1).min(n);
        let window_mean = (self.filled == n)
            .then(|| (self.window.iter().map(|&p| p as f64).sum::<f64>() / n as f64) as f32);
        KeywordRun {
            probability,
            window_mean,
            detected: window_mean.is_some_and(|m| m > self.cutoff),
            at_sample: self.samples,
        }
    }

    /// Forget all audio and model state (a new recording starts).
    pub fn reset(&mut self) {
        self.frontend.reset();
        self.session.reset_state();
        self.pending = 0;
        self.filled = 0;
        self.next = 0;
        self.samples = 0;
    }
}
