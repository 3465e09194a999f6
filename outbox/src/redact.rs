//! Redaction: the one place where frames are made safe to keep or send.
//!
//! [`Redactor::apply`] is the only constructor of [`RedactedFrame`], and the outbox only accepts
//! frames as a [`RedactedFrame`] (see [`crate::Record::frame`]), so no frame can reach the outbox
//! without passing through the redaction policy.

use serde::{Deserialize, Serialize};

use crate::error::{OutboxError, Result};

/// An 8-bit RGB frame, rows top to bottom, 3 bytes per pixel, no padding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RgbFrame {
    width: u32,
    height: u32,
    data: Vec<u8>,
}

impl RgbFrame {
    /// Wrap a buffer of `width * height * 3` bytes.
    pub fn new(width: u32, height: u32, data: Vec<u8>) -> Result<Self> {
        if data.len() != width as usize * height as usize * 3 || width == 0 || height == 0 {
            return Err(OutboxError::BadFrame {
                width,
                height,
                len: data.len(),
            });
        }
        Ok(RgbFrame {
            width,
            height,
            data,
        })
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// The pixel bytes.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// Mutable pixel bytes (the source fills them in place).
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.data
    }

    /// Take the pixel buffer back (to reuse it).
    pub fn into_data(self) -> Vec<u8> {
        self.data
    }

    /// The RGB value at (x, y).
    pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        let i = (y as usize * self.width as usize + x as usize) * 3;
        [self.data[i], self.data[i + 1], self.data[i + 2]]
    }
}

/// One detection as the decoder reports it: a class label, a score and a box in pixels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    /// Class label, e.g. "face", "car".
    pub class: String,
    /// Confidence in [0, 1].
    pub score: f32,
    /// Left edge (pixels, inclusive).
    pub x0: f32,
    /// Top edge (pixels, inclusive).
    pub y0: f32,
    /// Right edge (pixels, exclusive).
    pub x1: f32,
    /// Bottom edge (pixels, exclusive).
    pub y1: f32,
}

/// How a redacted region is rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum RedactMethod {
    /// Three box-blur passes (≈ Gaussian). The radius is at least `radius` pixels and at least a
    /// quarter of the box's larger side, so large faces are blurred as strongly as small ones.
    Blur {
        /// Minimum blur radius in pixels.
        radius: u32,
    },
    /// Paint the region with one colour.
    Fill {
        /// The fill colour.
        rgb: [u8; 3],
    },
}

/// Which classes are redacted and how (part of the outbox configuration).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RedactionPolicy {
    /// Class labels to redact. Default: `["face"]`.
    pub classes: Vec<String>,
    /// How to redact. Default: blur.
    pub method: RedactMethod,
    /// Grow each box by this fraction of its size on every side (covers hair, chin). Default 0.1.
    pub margin: f32,
    /// Detections of a redacted class at or above this score are redacted. Deliberately low
    /// (default 0.2): redacting a false positive costs little, missing a face costs a lot.
    pub min_score: f32,
}

impl Default for RedactionPolicy {
    fn default() -> Self {
        RedactionPolicy {
            classes: vec!["face".to_string()],
            method: RedactMethod::Blur { radius: 8 },
            margin: 0.1,
            min_score: 0.2,
        }
    }
}

impl RedactionPolicy {
    /// Whether this detection must be redacted.
    pub fn covers(&self, d: &Detection) -> bool {
        d.score >= self.min_score && self.classes.iter().any(|c| c == &d.class)
    }
}

/// Proof that a frame went through [`Redactor::apply`]: borrows the redacted frame (so it cannot
/// be changed afterwards) together with the detections that were considered.
#[derive(Debug, Clone, Copy)]
pub struct RedactedFrame<'a> {
    frame: &'a RgbFrame,
    detections: &'a [Detection],
    regions: usize,
}

impl<'a> RedactedFrame<'a> {
    /// The redacted frame.
    pub fn frame(&self) -> &'a RgbFrame {
        self.frame
    }

    /// The detections the frame was redacted against (kept with samples as raw detections).
    pub fn detections(&self) -> &'a [Detection] {
        self.detections
    }

    /// How many regions were redacted.
    pub fn regions(&self) -> usize {
        self.regions
    }

    /// Encode as baseline JPEG at `quality` (1–100).
    pub fn encode_jpeg(&self, quality: u8) -> Result<Vec<u8>> {
        let f = self.frame;
        let (w, h) = (
            u16::try_from(f.width)
                .map_err(|_| OutboxError::Jpeg("frame wider than 65535".into()))?,
            u16::try_from(f.height)
                .map_err(|_| OutboxError::Jpeg("frame taller than 65535".into()))?,
        );
        let mut out = Vec::with_capacity(f.data.len() / 8);
        let enc = jpeg_encoder::Encoder::new(&mut out, quality.clamp(1, 100));
        enc.encode(&f.data, w, h, jpeg_encoder::ColorType::Rgb)
            .map_err(|e| OutboxError::Jpeg(e.to_string()))?;
        Ok(out)
    }
}

/// The redaction step. Stateless; holds scratch only for the duration of a call.
#[derive(Debug, Clone, Copy, Default)]
pub struct Redactor;

impl Redactor {
    /// Redact every detection the policy covers, in place, and return the proof token.
    pub fn apply<'a>(
        policy: &RedactionPolicy,
        frame: &'a mut RgbFrame,
        detections: &'a [Detection],
    ) -> RedactedFrame<'a> {
        let mut regions = 0;
        for d in detections.iter().filter(|d| policy.covers(d)) {
            if let Some(r) = pixel_rect(frame, d, policy.margin) {
                match policy.method {
                    RedactMethod::Fill { rgb } => fill(frame, r, rgb),
                    RedactMethod::Blur { radius } => {
                        let side = (r.2 - r.0).max(r.3 - r.1);
                        blur(frame, r, radius.max(side / 4).max(1));
                    }
                }
                regions += 1;
            }
        }
        RedactedFrame {
            frame,
            detections,
            regions,
        }
    }
}

/// Clamp a detection (grown by `margin`) to the frame: (x0, y0, x1, y1), exclusive ends.
fn pixel_rect(f: &RgbFrame, d: &Detection, margin: f32) -> Option<(u32, u32, u32, u32)> {
    let (w, h) = (d.x1 - d.x0, d.y1 - d.y0);
    if !(w.is_finite() && h.is_finite()) || w <= 0.0 || h <= 0.0 {
        return None;
    }
    let m = margin.max(0.0);
    let clamp = |v: f32, hi: u32| -> u32 { v.max(0.0).min(hi as f32) as u32 };
    let x0 = clamp((d.x0 - w * m).floor(), f.width);
    let y0 = clamp((d.y0 - h * m).floor(), f.height);
    let x1 = clamp((d.x1 + w * m).ceil(), f.width);
    let y1 = clamp((d.y1 + h * m).ceil(), f.height);
    (x1 > x0 && y1 > y0).then_some((x0, y0, x1, y1))
}

fn fill(f: &mut RgbFrame, (x0, y0, x1, y1): (u32, u32, u32, u32), rgb: [u8; 3]) {
    let stride = f.width as usize * 3;
    for y in y0..y1 {
        let row = &mut f.data[y as usize * stride..][x0 as usize * 3..x1 as usize * 3];
        for px in row.chunks_exact_mut(3) {
            px.copy_from_slice(&rgb);
        }
    }
}

/// Three passes of a separable box blur restricted to the rectangle (edges clamp to the
/// rectangle, so nothing outside it is read or written).
fn blur(f: &mut RgbFrame, (x0, y0, x1, y1): (u32, u32, u32, u32), radius: u32) {
    let (rw, rh) = ((x1 - x0) as usize, (y1 - y0) as usize);
    let stride = f.width as usize * 3;
    let mut buf = vec![0u16; rw * rh * 3];
    for y in 0..rh {
        let src = &f.data[(y0 as usize + y) * stride + x0 as usize * 3..][..rw * 3];
        for (d, s) in buf[y * rw * 3..][..rw * 3].iter_mut().zip(src) {
            *d = u16::from(*s);
        }
    }
    let mut tmp = vec![0u16; buf.len()];
    let r = radius as usize;
    for _ in 0..3 {
        box_pass(&buf, &mut tmp, rw, rh, r, true);
        box_pass(&tmp, &mut buf, rw, rh, r, false);
    }
    for y in 0..rh {
        let dst = &mut f.data[(y0 as usize + y) * stride + x0 as usize * 3..][..rw * 3];
        for (d, s) in dst.iter_mut().zip(&buf[y * rw * 3..][..rw * 3]) {
            *d = *s as u8;
        }
    }
}

/// One box pass along rows (`horizontal`) or columns, clamped sampling at the edges.
fn box_pass(src: &[u16], dst: &mut [u16], w: usize, h: usize, r: usize, horizontal: bool) {
    let (len, lines) = if horizontal { (w, h) } else { (h, w) };
    let idx = |line: usize, i: usize, c: usize| -> usize {
        if horizontal {
            (line * w + i) * 3 + c
        } else {
            (i * w + line) * 3 + c
        }
    };
    let n = (2 * r + 1) as u32;
    for line in 0..lines {
        for c in 0..3 {
            let at = |i: isize| -> u32 {
                u32::from(src[idx(line, i.clamp(0, len as isize - 1) as usize, c)])
            };
            let mut sum: u32 = (-(r as isize)..=r as isize).map(at).sum();
            for i in 0..len {
                dst[idx(line, i, c)] = ((sum + n / 2) / n) as u16;
                sum += at(i as isize + r as isize + 1);
                sum -= at(i as isize - r as isize);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise_frame(w: u32, h: u32) -> RgbFrame {
        let mut rng = fastrand::Rng::with_seed(7);
        let data = (0..w * h * 3).map(|_| rng.u8(..)).collect();
        RgbFrame::new(w, h, data).unwrap()
    }

    fn det(class: &str, score: f32, x0: f32, y0: f32, x1: f32, y1: f32) -> Detection {
        Detection {
            class: class.into(),
            score,
            x0,
            y0,
            x1,
            y1,
        }
    }

    fn check(policy: &RedactionPolicy) {
        let orig = noise_frame(64, 48);
        let mut f = orig.clone();
        let dets = [
            det("face", 0.9, 10.0, 8.0, 30.0, 28.0),
            det("car", 0.9, 40.0, 5.0, 60.0, 40.0),
        ];
        let red = Redactor::apply(policy, &mut f, &dets);
        assert_eq!(red.regions(), 1);
        let (x0, y0, x1, y1) = (10, 8, 30, 28); // margin 0 in these tests
        let mut changed = 0;
        let mut inside = 0;
        for y in 0..48 {
            for x in 0..64 {
                let is_in = (x0..x1).contains(&x) && (y0..y1).contains(&y);
                if is_in {
                    inside += 1;
                    changed += usize::from(f.pixel(x, y) != orig.pixel(x, y));
                } else {
                    assert_eq!(
                        f.pixel(x, y),
                        orig.pixel(x, y),
                        "pixel ({x},{y}) outside the box changed"
                    );
                }
            }
        }
        assert!(
            changed * 100 >= inside * 95,
            "only {changed} of {inside} pixels inside the box changed"
        );
    }

    #[test]
    fn blur_changes_inside_only() {
        check(&RedactionPolicy {
            margin: 0.0,
            ..RedactionPolicy::default()
        });
    }

    #[test]
    fn fill_changes_inside_only() {
        check(&RedactionPolicy {
            margin: 0.0,
            method: RedactMethod::Fill { rgb: [0, 0, 0] },
            ..Default::default()
        });
    }

    #[test]
    fn boxes_are_clamped_and_low_scores_ignored() {
        let mut f = noise_frame(16, 16);
        let orig = f.clone();
        let p = RedactionPolicy::default();
        let dets = [
            det("face", 0.1, 0.0, 0.0, 8.0, 8.0),
            det("face", 0.9, -50.0, -50.0, f32::NAN, 4.0),
        ];
        assert_eq!(Redactor::apply(&p, &mut f, &dets).regions(), 0);
        assert_eq!(f, orig);
        let dets = [det("face", 0.9, 12.0, 12.0, 100.0, 100.0)];
        assert_eq!(Redactor::apply(&p, &mut f, &dets).regions(), 1);
        assert_eq!(f.pixel(0, 0), orig.pixel(0, 0));
    }

    #[test]
    fn jpeg_roundtrip_header() {
        let mut f = noise_frame(32, 16);
        let red = Redactor::apply(&RedactionPolicy::default(), &mut f, &[]);
        let jpeg = red.encode_jpeg(80).unwrap();
        assert_eq!(&jpeg[..2], &[0xFF, 0xD8]);
        assert_eq!(&jpeg[jpeg.len() - 2..], &[0xFF, 0xD9]);
    }
}
