//! Bilinear resampling with half-pixel centres and no antialiasing (OpenCV's `INTER_LINEAR`).
//!
//! Per axis, output sample `d` of `dst` reads the source at
//! `s = clamp((d + 0.5) / (dst/src) − 0.5, 0, src − 1)` (in `f64`, written as the Python
//! reference writes it), between `i0 = ⌊s⌋` and
//! `i1 = min(i0 + 1, src − 1)` with weight `w = s − i0` on `i1`. The value is
//! `(1 − wy)·((1 − wx)·p00 + wx·p01) + wy·((1 − wx)·p10 + wx·p11)` in `f32` on 0..255 values
//! (nothing is rounded to `u8`): one horizontal pass per source row needed (cached, so rows shared
//! by consecutive output rows are filtered once), then one vertical blend per output row.
//! Everything works in preallocated buffers sized by the model input, whatever the source size.

use super::color::yuv_to_rgb;
use super::image::{ImageView, PixelFormat, Planes};

/// One output sample's two source indices and the weight of the second.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Tap {
    pub i0: u32,
    pub i1: u32,
    pub w: f32,
}

/// Fills `taps` (one per output sample) for a source axis `src ≥ 1` samples long.
pub(crate) fn fill_taps(src: u32, taps: &mut [Tap]) {
    let scale = taps.len() as f64 / f64::from(src);
    let max = f64::from(src - 1);
    for (d, t) in taps.iter_mut().enumerate() {
        let s = ((d as f64 + 0.5) / scale - 0.5).clamp(0.0, max);
        let i0 = s.floor();
        *t = Tap {
            i0: i0 as u32,
            i1: (i0 as u32 + 1).min(src - 1),
            w: (s - i0) as f32,
        };
    }
}

/// Resampling scratch: taps and two filtered source rows, allocated once.
#[derive(Debug)]
pub(crate) struct Resizer {
    xt: Vec<Tap>,
    yt: Vec<Tap>,
    /// Horizontally filtered source rows, `R, G, B` triplets.
    rows: [Vec<f32>; 2],
    /// Which source row each of `rows` holds.
    held: [Option<u32>; 2],
    /// The current output row, `R, G, B` triplets.
    mix: Vec<f32>,
    /// Current output size.
    w: usize,
    h: usize,
    /// Emit `B, G, R` instead of `R, G, B`.
    bgr: bool,
}

impl Resizer {
    /// Scratch for outputs up to `max_w × max_h`.
    pub fn new(max_w: usize, max_h: usize) -> Self {
        Resizer {
            xt: vec![Tap::default(); max_w],
            yt: vec![Tap::default(); max_h],
            rows: [vec![0.0; 3 * max_w], vec![0.0; 3 * max_w]],
            held: [None; 2],
            mix: vec![0.0; 3 * max_w],
            w: 0,
            h: 0,
            bgr: false,
        }
    }

    /// Prepares resampling a `src_w × src_h` image to `w × h` (`1 ≤ w, h ≤` the maxima), in
    /// `B, G, R` order if `bgr`.
    pub fn begin(&mut self, src_w: u32, src_h: u32, w: usize, h: usize, bgr: bool) {
        self.w = w;
        self.h = h;
        self.bgr = bgr;
        fill_taps(src_w, &mut self.xt[..w]);
        fill_taps(src_h, &mut self.yt[..h]);
        self.held = [None; 2];
    }

    /// Output row `dy` as `w` RGB (or BGR) triplets. `img` must be validated, with `planes` its layout.
    pub fn row(&mut self, img: &ImageView<'_>, planes: &Planes, dy: usize) -> &[f32] {
        let t = self.yt[dy];
        if self.held[0] != Some(t.i0) {
            if self.held[1] == Some(t.i0) {
                self.rows.swap(0, 1);
                self.held.swap(0, 1);
            } else {
                hpass(
                    img,
                    planes,
                    t.i0,
                    &self.xt[..self.w],
                    self.bgr,
                    &mut self.rows[0],
                );
                self.held[0] = Some(t.i0);
            }
        }
        if self.held[1] != Some(t.i1) {
            hpass(
                img,
                planes,
                t.i1,
                &self.xt[..self.w],
                self.bgr,
                &mut self.rows[1],
            );
            self.held[1] = Some(t.i1);
        }
        let n = 3 * self.w;
        let (wy1, wy0) = (t.w, 1.0 - t.w);
        for ((m, &a), &b) in self.mix[..n]
            .iter_mut()
            .zip(&self.rows[0][..n])
            .zip(&self.rows[1][..n])
        {
            *m = wy0 * a + wy1 * b;
        }
        &self.mix[..n]
    }
}

/// Filters source row `y` horizontally into `out` (RGB, or BGR if `bgr`, triplets, one per tap).
fn hpass(img: &ImageView<'_>, planes: &Planes, y: u32, taps: &[Tap], bgr: bool, out: &mut [f32]) {
    let y = y as usize;
    let row = &img.data[y * img.stride..];
    match (img.format, bgr) {
        (PixelFormat::Rgb8, false) | (PixelFormat::Bgr8, true) => {
            hpass_packed::<0, 1, 2, 3>(row, taps, out)
        }
        (PixelFormat::Rgb8, true) | (PixelFormat::Bgr8, false) => {
            hpass_packed::<2, 1, 0, 3>(row, taps, out)
        }
        (PixelFormat::Gray8, _) => hpass_packed::<0, 0, 0, 1>(row, taps, out),
        (PixelFormat::Nv12 | PixelFormat::I420, _) => {
            let (first, last) = if bgr { (2, 0) } else { (0, 2) };
            let c = (y / 2) * planes.cstride;
            let (u, v) = (&img.data[planes.u + c..], &img.data[planes.v + c..]);
            let px = |x: u32| {
                let x = x as usize;
                let k = (x / 2) * planes.cstep;
                yuv_to_rgb(row[x], u[k], v[k]).map(f32::from)
            };
            for (t, o) in taps.iter().zip(out.chunks_exact_mut(3)) {
                let (p0, p1) = (px(t.i0), px(t.i1));
                let (w1, w0) = (t.w, 1.0 - t.w);
                o[0] = w0 * p0[first] + w1 * p1[first];
                o[1] = w0 * p0[1] + w1 * p1[1];
                o[2] = w0 * p0[last] + w1 * p1[last];
            }
        }
    }
}

/// Packed formats: channel `R`, `G`, `B` at these byte offsets of a `BPP`-byte pixel.
#[inline]
fn hpass_packed<const R: usize, const G: usize, const B: usize, const BPP: usize>(
    row: &[u8],
    taps: &[Tap],
    out: &mut [f32],
) {
    for (t, o) in taps.iter().zip(out.chunks_exact_mut(3)) {
        let a = &row[t.i0 as usize * BPP..][..BPP];
        let b = &row[t.i1 as usize * BPP..][..BPP];
        let (w1, w0) = (t.w, 1.0 - t.w);
        o[0] = w0 * f32::from(a[R]) + w1 * f32::from(b[R]);
        o[1] = w0 * f32::from(a[G]) + w1 * f32::from(b[G]);
        o[2] = w0 * f32::from(a[B]) + w1 * f32::from(b[B]);
    }
}
