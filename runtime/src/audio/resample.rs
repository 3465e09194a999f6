//! Linear-interpolation resampling of 16-bit PCM, for audio recorded at another rate than the
//! front end's (espeak-ng speaks at 22050 Hz, many microphones at 44.1 or 48 kHz).
//!
//! Output sample `i` sits at source position `p = i · from / to` (exact rational arithmetic:
//! `i0 = ⌊p⌋`, fraction `(i · from mod to) / to`), `y = x[i0] + (x[i0 + 1] − x[i0]) · f` in f64,
//! rounded half to even and clipped to 16 bits; `⌊(n − 1) · to / from⌋ + 1` samples come out.
//! This is the contract of `tools/reference/okay_nabu.py`, which made the golden features.
//! No low-pass filter is applied: fine for speech going down to 16 kHz, not for music.

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// `x` at `from` Hz resampled to `to` Hz (both non-zero). Equal rates return a copy.
pub fn linear(x: &[i16], from: u32, to: u32) -> Vec<i16> {
    assert!(from > 0 && to > 0, "sample rates must be non-zero");
    if from == to || x.is_empty() {
        return x.to_vec();
    }
    let g = gcd(from as u64, to as u64);
    let (a, b) = (from as u64 / g, to as u64 / g);
    let n = x.len() as u64;
    let n_out = (n - 1) * b / a + 1;
    (0..n_out)
        .map(|i| {
            let i0 = (i * a / b) as usize;
            let f = ((i * a) % b) as f64 / b as f64;
            let i1 = (i0 + 1).min(x.len() - 1);
            let (x0, x1) = (x[i0] as f64, x[i1] as f64);
            (x0 + (x1 - x0) * f)
                .round_ties_even()
                .clamp(i16::MIN as f64, i16::MAX as f64) as i16
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn espeak_rate_to_16_khz() {
        let x: Vec<i16> = (0..441).map(|i| (i * 10) as i16).collect();
        let y = linear(&x, 22_050, 16_000);
        assert_eq!(y.len(), 440 * 320 / 441 + 1);
        // A ramp stays a ramp: y[i] = 10 · i · 441 / 320.
        for (i, &v) in y.iter().enumerate() {
            let want = (10.0 * i as f64 * 441.0 / 320.0).round_ties_even();
            assert_eq!(v as f64, want, "sample {i}");
        }
    }

    #[test]
    fn same_rate_is_a_copy_and_upsampling_interpolates() {
        assert_eq!(linear(&[1, 2, 3], 16_000, 16_000), [1, 2, 3]);
        assert_eq!(linear(&[0, 100], 8_000, 16_000), [0, 50, 100]);
        assert!(linear(&[], 8_000, 16_000).is_empty());
    }
}
