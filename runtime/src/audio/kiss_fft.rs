//! Fixed-point (Q15, 16-bit) real FFT, bit-exact with KISS FFT built with `FIXED_POINT=16`
//! (`kiss_fftr` over a complex `kiss_fft` of half the length), which is what the TFLite Micro
//! audio front end uses.
//!
//! Ported from KISS FFT (Copyright (c) 2003-2010 Mark Borgerding, BSD-3-Clause). Every
//! intermediate is a 16-bit complex number, as in C: sums are truncated to `i16` where C stores
//! them into a `kiss_fft_scalar`, products are rounded (`sround`), and each butterfly stage
//! first divides its inputs by the radix (`C_FIXDIV`) so nothing overflows. Lengths are powers
//! of two (radix 4 stages, one radix 2 stage when needed), all the front end ever asks for.

/// A 16-bit complex number (`kiss_fft_cpx`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cpx {
    /// Real part.
    pub r: i16,
    /// Imaginary part.
    pub i: i16,
}

const FRACBITS: u32 = 15;
const SAMP_MAX: i32 = 32767;

/// `sround`: Q15 product back to 16 bits, rounding half up.
#[inline]
fn sround(x: i32) -> i16 {
    (x.wrapping_add(1 << (FRACBITS - 1)) >> FRACBITS) as i16
}

/// `S_MUL`.
#[inline]
fn s_mul(a: i16, b: i16) -> i16 {
    sround(a as i32 * b as i32)
}

/// `C_MUL`.
#[inline]
fn c_mul(a: Cpx, b: Cpx) -> Cpx {
    let (ar, ai, br, bi) = (a.r as i32, a.i as i32, b.r as i32, b.i as i32);
    Cpx {
        r: sround((ar * br).wrapping_sub(ai * bi)),
        i: sround((ar * bi).wrapping_add(ai * br)),
    }
}

/// `C_FIXDIV`: divide by `div` in Q15.
#[inline]
fn fixdiv(c: Cpx, div: i32) -> Cpx {
    Cpx {
        r: s_mul(c.r, (SAMP_MAX / div) as i16),
        i: s_mul(c.i, (SAMP_MAX / div) as i16),
    }
}

#[inline]
fn add(a: Cpx, b: Cpx) -> Cpx {
    Cpx {
        r: a.r.wrapping_add(b.r),
        i: a.i.wrapping_add(b.i),
    }
}

#[inline]
fn sub(a: Cpx, b: Cpx) -> Cpx {
    Cpx {
        r: a.r.wrapping_sub(b.r),
        i: a.i.wrapping_sub(b.i),
    }
}

/// `kf_cexp` in fixed point: `floor(0.5 + 32767 · cos/sin(phase))`.
fn cexp(phase: f64) -> Cpx {
    Cpx {
        r: (0.5 + SAMP_MAX as f64 * phase.cos()).floor() as i16,
        i: (0.5 + SAMP_MAX as f64 * phase.sin()).floor() as i16,
    }
}

/// A forward complex FFT plan (`kiss_fft_state`).
#[derive(Debug, Clone)]
struct ComplexFft {
    twiddles: Vec<Cpx>,
    /// `(radix, remaining length)` per stage.
    factors: Vec<(usize, usize)>,
}

impl ComplexFft {
    fn new(n: usize) -> Self {
        let twiddles = (0..n)
            .map(|i| cexp(-2.0 * std::f64::consts::PI * i as f64 / n as f64))
            .collect();
        // kf_factor: powers of 4 first, then 2 (n is a power of two here).
        let mut factors = Vec::new();
        let mut m = n;
        while m > 1 {
            let p = if m.is_multiple_of(4) { 4 } else { 2 };
            m /= p;
            factors.push((p, m));
        }
        ComplexFft { twiddles, factors }
    }

    /// `kf_work`: `out` receives the transform of `input[0], input[stride], ...`.
    fn work(&self, out: &mut [Cpx], input: &[Cpx], fstride: usize, stage: usize) {
        let (p, m) = self.factors[stage];
        if m == 1 {
            for (k, o) in out[..p].iter_mut().enumerate() {
                *o = input[k * fstride];
            }
        } else {
            for k in 0..p {
                self.work(
                    &mut out[k * m..(k + 1) * m],
                    &input[k * fstride..],
                    fstride * p,
                    stage + 1,
                );
            }
        }
        match p {
            4 => self.bfly4(&mut out[..4 * m], fstride, m),
            _ => self.bfly2(&mut out[..2 * m], fstride, m),
        }
    }

    fn bfly2(&self, f: &mut [Cpx], fstride: usize, m: usize) {
        for k in 0..m {
            let a = fixdiv(f[k], 2);
            let b = fixdiv(f[k + m], 2);
            let t = c_mul(b, self.twiddles[k * fstride]);
            f[k + m] = sub(a, t);
            f[k] = add(a, t);
        }
    }

    fn bfly4(&self, f: &mut [Cpx], fstride: usize, m: usize) {
        let tw = &self.twiddles;
        for k in 0..m {
            let f0 = fixdiv(f[k], 4);
            let f1 = fixdiv(f[k + m], 4);
            let f2 = fixdiv(f[k + 2 * m], 4);
            let f3 = fixdiv(f[k + 3 * m], 4);
            let s0 = c_mul(f1, tw[k * fstride]);
            let s1 = c_mul(f2, tw[2 * k * fstride]);
            let s2 = c_mul(f3, tw[3 * k * fstride]);
            let s5 = sub(f0, s1);
            let f0 = add(f0, s1);
            let s3 = add(s0, s2);
            let s4 = sub(s0, s2);
            f[k + 2 * m] = sub(f0, s3);
            f[k] = add(f0, s3);
            f[k + m] = Cpx {
                r: s5.r.wrapping_add(s4.i),
                i: s5.i.wrapping_sub(s4.r),
            };
            f[k + 3 * m] = Cpx {
                r: s5.r.wrapping_sub(s4.i),
                i: s5.i.wrapping_add(s4.r),
            };
        }
    }
}

/// A forward real FFT of `n` points (`kiss_fftr`), with its scratch allocated once.
#[derive(Debug, Clone)]
pub struct RealFft {
    n: usize,
    sub: ComplexFft,
    packed: Vec<Cpx>,
    tmp: Vec<Cpx>,
    super_twiddles: Vec<Cpx>,
}

impl RealFft {
    /// A plan for `n` real points; `n` must be a power of two, at least 4.
    pub fn new(n: usize) -> Self {
        assert!(n.is_power_of_two() && n >= 4, "real FFT length {n}");
        let half = n / 2;
        let super_twiddles = (0..half / 2)
            .map(|i| cexp(-std::f64::consts::PI * ((i + 1) as f64 / half as f64 + 0.5)))
            .collect();
        RealFft {
            n,
            sub: ComplexFft::new(half),
            packed: vec![Cpx::default(); half],
            tmp: vec![Cpx::default(); half],
            super_twiddles,
        }
    }

    /// The number of real input points.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Always false (a plan has at least 4 points).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Transform `input` (`n` samples) into `out` (`n / 2 + 1` bins). Allocates nothing.
    pub fn forward(&mut self, input: &[i16], out: &mut [Cpx]) {
        let ncfft = self.n / 2;
        assert_eq!(input.len(), self.n);
        assert_eq!(out.len(), ncfft + 1);
        for (c, pair) in self.packed.iter_mut().zip(input.chunks_exact(2)) {
            *c = Cpx {
                r: pair[0],
                i: pair[1],
            };
        }
        self.sub.work(&mut self.tmp, &self.packed, 1, 0);
        let tmp = &self.tmp;
        let tdc = fixdiv(tmp[0], 2);
        out[0] = Cpx {
            r: tdc.r.wrapping_add(tdc.i),
            i: 0,
        };
        out[ncfft] = Cpx {
            r: tdc.r.wrapping_sub(tdc.i),
            i: 0,
        };
        for k in 1..=ncfft / 2 {
            let fpk = fixdiv(tmp[k], 2);
            let fpnk = fixdiv(
                Cpx {
                    r: tmp[ncfft - k].r,
                    i: tmp[ncfft - k].i.wrapping_neg(),
                },
                2,
            );
            let f1k = add(fpk, fpnk);
            let f2k = sub(fpk, fpnk);
            let tw = c_mul(f2k, self.super_twiddles[k - 1]);
            // HALF_OF on the int sums and differences, then stored as 16 bits.
            let half = |x: i32| (x >> 1) as i16;
            let (fr, fi, tr, ti) = (f1k.r as i32, f1k.i as i32, tw.r as i32, tw.i as i32);
            out[k] = Cpx {
                r: half(fr + tr),
                i: half(fi + ti),
            };
            out[ncfft - k] = Cpx {
                r: half(fr - tr),
                i: half(ti - fi),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Floating-point DFT of the same input, scaled by 1/n as the fixed-point FFT is.
    fn dft(x: &[i16]) -> Vec<(f64, f64)> {
        let n = x.len();
        (0..=n / 2)
            .map(|k| {
                let (mut re, mut im) = (0.0, 0.0);
                for (t, &v) in x.iter().enumerate() {
                    let ph = -2.0 * std::f64::consts::PI * (k * t) as f64 / n as f64;
                    re += v as f64 * ph.cos();
                    im += v as f64 * ph.sin();
                }
                (re / n as f64, im / n as f64)
            })
            .collect()
    }

    #[test]
    fn matches_a_float_dft_within_fixed_point_noise() {
        for n in [8usize, 32, 512] {
            let x: Vec<i16> = (0..n)
                .map(|t| {
                    let t = t as f64;
                    (12000.0 * (0.3 * t).sin() + 8000.0 * (1.7 * t + 0.4).cos()) as i16
                })
                .collect();
            let mut fft = RealFft::new(n);
            let mut out = vec![Cpx::default(); n / 2 + 1];
            fft.forward(&x, &mut out);
            let want = dft(&x);
            // Each of log2(n) stages rounds once or twice at 1/2 LSB.
            let budget = 1.0 + n.ilog2() as f64;
            for (k, (o, w)) in out.iter().zip(&want).enumerate() {
                assert!(
                    (o.r as f64 - w.0).abs() <= budget && (o.i as f64 - w.1).abs() <= budget,
                    "n {n} bin {k}: {o:?} vs {w:?}"
                );
            }
        }
    }

    #[test]
    fn radix_plan_is_fours_then_a_two() {
        assert_eq!(
            ComplexFft::new(256).factors,
            [(4, 64), (4, 16), (4, 4), (4, 1)]
        );
        assert_eq!(
            ComplexFft::new(128).factors,
            [(4, 32), (4, 8), (4, 2), (2, 1)]
        );
    }
}
