//! The analysis window of the TFLite Micro audio front end: a Hann window in Q12 over
//! `size` samples, sliding by `step` samples. Bit-exact with `window.cc`.

/// Fraction bits of the window coefficients (`kFrontendWindowBits`).
const WINDOW_BITS: u32 = 12;

/// Sliding Hann window with its buffers allocated once.
#[derive(Debug, Clone)]
pub struct Window {
    coefficients: Vec<i16>,
    input: Vec<i16>,
    used: usize,
    step: usize,
    /// The windowed samples of the last complete window.
    pub output: Vec<i16>,
    /// The largest magnitude in `output`.
    pub max_abs: i16,
}

impl Window {
    /// A window of `size` samples sliding by `step` (`0 < step <= size`).
    pub fn new(size: usize, step: usize) -> Self {
        // Computed in f32 exactly as `WindowPopulateState` does, with the C library's `cosf`
        // at run time (the barrier stops compile-time folding, as in the filterbank).
        let arg = std::f32::consts::PI * 2.0 / size as f32;
        let coefficients = (0..size)
            .map(|i| {
                let v = 0.5f32 - 0.5 * std::hint::black_box(arg * (i as f32 + 0.5)).cos();
                (v * (1 << WINDOW_BITS) as f32 + 0.5).floor() as i16
            })
            .collect();
        Window {
            coefficients,
            input: vec![0; size],
            used: 0,
            step,
            output: vec![0; size],
            max_abs: 0,
        }
    }

    /// Take samples until a window is complete. Returns how many samples were taken and
    /// whether `output` now holds a new window.
    pub fn push(&mut self, samples: &[i16]) -> (usize, bool) {
        let size = self.input.len();
        let n = samples.len().min(size - self.used);
        self.input[self.used..self.used + n].copy_from_slice(&samples[..n]);
        self.used += n;
        if self.used < size {
            return (n, false);
        }
        let mut max_abs: i16 = 0;
        for ((o, &x), &c) in self
            .output
            .iter_mut()
            .zip(&self.input)
            .zip(&self.coefficients)
        {
            let v = ((x as i32 * c as i32) >> WINDOW_BITS) as i16;
            *o = v;
            // C negates into an int16 (wrapping), then compares.
            max_abs = max_abs.max(v.wrapping_abs());
        }
        self.input.copy_within(self.step.., 0);
        self.used -= self.step;
        self.max_abs = max_abs;
        (n, true)
    }

    /// Forget all samples (`WindowReset`).
    pub fn reset(&mut self) {
        self.input.fill(0);
        self.output.fill(0);
        self.used = 0;
        self.max_abs = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hann_coefficients_in_q12() {
        let w = Window::new(480, 160);
        assert_eq!(w.coefficients.len(), 480);
        // Symmetric, near zero at the edges and 4096 in the middle.
        assert_eq!(w.coefficients[0], w.coefficients[479]);
        assert_eq!(w.coefficients[0], 0);
        assert_eq!(w.coefficients[239], 4096);
        assert!(w.coefficients.windows(2).take(239).all(|p| p[0] <= p[1]));
    }

    #[test]
    fn emits_a_window_every_step_once_full() {
        let mut w = Window::new(480, 160);
        let chunk = [1000i16; 160];
        assert_eq!(w.push(&chunk), (160, false));
        assert_eq!(w.push(&chunk), (160, false));
        assert_eq!(w.push(&chunk), (160, true));
        assert_eq!(w.max_abs, 1000);
        assert_eq!(w.push(&chunk), (160, true));
        // A longer chunk is only taken up to the window's end.
        assert_eq!(w.push(&[0i16; 400]), (160, true));
    }
}
