//! Decoding image files to 8-bit RGB, for the CLI and tests (this allocates; the per-frame path
//! does not use it).
//!
//! PNG and JPEG are supported (the `image` crate, pure Rust). The result matches what PIL's
//! `Image.open(path).convert("RGB")` gives the Python reference for PNG (alpha dropped, gray and
//! palettes expanded, 16-bit reduced); JPEG decoders may differ by a few levels, which the golden
//! files detect through their `rgb_sha256`.

use std::io::{Cursor, ErrorKind as IoKind};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use image::{ImageError, ImageFormat, ImageReader};
use outpost_hal::ErrorKind;
use thiserror::Error;

use super::image::{ImageView, PixelFormat};

/// A decoded image: tightly packed `R, G, B` rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RgbImage {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width × height × 3` bytes, row-major.
    pub data: Vec<u8>,
}

impl RgbImage {
    /// A view for [`Preprocessor::run_i8`](super::Preprocessor::run_i8) and friends.
    pub fn view(&self) -> ImageView<'_> {
        ImageView {
            width: self.width,
            height: self.height,
            stride: self.width as usize * 3,
            format: PixelFormat::Rgb8,
            data: &self.data,
        }
    }
}

/// Why an image file could not be decoded. `path` is `<memory>` for [`decode_rgb`].
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// No such file.
    #[error("{}: no such file", path.display())]
    NotFound {
        /// The file.
        path: PathBuf,
    },
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Not a PNG or JPEG, or a variant of them this build cannot decode.
    #[error("{}: unsupported image format: {reason}", path.display())]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// What the decoder said.
        reason: String,
    },
    /// The file claims to be an image but its data is broken or truncated.
    #[error("{}: corrupt image: {reason}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What the decoder said.
        reason: String,
    },
    /// The image exceeds the decoder's size limits.
    #[error("{}: image too large: {reason}", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// What the decoder said.
        reason: String,
    },
}

impl DecodeError {
    /// The class of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            DecodeError::NotFound { .. } | DecodeError::Io { .. } => ErrorKind::Io,
            DecodeError::Unsupported { .. } => ErrorKind::Unsupported,
            DecodeError::Corrupt { .. } => ErrorKind::InvalidInput,
            DecodeError::TooLarge { .. } => ErrorKind::Capacity,
        }
    }
}

fn io_error(path: &Path, e: std::io::Error) -> DecodeError {
    match e.kind() {
        IoKind::NotFound => DecodeError::NotFound {
            path: path.to_path_buf(),
        },
        _ => DecodeError::Io {
            path: path.to_path_buf(),
            source: e,
        },
    }
}

fn image_error(path: &Path, e: ImageError) -> DecodeError {
    let path = path.to_path_buf();
    let reason = e.to_string();
    match e {
        ImageError::IoError(e) if e.kind() == IoKind::UnexpectedEof => {
            DecodeError::Corrupt { path, reason }
        }
        ImageError::IoError(e) => io_error(&path, e),
        ImageError::Unsupported(_) => DecodeError::Unsupported { path, reason },
        ImageError::Limits(_) => DecodeError::TooLarge { path, reason },
        _ => DecodeError::Corrupt { path, reason },
    }
}

/// Decodes `bytes` (named `path` in errors): the format is sniffed from the content.
fn decode(path: &Path, bytes: &[u8]) -> Result<RgbImage, DecodeError> {
    let unsupported = |reason: String| DecodeError::Unsupported {
        path: path.to_path_buf(),
        reason,
    };
    let format = image::guess_format(bytes)
        .map_err(|_| unsupported("not a PNG or JPEG (unrecognised content)".into()))?;
    if !matches!(format, ImageFormat::Png | ImageFormat::Jpeg) {
        return Err(unsupported(format!(
            "{format:?} is not built in (PNG and JPEG are)"
        )));
    }
    // A panic inside a decoder (a bug on hostile input) becomes `Corrupt` too.
    let img = catch_unwind(AssertUnwindSafe(|| {
        ImageReader::with_format(Cursor::new(bytes), format).decode()
    }))
    .map_err(|_| DecodeError::Corrupt {
        path: path.to_path_buf(),
        reason: "the decoder failed on this data".into(),
    })?
    .map_err(|e| image_error(path, e))?;
    let rgb = img.into_rgb8();
    Ok(RgbImage {
        width: rgb.width(),
        height: rgb.height(),
        data: rgb.into_raw(),
    })
}

/// Decodes a PNG or JPEG file to RGB; the format comes from the content, not the name.
pub fn load_rgb(path: &Path) -> Result<RgbImage, DecodeError> {
    let bytes = std::fs::read(path).map_err(|e| io_error(path, e))?;
    decode(path, &bytes)
}

/// Decodes a PNG or JPEG held in memory to RGB.
pub fn decode_rgb(bytes: &[u8]) -> Result<RgbImage, DecodeError> {
    decode(Path::new("<memory>"), bytes)
}
