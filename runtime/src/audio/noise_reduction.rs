//! Per-channel noise estimate and spectral subtraction of the TFLite Micro audio front end.
//! Bit-exact with `noise_reduction.cc`.

/// Fraction bits of the smoothing coefficients (`kNoiseReductionBits`).
const NOISE_REDUCTION_BITS: u32 = 14;

/// Noise reduction state; the estimate is also what PCAN gain control reads.
#[derive(Debug, Clone)]
pub struct NoiseReduction {
    smoothing_bits: u32,
    even_smoothing: u32,
    odd_smoothing: u32,
    min_signal_remaining: u32,
    /// The running noise estimate per channel (scaled up by `smoothing_bits`).
    pub estimate: Vec<u32>,
}

/// What a channel keeps: `value · 2^14`, truncated as C's float → `uint16_t` does.
fn q14(value: f32) -> u32 {
    (value * (1 << NOISE_REDUCTION_BITS) as f32) as u16 as u32
}

impl NoiseReduction {
    /// State for `channels` channels.
    pub fn new(
        channels: usize,
        smoothing_bits: u32,
        even_smoothing: f32,
        odd_smoothing: f32,
        min_signal_remaining: f32,
    ) -> Self {
        NoiseReduction {
            smoothing_bits,
            even_smoothing: q14(even_smoothing),
            odd_smoothing: q14(odd_smoothing),
            min_signal_remaining: q14(min_signal_remaining),
            estimate: vec![0; channels],
        }
    }

    /// The shift that scales the estimate up.
    pub fn smoothing_bits(&self) -> u32 {
        self.smoothing_bits
    }

    /// Update the estimate with `signal` and subtract it, keeping at least the floor.
    pub fn apply(&mut self, signal: &mut [u32]) {
        for (i, (s, est)) in signal.iter_mut().zip(&mut self.estimate).enumerate() {
            let smoothing = if i & 1 == 0 {
                self.even_smoothing
            } else {
                self.odd_smoothing
            };
            let one_minus = (1 << NOISE_REDUCTION_BITS) - smoothing;
            let scaled_up = s.wrapping_shl(self.smoothing_bits);
            let mut estimate = ((scaled_up as u64 * smoothing as u64
                + *est as u64 * one_minus as u64)
                >> NOISE_REDUCTION_BITS) as u32;
            *est = estimate;
            estimate = estimate.min(scaled_up);
            let floor =
                ((*s as u64 * self.min_signal_remaining as u64) >> NOISE_REDUCTION_BITS) as u32;
            let subtracted = (scaled_up - estimate) >> self.smoothing_bits;
            *s = subtracted.max(floor);
        }
    }

    /// Forget the estimate.
    pub fn reset(&mut self) {
        self.estimate.fill(0);
    }
}
