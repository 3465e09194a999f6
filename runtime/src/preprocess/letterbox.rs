//! Fitting a source frame into the model's input: the geometry, and the way back.

use outpost_models::spec::ResizeKind;

/// Where a source frame landed in the model input, so results can be mapped back to it.
///
/// Model-input coordinates are pixels of the `input_w × input_h` tensor; "normalised" ones divide
/// those by `input_w` / `input_h` (what most detectors output). Source coordinates are pixels of
/// the `src_w × src_h` frame, with `(0, 0)` its top-left corner and `(src_w, src_h)` its
/// bottom-right one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Letterbox {
    /// Letterbox: the one scale of both axes, `min(input_w/src_w, input_h/src_h)`. Stretch: the
    /// smaller of the two axis scales (see `scale_x`, `scale_y`).
    pub scale: f32,
    /// Source → input scale of x (letterbox: `scale`; stretch: `input_w / src_w`).
    pub scale_x: f32,
    /// Source → input scale of y (letterbox: `scale`; stretch: `input_h / src_h`).
    pub scale_y: f32,
    /// Columns of padding left of the picture (a whole number).
    pub pad_x: f32,
    /// Rows of padding above the picture (a whole number).
    pub pad_y: f32,
    /// Width of the resized picture inside the input.
    pub resized_w: u32,
    /// Height of the resized picture inside the input.
    pub resized_h: u32,
    /// Model input width.
    pub input_w: u32,
    /// Model input height.
    pub input_h: u32,
    /// Source width.
    pub src_w: u32,
    /// Source height.
    pub src_h: u32,
}

impl Letterbox {
    /// The geometry of fitting a `src_w × src_h` frame into `input_w × input_h` (all ≥ 1).
    ///
    /// Letterbox, computed in `f64` like the Python reference (`tools/reference/reference.py`):
    /// `scale = min(input_w/src_w, input_h/src_h)`, `resized_w = ⌊src_w · scale + 0.5⌋` (round
    /// half up; kept within `1..=input_w`), likewise `resized_h`;
    /// `pad_x = ⌊(input_w − resized_w) / 2⌋`, `pad_y` likewise. Stretch: the resized picture is the
    /// whole input, no padding.
    pub fn compute(kind: ResizeKind, input_w: u32, input_h: u32, src_w: u32, src_h: u32) -> Self {
        let (iw, ih) = (f64::from(input_w.max(1)), f64::from(input_h.max(1)));
        let (sw, sh) = (f64::from(src_w.max(1)), f64::from(src_h.max(1)));
        match kind {
            ResizeKind::Stretch => {
                let (sx, sy) = (iw / sw, ih / sh);
                Letterbox {
                    scale: sx.min(sy) as f32,
                    scale_x: sx as f32,
                    scale_y: sy as f32,
                    pad_x: 0.0,
                    pad_y: 0.0,
                    resized_w: input_w,
                    resized_h: input_h,
                    input_w,
                    input_h,
                    src_w,
                    src_h,
                }
            }
            ResizeKind::Letterbox => {
                let s = (iw / sw).min(ih / sh);
                let fit =
                    |src: f64, input: u32| ((src * s + 0.5).floor() as u32).clamp(1, input.max(1));
                let (rw, rh) = (fit(sw, input_w), fit(sh, input_h));
                Letterbox {
                    scale: s as f32,
                    scale_x: s as f32,
                    scale_y: s as f32,
                    pad_x: (input_w.saturating_sub(rw) / 2) as f32,
                    pad_y: (input_h.saturating_sub(rh) / 2) as f32,
                    resized_w: rw,
                    resized_h: rh,
                    input_w,
                    input_h,
                    src_w,
                    src_h,
                }
            }
        }
    }

    /// A normalised model-input point to source pixels:
    /// `((x_norm·input_w − pad_x) / scale_x, (y_norm·input_h − pad_y) / scale_y)`. Not clamped.
    pub fn to_source(&self, x_norm: f32, y_norm: f32) -> (f32, f32) {
        (
            (x_norm * self.input_w as f32 - self.pad_x) / self.scale_x,
            (y_norm * self.input_h as f32 - self.pad_y) / self.scale_y,
        )
    }

    /// Source pixels to a normalised model-input point: the inverse of [`Letterbox::to_source`].
    pub fn from_source(&self, x: f32, y: f32) -> (f32, f32) {
        (
            (x * self.scale_x + self.pad_x) / self.input_w as f32,
            (y * self.scale_y + self.pad_y) / self.input_h as f32,
        )
    }

    /// A normalised `[x1, y1, x2, y2]` box to source pixels, clamped to `0..=src_w`,
    /// `0..=src_h`.
    pub fn box_to_source(&self, b: [f32; 4]) -> [f32; 4] {
        let (x1, y1) = self.to_source(b[0], b[1]);
        let (x2, y2) = self.to_source(b[2], b[3]);
        let cx = |v: f32| v.clamp(0.0, self.src_w as f32);
        let cy = |v: f32| v.clamp(0.0, self.src_h as f32);
        [cx(x1), cy(y1), cx(x2), cy(y2)]
    }
}
