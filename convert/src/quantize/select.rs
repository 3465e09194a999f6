//! Choosing a tensor's range from its value histogram (bins of equal width over the observed
//! `[lo, hi]`).

/// Keep the central `p` percent of the values.
pub fn percentile(h: &[u64], lo: f32, hi: f32, p: f32) -> (f32, f32) {
    let bins = h.len();
    let tail = ((100.0 - p.clamp(50.0, 100.0)) / 200.0) as f64;
    let count: u64 = h.iter().sum();
    let cut = (count as f64 * tail) as u64;
    let w = (hi - lo) / (bins - 1) as f32;
    let (mut acc, mut a) = (0u64, 0usize);
    while a < bins - 1 && acc + h[a] <= cut {
        acc += h[a];
        a += 1;
    }
    let (mut acc, mut b) = (0u64, bins - 1);
    while b > 0 && acc + h[b] <= cut {
        acc += h[b];
        b -= 1;
    }
    (
        (lo + a as f32 * w).max(lo),
        (lo + (b + 1) as f32 * w).min(hi),
    )
}

/// The clipping range `[L, U]` that minimises the expected squared int8 quantization error:
/// values outside are clipped (error `(x − L)²` or `(x − U)²`), values inside get rounding
/// noise `Δ²/12` with `Δ = (U − L)/255`. Searched over a grid of candidate ends (the range
/// always keeps zero, as the int8 scheme needs), each evaluated in O(1) with prefix sums.
pub fn mse(h: &[u64], lo: f32, hi: f32) -> (f32, f32) {
    let bins = h.len();
    let w = ((hi - lo) / (bins - 1) as f32) as f64;
    let centre = |b: usize| lo as f64 + (b as f64 + 0.5) * w;
    // Prefix sums of n, n·x, n·x² (index i covers bins < i).
    let mut s0 = vec![0f64; bins + 1];
    let mut s1 = vec![0f64; bins + 1];
    let mut s2 = vec![0f64; bins + 1];
    for b in 0..bins {
        let (n, x) = (h[b] as f64, centre(b));
        s0[b + 1] = s0[b] + n;
        s1[b + 1] = s1[b] + n * x;
        s2[b + 1] = s2[b] + n * x * x;
    }
    // Σ over bins [a, b) of n·(x − c)².
    let sq = |a: usize, b: usize, c: f64| {
        (s2[b] - s2[a]) - 2.0 * c * (s1[b] - s1[a]) + c * c * (s0[b] - s0[a])
    };
    let zero = (((0.0 - lo) as f64 / w).floor().max(0.0) as usize).min(bins);
    let steps = 64;
    let lows: Vec<usize> = (0..=steps).map(|i| i * zero / steps).collect();
    let highs: Vec<usize> = (0..=steps)
        .map(|i| bins - i * (bins - zero.min(bins)) / steps)
        .collect();
    let mut best = (f64::INFINITY, lo, hi);
    for &a in &lows {
        for &b in &highs {
            if b <= a {
                continue;
            }
            let (l, u) = (lo as f64 + a as f64 * w, lo as f64 + b as f64 * w);
            let delta = (u - l).max(1e-12) / 255.0;
            let err = sq(0, a, l) + sq(b, bins, u) + (s0[b] - s0[a]) * delta * delta / 12.0;
            if err < best.0 {
                best = (err, l as f32, u as f32);
            }
        }
    }
    (best.1, best.2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_clips_rare_outliers() {
        let mut h = vec![0u64; 100];
        h[10..20].iter_mut().for_each(|v| *v = 1000);
        h[99] = 1;
        let (l, u) = percentile(&h, 0.0, 99.0, 99.9);
        assert!(l <= 10.0 && (19.0..=21.0).contains(&u), "{l} {u}");
    }

    #[test]
    fn mse_ignores_a_far_outlier_but_keeps_the_bulk() {
        let mut h = vec![0u64; 2048];
        h[..200].iter_mut().for_each(|v| *v = 10_000);
        h[2047] = 1;
        let (l, u) = mse(&h, 0.0, 2047.0);
        assert_eq!(l, 0.0);
        assert!((150.0..600.0).contains(&u), "{u}");
    }

    #[test]
    fn mse_keeps_a_uniform_range() {
        let h = vec![100u64; 2048];
        let (l, u) = mse(&h, -1.0, 1.0);
        assert!(l < -0.95 && u > 0.95, "{l} {u}");
    }
}
