//! Frame sources: where the pipeline's frames come from, and the slot buffers they fill.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use outpost_hal::ErrorKind;
use thiserror::Error;

use crate::preprocess::{DecodeError, ImageView, PixelFormat, PreprocessError, RgbImage, load_rgb};

/// Longest name a frame carries (bytes); longer names are cut at a character boundary.
pub const NAME_CAPACITY: usize = 64;

/// A short fixed-capacity name (no heap): a source file's stem, a camera id.
pub type Name = heapless::String<NAME_CAPACITY>;

/// `s` as a [`Name`], cut at the last character boundary that fits.
pub fn name(s: &str) -> Name {
    let mut end = s.len().min(NAME_CAPACITY);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let mut n = Name::new();
    // Cannot fail: `end ≤ NAME_CAPACITY`.
    let _ = n.push_str(&s[..end]);
    n
}

/// What a [`FrameBuf`] holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FrameKind {
    /// Pixels ([`FrameBuf::prepare`], [`FrameBuf::view`]).
    #[default]
    Image,
    /// A window of f32 samples, `frames × channels`, row-major ([`FrameBuf::prepare_samples`],
    /// [`FrameBuf::samples`]): audio, sensor readings.
    Samples,
}

/// A frame slot's buffer: allocated once at its largest size, refilled for every frame. It
/// holds either an image or a window of samples ([`FrameKind`]).
///
/// The storage is 32-bit words, so the same buffer is viewed as bytes (images) or as `f32`
/// (samples) with no copy and correct alignment.
#[derive(Debug)]
pub struct FrameBuf {
    data: Box<[u32]>,
    /// Usable bytes (`data` may have up to 3 more).
    capacity: usize,
    width: u32,
    height: u32,
    stride: usize,
    format: PixelFormat,
    kind: FrameKind,
    /// Sample rows (frames) and values per row of a sample window.
    frames: usize,
    channels: usize,
}

impl FrameBuf {
    /// A buffer of `capacity` bytes, holding no frame yet. Every page is written here, so the
    /// first frames do not pay for page faults.
    pub fn new(capacity: usize) -> Self {
        FrameBuf {
            // Not zero: a zeroed allocation would leave the pages unmapped until first use.
            data: vec![0x8080_8080; capacity.div_ceil(4)].into_boxed_slice(),
            capacity,
            width: 0,
            height: 0,
            stride: 0,
            format: PixelFormat::Rgb8,
            kind: FrameKind::Image,
            frames: 0,
            channels: 0,
        }
    }

    /// The usable bytes.
    fn bytes(&self) -> &[u8] {
        &bytemuck::cast_slice::<u32, u8>(&self.data)[..self.capacity]
    }

    /// Bytes this buffer can hold.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// What the buffer holds now.
    pub fn kind(&self) -> FrameKind {
        self.kind
    }

    /// Start a new window of `frames × channels` samples: returns the values to fill, row-major
    /// (exactly what the window needs). Fails, keeping the old frame, when either is 0 or the
    /// window exceeds the capacity. Allocates nothing.
    pub fn prepare_samples(
        &mut self,
        frames: usize,
        channels: usize,
    ) -> Result<&mut [f32], SourceError> {
        let need = frames
            .checked_mul(channels)
            .and_then(|n| n.checked_mul(4))
            .ok_or(SourceError::TooLarge {
                need: usize::MAX,
                capacity: self.capacity,
            })?;
        if need == 0 {
            return Err(SourceError::Empty);
        }
        if need > self.capacity {
            return Err(SourceError::TooLarge {
                need,
                capacity: self.capacity,
            });
        }
        self.kind = FrameKind::Samples;
        self.frames = frames;
        self.channels = channels;
        self.width = 0;
        self.height = 0;
        self.stride = 0;
        let words = &mut self.data[..frames * channels];
        Ok(bytemuck::cast_slice_mut(words))
    }

    /// The sample window held, row-major `frames × channels` (empty when the buffer holds an
    /// image).
    pub fn samples(&self) -> &[f32] {
        match self.kind {
            FrameKind::Samples => bytemuck::cast_slice(&self.data[..self.frames * self.channels]),
            FrameKind::Image => &[],
        }
    }

    /// Rows (sample frames) of the window held; 0 for an image.
    pub fn sample_frames(&self) -> usize {
        if self.kind == FrameKind::Samples {
            self.frames
        } else {
            0
        }
    }

    /// Values per row of the window held; 0 for an image.
    pub fn sample_channels(&self) -> usize {
        if self.kind == FrameKind::Samples {
            self.channels
        } else {
            0
        }
    }

    /// Width of the frame held.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height of the frame held.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// Row stride of the frame held.
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// Layout of the frame held.
    pub fn format(&self) -> PixelFormat {
        self.format
    }

    /// Start a new frame of this geometry: returns the bytes to fill (exactly what the frame
    /// needs). Fails, keeping the old frame, when the size is invalid or exceeds the capacity.
    /// Allocates nothing.
    pub fn prepare(
        &mut self,
        width: u32,
        height: u32,
        stride: usize,
        format: PixelFormat,
    ) -> Result<&mut [u8], SourceError> {
        let probe = ImageView {
            width,
            height,
            stride,
            format,
            data: &[],
        };
        let need = probe.required_len().map_err(SourceError::Frame)?;
        if need > self.capacity {
            return Err(SourceError::TooLarge {
                need,
                capacity: self.capacity,
            });
        }
        self.width = width;
        self.height = height;
        self.stride = stride;
        self.format = format;
        self.kind = FrameKind::Image;
        Ok(&mut bytemuck::cast_slice_mut::<u32, u8>(&mut self.data)[..need])
    }

    /// [`FrameBuf::prepare`] for tightly packed RGB rows.
    pub fn prepare_rgb(&mut self, width: u32, height: u32) -> Result<&mut [u8], SourceError> {
        self.prepare(width, height, width as usize * 3, PixelFormat::Rgb8)
    }

    /// The image held (empty before the first [`FrameBuf::prepare`] and for samples).
    pub fn data(&self) -> &[u8] {
        let len = if self.width == 0 {
            0
        } else {
            self.view().required_len().unwrap_or(0)
        };
        &self.bytes()[..len]
    }

    /// A view of the image for preprocessing (0×0 for samples).
    pub fn view(&self) -> ImageView<'_> {
        ImageView {
            width: self.width,
            height: self.height,
            stride: self.stride,
            format: self.format,
            data: self.bytes(),
        }
    }
}

/// What a source says about a frame it delivered.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FrameMeta {
    /// Per-stream sequence number, from 0, counting every frame the source delivered.
    pub seq: u64,
    /// Where the frame came from: the file stem for image files, a camera id.
    pub name: Name,
    /// Index of the frame within the source (the image's position in its list).
    pub index: u32,
}

/// Why a source cannot deliver frames.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SourceError {
    /// An image file could not be decoded.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The frame geometry is invalid.
    #[error("invalid frame: {0}")]
    Frame(PreprocessError),
    /// The frame is larger than the slots were made for.
    #[error("frame needs {need} bytes, slots hold {capacity}")]
    TooLarge {
        /// Bytes the frame needs.
        need: usize,
        /// Bytes a slot holds.
        capacity: usize,
    },
    /// A source without frames.
    #[error("the source has no frames")]
    Empty,
    /// The device or connection went away (a camera unplugged, a server restarted, a child
    /// process that exited). Transient: the capture loop backs off and calls
    /// [`Source::next_frame`] again, which reconnects.
    #[error("disconnected: {0}")]
    Disconnected(String),
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

impl SourceError {
    /// The class of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            SourceError::Decode(e) => e.kind(),
            SourceError::Frame(_) | SourceError::Empty => ErrorKind::InvalidInput,
            SourceError::TooLarge { .. } => ErrorKind::Capacity,
            SourceError::Disconnected(_) | SourceError::Other(_) => ErrorKind::Io,
        }
    }

    /// Whether the stream may go on after this error (reconnect with backoff) rather than end.
    pub fn is_transient(&self) -> bool {
        matches!(self, SourceError::Disconnected(_))
    }
}

/// Something that produces frames: a camera, a file replay.
///
/// The capture thread calls [`Source::next_frame`] in a loop with a free slot; the source writes
/// the frame into it (through [`FrameBuf::prepare`]) and describes it. It must not allocate in
/// `next_frame` once running (the no-allocation test covers [`ImageSource`]).
pub trait Source: Send {
    /// Write the next frame into `slot`. `Ok(None)` at the end of the stream. A live source
    /// blocks until its next frame is there; a paced one can instead say when it will be through
    /// [`Source::ready_at`].
    fn next_frame(&mut self, slot: &mut FrameBuf) -> Result<Option<FrameMeta>, SourceError>;

    /// Bytes the largest frame of this source needs (slots are allocated this large). A
    /// sample source: `frames × channels × 4`.
    fn frame_capacity(&self) -> usize;

    /// `(frames, channels)` of the windows a sample source delivers; `None` for an image
    /// source. The pipeline checks it against the model's input when the stream is added.
    fn sample_window(&self) -> Option<(usize, usize)> {
        None
    }

    /// Samples per second of an audio source (`None` for anything else).
    fn sample_rate(&self) -> Option<u32> {
        None
    }

    /// When the next frame is due, for paced sources (the capture thread waits until then,
    /// checking the stop flag). `None`: now, or the source blocks by itself.
    fn ready_at(&mut self) -> Option<Instant> {
        None
    }
}

/// Image files replayed as a camera: decoded once up front, then copied into slots at a set
/// frame rate, once or in a loop.
#[derive(Debug)]
pub struct ImageSource {
    images: Vec<(Name, RgbImage)>,
    period: Option<Duration>,
    looping: bool,
    next: usize,
    seq: u64,
    start: Option<Instant>,
}

impl ImageSource {
    /// Decode `paths` (PNG, JPEG); frames are named by the file stems.
    pub fn open(paths: &[PathBuf]) -> Result<Self, SourceError> {
        let mut images = Vec::with_capacity(paths.len());
        for p in paths {
            let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or("frame");
            images.push((name(stem), load_rgb(p)?));
        }
        Self::from_images(images)
    }

    /// Decode one file.
    pub fn open_one(path: &Path) -> Result<Self, SourceError> {
        Self::open(&[path.to_path_buf()])
    }

    /// Frames already in memory, with their names.
    pub fn from_images(images: Vec<(Name, RgbImage)>) -> Result<Self, SourceError> {
        if images.is_empty() {
            return Err(SourceError::Empty);
        }
        for (_, img) in &images {
            if img.width == 0
                || img.height == 0
                || img.data.len() != img.width as usize * img.height as usize * 3
            {
                return Err(SourceError::Frame(PreprocessError::BufferTooSmall {
                    len: img.data.len(),
                    need: img.width as usize * img.height as usize * 3,
                }));
            }
        }
        Ok(ImageSource {
            images,
            period: None,
            looping: false,
            next: 0,
            seq: 0,
            start: None,
        })
    }

    /// Deliver `fps` frames per second (≤ 0 or not finite: as fast as they are taken).
    pub fn with_fps(mut self, fps: f64) -> Self {
        self.period = (fps.is_finite() && fps > 0.0).then(|| Duration::from_secs_f64(1.0 / fps));
        self
    }

    /// Start again after the last image instead of ending.
    pub fn looping(mut self, looping: bool) -> Self {
        self.looping = looping;
        self
    }

    /// The images and their names.
    pub fn images(&self) -> &[(Name, RgbImage)] {
        &self.images
    }
}

impl Source for ImageSource {
    fn next_frame(&mut self, slot: &mut FrameBuf) -> Result<Option<FrameMeta>, SourceError> {
        if self.next == self.images.len() {
            if !self.looping {
                return Ok(None);
            }
            self.next = 0;
        }
        let index = self.next;
        let (name, img) = &self.images[index];
        slot.prepare_rgb(img.width, img.height)?
            .copy_from_slice(&img.data);
        self.start.get_or_insert_with(Instant::now);
        let meta = FrameMeta {
            seq: self.seq,
            name: name.clone(),
            index: index as u32,
        };
        self.next += 1;
        self.seq += 1;
        Ok(Some(meta))
    }

    fn frame_capacity(&self) -> usize {
        self.images
            .iter()
            .map(|(_, i)| i.data.len())
            .max()
            .unwrap_or(0)
    }

    /// Frame `n` is due at `start + n / fps` (the first at once). A late frame is delivered at
    /// once, not skipped, so every image is replayed.
    fn ready_at(&mut self) -> Option<Instant> {
        let period = self.period?;
        let start = self.start?;
        let n = u32::try_from(self.seq).unwrap_or(u32::MAX);
        start.checked_add(period.checked_mul(n)?)
    }
}
