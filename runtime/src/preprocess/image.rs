//! Borrowed views of source frames and their validation.

use super::{PreprocessError, Result};

/// How the bytes of an [`ImageView`] are laid out.
///
/// Every format is 8 bits per sample. `stride` is the distance in bytes between the starts of two
/// rows of the first (or only) plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PixelFormat {
    /// Packed `R, G, B` bytes, 3 per pixel.
    Rgb8,
    /// Packed `B, G, R` bytes, 3 per pixel (OpenCV's order).
    Bgr8,
    /// One luminance byte per pixel.
    Gray8,
    /// YUV 4:2:0, two planes: `height` rows of Y (`stride` bytes apart), then `ceil(height/2)`
    /// rows of interleaved `U, V` pairs (also `stride` bytes apart, starting at `stride × height`),
    /// one pair per 2×2 block of pixels. `stride` must be at least `2 × ceil(width/2)`.
    Nv12,
    /// YUV 4:2:0, three planes: `height` rows of Y (`stride` bytes apart), then `ceil(height/2)`
    /// rows of U, then as many rows of V. The chroma planes have `ceil(width/2)` samples per row
    /// and a row stride of `ceil(stride/2)` bytes; U starts at `stride × height`, V right after
    /// U's `ceil(height/2)` rows.
    I420,
}

impl PixelFormat {
    /// Bytes per pixel of the packed formats, or of the Y plane of the YUV ones.
    pub const fn bytes_per_pixel(self) -> usize {
        match self {
            PixelFormat::Rgb8 | PixelFormat::Bgr8 => 3,
            PixelFormat::Gray8 | PixelFormat::Nv12 | PixelFormat::I420 => 1,
        }
    }

    /// The smallest valid `stride` for an image `width` pixels wide.
    pub const fn min_stride(self, width: u32) -> usize {
        let w = width as usize;
        match self {
            PixelFormat::Nv12 => w.div_ceil(2) * 2,
            _ => w * self.bytes_per_pixel(),
        }
    }
}

/// A borrowed source frame: any size, any supported [`PixelFormat`], rows `stride` bytes apart.
///
/// `data` must hold every row of every plane; the last row of each plane need not be padded out to
/// the full stride, and bytes after the image are ignored. Build one with [`ImageView::new`] to
/// check it up front; the preprocessor checks it again on every run (nothing is trusted, nothing
/// panics).
#[derive(Debug, Clone, Copy)]
pub struct ImageView<'a> {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Bytes from the start of one row to the next (of the Y plane for YUV formats).
    pub stride: usize,
    /// Layout of `data`.
    pub format: PixelFormat,
    /// The pixels.
    pub data: &'a [u8],
}

/// Where the planes of a validated image lie in `data`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Planes {
    /// Offset of the U samples (NV12: the interleaved UV plane).
    pub u: usize,
    /// Offset of the V samples (NV12: `u + 1`).
    pub v: usize,
    /// Bytes between chroma rows.
    pub cstride: usize,
    /// Bytes between horizontally adjacent chroma samples (NV12: 2, I420: 1).
    pub cstep: usize,
}

impl<'a> ImageView<'a> {
    /// A checked view: fails if a size is zero, the stride is too small or `data` too short.
    pub fn new(
        width: u32,
        height: u32,
        stride: usize,
        format: PixelFormat,
        data: &'a [u8],
    ) -> Result<Self> {
        let v = ImageView {
            width,
            height,
            stride,
            format,
            data,
        };
        v.validate()?;
        Ok(v)
    }

    /// A checked view of tightly packed rows (`stride` = [`PixelFormat::min_stride`]).
    pub fn packed(width: u32, height: u32, format: PixelFormat, data: &'a [u8]) -> Result<Self> {
        Self::new(width, height, format.min_stride(width), format, data)
    }

    /// Bytes `data` must hold for this size, format and stride.
    pub fn required_len(&self) -> Result<usize> {
        self.layout().map(|(need, _)| need)
    }

    /// Checks sizes, stride and buffer length. Allocates nothing.
    pub fn validate(&self) -> Result<()> {
        self.planes().map(|_| ())
    }

    /// Validates and returns the chroma plane offsets.
    pub(crate) fn planes(&self) -> Result<Planes> {
        let (need, planes) = self.layout()?;
        if self.data.len() < need {
            return Err(PreprocessError::BufferTooSmall {
                len: self.data.len(),
                need,
            });
        }
        Ok(planes)
    }

    fn layout(&self) -> Result<(usize, Planes)> {
        let (w, h) = (self.width as usize, self.height as usize);
        if w == 0 || h == 0 {
            return Err(PreprocessError::ZeroSize {
                width: self.width,
                height: self.height,
            });
        }
        let too_large = PreprocessError::TooLarge {
            width: self.width,
            height: self.height,
        };
        // NV12 rows hold whole U, V pairs: an odd width needs one byte more.
        let min = match self.format {
            PixelFormat::Nv12 => w.checked_add(w % 2),
            f => w.checked_mul(f.bytes_per_pixel()),
        }
        .ok_or(too_large.clone())?;
        if self.stride < min {
            return Err(PreprocessError::StrideTooSmall {
                stride: self.stride,
                min,
            });
        }
        let s = self.stride;
        // Bytes up to the end of the last row of a plane of `rows` rows, `rs` apart, `last` long.
        let plane = |off: usize, rows: usize, rs: usize, last: usize| -> Option<usize> {
            off.checked_add(rs.checked_mul(rows - 1)?)?
                .checked_add(last)
        };
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        let none = Planes {
            u: 0,
            v: 0,
            cstride: 0,
            cstep: 0,
        };
        let r = match self.format {
            PixelFormat::Rgb8 | PixelFormat::Bgr8 | PixelFormat::Gray8 => {
                plane(0, h, s, min).map(|need| (need, none))
            }
            PixelFormat::Nv12 => s.checked_mul(h).and_then(|u| {
                let need = plane(u, ch, s, 2 * cw)?;
                Some((
                    need,
                    Planes {
                        u,
                        v: u + 1,
                        cstride: s,
                        cstep: 2,
                    },
                ))
            }),
            PixelFormat::I420 => s.checked_mul(h).and_then(|u| {
                let cs = s.div_ceil(2);
                let v = u.checked_add(cs.checked_mul(ch)?)?;
                let need = plane(v, ch, cs, cw)?;
                Some((
                    need,
                    Planes {
                        u,
                        v,
                        cstride: cs,
                        cstep: 1,
                    },
                ))
            }),
        };
        r.ok_or(too_large)
    }
}
