//! Calibration: run the float model on real samples and record each activation's range.
//!
//! The float graph is written once more with every activation made a graph output, so one
//! [`Session`] run exposes all of them. `minmax` keeps the extreme values; `percentile P` runs a
//! second pass that histograms each tensor over its min..max (2,048 bins) and keeps the central
//! P % of the values, which clips rare outliers and spends the 256 levels on the bulk; `mse`
//! uses the same histograms to pick the range with the least expected squared error.

use outpost_kernels::Tier;
use outpost_models::Model;
use outpost_runtime::{Session, SessionOptions};

use super::select;
use crate::emit::{Specs, emit, is_float_activation};
use crate::error::{ConvertError, Result};
use crate::ir::Graph;

const BINS: usize = 2048;

/// How ranges are chosen from the observed values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CalibrationMode {
    /// The smallest and largest value seen.
    MinMax,
    /// Keep the central `P` percent of values (e.g. 99.99).
    Percentile(f32),
    /// The clipping range with the least expected squared quantization error.
    Mse,
}

impl std::fmt::Display for CalibrationMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CalibrationMode::MinMax => write!(f, "minmax"),
            CalibrationMode::Percentile(p) => write!(f, "percentile {p}"),
            CalibrationMode::Mse => write!(f, "mse"),
        }
    }
}

/// Calibrated `[lo, hi]` per tensor of the float graph.
#[derive(Debug, Clone, Default)]
pub struct Ranges(Vec<Option<(f32, f32)>>);

impl Ranges {
    /// The range of tensor `t`, when it was observed.
    pub fn get(&self, t: usize) -> Option<(f32, f32)> {
        self.0.get(t).copied().flatten()
    }
}

/// Where calibration samples come from: each call fills the float input tensor.
pub trait SampleSource {
    /// Number of samples.
    fn count(&self) -> usize;
    /// Write sample `i` into the model's float input.
    fn fill(&mut self, i: usize, input: &mut [f32]) -> Result<()>;
}

/// Runs the float graph with every activation observable.
pub struct Calibrator {
    session: Session,
    /// Tensor index (in the float graph) of each session output.
    observed: Vec<usize>,
    input: usize,
    n_tensors: usize,
}

impl std::fmt::Debug for Calibrator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Calibrator")
            .field("observed", &self.observed.len())
            .finish()
    }
}

impl Calibrator {
    /// Prepare the probe model for float graph `g` (one input).
    pub fn new(g: &Graph) -> Result<Calibrator> {
        let [input] = g.inputs.as_slice() else {
            return Err(ConvertError::Calibration(format!(
                "quantization supports models with one input (this one has {})",
                g.inputs.len()
            )));
        };
        let mut probe = g.clone();
        probe.outputs = g
            .nodes
            .iter()
            .map(|n| n.output)
            .filter(|&t| is_float_activation(g, t))
            .collect();
        let observed = probe.outputs.clone();
        let specs = Specs::default();
        let model = Model::from_bytes(emit(&probe, &specs)?)?;
        // Calibrate on a tier whose float kernels equal the scalar reference bit for bit (the
        // generic tier where the best one fuses multiply-adds: AVX2, AVX-512): the ranges, so the
        // converted model's bytes, are then the same on every CPU.
        let tier = match Tier::from_env() {
            Ok(t) if t.fuses_f32_multiply_add() => Some(Tier::Generic),
            _ => None,
        };
        let options = SessionOptions {
            tier,
            ..SessionOptions::default()
        };
        let session = Session::new(&model, options)?;
        Ok(Calibrator {
            session,
            observed,
            input: *input,
            n_tensors: g.tensors.len(),
        })
    }

    fn run_one(&mut self, src: &mut dyn SampleSource, i: usize) -> Result<(f32, f32)> {
        let x = self.session.input_f32(0)?;
        src.fill(i, x)?;
        let r = minmax(x);
        self.session.run();
        Ok(r)
    }

    /// Calibrate over every sample of `src`; `progress(done, total)` after each run.
    pub fn run(
        &mut self,
        src: &mut dyn SampleSource,
        mode: CalibrationMode,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Ranges> {
        let n = src.count();
        if n == 0 {
            return Err(ConvertError::Calibration("no calibration samples".into()));
        }
        let passes = if mode != CalibrationMode::MinMax {
            2
        } else {
            1
        };
        let total = n * passes;
        let k = self.observed.len();
        let mut lo = vec![f32::INFINITY; k];
        let mut hi = vec![f32::NEG_INFINITY; k];
        let mut input = (f32::INFINITY, f32::NEG_INFINITY);
        for i in 0..n {
            let r = self.run_one(src, i)?;
            input = (input.0.min(r.0), input.1.max(r.1));
            for (j, (l, h)) in lo.iter_mut().zip(hi.iter_mut()).enumerate() {
                let v = self.session.output_f32(j).unwrap_or(&[]);
                let (a, b) = minmax(v);
                *l = l.min(a);
                *h = h.max(b);
            }
            progress(i + 1, total);
        }
        if let Some(bad) = lo.iter().chain(&hi).position(|v| !v.is_finite()) {
            let t = self.observed[bad % k];
            return Err(ConvertError::Calibration(format!(
                "activation #{t} is not finite (NaN or infinite values)"
            )));
        }
        if mode != CalibrationMode::MinMax {
            let mut hist = vec![0u64; k * BINS];
            for i in 0..n {
                self.run_one(src, i)?;
                for j in 0..k {
                    let v = self.session.output_f32(j).unwrap_or(&[]);
                    let h = &mut hist[j * BINS..(j + 1) * BINS];
                    let w = (hi[j] - lo[j]).max(f32::MIN_POSITIVE);
                    for &x in v {
                        let b = (((x - lo[j]) / w) * (BINS - 1) as f32) as usize;
                        h[b.min(BINS - 1)] += 1;
                    }
                }
                progress(n + i + 1, total);
            }
            for j in 0..k {
                let h = &hist[j * BINS..(j + 1) * BINS];
                (lo[j], hi[j]) = match mode {
                    CalibrationMode::Percentile(p) => select::percentile(h, lo[j], hi[j], p),
                    _ => select::mse(h, lo[j], hi[j]),
                };
            }
        }
        let mut r = vec![None; self.n_tensors];
        r[self.input] = Some(input);
        for (j, &t) in self.observed.iter().enumerate() {
            r[t] = Some((lo[j], hi[j]));
        }
        Ok(Ranges(r))
    }
}

fn minmax(v: &[f32]) -> (f32, f32) {
    v.iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        })
}
