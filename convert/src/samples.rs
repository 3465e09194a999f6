//! Calibration samples from files: images (PNG/JPEG) and `.npy` arrays of images
//! (`[N, H, W]` gray or `[N, H, W, 3]` RGB; `u8`, or floats in 0..1 or 0..255), each
//! preprocessed exactly as the runtime will preprocess camera frames.

use std::path::{Path, PathBuf};

use outpost_hal::DType;
use outpost_models::graph::TensorDecl;
use outpost_models::spec::InputSpec;
use outpost_runtime::preprocess::{ImageView, PixelFormat, Preprocessor, load_rgb};

use crate::error::{ConvertError, Result};
use crate::quantize::SampleSource;

/// One decoded sample image.
#[derive(Debug, Clone)]
struct Sample {
    width: u32,
    height: u32,
    format: PixelFormat,
    data: Vec<u8>,
}

/// Samples loaded from files, fed through the model's preprocessing.
#[derive(Debug)]
pub struct FileSamples {
    samples: Vec<Sample>,
    pre: Preprocessor,
    /// What was loaded, for the provenance.
    pub description: String,
}

fn cal(msg: impl Into<String>) -> ConvertError {
    ConvertError::Calibration(msg.into())
}

fn load_npy(path: &Path, out: &mut Vec<Sample>) -> Result<usize> {
    let bytes = std::fs::read(path).map_err(|source| ConvertError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let npy = npyz::NpyFile::new(&bytes[..])
        .map_err(|e| cal(format!("{}: not a .npy array ({e})", path.display())))?;
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let (n, h, w, c) = match shape.as_slice() {
        [n, h, w] => (*n, *h, *w, 1),
        [n, h, w, 3] => (*n, *h, *w, 3),
        [n, h, w, 1] => (*n, *h, *w, 1),
        _ => {
            return Err(cal(format!(
                "{}: shape {shape:?} is not [N,H,W] or [N,H,W,3]",
                path.display()
            )));
        }
    };
    let type_str = npy.dtype().descr();
    let values: Vec<f64> = match type_str.as_str() {
        "'|u1'" | "'<u1'" => npy
            .into_vec::<u8>()
            .map(|v| v.into_iter().map(f64::from).collect()),
        "'<f4'" => npy
            .into_vec::<f32>()
            .map(|v| v.into_iter().map(f64::from).collect()),
        "'<f8'" => npy.into_vec::<f64>(),
        other => {
            return Err(cal(format!(
                "{}: element type {other} is not supported (use uint8, float32 or float64)",
                path.display()
            )));
        }
    }
    .map_err(|e| cal(format!("{}: {e}", path.display())))?;
    let unit = values.iter().all(|v| (0.0..=1.0).contains(v));
    let k = if unit { 255.0 } else { 1.0 };
    let per = h * w * c;
    for i in 0..n {
        // Gray images are widened to RGB (the model sees a gray RGB frame, as from a camera).
        let data = values[i * per..(i + 1) * per]
            .iter()
            .flat_map(|v| {
                let b = (v * k).round().clamp(0.0, 255.0) as u8;
                std::iter::repeat_n(b, 4 - c)
            })
            .collect();
        out.push(Sample {
            width: w as u32,
            height: h as u32,
            format: PixelFormat::Rgb8,
            data,
        });
    }
    Ok(n)
}

impl FileSamples {
    /// Load every file (an `.npy` contributes all its images) for an input described by
    /// `spec` with float shape `shape`. At most `limit` samples are kept (evenly spread).
    ///
    /// With `composite`, each `.npy` image (a face crop) is pasted into one of the image files
    /// (scenes) at a pseudo-random size (48–159 px) and place, deterministically: a detector
    /// then calibrates on faces at the scale it meets in real frames instead of crops blown up
    /// to the whole input. The scenes are kept as samples too.
    pub fn load(
        paths: &[PathBuf],
        spec: &InputSpec,
        shape: &[usize],
        limit: usize,
        composite: bool,
    ) -> Result<FileSamples> {
        let mut samples = Vec::new();
        let mut crops = Vec::new();
        let mut parts = Vec::new();
        for p in paths {
            let is_npy = p.extension().is_some_and(|e| e.eq_ignore_ascii_case("npy"));
            if is_npy {
                let n = load_npy(p, if composite { &mut crops } else { &mut samples })?;
                parts.push(format!("{} ({n})", file_name(p)));
            } else {
                let img = load_rgb(p).map_err(|e| cal(e.to_string()))?;
                samples.push(Sample {
                    width: img.width,
                    height: img.height,
                    format: PixelFormat::Rgb8,
                    data: img.data,
                });
                parts.push(file_name(p));
            }
        }
        if composite {
            if crops.is_empty() || samples.is_empty() {
                return Err(cal(
                    "compositing needs .npy face crops and at least one scene image",
                ));
            }
            let composites = paste_all(&crops, &samples);
            parts.insert(0, format!("{} composites of", composites.len()));
            samples.splice(0..0, composites);
        }
        if samples.is_empty() {
            return Err(cal(
                "no calibration images given (use --calibration FILE...)",
            ));
        }
        if samples.len() > limit.max(1) {
            let step = samples.len() as f64 / limit.max(1) as f64;
            samples = (0..limit.max(1))
                .map(|i| samples[(i as f64 * step) as usize].clone())
                .collect();
        }
        let decl = TensorDecl {
            name: spec.tensor.clone(),
            shape: shape.to_vec(),
            dtype: DType::F32,
            quant: None,
        };
        let pre = Preprocessor::from_spec(spec, &decl).map_err(|e| cal(e.to_string()))?;
        let description = format!("{} samples: {}", samples.len(), parts.join(", "));
        Ok(FileSamples {
            samples,
            pre,
            description,
        })
    }
}

/// Paste crop `i` into scene `i mod n` at a size of 48–159 px (capped by the scene) and a
/// place drawn from a fixed-seed xorshift, resized with a triangle (bilinear) filter.
fn paste_all(crops: &[Sample], scenes: &[Sample]) -> Vec<Sample> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    crops
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut out = scenes[i % scenes.len()].clone();
            let (w, h) = (out.width, out.height);
            let s = (48 + (next() % 112) as u32).min(w).min(h).max(1);
            let crop = image::RgbImage::from_raw(c.width, c.height, c.data.clone())
                .expect("crop buffers are width × height × 3");
            let face = image::imageops::resize(&crop, s, s, image::imageops::FilterType::Triangle);
            let x0 = (next() % (w - s + 1) as u64) as u32;
            let y0 = (next() % (h - s + 1) as u64) as u32;
            for y in 0..s {
                let row = ((y0 + y) * w + x0) as usize * 3;
                let src = &face.as_raw()[(y * s) as usize * 3..((y + 1) * s) as usize * 3];
                out.data[row..row + src.len()].copy_from_slice(src);
            }
            out
        })
        .collect()
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.display().to_string())
}

impl SampleSource for FileSamples {
    fn count(&self) -> usize {
        self.samples.len()
    }

    fn fill(&mut self, i: usize, input: &mut [f32]) -> Result<()> {
        let s = &self.samples[i];
        let view = ImageView::packed(s.width, s.height, s.format, &s.data)
            .map_err(|e| cal(e.to_string()))?;
        self.pre
            .run_f32(&view, input)
            .map_err(|e| cal(e.to_string()))?;
        Ok(())
    }
}
