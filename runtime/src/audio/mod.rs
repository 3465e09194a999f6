//! Audio front end: 16-bit PCM → log-mel feature frames, bit-exact with the TensorFlow Lite
//! Micro audio front end (`tensorflow/lite/experimental/microfrontend`, Apache-2.0), which is
//! what microWakeWord models are trained on (through `pymicro-features`).
//!
//! Per 10 ms step ([`MicroFrontend::process`]): a 30 ms Hann window ([`window`]), a Q15
//! fixed-point real FFT ([`kiss_fft`]), a mel filterbank with integer square root
//! ([`filterbank`]), noise reduction ([`noise_reduction`]), PCAN gain control ([`pcan`]) and an
//! integer natural log ([`log_scale`]).
//! [`keyword::KeywordSpotter`] runs a microWakeWord model on the frames. Every buffer is allocated in [`MicroFrontend::new`];
//! processing allocates nothing. [`resample`] brings other sample rates to the front end's.

pub mod filterbank;
pub mod keyword;
pub mod kiss_fft;
pub mod log_scale;
pub mod noise_reduction;
pub mod pcan;
pub mod resample;
pub mod wav_file;
pub mod window;

use crate::error::{Result, RuntimeError};
use filterbank::{FILTERBANK_BITS, Filterbank};
use kiss_fft::{Cpx, RealFft};
use noise_reduction::NoiseReduction;
use pcan::Pcan;
use window::Window;

/// `32 - leading zeros` (0 for 0), the C front end's `MostSignificantBit32`.
pub(crate) fn msb32(x: u32) -> u32 {
    32 - x.leading_zeros()
}

/// Front end settings. [`Default`] is microWakeWord's (pymicro-features): 16 kHz, 30 ms window,
/// 10 ms step, 40 channels over 125–7500 Hz, noise reduction, PCAN, log scale shift 6.
#[derive(Debug, Clone, PartialEq)]
pub struct FrontendConfig {
    /// Samples per second of the input.
    pub sample_rate: u32,
    /// Window length in milliseconds.
    pub window_ms: u32,
    /// Step between feature frames in milliseconds.
    pub step_ms: u32,
    /// Mel channels (features per frame).
    pub channels: usize,
    /// Lowest frequency of the filterbank in Hz.
    pub lower_hz: f32,
    /// Highest frequency of the filterbank in Hz.
    pub upper_hz: f32,
    /// Noise estimate scale (bits).
    pub smoothing_bits: u32,
    /// Noise estimate smoothing of even channels.
    pub even_smoothing: f32,
    /// Noise estimate smoothing of odd channels.
    pub odd_smoothing: f32,
    /// Fraction of the signal always kept after noise subtraction.
    pub min_signal_remaining: f32,
    /// PCAN gain control on or off.
    pub pcan: bool,
    /// PCAN strength (exponent).
    pub pcan_strength: f32,
    /// PCAN offset.
    pub pcan_offset: f32,
    /// PCAN gain bits.
    pub pcan_gain_bits: u32,
    /// Log scale on or off.
    pub log: bool,
    /// Log output scale: `ln(x) · 2^scale_shift`.
    pub log_scale_shift: u32,
}

impl Default for FrontendConfig {
    fn default() -> Self {
        FrontendConfig {
            sample_rate: 16_000,
            window_ms: 30,
            step_ms: 10,
            channels: 40,
            lower_hz: 125.0,
            upper_hz: 7500.0,
            smoothing_bits: 10,
            even_smoothing: 0.025,
            odd_smoothing: 0.06,
            min_signal_remaining: 0.05,
            pcan: true,
            pcan_strength: 0.95,
            pcan_offset: 80.0,
            pcan_gain_bits: 21,
            log: true,
            log_scale_shift: 6,
        }
    }
}

impl FrontendConfig {
    /// Samples per step.
    pub fn step_samples(&self) -> usize {
        (self.step_ms * self.sample_rate / 1000) as usize
    }

    fn window_samples(&self) -> usize {
        (self.window_ms * self.sample_rate / 1000) as usize
    }

    fn check(&self) -> Result<()> {
        let bad = |reason: String| {
            Err(RuntimeError::BadInput {
                name: "audio front end".into(),
                reason,
            })
        };
        let (size, step) = (self.window_samples(), self.step_samples());
        if !(8_000..=48_000).contains(&self.sample_rate) {
            return bad(format!(
                "sample rate {} Hz is outside 8–48 kHz",
                self.sample_rate
            ));
        }
        if size < 8 || step == 0 || step > size || size > 4096 {
            return bad(format!(
                "window {} ms / step {} ms give {size} / {step} samples",
                self.window_ms, self.step_ms
            ));
        }
        if self.channels == 0 || self.channels > 256 {
            return bad(format!("{} channels (1–256)", self.channels));
        }
        let nyquist = self.sample_rate as f32 / 2.0;
        if !(self.lower_hz >= 0.0 && self.lower_hz < self.upper_hz && self.upper_hz < nyquist) {
            return bad(format!(
                "filterbank {}–{} Hz must lie within 0–{nyquist} Hz",
                self.lower_hz, self.upper_hz
            ));
        }
        if self.smoothing_bits > 16 || self.pcan_gain_bits > 30 || self.log_scale_shift > 16 {
            return bad("smoothing, gain or log shift bits out of range".into());
        }
        Ok(())
    }
}

/// The audio front end with all its state; see the [module documentation](self).
#[derive(Debug, Clone)]
pub struct MicroFrontend {
    config: FrontendConfig,
    window: Window,
    fft_input: Vec<i16>,
    fft: RealFft,
    spectrum: Vec<Cpx>,
    filterbank: Filterbank,
    noise: NoiseReduction,
    pcan: Option<Pcan>,
    correction_bits: i32,
    features: Vec<u16>,
}

impl MicroFrontend {
    /// A front end for `config`; fails on settings it cannot run.
    pub fn new(config: FrontendConfig) -> Result<Self> {
        config.check()?;
        let size = config.window_samples();
        let fft_size = size.next_power_of_two();
        let fft = RealFft::new(fft_size);
        let filterbank = Filterbank::new(
            config.channels,
            config.lower_hz,
            config.upper_hz,
            config.sample_rate,
            fft_size / 2 + 1,
        );
        if filterbank.end() > fft_size / 2 + 1 {
            return Err(RuntimeError::BadInput {
                name: "audio front end".into(),
                reason: "the filterbank reaches past the spectrum".into(),
            });
        }
        let correction_bits = msb32(fft_size as u32) as i32 - 1 - (FILTERBANK_BITS as i32 / 2);
        let noise = NoiseReduction::new(
            config.channels,
            config.smoothing_bits,
            config.even_smoothing,
            config.odd_smoothing,
            config.min_signal_remaining,
        );
        let pcan = config.pcan.then(|| {
            Pcan::new(
                config.pcan_strength,
                config.pcan_offset,
                config.pcan_gain_bits,
                config.smoothing_bits,
                correction_bits as u32,
            )
        });
        Ok(MicroFrontend {
            window: Window::new(size, config.step_samples()),
            fft_input: vec![0; fft_size],
            spectrum: vec![Cpx::default(); fft_size / 2 + 1],
            fft,
            filterbank,
            noise,
            pcan,
            correction_bits,
            features: vec![0; config.channels],
            config,
        })
    }

    /// The settings.
    pub fn config(&self) -> &FrontendConfig {
        &self.config
    }

    /// Feed samples. Returns how many were consumed and, when a window completed, the new
    /// feature frame (`channels` values, `ln(energy) · 2^log_scale_shift`). Feed the rest of
    /// the samples in further calls. Allocates nothing.
    pub fn process(&mut self, samples: &[i16]) -> (usize, Option<&[u16]>) {
        let (used, ready) = self.window.push(samples);
        if !ready {
            return (used, None);
        }
        // Scale up so the fixed-point FFT keeps as much resolution as possible.
        let shift = 15 - msb32(self.window.max_abs as u16 as u32);
        for (d, &s) in self.fft_input.iter_mut().zip(&self.window.output) {
            *d = ((s as u16 as u32) << shift) as u16 as i16;
        }
        self.fft.forward(&self.fft_input, &mut self.spectrum);
        self.filterbank.apply(&self.spectrum, shift);
        let signal = &mut self.filterbank.output;
        self.noise.apply(signal);
        if let Some(p) = &self.pcan {
            p.apply(signal, &self.noise.estimate);
        }
        if self.config.log {
            log_scale::apply(
                signal,
                self.correction_bits,
                self.config.log_scale_shift,
                &mut self.features,
            );
        } else {
            for (f, &s) in self.features.iter_mut().zip(signal.iter()) {
                *f = s.min(0xFFFF) as u16;
            }
        }
        (used, Some(&self.features))
    }

    /// Forget all audio heard so far (window and noise estimate).
    pub fn reset(&mut self) {
        self.window.reset();
        self.fft_input.fill(0);
        self.spectrum.fill(Cpx::default());
        self.filterbank.output.fill(0);
        self.noise.reset();
    }
}
