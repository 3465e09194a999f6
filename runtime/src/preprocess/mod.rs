//! Image preprocessing: a camera or file frame into a model's input tensor, allocating nothing
//! per frame.
//!
//! A [`Preprocessor`] is built once per model input from its [`InputSpec`] and tensor declaration
//! (`[1, H, W, C]`, `i8` with `{scale, zero_point}` or `f32`); every table and scratch buffer is
//! allocated there. Each frame is then an [`ImageView`] (any size, RGB/BGR/gray or NV12/I420
//! camera YUV, any row stride) turned into the input by [`Preprocessor::run_i8`] /
//! [`Preprocessor::run_f32`], which allocate nothing and return the [`Letterbox`] needed to map
//! results back to the frame.
//!
//! The steps, as the Python reference (`tools/reference/reference.py`, its docstring) computes
//! them — it in `f64`, this in `f32` where it matters for speed (agreement ≈ 1e-5 after
//! normalisation):
//! 1. **Geometry** ([`Letterbox::compute`]): `stretch` resizes to the input size; `letterbox`
//!    scales by `min(S_w/W, S_h/H)`, rounds the resized size half up (`⌊x + 0.5⌋`) and centres
//!    it, padding `⌊(S − new)/2⌋` before.
//! 2. **Resize**: bilinear with half-pixel centres, no antialiasing (OpenCV `INTER_LINEAR`),
//!    taps in `f64`, values in `f32` on 0..255, never rounded to `u8` (`resize.rs`). Identity
//!    sizes pass pixels through unchanged (the taps have weight 0).
//! 3. **Colour** to the model's order ([`color`]): `rgb`, `bgr`, or `gray = 0.299R + 0.587G +
//!    0.114B`. YUV sources are first converted per pixel to 8-bit RGB (BT.601 limited range).
//! 4. **Normalise**: `(v − mean[c]) / std[c]`. Padding holds the normalised black pixel,
//!    `(0 − mean[c]) / std[c]`.
//! 5. **Quantize** (`i8` inputs): [`outpost_kernels::quantize_f32`], i.e.
//!    `clamp(round_half_away(v / scale) + zero_point, −128, 127)` (a bit-identical copy without
//!    its libm `round` call); `run_i8` is exactly the quantization of what `run_f32` gives.
//!
//! Results map back with [`Letterbox::to_source`]: `(x_norm·S − pad) / scale`, as the reference
//! does (the letterbox scale, not the rounded `new/W` ratio the resize uses).
//!
//! Decoding files to RGB for the CLI (allocating) is in [`decode`].

pub mod color;
pub mod decode;
mod image;
mod letterbox;
mod resize;

#[cfg(test)]
mod tests;

use outpost_hal::{DType, ErrorKind};
use outpost_models::Model;
use outpost_models::graph::{QuantParams, TensorDecl};
use outpost_models::spec::{ColorOrder, InputSpec, Layout, ResizeKind};
use thiserror::Error;

pub use decode::{DecodeError, RgbImage, decode_rgb, load_rgb};
pub use image::{ImageView, PixelFormat};
pub use letterbox::Letterbox;

use resize::Resizer;

/// Why a frame cannot be preprocessed, or a model input cannot take frames.
#[derive(Debug, Clone, Error, PartialEq)]
#[non_exhaustive]
pub enum PreprocessError {
    /// The image has no pixels.
    #[error("image is {width}×{height}: both sizes must be at least 1")]
    ZeroSize {
        /// Width.
        width: u32,
        /// Height.
        height: u32,
    },
    /// The row stride is smaller than a row.
    #[error("stride {stride} is smaller than a row ({min} bytes)")]
    StrideTooSmall {
        /// Given stride.
        stride: usize,
        /// Smallest valid stride.
        min: usize,
    },
    /// The pixel buffer is shorter than the size, format and stride need.
    #[error("pixel buffer holds {len} bytes, the image needs {need}")]
    BufferTooSmall {
        /// Bytes given.
        len: usize,
        /// Bytes needed.
        need: usize,
    },
    /// The image's byte size does not fit in memory addresses.
    #[error("image of {width}×{height} is too large to address")]
    TooLarge {
        /// Width.
        width: u32,
        /// Height.
        height: u32,
    },
    /// The output slice does not have the input tensor's element count.
    #[error("output slice holds {len} values, the input tensor has {want}")]
    OutputLength {
        /// Values given.
        len: usize,
        /// Values of the tensor.
        want: usize,
    },
    /// `run_i8` on an `f32` input or the reverse.
    #[error("the input tensor is {model}, not {asked}")]
    WrongDtype {
        /// The run method's type.
        asked: DType,
        /// The tensor's type.
        model: DType,
    },
    /// The model has no input of this index.
    #[error("input #{index} does not exist: the model has {count} inputs")]
    NoInput {
        /// Index asked.
        index: usize,
        /// Inputs of the model.
        count: usize,
    },
    /// The model input cannot be fed images (not NHWC, no colour order, unsupported dtype...).
    #[error("input `{tensor}` cannot take images: {reason}")]
    Unsupported {
        /// The input tensor.
        tensor: String,
        /// Why.
        reason: String,
    },
}

impl PreprocessError {
    /// The class of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            PreprocessError::Unsupported { .. } => ErrorKind::Unsupported,
            _ => ErrorKind::InvalidInput,
        }
    }
}

/// Result alias.
pub type Result<T, E = PreprocessError> = std::result::Result<T, E>;

/// The output tensor to fill, for [`Preprocessor::run`].
#[derive(Debug)]
pub enum Output<'a> {
    /// An `i8` input (quantized with the tensor's parameters).
    I8(&'a mut [i8]),
    /// An `f32` input.
    F32(&'a mut [f32]),
}

/// Turns frames into one model input. Build once, run per frame without allocating.
#[derive(Debug)]
pub struct Preprocessor {
    tensor: String,
    width: usize,
    height: usize,
    channels: usize,
    color: ColorOrder,
    resize: ResizeKind,
    mean: [f32; 3],
    std: [f32; 3],
    /// `mean`, `std` repeated along an output row (one value per element).
    mean_row: Vec<f32>,
    std_row: Vec<f32>,
    dtype: DType,
    quant: QuantParams,
    resizer: Resizer,
    /// One output row of normalised values.
    row: Vec<f32>,
    /// One output row of padding (normalised black).
    pad_row: Vec<f32>,
}

fn unsupported(tensor: &str, reason: impl Into<String>) -> PreprocessError {
    PreprocessError::Unsupported {
        tensor: tensor.to_string(),
        reason: reason.into(),
    }
}

impl Preprocessor {
    /// For graph input `input` (the index [`Session::input_i8`](crate::Session::input_i8) uses)
    /// of `model`, described by its input spec.
    pub fn new(model: &Model, input: usize) -> Result<Preprocessor> {
        let meta = model.meta();
        let name = meta
            .graph
            .inputs
            .get(input)
            .ok_or(PreprocessError::NoInput {
                index: input,
                count: meta.graph.inputs.len(),
            })?;
        let spec = meta
            .inputs
            .iter()
            .find(|s| &s.tensor == name)
            .ok_or_else(|| unsupported(name, "the model has no input spec for it"))?;
        let decl = meta
            .graph
            .tensor(name)
            .ok_or_else(|| unsupported(name, "no tensor declaration"))?;
        Self::from_spec(spec, decl)
    }

    /// From an input spec and the declaration of its tensor (for models built in memory and for
    /// tests).
    pub fn from_spec(spec: &InputSpec, decl: &TensorDecl) -> Result<Preprocessor> {
        let t = decl.name.as_str();
        if spec.layout != Layout::Nhwc {
            return Err(unsupported(t, "layout is not nhwc"));
        }
        let channels = match spec.color {
            ColorOrder::Rgb | ColorOrder::Bgr => 3,
            ColorOrder::Gray => 1,
            ColorOrder::None => return Err(unsupported(t, "colour order is `none`")),
        };
        let (height, width) = match decl.shape[..] {
            [1, h, w, c] if c == channels && h >= 1 && w >= 1 => (h, w),
            _ => {
                return Err(unsupported(
                    t,
                    format!(
                        "shape {:?} is not [1, H, W, {channels}] for colour {:?}",
                        decl.shape, spec.color
                    ),
                ));
            }
        };
        if u32::try_from(width.max(height)).is_err()
            || width.checked_mul(height * channels).is_none()
        {
            return Err(unsupported(t, "the input is too large"));
        }
        let quant = match (decl.dtype, decl.quant) {
            (DType::F32, _) => QuantParams {
                scale: 1.0,
                zero_point: 0,
            },
            (DType::I8, Some(q)) if q.scale.is_finite() && q.scale > 0.0 => q,
            (DType::I8, _) => return Err(unsupported(t, "i8 input without a valid quant scale")),
            (d, _) => return Err(unsupported(t, format!("dtype {d} (only i8 and f32)"))),
        };
        let per_channel = |v: &[f32], default: f32, what: &str| -> Result<[f32; 3]> {
            let out = match v.len() {
                0 => [default; 3],
                1 => [v[0]; 3],
                n if n == channels => {
                    let mut a = [v[0]; 3];
                    a[..n].copy_from_slice(v);
                    a
                }
                n => {
                    return Err(unsupported(
                        t,
                        format!("{what} has {n} values for {channels} channels"),
                    ));
                }
            };
            if out.iter().any(|x| !x.is_finite()) {
                return Err(unsupported(t, format!("{what} must be finite")));
            }
            Ok(out)
        };
        let mean = per_channel(&spec.mean, 0.0, "mean")?;
        let std = per_channel(&spec.std, 1.0, "std")?;
        if std.contains(&0.0) {
            return Err(unsupported(t, "std must not be 0"));
        }
        let tile =
            |v: &[f32; 3]| -> Vec<f32> { (0..width * channels).map(|i| v[i % channels]).collect() };
        let (mean_row, std_row) = (tile(&mean), tile(&std));
        let pad_row = mean_row
            .iter()
            .zip(&std_row)
            .map(|(m, s)| (0.0 - m) / s)
            .collect();
        Ok(Preprocessor {
            tensor: decl.name.clone(),
            width,
            height,
            channels,
            color: spec.color,
            resize: spec.resize,
            mean,
            std,
            mean_row,
            std_row,
            dtype: decl.dtype,
            quant,
            resizer: Resizer::new(width, height),
            row: vec![0.0; width * channels],
            pad_row,
        })
    }

    /// The input tensor's name.
    pub fn tensor(&self) -> &str {
        &self.tensor
    }

    /// Input `(width, height)`.
    pub fn input_size(&self) -> (u32, u32) {
        (self.width as u32, self.height as u32)
    }

    /// Channels of the input (3, or 1 for gray).
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Values in the input tensor (`H × W × C`).
    pub fn len(&self) -> usize {
        self.width * self.height * self.channels
    }

    /// Always false: an input has at least one value.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The input tensor's element type (`i8` or `f32`).
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Channel order fed to the model.
    pub fn color(&self) -> ColorOrder {
        self.color
    }

    /// How frames are fitted.
    pub fn resize_kind(&self) -> ResizeKind {
        self.resize
    }

    /// The geometry a `src_w × src_h` frame would get.
    pub fn letterbox(&self, src_w: u32, src_h: u32) -> Letterbox {
        Letterbox::compute(
            self.resize,
            self.width as u32,
            self.height as u32,
            src_w,
            src_h,
        )
    }

    /// Fills an `i8` input. Allocates nothing.
    pub fn run_i8(&mut self, img: &ImageView<'_>, out: &mut [i8]) -> Result<Letterbox> {
        self.run(img, Output::I8(out))
    }

    /// Fills an `f32` input. Allocates nothing.
    pub fn run_f32(&mut self, img: &ImageView<'_>, out: &mut [f32]) -> Result<Letterbox> {
        self.run(img, Output::F32(out))
    }

    /// Fills the input tensor `out` (`H × W × C` values, NHWC) from `img`. Allocates nothing.
    pub fn run(&mut self, img: &ImageView<'_>, mut out: Output<'_>) -> Result<Letterbox> {
        let planes = img.planes()?;
        let (asked, len) = match &out {
            Output::I8(o) => (DType::I8, o.len()),
            Output::F32(o) => (DType::F32, o.len()),
        };
        if asked != self.dtype {
            return Err(PreprocessError::WrongDtype {
                asked,
                model: self.dtype,
            });
        }
        if len != self.len() {
            return Err(PreprocessError::OutputLength {
                len,
                want: self.len(),
            });
        }
        let lb = self.letterbox(img.width, img.height);
        let (rw, rh) = (lb.resized_w as usize, lb.resized_h as usize);
        let (px, py) = (lb.pad_x as usize, lb.pad_y as usize);
        let c = self.channels;
        let row_len = self.width * c;
        // The resizer already emits the model's channel order (gray models reduce RGB here).
        let bgr = self.color == ColorOrder::Bgr;
        self.resizer.begin(img.width, img.height, rw, rh, bgr);
        let gray_src = img.format == PixelFormat::Gray8;
        for y in 0..self.height {
            let src: &[f32] = if y < py || y >= py + rh {
                &self.pad_row
            } else {
                let mix = self.resizer.row(img, &planes, y - py);
                let row = &mut self.row[..];
                row[..px * c].copy_from_slice(&self.pad_row[..px * c]);
                row[(px + rw) * c..].copy_from_slice(&self.pad_row[(px + rw) * c..]);
                let span = px * c..(px + rw) * c;
                if c == 3 {
                    normalize(
                        mix,
                        &self.mean_row[span.clone()],
                        &self.std_row[span.clone()],
                        &mut row[span],
                    );
                } else {
                    normalize_gray(mix, gray_src, self.mean[0], self.std[0], &mut row[span]);
                }
                &self.row
            };
            let range = y * row_len..(y + 1) * row_len;
            match &mut out {
                Output::F32(o) => o[range].copy_from_slice(src),
                Output::I8(o) => quantize_row(src, self.quant, &mut o[range]),
            }
        }
        Ok(lb)
    }
}

/// [`outpost_kernels::quantize_f32`] of each value (`clamp(round_half_away(v / scale) + zero_point)`), bit for bit
/// for every `|v / scale| ≤ 2³⁰` and NaN, without its libm `round` call. (Beyond that
/// `quantize_f32`'s `i64` sum can overflow; this saturates.)
fn quantize_row(src: &[f32], q: QuantParams, out: &mut [i8]) {
    let QuantParams { scale, zero_point } = q;
    for (o, &v) in out.iter_mut().zip(src) {
        *o = (color::round_half_away(v / scale) + zero_point).clamp(-128, 127) as i8;
    }
}

/// `(v − mean) / std` element-wise: values already in the model's channel order.
fn normalize(mix: &[f32], mean: &[f32], std: &[f32], out: &mut [f32]) {
    for (((o, &v), &m), &s) in out.iter_mut().zip(mix).zip(mean).zip(std) {
        *o = (v - m) / s;
    }
}

/// RGB triplets (0..255 units) to normalised luminance. A gray source has `R = G = B`: taken as is.
fn normalize_gray(mix: &[f32], gray_src: bool, mean: f32, std: f32, out: &mut [f32]) {
    let px = mix.chunks_exact(3).zip(out.iter_mut());
    if gray_src {
        for (p, o) in px {
            *o = (p[0] - mean) / std;
        }
    } else {
        for (p, o) in px {
            *o = (color::gray([p[0], p[1], p[2]]) - mean) / std;
        }
    }
}
