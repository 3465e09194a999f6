//! Per-channel energy normalisation (PCAN) gain control of the TFLite Micro audio front end:
//! each channel is divided by a power of its noise estimate, read from a piecewise-quadratic
//! lookup table, then compressed. Bit-exact with `pcan_gain_control{,_util}.cc`.

use super::msb32;

const PCAN_SNR_BITS: u32 = 12;
const PCAN_OUTPUT_BITS: u32 = 6;
const WIDE_DYNAMIC_FUNCTION_BITS: u32 = 32;
const LUT_SIZE: usize = 4 * WIDE_DYNAMIC_FUNCTION_BITS as usize - 3;

/// PCAN gain control with its lookup table built once.
#[derive(Debug, Clone)]
pub struct Pcan {
    /// `lut[x]` for x ≤ 2, then `(y0, a1, a2, _)` per interval from index `4 · interval - 6`.
    lut: [i16; LUT_SIZE],
    snr_shift: u32,
}

/// The gain `2^gain_bits · (x / 2^input_bits + offset)^-strength` in 16 bits, as C computes it
/// in f32, with the C library's `powf` at run time (the barrier stops compile-time folding, as
/// in the filterbank).
fn gain(strength: f32, offset: f32, gain_bits: u32, input_bits: u32, x: u32) -> i16 {
    let x_as_float = x as f32 / (1u32 << input_bits) as f32;
    let g = (1u32 << gain_bits) as f32 * std::hint::black_box(x_as_float + offset).powf(-strength);
    if g > i16::MAX as f32 {
        i16::MAX
    } else {
        (g + 0.5) as i16
    }
}

impl Pcan {
    /// `strength`, `offset` and `gain_bits` are the configuration; `smoothing_bits` is the
    /// noise estimate's scale and `correction_bits` the FFT size's (see the front end).
    pub fn new(
        strength: f32,
        offset: f32,
        gain_bits: u32,
        smoothing_bits: u32,
        correction_bits: u32,
    ) -> Self {
        let input_bits = smoothing_bits - correction_bits;
        let f = |x: u32| gain(strength, offset, gain_bits, input_bits, x);
        let mut lut = [0i16; LUT_SIZE];
        lut[0] = f(0);
        lut[1] = f(1);
        for interval in 2..=WIDE_DYNAMIC_FUNCTION_BITS {
            let x0 = 1u32 << (interval - 1);
            let x1 = x0 + (x0 >> 1);
            let x2 = if interval == WIDE_DYNAMIC_FUNCTION_BITS {
                x0 + (x0 - 1)
            } else {
                2 * x0
            };
            let (y0, y1, y2) = (f(x0), f(x1), f(x2));
            let diff1 = y1 as i32 - y0 as i32;
            let diff2 = y2 as i32 - y0 as i32;
            let a1 = 4 * diff1 - diff2;
            let a2 = diff2 - a1;
            let at = 4 * interval as usize - 6;
            lut[at] = y0;
            lut[at + 1] = a1 as i16;
            lut[at + 2] = a2 as i16;
        }
        Pcan {
            lut,
            snr_shift: gain_bits - correction_bits - PCAN_SNR_BITS,
        }
    }

    /// `WideDynamicFunction`: the gain for noise estimate `x`.
    fn wide_dynamic(&self, x: u32) -> i16 {
        if x <= 2 {
            return self.lut[x as usize];
        }
        let interval = msb32(x);
        let lut = &self.lut[4 * interval as usize - 6..];
        let frac = (if interval < 11 {
            x << (11 - interval)
        } else {
            x >> (interval - 11)
        } & 0x3FF) as i32;
        let mut result = (lut[2] as i32 * frac) >> 5;
        result = result.wrapping_add(((lut[1] as i32 as u32) << 5) as i32);
        result = result.wrapping_mul(frac);
        result = result.wrapping_add(1 << 14) >> 15;
        result = result.wrapping_add(lut[0] as i32);
        result as i16
    }

    fn shrink(x: u32) -> u32 {
        if x < (2 << PCAN_SNR_BITS) {
            (x * x) >> (2 + 2 * PCAN_SNR_BITS - PCAN_OUTPUT_BITS)
        } else {
            (x >> (PCAN_SNR_BITS - PCAN_OUTPUT_BITS)) - (1 << PCAN_OUTPUT_BITS)
        }
    }

    /// Normalise `signal` by the gain of each channel's `noise_estimate`.
    pub fn apply(&self, signal: &mut [u32], noise_estimate: &[u32]) {
        for (s, &n) in signal.iter_mut().zip(noise_estimate) {
            let gain = self.wide_dynamic(n) as i32 as u32;
            let snr = ((*s as u64 * gain as u64) >> self.snr_shift) as u32;
            *s = Self::shrink(snr);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_follows_the_gain_curve() {
        // microWakeWord's settings: strength 0.95, offset 80, 21 gain bits, input bits 7.
        let p = Pcan::new(0.95, 80.0, 21, 10, 3);
        for x in [0u32, 1, 2, 3, 100, 5_000, 1 << 20, 3 << 25] {
            let want = (1u32 << 21) as f64 * (x as f64 / 128.0 + 80.0).powf(-0.95);
            let got = p.wide_dynamic(x) as f64;
            assert!(
                (got - want).abs() <= 0.02 * want + 2.0,
                "x {x}: {got} vs {want}"
            );
        }
    }
}
