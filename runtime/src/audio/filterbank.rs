//! Mel filterbank of the TFLite Micro audio front end: FFT bins → energies → triangular mel
//! channels (weights in Q12) → integer square root. Bit-exact with `filterbank{,_util}.cc`,
//! including its f32 set-up arithmetic and the padded, 4-aligned weight blocks.

use super::kiss_fft::Cpx;

/// Fraction bits of the channel weights (`kFilterbankBits`).
pub const FILTERBANK_BITS: u32 = 12;
const INDEX_ALIGNMENT: usize = 2; // kFilterbankIndexAlignment (4 bytes) / sizeof(int16_t)
const BLOCK: usize = 4; // kFilterbankChannelBlockSize

/// `FreqToMel` with the C library's `log1pf` at run time, as the reference computes it: for
/// constant arguments LLVM folds `ln_1p` at compile time (release builds) to a value one
/// place off the library's for some frequencies, which moves a channel weight by one step
/// (`tests/tests/audio_frontend.rs` failed in release builds only). The barrier keeps the call.
fn freq_to_mel(freq: f32) -> f32 {
    1127.0f32 * std::hint::black_box(freq / 700.0f32).ln_1p()
}

/// One channel's span of bins and weights (channel 0 is the lower edge, dropped at the end).
#[derive(Debug, Clone, Copy)]
struct Span {
    frequency_start: usize,
    weight_start: usize,
    width: usize,
}

/// A mel filterbank with all its buffers allocated once.
#[derive(Debug, Clone)]
pub struct Filterbank {
    start: usize,
    end: usize,
    spans: Vec<Span>,
    weights: Vec<i16>,
    unweights: Vec<i16>,
    energy: Vec<i32>,
    work: Vec<u64>,
    /// The channel magnitudes of the last frame.
    pub output: Vec<u32>,
}

impl Filterbank {
    /// `channels` mel channels between `lower_hz` and `upper_hz` over `spectrum_size` FFT bins
    /// (`fft_size / 2 + 1`) at `sample_rate`.
    pub fn new(
        channels: usize,
        lower_hz: f32,
        upper_hz: f32,
        sample_rate: u32,
        spectrum_size: usize,
    ) -> Self {
        let n1 = channels + 1;
        let mel_low = freq_to_mel(lower_hz);
        let mel_hi = freq_to_mel(upper_hz);
        let spacing = (mel_hi - mel_low) / n1 as f32;
        let centers: Vec<f32> = (0..n1)
            .map(|i| mel_low + spacing * (i + 1) as f32)
            .collect();
        // Always exclude DC.
        let hz_per_bin = 0.5f32 * sample_rate as f32 / (spectrum_size as f32 - 1.0);
        let start = (1.5f32 + lower_hz / hz_per_bin) as usize;

        let mut spans = Vec::with_capacity(n1);
        let mut actual = Vec::with_capacity(n1); // (first bin, bins)
        let mut chan_start = start;
        let mut weight_at = 0usize;
        let mut needs_zeros = false;
        for &center in &centers {
            let mut freq = chan_start;
            while freq_to_mel(freq as f32 * hz_per_bin) <= center {
                freq += 1;
            }
            let width = freq - chan_start;
            actual.push((chan_start, width));
            if width == 0 {
                // An empty channel multiplies one block of zero weights kept at the front.
                spans.push(Span {
                    frequency_start: 0,
                    weight_start: 0,
                    width: BLOCK,
                });
                if !needs_zeros {
                    needs_zeros = true;
                    let last = spans.len() - 1;
                    for s in &mut spans[..last] {
                        s.weight_start += BLOCK;
                    }
                    weight_at += BLOCK;
                }
            } else {
                let aligned = chan_start / INDEX_ALIGNMENT * INDEX_ALIGNMENT;
                let aligned_width = chan_start - aligned + width;
                let padded = (aligned_width - 1) / BLOCK * BLOCK + BLOCK;
                spans.push(Span {
                    frequency_start: aligned,
                    weight_start: weight_at,
                    width: padded,
                });
                weight_at += padded;
            }
            chan_start = freq;
        }

        let mut weights = vec![0i16; weight_at];
        let mut unweights = vec![0i16; weight_at];
        let mut end = 0;
        for (chan, (span, &(first, bins))) in spans.iter().zip(&actual).enumerate() {
            let offset = first - span.frequency_start;
            let denom = if chan == 0 {
                mel_low
            } else {
                centers[chan - 1]
            };
            for j in 0..bins {
                let f = first + j;
                let w =
                    (centers[chan] - freq_to_mel(f as f32 * hz_per_bin)) / (centers[chan] - denom);
                let at = span.weight_start + offset + j;
                weights[at] = (w * (1 << FILTERBANK_BITS) as f32 + 0.5).floor() as i16;
                unweights[at] = ((1.0 - w) * (1 << FILTERBANK_BITS) as f32 + 0.5).floor() as i16;
            }
            end = end.max(first + bins);
        }
        let reach = spans
            .iter()
            .map(|s| s.frequency_start + s.width)
            .max()
            .unwrap_or(0)
            .max(spectrum_size);
        Filterbank {
            start,
            end,
            spans,
            weights,
            unweights,
            energy: vec![0; reach],
            work: vec![0; n1],
            output: vec![0; channels],
        }
    }

    /// The highest bin used plus one; must not exceed the spectrum.
    pub fn end(&self) -> usize {
        self.end
    }

    /// Energies of `spectrum`, accumulated into channels, square-rooted and shifted down by
    /// `scale_down_shift` into [`output`](Self::output).
    pub fn apply(&mut self, spectrum: &[Cpx], scale_down_shift: u32) {
        for (e, c) in self.energy[self.start..self.end]
            .iter_mut()
            .zip(&spectrum[self.start..self.end])
        {
            let (r, i) = (c.r as i32, c.i as i32);
            *e = (r * r).wrapping_add(i * i);
        }
        let (mut weighted, mut unweighted) = (0u64, 0u64);
        for (span, work) in self.spans.iter().zip(&mut self.work) {
            let mags = &self.energy[span.frequency_start..span.frequency_start + span.width];
            let ws = &self.weights[span.weight_start..span.weight_start + span.width];
            let us = &self.unweights[span.weight_start..span.weight_start + span.width];
            for ((&m, &w), &u) in mags.iter().zip(ws).zip(us) {
                // C widens the int32 energy and the int16 weight to uint64 (sign-extending).
                let m = m as i64 as u64;
                weighted = weighted.wrapping_add((w as i64 as u64).wrapping_mul(m));
                unweighted = unweighted.wrapping_add((u as i64 as u64).wrapping_mul(m));
            }
            *work = weighted;
            weighted = unweighted;
            unweighted = 0;
        }
        for (o, &w) in self.output.iter_mut().zip(&self.work[1..]) {
            *o = sqrt64(w) >> scale_down_shift;
        }
    }
}

fn sqrt32(mut num: u32) -> u16 {
    if num == 0 {
        return 0;
    }
    let mut res: u32 = 0;
    let max_bit_number = num.leading_zeros() | 1;
    let mut bit = 1u32 << (31 - max_bit_number);
    for _ in 0..(31 - max_bit_number) / 2 + 1 {
        if num >= res + bit {
            num -= res + bit;
            res = (res >> 1) + bit;
        } else {
            res >>= 1;
        }
        bit >>= 2;
    }
    if num > res && res != 0xFFFF {
        res += 1;
    }
    res as u16
}

/// Integer square root rounded to nearest, with C's 32-bit shortcut (slightly off near 2^32).
fn sqrt64(mut num: u64) -> u32 {
    if num >> 32 == 0 {
        return sqrt32(num as u32) as u32;
    }
    let mut res: u64 = 0;
    let max_bit_number = num.leading_zeros() | 1;
    let mut bit = 1u64 << (63 - max_bit_number);
    for _ in 0..(63 - max_bit_number) / 2 + 1 {
        if num >= res + bit {
            num -= res + bit;
            res = (res >> 1) + bit;
        } else {
            res >>= 1;
        }
        bit >>= 2;
    }
    if num > res && res != 0xFFFF_FFFF {
        res += 1;
    }
    res as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn square_roots_round_to_nearest() {
        for x in [
            1u64,
            2,
            3,
            4,
            15,
            16,
            17,
            1 << 20,
            123_456_789,
            (1 << 40) + 12345,
            u64::MAX >> 2,
        ] {
            let want = (x as f64).sqrt().round() as u64;
            assert!(
                sqrt64(x) as u64 == want || (sqrt64(x) as u64).abs_diff(want) <= 1,
                "sqrt {x}"
            );
        }
        assert_eq!(sqrt64(0), 0);
        assert_eq!(sqrt64(1 << 40), 1 << 20);
    }

    #[test]
    fn forty_mel_channels_cover_125_to_7500_hz() {
        let fb = Filterbank::new(40, 125.0, 7500.0, 16_000, 257);
        assert_eq!(fb.start, 5); // 125 Hz / 31.25 Hz per bin, DC excluded
        assert!(fb.end() <= 257 && fb.end() >= 240, "end {}", fb.end());
        assert_eq!(fb.spans.len(), 41);
    }
}
